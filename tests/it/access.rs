//! Reaching registries as users do: `inspect`, credentials (job token, explicit, docker config),
//! TLS with a private CA, and the CLI's usage errors. Real registry, real binary.

use std::collections::BTreeMap;

use crate::support::fixtures::{push as push_fixture, Kind};
use crate::support::{
    exited, gitlab_env, multiarch, sha256, stderr_of, vars as env, Options, Registry,
};
use base64::Engine as _;
use serde_json::Value;

#[test]
fn inspect_shows_platforms_raw_bytes_and_json() {
    let reg = Registry::start();
    let amd = push_fixture(&reg, "app:1-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "app:1-armv7", "linux/arm/v7", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let mut e = reg.access_env();
    e.extend(env(&[
        ("MULTIARCH_IMAGE", &reg.repo("app")),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_PLATFORMS", "linux/amd64,linux/arm/v7"),
    ]));
    multiarch(&e, work.path()).arg("push").assert().success();
    let target = reg.repo("app:1");

    let text = multiarch(&e, work.path())
        .args(["inspect", &target])
        .output()
        .unwrap();
    assert!(text.status.success(), "{}", stderr_of(&text));
    let text = String::from_utf8(text.stdout).unwrap();
    let raw = reg.raw("app:1").unwrap();
    assert!(
        text.contains("media type: application/vnd.oci.image.index.v1+json\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("digest:     {}\n", sha256(&raw))),
        "{text}"
    );
    assert!(
        text.contains(&format!("size:       {}\n", raw.len())),
        "{text}"
    );
    assert!(
        text.contains(&format!("  linux/amd64      {amd}\n")),
        "{text}"
    );
    assert!(text.contains("  linux/arm/v7     sha256:"), "{text}");

    let got = multiarch(&e, work.path())
        .args(["inspect", "--raw", &target])
        .output()
        .unwrap();
    assert_eq!(got.stdout, raw, "--raw prints the exact bytes");

    let json = multiarch(&e, work.path())
        .args(["inspect", "--json", &target])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["digest"], sha256(&raw));
    assert_eq!(v["manifests"][1]["platform"], "linux/arm/v7");

    // A single image: its platform from the config.
    let one = multiarch(&e, work.path())
        .args(["inspect", &reg.repo("app:1-armv7")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&one.stdout).contains("  linux/arm/v7 "),
        "{}",
        String::from_utf8_lossy(&one.stdout)
    );

    // Absent: exit 3, nothing on stdout.
    let absent = multiarch(&e, work.path())
        .args(["inspect", &reg.repo("app:nope")])
        .output()
        .unwrap();
    assert_eq!(absent.status.code(), Some(3));
    assert!(absent.stdout.is_empty());
    assert!(
        stderr_of(&absent).contains("app:nope does not exist"),
        "{}",
        stderr_of(&absent)
    );
}

/// A registry with basic auth, as GitLab's is for a job (`CI_REGISTRY_USER/PASSWORD`).
#[test]
fn job_token_docker_config_and_explicit_credentials_are_used_and_bad_ones_exit_5() {
    let reg = Registry::start_with(Options {
        user: Some(("gitlab-ci-token".into(), "s3cr3t-job-token".into())),
        ..Default::default()
    });
    push_fixture(&reg, "group/app:latest-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "group/app:latest-arm64", "linux/arm64", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let mut job = gitlab_env(&reg.repo("group/app"));
    job.extend(reg.access_env());
    job.insert("CI_REGISTRY".into(), reg.host.clone());
    job.insert("CI_REGISTRY_USER".into(), "gitlab-ci-token".into());

    // Wrong password: exit 5, the secret never printed, nothing pushed.
    job.insert("CI_REGISTRY_PASSWORD".into(), "wrong-password-value".into());
    let out = multiarch(&job, work.path())
        .args(["push", "--log", "debug"])
        .output()
        .unwrap();
    exited(&out, 5);
    assert!(
        stderr_of(&out).contains("refused access"),
        "{}",
        stderr_of(&out)
    );
    assert!(!stderr_of(&out).contains("wrong-password-value"));

    // Right password, at debug level: works, and the secret appears nowhere.
    job.insert("CI_REGISTRY_PASSWORD".into(), "s3cr3t-job-token".into());
    let out = multiarch(&job, work.path())
        .args(["push", "--log", "trace"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    for text in [
        stderr_of(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        dotenv,
    ] {
        assert!(!text.contains("s3cr3t-job-token"));
        assert!(!text.contains(
            &base64::engine::general_purpose::STANDARD.encode("gitlab-ci-token:s3cr3t-job-token")
        ));
    }

    // DOCKER_AUTH_CONFIG, as GitLab passes it, with no CI_REGISTRY variables.
    let auth = base64::engine::general_purpose::STANDARD.encode("gitlab-ci-token:s3cr3t-job-token");
    let mut e = reg.access_env();
    e.insert(
        "DOCKER_AUTH_CONFIG".into(),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
    );
    e.insert("MULTIARCH_IMAGE".into(), reg.repo("group/app"));
    e.insert("MULTIARCH_TAGS".into(), "latest".into());
    multiarch(&e, work.path()).arg("plan").assert().success();

    // ~/.docker/config.json (HOME is the working directory in these runs).
    e.remove("DOCKER_AUTH_CONFIG");
    std::fs::create_dir_all(work.path().join(".docker")).unwrap();
    std::fs::write(
        work.path().join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
            reg.host
        ),
    )
    .unwrap();
    multiarch(&e, work.path()).arg("plan").assert().success();
    std::fs::remove_file(work.path().join(".docker/config.json")).unwrap();

    // A credential helper named in credHelpers (as amazon-ecr-credential-helper is), found on PATH.
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-fake");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\necho \"$server\" > \"$(dirname \"$0\")/asked\"\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"gitlab-ci-token\",\"Secret\":\"s3cr3t-job-token\"}' \"$server\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        work.path().join(".docker/config.json"),
        format!(r#"{{"credHelpers":{{"{}":"fake"}}}}"#, reg.host),
    )
    .unwrap();
    let mut with_helper = e.clone();
    with_helper.insert(
        "PATH".into(),
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    multiarch(&with_helper, work.path())
        .arg("plan")
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(bin.join("asked")).unwrap().trim(),
        reg.host,
        "the helper was asked for this registry"
    );
    std::fs::remove_file(work.path().join(".docker/config.json")).unwrap();

    // Explicit credentials; and none at all is refused with exit 5.
    let mut explicit = e.clone();
    explicit.insert("MULTIARCH_USERNAME".into(), "gitlab-ci-token".into());
    explicit.insert("MULTIARCH_PASSWORD".into(), "s3cr3t-job-token".into());
    multiarch(&explicit, work.path())
        .arg("plan")
        .assert()
        .success();
    let out = multiarch(&e, work.path()).arg("plan").output().unwrap();
    exited(&out, 5);
}

#[test]
fn tls_registry_is_trusted_through_the_ca_file_and_refused_without_it() {
    let reg = Registry::start_with(Options {
        tls: true,
        ..Default::default()
    });
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "app:latest-arm64", "linux/arm64", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let mut e = env(&[
        ("MULTIARCH_IMAGE", &reg.repo("app")),
        ("MULTIARCH_TAGS", "latest"),
    ]);
    let out = multiarch(&e, work.path()).arg("push").output().unwrap();
    exited(&out, 2);
    assert!(
        stderr_of(&out).contains("MULTIARCH_CA_FILE"),
        "{}",
        stderr_of(&out)
    );
    assert!(reg.raw("app:latest").is_none());

    e.extend(reg.access_env());
    let out = multiarch(&e, work.path()).arg("push").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(reg.raw("app:latest").is_some());
}

#[test]
fn usage_errors_exit_2_with_a_hint_and_empty_stdout() {
    let work = tempfile::tempdir().unwrap();
    for (args, extra, hint) in [
        (
            vec![
                "push",
                "--image",
                "localhost:5000/app",
                "--tags",
                "x",
                "--platforms",
                "linux/amd64,arm64",
            ],
            vec![],
            "linux/arm/v7",
        ),
        (vec!["push", "--tags", "x"], vec![], "--image"),
        (
            vec!["push", "--image", "localhost:5000/app"],
            vec![],
            "--tags",
        ),
        (
            vec!["push"],
            vec![
                ("MULTIARCH_IMAGE", "localhost:5000/app"),
                ("MULTIARCH_TAGS", "x"),
                ("MULTIARCH_TIMEOUT", "soon"),
            ],
            "90s",
        ),
        (vec!["push", "--no-such-flag"], vec![], "--no-such-flag"),
        (
            vec!["inspect", "Not A Reference"],
            vec![],
            "not an image reference",
        ),
    ] {
        let out = multiarch(&env(&extra), work.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            stderr_of(&out).contains(hint),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
}

#[test]
fn version_and_help_name_every_variable() {
    let work = tempfile::tempdir().unwrap();
    let version = multiarch(&BTreeMap::new(), work.path())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(version.stdout).unwrap(),
        format!("multiarch {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = multiarch(&BTreeMap::new(), work.path())
        .args(["push", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for var in [
        "MULTIARCH_IMAGE",
        "MULTIARCH_TAGS",
        "MULTIARCH_PLATFORMS",
        "MULTIARCH_SOURCE_TEMPLATE",
        "MULTIARCH_TIMEOUT",
        "MULTIARCH_ALLOW_MISSING",
        "MULTIARCH_FORMAT",
        "MULTIARCH_ANNOTATIONS",
        "MULTIARCH_DOTENV",
        "MULTIARCH_INSECURE_REGISTRIES",
        "MULTIARCH_CA_FILE",
        "MULTIARCH_REVISION",
        "MULTIARCH_REQUIRE_REVISION",
        "MULTIARCH_SOURCE_<OS>_<ARCH>",
    ] {
        assert!(help.contains(var), "{var} missing from push --help");
    }
}
