//! The order of the push phase against a scripted registry: what is pushed when, what a refused
//! tag leaves behind, and that a refused push credential ends the run before any waiting.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::testing::{plan, protected_tag as refused, Scripted};

/// `super::run` for the runs here that publish (or fail): the outcome, not `Run`.
async fn run(plan: &Plan, registry: &Scripted, phases: &dyn Phases) -> Result<Outcome, Error> {
    match super::run(plan, registry, phases).await? {
        Run::Published(outcome) => Ok(outcome),
        Run::Incomplete(awaited) => panic!("nothing published, awaiting {awaited:?}"),
        Run::Superseded { kept, .. } => panic!("nothing published, every tag kept: {kept:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn pushes_the_index_by_digest_first_then_every_tag() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    let plan = plan(&[("MULTIARCH_TAGS", "latest,1.4.2")]);
    let outcome = run(&plan, &registry, &NoPhases).await.unwrap();
    let digest = outcome.index.digest.to_string();
    assert_eq!(
        registry.state.borrow().pushed,
        [
            format!("r.example/app@{digest}"),
            "r.example/app:latest".to_string(),
            "r.example/app:1.4.2".to_string()
        ]
    );
    assert!(outcome.failures.is_empty());
    // Again: every tag holds it already, nothing is sent.
    let again = run(&plan, &registry, &NoPhases).await.unwrap();
    assert!(again.targets.iter().all(|(_, s)| *s == Status::Unchanged));
    assert_eq!(registry.state.borrow().pushed.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn one_tag_is_pushed_alone_its_put_is_all_or_nothing() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    run(&plan(&[]), &registry, &NoPhases).await.unwrap();
    assert_eq!(registry.state.borrow().pushed, ["r.example/app:latest"]);
}

#[tokio::test(start_paused = true)]
async fn a_refused_tag_leaves_the_others_moved_and_says_so() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry
        .state
        .borrow_mut()
        .refuse
        .insert("r.example/app:1.4.2".into(), refused);
    let plan = plan(&[("MULTIARCH_TAGS", "latest,1.4.2,1.4")]);
    let outcome = run(&plan, &registry, &NoPhases).await.unwrap();
    let statuses: Vec<Status> = outcome.targets.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [Status::Pushed, Status::Failed, Status::Pushed]);
    let e = outcome.end(None).unwrap_err();
    assert_eq!(e.exit_code(), 5);
    let text = e.to_string();
    assert!(
        text.starts_with("1 of 3 target tag(s) did not move; the index sha256:"),
        "{text}"
    );
    assert!(
        text.contains("these hold it: r.example/app:latest, r.example/app:1.4\n  - pushing to r.example/app:1.4.2: "),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_push_credential_ends_the_run_before_any_waiting() {
    // arm64 never appears: without the early check this would wait the whole 15 minutes.
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64")]);
    registry.state.borrow_mut().deny_push = true;
    let start = Instant::now();
    let e = run(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry, &NoPhases)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 5, "{e}");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(registry.state.borrow().pushed.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_credential_that_may_look_but_not_upload_ends_the_run_before_any_waiting() {
    // arm64 never appears: without the early check this would wait the whole 15 minutes.
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64")]);
    registry.state.borrow_mut().deny_upload = true;
    let start = Instant::now();
    let e = run(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry, &NoPhases)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 5, "{e}");
    assert!(e.to_string().starts_with("checking push access to r.example/app: the registry refused access (HTTP 401 Unauthorized; credentials from CI_REGISTRY_USER/CI_REGISTRY_PASSWORD)"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(registry.state.borrow().pushed.is_empty());
}

#[tokio::test(start_paused = true)]
async fn push_access_is_checked_once_per_destination_whatever_the_number_of_tags() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    let plan = plan(&[
        ("MULTIARCH_IMAGE", "r.example/app,r.example/mirror"),
        ("MULTIARCH_TAGS", "latest,1"),
    ]);
    run(&plan, &registry, &NoPhases).await.unwrap();
    // Children come from app: the mirror gets uploads (or mounts), app itself none.
    assert_eq!(
        registry.state.borrow().push_checks,
        [
            ("r.example/app".to_string(), false),
            ("r.example/mirror".to_string(), true)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn push_access_is_checked_once_even_when_the_tags_are_looked_at_again_after_a_wait() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 5, "arm64")]);
    run(&plan(&[("MULTIARCH_TIMEOUT", "1m")]), &registry, &NoPhases)
        .await
        .unwrap();
    assert_eq!(
        registry.state.borrow().push_checks,
        [("r.example/app".to_string(), false)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_pushes_nothing_and_needs_no_push_credentials() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.state.borrow_mut().deny_push = true;
    registry.state.borrow_mut().deny_upload = true;
    let outcome = run(
        &plan(&[("MULTIARCH_DRY_RUN", "true")]),
        &registry,
        &NoPhases,
    )
    .await
    .unwrap();
    assert_eq!(outcome.targets[0].1, Status::Planned);
    assert!(registry.state.borrow().pushed.is_empty());
    assert!(registry.state.borrow().push_checks.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_says_which_tags_a_push_would_keep_reading_with_pull_access_only() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.state.borrow_mut().deny_push = true;
    registry.state.borrow_mut().deny_upload = true;
    let newer = holds(&registry, "latest", &[(PROJECT, "42"), (PIPELINE, "101")]);
    let plan = pipeline(
        "100",
        &[
            ("MULTIARCH_DRY_RUN", "true"),
            ("MULTIARCH_TAGS", "latest,main"),
        ],
    );
    let Run::Published(outcome) = super::run(&plan, &registry, &NoPhases).await.unwrap() else {
        panic!("a dry run plans")
    };
    assert_eq!(
        outcome.targets.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [Status::Kept, Status::Planned]
    );
    assert_eq!(outcome.kept[0].holds, newer);
    assert!(
        outcome.kept[0].why.contains("pipeline 101"),
        "{}",
        outcome.kept[0].why
    );
    assert_eq!(outcome.unread, None);
    let text = crate::report::plan(&plan, &outcome);
    assert!(
        text.contains(&format!("  r.example/app:latest  kept: holds {newer} (")),
        "{text}"
    );
    assert!(
        text.contains("  r.example/app:main  moves to this index\n"),
        "{text}"
    );
    assert!(registry.state.borrow().pushed.is_empty());
    assert!(registry.state.borrow().push_checks.is_empty());

    // Sources another pipeline's and every tag newer: the preview ends as the push would, at
    // once and superseded, not at the wait's deadline (the paused clock would jump to it).
    registry.stale_until("latest-amd64", 100_000);
    registry.stale_until("latest-arm64", 100_000);
    let plan = pipeline(
        "100",
        &[("MULTIARCH_DRY_RUN", "true"), ("MULTIARCH_TIMEOUT", "15m")],
    );
    let start = Instant::now();
    let got = super::run(&plan, &registry, &NoPhases).await.unwrap();
    let Run::Superseded { kept, .. } = got else {
        panic!("{got:?}")
    };
    assert_eq!(kept[0].holds, newer);
    assert!(
        start.elapsed() < Duration::from_secs(15 * 60),
        "{:?}",
        start.elapsed()
    );
}

/// Makes `tag` of `r.example/app` hold an index recording `annotations`; its digest.
fn holds(registry: &Scripted, tag: &str, annotations: &[(&str, &str)]) -> Digest {
    let a: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    let bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_INDEX,
        "manifests": [],
        "annotations": a,
    }))
    .unwrap();
    let digest = Digest::of(&bytes);
    let mut state = registry.state.borrow_mut();
    state
        .raw
        .insert(format!("r.example/app@{digest}"), bytes.clone());
    state.raw.insert(format!("r.example/app:{tag}"), bytes);
    state
        .tags
        .insert(format!("r.example/app:{tag}"), digest.clone());
    digest
}

const PROJECT: &str = crate::labels::PROJECT;
const PIPELINE: &str = crate::labels::PIPELINE;
const VERSION: &str = crate::labels::VERSION;

fn pipeline(id: &'static str, extra: &[(&'static str, &'static str)]) -> Plan {
    let mut vars = vec![("CI_PROJECT_ID", "42"), ("CI_PIPELINE_ID", id)];
    vars.extend_from_slice(extra);
    plan(&vars)
}

#[tokio::test(start_paused = true)]
async fn a_tag_holding_a_newer_pipelines_index_is_kept_unless_rollback_is_allowed() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    let newer = holds(
        &registry,
        "latest",
        &[
            (PROJECT, "42"),
            (PIPELINE, "101"),
            ("org.opencontainers.image.revision", "other"),
        ],
    );
    let outcome = run(&pipeline("100", &[]), &registry, &NoPhases)
        .await
        .unwrap();
    assert_eq!(outcome.targets[0].1, Status::Kept);
    assert_eq!(outcome.kept[0].holds, newer);
    assert!(
        outcome.kept[0]
            .why
            .contains("pipeline 101 (revision other)"),
        "{}",
        outcome.kept[0].why
    );
    assert!(
        outcome.kept[0].why.contains("this pipeline 100"),
        "{}",
        outcome.kept[0].why
    );
    assert!(registry.state.borrow().pushed.is_empty());
    assert!(outcome.end(None).is_ok(), "kept tags are exit 0");

    let outcome = run(
        &pipeline("100", &[("MULTIARCH_ROLLBACK", "allow")]),
        &registry,
        &NoPhases,
    )
    .await
    .unwrap();
    assert_eq!(outcome.targets[0].1, Status::Pushed);
    assert!(outcome.kept.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_older_pipeline_whose_sources_a_newer_one_replaced_is_kept_at_once_not_waited() {
    // Pipeline 101 built and published; this is pipeline 100's manifest job, running last: its
    // sources hold 101's builds (stale for it) and will never change back.
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.stale_until("latest-amd64", 100_000);
    registry.stale_until("latest-arm64", 100_000);
    let newer = holds(&registry, "latest", &[(PROJECT, "42"), (PIPELINE, "101")]);
    let start = Instant::now();
    let got = super::run(
        &pipeline("100", &[("MULTIARCH_TIMEOUT", "15m")]),
        &registry,
        &NoPhases,
    )
    .await
    .unwrap();
    let Run::Superseded { kept, not_ready } = got else {
        panic!("{got:?}")
    };
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].holds, newer);
    assert!(kept[0].why.contains("pipeline 101"), "{}", kept[0].why);
    assert_eq!(not_ready.len(), 2);
    assert!(registry.state.borrow().pushed.is_empty());

    // A tag that would move (here: one that does not exist yet) is worth waiting for: the
    // run waits, and at its deadline fails as before.
    let got = super::run(
        &pipeline(
            "100",
            &[
                ("MULTIARCH_TIMEOUT", "30s"),
                ("MULTIARCH_TAGS", "latest,1.0"),
            ],
        ),
        &registry,
        &NoPhases,
    )
    .await;
    assert!(matches!(got, Err(Error::SourcesNotReady { .. })), "{got:?}");
    // So does a rollback, which would move it.
    let got = super::run(
        &pipeline(
            "100",
            &[
                ("MULTIARCH_TIMEOUT", "30s"),
                ("MULTIARCH_ROLLBACK", "allow"),
            ],
        ),
        &registry,
        &NoPhases,
    )
    .await;
    assert!(matches!(got, Err(Error::SourcesNotReady { .. })), "{got:?}");
}

#[tokio::test(start_paused = true)]
async fn a_newer_pipeline_publishing_during_the_wait_ends_it_soon_with_every_tag_kept() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.stale_until("latest-amd64", 100_000);
    let plan = pipeline("100", &[("MULTIARCH_TIMEOUT", "15m")]);
    let start = Instant::now();
    let publishing = async {
        tokio::time::sleep(Duration::from_secs(20)).await;
        holds(&registry, "latest", &[(PROJECT, "42"), (PIPELINE, "101")])
    };
    let (got, newer) = tokio::join!(super::run(&plan, &registry, &NoPhases), publishing);
    let Run::Superseded { kept, .. } = got.unwrap() else {
        panic!("not superseded")
    };
    // Looked at again every 10 s while a source is stale: not at the 15-minute deadline.
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(20) + 2 * wait::RELOOK_EVERY,
        "{took:?}"
    );
    assert_eq!(kept[0].holds, newer);
    assert!(registry.state.borrow().pushed.is_empty());

    // Where no later pipeline publishes, the wait runs to its deadline as before; the index the
    // tag holds (an earlier pipeline's) is read once, the looks again are HEADs.
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.stale_until("latest-amd64", 100_000);
    let older = holds(&registry, "latest", &[(PROJECT, "42"), (PIPELINE, "99")]);
    let plan = pipeline("100", &[("MULTIARCH_TIMEOUT", "60s")]);
    let got = super::run(&plan, &registry, &NoPhases).await;
    assert!(matches!(got, Err(Error::SourcesNotReady { .. })), "{got:?}");
    let read = registry
        .state
        .borrow()
        .fetched
        .iter()
        .filter(|f| f.ends_with(&older.to_string()))
        .count();
    assert_eq!(read, 1);
}

#[tokio::test(start_paused = true)]
async fn an_index_recording_no_order_or_an_older_pipeline_is_moved_as_before() {
    for recorded in [
        &[("org.opencontainers.image.revision", "other")][..],
        &[(PROJECT, "7"), (PIPELINE, "900")],
        &[(PROJECT, "42"), (PIPELINE, "99")],
    ] {
        let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
        holds(&registry, "latest", recorded);
        let outcome = run(&pipeline("100", &[]), &registry, &NoPhases)
            .await
            .unwrap();
        assert_eq!(outcome.targets[0].1, Status::Pushed, "{recorded:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn floating_tags_never_move_to_a_lower_version() {
    let registry = Scripted::new(&[("1.9.1-amd64", 0, "amd64"), ("1.9.1-arm64", 0, "arm64")]);
    let release = |version| [(PROJECT, "42"), (PIPELINE, "200"), (VERSION, version)];
    let two = holds(&registry, "latest", &release("v2.0.1"));
    holds(&registry, "1", &release("v1.9.0"));
    holds(&registry, "1.9", &release("v1.9.0"));
    let plan = pipeline(
        "201",
        &[("MULTIARCH_TAGS", "semver"), ("CI_COMMIT_TAG", "v1.9.1")],
    );
    let outcome = run(&plan, &registry, &NoPhases).await.unwrap();
    let statuses: Vec<(String, Status)> = outcome
        .targets
        .iter()
        .map(|(t, s)| (t.tag().unwrap().to_string(), *s))
        .collect();
    assert_eq!(
        statuses,
        [
            ("1.9.1".into(), Status::Pushed),
            ("1.9".into(), Status::Pushed),
            ("1".into(), Status::Pushed),
            ("latest".into(), Status::Kept),
        ]
    );
    assert_eq!(registry.state.borrow().tags["r.example/app:latest"], two);
    assert!(
        outcome.kept[0].why.contains("it holds version v2.0.1"),
        "{}",
        outcome.kept[0].why
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_pipeline_of_the_same_content_adopts_the_index_the_tags_hold() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    let tags = [("MULTIARCH_TAGS", "latest,1.4")];
    let first = run(&pipeline("100", &tags), &registry, &NoPhases)
        .await
        .unwrap();
    let pushed = registry.state.borrow().pushed.len();
    // A new pipeline for the same commit: same children, same revision, another pipeline id.
    let again = run(&pipeline("105", &tags), &registry, &NoPhases)
        .await
        .unwrap();
    assert_eq!(again.index.digest, first.index.digest);
    assert_eq!(again.index.bytes, first.index.bytes);
    assert!(again.targets.iter().all(|(_, s)| *s == Status::Unchanged));
    assert_eq!(
        registry.state.borrow().pushed.len(),
        pushed,
        "nothing pushed"
    );
    // An older pipeline of the same content, finishing last: also a no-op.
    let older = run(&pipeline("99", &tags), &registry, &NoPhases)
        .await
        .unwrap();
    assert_eq!(older.index.digest, first.index.digest);
    assert!(older.kept.is_empty());

    // One tag at the equivalent index, another at a later pipeline's other content that this
    // run moves: adopting 100's bytes would lower what that tag records, so this run's own.
    holds(
        &registry,
        "1.4",
        &[
            (PROJECT, "42"),
            (PIPELINE, "103"),
            ("org.opencontainers.image.revision", "x"),
        ],
    );
    let own = run(&pipeline("105", &tags), &registry, &NoPhases)
        .await
        .unwrap();
    assert_ne!(own.index.digest, first.index.digest);
    assert!(own.targets.iter().all(|(_, s)| *s == Status::Pushed));
}

#[tokio::test(start_paused = true)]
async fn appending_moves_the_tag_it_merged_into_whoever_published_it() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    holds(&registry, "latest", &[(PROJECT, "42"), (PIPELINE, "101")]);
    let outcome = run(
        &pipeline("100", &[("MULTIARCH_APPEND", "true")]),
        &registry,
        &NoPhases,
    )
    .await
    .unwrap();
    assert_eq!(outcome.targets[0].1, Status::Pushed);
}

#[tokio::test(start_paused = true)]
async fn if_complete_pushes_nothing_until_the_set_is_complete_then_publishes_as_push_does() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 30, "arm64")]);
    let if_complete = plan(&[
        ("MULTIARCH_TIMEOUT", "15m"),
        ("MULTIARCH_IF_COMPLETE", "true"),
    ]);
    let start = Instant::now();
    let early = super::run(&if_complete, &registry, &NoPhases)
        .await
        .unwrap();
    assert!(
        matches!(early, Run::Incomplete(ref a) if a.len() == 1),
        "{early:?}"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(registry.state.borrow().pushed.is_empty());
    tokio::time::sleep(Duration::from_secs(30)).await;
    let completing = run(&if_complete, &registry, &NoPhases).await.unwrap();
    let plain = run(&plan(&[]), &registry, &NoPhases).await.unwrap();
    assert_eq!(completing.index.bytes, plain.index.bytes);
    assert_eq!(registry.state.borrow().pushed, ["r.example/app:latest"]);
}

/// Waits (on the paused clock) until this run has pushed `latest`, then, `after` later, makes
/// `latest` hold the index of `pipeline`, as another pipeline's completer landing just after.
async fn lands_after(registry: &Scripted, after: Duration, pipeline: &'static str) -> Digest {
    lands_after_with(registry, after, &[(PROJECT, "42"), (PIPELINE, pipeline)]).await
}

/// `lands_after`, the index landing recording `annotations`.
async fn lands_after_with(
    registry: &Scripted,
    after: Duration,
    annotations: &[(&str, &str)],
) -> Digest {
    while !registry
        .state
        .borrow()
        .pushed
        .iter()
        .any(|p| p == "r.example/app:latest")
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(after).await;
    holds(registry, "latest", annotations)
}

#[tokio::test(start_paused = true)]
async fn a_completer_pushes_again_when_an_older_pipelines_completer_lands_just_after_it() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    let plan = pipeline("101", &[("MULTIARCH_IF_COMPLETE", "true")]);
    let (got, _) = tokio::join!(
        run(&plan, &registry, &NoPhases),
        lands_after(&registry, Duration::from_millis(50), "100")
    );
    let outcome = got.unwrap();
    let state = registry.state.borrow();
    assert_eq!(
        state.pushed,
        ["r.example/app:latest", "r.example/app:latest"]
    );
    assert_eq!(state.tags["r.example/app:latest"], outcome.index.digest);
    assert_eq!(outcome.targets[0].1, Status::Pushed);
    assert!(outcome.kept.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_completer_reports_kept_when_a_newer_pipelines_completer_lands_just_after_it() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    let plan = pipeline("100", &[("MULTIARCH_IF_COMPLETE", "true")]);
    let (got, newer) = tokio::join!(
        run(&plan, &registry, &NoPhases),
        lands_after(&registry, Duration::from_millis(50), "101")
    );
    let outcome = got.unwrap();
    assert_eq!(registry.state.borrow().pushed, ["r.example/app:latest"]);
    assert_eq!(registry.state.borrow().tags["r.example/app:latest"], newer);
    assert_eq!(outcome.targets[0].1, Status::Kept);
    assert_eq!(outcome.kept[0].holds, newer);
    assert!(
        outcome.kept[0].why.contains("just after its PUT"),
        "{}",
        outcome.kept[0].why
    );
    assert!(outcome.end(None).is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_plain_push_does_not_look_again_after_its_put() {
    // The manifest job has its resource_group: a push does not look after its PUT (one request
    // less on every run), so a racer landing just after it is not seen.
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    let plan = pipeline("101", &[]);
    let (got, older) = tokio::join!(
        run(&plan, &registry, &NoPhases),
        lands_after(&registry, Duration::from_millis(50), "100")
    );
    assert_eq!(got.unwrap().targets[0].1, Status::Pushed);
    assert_eq!(registry.state.borrow().pushed, ["r.example/app:latest"]);
    assert_eq!(registry.state.borrow().tags["r.example/app:latest"], older);
}

#[tokio::test(start_paused = true)]
async fn a_release_pushes_latest_again_when_a_lower_release_lands_just_after_it() {
    // Two release pipelines (other refs: the per-ref resource_group does not serialise them)
    // share `latest`: v1.9.1's manifest job, started later, lands just after v2.0.1's.
    let registry = Scripted::new(&[("2.0.1-amd64", 0, "amd64"), ("2.0.1-arm64", 0, "arm64")]);
    let plan = pipeline(
        "101",
        &[("CI_COMMIT_TAG", "v2.0.1"), ("MULTIARCH_TAGS", "semver")],
    );
    let lower = [(PROJECT, "42"), (PIPELINE, "102"), (VERSION, "v1.9.1")];
    let (got, _) = tokio::join!(
        run(&plan, &registry, &NoPhases),
        lands_after_with(&registry, Duration::from_millis(50), &lower)
    );
    let outcome = got.unwrap();
    assert_eq!(
        registry.state.borrow().tags["r.example/app:latest"],
        outcome.index.digest
    );
    let latest = registry
        .state
        .borrow()
        .pushed
        .iter()
        .filter(|p| *p == "r.example/app:latest")
        .count();
    assert_eq!(latest, 2, "pushed again");
}

#[tokio::test(start_paused = true)]
async fn a_completer_reports_an_unordered_index_landing_just_after_it_as_what_the_tag_holds() {
    // Another tool's index (no order recorded) lands just after this run's PUT: left there, and
    // the report does not claim the tag for this run.
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    let plan = pipeline("101", &[("MULTIARCH_IF_COMPLETE", "true")]);
    let (got, theirs) = tokio::join!(
        run(&plan, &registry, &NoPhases),
        lands_after_with(&registry, Duration::from_millis(50), &[])
    );
    let outcome = got.unwrap();
    assert_eq!(registry.state.borrow().pushed, ["r.example/app:latest"]);
    assert_eq!(outcome.targets[0].1, Status::Kept);
    assert_eq!(outcome.kept[0].holds, theirs);
    assert!(outcome.holding().next().is_none());
}
