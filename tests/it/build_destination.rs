//! The build components push where `multiarch push` looks: for each case (a matrix entry, inputs,
//! the project's MULTIARCH_* and GitLab's variables) the components' own shell is run, under
//! dash and under busybox sh (kaniko's debug image has only busybox), and what it decides — skip
//! the platform, or push to this reference and hand this digest over under this variable — is
//! held against what the built binary plans for the same variables against a real registry
//! (nothing there, so it names every source it looked for and exits 3). And what they build: the
//! Dockerfile in the context.

use crate::support;

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::template::{component, destination_block};
use crate::support::{multiarch, require, Registry};
use serde_norway::Value;

/// One build job: its ARCH, the component's inputs and the job's variables (`REGISTRY` stands for the test registry).
struct Case {
    arch: &'static str,
    inputs: &'static [(&'static str, &'static str)],
    env: &'static [(&'static str, &'static str)],
}

const MAIN: &[(&str, &str)] = &[
    ("CI_DEFAULT_BRANCH", "main"),
    ("CI_COMMIT_BRANCH", "main"),
    ("CI_COMMIT_REF_SLUG", "main"),
    ("CI_REGISTRY_IMAGE", "REGISTRY/group/app"),
];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // The GitLab defaults: latest on the default branch, the ref slug elsewhere, the git tag.
    Case { arch: "amd64", inputs: &[], env: &[] },
    Case { arch: "arm/v7", inputs: &[], env: &[("CI_COMMIT_BRANCH", "feature/x"), ("CI_COMMIT_REF_SLUG", "feature-x")] },
    Case { arch: "arm64", inputs: &[], env: &[("CI_COMMIT_BRANCH", ""), ("CI_COMMIT_TAG", "v1.4.2"), ("CI_COMMIT_REF_SLUG", "v1.4.2")] },
    // MULTIARCH_IMAGE (its first repository) beats CI_REGISTRY_IMAGE; the input beats both.
    Case { arch: "arm64", inputs: &[], env: &[("MULTIARCH_IMAGE", " REGISTRY/one/app , REGISTRY/two/app")] },
    Case { arch: "amd64", inputs: &[("image", "REGISTRY/input/app")], env: &[("MULTIARCH_IMAGE", "REGISTRY/var/app")] },
    // MULTIARCH_TAGS: the first tag; semver (any case) on a release, a pre-release, build
    // metadata, a tag that is not semver, a branch; the tag input beats it.
    Case { arch: "arm64", inputs: &[], env: &[("MULTIARCH_TAGS", " 1.0 ,latest")] },
    Case { arch: "arm64", inputs: &[], env: &[("MULTIARCH_TAGS", "semver"), ("CI_COMMIT_TAG", "v1.4.2")] },
    Case { arch: "amd64", inputs: &[], env: &[("MULTIARCH_TAGS", "SemVer"), ("CI_COMMIT_TAG", "1.2.3+build.7")] },
    Case { arch: "amd64", inputs: &[], env: &[("MULTIARCH_TAGS", "semver"), ("CI_COMMIT_TAG", "v2.0.0-rc.1")] },
    Case { arch: "amd64", inputs: &[], env: &[("MULTIARCH_TAGS", "semver"), ("CI_COMMIT_TAG", "release-42")] },
    Case { arch: "amd64", inputs: &[], env: &[("MULTIARCH_TAGS", "semver"), ("CI_COMMIT_BRANCH", "feature/x"), ("CI_COMMIT_REF_SLUG", "feature-x")] },
    Case { arch: "amd64", inputs: &[("tag", "semver")], env: &[("CI_COMMIT_TAG", "v3.1.0")] },
    Case { arch: "amd64", inputs: &[("tag", "v9")], env: &[("MULTIARCH_TAGS", "other")] },
    // The source template, from the variable or the input, every placeholder, no tag at all.
    Case { arch: "arm/v7", inputs: &[], env: &[("MULTIARCH_SOURCE_TEMPLATE", "{image}/{os}-{arch}:{tag}{variant}")] },
    Case { arch: "arm64", inputs: &[("source-template", "{image}-{arch}")], env: &[("MULTIARCH_SOURCE_TEMPLATE", "{image}:x")] },
    Case { arch: "arm/v6", inputs: &[], env: &[("MULTIARCH_SOURCE_TEMPLATE", "REGISTRY/mirror/{arch}{variant}:{tag}")] },
    // Architectures as people write them, normalised as multiarch normalises platforms.
    Case { arch: "x86_64", inputs: &[], env: &[] },
    Case { arch: "aarch64", inputs: &[], env: &[] },
    Case { arch: "arm", inputs: &[], env: &[] },
    Case { arch: "arm64/v8", inputs: &[], env: &[] },
    Case { arch: "amd64/v3", inputs: &[], env: &[] },
    Case { arch: "amd64/v1", inputs: &[], env: &[] },
    // MULTIARCH_PLATFORMS: an entry it lists is built, one it leaves out is skipped.
    Case { arch: "aarch64", inputs: &[], env: &[("MULTIARCH_PLATFORMS", "linux/arm64")] },
    Case { arch: "arm", inputs: &[], env: &[("MULTIARCH_PLATFORMS", "linux/amd64, linux/arm/v7")] },
    Case { arch: "arm64/v8", inputs: &[], env: &[("MULTIARCH_PLATFORMS", "LINUX/AARCH64")] },
    Case { arch: "386", inputs: &[], env: &[("MULTIARCH_PLATFORMS", "linux/i386,linux/amd64")] },
    Case { arch: "riscv64", inputs: &[], env: &[("MULTIARCH_PLATFORMS", "linux/amd64,\nlinux/riscv64")] },
    Case { arch: "arm64", inputs: &[], env: &[("MULTIARCH_PLATFORMS", "linux/amd64")] },
    Case { arch: "amd64/v3", inputs: &[], env: &[("MULTIARCH_PLATFORMS", "linux/amd64")] },
    Case { arch: "arm/v6", inputs: &[], env: &[("MULTIARCH_PLATFORMS", "linux/arm64,linux/arm/v7")] },
];

/// What the build component's shell decided.
#[derive(Debug, PartialEq)]
enum Decision {
    Skip,
    Push {
        platform: String,
        dest: String,
        repo: String,
        handoff: String,
    },
}

/// Runs the destination block of `name` under `shell` for `case`; `REGISTRY` stands for `registry`.
fn decide(name: &str, shell: &[&str], case: &Case, registry: &str) -> Decision {
    let inputs: Vec<(&str, Value)> = case
        .inputs
        .iter()
        .map(|(k, v)| (*k, Value::from(v.replace("REGISTRY", registry))))
        .collect();
    let script = format!(
        "{}printf 'platform=%s\\ndest=%s\\nrepo=%s\\nhandoff=%s\\n' \"$want\" \"$dest\" \"$repo\" \"$handoff\"\n",
        destination_block(&component(name), &inputs)
    );
    let out = Command::new(shell[0])
        .args(&shell[1..])
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ARCH", case.arch)
        .envs(environment(case, registry))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{name} under {shell:?}, {}: {}{stdout}",
        case.arch,
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.starts_with("skipped: ") {
        assert!(
            stdout.contains("the build component's archs input"),
            "{stdout}"
        );
        return Decision::Skip;
    }
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .to_string()
    };
    Decision::Push {
        platform: field("platform"),
        dest: field("dest"),
        repo: field("repo"),
        handoff: field("handoff"),
    }
}

/// GitLab's variables on the default branch, with the case's on top (`REGISTRY` stands for the test registry).
fn environment(case: &Case, registry: &str) -> BTreeMap<String, String> {
    MAIN.iter()
        .chain(case.env)
        .map(|(k, v)| (k.to_string(), v.replace("REGISTRY", registry)))
        .collect()
}

/// `multiarch plan` for the same job, with that digest hand-off when `handoff` is given
/// (variable, value), and for the build's own platform alone when `alone`; (exit code, stderr).
fn plan(
    case: &Case,
    registry: &Registry,
    handoff: Option<(&str, &str)>,
    alone: bool,
) -> (i32, String) {
    let mut env = environment(case, &registry.host);
    env.insert(
        "MULTIARCH_INSECURE_REGISTRIES".into(),
        registry.host.clone(),
    );
    if let Some((k, v)) = handoff {
        env.insert(k.into(), v.into());
    }
    let work = tempfile::tempdir().unwrap();
    let mut cmd = multiarch(&env, work.path());
    cmd.args(["plan", "--timeout", "0"]);
    // The build component's inputs are the manifest component's flags.
    for (input, value) in case.inputs {
        let flag = match *input {
            "image" => "--image",
            "tag" => "--tags",
            "source-template" => "--source-template",
            other => panic!("no flag for the input {other}"),
        };
        cmd.args([flag, &value.replace("REGISTRY", &registry.host)]);
    }
    // Without MULTIARCH_PLATFORMS the build job builds its own platform, whatever the list.
    if alone || !case.env.iter().any(|(k, _)| *k == "MULTIARCH_PLATFORMS") {
        cmd.args(["--platforms", &format!("linux/{}", case.arch)]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The platforms of the plan line and the references named missing, in platform order.
fn planned(stderr: &str) -> (Vec<String>, Vec<String>) {
    let platforms = stderr
        .lines()
        .find_map(|l| l.split(" platforms=").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no plan line: {stderr}"))
        .split(',')
        .map(str::to_string)
        .collect();
    let missing = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| {
            // A tag that is missing (semver: named by the version), or a digest a build job
            // handed over that is not there.
            l.strip_suffix(": missing")
                .or_else(|| {
                    l.split_once(": missing (named by the version ")
                        .map(|(s, _)| s)
                })
                .or_else(|| {
                    l.split_once(": handed over by ")
                        .filter(|(_, why)| why.ends_with("but not in the repository"))
                        .map(|(source, _)| source)
                })
        })
        .map(str::to_string)
        .collect();
    (platforms, missing)
}

#[test]
fn build_components_push_where_multiarch_looks_and_skip_what_it_does_not_publish() {
    require("busybox", "apt-get install busybox-static");
    let registry = Registry::start();
    let shells: [&[&str]; 2] = [&["sh"], &["busybox", "sh"]];
    for case in CASES {
        let decisions: Vec<Decision> = ["build-buildah", "build-kaniko"]
            .iter()
            .flat_map(|name| shells.iter().map(move |shell| (name, shell)))
            .map(|(name, shell)| decide(name, shell, case, &registry.host))
            .collect();
        assert!(
            decisions.windows(2).all(|w| w[0] == w[1]),
            "{}: the components or the shells disagree: {decisions:?}",
            case.arch
        );
        // The build's platform as multiarch normalises it, and what multiarch publishes.
        let (code, stderr) = plan(case, &registry, None, true);
        assert_eq!(code, 3, "{}: {stderr}", case.arch);
        let own = planned(&stderr).0.remove(0);
        let (code, stderr) = plan(case, &registry, None, false);
        assert_eq!(code, 3, "{}: {stderr}", case.arch);
        let (platforms, missing) = planned(&stderr);
        let at = platforms.iter().position(|p| *p == own);
        match (&decisions[0], at) {
            (Decision::Skip, None) => {}
            (Decision::Skip, Some(_)) => {
                panic!("{}: skipped, but multiarch publishes {own}", case.arch)
            }
            (Decision::Push { .. }, None) => panic!(
                "{}: pushed, but multiarch publishes only {platforms:?}",
                case.arch
            ),
            (
                Decision::Push {
                    platform,
                    dest,
                    repo,
                    handoff,
                },
                Some(i),
            ) => {
                assert_eq!(platform, &own, "{}", case.arch);
                assert_eq!(&missing[i], dest, "{}: {stderr}", case.arch);
                // The hand-off names the platform multiarch expects, in the repository pushed to.
                let pinned = format!("{repo}@sha256:{}", "ab".repeat(32));
                let (code, stderr) = plan(case, &registry, Some((handoff, &pinned)), false);
                assert_eq!(code, 3, "{}: {handoff}: {stderr}", case.arch);
                assert!(
                    planned(&stderr).1.contains(&pinned),
                    "{}: {handoff} is not the source of {own}: {stderr}",
                    case.arch
                );
            }
        }
    }
}

/// A source template the binary refuses stops the build too, before anything is built: an
/// unknown placeholder, a brace left open, a digest where a tag belongs.
#[test]
fn build_components_refuse_a_source_template_that_names_no_tag() {
    require("busybox", "apt-get install busybox-static");
    for template in [
        "{image}:{tag}-{cpu}",
        "{image}:{tag-{arch}",
        "{image}@sha256:{tag}",
    ] {
        for name in ["build-buildah", "build-kaniko"] {
            for shell in [&["sh"][..], &["busybox", "sh"]] {
                let out = Command::new(shell[0])
                    .args(&shell[1..])
                    .arg("-c")
                    .arg(destination_block(&component(name), &[]))
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("ARCH", "amd64")
                    .env("CI_REGISTRY_IMAGE", "registry.example.com/group/app")
                    .env("CI_COMMIT_REF_SLUG", "main")
                    .env("MULTIARCH_SOURCE_TEMPLATE", template)
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{name} {template}: {stderr}");
                assert!(
                    stderr.starts_with(&format!("error: MULTIARCH_SOURCE_TEMPLATE ({template})")),
                    "{name} {template}: {stderr}"
                );
            }
        }
    }
}

/// The whole script of a build component with `given` inputs (registry login off).
fn script(name: &str, given: &[(&str, Value)]) -> String {
    let mut inputs = vec![("registry-login", Value::from("none"))];
    inputs.extend(given.iter().cloned());
    let body = support::template::render(&component(name), &inputs);
    body["multiarch-build"]["script"][0]
        .as_str()
        .unwrap()
        .to_string()
}

/// Both builders find the `dockerfile` in the `context` (`context: app` builds `app/Dockerfile`,
/// never a Dockerfile at the project root), and a path that is not there stops the job before
/// anything is built, saying where it looked. A stand-in builder prints what it was given.
#[test]
fn build_components_find_the_dockerfile_in_the_context() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join("app")).unwrap();
    std::fs::write(project.path().join("app/Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(project.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let bin = tempfile::tempdir().unwrap();
    let stand_in = bin.path().join("builder");
    std::fs::write(&stand_in, "#!/bin/sh\necho \"builder $*\"\nexit 7\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&stand_in, bin.path().join("buildah")).unwrap();
    let run = |name: &str, dockerfile: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script(
                name,
                &[("context", "app".into()), ("dockerfile", dockerfile.into())],
            ))
            .current_dir(project.path())
            .env_clear()
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.path().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("KANIKO_EXECUTOR", &stand_in)
            .env("DOCKER_CONFIG", project.path().join(".docker"))
            .env("ARCH", "arm64")
            .env("CI_REGISTRY_IMAGE", "registry.example.com/group/app")
            .env("CI_COMMIT_REF_SLUG", "main")
            .env("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    for (name, expected) in [
        ("build-buildah", "--file app/Dockerfile"),
        ("build-kaniko", "--dockerfile app/Dockerfile"),
    ] {
        let (code, log) = run(name, "Dockerfile");
        assert_eq!(code, Some(7), "{name} reached the builder: {log}");
        assert!(log.contains(expected), "{name}: {log}");
        let (code, log) = run(name, "app/Dockerfile");
        assert_eq!(code, Some(2), "{name}: {log}");
        assert!(
            log.contains("error: there is no app/app/Dockerfile: the dockerfile input (app/Dockerfile) is a path in the context (app)"),
            "{name}: {log}"
        );
        assert!(!log.contains("builder "), "{name} built: {log}");
    }
}

/// GitLab's side of MULTIARCH_PLATFORMS (rules, run by gitlab-ci-local): an entry of `archs` whose
/// platform the list leaves out gets no job, for the usual spellings; anything the rules cannot
/// tell (an architecture they do not know, a value made of other variables) keeps its job, which
/// the script above then builds or skips exactly.
#[test]
fn platforms_left_out_of_multiarch_platforms_get_no_build_job() {
    use support::glci::{jobs_listed, list, project};
    let archs = "[amd64, arm64, arm/v7, arm/v6, 386, ppc64le, s390x, riscv64, mips64le]";
    let pipeline = format!(
        "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build-kaniko@$CI_COMMIT_SHA\n    inputs:\n      archs: {archs}\n"
    );
    let all = [
        "amd64", "arm64", "arm/v7", "arm/v6", "386", "ppc64le", "s390x", "riscv64", "mips64le",
    ];
    let repo = project(&pipeline);
    for (platforms, expected) in [
        ("", &all[..]),
        ("linux/amd64", &["amd64", "mips64le"][..]),
        (
            "LINUX/AARCH64, linux/x86_64",
            &["amd64", "arm64", "mips64le"],
        ),
        (
            "linux/arm64/v8,linux/arm/v7",
            &["arm64", "arm/v7", "arm/v6", "mips64le"],
        ),
        ("linux/arm", &["arm/v7", "arm/v6", "mips64le"]),
        (
            "linux/i386,linux/s390x,linux/ppc64le,\nlinux/riscv64",
            &["386", "ppc64le", "s390x", "riscv64", "mips64le"],
        ),
        ("$PROJECT_PLATFORMS", &all),
    ] {
        let (ok, listing) = list(
            repo.path(),
            &[
                ("MULTIARCH_PLATFORMS", platforms.to_string()),
                ("PROJECT_PLATFORMS", "linux/amd64".to_string()),
            ],
        );
        assert!(ok, "{listing}");
        let expected: Vec<String> = expected
            .iter()
            .map(|a| format!("multiarch-build: [{a}]"))
            .collect();
        assert_eq!(
            jobs_listed(&listing),
            expected,
            "MULTIARCH_PLATFORMS={platforms:?}"
        );
    }
}
