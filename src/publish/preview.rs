//! A dry run's look at the target tags: what each would come to (moved, already holding this
//! index, kept because it holds a newer one) by the same rules a push settles them with, read
//! with pull access only (a HEAD per tag, a GET per distinct index they hold). A dry run needs
//! no push credential; when the tags cannot be read, every tag is shown as planned and the
//! outcome says why. A tag kept immutable while it holds another index fails the plan as it
//! would fail the push.

use futures_util::future::try_join_all;
use tracing::info;

use super::targets::{self, Step};
use super::{check_immutable, settle_each, Group};
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
    let settled = async {
        let current = try_join_all(plan.targets.iter().map(|t| registry.head_manifest(t))).await?;
        let mut read = targets::Read::new();
        let planned = indexes.clone();
        settle_each(
            plan, registry, resolved, groups, planned, bases, &current, &mut read,
        )
        .await
    }
    .await;
    let settled = match settled {
        Ok(settled) => settled,
        Err(e) => {
            let why = first_line(&e);
            info!(error = %why, "the target tags could not be read: the plan does not say which would be kept");
            let planned = plan.targets.iter().map(|_| Step::Move);
            let mut outcome = outcome(groups, indexes, planned.collect());
            outcome.unread = Some(why);
            return Ok(outcome);
        }
    };
    check_immutable(
        registry,
        groups.iter().zip(&settled).map(|(g, (now, s))| {
            let moving = g
                .targets
                .iter()
                .zip(now)
                .zip(&s.steps)
                .filter(|(_, step)| **step == Step::Move)
                .map(|(t, _)| t)
                .collect();
            (g.repository, moving)
        }),
    )
    .await?;
    let (indexes, steps): (Vec<Index>, Vec<Vec<Step>>) =
        settled.into_iter().map(|(_, s)| (s.index, s.steps)).unzip();
    Ok(outcome(
        groups,
        indexes,
        steps.into_iter().flatten().collect(),
    ))
}

/// The outcome of each destination's index and a step per target tag (in plan order, by
/// destination): a move is planned, a kept tag says why.
fn outcome(groups: &[Group<'_>], indexes: Vec<Index>, steps: Vec<Step>) -> Outcome {
    let mut kept = Vec::new();
    let targets = groups
        .iter()
        .flat_map(|g| g.targets.iter())
        .zip(steps)
        .map(|(t, step)| {
            let status = match step {
                Step::Move => Status::Planned,
                Step::Unchanged => Status::Unchanged,
                Step::Keep(k) => {
                    kept.push(k);
                    Status::Kept
                }
            };
            (t.clone(), status)
        })
        .collect();
    let mut outcome = Outcome::new(indexes[0].clone(), targets);
    for (d, index) in outcome.destinations.iter_mut().zip(indexes) {
        d.index = Some(index);
    }
    outcome.kept = kept;
    outcome
}
