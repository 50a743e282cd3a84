//! The zero-stage pipeline, run for real by gitlab-ci-local on the host shell: the buildah
//! component with `publish-if-complete` and no manifest job. The build jobs push with buildah and
//! run the multiarch binary out of a tool image (this build's binary) after their push; the one
//! that completes the set publishes both images, and a later job reads the report. When an arch
//! job fails, nothing is published; a retry of that one job publishes, with no other job run
//! again. gitlab-ci-local runs the two build jobs at once, so either may be the one that publishes
//! (or both, the same bytes). Against a registry with a self-signed certificate the publishing
//! step needs MULTIARCH_CA_FILE (`tls-verify: false` reaches buildah only).

use serde_norway::Value;

use crate::support::glci::{
    adapt, arguments, assert_passed, builds_of, command, commit, example, head, log_of, project,
    ran, run, tool_image, write,
};
use crate::support::{sha256, Options, Registry};

const BUILDS: &[&str] = &["multiarch-build: [amd64]", "multiarch-build: [arm64]"];

/// A later job needing both build jobs: it receives both reports, and GitLab keeps one value per
/// name. Only the job that published says `MULTIARCH_PUBLISHED=true`, so it holds whatever the
/// order.
const VERIFY: &str = r#"
stage: deploy
needs: [multiarch-build]
script:
  - test "$MULTIARCH_PUBLISHED" = true
  - test "$MULTIARCH_REF" = "$TEST_IMAGE@$MULTIARCH_DIGEST"
  - test "${MULTIARCH_SOURCE_LINUX_AMD64#*@}" = "$MULTIARCH_DIGEST_LINUX_AMD64"
  - test "${MULTIARCH_SOURCE_LINUX_ARM64#*@}" = "$MULTIARCH_DIGEST_LINUX_ARM64"
  - echo "verified $MULTIARCH_REF"
"#;

/// The documented zero-stage pipeline with inputs that build the test app over plain HTTP with
/// this build's binary, one repository for builds and index, `build_args`, and `verify`.
fn pipeline(tool: &str, build_args: &str) -> String {
    adapt(
        &example("zero-stage.yml"),
        &[(
            "build-buildah",
            &[
                ("context", "app".into()),
                ("registry-login", "none".into()),
                ("tls-verify", Value::Bool(false)),
                ("tool-image", tool.into()),
                ("build-args", build_args.into()),
            ],
        )],
        &[
            ("verify", VERIFY),
            ("variables", "MULTIARCH_IMAGE: $TEST_IMAGE"),
        ],
    )
}

fn variables(reg: &Registry) -> Vec<(&'static str, String)> {
    vec![
        ("TEST_IMAGE", reg.repo("group/app")),
        ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
    ]
}

/// Checks that `latest` holds this commit's two builds, as the per-arch tags hold them; the
/// index's digest.
fn published_both(reg: &Registry, repo: &std::path::Path) -> String {
    let raw = reg.raw("group/app:latest").expect("a build job published");
    builds_of(reg, &raw);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["annotations"]["org.opencontainers.image.revision"],
        head(repo).as_str()
    );
    sha256(&raw)
}

#[test]
fn build_jobs_alone_publish_both_images() {
    let reg = Registry::start();
    let tool = tool_image(&reg);
    let repo = project(&pipeline(&tool, ""));
    let (ok, log) = run(repo.path(), &variables(&reg));
    assert!(ok, "{log}");
    assert_passed(&log, &[BUILDS, &["verify"]].concat());
    let digest = published_both(&reg, repo.path());
    assert!(
        log.contains(&format!("verified {}@{digest}", reg.repo("group/app"))),
        "{log}"
    );
    assert!(!ran(&log, "manifest"), "no manifest job ran");
}

#[test]
fn a_failed_arch_job_publishes_nothing_and_its_retry_publishes() {
    let reg = Registry::start();
    let tool = tool_image(&reg);
    let repo = project(&pipeline(&tool, "FLAKY=${FLAKY:-none}"));
    // A flaky arm64 runner, played by a build argument: with FLAKY=arm64 the arm64 build copies
    // a file that is not there and fails; amd64 builds and pushes.
    write(
        repo.path(),
        "app/Dockerfile",
        "FROM scratch\nARG TARGETARCH\nARG FLAKY\nCOPY ok-${TARGETARCH}-${FLAKY}.txt /ok.txt\n",
    );
    for file in ["ok-amd64-none", "ok-arm64-none", "ok-amd64-arm64"] {
        write(repo.path(), &format!("app/{file}.txt"), "ok\n");
    }
    commit(repo.path(), "a flaky arm64 runner");
    let mut flaky = variables(&reg);
    flaky.push(("FLAKY", "arm64".to_string()));
    let (ok, log) = run(repo.path(), &flaky);
    assert!(!ok, "{log}");
    assert_passed(&log, &BUILDS[..1]);
    assert!(
        log.contains("nothing was published (--if-complete)") && log.contains("linux/arm64"),
        "{log}"
    );
    assert!(reg.raw("group/app:latest").is_none(), "nothing published");
    let amd = reg.raw("group/app:latest-amd64").unwrap();

    // The runner recovers; only the failed job runs again, on the same commit.
    let mut args = arguments(&variables(&reg));
    args.push(BUILDS[1].to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = command(repo.path(), &args).output().unwrap();
    let log = log_of(&out);
    assert!(out.status.success(), "{log}");
    assert_passed(&log, &BUILDS[1..]);
    published_both(&reg, repo.path());
    assert_eq!(
        reg.raw("group/app:latest-amd64").unwrap(),
        amd,
        "amd64 was not built again"
    );
}

/// `tls-verify: false` reaches buildah only: the publishing step verifies certificates, so against
/// a registry with a self-signed certificate the job fails before it builds (exit 2, naming
/// MULTIARCH_CA_FILE) until MULTIARCH_CA_FILE names the registry's CA; then it publishes. A
/// project's MULTIARCH_DOTENV is not the component's report: a notice says so, and the report
/// still reaches the later job.
#[test]
fn a_self_signed_registry_needs_the_ca_file_and_the_report_stays_the_components() {
    let reg = Registry::start_with(Options {
        tls: true,
        ..Default::default()
    });
    let tool = tool_image(&reg);
    let repo = project(&pipeline(&tool, ""));
    let image = ("TEST_IMAGE", reg.repo("group/app"));
    let (ok, log) = run(repo.path(), std::slice::from_ref(&image));
    assert!(!ok, "{log}");
    assert!(
        log.contains("FAIL 2") && log.contains("set MULTIARCH_CA_FILE to the registry's CA"),
        "{log}"
    );
    assert!(
        reg.raw("group/app:latest-amd64").is_none() && reg.raw("group/app:latest-arm64").is_none(),
        "it failed before building"
    );

    let ca_file = reg.ca_file.as_ref().unwrap().display().to_string();
    let (ok, log) = run(
        repo.path(),
        &[
            image,
            ("MULTIARCH_CA_FILE", ca_file),
            ("MULTIARCH_DOTENV", "custom.env".into()),
        ],
    );
    assert!(ok, "{log}");
    assert_passed(&log, &[BUILDS, &["verify"]].concat());
    published_both(&reg, repo.path());
    assert!(
        log.contains("notice: MULTIARCH_DOTENV=custom.env is not used here"),
        "{log}"
    );
}
