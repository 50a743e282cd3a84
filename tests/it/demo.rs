//! The README's quick start: `ci/demo.sh` publishes an index, exits 0 and leaves nothing behind,
//! so `ci/demo.sh && ci/test.sh` reaches the tests.

use std::process::Command;

use crate::support::require;

#[test]
fn the_demo_exits_0_and_removes_its_temporary_directory() {
    require("umoci", "apt-get install umoci");
    require("docker-registry", "apt-get install docker-registry");
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/demo.sh"))
        .env("TMPDIR", tmp.path())
        .env("DEMO_BIN", env!("CARGO_BIN_EXE_multiarch"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("MULTIARCH_DIGEST=sha256:"), "{stdout}");
    assert!(stdout.contains("\"Architecture\": \"arm64\""), "{stdout}");
    assert!(
        !stderr.contains("WARN"),
        "the demo's images are labelled: {stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
