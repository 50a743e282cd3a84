//! Zero-stage publishing, `multiarch push --if-complete` as each build job runs it after its own
//! push: it never waits; with a platform of this revision missing or stale it pushes nothing,
//! exits 0 at once naming what it awaits (`MULTIARCH_AWAITING`); the job that completes the set
//! publishes exactly what `push` publishes (`MULTIARCH_PUBLISHED=true`); two completers racing
//! both succeed and leave one complete index; a late older pipeline's completer publishes nothing
//! (superseded when the tags hold the newer pipeline's index already).
//! Real registry, real binary, skopeo to check what the tag holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::fixtures::{push_built, Kind};
use crate::support::glci::children;
use crate::support::{job, multiarch, multiarch_process, plain, sha256, stderr_of, Registry};

/// This pipeline's commit (the one `gitlab_env` sets) and an earlier one.
const THIS: &str = "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
const EARLIER: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";

/// Far below the 15 minutes a waiting run would take, far above what one look takes even on a
/// loaded machine: tells "did not wait" apart, measures nothing (BENCHMARKS.md does).
const AT_ONCE: Duration = Duration::from_secs(60);

/// The build job of `arch` in pipeline `pipeline` of commit `commit` (project 42), after pushing
/// `digest`: it hands its own image over by digest, as the build component does; `MULTIARCH_TIMEOUT`
/// stays at its 15-minute default, which `--if-complete` must not wait for.
fn build_job(
    reg: &Registry,
    arch: &str,
    digest: &str,
    pipeline: &str,
    commit: &str,
) -> BTreeMap<String, String> {
    let mut env = job(
        reg,
        &[
            ("CI_PROJECT_ID", "42"),
            ("CI_PIPELINE_ID", pipeline),
            ("CI_COMMIT_SHA", commit),
            ("MULTIARCH_IF_COMPLETE", "true"),
        ],
    );
    env.remove("MULTIARCH_TIMEOUT");
    env.insert(
        format!("MULTIARCH_SOURCE_LINUX_{}", arch.to_uppercase()),
        format!("{}@{digest}", reg.repo("group/app")),
    );
    env
}

/// Pushes this commit's `arch` build to `group/app:latest-{arch}`; its digest.
fn build(reg: &Registry, arch: &str, commit: &str) -> String {
    push_built(
        reg,
        &format!("group/app:latest-{arch}"),
        &format!("linux/{arch}"),
        Kind::Oci,
        Some(commit),
    )
}

/// Runs `multiarch push` in `work`: exit code, stdout, stderr (colours removed), dotenv, time.
fn push(env: &BTreeMap<String, String>, work: &Path) -> (i32, String, String, String, Duration) {
    let start = Instant::now();
    let out = multiarch(env, work).arg("push").output().unwrap();
    let took = start.elapsed();
    let dotenv = std::fs::read_to_string(work.join("multiarch.env")).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout.clone()).unwrap(),
        plain(&stderr_of(&out)),
        dotenv,
        took,
    )
}

/// Runs the build job `env` in a fresh directory, which must publish nothing: exit 0 at once,
/// nothing on stdout. Its stderr and dotenv.
fn published_nothing(env: &BTreeMap<String, String>) -> (String, String) {
    let work = tempfile::tempdir().unwrap();
    let (code, out, err, dotenv, took) = push(env, work.path());
    assert_eq!(code, 0, "{err}");
    assert!(took < AT_ONCE, "waited {took:?}: {err}");
    assert_eq!(
        out, "",
        "stdout carries results only: nothing was published"
    );
    assert!(!err.contains("waiting for sources"), "{err}");
    (err, dotenv)
}

/// The child digests of the index `group/app:latest` holds (skopeo), in order, and its digest.
fn latest(reg: &Registry) -> (String, Vec<String>) {
    let raw = reg.raw("group/app:latest").expect("latest exists");
    (
        sha256(&raw),
        children(&raw).into_iter().map(|(_, d)| d).collect(),
    )
}

#[test]
fn an_incomplete_set_exits_0_at_once_naming_the_awaited_platform_and_pushes_nothing() {
    let reg = Registry::start();
    let amd = build(&reg, "amd64", THIS);
    let (err, dotenv) = published_nothing(&build_job(&reg, "amd64", &amd, "100", THIS));
    assert!(
        err.contains(&format!(
            "nothing was published (--if-complete): the build job that completes the set publishes; awaiting 1:\n  - linux/arm64 {}:latest-arm64: missing",
            reg.repo("group/app")
        )),
        "{err}"
    );
    // Its own platform is handed over: no hint that a build job failed to hand over the other.
    assert!(!err.contains("no build job handed over"), "{err}");
    assert_eq!(dotenv, "MULTIARCH_AWAITING=linux/arm64\n");
    assert!(reg.raw("group/app:latest").is_none(), "nothing pushed");
}

#[test]
fn a_stale_platform_counts_as_awaited() {
    let reg = Registry::start();
    // The previous pipeline's arm64 image still sits under its tag.
    build(&reg, "arm64", EARLIER);
    let amd = build(&reg, "amd64", THIS);
    let (err, dotenv) = published_nothing(&build_job(&reg, "amd64", &amd, "100", THIS));
    assert!(
        err.contains(&format!(
            "  - linux/arm64 {}:latest-arm64: stale: built from revision {EARLIER}, this pipeline is {THIS}",
            reg.repo("group/app")
        )),
        "{err}"
    );
    assert_eq!(dotenv, "MULTIARCH_AWAITING=linux/arm64\n");
    assert!(reg.raw("group/app:latest").is_none(), "nothing pushed");
}

#[test]
fn the_job_that_completes_the_set_publishes_exactly_what_push_publishes() {
    let reg = Registry::start();
    // amd64 finishes first: nothing yet. The arm64 build job fails and is retried; its retry
    // pushes and completes the set.
    let amd = build(&reg, "amd64", THIS);
    let first = tempfile::tempdir().unwrap();
    let (code, _, err, _, _) = push(&build_job(&reg, "amd64", &amd, "100", THIS), first.path());
    assert_eq!(code, 0, "{err}");
    assert!(reg.raw("group/app:latest").is_none());
    let arm = build(&reg, "arm64", THIS);
    let retried = tempfile::tempdir().unwrap();
    let (code, out, err, dotenv, _) =
        push(&build_job(&reg, "arm64", &arm, "100", THIS), retried.path());
    assert_eq!(code, 0, "{err}");
    let (digest, children) = latest(&reg);
    assert_eq!(children, [amd.clone(), arm.clone()]);
    let image = reg.repo("group/app");
    assert_eq!(out, format!("{image}:latest@{digest}\n"));
    assert!(
        dotenv.contains(&format!("MULTIARCH_DIGEST={digest}\n")),
        "{dotenv}"
    );
    assert!(dotenv.ends_with("MULTIARCH_PUBLISHED=true\n"), "{dotenv}");
    assert!(!dotenv.contains("MULTIARCH_AWAITING"), "{dotenv}");
    // A manifest job of the same pipeline, handed both digests, publishes the same bytes.
    let mut manifest = build_job(&reg, "amd64", &amd, "100", THIS);
    manifest.remove("MULTIARCH_IF_COMPLETE");
    manifest.insert(
        "MULTIARCH_SOURCE_LINUX_ARM64".into(),
        format!("{image}@{arm}"),
    );
    let work = tempfile::tempdir().unwrap();
    let (code, out, err, _, _) = push(&manifest, work.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{image}:latest@{digest}\n"));
    assert!(err.contains("unchanged"), "{err}");
}

#[test]
fn two_completers_racing_both_exit_0_and_the_tag_holds_one_complete_index() {
    let reg = Registry::start();
    let amd = build(&reg, "amd64", THIS);
    let arm = build(&reg, "arm64", THIS);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // Both build jobs finish together: each sees the set complete and publishes.
    let children: Vec<_> = [("amd64", &amd), ("arm64", &arm)]
        .iter()
        .zip(&dirs)
        .map(|((arch, digest), dir)| {
            multiarch_process(&build_job(&reg, arch, digest, "100", THIS), dir.path())
                .arg("push")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let (digest, kids) = latest(&reg);
    assert_eq!(kids, [amd, arm]);
    for out in &outs {
        assert!(out.status.success(), "{}", stderr_of(out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}:latest@{digest}\n", reg.repo("group/app")),
            "both name the one index"
        );
    }
    // skopeo, an independent client, reads the whole graph.
    reg.complete("group/app:latest");
}

/// Pipeline 100's arm64 job finishing last, its set incomplete (amd64 holds the newer build) and
/// `latest` already holding the newer pipeline's index: no job of pipeline 100 will ever publish,
/// so it is not said to be awaited by one — it is superseded, as a manifest job would say.
#[test]
fn a_late_older_pipelines_completer_publishes_nothing_over_the_newer_index() {
    let reg = Registry::start();
    // Pipeline 100 (commit EARLIER) built amd64, then pipeline 101 (commit THIS) built and
    // published both; pipeline 100's arm64 build finishes last.
    build(&reg, "amd64", EARLIER);
    let amd = build(&reg, "amd64", THIS);
    let arm = build(&reg, "arm64", THIS);
    let work = tempfile::tempdir().unwrap();
    let (code, _, err, _, _) = push(&build_job(&reg, "arm64", &arm, "101", THIS), work.path());
    assert_eq!(code, 0, "{err}");
    let (newer, _) = latest(&reg);
    let old_arm = build(&reg, "arm64", EARLIER);
    let work = tempfile::tempdir().unwrap();
    let (code, out, err, dotenv, took) = push(
        &build_job(&reg, "arm64", &old_arm, "100", EARLIER),
        work.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(took < AT_ONCE, "waited {took:?}: {err}");
    assert!(
        err.contains("every target tag holds a newer index than this run could publish, so nothing was published"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "stale: built from revision {THIS}, this pipeline is {EARLIER}"
        )),
        "{err}"
    );
    assert!(
        !err.contains("the build job that completes the set publishes"),
        "{err}"
    );
    assert_eq!(
        out,
        format!("{}:latest@{newer} kept\n", reg.repo("group/app"))
    );
    assert_eq!(
        dotenv,
        format!(
            "MULTIARCH_DIGEST=\nMULTIARCH_REF=\nMULTIARCH_REFS=\nMULTIARCH_TAGGED=\nMULTIARCH_KEPT={}:latest\nMULTIARCH_AWAITING=linux/amd64\n",
            reg.repo("group/app")
        )
    );
    assert_eq!(latest(&reg), (newer, vec![amd, arm]), "latest did not move");
}

/// An older pipeline whose own set is complete, finishing after a newer one published: its
/// completer keeps `latest` where the newer one put it, and publishes nothing — no
/// `MULTIARCH_PUBLISHED`, no digest of an index that is in no registry.
#[test]
fn an_older_pipelines_complete_set_keeps_latest_and_says_nothing_was_published() {
    let reg = Registry::start();
    build(&reg, "amd64", THIS);
    let arm = build(&reg, "arm64", THIS);
    let work = tempfile::tempdir().unwrap();
    let (code, _, err, _, _) = push(&build_job(&reg, "arm64", &arm, "101", THIS), work.path());
    assert_eq!(code, 0, "{err}");
    let (newer, children) = latest(&reg);
    build(&reg, "amd64", EARLIER);
    let old_arm = build(&reg, "arm64", EARLIER);
    let work = tempfile::tempdir().unwrap();
    let (code, out, err, dotenv, _) = push(
        &build_job(&reg, "arm64", &old_arm, "100", EARLIER),
        work.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with(&format!(":latest@{newer} kept\n")), "{out}");
    assert!(!dotenv.contains("MULTIARCH_PUBLISHED"), "{dotenv}");
    assert!(dotenv.starts_with("MULTIARCH_DIGEST=\n"), "{dotenv}");
    assert!(dotenv.contains("MULTIARCH_KEPT="), "{dotenv}");
    assert_eq!(latest(&reg), (newer, children), "latest did not move");
}

#[test]
fn an_older_pipelines_completer_landing_just_after_the_newer_ones_put_is_pushed_over_again() {
    use crate::support::fixtures::put_manifest_at;
    use crate::support::proxy::{Fault, Proxy};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    // Pipeline 100's complete index, as its completer PUTs it.
    let reg = Registry::start();
    build(&reg, "amd64", EARLIER);
    let old_arm = build(&reg, "arm64", EARLIER);
    let env = build_job(&reg, "arm64", &old_arm, "100", EARLIER);
    let (code, _, err, _, _) = push(&env, tempfile::tempdir().unwrap().path());
    assert_eq!(code, 0, "{err}");
    let older = reg.raw("group/app:latest").unwrap();

    // Pipeline 101's completer, through a proxy that lands pipeline 100's index under `latest`
    // once 101's own PUT has landed, before 101 looks at the tag again: both read `latest`
    // before either PUT.
    build(&reg, "amd64", THIS);
    let arm = build(&reg, "arm64", THIS);
    let upstream = reg.host.clone();
    let (put, raced) = (Arc::new(AtomicBool::new(false)), AtomicBool::new(false));
    let proxy = Proxy::start(&reg.host, Duration::ZERO, move |req, _| {
        let latest = req.path == "/v2/group/app/manifests/latest";
        if latest && req.method == "PUT" {
            put.store(true, Ordering::SeqCst);
        } else if latest && put.load(Ordering::SeqCst) && !raced.swap(true, Ordering::SeqCst) {
            let media_type = "application/vnd.oci.image.index.v1+json";
            put_manifest_at(&upstream, "group/app:latest", media_type, &older);
        }
        Fault::Pass
    });
    let mut env = build_job(&reg, "arm64", &arm, "101", THIS);
    env.insert(
        "CI_REGISTRY_IMAGE".into(),
        format!("{}/group/app", proxy.host),
    );
    env.insert("MULTIARCH_INSECURE_REGISTRIES".into(), proxy.host.clone());
    env.insert(
        "MULTIARCH_SOURCE_LINUX_ARM64".into(),
        format!("{}/group/app@{arm}", proxy.host),
    );
    let (code, out, err, dotenv, _) = push(&env, tempfile::tempdir().unwrap().path());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "pushed this tag just after this run, moving it back: pushing this run's index again"
        ),
        "{err}"
    );
    let raw = reg.raw("group/app:latest").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        v["annotations"]["com.gitlab.multiarch.pipeline.id"], "101",
        "{v}"
    );
    assert!(
        out.ends_with(&format!(":latest@{}\n", sha256(&raw))),
        "{out}"
    );
    assert!(dotenv.contains("MULTIARCH_PUBLISHED=true"), "{dotenv}");
}
