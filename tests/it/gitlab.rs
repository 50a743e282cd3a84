//! The documented pipelines, run for real by gitlab-ci-local on the host shell in throwaway git
//! repositories: the components (included by `component:` as users do, pointed at this checkout)
//! build with buildah and push to real registries, the manifest job runs the freshly built binary,
//! and a later job checks what it received through the dotenv report against the registry.
//! gitlab-ci-local ignores `id_tokens`, `resource_group`, `retry` and `timeout`; the id_token is
//! handed in as a variable, and the ECR registry runs under its ECR host name inside a mount
//! namespace whose /etc/hosts maps it to loopback.

use crate::support::fixtures::{push_built, Kind};
use crate::support::glci::{
    adapt, assert_passed, builds_of, children, example, head, jobs_listed, kaniko_shim, list,
    local_components, project, run, run_in, tool_image,
};
use crate::support::moto::{ecr_password, Moto};
use crate::support::names::hosts_file;
use crate::support::{sha256, Options, Registry};
use serde_json::Value as Json;
use serde_norway::Value;

/// Inputs that let the buildah component build the test app (its Dockerfile found in the context,
/// not the project root's) and push over plain HTTP.
fn local_build() -> Vec<(&'static str, Value)> {
    vec![
        ("context", "app".into()),
        ("registry-login", "none".into()),
        ("tls-verify", Value::Bool(false)),
        ("build-args", "NOTE=two words\n".into()),
    ]
}

/// The config of `reference` as skopeo reads it.
fn config_of(reg: &Registry, reference: &str) -> Json {
    let out = reg.skopeo(&["inspect", "--config", &format!("docker://{reference}")]);
    serde_json::from_slice(&out.stdout).unwrap()
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
        &[("build-buildah", &local_build()), ("manifest", &[])],
        &[
            ("verify", VERIFY),
            // A project's own variables reach the components' jobs (no input shadows them): one
            // MULTIARCH_IMAGE for the builds and the manifest job. A MULTIARCH_DOTENV of its own is
            // not where the component's report goes: a notice says so, later jobs still get it.
            (
                "variables",
                "MULTIARCH_ANNOTATIONS: org.opencontainers.image.title=from-the-project\nMULTIARCH_IMAGE: $TEST_IMAGE\nMULTIARCH_DOTENV: custom.env",
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
    );
    assert!(ok, "{log}");
    assert_passed(&log, EVERY_JOB);
    assert!(
        log.contains("notice: MULTIARCH_DOTENV=custom.env is not used here"),
        "{log}"
    );
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
    for (arch, digest) in &builds_of(&reg, &raw) {
        assert!(
            !stale.contains(digest),
            "{arch}: the stale image was published"
        );
        // Built from the context's Dockerfile with the build-args line that has a space, and
        // labelled with the commit.
        let config = config_of(&reg, &format!("{image}@{digest}"));
        let labels = &config["config"]["Labels"];
        assert_eq!(labels["note"], "two words");
        assert!(labels.get("built.from").is_none(), "{labels}");
        assert_eq!(
            labels["org.opencontainers.image.revision"],
            head(repo.path()).as_str()
        );
    }
}

/// MULTIARCH_IMAGE, MULTIARCH_TAGS (semver), MULTIARCH_PLATFORMS and MULTIARCH_SOURCE_TEMPLATE at
/// the top of a project give the build jobs and the manifest job one repository, one platform
/// list and the same tags, with no input set: a platform left out gets no build job at all. The
/// builds log in to the project's registry (htpasswd, plain HTTP) with tls-verify false.
#[test]
fn top_level_variables_give_the_builds_and_the_manifest_one_repository_and_the_same_tags() {
    let reg = Registry::start_with(Options {
        user: Some(("ci-user".into(), "ci-password".into())),
        ..Default::default()
    });
    let image = reg.repo("group/app");
    let pipeline = adapt(
        &example("gitlab-registry.yml"),
        &[(
            "build-buildah",
            &[
                ("context", "app".into()),
                ("tls-verify", Value::Bool(false)),
            ],
        )],
        &[
            (
                "variables",
                r#"
MULTIARCH_IMAGE: $TEST_IMAGE
MULTIARCH_TAGS: semver
MULTIARCH_PLATFORMS: linux/amd64
MULTIARCH_SOURCE_TEMPLATE: "{image}/{os}-{arch}{variant}:{tag}"
"#,
            ),
            (
                "verify",
                r#"
stage: deploy
needs: [manifest, {job: multiarch-build, optional: true}]
script:
  - test "$MULTIARCH_REF" = "$TEST_IMAGE@$MULTIARCH_DIGEST"
  - test "$MULTIARCH_SOURCE_LINUX_AMD64" = "$TEST_IMAGE/linux-amd64@$MULTIARCH_DIGEST_LINUX_AMD64"
  - test -z "${MULTIARCH_SOURCE_LINUX_ARM64:-}"
  - echo "verified $MULTIARCH_REF"
"#,
            ),
        ],
    );
    let repo = project(&pipeline);
    let variables = [
        ("TEST_IMAGE", image.clone()),
        ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
        ("CI_REGISTRY", reg.host.clone()),
        ("CI_REGISTRY_USER", "ci-user".to_string()),
        ("CI_REGISTRY_PASSWORD", "ci-password".to_string()),
        ("CI_COMMIT_TAG", "v1.4.2".to_string()),
    ];
    let (_, listing) = list(repo.path(), &variables);
    assert_eq!(
        jobs_listed(&listing),
        ["multiarch-build: [amd64]", "manifest", "verify"],
        "no arm64 build job for a linux/amd64 publication:\n{listing}"
    );
    let (ok, log) = run(repo.path(), &variables);
    assert!(ok, "{log}");
    assert_passed(&log, &["multiarch-build: [amd64]", "manifest", "verify"]);
    assert!(
        log.contains("Login Succeeded"),
        "buildah login over plain HTTP:\n{log}"
    );
    let built = reg
        .raw("group/app/linux-amd64:1.4.2")
        .expect("the build pushed where MULTIARCH_SOURCE_TEMPLATE says, with the version");
    let raw = reg
        .raw("group/app:1.4.2")
        .expect("the version was published");
    assert_eq!(
        children(&raw),
        [("amd64".to_string(), sha256(&built))],
        "one repository, one platform, the build's own image"
    );
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
    let shim = kaniko_shim(repo.path());
    let docker_config = tempfile::tempdir().unwrap();
    let (ok, log) = run(
        repo.path(),
        &[
            ("TEST_IMAGE", image.clone()),
            ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
            ("KANIKO_EXECUTOR", shim.display().to_string()),
            ("DOCKER_CONFIG", docker_config.path().display().to_string()),
        ],
    );
    assert!(ok, "{log}");
    assert_passed(&log, EVERY_JOB);
    let (_, digest) = children(&reg.raw("group/app:latest").unwrap()).remove(0);
    let config = config_of(&reg, &format!("{image}@{digest}"));
    assert_eq!(config["config"]["Labels"]["org.example.flow"], "kaniko");
    assert!(
        config["config"]["Labels"].get("built.from").is_none(),
        "the Dockerfile in the context was built, not the project root's"
    );
}

/// A kaniko stand-in that keeps the config.json it is given (and the directory it is in) under
/// `$SEEN`, named for the job, and writes a digest file as kaniko does after its push.
const RECORDING_EXECUTOR: &str = r#"#!/bin/sh
name=$(printf %s "$CI_JOB_NAME" | tr -c 'A-Za-z0-9' _)
cp "$DOCKER_CONFIG/config.json" "$SEEN/$name.json"
printf %s "$DOCKER_CONFIG" > "$SEEN/$name.dir"
while [ $# -gt 0 ]; do [ "$1" != --digest-file ] || printf 'sha256:%064d' 0 > "$2"; shift; done
"#;

/// build-kaniko logs in by adding its entry to a copy of the project's docker config: the
/// project's auths (a private base image's registry), credHelpers, credsStore and other keys stay,
/// its own file is left as it wrote it, and the copy is gone when the job ends. Both logins, one
/// of them under busybox awk (kaniko's debug image has only busybox).
#[test]
fn kaniko_adds_its_login_to_a_copy_of_the_projects_docker_config() {
    const ECR_HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    const PROJECT: &str = r#"{"auths":{"private.example.com":{"auth":"dXNlcjpwYXNz"},"reg.example.com":{"auth":"b2xk"}},"credHelpers":{"gcr.io":"gcr"},"credsStore":"pass","experimental":"enabled"}"#;
    let kaniko = |job: &str, login: &str, image: &str| {
        format!(
            "  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build-kaniko@$CI_COMMIT_SHA\n    inputs:\n      job-name: {job}\n      archs: [amd64]\n      context: app\n      registry-login: {login}\n      image: {image}\n"
        )
    };
    let pipeline = format!(
        "include:\n{}{}default:\n  before_script:\n    - case \"$CI_JOB_NAME\" in kaniko-ecr*) export PATH=\"$BUSYBOX_AWK:$PATH\" ;; esac\n    - mkdir -p \"$DOCKER_CONFIG\" && printf '%s' '{PROJECT}' > \"$DOCKER_CONFIG/config.json\"\n",
        kaniko("kaniko-gitlab", "gitlab", "reg.example.com/group/app"),
        kaniko("kaniko-ecr", "ecr", &format!("{ECR_HOST}/app")),
    );
    let repo = project(&pipeline);
    let bin = repo.path().join("kaniko-executor");
    std::fs::write(&bin, RECORDING_EXECUTOR).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let busybox = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        crate::support::require("busybox", "apt-get install busybox"),
        busybox.path().join("awk"),
    )
    .unwrap();
    let (docker_config, seen) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ok, log) = run(
        repo.path(),
        &[
            ("KANIKO_EXECUTOR", bin.display().to_string()),
            ("DOCKER_CONFIG", docker_config.path().display().to_string()),
            ("SEEN", seen.path().display().to_string()),
            ("BUSYBOX_AWK", busybox.path().display().to_string()),
            ("CI_REGISTRY", "reg.example.com".into()),
            ("CI_REGISTRY_USER", "gitlab-ci-token".into()),
            ("CI_REGISTRY_PASSWORD", "job-token-secret".into()),
        ],
    );
    assert!(ok, "{log}");
    assert_passed(&log, &["kaniko-gitlab: [amd64]", "kaniko-ecr: [amd64]"]);
    // "gitlab-ci-token:job-token-secret"
    let ours = "Z2l0bGFiLWNpLXRva2VuOmpvYi10b2tlbi1zZWNyZXQ=";
    assert!(
        !log.contains("job-token-secret") && !log.contains(ours),
        "{log}"
    );
    let project_file: Json = serde_json::from_str(PROJECT).unwrap();
    let seen_by = |job: &str| -> Json {
        let dir = std::fs::read_to_string(seen.path().join(format!("{job}.dir"))).unwrap();
        assert!(
            !std::path::Path::new(&dir).exists(),
            "{job}: the job's config ({dir}) is removed when the job ends"
        );
        let text = std::fs::read_to_string(seen.path().join(format!("{job}.json"))).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{job}: {e}: {text}"))
    };

    // gitlab: the job token for CI_REGISTRY replaces the project's entry for it; the credsStore
    // would answer for every host without a helper, so CI_REGISTRY gets an empty one (the file).
    let mut expected = project_file.clone();
    expected["auths"]["reg.example.com"] = serde_json::json!({ "auth": ours });
    expected["credHelpers"]["reg.example.com"] = "".into();
    assert_eq!(seen_by("kaniko_gitlab___amd64_"), expected);

    // ecr: kaniko's ECR helper for the ECR host, everything else as the project wrote it.
    let mut expected = project_file.clone();
    expected["credHelpers"][ECR_HOST] = "ecr-login".into();
    assert_eq!(seen_by("kaniko_ecr___amd64_"), expected);

    let files: Vec<_> = std::fs::read_dir(docker_config.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        files,
        ["config.json"],
        "nothing added to the project's directory"
    );
    assert_eq!(
        std::fs::read_to_string(docker_config.path().join("config.json")).unwrap(),
        PROJECT,
        "the project's file is never written"
    );
}

#[test]
fn ecr_pipeline_with_gitlab_oidc_runs_against_moto_and_a_registry_under_its_ecr_name() {
    const ECR_HOST: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let moto = Moto::start();
    // ECR does not create repositories on push: the project's is made beforehand.
    moto.ecr_in(
        "eu-west-1",
        "CreateRepository",
        r#"{"repositoryName":"app"}"#,
    );
    let ecr = Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        tls: true,
        listen: Some(("127.77.0.1:443".into(), ECR_HOST.into())),
        ..Default::default()
    });
    // The multiarch image the build jobs take their `multiarch login` from: this build's binary.
    let tools = Registry::start();
    let tool_image = tool_image(&tools);

    let pipeline = adapt(
        &example("ecr-oidc.yml"),
        &[
            (
                "build-buildah",
                &[
                    ("context", "app".into()),
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
    let hosts = hosts_file(repo.path(), "127.77.0.1", ECR_HOST);
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
        // A release: the builds and the manifest job read the pipeline's MULTIARCH_TAGS=semver.
        ("CI_COMMIT_TAG", "v1.4.2".to_string()),
    ]);
    let (ok, log) = run_in(repo.path(), &variables, Some(&hosts));
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
    let index = ecr.raw("app:1.4.2").expect("the version was published");
    for (arch, digest) in children(&index) {
        let built = ecr.raw(&format!("app:1.4.2-{arch}")).unwrap();
        assert_eq!(sha256(&built), digest, "{arch}: built as 1.4.2-{arch}");
    }
    for tag in ["1.4", "1", "latest"] {
        assert_eq!(ecr.raw(&format!("app:{tag}")).unwrap(), index, "{tag}");
    }
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

/// Every pipeline the README shows resolves its components (inputs, types and options checked by
/// gitlab-ci-local's include and interpolation) into the jobs users expect; in a merge request
/// pipeline the components' jobs are left out (no duplicate pipelines; for a workflow that runs
/// merge request pipelines instead, see the next test).
#[test]
fn every_documented_pipeline_resolves_into_its_jobs_and_none_in_merge_request_pipelines() {
    let builds = ["multiarch-build: [amd64]", "multiarch-build: [arm64]"];
    for (file, jobs, own) in [
        (
            "gitlab-registry.yml",
            &[&builds[..], &["manifest"]].concat(),
            &[][..],
        ),
        (
            "ecr-oidc.yml",
            &[&builds[..], &["manifest", "scan"]].concat(),
            &["scan"][..],
        ),
        (
            "kaniko.yml",
            &[&builds[..], &["manifest"]].concat(),
            &[][..],
        ),
        ("zero-stage.yml", &builds[..].to_vec(), &[][..]),
        (
            "own-builds.yml",
            &["build-amd64", "build-arm64", "manifest"][..].to_vec(),
            &["build-amd64", "build-arm64"][..],
        ),
    ] {
        let repo = project(&local_components(&example(file)));
        let (ok, listing) = list(repo.path(), &[]);
        assert!(ok, "{file}:\n{listing}");
        assert_eq!(jobs_listed(&listing), *jobs, "{file}:\n{listing}");
        // The project's own jobs are its business; the components' are out of MR pipelines.
        let (ok, listing) = list(
            repo.path(),
            &[("CI_PIPELINE_SOURCE", "merge_request_event".to_string())],
        );
        assert!(ok, "{file}:\n{listing}");
        let listed = jobs_listed(&listing);
        assert!(
            listed.iter().all(|job| own.contains(&job.as_str())),
            "{file}: component jobs in a merge request pipeline:\n{listing}"
        );
    }
}

/// The README's pipeline for a workflow that runs merge request pipelines instead of branch
/// pipelines while a merge request is open: with its `rules` the components' jobs are in the merge
/// request pipeline as the project's rule-less `test` is, and in branch pipelines; with the
/// default rules the merge request pipeline would hold `test` alone (nothing built or published).
/// gitlab-ci-local's listing does not apply `workflow:rules`: which pipeline exists is GitLab's.
#[test]
fn merge_request_workflow_pipeline_runs_the_components_in_merge_request_pipelines() {
    let builds = ["multiarch-build: [amd64]", "multiarch-build: [arm64]"];
    let every_job = [&builds[..], &["test", "manifest"]].concat();
    let documented = local_components(&example("merge-requests.yml"));
    let merge_request = [("CI_PIPELINE_SOURCE", "merge_request_event".to_string())];
    let repo = project(&documented);
    for variables in [&merge_request[..], &[]] {
        let (ok, listing) = list(repo.path(), variables);
        assert!(ok, "{listing}");
        assert_eq!(
            jobs_listed(&listing),
            every_job,
            "{variables:?}:\n{listing}"
        );
    }
    let defaults = documented
        .replace(
            "    inputs:\n      rules:\n        - when: on_success\n",
            "",
        )
        .replace("      rules:\n        - when: on_success\n", "");
    assert!(!defaults.contains("rules:\n        -"), "{defaults}");
    let repo = project(&defaults);
    let (ok, listing) = list(repo.path(), &merge_request);
    assert!(ok, "{listing}");
    assert_eq!(jobs_listed(&listing), ["test"], "{listing}");
}
