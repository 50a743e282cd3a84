//! Judging a source just read: this pipeline's build (ready), or an earlier one (stale, waited
//! past), by the pure rules of `provenance`, with the warning or progress line each verdict owes
//! the user (an unlabelled image's warning shows its builder's label line).

use tracing::{info, warn};

use super::provenance::{builder, later, later_words, provenance, short, Provenance};
use super::State;
use crate::builder::Builder;
use crate::error::{Error, Stale};
use crate::labels::REVISION;
use crate::model::{Resolved, Source, SourceOrigin};
use crate::settings::Plan;

/// Decides whether a source just read is this pipeline's build.
///
/// `labelled`: another source of this run that carries this pipeline's revision label, when one
/// is known; an unlabelled image under a per-architecture tag (the source template: this
/// pipeline's builds push there) is then another pipeline's build, whenever it was made. A
/// spec's source may be anyone's image (a vendor's base), and a digest handed over is exact:
/// neither is judged by that rule.
///
/// A spec entry named by its digest is taken as it is: it names one image, which no pipeline
/// can replace, chosen by whoever wrote the spec (its platform and machine code are still
/// checked).
pub(super) fn judge(
    plan: &Plan,
    source: &Source,
    r: Box<Resolved>,
    first_round: bool,
    labelled: Option<&str>,
) -> Result<State, Error> {
    let Some(expected) = plan.revision.as_deref() else {
        found(&r, first_round);
        return Ok(State::Ready(r));
    };
    let reference = &source.reference;
    if source.origin == SourceOrigin::Spec && reference.digest().is_some() {
        info!(%reference, "named by its digest in the spec: taken as it is, not judged by revision");
        found(&r, first_round);
        return Ok(State::Ready(r));
    }
    let digest = r.fetched().digest.clone();
    let builder = builder(&r);
    let label = Builder::label_lines(builder);
    // What comes of a stale source: waited for, or with --if-complete (which never waits) the
    // set is incomplete and the build job that completes it publishes.
    let then = if plan.if_complete {
        "not this pipeline's build yet (--if-complete does not wait)"
    } else {
        "waiting for this pipeline's build"
    };
    let stale = |why: Stale| State::Stale {
        digest: digest.clone(),
        why,
        builder,
    };
    match provenance(&r, expected, &plan.times) {
        Provenance::Built => {
            found(&r, first_round);
            Ok(State::Ready(r))
        }
        Provenance::CreatedAfter { .. } | Provenance::Unlabelled(_)
            if labelled.is_some() && source.origin == SourceOrigin::Template =>
        {
            let labelled = labelled.unwrap_or_default().to_string();
            info!(%reference, %digest, %labelled, "stale: unlabelled, while this pipeline's builds are labelled; {then}");
            Ok(stale(Stale::UnlabelledBesideLabelled { labelled }))
        }
        Provenance::CreatedAfter { created, started } if !plan.require_revision => {
            warn!(
                %reference,
                "the image has no {REVISION} label; created {created}, after this pipeline started at {started}, so it is taken as this pipeline's build (a later pipeline's would pass too); label it to be exact: {label}"
            );
            found(&r, first_round);
            Ok(State::Ready(r))
        }
        Provenance::Unlabelled(undated) if !plan.require_revision => {
            warn!(
                %reference,
                "the image has no {REVISION} label and cannot be dated ({}), so it cannot be told apart from an earlier pipeline's build; label it with the commit: {label}; or set MULTIARCH_REQUIRE_REVISION=true to refuse unlabelled images",
                undated.reason()
            );
            found(&r, first_round);
            Ok(State::Ready(r))
        }
        Provenance::CreatedAfter { .. } | Provenance::Unlabelled(_) => {
            info!(%reference, %digest, "unlabelled (MULTIARCH_REQUIRE_REVISION): {}", if plan.if_complete { "not taken (--if-complete does not wait)" } else { "waiting for a labelled build" });
            Ok(stale(Stale::Unlabelled))
        }
        Provenance::CreatedBefore { created, started } => {
            info!(%reference, %digest, %created, %started, "stale: unlabelled and created before this pipeline started; {then}");
            Ok(stale(Stale::CreatedBefore { created, started }))
        }
        Provenance::Other(held) => match later(&r, expected, &plan.times) {
            None => {
                info!(%reference, holds = %short(&held), want = %short(expected), %digest, "stale: built from another revision; {then}");
                Ok(stale(Stale::Revision(held)))
            }
            Some(sign) => {
                info!(%reference, holds = %short(&held), want = %short(expected), %digest, "stale: built from another revision, {}; {then}", later_words(&sign));
                Ok(stale(Stale::LaterRevision {
                    revision: held,
                    sign,
                }))
            }
        },
    }
}

fn found(r: &Resolved, first_round: bool) {
    let platform = r
        .images()
        .iter()
        .map(|i| i.config.platform.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let revision = r
        .images()
        .first()
        .and_then(|i| i.revision.as_deref())
        .map_or_else(|| "unlabelled".to_string(), short);
    let (reference, digest) = (&r.source().reference, &r.fetched().digest);
    if first_round {
        info!(%reference, %digest, %platform, %revision, "source found");
    } else {
        info!(%reference, %digest, %platform, %revision, "source appeared");
    }
}
