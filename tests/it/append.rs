//! `--append` against the real registry: each destination's own index is the base (a platform
//! only one destination held stays there), a base is checked like a source index before anything
//! moves, and two appends to one tag at once both land. skopeo checks the graph that results.

use std::time::Duration;

use crate::support::fixtures::{index_of, push as push_fixture, put_manifest, Kind};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{exited, multiarch, multiarch_process, sha256, stderr_of, vars, Registry};

/// `multiarch push` publishing tag `1` of `images` (paths in `reg`) from `app:1-<arch>`, with
/// `args`; exit code, stdout, stderr.
fn push(reg: &Registry, images: &[&str], args: &[&str]) -> (Option<i32>, String, String) {
    push_at(&reg.host, images, args)
}

/// The same through the registry at `host` (a proxy in front of it).
fn push_at(host: &str, images: &[&str], args: &[&str]) -> (Option<i32>, String, String) {
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env_at(host, images), work.path())
        .arg("push")
        .args(args)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        err,
    )
}

fn env(reg: &Registry, images: &[&str]) -> std::collections::BTreeMap<String, String> {
    env_at(&reg.host, images)
}

fn env_at(host: &str, images: &[&str]) -> std::collections::BTreeMap<String, String> {
    let images: Vec<String> = images.iter().map(|i| format!("{host}/{i}")).collect();
    vars(&[
        ("MULTIARCH_IMAGE", &images.join(",")),
        ("MULTIARCH_TAGS", "1"),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            &format!("{host}/app:{{tag}}-{{arch}}"),
        ),
        ("MULTIARCH_INSECURE_REGISTRIES", host),
        ("MULTIARCH_TIMEOUT", "0"),
    ])
}

/// `app:1` and `mirror:1` both holding amd64 and arm64.
fn published(reg: &Registry) {
    push_fixture(reg, "app:1-amd64", "linux/amd64", Kind::Oci);
    push_fixture(reg, "app:1-arm64", "linux/arm64", Kind::Oci);
    let (code, _, err) = push(reg, &["app", "mirror"], &[]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn each_destination_keeps_the_platforms_only_it_held() {
    let reg = Registry::start();
    published(&reg);
    // Later, each destination gets a platform of its own.
    push_fixture(&reg, "app:1-s390x", "linux/s390x", Kind::Oci);
    push_fixture(&reg, "app:1-ppc64le", "linux/ppc64le", Kind::Oci);
    let (code, _, err) = push(
        &reg,
        &["mirror"],
        &["--append", "--platforms", "linux/s390x"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = push(
        &reg,
        &["app"],
        &["--append", "--platforms", "linux/ppc64le"],
    );
    assert_eq!(code, Some(0), "{err}");

    push_fixture(&reg, "app:1-riscv64", "linux/riscv64", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let mut e = env(&reg, &["app", "mirror"]);
    e.insert("MULTIARCH_DOTENV".into(), "multiarch.env".into());
    let out = multiarch(&e, work.path())
        .args(["push", "--append", "--platforms", "linux/riscv64"])
        .output()
        .unwrap();
    exited(&out, 0);
    assert_eq!(
        reg.platforms("app:1"),
        [
            "linux/amd64",
            "linux/arm64",
            "linux/ppc64le",
            "linux/riscv64"
        ]
    );
    assert_eq!(
        reg.platforms("mirror:1"),
        ["linux/amd64", "linux/arm64", "linux/s390x", "linux/riscv64"]
    );
    reg.complete("app:1");
    reg.complete("mirror:1");
    // Each destination's line and ref names the index it holds.
    let (app, mirror) = (
        sha256(&reg.raw("app:1").unwrap()),
        sha256(&reg.raw("mirror:1").unwrap()),
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "{}:1@{app}\n{}:1@{mirror}\n",
            reg.repo("app"),
            reg.repo("mirror")
        )
    );
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    assert!(
        dotenv.contains(&format!(
            "MULTIARCH_DIGEST={app}\nMULTIARCH_REF={}@{app}\nMULTIARCH_REFS={}@{app},{}@{mirror}\n",
            reg.repo("app"),
            reg.repo("app"),
            reg.repo("mirror")
        )),
        "{dotenv}"
    );
}

/// A base tag holding `bytes` (an index PUT as it is), then an append of riscv64 to it: refused
/// with exit 4 and `says`, nothing moved.
fn refused_base(reg: &Registry, media_type: &str, bytes: &[u8], says: &str) {
    put_manifest(reg, "app:1", media_type, bytes);
    refused_as_it_is(reg, says);
}

/// An append of riscv64 to what `app:1` holds: refused with exit 4 and `says`, nothing moved.
fn refused_as_it_is(reg: &Registry, says: &str) {
    let before = sha256(&reg.raw("app:1").unwrap());
    let (code, stdout, err) = push(reg, &["app"], &["--append", "--platforms", "linux/riscv64"]);
    assert_eq!(code, Some(4), "{says}: {err}");
    assert_eq!(stdout, "");
    assert!(err.contains(says), "{says}: {err}");
    assert_eq!(
        sha256(&reg.raw("app:1").unwrap()),
        before,
        "the tag did not move"
    );
}

#[test]
fn a_base_is_checked_like_a_source_index_before_anything_moves() {
    let reg = Registry::start();
    let amd = push_fixture(&reg, "app:1-amd64", "linux/amd64", Kind::Oci);
    let arm = push_fixture(&reg, "app:1-arm64", "linux/arm64", Kind::Oci);
    push_fixture(&reg, "app:1-riscv64", "linux/riscv64", Kind::Oci);
    let oci = "application/vnd.oci.image.index.v1+json";
    let base = reg.repo("app:1");
    // Two images for one platform.
    refused_base(
        &reg,
        oci,
        &index_of(&[(&amd, 500, "linux/amd64"), (&arm, 500, "linux/amd64")], 1),
        &format!("the index to append to {base} lists two different images for linux/amd64: {amd} and {arm}"),
    );
    // One image under two platforms.
    refused_base(
        &reg,
        oci,
        &index_of(&[(&amd, 500, "linux/amd64"), (&amd, 500, "linux/arm64")], 1),
        &format!("{base} is not a usable index to append to: it lists {amd} both as linux/amd64 and as linux/arm64"),
    );
    // 15,000 entries: more than multiarch reads of a source index (and, pretty-printed, more
    // than the 4 MiB a manifest may have).
    refused_base(
        &reg,
        oci,
        &index_of(&[(&amd, 500, "linux/amd64")], 15_000),
        &format!("{base} is not a usable index to append to: it has 15000 entries, more than the 1000 accepted"),
    );
    // A Docker list whose child was deleted from the repository since (the registry checks
    // children when a list is pushed, not after).
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let kept = push_fixture(&reg, "app:1-amd64-docker", "linux/amd64", Kind::Docker);
    let gone = push_fixture(&reg, "app:1-s390x-docker", "linux/s390x", Kind::Docker);
    let entry = |digest: &str, arch: &str| {
        let size = reg.raw(&format!("app@{digest}")).unwrap().len();
        serde_json::json!({"mediaType": docker, "digest": digest, "size": size, "platform": {"os": "linux", "architecture": arch}})
    };
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [entry(&kept, "amd64"), entry(&gone, "s390x")],
    }))
    .unwrap();
    let list_type = "application/vnd.docker.distribution.manifest.list.v2+json";
    put_manifest(&reg, "app:1", list_type, &list);
    reg.skopeo(&["delete", &format!("docker://{}@{gone}", reg.repo("app"))]);
    refused_as_it_is(
        &reg,
        &format!("{base} is not a usable index to append to: its entry {gone} (linux/s390x) is not in {}", reg.repo("app")),
    );

    // An entry whose size is not its child's: pulls of that platform would refuse it.
    let size = |digest: &str| reg.raw(&format!("app@{digest}")).unwrap().len();
    let (amd_size, arm_size) = (size(&amd), size(&arm));
    refused_base(
        &reg,
        oci,
        &index_of(&[(&amd, amd_size, "linux/amd64"), (&arm, arm_size + 5, "linux/arm64")], 1),
        &format!(
            "{base} is not a usable index to append to: its entry {arm} (linux/arm64) says {} bytes, but the registry holds {arm_size} bytes under that digest",
            arm_size + 5
        ),
    );

    // The same child twice is read once, as in a source index: the merged index lists it once.
    put_manifest(
        &reg,
        "app:1",
        oci,
        &index_of(
            &[
                (&amd, amd_size, "linux/amd64"),
                (&arm, arm_size, "linux/arm64"),
            ],
            2,
        ),
    );
    let (code, _, err) = push(
        &reg,
        &["app"],
        &["--append", "--platforms", "linux/riscv64"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        reg.platforms("app:1"),
        ["linux/amd64", "linux/arm64", "linux/riscv64"]
    );
}

/// Two `--append` runs to one tag at once, each adding its own platform, through a proxy that
/// gives every request 20 ms, so both read the base before either pushes: both platforms land.
#[test]
fn two_appends_at_once_both_land() {
    let reg = Registry::start();
    push_fixture(&reg, "app:1-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "app:1-arm64", "linux/arm64", Kind::Oci);
    let (code, _, err) = push(&reg, &["app"], &[]);
    assert_eq!(code, Some(0), "{err}");
    push_fixture(&reg, "app:1-riscv64", "linux/riscv64", Kind::Oci);
    push_fixture(&reg, "app:1-s390x", "linux/s390x", Kind::Oci);
    let proxy = Proxy::start(&reg.host, Duration::from_millis(20), |_, _| Fault::Pass);
    let mut e = env(&reg, &["app"]);
    e.insert("MULTIARCH_IMAGE".into(), format!("{}/app", proxy.host));
    e.insert(
        "MULTIARCH_INSECURE_REGISTRIES".into(),
        format!("{},{}", reg.host, proxy.host),
    );
    let work = tempfile::tempdir().unwrap();
    let runs: Vec<std::process::Child> = ["linux/riscv64", "linux/s390x"]
        .iter()
        .map(|p| {
            multiarch_process(&e, work.path())
                .args(["push", "--append", "--platforms", p])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        let err = exited(&out, 0);
        eprintln!(
            "{}",
            err.lines()
                .filter(|l| l.contains("another") || l.contains("WARN"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let mut held = reg.platforms("app:1");
    held.sort();
    assert_eq!(
        held,
        ["linux/amd64", "linux/arm64", "linux/riscv64", "linux/s390x"]
    );
    reg.complete("app:1");
}

/// A registry (or a proxy in front of it) that answers HEAD with `Content-Length: 0` says no
/// size: the base's children are not taken for empty, and the append lands.
#[test]
fn a_head_without_a_usable_length_does_not_fail_the_base() {
    let reg = Registry::start();
    published(&reg);
    push_fixture(&reg, "app:1-riscv64", "linux/riscv64", Kind::Oci);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |req, _| {
        if req.method == "HEAD" && req.path.starts_with("/v2/app/manifests/sha256:") {
            Fault::Header("Content-Length".into(), "0".into())
        } else {
            Fault::Pass
        }
    });
    let append = ["--append", "--platforms", "linux/riscv64"];
    let (code, _, err) = push_at(&proxy.host, &["app"], &append);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        reg.platforms("app:1"),
        ["linux/amd64", "linux/arm64", "linux/riscv64"]
    );

    // Without a length from the HEAD, an entry whose size is wrong is still found (the child
    // is read instead).
    let mut index: serde_json::Value = serde_json::from_slice(&reg.raw("app:1").unwrap()).unwrap();
    let said = index["manifests"][1]["size"].as_u64().unwrap();
    index["manifests"][1]["size"] = serde_json::json!(said + 5);
    put_manifest(
        &reg,
        "app:1",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    let (code, _, err) = push_at(&proxy.host, &["app"], &append);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "(linux/arm64) says {} bytes, but the registry holds {said} bytes under that digest",
            said + 5
        )),
        "{err}"
    );
}
