//! Waiting on a paused clock against a scripted registry whose sources appear at set times.
//! Acceptance is the integration tests against the real registry; these cover the timing edges.

use super::*;
use crate::testing::{plan, Logs, Scripted};

#[tokio::test(start_paused = true)]
async fn picks_up_a_late_source_within_a_few_seconds() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 100, "arm64")]);
    let start = Instant::now();
    let got = gather(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry)
        .await
        .unwrap();
    let lag = start.elapsed() - Duration::from_secs(100);
    assert_eq!(got.resolved.len(), 2);
    assert!(
        lag <= Duration::from_secs(4),
        "seen {lag:?} after it landed"
    );
    // One GET each in the first round, then HEADs only for the late one, then its GET.
    assert_eq!(registry.gets.get(), 3);
    let heads = registry.heads.get();
    assert!((25..=200).contains(&heads), "{heads} HEADs in 100 s");
}

#[tokio::test(start_paused = true)]
async fn an_unlabelled_source_taken_before_a_labelled_one_appears_is_stale_after_all() {
    // arm64 is there at once, unlabelled and undatable: taken (with a warning). amd64 lands
    // later with this pipeline's label: this pipeline labels its builds, so arm64 is another
    // pipeline's, looked at again, and named at the deadline.
    let registry = Scripted::new(&[("latest-amd64", 20, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.unlabelled("latest-arm64");
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "60s")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3);
    assert!(
        e.to_string().contains("  - r.example/app:latest-arm64: stale: unlabelled, while r.example/app:latest-amd64 carries this pipeline's revision label: another pipeline's build"),
        "{e}"
    );
    // Without the check (no revision expected) it is taken as before.
    let registry = Scripted::new(&[("latest-amd64", 20, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.unlabelled("latest-arm64");
    let got = gather(
        &plan(&[("MULTIARCH_TIMEOUT", "60s"), ("MULTIARCH_REVISION", "none")]),
        &registry,
    )
    .await
    .unwrap();
    assert_eq!(got.resolved.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn deadline_names_every_missing_source_with_exit_3() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64")]);
    let start = Instant::now();
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "90s")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3);
    assert!(e.to_string().contains("r.example/app:latest-arm64"), "{e}");
    assert_eq!(start.elapsed(), Duration::from_secs(90));
}

#[tokio::test(start_paused = true)]
async fn zero_timeout_looks_once() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 1, "arm64")]);
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "0")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3);
    assert_eq!((registry.gets.get(), registry.heads.get()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn allow_missing_returns_what_exists_at_the_deadline() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64")]);
    let got = gather(
        &plan(&[
            ("MULTIARCH_TIMEOUT", "10s"),
            ("MULTIARCH_ALLOW_MISSING", "true"),
        ]),
        &registry,
    )
    .await
    .unwrap();
    assert_eq!(got.resolved.len(), 1);
    assert_eq!(got.missing, ["r.example/app:latest-arm64"]);
    // ...but never an index of nothing.
    let registry = Scripted::new(&[]);
    let e = gather(
        &plan(&[
            ("MULTIARCH_TIMEOUT", "10s"),
            ("MULTIARCH_ALLOW_MISSING", "true"),
        ]),
        &registry,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.exit_code(), 3);
}

#[tokio::test(start_paused = true)]
async fn wrong_platform_fails_when_it_appears_not_at_the_deadline() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 20, "amd64")]);
    let start = Instant::now();
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 4);
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_registry_that_never_answers_is_bounded_by_the_wait_and_progress_still_comes() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.state.borrow_mut().hang = Some(Duration::from_secs(35));
    let (_guard, logs) = Logs::capture();
    let start = Instant::now();
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "10s")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 75, "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    // The wait's deadline plus one request limit, not retries on top.
    assert!(
        start.elapsed() < Duration::from_secs(10 + 35 + 5),
        "{:?}",
        start.elapsed()
    );
    // A progress line came while every request hung.
    let logs = logs.text();
    assert!(logs.contains("waiting for sources"), "{logs}");
    assert!(logs.contains("elapsed=30s"), "{logs}");
}

#[tokio::test(start_paused = true)]
async fn a_registry_failing_through_the_deadline_ends_with_75() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.state.borrow_mut().failing_until = Duration::from_secs(3600);
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "60s")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 75);
    // A registry that recovers in time is just a slower success.
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.state.borrow_mut().failing_until = Duration::from_secs(20);
    assert_eq!(
        gather(&plan(&[("MULTIARCH_TIMEOUT", "60s")]), &registry)
            .await
            .unwrap()
            .resolved
            .len(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_source_is_waited_past_and_read_again_only_when_its_tag_moves() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.stale_until("latest-arm64", 60);
    let start = Instant::now();
    let got = gather(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry)
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(60));
    assert!(start.elapsed() <= Duration::from_secs(64));
    assert_eq!(got.resolved[1].images()[0].revision.as_deref(), Some("new"));
    // Two GETs in the first round, one when the tag moved: the stale digest is never re-read.
    assert_eq!(registry.gets.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_source_stale_at_the_deadline_exits_3_naming_both_revisions() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.stale_until("latest-arm64", 3600);
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "30s")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3);
    assert!(
        e.to_string().contains(
            "r.example/app:latest-arm64: stale: built from revision old, this pipeline is new"
        ),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_registry_failing_for_two_minutes_ends_the_wait_with_75_before_the_deadline() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.state.borrow_mut().failing_until = Duration::from_secs(3600);
    let start = Instant::now();
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 75);
    assert!(e.to_string().contains("HTTP 503"), "{e}");
    let took = start.elapsed();
    assert!(
        took >= FAILING_LIMIT && took < FAILING_LIMIT + Duration::from_secs(10),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_wait_deadline_bounds_retries_and_no_wait_leaves_them_a_short_window() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    gather(&plan(&[("MULTIARCH_TIMEOUT", "90s")]), &registry)
        .await
        .unwrap();
    let start = Instant::now();
    gather(&plan(&[("MULTIARCH_TIMEOUT", "0")]), &registry)
        .await
        .unwrap();
    // The wait's (the content check's layer reads have their own, shorter window).
    let wait = Deadline::wait(start).what;
    let deadlines: Vec<Option<Deadline>> = (registry.state.borrow().deadlines.iter())
        .filter(|d| d.is_none_or(|d| d.what == wait))
        .copied()
        .collect();
    assert_eq!(deadlines.len(), 2);
    assert!(deadlines[0].is_some());
    assert_eq!(deadlines[1].map(|d| d.at), Some(start + NO_WAIT_RETRIES));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// Serves `r.example/app:latest-amd64` as an index of `entries` — `(child, architecture the
/// entry says)`, child `n` being an image whose config says `linux/amd64` — each entry written
/// `copies` times; returns the children's references in the order given.
fn index_source(registry: &Scripted, entries: &[(u8, &str)], copies: usize) -> Vec<String> {
    let mut state = registry.state.borrow_mut();
    let mut manifests = Vec::new();
    let mut children = Vec::new();
    for (n, arch) in entries {
        let config = format!(
            r#"{{"os":"linux","architecture":"amd64","config":{{"Labels":{{"org.opencontainers.image.revision":"new","n":"{n}"}}}}}}"#
        )
        .into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
            crate::manifest::OCI_MANIFEST,
            Digest::of(&config),
            config.len()
        )
        .into_bytes();
        let digest = Digest::of(&manifest);
        manifests.push(serde_json::json!({
            "mediaType": crate::manifest::OCI_MANIFEST,
            "digest": digest.to_string(),
            "size": manifest.len(),
            "platform": {"os": "linux", "architecture": arch},
        }));
        let child = format!("r.example/app@{digest}");
        state.raw.insert(Digest::of(&config).to_string(), config);
        state.raw.insert(child.clone(), manifest);
        children.push(child);
    }
    let all: Vec<&serde_json::Value> = manifests
        .iter()
        .flat_map(|m| std::iter::repeat_n(m, copies))
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_INDEX,
        "manifests": all,
    });
    state.raw.insert(
        "r.example/app:latest-amd64".into(),
        serde_json::to_vec(&index).unwrap(),
    );
    children
}

#[tokio::test(start_paused = true)]
async fn an_index_repeating_one_child_reads_that_child_once() {
    let registry = Scripted::new(&[("latest-arm64", 0, "arm64")]);
    let children = index_source(&registry, &[(1, "amd64")], 900);
    let got = gather(&plan(&[("MULTIARCH_TIMEOUT", "0")]), &registry)
        .await
        .unwrap();
    assert_eq!(got.resolved.len(), 2);
    assert_eq!(got.resolved[0].images().len(), 1);
    let fetched = registry.state.borrow().fetched.clone();
    assert_eq!(fetched.len(), 3, "{fetched:?}");
    assert_eq!(fetched.iter().filter(|f| **f == children[0]).count(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_index_that_cannot_be_used_fails_naming_it_before_any_child_is_read() {
    // (entries, copies of each, the error's start)
    type Row<'a> = (&'a [(u8, &'a str)], usize, &'a str);
    let rows: &[Row] = &[
        (
            &[(1, "amd64")],
            1001,
            "r.example/app:latest-amd64 is not a usable source index: it has 1001 entries, more than the 1000 accepted",
        ),
        (
            &[(1, "amd64"), (2, "amd64")],
            200,
            "the source index r.example/app:latest-amd64 lists two different images for linux/amd64: sha256:",
        ),
        (
            &[(1, "amd64"), (2, "x86_64")],
            1,
            "the source index r.example/app:latest-amd64 lists two different images for linux/amd64: sha256:",
        ),
    ];
    for (entries, copies, want) in rows {
        let registry = Scripted::new(&[("latest-arm64", 0, "arm64")]);
        let children = index_source(&registry, entries, *copies);
        let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry)
            .await
            .err()
            .unwrap();
        assert_eq!(e.exit_code(), 4, "{e}");
        let text = e.to_string();
        assert!(text.starts_with(want), "{text}");
        assert!(!text.contains("MULTIARCH_PLATFORMS"), "{text}");
        let fetched = registry.state.borrow().fetched.clone();
        assert!(!fetched.iter().any(|f| children.contains(f)), "{fetched:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn if_complete_looks_once_whatever_the_timeout_and_names_what_it_awaits() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 1, "arm64")]);
    let start = Instant::now();
    let plan = plan(&[
        ("MULTIARCH_TIMEOUT", "15m"),
        ("MULTIARCH_IF_COMPLETE", "true"),
    ]);
    let got = gather(&plan, &registry).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(got.resolved.is_empty());
    assert_eq!(
        got.awaited,
        [("r.example/app:latest-arm64".to_string(), NotReady::Missing)]
    );
    assert_eq!((registry.gets.get(), registry.heads.get()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn if_complete_counts_a_stale_source_as_awaited_and_takes_a_complete_set() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.stale_until("latest-arm64", 60);
    let plan = plan(&[("MULTIARCH_IF_COMPLETE", "true")]);
    let got = gather(&plan, &registry).await.unwrap();
    assert!(
        matches!(
            got.awaited.as_slice(),
            [(r, NotReady::Stale { why: Stale::Revision(old), .. })]
                if r == "r.example/app:latest-arm64" && old == "old"
        ),
        "{:?}",
        got.awaited
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    let got = gather(&plan, &registry).await.unwrap();
    assert!(got.awaited.is_empty());
    assert_eq!(got.resolved.len(), 2);
}
