//! What a user reads: when a source is missing or stale at the deadline, the likely cause, named
//! from what the tag holds, and the fix before the switch that turns the check off; elsewhere, a
//! hint that names what the user actually gave (a command's argument, a setting) and the exact
//! way out. Real registry, real binary.

use crate::support::fixtures::{push_built, push_config, Kind};
use crate::support::{exited, job, multiarch, plain, run, vars, Registry};
use serde_json::json;

/// This pipeline's commit (the one `gitlab_env` sets) and another pipeline's.
const THIS: &str = "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
const OTHER: &str = "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a493f2a1c0d";
const STARTED: &str = "2026-12-04T12:07:14Z";

/// `multiarch push` in a job of pipeline `extra` with a 1 s wait: exit 3, its stderr.
fn not_ready(reg: &Registry, extra: &[(&str, &str)]) -> String {
    let mut env = job(reg, &[("MULTIARCH_TIMEOUT", "1s")]);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.stdout.is_empty());
    plain(&exited(&out, 3))
}

/// An older pipeline whose manifest job runs last finds the newer pipeline's build under the
/// shared tag: named a later pipeline's build (by its pipeline label, else as made while this
/// pipeline ran), with the fixes that work, since waiting cannot.
#[test]
fn a_later_pipelines_build_under_the_shared_tag_is_named_so() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    push_built(
        &reg,
        "group/app:latest-amd64",
        "linux/amd64",
        Kind::Oci,
        Some(THIS),
    );
    push_config(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({
            "created": "2026-12-04T12:09:41Z",
            "config": {"Labels": {
                "org.opencontainers.image.revision": OTHER,
                "com.gitlab.multiarch.pipeline.id": "3002",
            }},
        }),
    );
    let started = ("CI_PIPELINE_CREATED_AT", STARTED);
    let err = not_ready(&reg, &[started, ("CI_PIPELINE_ID", "3001")]);
    assert!(
        err.contains(&format!("  - {repo}:latest-arm64: stale: built from revision {OTHER}, this pipeline is {THIS}; a later pipeline's build (pipeline 3002; this is 3001)\n")),
        "{err}"
    );
    let hint = err
        .find("  hint: a later pipeline's build replaced this pipeline's under the shared tag, and waiting cannot bring it back: hand the image over by digest: a dotenv report with MULTIARCH_SOURCE_LINUX_ARM64=<repository>@sha256:…")
        .expect("the hand-off first");
    let off = err.find("MULTIARCH_REVISION=none").expect("the switch");
    assert!(hint < off, "{err}");
    assert!(!err.contains("earlier pipeline"), "{err}");

    // Without this pipeline's id, the image's time says what is known.
    let err = not_ready(&reg, &[started]);
    assert!(
        err.contains("; created 2026-12-04T12:09:41Z, after this pipeline started at 2026-12-04T12:07:14Z: another pipeline's build, made while this one ran\n"),
        "{err}"
    );
    assert!(err.contains("  hint: another pipeline's build, made while this one ran, replaced this pipeline's under the shared tag"), "{err}");
}

/// `MULTIARCH_TAGS=semver` on `v2.0.1`: the builds pushed `v2.0.1-<arch>`, the sources are
/// `2.0.1-<arch>`; the hint says so and how to fix it.
#[test]
fn semver_on_a_v_tag_says_the_sources_are_the_version_without_v() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    for arch in ["amd64", "arm64"] {
        let path = format!("group/app:v2.0.1-{arch}");
        push_built(&reg, &path, &format!("linux/{arch}"), Kind::Oci, Some(THIS));
    }
    let err = not_ready(
        &reg,
        &[
            ("CI_COMMIT_TAG", "v2.0.1"),
            ("CI_COMMIT_BRANCH", ""),
            ("MULTIARCH_TAGS", "semver"),
        ],
    );
    assert!(
        err.contains(&format!(
            "  - {repo}:2.0.1-arm64: missing (named by the version 2.0.1, not the git tag v2.0.1)\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("  hint: with MULTIARCH_TAGS=semver the sources are named by the version 2.0.1, not the git tag v2.0.1: push the per-architecture images as 2.0.1-<arch> (the build components do), or name the git tag in MULTIARCH_SOURCE_TEMPLATE, e.g. {image}:$CI_COMMIT_TAG-{arch}{variant}\n"),
        "{err}"
    );
}

/// A registry host that does not resolve is sent back to where the user named it: the image
/// settings for push, the command's argument for inspect and login.
#[test]
fn an_unknown_host_is_checked_where_it_was_given() {
    let env = vars(&[
        ("MULTIARCH_USERNAME", "u"),
        ("MULTIARCH_PASSWORD", "p"),
        ("MULTIARCH_TIMEOUT", "2s"),
        ("MULTIARCH_DOTENV", "none"),
    ]);
    for (args, hint) in [
        (
            &["push", "--image", "nosuch.invalid/app", "--tags", "1"][..],
            "check the registry host in MULTIARCH_IMAGE (--image), the source template, MULTIARCH_SOURCE_* or the spec",
        ),
        (
            &["inspect", "nosuch.invalid/app:1"][..],
            "check the registry host in the reference given to multiarch inspect",
        ),
        (
            &["login", "--password-stdout", "nosuch.invalid"][..],
            "check the host given to multiarch login",
        ),
    ] {
        let (code, err, _) = run(&env, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("error: cannot reach nosuch.invalid: the name does not resolve"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&format!("  hint: {hint}\n")), "{args:?}: {err}");
    }
}
