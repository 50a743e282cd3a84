//! Tags never move backwards: the index records the GitLab project and pipeline that published
//! it, and a target tag holding a newer pipeline's index (or, on releases, a higher version) is
//! kept — exit 0, a notice on stderr, `kept` on stdout and `MULTIARCH_KEPT` in the dotenv —
//! unless `MULTIARCH_ROLLBACK=allow`. Another tool's index moves as before; a new pipeline of a
//! commit already published changes nothing (immutable ECR tags included). Real registry, real
//! binary, skopeo to check what each tag holds.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::fixtures::{index_of, push_built, put_manifest, Kind};
use crate::support::moto::{ecr_password, Moto};
use crate::support::{multiarch, plain, sha256, stderr_of, Options, Registry};
use serde_json::Value;

const A: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
const B: &str = "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
const PIPELINE: &str = "com.gitlab.multiarch.pipeline.id";
const PROJECT: &str = "com.gitlab.multiarch.project.id";

/// A manifest job of pipeline `pipeline` (project 42) for commit `commit`, plus `extra`.
fn job(
    reg: &Registry,
    pipeline: &str,
    commit: &str,
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let this = [
        ("CI_PROJECT_ID", "42"),
        ("CI_PIPELINE_ID", pipeline),
        ("CI_COMMIT_SHA", commit),
    ];
    crate::support::job(reg, &[&this[..], extra].concat())
}

/// This commit's two images under `{tag}-amd64` / `{tag}-arm64`, handed over by digest as the
/// build components do (a tag may hold another pipeline's build by then).
fn build(reg: &Registry, tag: &str, commit: &str) -> Vec<(String, String)> {
    ["amd64", "arm64"]
        .iter()
        .map(|arch| {
            let digest = push_built(
                reg,
                &format!("group/app:{tag}-{arch}"),
                &format!("linux/{arch}"),
                Kind::Oci,
                Some(commit),
            );
            (
                format!("MULTIARCH_SOURCE_LINUX_{}", arch.to_uppercase()),
                format!("{}@{digest}", reg.repo("group/app")),
            )
        })
        .collect()
}

fn with<'a>(
    hand_off: &'a [(String, String)],
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    hand_off
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(more.iter().copied())
        .collect()
}

/// Runs `multiarch push`: exit code, stdout, stderr (colours removed), dotenv.
fn push(
    env: &BTreeMap<String, String>,
    work: &Path,
    args: &[&str],
) -> (i32, String, String, String) {
    let out = multiarch(env, work)
        .arg("push")
        .args(args)
        .output()
        .unwrap();
    let dotenv = std::fs::read_to_string(work.join("multiarch.env")).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout.clone()).unwrap(),
        plain(&stderr_of(&out)),
        dotenv,
    )
}

/// The digest `group/app:{tag}` holds (skopeo) and its annotations.
fn holds(reg: &Registry, tag: &str) -> (String, BTreeMap<String, String>) {
    let raw = reg
        .raw(&format!("group/app:{tag}"))
        .unwrap_or_else(|| panic!("{tag} exists"));
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let annotations = v["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    (sha256(&raw), annotations)
}

#[test]
fn an_older_pipeline_finishing_last_keeps_latest_where_the_newer_one_put_it() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    let a = build(&reg, "a", A);
    let b = build(&reg, "b", B);
    // Pipeline 101 (commit B) publishes first; the index records who published it.
    let work = tempfile::tempdir().unwrap();
    let (code, _, err, _) = push(&job(&reg, "101", B, &with(&b, &[])), work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let (newer, recorded) = holds(&reg, "latest");
    assert_eq!(recorded[PIPELINE], "101");
    assert_eq!(recorded[PROJECT], "42");
    assert_eq!(recorded["org.opencontainers.image.revision"], B);

    // Pipeline 100 (commit A) finishes last: `latest` stays, a tag only it publishes moves.
    let work = tempfile::tempdir().unwrap();
    let env = job(
        &reg,
        "100",
        A,
        &with(&a, &[("MULTIARCH_TAGS", "latest,a-only")]),
    );
    // The preview says so first, reading the tags without pushing.
    let out = multiarch(&env, work.path()).arg("plan").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "  {repo}:latest  kept: holds {newer} (it holds the index of pipeline 101"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("  {repo}:a-only  moves to this index\n")),
        "{text}"
    );
    assert_eq!(holds(&reg, "latest").0, newer);
    // With the rollback allowed, the preview says the tag moves, as the push would move it.
    let out = multiarch(&env, work.path())
        .args(["plan", "--rollback", "allow"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("  {repo}:latest  moves to this index\n")),
        "{text}"
    );
    let (code, out, err, dotenv) = push(&env, work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        holds(&reg, "latest").0,
        newer,
        "latest still holds pipeline 101's index"
    );
    let (ours, recorded) = holds(&reg, "a-only");
    assert_eq!(recorded[PIPELINE], "100");
    assert!(
        err.contains(&format!("{repo}:latest")) && err.contains("kept, not moved back"),
        "{err}"
    );
    assert!(
        err.contains("it holds the index of pipeline 101 (revision 3f2a1c0d), newer than this pipeline 100 (revision 1a2b3c4d)"),
        "{err}"
    );
    assert!(err.contains("MULTIARCH_ROLLBACK=allow"), "{err}");
    eprintln!("{err}");
    assert_eq!(
        out,
        format!("{repo}:latest@{newer} kept\n{repo}:a-only@{ours}\n")
    );
    assert!(
        dotenv.contains(&format!(
            "MULTIARCH_DIGEST={ours}\nMULTIARCH_REF={repo}@{ours}\nMULTIARCH_REFS={repo}@{ours}\nMULTIARCH_TAGGED={repo}:a-only\nMULTIARCH_KEPT={repo}:latest\n"
        )),
        "{dotenv}"
    );

    // --output json says the same.
    let (code, out, err, _) = push(&env, work.path(), &["--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["targets"][0]["status"], "kept");
    assert_eq!(v["targets"][0]["holds"], newer);
    assert_eq!(v["targets"][1]["status"], "unchanged");

    // A retried job of the newest pipeline is a no-op.
    let work = tempfile::tempdir().unwrap();
    let (code, out, err, _) = push(&job(&reg, "101", B, &with(&b, &[])), work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{repo}:latest@{newer}\n"));
    assert!(err.contains("unchanged"), "{err}");

    // The deliberate rollback.
    let (code, out, err, dotenv) = push(
        &job(
            &reg,
            "100",
            A,
            &with(&a, &[("MULTIARCH_ROLLBACK", "allow")]),
        ),
        work.path(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (now, recorded) = holds(&reg, "latest");
    assert_eq!(recorded[PIPELINE], "100");
    assert_eq!(out, format!("{repo}:latest@{now}\n"));
    assert!(
        err.contains("rolling back (MULTIARCH_ROLLBACK=allow)"),
        "{err}"
    );
    assert!(dotenv.contains("MULTIARCH_KEPT=\n"), "{dotenv}");

    // A mode that is not one: exit 2 before any request.
    let (code, _, err, _) = push(
        &job(&reg, "100", A, &with(&a, &[])),
        work.path(),
        &["--rollback", "yes"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--rollback = \"yes\" is invalid: unknown rollback mode"),
        "{err}"
    );
}

#[test]
fn an_older_pipeline_without_hand_off_finding_the_newer_ones_builds_is_kept_at_once() {
    // The project's own build jobs push labelled images under shared tags, no digest hand-off.
    // Pipeline 101 (commit B) built and published; pipeline 100's (commit A) manifest job runs
    // last and finds 101's images under the per-arch tags: stale for it, and they never change
    // back. Every target tag holds a newer pipeline's index: it ends at once, exit 0, kept.
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    build(&reg, "latest", A);
    build(&reg, "latest", B);
    let work = tempfile::tempdir().unwrap();
    let (code, _, err, _) = push(&job(&reg, "101", B, &[]), work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let (newer, _) = holds(&reg, "latest");

    // A default-length wait would be 15 minutes; a regression fails here after 60 s with exit 3.
    let work = tempfile::tempdir().unwrap();
    let env = job(&reg, "100", A, &[("MULTIARCH_TIMEOUT", "60s")]);
    // The preview ends the same way (reading the tags with pull access), writing nothing.
    let out = multiarch(&env, work.path()).arg("plan").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{repo}:latest@{newer} kept\n")
    );
    assert!(!work.path().join("multiarch.env").exists());
    let (code, out, err, dotenv) = push(&env, work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        holds(&reg, "latest").0,
        newer,
        "latest still holds 101's index"
    );
    assert_eq!(out, format!("{repo}:latest@{newer} kept\n"));
    assert!(
        err.contains("every target tag holds a newer index than this run could publish, so nothing was published and the sources are not waited for any longer (2 not ready)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("kept {repo}:latest: it holds the index of pipeline 101 (revision 3f2a1c0d), newer than this pipeline 100 (revision 1a2b3c4d)")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{repo}:latest-amd64: stale: built from revision {B}"
        )),
        "{err}"
    );
    assert_eq!(
        dotenv,
        format!("MULTIARCH_DIGEST=\nMULTIARCH_REF=\nMULTIARCH_REFS=\nMULTIARCH_TAGGED=\nMULTIARCH_KEPT={repo}:latest\n")
    );

    // A release tag of its own would move: then the sources are worth waiting for, and a wait
    // that ends without them is exit 3 as before.
    let env = job(
        &reg,
        "100",
        A,
        &[
            ("MULTIARCH_TIMEOUT", "1s"),
            ("MULTIARCH_TAGS", "latest,a-only"),
        ],
    );
    let (code, _, err, _) = push(&env, work.path(), &[]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn a_lower_release_moves_its_own_line_but_not_latest_or_a_higher_major() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    let release = |pipeline: &str, version: &str, commit: &str| {
        let tag = version.trim_start_matches('v');
        let hand_off = build(&reg, tag, commit);
        let work = tempfile::tempdir().unwrap();
        let env = job(
            &reg,
            pipeline,
            commit,
            &with(
                &hand_off,
                &[("MULTIARCH_TAGS", "semver"), ("CI_COMMIT_TAG", version)],
            ),
        );
        let result = push(&env, work.path(), &[]);
        assert_eq!(result.0, 0, "{}", result.2);
        result
    };
    release("190", "v1.9.0", A);
    release("200", "v2.0.1", B);
    let (two, _) = holds(&reg, "latest");
    assert_eq!(holds(&reg, "2").0, two);
    let (_, out, err, dotenv) = release("201", "v1.9.1", A);
    let (ours, recorded) = holds(&reg, "1.9.1");
    assert_eq!(recorded["org.opencontainers.image.version"], "v1.9.1");
    for tag in ["1.9", "1"] {
        assert_eq!(holds(&reg, tag).0, ours, "{tag} moved to 1.9.1");
    }
    for tag in ["latest", "2"] {
        assert_eq!(holds(&reg, tag).0, two, "{tag} stays at 2.0.1");
    }
    assert_eq!(
        out,
        format!(
            "{repo}:1.9.1@{ours}\n{repo}:1.9@{ours}\n{repo}:1@{ours}\n{repo}:latest@{two} kept\n"
        )
    );
    assert!(
        err.contains("it holds version v2.0.1, published by pipeline 200 (revision 3f2a1c0d), higher than v1.9.1, which this pipeline 201 (revision 1a2b3c4d) publishes"),
        "{err}"
    );
    assert!(
        dotenv.contains(&format!("MULTIARCH_KEPT={repo}:latest\n")),
        "{dotenv}"
    );
}

#[test]
fn an_index_another_tool_pushed_is_moved_as_before() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    // An index without our keys (manifest-tool, crane, buildx imagetools, an older multiarch),
    // claiming a far newer pipeline in a key of its own.
    let a = build(&reg, "a", A);
    let child = a[0].1.rsplit_once('@').unwrap().1.to_string();
    let size = reg.raw(&format!("group/app@{child}")).unwrap().len();
    let foreign = index_of(&[(&child, size, "linux/amd64")], 1);
    let foreign_digest = put_manifest(
        &reg,
        "group/app:latest",
        "application/vnd.oci.image.index.v1+json",
        &foreign,
    );
    let work = tempfile::tempdir().unwrap();
    let (code, out, err, _) = push(&job(&reg, "100", A, &with(&a, &[])), work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let (now, recorded) = holds(&reg, "latest");
    assert_ne!(now, foreign_digest);
    assert_eq!(recorded[PIPELINE], "100");
    assert_eq!(out, format!("{repo}:latest@{now}\n"));
    assert!(!err.contains("kept"), "{err}");
}

#[test]
fn a_new_pipeline_of_a_commit_already_published_changes_nothing() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    let b = build(&reg, "b", B);
    let tags = [("MULTIARCH_TAGS", "latest,main")];
    let work = tempfile::tempdir().unwrap();
    let (code, _, err, _) = push(&job(&reg, "101", B, &with(&b, &tags)), work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let first = holds(&reg, "latest");
    // A new pipeline for the same commit ("Run pipeline", a re-run): same images, new id.
    let (code, out, err, dotenv) = push(&job(&reg, "107", B, &with(&b, &tags)), work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        holds(&reg, "latest"),
        first,
        "the same bytes: recorded by pipeline 101"
    );
    assert_eq!(holds(&reg, "main").0, first.0);
    assert_eq!(
        out,
        format!("{repo}:latest@{0}\n{repo}:main@{0}\n", first.0)
    );
    assert!(
        dotenv.contains(&format!("MULTIARCH_DIGEST={}\n", first.0)),
        "{dotenv}"
    );
    assert!(
        err.contains("already holds this content, published by another run"),
        "{err}"
    );
    assert!(err.contains("published_by=pipeline 101"), "{err}");
    assert_eq!(err.matches("unchanged").count(), 2, "{err}");
}

#[test]
fn a_new_pipeline_of_the_same_commit_reruns_against_immutable_ecr_tags() {
    let moto = Moto::start();
    let reg = Registry::start_with(Options {
        user: Some(("AWS".into(), ecr_password())),
        tls: true,
        ..Default::default()
    });
    moto.ecr(
        "CreateRepository",
        r#"{"repositoryName":"app","imageTagMutability":"IMMUTABLE"}"#,
    );
    for arch in ["amd64", "arm64"] {
        push_built(
            &reg,
            &format!("app:latest-{arch}"),
            &format!("linux/{arch}"),
            Kind::Oci,
            Some(B),
        );
    }
    let env = |pipeline: &str| {
        moto.job(
            &reg,
            &[
                ("MULTIARCH_TIMEOUT", "5s"),
                ("AWS_ACCESS_KEY_ID", "AKIATESTING"),
                ("AWS_SECRET_ACCESS_KEY", "testing-secret"),
                ("CI_COMMIT_SHA", B),
                ("CI_PROJECT_ID", "42"),
                ("CI_PIPELINE_ID", pipeline),
            ],
        )
    };
    let work = tempfile::tempdir().unwrap();
    let (code, _, err, _) = push(&env("300"), work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let first = reg.raw("app:latest").unwrap();
    let (code, _, err, _) = push(&env("301"), work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(reg.raw("app:latest").unwrap(), first);
    assert!(err.contains("unchanged"), "{err}");
}

#[test]
fn docker_children_get_an_oci_index_that_records_the_pipeline_and_a_docker_list_of_the_same_content_is_kept(
) {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    let hand_off: Vec<(String, String)> = ["amd64", "arm64"]
        .iter()
        .map(|arch| {
            let d = push_built(
                &reg,
                &format!("group/app:b-{arch}"),
                &format!("linux/{arch}"),
                Kind::Docker,
                Some(B),
            );
            (
                format!("MULTIARCH_SOURCE_LINUX_{}", arch.to_uppercase()),
                format!("{repo}@{d}"),
            )
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    // As a multiarch before this rule published it (no pipeline recorded): a Docker list.
    let mut env = job(
        &reg,
        "101",
        B,
        &with(&hand_off, &[("MULTIARCH_TAGS", "old")]),
    );
    env.remove("CI_PIPELINE_ID");
    env.remove("CI_PROJECT_ID");
    let (code, _, err, _) = push(&env, work.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let list = reg.raw("group/app:old").unwrap();
    let v: Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(
        v["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );

    // In a pipeline: an OCI index over the same Docker children, recording it.
    let (code, _, err, _) = push(
        &job(
            &reg,
            "102",
            B,
            &with(&hand_off, &[("MULTIARCH_TAGS", "new")]),
        ),
        work.path(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (_, recorded) = holds(&reg, "new");
    assert_eq!(recorded[PIPELINE], "102");
    assert!(
        err.contains("the index records the pipeline that published it"),
        "{err}"
    );

    // The tag that holds the Docker list of this very content is left as it is (immutable tags
    // stay re-runnable across the upgrade).
    let (code, out, err, _) = push(
        &job(
            &reg,
            "103",
            B,
            &with(&hand_off, &[("MULTIARCH_TAGS", "old")]),
        ),
        work.path(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(reg.raw("group/app:old").unwrap(), list);
    assert_eq!(out, format!("{repo}:old@{}\n", sha256(&list)));
    assert!(err.contains("already holds this content"), "{err}");
}
