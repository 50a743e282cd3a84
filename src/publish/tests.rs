//! The order of the push phase against a scripted registry: what is pushed when, what a refused
//! tag leaves behind, and that a refused push credential ends the run before any waiting.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::testing::{plan, Scripted};

fn refused(reference: &str) -> Error {
    Error::AccessDenied {
        action: "pushing to",
        push: true,
        reference: reference.to_string(),
        registry: "r.example".into(),
        credential: "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD".into(),
        reason: "HTTP 403 Forbidden, DENIED: protected tag".into(),
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
    let e = failed(outcome).unwrap_err();
    assert_eq!(e.exit_code(), 5);
    let text = e.to_string();
    assert!(
        text.starts_with("1 of 3 target tag(s) did not move; the index sha256:"),
        "{text}"
    );
    assert!(
        text.contains("these hold it: r.example/app:latest, r.example/app:1.4\n  - r.example/app:1.4.2: pushing to"),
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
async fn a_dry_run_pushes_nothing_and_needs_no_push_credentials() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.state.borrow_mut().deny_push = true;
    let outcome = run(
        &plan(&[("MULTIARCH_DRY_RUN", "true")]),
        &registry,
        &NoPhases,
    )
    .await
    .unwrap();
    assert_eq!(outcome.targets[0].1, Status::Planned);
    assert!(registry.state.borrow().pushed.is_empty());
}
