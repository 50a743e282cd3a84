//! A dry run's look at the target tags: what each would come to (moved, already holding this
//! index, kept because it holds a newer one) by the same rules a push settles them with, read
//! with pull access only (a HEAD per tag, a GET per distinct index they hold). A dry run needs
//! no push credential; when the tags cannot be read, every tag is shown as planned and the
//! outcome says why. A tag kept immutable while it holds another index fails the plan as it
//! would fail the push.

use futures_util::future::try_join_all;
use tracing::info;

use super::targets::{self, Step};
use super::{base_of, check_immutable, Group};
use crate::digest::Digest;
use crate::error::Error;
use crate::index::Index;
use crate::manifest::Fetched;
use crate::model::Resolved;
use crate::outcome::{Outcome, Status};
use crate::registry::{first_line, Registry};
use crate::settings::Plan;

/// The outcome of a dry run: each destination's index and what each target tag would come to.
/// A tag its repository keeps immutable while it holds another index fails the plan as it
/// would fail the push (exit 4).
pub(super) async fn preview(
    plan: &Plan,
    registry: &impl Registry,
    resolved: &[Resolved],
    groups: &[Group<'_>],
    indexes: Vec<Index>,
    bases: &[Option<Fetched>],
) -> Result<Outcome, Error> {
    Ok(
        match settle_all(plan, registry, resolved, groups, indexes.clone(), bases).await {
            Ok(settled) => {
                check_immutable(
                    registry,
                    groups.iter().zip(&settled).map(|(g, (now, _, steps))| {
                        let moving = g
                            .targets
                            .iter()
                            .zip(now)
                            .zip(steps)
                            .filter(|(_, s)| **s == Step::Move)
                            .map(|(t, _)| t)
                            .collect();
                        (g.repository, moving)
                    }),
                )
                .await?;
                let mut targets = Vec::new();
                let mut kept = Vec::new();
                let mut chosen = Vec::new();
                for (g, (_, index, steps)) in groups.iter().zip(settled) {
                    for (t, step) in g.targets.iter().zip(steps) {
                        let status = match step {
                            Step::Move => Status::Planned,
                            Step::Unchanged => Status::Unchanged,
                            Step::Keep(k) => {
                                kept.push(k);
                                Status::Kept
                            }
                        };
                        targets.push((t.clone(), status));
                    }
                    chosen.push(index);
                }
                let mut outcome = Outcome::new(chosen[0].clone(), targets);
                for (d, index) in outcome.destinations.iter_mut().zip(chosen) {
                    d.index = Some(index);
                }
                outcome.kept = kept;
                outcome
            }
            Err(e) => {
                let why = first_line(&e);
                info!(error = %why, "the target tags could not be read: the plan does not say which would be kept");
                let targets = plan
                    .targets
                    .iter()
                    .map(|t| (t.clone(), Status::Planned))
                    .collect();
                let mut outcome = Outcome::new(indexes[0].clone(), targets);
                for (d, index) in outcome.destinations.iter_mut().zip(indexes) {
                    d.index = Some(index);
                }
                outcome.unread = Some(why);
                outcome
            }
        },
    )
}

/// Per destination: what its tags hold, its index (this run's, or an equivalent one a tag
/// holds) and a step per tag.
async fn settle_all(
    plan: &Plan,
    registry: &impl Registry,
    resolved: &[Resolved],
    groups: &[Group<'_>],
    indexes: Vec<Index>,
    bases: &[Option<Fetched>],
) -> Result<Vec<(Vec<Option<Digest>>, Index, Vec<Step>)>, Error> {
    let current = try_join_all(plan.targets.iter().map(|t| registry.head_manifest(t))).await?;
    let mut read = targets::Read::new();
    let mut out = Vec::new();
    for ((g, index), base) in groups.iter().zip(indexes).zip(bases) {
        let now: Vec<_> = g.places.iter().map(|&i| current[i].clone()).collect();
        let b = base.as_ref().map(|f| base_of(f, &g.targets[0]));
        let settled = targets::settle(
            plan,
            registry,
            resolved,
            b.as_ref(),
            index,
            &g.targets,
            &now,
            &mut read,
        )
        .await?;
        out.push((now, settled.index, settled.steps));
    }
    Ok(out)
}
