//! What an outcome says about what exists: which `repository@digest` it names, which tags, and
//! the error it ends with.

use super::*;
use crate::manifest::OCI_INDEX;
use crate::testing::protected_tag;

fn index() -> Index {
    Index {
        bytes: b"{}".to_vec(),
        digest: Digest::of(b"{}"),
        media_type: OCI_INDEX,
        children: Vec::new(),
    }
}

fn repo(path: &str) -> Repository {
    Repository::parse("t", &format!("r.example/{path}")).unwrap()
}

/// An outcome of `targets` (`(repository, tag, status)`), refused ones failing with 403.
fn outcome(targets: &[(&Repository, &str, Status)]) -> Outcome {
    let mut o = Outcome::new(
        index(),
        targets.iter().map(|(r, t, s)| (r.tag(t), *s)).collect(),
    );
    for (r, t, s) in targets {
        match s {
            Status::Failed => o
                .failures
                .push((r.tag(t), protected_tag(&r.tag(t).to_string()))),
            Status::Unknown => o.failures.push((
                r.tag(t),
                Error::RequestCancelled {
                    signal: Signal::Term,
                    action: "pushing to",
                    reference: r.tag(t).to_string(),
                    in_flight: true,
                },
            )),
            _ => {}
        }
    }
    o
}

#[test]
fn a_single_refused_tag_names_no_index_that_was_never_stored() {
    let app = repo("app");
    let o = outcome(&[(&app, "latest", Status::Failed)]);
    assert!(o.stored().is_empty());
    assert_eq!(o.first_stored(), None);
    let e = o.end(None).unwrap_err();
    assert_eq!(e.exit_code(), 5);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "1 of 1 target tag(s) did not move; this run stored no index {}: no tag moved and it was not pushed under its digest",
            Digest::of(b"{}")
        )),
        "{text}"
    );
    assert!(!text.contains("is in the registry"), "{text}");
}

#[test]
fn with_two_destinations_only_the_one_holding_the_index_is_named() {
    let (app, mirror) = (repo("app"), repo("mirror"));
    let d = Digest::of(b"{}");
    let o = outcome(&[
        (&app, "latest", Status::Failed),
        (&mirror, "latest", Status::Pushed),
    ]);
    assert_eq!(o.stored(), [mirror.digest(&d)]);
    assert_eq!(
        o.first_stored(),
        None,
        "the first destination holds nothing"
    );
    let text = o.end(None).unwrap_err().to_string();
    assert!(
        text.starts_with(&format!("1 of 2 target tag(s) did not move; the index {d} is in the registry and these hold it: r.example/mirror:latest; r.example/app do(es) not hold it: no tag moved there and it was never pushed there under its digest\n  - pushing to r.example/app:latest: ")),
        "{text}"
    );
}

#[test]
fn an_index_pushed_by_digest_whose_tags_all_failed_is_named_by_digest_only() {
    let app = repo("app");
    let d = Digest::of(b"{}");
    let mut o = outcome(&[
        (&app, "latest", Status::Failed),
        (&app, "1.4", Status::Failed),
    ]);
    o.destinations[0].by_digest = true;
    assert_eq!(o.stored(), [app.digest(&d)]);
    assert_eq!(o.holding().count(), 0);
    let text = o.end(None).unwrap_err().to_string();
    assert!(
        text.starts_with(&format!("2 of 2 target tag(s) did not move; the index {d} is in r.example/app under its digest, but no tag holds it\n")),
        "{text}"
    );
}

#[test]
fn a_tag_cut_off_in_flight_is_neither_holding_nor_not_moved() {
    let app = repo("app");
    let o = outcome(&[
        (&app, "latest", Status::Pushed),
        (&app, "1.4", Status::Unknown),
    ]);
    assert_eq!(
        o.holding().map(ToString::to_string).collect::<Vec<_>>(),
        ["r.example/app:latest"]
    );
    let Err(Error::Cancelled { progress, .. }) = o.end(Some(Signal::Term)) else {
        panic!("a cancelled run ends cancelled")
    };
    assert_eq!(
        progress,
        Progress::Tags {
            holding: vec!["r.example/app:latest".into()],
            unsure: vec!["r.example/app:1.4".into()],
            not_moved: vec![],
        }
    );
}

#[test]
fn kept_and_unchanged_tags_end_well() {
    let app = repo("app");
    let o = outcome(&[
        (&app, "latest", Status::Unchanged),
        (&app, "1", Status::Kept),
    ]);
    assert_eq!(o.stored().len(), 1);
    assert!(o.end(None).is_ok());
}
