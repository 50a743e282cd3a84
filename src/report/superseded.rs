//! What a run tells users and later jobs when every target tag already holds a newer index than
//! it could publish (a later pipeline's, a higher version) while some of its sources were not
//! ready: typically an older pipeline whose manifest job runs last, finding the later
//! pipeline's images under the shared per-arch tags. Nothing is pushed and nothing is waited
//! for; it is exit 0, as a run whose every tag is kept. Pure: returns strings; the edge writes
//! them.

use serde_json::json;

use crate::error::{not_ready_reason, NotReady};
use crate::outcome::Kept;
use crate::settings::Plan;

/// The stderr notice: why nothing was published, then each source not ready and why.
pub(crate) fn text(plan: &Plan, kept: &[Kept], not_ready: &[(String, NotReady)]) -> String {
    // `--if-complete` never waits: what it says is that no build job of this pipeline will
    // publish, with each platform as its incomplete answer names them.
    let (then, what) = match plan.if_complete {
        true => (
            "no build job of this pipeline will (--if-complete)",
            "awaited",
        ),
        false => ("the sources are not waited for any longer", "not ready"),
    };
    let mut out = format!(
        "every target tag holds a newer index than this run could publish, so nothing was published and {then} ({} {what}):",
        not_ready.len()
    );
    for (platform, reference, why) in super::incomplete::platforms(plan, not_ready) {
        let why = not_ready_reason(why, plan.revision.as_deref());
        match plan.if_complete {
            true => out.push_str(&format!("\n  - {platform} {reference}: {why}")),
            false => out.push_str(&format!("\n  - {reference}: {why}")),
        }
    }
    for k in kept {
        out.push_str(&format!("\n  kept {}: {}", k.reference, k.why));
    }
    out
}

/// stdout: one `image:tag@digest kept` line per target tag, naming what it holds.
pub(crate) fn lines(kept: &[Kept]) -> String {
    kept.iter().map(super::kept_line).collect()
}

/// The dotenv: no index (`MULTIARCH_DIGEST`, `MULTIARCH_REF`, `MULTIARCH_REFS` and
/// `MULTIARCH_TAGGED` empty), every tag in `MULTIARCH_KEPT`; with `--if-complete`, the
/// platforms not ready in `MULTIARCH_AWAITING` (and no `MULTIARCH_PUBLISHED`), as an incomplete
/// run writes them.
pub(crate) fn dotenv(
    plan: &Plan,
    prefix: &str,
    kept: &[Kept],
    not_ready: &[(String, NotReady)],
) -> String {
    let mut out = super::dotenv_text(prefix, super::summary_lines(None, None, &[], &[], kept));
    if plan.if_complete {
        out.push_str(&super::incomplete::dotenv(plan, prefix, not_ready));
    }
    out
}

/// The `--output json` answer, shaped as `push`'s: no index, every target `kept`, the sources
/// not ready under `missing`; with `--if-complete`, `"published": false` and `awaiting` as an
/// incomplete run's.
pub(crate) fn json(plan: &Plan, kept: &[Kept], not_ready: &[(String, NotReady)]) -> String {
    let mut v = json!({
        "digest": null,
        "mediaType": null,
        "ref": null,
        "refs": [],
        "targets": kept.iter().map(super::kept_json).collect::<Vec<_>>(),
        "failures": [],
        "manifests": [],
        "missing": not_ready.iter().map(|(r, _)| r).collect::<Vec<_>>(),
        "superseded": true,
    });
    if plan.if_complete {
        v["published"] = json!(false);
        v["awaiting"] = super::incomplete::awaiting(plan, not_ready);
    }
    format!(
        "{}\n",
        serde_json::to_string_pretty(&v).expect("json values serialise")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::reference;
    use crate::testing::plan;

    fn kept() -> Vec<Kept> {
        vec![Kept {
            reference: reference::parse("t", "r.example/app:latest").unwrap(),
            holds: Digest::parse(&format!("sha256:{}", "f".repeat(64))).unwrap(),
            why: "it holds the index of pipeline 3002 of group/app, newer than this pipeline 3001 of group/app".into(),
        }]
    }

    fn not_ready() -> Vec<(String, NotReady)> {
        vec![("r.example/app:latest-amd64".into(), NotReady::Missing)]
    }

    #[test]
    fn says_why_nothing_was_published_and_names_each_kept_tag() {
        let p = plan(&[]);
        let f = "f".repeat(64);
        assert_eq!(
            text(&p, &kept(), &not_ready()),
            "every target tag holds a newer index than this run could publish, so nothing was published and the sources are not waited for any longer (1 not ready):\n  - r.example/app:latest-amd64: missing\n  kept r.example/app:latest: it holds the index of pipeline 3002 of group/app, newer than this pipeline 3001 of group/app"
        );
        assert_eq!(
            lines(&kept()),
            format!("r.example/app:latest@sha256:{f} kept\n")
        );
        assert_eq!(
            dotenv(&p, "", &kept(), &not_ready()),
            "MULTIARCH_DIGEST=\nMULTIARCH_REF=\nMULTIARCH_REFS=\nMULTIARCH_TAGGED=\nMULTIARCH_KEPT=r.example/app:latest\n"
        );
        let if_complete = plan(&[("MULTIARCH_IF_COMPLETE", "true")]);
        assert!(dotenv(&if_complete, "", &kept(), &not_ready())
            .ends_with("MULTIARCH_KEPT=r.example/app:latest\nMULTIARCH_AWAITING=linux/amd64\n"));
    }

    #[test]
    fn with_if_complete_it_says_no_job_will_publish_and_names_each_platform() {
        let p = plan(&[("MULTIARCH_IF_COMPLETE", "true")]);
        let text = text(&p, &kept(), &not_ready());
        assert!(
            text.starts_with("every target tag holds a newer index than this run could publish, so nothing was published and no build job of this pipeline will (--if-complete) (1 awaited):\n  - linux/amd64 r.example/app:latest-amd64: missing"),
            "{text}"
        );
    }

    #[test]
    fn json_has_push_shape_with_no_index() {
        let p = plan(&[("MULTIARCH_IF_COMPLETE", "true")]);
        let v: serde_json::Value = serde_json::from_str(&json(&p, &kept(), &not_ready())).unwrap();
        assert_eq!(v["digest"], serde_json::Value::Null);
        assert_eq!(v["targets"][0]["status"], "kept");
        assert_eq!(v["targets"][0]["reference"], "r.example/app:latest");
        assert_eq!(v["missing"][0], "r.example/app:latest-amd64");
        assert_eq!(v["published"], false);
        assert_eq!(v["awaiting"][0]["reference"], "r.example/app:latest-amd64");
        assert_eq!(v["awaiting"][0]["reason"], "missing");
        assert_eq!(v["superseded"], true);
    }
}
