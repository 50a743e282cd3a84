//! The push command's orchestration: the one place that knows the order of the steps.
//!
//! 1. Sources (wait for all, read every manifest and config) and, alongside, each target tag of
//!    every destination looked at with push credentials and push access to every destination
//!    checked as a push asks it (an upload session opened and given back) — a refused push
//!    credential ends the run now, with exit 5, whatever the sources are doing — and what each
//!    tag holds read.
//! 2. Build the index (with `--append`, merged into what the first target tag holds).
//! 3. Read what each target tag holds when it is another index, and settle which tags move
//!    (`targets`, by the rules of `order`): a tag holding a newer pipeline's index or a higher
//!    version is kept; an index that is this run's content published by another run is adopted.
//!    Then refuse, before anything is pushed anywhere, to move a tag a destination keeps
//!    immutable.
//! 4. Copy the children each destination lacks (mounted or streamed), untagged, by the copy
//!    phase's deadline (`MULTIARCH_TIMEOUT` plus 10 minutes from the start).
//! 5. PUT the index by digest into each destination with several tags to move; a failure here
//!    moves no tag. (With one tag, its own PUT is all or nothing.)
//! 6. PUT it under each tag that does not hold it yet. A tag the registry refuses (a protected
//!    tag, `TAG_INVALID`, a persistent 5xx) does not stop the others: the outcome says exactly
//!    which tags hold the index and why the others do not.
//!
//! Two pipelines publishing one tag at once are kept apart by the job's `resource_group`, not
//! here: a look after the PUT would cost every run a round trip and only see a race that lands
//! within it.

mod copy;
mod targets;

use futures_util::future::{join_all, try_join, try_join_all};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::digest::Digest;
use crate::error::Error;
use crate::index::{self, Base};
use crate::manifest::Fetched;
use crate::model::{Outcome, Resolved, Status};
use crate::reference::{Reference, Repository};
use crate::registry::{first_line, Deadline, Registry};
use crate::settings::Plan;
use crate::wait::{self, Gathered};
use targets::{Settled, Step};

/// Marks the phases of a run, for GitLab's collapsible log sections.
pub(crate) trait Phases {
    fn start(&self, name: &str, title: &str, collapsed: bool);
    fn end(&self, name: &str);
}

/// No sections (outside GitLab, and in tests).
pub(crate) struct NoPhases;

impl Phases for NoPhases {
    fn start(&self, _: &str, _: &str, _: bool) {}
    fn end(&self, _: &str) {}
}

/// Runs `push` (or `plan`, when `plan.dry_run`). An `Ok` outcome may hold refused tags
/// (`Outcome::failures`): the caller reports what moved, then `failed` turns them into the error.
pub(crate) async fn run(
    plan: &Plan,
    registry: &impl Registry,
    phases: &dyn Phases,
) -> Result<Outcome, Error> {
    let start = Instant::now();
    phases.start(
        "multiarch_sources",
        "Waiting for and reading per-architecture sources",
        false,
    );
    // A dry run touches nothing it could need push credentials for. The look at the targets
    // (and at what they hold) and the push-access check run during the wait, so their retries
    // end with the wait's.
    let looking = registry.until(Some(Deadline::wait(wait::retries_until(plan, start))));
    let look = async {
        if plan.dry_run {
            return Ok(None);
        }
        let (current, ()) =
            try_join(look_at_targets(plan, &looking), check_push(plan, &looking)).await?;
        let mut read = targets::Read::new();
        targets::read_held(&looking, plan, &current, None, &mut read).await?;
        Ok(Some((current, read)))
    };
    let gathered = try_join(wait::gather(plan, registry), look).await;
    phases.end("multiarch_sources");
    let (
        Gathered {
            resolved,
            missing,
            waited,
        },
        looked,
    ) = gathered?;

    let base = match plan.append {
        true => base(plan, registry).await?,
        false => None,
    };
    let base = base.as_ref().map(|(fetched, at)| Base {
        fetched,
        reference: at.to_string(),
        repository: at.repository(),
    });
    let index = index::build(&resolved, plan.format, &plan.annotations, base.as_ref())?;
    info!(digest = %index.digest, media_type = index.media_type, children = index.children.len(), "index built");

    let Some((looked, read)) = looked else {
        let targets = plan
            .targets
            .iter()
            .map(|t| (t.clone(), Status::Planned))
            .collect();
        return Ok(Outcome {
            index,
            targets,
            missing,
            failures: Vec::new(),
            kept: Vec::new(),
        });
    };
    phases.start("multiarch_push", "Pushing the index", true);
    // After a wait, the target tags may have moved meanwhile: look again.
    let current = if waited {
        look_at_targets(plan, registry).await
    } else {
        Ok(looked)
    };
    let copying = registry.until(Some(Deadline::copy(start, plan.timeout)));
    let pushed = async {
        let current = current?;
        let settled = targets::settle(
            plan,
            registry,
            &resolved,
            base.as_ref(),
            index,
            &current,
            read,
        )
        .await?;
        let pushed = push_all(plan, registry, &copying, &settled, &resolved, &current).await?;
        Ok::<_, Error>((settled, pushed))
    }
    .await;
    phases.end("multiarch_push");
    let (Settled { index, steps }, (targets, failures)) = pushed?;
    let kept = steps
        .into_iter()
        .filter_map(|s| match s {
            Step::Keep(k) => Some(k),
            _ => None,
        })
        .collect();
    Ok(Outcome {
        index,
        targets,
        missing,
        failures,
        kept,
    })
}

/// The refused tags of an outcome as the run's error (after the moved ones were reported).
pub(crate) fn failed(outcome: Outcome) -> Result<(), Error> {
    if outcome.failures.is_empty() {
        return Ok(());
    }
    Err(Error::PartialPush {
        digest: outcome.index.digest.to_string(),
        moved: outcome.holding().map(ToString::to_string).collect(),
        failed: outcome
            .failures
            .into_iter()
            .map(|(t, e)| (t.to_string(), Box::new(e)))
            .collect(),
    })
}

/// `--append`: what the first target tag holds now (nothing to merge into if it does not exist).
async fn base(
    plan: &Plan,
    registry: &impl Registry,
) -> Result<Option<(Fetched, Reference)>, Error> {
    let Some(at) = plan.targets.first() else {
        return Ok(None);
    };
    match registry.fetch_manifest(at).await? {
        Some(f) => {
            info!(reference = %at, digest = %f.digest, "appending to what the tag holds");
            Ok(Some((f, at.clone())))
        }
        None => {
            info!(reference = %at, "--append: the tag does not exist yet; a new index");
            Ok(None)
        }
    }
}

/// The digest each target tag holds now (`None`: the tag does not exist), asked with push
/// credentials.
async fn look_at_targets(
    plan: &Plan,
    registry: &impl Registry,
) -> Result<Vec<Option<Digest>>, Error> {
    try_join_all(plan.targets.iter().map(|t| registry.check_target(t))).await
}

/// Push access to every destination (once each), asked as a push asks it, saying whether blobs
/// may be uploaded there (a source, or with `--append` the base index, lives elsewhere).
async fn check_push(plan: &Plan, registry: &impl Registry) -> Result<(), Error> {
    let mut destinations: Vec<&Repository> = Vec::new();
    for t in &plan.targets {
        if !destinations.contains(&t.repository()) {
            destinations.push(t.repository());
        }
    }
    let first = plan.targets.first().map(Reference::repository);
    let uploads = |to: &Repository| {
        plan.sources.iter().any(|s| s.reference.repository() != to)
            || (plan.append && first != Some(to))
    };
    try_join_all(
        destinations
            .into_iter()
            .map(|d| registry.check_push(d, uploads(d))),
    )
    .await
    .map(|_| ())
}

type Pushed = (Vec<(Reference, Status)>, Vec<(Reference, Error)>);

/// Steps 3 to 7, given what every target tag holds and what becomes of it; `copying` is the
/// access whose retries (and streams) end by the copy phase's deadline.
async fn push_all<R: Registry>(
    plan: &Plan,
    registry: &R,
    copying: &R,
    settled: &Settled,
    resolved: &[Resolved],
    current: &[Option<Digest>],
) -> Result<Pushed, Error> {
    let index = &settled.index;
    let moves = |i: usize| settled.steps[i] == Step::Move;
    let moving: Vec<(&Reference, &Digest)> = plan
        .targets
        .iter()
        .zip(current)
        .enumerate()
        .filter(|(i, _)| moves(*i))
        .filter_map(|(_, (t, c))| c.as_ref().map(|d| (t, d)))
        .collect();
    // Every destination's rule before anything is pushed anywhere.
    let mut checked: Vec<&Repository> = Vec::new();
    for (t, _) in &moving {
        let repo = t.repository();
        if checked.contains(&repo) {
            continue;
        }
        checked.push(repo);
        let rule = registry.tag_rule(repo).await?;
        let tag_of = |t: &Reference| t.tag().unwrap_or_default().to_string();
        if let Some((t, held)) = moving
            .iter()
            .filter(|(m, _)| m.repository() == repo)
            .find(|(t, _)| rule.is_immutable(&tag_of(t)))
        {
            return Err(Error::TagImmutable {
                reference: t.to_string(),
                reason: format!("the repository keeps this tag immutable and it holds {held}; nothing was pushed"),
            });
        }
    }
    // The destinations with a tag to move get the children they lack, then the index by digest.
    let mut destinations: Vec<&Repository> = Vec::new();
    for (i, t) in plan.targets.iter().enumerate() {
        if moves(i) && !destinations.contains(&t.repository()) {
            destinations.push(t.repository());
        }
    }
    copy::children(copying, index, resolved, &destinations).await?;
    for repo in &destinations {
        // With one tag to move, its PUT is all or nothing: the index by digest first only
        // matters when several tags could end up split.
        let to_move = plan
            .targets
            .iter()
            .enumerate()
            .filter(|(i, t)| t.repository() == *repo && moves(*i))
            .count();
        if to_move > 1 {
            registry
                .push_manifest(&repo.digest(&index.digest), index.media_type, &index.bytes)
                .await?;
        }
    }
    let results = join_all(
        plan.targets
            .iter()
            .zip(&settled.steps)
            .map(|(t, step)| async move {
                match step {
                    Step::Unchanged => {
                        info!(reference = %t, digest = %index.digest, "unchanged");
                        return Ok(Status::Unchanged);
                    }
                    Step::Keep(_) => return Ok(Status::Kept),
                    Step::Move => {}
                }
                registry
                    .push_manifest(t, index.media_type, &index.bytes)
                    .await?;
                info!(reference = %t, digest = %index.digest, "pushed");
                Ok(Status::Pushed)
            }),
    )
    .await;
    let mut targets = Vec::new();
    let mut failures = Vec::new();
    for (t, r) in plan.targets.iter().zip(results) {
        match r {
            Ok(status) => targets.push((t.clone(), status)),
            Err(e) => {
                warn!(reference = %t, error = %first_line(&e), "the tag did not move");
                targets.push((t.clone(), Status::Failed));
                failures.push((t.clone(), e));
            }
        }
    }
    Ok((targets, failures))
}

#[cfg(test)]
mod tests;
