//! The README's GitLab-registry pipeline, run for real by gitlab-ci-local on the host shell in a
//! throwaway git repository: the build-buildah component's matrix jobs build and push
//! `latest-amd64`/`latest-arm64` to the real registry, the manifest component (included by
//! `component:` like users do) runs the freshly built binary, and a later job receives
//! `MULTIARCH_DIGEST` through the dotenv report and checks it against the registry.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;
use serde_norway::{Mapping, Value};
use support::fixtures::{push_built, Kind};
use support::{require, sha256, Registry};

/// The README example with component references pointed at this checkout, plus the inputs this
/// sandbox needs (plain-HTTP registry, no registry login) and a job that checks the result.
fn pipeline(example: &str) -> String {
    let text = local_components(example);
    let mut doc: Value = serde_norway::from_str(&text).unwrap();
    let extra: [(&str, &str); 5] = [
        ("image", "$TEST_REGISTRY/group/app"),
        ("context", "app"),
        ("dockerfile", "app/Dockerfile"),
        ("registry-login", "none"),
        ("tls-verify", "false"),
    ];
    for include in doc["include"].as_sequence_mut().unwrap() {
        let component = include["component"].as_str().unwrap().to_string();
        let inputs = include
            .as_mapping_mut()
            .unwrap()
            .entry("inputs".into())
            .or_insert(Value::Mapping(Mapping::new()));
        let wanted: &[&str] = if component.contains("/build-buildah@") {
            &[
                "image",
                "context",
                "dockerfile",
                "registry-login",
                "tls-verify",
            ]
        } else {
            &["image"]
        };
        for (k, v) in extra.iter().filter(|(k, _)| wanted.contains(k)) {
            let value = if *v == "false" {
                Value::Bool(false)
            } else {
                Value::from(*v)
            };
            inputs
                .as_mapping_mut()
                .unwrap()
                .insert(Value::from(*k), value);
        }
    }
    doc["stages"]
        .as_sequence_mut()
        .unwrap()
        .push("verify".into());
    let verify: Value = serde_norway::from_str(
        r#"
stage: verify
needs: [manifest, build]
script:
  - test -n "$MULTIARCH_DIGEST"
  - test "${MULTIARCH_SOURCE_LINUX_AMD64#*@}" = "$MULTIARCH_DIGEST_LINUX_AMD64"
  - test "${MULTIARCH_SOURCE_LINUX_ARM64#*@}" = "$MULTIARCH_DIGEST_LINUX_ARM64"
  - test "$MULTIARCH_REF" = "$TEST_REGISTRY/group/app@$MULTIARCH_DIGEST"
  - raw=$(skopeo --insecure-policy inspect --raw --tls-verify=false "docker://$TEST_REGISTRY/group/app:latest")
  - test "sha256:$(printf %s "$raw" | sha256sum | cut -d' ' -f1)" = "$MULTIARCH_DIGEST"
  - test -n "$MULTIARCH_DIGEST_LINUX_ARM64"
  - echo "verified $MULTIARCH_REF"
"#,
    )
    .unwrap();
    doc.as_mapping_mut()
        .unwrap()
        .insert("verify".into(), verify);
    serde_norway::to_string(&doc).unwrap()
}

/// Points the README's `component:` references (published project, version) at this checkout.
fn local_components(pipeline: &str) -> String {
    pipeline
        .replace(
            "$CI_SERVER_FQDN/multiarch/multiarch/",
            "$CI_SERVER_FQDN/$CI_PROJECT_PATH/",
        )
        .replace("@1.0.0", "@$CI_COMMIT_SHA")
}

/// A throwaway git project (remote `group/app`) holding this checkout's templates, a tiny
/// `FROM scratch` app to build, and `pipeline` as its `.gitlab-ci.yml`.
fn project(pipeline: &str) -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = tempfile::tempdir().unwrap();
    assert!(Command::new("cp")
        .arg("-r")
        .arg(root.join("templates"))
        .arg(repo.path())
        .status()
        .unwrap()
        .success());
    std::fs::create_dir_all(repo.path().join("app")).unwrap();
    std::fs::write(
        repo.path().join("app/Dockerfile"),
        "FROM scratch\nCOPY platform.txt /platform.txt\n",
    )
    .unwrap();
    std::fs::write(
        repo.path().join("app/platform.txt"),
        "built by the build-buildah component\n",
    )
    .unwrap();
    std::fs::write(repo.path().join(".gitlab-ci.yml"), pipeline).unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "origin",
            "https://gitlab.example.com/group/app.git",
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(
        repo.path(),
        &[
            "-c",
            "user.email=ci@example.com",
            "-c",
            "user.name=ci",
            "commit",
            "-qm",
            "pipeline",
        ],
    );
    repo
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn readme_pipeline_builds_publishes_and_hands_the_digest_to_a_later_job() {
    let glci = require(
        "gitlab-ci-local",
        "npm install gitlab-ci-local and node@22 into .ci-tools/node",
    );
    require("buildah", "apt-get install buildah");
    require("rsync", "apt-get install rsync");
    let reg = Registry::start();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("docs/pipelines/gitlab-registry.yml")).unwrap();
    let repo = project(&pipeline(&example));
    // An earlier pipeline's images still sit under the per-arch tags when this one starts.
    let stale: Vec<String> = ["amd64", "arm64"]
        .iter()
        .map(|arch| {
            push_built(
                &reg,
                &format!("group/app:latest-{arch}"),
                &format!("linux/{arch}"),
                Kind::Oci,
                Some("0123456789abcdef0123456789abcdef01234567"),
            )
        })
        .collect();

    let binary_dir = Path::new(env!("CARGO_BIN_EXE_multiarch")).parent().unwrap();
    let path = format!(
        "{}:{}",
        binary_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(glci)
        .args(["--force-shell-executor", "--shell-isolation", "--no-color"])
        .arg("--variable")
        .arg(format!("TEST_REGISTRY={}", reg.host))
        .arg("--variable")
        .arg(format!("MULTIARCH_INSECURE_REGISTRIES={}", reg.host))
        .current_dir(repo.path())
        .env("PATH", path)
        .env("HOME", repo.path())
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    for job in ["build: [amd64]", "build: [arm64]", "manifest", "verify"] {
        assert!(
            log.lines()
                .any(|l| l.trim_start().starts_with("PASS") && l.contains(job)),
            "{job} did not pass:\n{log}"
        );
    }
    let summary: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("PASS") || l.contains("pipeline finished"))
        .collect();
    println!("{}", summary.join("\n"));

    // The published index, seen by skopeo directly: both architectures built by the component.
    let raw = reg
        .raw("group/app:latest")
        .expect("the manifest job pushed the index");
    let index: Json = serde_json::from_slice(&raw).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    // This pipeline's builds, not the stale images: the children are what the tags hold now.
    let children: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    for (arch, child) in ["amd64", "arm64"].iter().zip(&children) {
        let built = sha256(&reg.raw(&format!("group/app:latest-{arch}")).unwrap());
        assert_eq!(&built, child, "{arch}");
        assert!(
            !stale.contains(child),
            "{arch}: the stale image was published"
        );
    }
    assert!(
        log.contains(&format!("verified {}/group/app@{}", reg.host, sha256(&raw))),
        "{log}"
    );
}

/// Every pipeline the README shows resolves its components (inputs, types and options checked by
/// gitlab-ci-local's include and interpolation) into the jobs users expect.
#[test]
fn every_documented_pipeline_resolves_into_its_jobs() {
    let glci = require(
        "gitlab-ci-local",
        "npm install gitlab-ci-local and node@22 into .ci-tools/node",
    );
    require("rsync", "apt-get install rsync");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, jobs) in [
        (
            "gitlab-registry.yml",
            &["build: [amd64]", "build: [arm64]", "manifest"][..],
        ),
        (
            "ecr-oidc.yml",
            &["build: [amd64]", "build: [arm64]", "manifest", "scan"][..],
        ),
        (
            "kaniko.yml",
            &["build: [amd64]", "build: [arm64]", "manifest"][..],
        ),
    ] {
        let text = std::fs::read_to_string(root.join("docs/pipelines").join(file)).unwrap();
        let repo = project(&local_components(&text));
        let out = Command::new(&glci)
            .args(["--list", "--no-color"])
            .current_dir(repo.path())
            .env("HOME", repo.path())
            .output()
            .unwrap();
        let listing = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{file}:\n{listing}");
        for job in jobs {
            assert!(listing.contains(job), "{file}: no job {job}:\n{listing}");
        }
    }
}
