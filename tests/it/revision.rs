//! Publishing exactly this pipeline's images: sources labelled with another revision than
//! `CI_COMMIT_SHA` are stale and waited past, unlabelled ones created before the pipeline started
//! too; unlabelled ones that cannot be dated are accepted with a warning (or refused on request),
//! and a build job's digest hand-off (`MULTIARCH_SOURCE_*`) beats the tags.
//! Real registry, real binary, skopeo to check what landed.

use crate::support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::fixtures::{push as push_fixture, push_built, push_config, Kind};
use crate::support::{exited, job, multiarch, multiarch_process, plain, stderr_of, Registry};
use serde_json::Value;

/// This pipeline's commit (the one `gitlab_env` sets) and an earlier one.
const THIS: &str = "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
const EARLIER: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";

/// Pushes a `linux/{arch}` image built from `revision` to `group/app:{tag}-{arch}`; its digest.
fn built(reg: &Registry, tag: &str, arch: &str, kind: Kind, revision: &str) -> String {
    push_built(
        reg,
        &format!("group/app:{tag}-{arch}"),
        &format!("linux/{arch}"),
        kind,
        Some(revision),
    )
}

/// The child digests of the index under `path`, in order.
fn children(reg: &Registry, path: &str) -> Vec<String> {
    let index: Value = serde_json::from_slice(&reg.raw(path).expect("the index exists")).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn stale_tags_are_waited_past_until_this_pipelines_builds_land() {
    let reg = Registry::start();
    // The previous pipeline's images sit under the per-arch tags when the job starts.
    built(&reg, "latest", "amd64", Kind::Oci, EARLIER);
    built(&reg, "latest", "arm64", Kind::Oci, EARLIER);
    let work = tempfile::tempdir().unwrap();
    let env = job(&reg, &[("MULTIARCH_TIMEOUT", "2m")]);
    let mut child = multiarch_process(&env, work.path())
        .arg("push")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "push must be waiting");
    // This pipeline's builds land, seconds apart.
    let amd = built(&reg, "latest", "amd64", Kind::Oci, THIS);
    std::thread::sleep(Duration::from_secs(2));
    let arm = built(&reg, "latest", "arm64", Kind::Oci, THIS);
    let landed = Instant::now();
    let out = child.wait_with_output().unwrap();
    let err = plain(&stderr_of(&out));
    assert!(out.status.success(), "{err}");
    assert!(landed.elapsed() < Duration::from_secs(30), "{err}");
    assert_eq!(children(&reg, "group/app:latest"), [amd, arm]);
    // The log says what was waited for: which tag held which revision, and what was awaited.
    assert!(err.contains("stale: built from another revision"), "{err}");
    assert!(err.contains("holds=1a2b3c4d"), "{err}");
    assert!(err.contains("want=3f2a1c0d"), "{err}");
    assert!(
        err.contains(&format!(
            "{}:latest-amd64 holds 1a2b3c4d",
            reg.repo("group/app")
        )),
        "{err}"
    );
    assert!(err.contains("awaiting_revision=3f2a1c0d"), "{err}");
    assert!(err.contains("source appeared"), "{err}");
    eprintln!("{err}");
}

#[test]
fn a_source_still_stale_at_the_deadline_exits_3_naming_both_revisions_and_pushes_nothing() {
    let reg = Registry::start();
    built(&reg, "latest", "amd64", Kind::Oci, THIS);
    built(&reg, "latest", "arm64", Kind::Oci, EARLIER);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&job(&reg, &[("MULTIARCH_TIMEOUT", "3s")]), work.path())
        .arg("push")
        .output()
        .unwrap();
    let err = exited(&out, 3);
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!(
            "  - {}:latest-arm64: stale: built from revision {EARLIER}, this pipeline is {THIS}",
            reg.repo("group/app")
        )),
        "{err}"
    );
    assert!(err.contains("MULTIARCH_REVISION=none"), "{err}");
    assert!(reg.raw("group/app:latest").is_none(), "nothing pushed");
    assert!(!work.path().join("multiarch.env").exists());
    eprintln!("{err}");

    // --allow-missing treats stale like missing: the fresh one is published alone.
    let out = multiarch(&job(&reg, &[("MULTIARCH_TIMEOUT", "1s")]), work.path())
        .args(["push", "--allow-missing"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(children(&reg, "group/app:latest").len(), 1);

    // An explicit MULTIARCH_REVISION names what to expect; `none` switches the check off.
    let out = multiarch(
        &job(
            &reg,
            &[
                ("MULTIARCH_REVISION", "none"),
                ("MULTIARCH_TAGS", "latest,any"),
            ],
        ),
        work.path(),
    )
    .arg("push")
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(children(&reg, "group/app:any").len(), 2);
    // A short SHA label matches the full expected SHA.
    built(&reg, "latest", "arm64", Kind::Oci, &THIS[..8]);
    let out = multiarch(&job(&reg, &[("MULTIARCH_TIMEOUT", "0")]), work.path())
        .arg("push")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn handed_off_digests_beat_the_tags_and_are_still_checked() {
    let reg = Registry::start();
    // This pipeline's builds, handed over by digest; the tags still hold an earlier pipeline's.
    let amd = built(&reg, "build", "amd64", Kind::Oci, THIS);
    let arm = built(&reg, "build", "arm64", Kind::Docker, THIS);
    built(&reg, "latest", "amd64", Kind::Oci, EARLIER);
    built(&reg, "latest", "arm64", Kind::Oci, EARLIER);
    let repo = reg.repo("group/app");
    let hand_off = |amd: &str, arm: &str| {
        job(
            &reg,
            &[
                ("MULTIARCH_SOURCE_LINUX_AMD64", &format!("{repo}@{amd}")),
                ("MULTIARCH_SOURCE_LINUX_ARM64", &format!("{repo}@{arm}")),
            ],
        )
    };
    let work = tempfile::tempdir().unwrap();

    // plan says where each source came from.
    let out = multiarch(&hand_off(&amd, &arm), work.path())
        .arg("plan")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "  linux/amd64      {repo}@{amd} {amd} (from MULTIARCH_SOURCE_LINUX_AMD64, revision {THIS})\n"
        )),
        "{text}"
    );

    let out = multiarch(&hand_off(&amd, &arm), work.path())
        .arg("push")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        children(&reg, "group/app:latest"),
        [amd.clone(), arm.clone()]
    );
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    assert!(
        dotenv.contains(&format!("MULTIARCH_DIGEST_LINUX_ARM64={arm}\n")),
        "{dotenv}"
    );

    // A hand-off whose image is another platform: exit 4, naming both.
    let out = multiarch(&hand_off(&amd, &amd), work.path())
        .args(["push", "--tags", "latest,wrong"])
        .output()
        .unwrap();
    exited(&out, 4);
    assert!(
        stderr_of(&out)
            .contains("expected to be linux/arm64 but its image config says linux/amd64"),
        "{}",
        stderr_of(&out)
    );
    assert!(reg.raw("group/app:wrong").is_none());

    // A handed-off digest of an earlier build is not waited for: exit 3 at once.
    let old = built(&reg, "old", "arm64", Kind::Oci, EARLIER);
    let started = Instant::now();
    let out = multiarch(
        &job(
            &reg,
            &[
                ("MULTIARCH_SOURCE_LINUX_ARM64", &format!("{repo}@{old}")),
                ("MULTIARCH_TIMEOUT", "1m"),
            ],
        ),
        work.path(),
    )
    .args(["push", "--tags", "latest,old"])
    .output()
    .unwrap();
    exited(&out, 3);
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = stderr_of(&out);
    assert!(
        err.contains(": handed over by MULTIARCH_SOURCE_LINUX_ARM64, but stale: built from revision 1a2b3c4d"),
        "{err}"
    );
    // A digest is never waited for: no hint about tags or waiting longer.
    assert!(err.contains("a build job handed this digest over"), "{err}");
    assert!(!err.contains("MULTIARCH_TIMEOUT"), "{err}");
    assert!(!err.contains("the tag holds another revision"), "{err}");

    // Usage errors: a platform not in the list, a value without a digest.
    for (name, value, hint) in [
        (
            "MULTIARCH_SOURCE_LINUX_S390X",
            format!("{repo}@{amd}"),
            "no platform in the list (linux/amd64,linux/arm64) has the suffix LINUX_S390X",
        ),
        (
            "MULTIARCH_SOURCE_LINUX_ARM64",
            format!("{repo}:build-arm64"),
            "it names no digest",
        ),
        (
            "MULTIARCH_SOURCE_LINUX_ARM64",
            "not a reference".to_string(),
            "not an image reference",
        ),
    ] {
        let out = multiarch(&job(&reg, &[(name, &value)]), work.path())
            .arg("push")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(name), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains(hint), "{}", stderr_of(&out));
    }
}

#[test]
fn unlabelled_images_warn_by_default_and_are_refused_when_a_label_is_required() {
    let reg = Registry::start();
    push_fixture(&reg, "group/app:latest-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "group/app:latest-arm64", "linux/arm64", Kind::Oci);
    let work = tempfile::tempdir().unwrap();

    let out = multiarch(&job(&reg, &[]), work.path())
        .arg("push")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("has no org.opencontainers.image.revision label")
            .count(),
        2,
        "one warning per source: {err}"
    );
    assert!(
        err.contains("--label org.opencontainers.image.revision=$CI_COMMIT_SHA"),
        "{err}"
    );
    // The warning names the clock that is missing, and only that one.
    assert!(
        err.contains("cannot be dated (CI_PIPELINE_CREATED_AT is not set: the pipeline's start is not known)"),
        "{err}"
    );
    let mut no_commit_time = job(&reg, &[("CI_PIPELINE_CREATED_AT", STARTED)]);
    no_commit_time.remove("CI_COMMIT_TIMESTAMP");
    let out = multiarch(&no_commit_time, work.path())
        .arg("push")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("cannot be dated (CI_COMMIT_TIMESTAMP is not set: without the commit's time a reproducible build's created time cannot be told from a build time)"),
        "{err}"
    );
    assert!(!err.contains("CI_PIPELINE_CREATED_AT"), "{err}");

    let out = multiarch(
        &job(
            &reg,
            &[
                ("MULTIARCH_REQUIRE_REVISION", "true"),
                ("MULTIARCH_TIMEOUT", "2s"),
            ],
        ),
        work.path(),
    )
    .args(["push", "--tags", "latest,strict"])
    .output()
    .unwrap();
    exited(&out, 3);
    assert!(
        stderr_of(&out).contains(
            "no org.opencontainers.image.revision label (MULTIARCH_REQUIRE_REVISION is on)"
        ),
        "{}",
        stderr_of(&out)
    );
    assert!(reg.raw("group/app:strict").is_none());

    // No revision to check at all: nothing to warn about.
    let out = multiarch(&job(&reg, &[("MULTIARCH_REVISION", "none")]), work.path())
        .args(["push", "--tags", "latest,unchecked"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        !stderr_of(&out).contains("revision label"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(children(&reg, "group/app:unchecked").len(), 2);
}

#[test]
fn buildx_indexes_are_checked_on_each_childs_own_config() {
    let reg = Registry::start();
    built(&reg, "latest", "amd64", Kind::Buildx, THIS);
    built(&reg, "latest", "arm64", Kind::Buildx, EARLIER);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&job(&reg, &[("MULTIARCH_TIMEOUT", "2s")]), work.path())
        .arg("push")
        .output()
        .unwrap();
    exited(&out, 3);
    assert!(
        stderr_of(&out).contains("latest-arm64: stale: built from revision 1a2b3c4d"),
        "{}",
        stderr_of(&out)
    );
    built(&reg, "latest", "arm64", Kind::Buildx, THIS);
    let out = multiarch(&job(&reg, &[]), work.path())
        .arg("push")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // Two images and their two attestations.
    assert_eq!(children(&reg, "group/app:latest").len(), 4);
}

/// Two pipelines of one branch racing, without a resource_group to serialise them: the earlier
/// one's builds are overwritten under the per-arch tags by the later one's while both manifest
/// jobs run. Each job publishes its own pipeline's images (handed over by digest) or none, never
/// the other's; the tag ends holding one complete index.
#[test]
fn two_pipelines_racing_each_publish_only_their_own_builds() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    let build = |revision: &str| -> (String, String) {
        // The build jobs push the shared per-arch tags and hand over what they pushed.
        (
            built(&reg, "latest", "amd64", Kind::Oci, revision),
            built(&reg, "latest", "arm64", Kind::Oci, revision),
        )
    };
    let earlier = build(EARLIER);
    let this = build(THIS);
    let start = |revision: &str, (amd, arm): &(String, String), hand_off: bool| {
        let mut extra = vec![
            ("CI_COMMIT_SHA", revision.to_string()),
            ("MULTIARCH_TIMEOUT", "3s".to_string()),
        ];
        if hand_off {
            extra.push(("MULTIARCH_SOURCE_LINUX_AMD64", format!("{repo}@{amd}")));
            extra.push(("MULTIARCH_SOURCE_LINUX_ARM64", format!("{repo}@{arm}")));
        }
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let work = tempfile::tempdir().unwrap();
        let child = multiarch_process(&job(&reg, &extra), work.path())
            .arg("push")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child, work)
    };

    // With the hand-off, both publish at once, each its own images.
    let (a, _wa) = start(EARLIER, &earlier, true);
    let (b, _wb) = start(THIS, &this, true);
    let mut published = Vec::new();
    for (child, (amd, arm)) in [(a, &earlier), (b, &this)] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let line = String::from_utf8(out.stdout).unwrap();
        let digest = line.trim().rsplit_once('@').unwrap().1.to_string();
        assert_eq!(
            children(&reg, &format!("group/app@{digest}")),
            [amd.clone(), arm.clone()],
            "each index holds its own pipeline's builds"
        );
        published.push(digest);
    }
    let now = support::sha256(&reg.raw("group/app:latest").unwrap());
    assert!(
        published.contains(&now),
        "the tag holds one of the two indexes"
    );

    // Without the hand-off, the earlier pipeline's job sees only the later builds under the
    // tags: it publishes nothing (exit 3, naming both revisions), the later one publishes.
    let (a, _wa) = start(EARLIER, &earlier, false);
    let (b, _wb) = start(THIS, &this, false);
    let out = a.wait_with_output().unwrap();
    let err = plain(&stderr_of(&out));
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("built from revision {}", &THIS[..8])),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = b.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(children(&reg, "group/app:latest"), [this.0, this.1]);
}

/// When GitLab created this pipeline, and images made before it, during it, and reproducibly.
const STARTED: &str = "2026-12-04T12:07:14Z";
const EARLIER_BUILD: &str = "2026-12-04T11:02:00.5Z";
const THIS_BUILD: &str = "2026-12-04T12:09:41.123456789Z";

/// An unlabelled `linux/{arch}` image under `group/app:latest-{arch}`, created at `created`, by
/// kaniko (its history says so); its digest.
fn unlabelled(reg: &Registry, arch: &str, created: &str) -> String {
    push_config(
        reg,
        &format!("group/app:latest-{arch}"),
        &format!("linux/{arch}"),
        serde_json::json!({
            "created": created,
            "history": [{"created": created, "author": "kaniko", "created_by": "COPY app /app"}],
        }),
    )
}

#[test]
fn unlabelled_images_created_before_the_pipeline_started_are_stale_and_waited_past() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    unlabelled(&reg, "amd64", THIS_BUILD);
    unlabelled(&reg, "arm64", EARLIER_BUILD);
    let work = tempfile::tempdir().unwrap();
    let started = [("CI_PIPELINE_CREATED_AT", STARTED)];

    // At the deadline: exit 3, naming what the tag holds; the fix before the switch.
    let out = multiarch(
        &job(&reg, &[("MULTIARCH_TIMEOUT", "2s"), started[0]]),
        work.path(),
    )
    .arg("push")
    .output()
    .unwrap();
    let err = plain(&stderr_of(&out));
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!(
            "  - {repo}:latest-arm64: stale: unlabelled, created 2026-12-04T11:02:00.5Z, before this pipeline started at 2026-12-04T12:07:14Z"
        )),
        "{err}"
    );
    // First whether the build pushed there at all, then the cached rebuild a label fixes.
    let said = &err[err.find("error: ").expect("the error")..];
    let pushed = said
        .find("check that this pipeline's build pushed to this tag")
        .expect("the push question");
    let cached = said
        .find("a fully cached rebuild (buildah/podman build --layers, docker's classic builder)")
        .expect("the cached rebuild");
    let label = said
        .find("/kaniko/executor --label org.opencontainers.image.revision=$CI_COMMIT_SHA")
        .expect("kaniko's own line");
    assert!(pushed < cached && cached < label, "{said}");
    let hand_off = said
        .find("MULTIARCH_SOURCE_LINUX_ARM64=<repository>@sha256:")
        .expect("the hand-off");
    let off = said
        .find("MULTIARCH_REVISION=none")
        .expect("the switch, last");
    assert!(label < hand_off && hand_off < off, "{said}");
    assert!(!err.contains("buildah build"), "{err}");
    assert!(
        err.contains("holds an unlabelled image created 2026-12-04T11:02:00.5Z"),
        "{err}"
    );
    assert!(reg.raw("group/app:latest").is_none(), "nothing pushed");
    eprintln!("{err}");

    // This pipeline's arm64 build lands while the job waits: HEAD polling sees the tag move.
    let mut child = multiarch_process(
        &job(&reg, &[("MULTIARCH_TIMEOUT", "2m"), started[0]]),
        work.path(),
    )
    .arg("push")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "push must be waiting");
    let arm = unlabelled(&reg, "arm64", THIS_BUILD);
    let out = child.wait_with_output().unwrap();
    let err = plain(&stderr_of(&out));
    assert!(out.status.success(), "{err}");
    assert_eq!(children(&reg, "group/app:latest")[1], arm);
    assert!(
        err.contains("stale: unlabelled and created before this pipeline started"),
        "{err}"
    );
    assert!(
        err.contains("created 2026-12-04T12:09:41.123456789Z, after this pipeline started at 2026-12-04T12:07:14Z, so it is taken as this pipeline's build"),
        "{err}"
    );

    // MULTIARCH_REQUIRE_REVISION refuses even images made during the pipeline.
    let out = multiarch(
        &job(
            &reg,
            &[
                ("MULTIARCH_TIMEOUT", "1s"),
                ("MULTIARCH_REQUIRE_REVISION", "true"),
                started[0],
            ],
        ),
        work.path(),
    )
    .args(["push", "--tags", "strict"])
    .output()
    .unwrap();
    exited(&out, 3);
}

#[test]
fn beside_a_labelled_build_an_unlabelled_image_made_during_the_pipeline_is_another_pipelines() {
    // The first pipeline whose builds are labelled: the previous, unlabelled pipeline's arm64
    // build finished late, after this pipeline started, and replaced this pipeline's under the
    // tag. Its time alone would pass it; this pipeline's labelled amd64 build says it is not one
    // of this pipeline's.
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    built(&reg, "latest", "amd64", Kind::Oci, THIS);
    unlabelled(&reg, "arm64", THIS_BUILD);
    let work = tempfile::tempdir().unwrap();
    let started = ("CI_PIPELINE_CREATED_AT", STARTED);
    let push = |more: &[(&str, &str)]| {
        let mut vars = vec![("MULTIARCH_TIMEOUT", "2s"), started];
        vars.extend_from_slice(more);
        multiarch(&job(&reg, &vars), work.path())
            .arg("push")
            .output()
            .unwrap()
    };
    let out = push(&[]);
    let err = plain(&exited(&out, 3));
    assert!(
        err.contains(&format!(
            "  - {repo}:latest-arm64: stale: unlabelled, while {repo}:latest-amd64 carries this pipeline's revision label: another pipeline's build"
        )),
        "{err}"
    );
    assert!(err.contains("this pipeline's builds carry a revision label, so an unlabelled image under a source tag is another pipeline's"), "{err}");
    assert!(
        err.contains("holds an unlabelled image (this pipeline's builds are labelled)"),
        "{err}"
    );
    assert!(
        !err.contains("so it is taken as this pipeline's build"),
        "{err}"
    );
    assert!(reg.raw("group/app:latest").is_none(), "nothing pushed");

    // This pipeline's arm64 build lands again: published.
    let arm = built(&reg, "latest", "arm64", Kind::Oci, THIS);
    let out = push(&[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(children(&reg, "group/app:latest")[1], arm);

    // A digest handed over is exact: unlabelled, it is still taken (with the warning).
    let handed = unlabelled(&reg, "arm64", THIS_BUILD);
    let out = push(&[("MULTIARCH_SOURCE_LINUX_ARM64", &format!("{repo}@{handed}"))]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(children(&reg, "group/app:latest")[1], handed);
}

#[test]
fn a_spec_may_name_a_vendors_image_beside_this_pipelines_labelled_build() {
    // A manifest-tool spec: this pipeline's labelled amd64 build by tag, and for arm64 a
    // vendor's unlabelled base (reproducible: created at 1970-01-01T00:00:01Z) — by tag, then
    // pinned by digest with a real, older date.
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    built(&reg, "latest", "amd64", Kind::Oci, THIS);
    let vendor = push_config(
        &reg,
        "vendor/base:1",
        "linux/arm64",
        serde_json::json!({"created": "1970-01-01T00:00:01Z"}),
    );
    let work = tempfile::tempdir().unwrap();
    let spec = |arm: &str| {
        format!(
            "image: {repo}:latest\nmanifests:\n  - image: {repo}:latest-amd64\n    platform:\n      architecture: amd64\n      os: linux\n  - image: {arm}\n    platform:\n      architecture: arm64\n      os: linux\n"
        )
    };
    std::fs::write(
        work.path().join("spec.yml"),
        spec(&reg.repo("vendor/base:1")),
    )
    .unwrap();
    let started = ("CI_PIPELINE_CREATED_AT", STARTED);
    let out = multiarch(
        &job(&reg, &[("MULTIARCH_TIMEOUT", "2s"), started]),
        work.path(),
    )
    .args(["push", "--spec", "spec.yml"])
    .output()
    .unwrap();
    let err = plain(&stderr_of(&out));
    assert!(out.status.success(), "{err}");
    assert_eq!(children(&reg, "group/app:latest")[1], vendor);
    assert!(err.contains("cannot be dated"), "{err}");

    // Pinned by digest: one image no pipeline can replace, taken as it is, whatever its date.
    let dated = push_config(
        &reg,
        "vendor/base:2",
        "linux/arm64",
        serde_json::json!({"created": EARLIER_BUILD}),
    );
    let pinned = format!("{}@{dated}", reg.repo("vendor/base"));
    std::fs::write(work.path().join("spec.yml"), spec(&pinned)).unwrap();
    let out = multiarch(
        &job(&reg, &[("MULTIARCH_TIMEOUT", "2s"), started]),
        work.path(),
    )
    .args(["push", "--spec", "spec.yml", "--tags", "pinned"])
    .output()
    .unwrap();
    let err = plain(&stderr_of(&out));
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("named by its digest in the spec: taken as it is"),
        "{err}"
    );
    assert_eq!(children(&reg, "group/app:pinned")[1], dated);
}

#[test]
fn unlabelled_images_that_cannot_be_dated_fall_back_to_the_label_rule() {
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    // The commit's time (SOURCE_DATE_EPOCH), epoch 0, no created at all: not build times.
    for (amd, arm, why) in [
        (
            Some("2026-11-27T03:38:34Z"),
            Some("1970-01-01T00:00:00Z"),
            [
                "is the commit's time (a reproducible build)",
                "is a fixed placeholder",
            ],
        ),
        (
            None,
            Some("not a date"),
            ["its config has no created time", "is not a date"],
        ),
    ] {
        for (arch, created) in [("amd64", amd), ("arm64", arm)] {
            let mut extra = serde_json::json!({});
            if let Some(c) = created {
                extra["created"] = serde_json::json!(c);
            }
            push_config(
                &reg,
                &format!("group/app:latest-{arch}"),
                &format!("linux/{arch}"),
                extra,
            );
        }
        let started = ("CI_PIPELINE_CREATED_AT", STARTED);
        let out = multiarch(&job(&reg, &[started]), work.path())
            .arg("push")
            .output()
            .unwrap();
        let err = plain(&stderr_of(&out));
        assert!(out.status.success(), "{err}");
        for w in why {
            assert!(err.contains(w), "{w}: {err}");
        }
        // No builder trace: every builder's line.
        assert!(err.contains("buildah build --label"), "{err}");
        assert!(err.contains("docker buildx build --label"), "{err}");
        assert!(err.contains("/kaniko/executor --label"), "{err}");
        let out = multiarch(
            &job(
                &reg,
                &[
                    started,
                    ("MULTIARCH_REQUIRE_REVISION", "true"),
                    ("MULTIARCH_TIMEOUT", "1s"),
                ],
            ),
            work.path(),
        )
        .args(["push", "--tags", "strict"])
        .output()
        .unwrap();
        exited(&out, 3);
    }

    // A pipeline start GitLab would never write: exit 2 naming it, before any request.
    let out = multiarch(
        &job(&reg, &[("CI_PIPELINE_CREATED_AT", "04/12/2026 12:07")]),
        work.path(),
    )
    .arg("push")
    .output()
    .unwrap();
    exited(&out, 2);
    assert!(
        stderr_of(&out).contains("CI_PIPELINE_CREATED_AT = \"04/12/2026 12:07\" is invalid"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_platform_no_build_job_handed_over_names_the_build_components_archs() {
    let reg = Registry::start();
    let repo = reg.repo("group/app");
    // The build jobs build amd64 only (archs: [amd64]); this job awaits amd64 and arm64.
    let amd = built(&reg, "build", "amd64", Kind::Oci, THIS);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(
        &job(
            &reg,
            &[
                ("MULTIARCH_SOURCE_LINUX_AMD64", &format!("{repo}@{amd}")),
                ("MULTIARCH_TIMEOUT", "1s"),
            ],
        ),
        work.path(),
    )
    .arg("push")
    .output()
    .unwrap();
    let err = exited(&out, 3);
    assert!(
        err.contains(&format!(
            "  - {repo}:latest-arm64: missing, and no build job handed over MULTIARCH_SOURCE_LINUX_ARM64 (others were)"
        )),
        "{err}"
    );
    assert!(
        err.contains("MULTIARCH_PLATFORMS must list the platforms the build jobs build (with the build components: their `archs` input)"),
        "{err}"
    );
}
