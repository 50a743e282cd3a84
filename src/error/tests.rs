//! The messages errors compose, checked as a user reads them.

use super::*;

#[test]
fn sources_not_ready_are_listed_one_per_line_with_both_revisions() {
    let e = Error::SourcesNotReady {
        sources: vec![
            ("r/app:latest-amd64".into(), NotReady::Missing),
            (
                "r/app:latest-arm64".into(),
                NotReady::Stale {
                    why: Stale::Revision("1a2b3c4".into()),
                    builder: None,
                    hand_off: None,
                },
            ),
        ],
        expected: Some("3f2a1c0".into()),
    };
    let text = e.to_string();
    assert!(text.starts_with("2 source(s) not ready, nothing was pushed:"));
    assert!(
        text.contains("\n  - r/app:latest-amd64: missing\n  - r/app:latest-arm64: stale: built from revision 1a2b3c4, this pipeline is 3f2a1c0\n"),
        "{text}"
    );
    assert_eq!(e.exit_code(), 3);
}

/// What each stage of a cancelled run says, and its exit code (128 + the signal).
#[test]
fn a_cancelled_run_says_what_it_leaves_behind() {
    let tags = |unsure: &[&str], not_moved: &[(&str, &str)]| Progress::Tags {
        holding: vec!["r/app:latest".into()],
        unsure: unsure.iter().map(|t| t.to_string()).collect(),
        not_moved: not_moved
            .iter()
            .map(|(t, w)| (t.to_string(), w.to_string()))
            .collect(),
    };
    for (signal, progress, text) in [
        (Signal::Int, Progress::NothingPushed, "cancelled by SIGINT before anything was pushed"),
        (Signal::Term, Progress::LoginUnwritten, "cancelled by SIGTERM: the login wrote nothing (the auth file is as it was)"),
        (Signal::Term, Progress::Untagged, "cancelled by SIGTERM while children were copied into the destinations: no tag moved; untagged content may have been added (a re-run reuses it)\n  hint: re-run the job: tags that already hold the index are left alone, the others move"),
        (Signal::Term, tags(&[], &[]), "cancelled by SIGTERM as the push ended: every target tag holds the index (r/app:latest)"),
        (Signal::Term, tags(&["r/app:1"], &[("r/app:1.0", "not sent")]), "cancelled by SIGTERM while tags were moving: 1 of 3 target tag(s) hold the index (stdout and the dotenv name them): r/app:latest\n  - r/app:1: its push was cut off in flight; it may or may not hold the index (look before relying on it)\n  - r/app:1.0: did not move (not sent)\n  hint: re-run the job: tags that already hold the index are left alone, the others move"),
        // A reason that names its tag says it once.
        (Signal::Term, tags(&[], &[("r/app:1.0", "pushing to r/app:1.0: the registry refused to move this tag (HTTP 403)")]), "cancelled by SIGTERM while tags were moving: 1 of 2 target tag(s) hold the index (stdout and the dotenv name them): r/app:latest\n  - did not move: pushing to r/app:1.0: the registry refused to move this tag (HTTP 403)\n  hint: re-run the job: tags that already hold the index are left alone, the others move"),
        (Signal::Term, Progress::Unknown, "cancelled by SIGTERM: the run did not wind down in time and was stopped; target tags may have moved: look at them before relying on them\n  hint: re-run the job: tags that already hold the index are left alone, the others move"),
    ] {
        let e = Error::Cancelled { signal, progress };
        assert_eq!(e.to_string(), text);
        assert_eq!(e.exit_code(), if signal == Signal::Term { 143 } else { 130 });
    }
}

#[test]
fn a_refused_tag_inside_a_partial_push_says_each_fact_once() {
    let e = Error::PartialPush {
        digest: "sha256:ab".into(),
        moved: vec!["r/app:latest".into()],
        untagged: vec![],
        absent: vec![],
        failed: vec![
            (
                "r/app:1.4".into(),
                Box::new(Error::Transient {
                    action: "pushing to",
                    reference: "r/app:1.4".into(),
                    reason: "r answered HTTP 503 Service Unavailable".into(),
                    gave_up: GaveUp::Spent { attempts: 6 },
                }),
            ),
            (
                "r/app:1".into(),
                Box::new(Error::TagImmutable {
                    reference: "r/app:1".into(),
                    reason: "HTTP 400 Bad Request, TAG_INVALID: tag exists".into(),
                }),
            ),
            // A refusal that does not name the tag: named before it.
            (
                "r/app:2".into(),
                Box::new(Error::WriteFile {
                    path: "x".into(),
                    source: std::io::Error::other("full"),
                }),
            ),
        ],
    };
    assert_eq!(
        e.to_string(),
        "3 of 4 target tag(s) did not move; the index sha256:ab is in the registry and these hold it: r/app:latest\n  - pushing to r/app:1.4: r answered HTTP 503 Service Unavailable, after 6 attempts\n      hint: this is usually temporary; retry the job (exit code 75)\n  - r/app:1: the registry refused to move this tag (HTTP 400 Bad Request, TAG_INVALID: tag exists)\n      hint: the repository has immutable tags and the tag already holds a different image; publish under a new tag (e.g. the version or $CI_COMMIT_SHORT_SHA), or make the tag mutable\n  - r/app:2: writing x"
    );
    assert_eq!(e.exit_code(), 75);
    let deadline = Error::Transient {
        action: "fetching manifest",
        reference: "r/app:1-amd64".into(),
        reason: "r answered HTTP 429 Too Many Requests".into(),
        gave_up: GaveUp::Deadline {
            attempts: 1,
            deadline: "the time MULTIARCH_TIMEOUT leaves",
            asked: Some(600),
        },
    };
    assert_eq!(
        deadline.to_string().lines().next().unwrap(),
        "fetching manifest r/app:1-amd64: r answered HTTP 429 Too Many Requests, after 1 attempt: it asks to be retried in 600 s (Retry-After), past the time MULTIARCH_TIMEOUT leaves"
    );
}

/// multiarch's own look at the repository's tag mutability is not a registry's refusal: the
/// message says what was found, and that nothing was asked of the registry.
#[test]
fn an_immutable_tag_found_before_any_push_is_not_called_a_refusal() {
    let e = Error::ImmutableTagHolds {
        tags: vec![("r/app:latest".into(), "sha256:4f3f".into())],
    };
    assert_eq!(e.exit_code(), 4);
    assert_eq!(
        e.to_string(),
        "r/app:latest: this tag is immutable in its repository (its tag mutability, read before any push) and already holds sha256:4f3f, not this run's index; nothing was pushed\n  hint: publish under a new tag (e.g. the version or $CI_COMMIT_SHORT_SHA), or make the tag mutable"
    );
    assert!(!e.to_string().contains("refused"), "{e}");
    // Several: every one, so one fix covers them all.
    let e = Error::ImmutableTagHolds {
        tags: vec![
            ("r/app:latest".into(), "sha256:4f3f".into()),
            ("r/app:1.0".into(), "sha256:4f3f".into()),
        ],
    };
    assert!(
        e.to_string().starts_with("2 target tags are immutable in their repository (its tag mutability, read before any push) and already hold another index than this run's; nothing was pushed:\n  - r/app:latest holds sha256:4f3f\n  - r/app:1.0 holds sha256:4f3f\n  hint: "),
        "{e}"
    );
}

#[test]
fn validation_errors_exit_4() {
    let e = Error::PlatformMismatch {
        reference: "r/app:latest-arm64".into(),
        expected: "linux/arm64".into(),
        actual: "linux/amd64".into(),
        said_by: "its image config",
    };
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains("linux/arm64"));
    assert!(e.to_string().contains("linux/amd64"));
}

#[test]
fn every_image_of_another_machine_is_named_with_the_arch_found() {
    let image = |tag: &str, platform: &str, arch: &str| crate::error::Mismatched {
        image: format!("r/app:{tag}@sha256:1"),
        platform: platform.into(),
        found: format!("/app is machine code for linux/{arch}"),
        found_arch: Some(arch.into()),
        trail: "entrypoint \"/app\" → /app in layer 1/1".into(),
    };
    let e = Error::MachineMismatch {
        images: vec![
            image("latest-amd64", "linux/amd64", "arm64"),
            image("latest-arm64", "linux/arm64", "amd64"),
        ],
    };
    assert_eq!(e.exit_code(), 4);
    let text = e.to_string();
    assert!(text.starts_with("2 images start a program built for another machine than their platform:\nr/app:latest-amd64@sha256:1 is linux/amd64, but"), "{text}");
    assert!(text.contains("(…-${TARGETARCH}, not …-arm64)"), "{text}");
    assert!(
        text.contains("r/app:latest-arm64@sha256:1 is linux/arm64, but"),
        "{text}"
    );
    assert!(text.contains("(…-${TARGETARCH}, not …-amd64)"), "{text}");
    assert_eq!(
        text.matches("MULTIARCH_CONTENT_CHECK=off").count(),
        1,
        "{text}"
    );
}
