//! Before any tag moves: what each target tag holds, read once, and which tags move to which
//! index — by the pure rules of `order` (tags never move backwards; a held index that differs
//! from this run's only in who published it is adopted as this run's index).
//!
//! What the tags hold is read while the sources are awaited (one GET per distinct digest and
//! repository, bounded like every manifest), so it costs no time on the way to the push; after a
//! wait, only what changed meanwhile is read again. What cannot be read as a manifest "records
//! no order" and moves as before.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;
use tracing::{debug, info, warn};

use crate::digest::Digest;
use crate::error::Error;
use crate::index::{self, Annotations, Base, Index};
use crate::model::Resolved;
use crate::order::{self, Held, Recorded, Verdict};
use crate::outcome::Kept;
use crate::reference::Reference;
use crate::registry::Registry;
use crate::settings::Plan;

/// What to do with one target tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// It holds the index already.
    Unchanged,
    /// Move it to the index.
    Move,
    /// Leave it: it holds something newer.
    Keep(Kept),
}

/// The index to publish (this run's, or an equivalent one a tag holds) and a step per target.
pub(super) struct Settled {
    pub(super) index: Index,
    pub(super) steps: Vec<Step>,
}

/// The annotations of what target tags hold, by `repository@digest`.
pub(super) type Read = BTreeMap<String, BTreeMap<String, String>>;

/// Reads the annotations of what each of `targets` holds (`current`: each one's digest), except
/// `skip` (this run's index) and what `known` has already.
pub(super) async fn read_held(
    registry: &impl Registry,
    targets: &[Reference],
    current: &[Option<Digest>],
    skip: Option<&Digest>,
    known: &mut Read,
) -> Result<(), Error> {
    let mut reads: Vec<Reference> = Vec::new();
    for (t, c) in targets.iter().zip(current) {
        if let Some(d) = c.as_ref().filter(|d| Some(*d) != skip) {
            let at = t.repository().digest(d);
            if !reads.contains(&at) && !known.contains_key(&at.to_string()) {
                reads.push(at);
            }
        }
    }
    let annotations = try_join_all(reads.iter().map(|at| read(registry, at))).await?;
    known.extend(reads.iter().map(ToString::to_string).zip(annotations));
    Ok(())
}

/// Settles what moves among `targets` (one destination's), given what they hold (`current`:
/// each one's digest; `read`: what is known of them already). With `--append`, the tag the index
/// was merged into moves whatever it records: the new index holds what it held.
#[allow(clippy::too_many_arguments)]
pub(super) async fn settle(
    plan: &Plan,
    registry: &impl Registry,
    resolved: &[Resolved],
    base: Option<&Base<'_>>,
    index: Index,
    targets: &[Reference],
    current: &[Option<Digest>],
    read: &mut Read,
) -> Result<Settled, Error> {
    let ours = Recorded::from_annotations(&plan.annotations.values);
    read_held(registry, targets, current, Some(&index.digest), read).await?;
    let merged_into = base.map(|b| &b.fetched.digest);
    let held: Vec<Option<(Held, &BTreeMap<String, String>)>> = targets
        .iter()
        .zip(current)
        .map(|(t, c)| {
            let d = c.as_ref().filter(|d| **d != index.digest)?;
            let a = &read[&t.repository().digest(d).to_string()];
            let recorded = Recorded::from_annotations(a);
            Some((
                Held {
                    digest: d.clone(),
                    recorded,
                },
                a,
            ))
        })
        .collect();
    let verdicts: Vec<Option<Verdict>> = held
        .iter()
        .map(|h| {
            h.as_ref().map(|(h, _)| match merged_into {
                Some(d) if *d == h.digest => Verdict::Move,
                _ => order::decide(&ours, &h.recorded, plan.rollback),
            })
        })
        .collect();

    // A held index that is this run's content published by another run: adopt its bytes.
    let mut candidates: Vec<(&Held, Index)> = Vec::new();
    for (h, a) in held.iter().flatten() {
        // (A Docker manifest list records no revision: it may still be this content. Another
        // project's index stays another project's.)
        let other_revision = h.recorded.revision.is_some() && h.recorded.revision != ours.revision;
        let other_project = h.recorded.project.is_some() && h.recorded.project != ours.project;
        if other_revision || other_project || candidates.iter().any(|(c, _)| c.digest == h.digest) {
            continue;
        }
        let values = order::equivalent(&plan.annotations.values, a);
        let again = Annotations {
            values,
            asked: plan.annotations.asked.clone(),
        };
        // Said once already for this run's index: rebuilt without logging.
        let rebuilt = tracing::subscriber::with_default(
            tracing::subscriber::NoSubscriber::default(),
            || index::build(resolved, plan.format, &again, base),
        )?;
        if rebuilt.digest == h.digest {
            candidates.push((h, rebuilt));
        }
    }
    let moving: Vec<&Held> = held
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| matches!(v, Some(Verdict::Move | Verdict::RollBack(_))))
        .filter_map(|(h, _)| h.as_ref().map(|(h, _)| h))
        .collect();
    let heads: Vec<&Held> = candidates.iter().map(|(h, _)| *h).collect();
    let index = match order::adopt(&heads, &moving) {
        Some(chosen) => {
            let (h, rebuilt) = candidates
                .into_iter()
                .find(|(h, _)| h.digest == chosen.digest)
                .expect("the adopted index is a candidate");
            info!(
                digest = %rebuilt.digest,
                published_by = %h.recorded,
                "a target tag already holds this content, published by another run: publishing that exact index, so re-runs change nothing and every tag holds one digest"
            );
            rebuilt
        }
        None => index,
    };

    let steps = targets
        .iter()
        .zip(current)
        .zip(held.iter().zip(verdicts))
        .map(|((t, c), (h, verdict))| {
            if c.as_ref() == Some(&index.digest) {
                return Step::Unchanged;
            }
            let (Some((h, _)), Some(verdict)) = (h, verdict) else {
                return Step::Move;
            };
            match verdict {
                Verdict::Move => {
                    if !h.recorded.is_ordered() {
                        debug!(reference = %t, holds = %h.digest, "it records no order (another tool's or an older multiarch's index): moved as before");
                    }
                    Step::Move
                }
                Verdict::RollBack(newer) => {
                    let why = order::explain(&newer, &ours, &h.recorded);
                    warn!(reference = %t, holds = %h.digest, "rolling back (MULTIARCH_ROLLBACK=allow): {why}");
                    Step::Move
                }
                Verdict::Keep(newer) => {
                    let why = order::explain(&newer, &ours, &h.recorded);
                    warn!(reference = %t, holds = %h.digest, "kept, not moved back: {why}; MULTIARCH_ROLLBACK=allow moves it");
                    Step::Keep(Kept {
                        reference: t.clone(),
                        holds: h.digest.clone(),
                        why,
                    })
                }
            }
        })
        .collect();
    Ok(Settled { index, steps })
}

/// When every one of `targets` holds an index that is newer than this run's could be (a later
/// pipeline's, a higher version: `order`), what keeps each one: no index this run could build
/// would move any of them, so there is nothing to wait for. `None` when some tag would move (it
/// does not exist, records no order, is older), with `--append` (the tag merged into moves
/// whatever it records) and with `MULTIARCH_ROLLBACK=allow`.
pub(super) fn superseded(
    plan: &Plan,
    targets: &[Reference],
    current: &[Option<Digest>],
    read: &Read,
) -> Option<Vec<Kept>> {
    if plan.append || targets.is_empty() {
        return None;
    }
    let ours = Recorded::from_annotations(&plan.annotations.values);
    targets
        .iter()
        .zip(current)
        .map(|(t, c)| {
            let holds = c.as_ref()?;
            let recorded =
                Recorded::from_annotations(read.get(&t.repository().digest(holds).to_string())?);
            match order::decide(&ours, &recorded, plan.rollback) {
                Verdict::Keep(newer) => Some(Kept {
                    reference: t.clone(),
                    holds: holds.clone(),
                    why: order::explain(&newer, &ours, &recorded),
                }),
                Verdict::Move | Verdict::RollBack(_) => None,
            }
        })
        .collect()
}

/// The annotations of the manifest at `at` (what a target tag holds): empty when it is gone or
/// is not a manifest multiarch reads (it then records no order).
pub(super) async fn read(
    registry: &impl Registry,
    at: &Reference,
) -> Result<BTreeMap<String, String>, Error> {
    match registry.fetch_manifest(at).await {
        Ok(Some(f)) => Ok(f.annotations),
        Ok(None) => Ok(BTreeMap::new()),
        Err(Error::InvalidManifest { reason, .. }) => {
            debug!(reference = %at, %reason, "what the tag holds is not a manifest multiarch reads: it records no order");
            Ok(BTreeMap::new())
        }
        Err(e) => Err(e),
    }
}
