//! The documented pipelines, run for real by gitlab-ci-local on the host shell in throwaway git
//! repositories: the components (included by `component:` as users do, pointed at this checkout)
//! build with buildah and push to real registries, the manifest job runs the freshly built binary,
//! and a later job checks what it received through the dotenv report against the registry.
//! gitlab-ci-local ignores `id_tokens`, `resource_group`, `retry` and `timeout`; the id_token is
//! handed in as a variable, and the ECR registry runs under its ECR host name inside a mount
//! namespace whose /etc/hosts maps it to loopback.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_norway::{Mapping, Value};
use support::fixtures::{push_built, Kind};
use support::moto::{ecr_password, Moto};
use support::{require, sha256, Options, Registry};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> String {
    std::fs::read_to_string(root().join("docs/pipelines").join(name)).unwrap()
}

/// Points the docs' `component:` references (published project, version) at this checkout.
fn local_components(pipeline: &str) -> String {
    pipeline
        .replace(
            "$CI_SERVER_FQDN/multiarch/multiarch/",
            "$CI_SERVER_FQDN/$CI_PROJECT_PATH/",
        )
        .replace("@1.0.0", "@$CI_COMMIT_SHA")
}

/// The pipeline with `inputs` added to the includes whose component path contains the key, and
/// extra top-level entries (jobs, variables).
fn adapt(text: &str, inputs: &[(&str, &[(&str, Value)])], extra: &[(&str, &str)]) -> String {
    let mut doc: Value = serde_norway::from_str(&local_components(text)).unwrap();
    for include in doc["include"].as_sequence_mut().unwrap() {
        let component = include["component"].as_str().unwrap().to_string();
        let map = include
            .as_mapping_mut()
            .unwrap()
            .entry("inputs".into())
            .or_insert(Value::Mapping(Mapping::new()))
            .as_mapping_mut()
            .unwrap();
        for (which, given) in inputs {
            if component.contains(&format!("/{which}@")) {
                for (k, v) in *given {
                    map.insert(Value::from(*k), v.clone());
                }
            }
        }
    }
    for (key, yaml) in extra {
        let value: Value = serde_norway::from_str(yaml).unwrap();
        let top = doc.as_mapping_mut().unwrap();
        match (top.get_mut(*key), value) {
            (Some(Value::Mapping(have)), Value::Mapping(add)) => have.extend(add),
            (_, value) => {
                top.insert(Value::from(*key), value);
            }
        }
    }
    serde_norway::to_string(&doc).unwrap()
}

/// A throwaway git project (remote `group/app`) holding this checkout's templates, a tiny
/// `FROM scratch` app to build, and `pipeline` as its `.gitlab-ci.yml`.
fn project(pipeline: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    assert!(Command::new("cp")
        .arg("-r")
        .arg(root().join("templates"))
        .arg(repo.path())
        .status()
        .unwrap()
        .success());
    std::fs::create_dir_all(repo.path().join("app")).unwrap();
    std::fs::write(
        repo.path().join("app/Dockerfile"),
        "FROM scratch AS base\nCOPY platform.txt /platform.txt\nFROM base AS final\nARG NOTE\nLABEL note=\"$NOTE\"\n",
    )
    .unwrap();
    std::fs::write(
        repo.path().join("app/platform.txt"),
        "built by a component\n",
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

fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs the project's pipeline with `variables` (as project CI/CD variables) and, when given, an
/// /etc/hosts of its own; returns whether it passed and the whole log.
fn run(repo: &Path, variables: &[(&str, String)], hosts: Option<&Path>) -> (bool, String) {
    let glci = require(
        "gitlab-ci-local",
        "npm install gitlab-ci-local and node@22 into .ci-tools/node",
    );
    require("buildah", "apt-get install buildah");
    require("rsync", "apt-get install rsync");
    let binary_dir = Path::new(env!("CARGO_BIN_EXE_multiarch")).parent().unwrap();
    let path = format!(
        "{}:{}",
        binary_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut args: Vec<String> = vec![
        "--force-shell-executor".into(),
        "--shell-isolation".into(),
        "--no-color".into(),
    ];
    for (k, v) in variables {
        args.push("--variable".into());
        args.push(format!("{k}={v}"));
    }
    let mut cmd = match hosts {
        None => {
            let mut c = Command::new(&glci);
            c.args(&args);
            c
        }
        Some(hosts) => {
            require("unshare", "apt-get install util-linux");
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#)
                .arg(hosts)
                .arg(&glci)
                .args(&args);
            c
        }
    };
    let out = cmd
        .current_dir(repo)
        .env("PATH", path)
        .env("HOME", repo)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), log)
}

fn assert_passed(log: &str, jobs: &[&str]) {
    for job in jobs {
        assert!(
            log.lines()
                .any(|l| l.trim_start().starts_with("PASS") && l.contains(job)),
            "{job} did not pass:\n{log}"
        );
    }
    let summary: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("PASS") || l.contains("FAIL") || l.contains("pipeline finished"))
        .collect();
    println!("{}", summary.join("\n"));
}

fn children(raw: &[u8]) -> Vec<(String, String)> {
    let index: Json = serde_json::from_slice(raw).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Inputs that let the buildah component build the test app and push over plain HTTP.
fn local_build(image: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("image", image.into()),
        ("context", "app".into()),
        ("dockerfile", "app/Dockerfile".into()),
        ("registry-login", "none".into()),
        ("tls-verify", Value::Bool(false)),
        ("build-args", "NOTE=two words\n".into()),
    ]
}

/// The jobs of the documented pipeline plus the test's `verify`.
const EVERY_JOB: &[&str] = &[
    "multiarch-build: [amd64]",
    "multiarch-build: [arm64]",
    "manifest",
    "verify",
];

const VERIFY: &str = r#"
stage: deploy
needs: [manifest, multiarch-build]
script:
  - test -n "$MULTIARCH_DIGEST"
  - test "$MULTIARCH_REF" = "$TEST_IMAGE@$MULTIARCH_DIGEST"
  - test "${MULTIARCH_SOURCE_LINUX_AMD64#*@}" = "$MULTIARCH_DIGEST_LINUX_AMD64"
  - test "${MULTIARCH_SOURCE_LINUX_ARM64#*@}" = "$MULTIARCH_DIGEST_LINUX_ARM64"
  - echo "verified $MULTIARCH_REF"
"#;

#[test]
fn readme_pipeline_publishes_this_pipelines_builds_over_stale_tags_with_project_variables() {
    let reg = Registry::start();
    let image = reg.repo("group/app");
    let pipeline = adapt(
        &example("gitlab-registry.yml"),
        &[("build-buildah", &local_build(&image)), ("manifest", &[])],
        &[
            ("verify", VERIFY),
            // A project's own variables reach the components' jobs (no input shadows them).
            (
                "variables",
                "MULTIARCH_ANNOTATIONS: org.opencontainers.image.title=from-the-project\nMULTIARCH_IMAGE: $TEST_IMAGE",
            ),
        ],
    );
    let repo = project(&pipeline);
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
    let (ok, log) = run(
        repo.path(),
        &[
            ("TEST_IMAGE", image.clone()),
            ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
        ],
        None,
    );
    assert!(ok, "{log}");
    assert_passed(&log, EVERY_JOB);
    let raw = reg
        .raw("group/app:latest")
        .expect("the manifest job pushed the index");
    assert!(
        log.contains(&format!("verified {image}@{}", sha256(&raw))),
        "{log}"
    );
    let index: Json = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["annotations"]["org.opencontainers.image.title"], "from-the-project",
        "the project's MULTIARCH_ANNOTATIONS reached the job"
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.revision"],
        head(repo.path()).as_str()
    );
    let kids = children(&raw);
    assert_eq!(
        kids.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["amd64", "arm64"]
    );
    for (arch, digest) in &kids {
        let built = sha256(&reg.raw(&format!("group/app:latest-{arch}")).unwrap());
        assert_eq!(
            &built, digest,
            "{arch}: the index holds this pipeline's build"
        );
        assert!(
            !stale.contains(digest),
            "{arch}: the stale image was published"
        );
        // Built with the build-args line that has a space, and labelled with the commit.
        let config = reg.skopeo(&[
            "inspect",
            "--config",
            &format!("docker://{}@{digest}", image),
        ]);
        let config: Json = serde_json::from_slice(&config.stdout).unwrap();
        assert_eq!(config["config"]["Labels"]["note"], "two words");
        assert_eq!(
            config["config"]["Labels"]["org.opencontainers.image.revision"],
            head(repo.path()).as_str()
        );
    }
}

#[test]
fn a_tag_pipeline_publishes_semver_tags_from_what_its_builds_pushed() {
    let reg = Registry::start();
    let image = reg.repo("group/app");
    let pipeline = adapt(
        &example("gitlab-registry.yml"),
        &[
            ("build-buildah", &{
                let mut i = local_build(&image);
                i.push(("tag", "semver".into()));
                i
            }),
            (
                "manifest",
                &[("image", image.as_str().into()), ("tags", "semver".into())],
            ),
        ],
        &[("verify", VERIFY)],
    );
    let repo = project(&pipeline);
    let (ok, log) = run(
        repo.path(),
        &[
            ("TEST_IMAGE", image.clone()),
            ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
            ("CI_COMMIT_TAG", "v1.4.2".into()),
        ],
        None,
    );
    assert!(ok, "{log}");
    assert_passed(&log, &["manifest", "verify"]);
    assert!(
        reg.raw("group/app:1.4.2-amd64").is_some(),
        "the builds pushed the version's tags"
    );
    let raw = reg.raw("group/app:1.4.2").unwrap();
    for tag in ["1.4", "1", "latest"] {
        assert_eq!(reg.raw(&format!("group/app:{tag}")).unwrap(), raw, "{tag}");
    }
}

#[test]
fn kaniko_pipeline_runs_with_a_stand_in_executor() {
    let reg = Registry::start();
    let image = reg.repo("group/app");
    let pipeline = adapt(
        &example("kaniko.yml"),
        &[
            (
                "build-kaniko",
                &[
                    ("image", image.as_str().into()),
                    ("context", "$PWD/app".into()),
                    ("registry-login", "none".into()),
                    ("labels", "org.example.flow=kaniko\n".into()),
                ],
            ),
            ("manifest", &[("image", image.as_str().into())]),
        ],
        &[("verify", VERIFY)],
    );
    let repo = project(&pipeline);
    // No kaniko binary runs here: this stand-in takes kaniko's flags and builds with buildah.
    let shim = repo.path().join("kaniko-executor");
    std::fs::write(&shim, KANIKO_SHIM).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker_config = tempfile::tempdir().unwrap();
    let (ok, log) = run(
        repo.path(),
        &[
            ("TEST_IMAGE", image.clone()),
            ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
            ("KANIKO_EXECUTOR", shim.display().to_string()),
            ("DOCKER_CONFIG", docker_config.path().display().to_string()),
        ],
        None,
    );
    assert!(ok, "{log}");
    assert_passed(&log, EVERY_JOB);
    let (_, digest) = children(&reg.raw("group/app:latest").unwrap()).remove(0);
    let config = reg.skopeo(&["inspect", "--config", &format!("docker://{image}@{digest}")]);
    let config: Json = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(config["config"]["Labels"]["org.example.flow"], "kaniko");
}

/// kaniko's executor flags, built and pushed with buildah (tests only).
const KANIKO_SHIM: &str = r#"#!/usr/bin/env python3
import argparse, os, subprocess, sys
os.environ["STORAGE_DRIVER"] = "vfs"
os.environ.pop("DOCKER_CONFIG", None)  # kaniko's own; buildah would insist on its config.json
p = argparse.ArgumentParser()
p.add_argument("--context"); p.add_argument("--dockerfile"); p.add_argument("--destination")
p.add_argument("--custom-platform"); p.add_argument("--digest-file"); p.add_argument("--target")
p.add_argument("--label", action="append", default=[]); p.add_argument("--build-arg", action="append", default=[])
a = p.parse_args()
cmd = ["buildah", "build", "--platform", a.custom_platform, "-f", a.context + "/" + a.dockerfile, "-t", a.destination]
for l in a.label: cmd += ["--label", l]
for b in a.build_arg: cmd += ["--build-arg", b]
if a.target: cmd += ["--target", a.target]
subprocess.run(cmd + [a.context], check=True)
subprocess.run(["buildah", "push", "--tls-verify=false", "--digestfile", a.digest_file, a.destination], check=True)
"#;

#[test]
fn ecr_pipeline_with_gitlab_oidc_runs_against_moto_and_a_registry_under_its_ecr_name() {
    const ECR_HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let moto = Moto::start();
    let ecr = Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        tls: true,
        listen: Some(("127.77.0.1:443".into(), ECR_HOST.into())),
        ..Default::default()
    });
    // The multiarch image the build jobs take their `multiarch login` from: this build's binary.
    let tools = Registry::start();
    let tool_image = tools.repo("multiarch:test");
    let stripped = tempfile::tempdir().unwrap();
    let binary = stripped.path().join("multiarch");
    let strip = Command::new("strip")
        .arg("-o")
        .arg(&binary)
        .arg(env!("CARGO_BIN_EXE_multiarch"))
        .status()
        .unwrap();
    assert!(
        strip.success(),
        "strip (binutils) makes the test binary image-sized"
    );
    let ctr = buildah(&["from", "scratch"]);
    buildah(&[
        "copy",
        &ctr,
        binary.to_str().unwrap(),
        "/usr/local/bin/multiarch",
    ]);
    buildah(&["commit", "--quiet", &ctr, "localhost/multiarch-tool:test"]);
    buildah(&["rm", &ctr]);
    buildah(&[
        "push",
        "--tls-verify=false",
        "localhost/multiarch-tool:test",
        &format!("docker://{tool_image}"),
    ]);

    let pipeline = adapt(
        &example("ecr-oidc.yml"),
        &[
            (
                "build-buildah",
                &[
                    ("context", "app".into()),
                    ("dockerfile", "app/Dockerfile".into()),
                    ("tls-verify", Value::Bool(false)),
                    ("tool-image", tool_image.as_str().into()),
                ],
            ),
            ("manifest", &[]),
        ],
        // trivy is not installed here: a job checks each platform's digest instead.
        &[(
            "scan",
            r#"
stage: deploy
needs: [manifest]
script:
  - test "$MULTIARCH_REF" = "$ECR_IMAGE@$MULTIARCH_DIGEST"
  - |
    for digest in $(env | sed -n 's/^MULTIARCH_DIGEST_[A-Z0-9_]*=//p'); do
      skopeo --insecure-policy inspect --raw --tls-verify=false --creds "AWS:$ECR_PASSWORD" "docker://$ECR_IMAGE@$digest" >/dev/null
      echo "scanned $ECR_IMAGE@$digest"
    done
"#,
        )],
    );
    let repo = project(&pipeline);
    let hosts = repo.path().join("hosts");
    let mut table = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    table.push_str(&format!("\n127.77.0.1 {ECR_HOST}\n"));
    std::fs::write(&hosts, table).unwrap();
    let mut variables: Vec<(&str, String)> = moto
        .env()
        .into_iter()
        .filter(|(k, _)| k != "AWS_REGION")
        .map(|(k, v)| (leak(k), v))
        .collect();
    variables.extend([
        // gitlab-ci-local ignores id_tokens: the token moto's STS takes, as GitLab would set it.
        (
            "GITLAB_OIDC_TOKEN",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6Z3JvdXAvYXBwIn0.c2ln".to_string(),
        ),
        (
            "MULTIARCH_CA_FILE",
            ecr.ca_file.as_ref().unwrap().display().to_string(),
        ),
        ("ECR_PASSWORD", ecr_password()),
    ]);
    let (ok, log) = run(repo.path(), &variables, Some(&hosts));
    assert!(ok, "{log}");
    assert_passed(
        &log,
        &[
            "multiarch-build: [amd64]",
            "multiarch-build: [arm64]",
            "manifest",
            "scan",
        ],
    );
    assert!(
        log.contains("assumed role with the GitLab OIDC token"),
        "{log}"
    );
    assert_eq!(log.matches("scanned ").count(), 2, "{log}");
    for secret in [ecr_password().as_str(), "c2ln"] {
        let shown: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains(secret) && !l.contains("ECR_PASSWORD") && !l.contains("--variable")
            })
            .collect();
        assert!(shown.is_empty(), "a secret in the log: {shown:?}");
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn buildah(args: &[&str]) -> String {
    let out = Command::new("buildah")
        .env("STORAGE_DRIVER", "vfs")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
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
    for (file, jobs) in [
        (
            "gitlab-registry.yml",
            &[
                "multiarch-build: [amd64]",
                "multiarch-build: [arm64]",
                "manifest",
            ][..],
        ),
        (
            "ecr-oidc.yml",
            &[
                "multiarch-build: [amd64]",
                "multiarch-build: [arm64]",
                "manifest",
                "scan",
            ][..],
        ),
        (
            "kaniko.yml",
            &[
                "multiarch-build: [amd64]",
                "multiarch-build: [arm64]",
                "manifest",
            ][..],
        ),
    ] {
        let repo = project(&local_components(&example(file)));
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
