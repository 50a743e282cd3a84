//! The push command's orchestration: the one place that knows the order of the steps.
//!
//! 1. Sources (wait for all, read every manifest and config) and, alongside, each target tag of
//!    every destination looked at with push credentials and push access to every destination
//!    checked as a push asks it (an upload session opened and given back) — a refused push
//!    credential ends the run now, with exit 5, whatever the sources are doing — and what each
//!    tag holds read.
//! 2. Build the index (with `--append`, one per destination, each merged into what that
//!    destination's first target tag holds, checked like a source index: `append`).
//! 3. Read what each target tag holds when it is another index, and settle which tags move
//!    (`targets`, by the rules of `order`): a tag holding a newer pipeline's index or a higher
//!    version is kept; an index that is this run's content published by another run is adopted.
//!    Then refuse, before anything is pushed anywhere, to move a tag a destination keeps
//!    immutable.
//! 4. Copy the children each destination lacks (mounted or streamed), untagged, by the copy
//!    phase's deadline (`MULTIARCH_TIMEOUT` plus 10 minutes from the start).
//! 5. PUT the index by digest into each destination with several tags to move; a failure here
//!    moves no tag. (With one tag, its own PUT is all or nothing.)
//! 6. PUT it under each tag that does not hold it yet. Steps 3 and 5–6 each retry for at most
//!    `PUSH_ALLOWANCE` (a `Retry-After` asking for more is not slept). A tag the registry refuses (a protected
//!    tag, `TAG_INVALID`, a persistent 5xx) does not stop the others: the outcome says exactly
//!    which tags hold the index and why the others do not. With `--append`, the tag merged into
//!    is looked at just before its PUT and read back after it; another append that landed in
//!    between is merged in and pushed again (`append::ROUNDS` in all).
//!
//! When every target tag is found holding a newer index than this run could publish (a later
//! pipeline's, a higher version: `targets::superseded`), no source is worth waiting for: the
//! wait is given up after its current round (or, at its deadline, the tags are looked at again)
//! and the run ends there (`Run::Superseded`), exit 0 with every tag kept. That is an older
//! pipeline's manifest job running last, finding the newer pipeline's builds under the shared
//! per-arch tags.
//!
//! With `--if-complete` step 1 looks once and, unless every source is ready, the run ends there
//! (`Run::Incomplete`): nothing is pushed, and the build job that completes the set publishes —
//! unless every target tag holds a newer index already (`Run::Superseded`: none ever will).
//! Two such jobs finishing together build the same bytes, and `order` keeps a late older
//! pipeline from winning.
//!
//! Two pipelines of one ref publishing at once are kept apart by the manifest job's
//! `resource_group`, not here: a look after the PUT would cost every run a round trip and only
//! see a race that lands within it. `--append` pays it (there a lost race loses a platform
//! nobody republishes), and so do `--if-complete` and releases (`recheck`: build jobs have no
//! resource group, a release's floating tags are shared across refs, and an older publisher
//! landing last would move the tags backwards).

mod append;
mod copy;
mod moving;
mod preview;
mod publishing;
mod recheck;
mod targets;

use std::cell::{Cell, RefCell};

use futures_util::future::{join_all, try_join, try_join_all, FutureExt as _};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::digest::Digest;
use crate::error::{Error, NotReady};
use crate::index::{self, Base, Index};
use crate::manifest::Fetched;
use crate::model::Resolved;
use crate::outcome::{Destination, Kept, Outcome, Status};
use crate::reference::{Reference, Repository};
use crate::registry::{first_line, Deadline, Registry};
use crate::settings::Plan;
use crate::wait::{self, Gathered};
use moving::move_tags;
use publishing::Publishing;
use targets::Step;

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

/// One destination repository and its target tags (in plan order, with their places in
/// `plan.targets`).
struct Group<'a> {
    repository: &'a Repository,
    targets: Vec<Reference>,
    places: Vec<usize>,
}

/// The destinations of `plan`, in plan order.
fn groups(plan: &Plan) -> Vec<Group<'_>> {
    let mut out: Vec<Group> = Vec::new();
    for (i, t) in plan.targets.iter().enumerate() {
        match out.iter_mut().find(|g| g.repository == t.repository()) {
            Some(g) => {
                g.targets.push(t.clone());
                g.places.push(i);
            }
            None => out.push(Group {
                repository: t.repository(),
                targets: vec![t.clone()],
                places: vec![i],
            }),
        }
    }
    out
}

/// What a run did.
#[derive(Debug)]
pub(crate) enum Run {
    /// Went through the steps; the outcome says how each tag fared.
    Published(Outcome),
    /// `--if-complete` with these sources not ready (and why): nothing was pushed.
    Incomplete(Vec<(String, NotReady)>),
    /// Every target tag holds a newer index than this run could publish (a later pipeline's,
    /// a higher version), and these sources were not ready: not waited for, nothing pushed.
    Superseded {
        kept: Vec<Kept>,
        not_ready: Vec<(String, NotReady)>,
    },
}

/// Runs `push` (or `plan`, when `plan.dry_run`). An `Ok` outcome may hold refused tags
/// (`Outcome::failures`): the caller reports what moved, then `Outcome::end` turns them into the
/// error.
pub(crate) async fn run(
    plan: &Plan,
    registry: &impl Registry,
    phases: &dyn Phases,
) -> Result<Run, Error> {
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
    // Set once every target tag is found holding a newer index (`kept`: what keeps each): no
    // source is worth waiting for. Found by the first look, or by a look again while a source
    // is stale (a later pipeline, whose builds those may be, may publish meanwhile).
    let give_up = Cell::new(false);
    let kept: RefCell<Option<Vec<Kept>>> = RefCell::new(None);
    // What the target tags were seen holding: read once per digest, so that looking again is a
    // HEAD per tag (a GET is a pull on registries that count them) unless a tag moved.
    let seen: RefCell<targets::Read> = RefCell::new(targets::Read::new());
    let look = async {
        if plan.dry_run {
            // A preview names a destination that does not exist as the push would, where that
            // is known without a push credential (ECR's DescribeRepositories), and ends as the
            // push would when every tag holds a newer index (read with pull access; unread,
            // the wait goes on as the preview's other reads do).
            try_join_all(
                groups(plan)
                    .into_iter()
                    .map(|g| registry.check_exists(g.repository)),
            )
            .await?;
            if let Some(k) = superseded_by_pull(plan, &looking).await {
                *kept.borrow_mut() = Some(k);
                give_up.set(true);
            }
            return Ok(None);
        }
        let (current, ()) =
            try_join(look_at_targets(plan, &looking), check_push(plan, &looking)).await?;
        let mut read = targets::Read::new();
        targets::read_held(&looking, &plan.targets, &current, None, &mut read).await?;
        seen.borrow_mut().clone_from(&read);
        if let Some(k) = targets::superseded(plan, &plan.targets, &current, &read) {
            *kept.borrow_mut() = Some(k);
            give_up.set(true);
        }
        Ok(Some((current, read)))
    };
    let relook = || {
        async {
            let mut read = seen.take();
            let found = superseded_now(plan, &looking, &mut read).await;
            seen.replace(read);
            let some = found.is_some();
            *kept.borrow_mut() = found;
            some
        }
        .boxed_local()
    };
    let relook: wait::Relook = &relook;
    let gather = wait::gather_until(plan, registry, &give_up, (!plan.dry_run).then_some(relook));
    let gathered = try_join(gather, look).await;
    phases.end("multiarch_sources");
    let (
        Gathered {
            resolved,
            missing,
            waited,
            awaited,
            given_up,
        },
        looked,
    ) = match gathered {
        Err(Error::SourcesNotReady { sources, expected }) if !plan.dry_run => {
            // At the deadline: a later pipeline may have published meanwhile (one look, within
            // a request limit: the wait's retries are over).
            return match superseded_now(plan, &looking, &mut seen.take()).await {
                Some(kept) => Ok(Run::Superseded {
                    kept,
                    not_ready: sources,
                }),
                None => Err(Error::SourcesNotReady { sources, expected }),
            };
        }
        other => other?,
    };
    if !awaited.is_empty() {
        // Every tag already holds a newer index: no build job of this run's pipeline will
        // publish (its completer would keep them all), so it is said as the manifest job says it.
        return Ok(match kept.take() {
            Some(kept) => Run::Superseded {
                kept,
                not_ready: awaited,
            },
            None => Run::Incomplete(awaited),
        });
    }
    if let (Some(not_ready), Some(kept)) = (given_up, kept.take()) {
        return Ok(Run::Superseded { kept, not_ready });
    }

    let groups = groups(plan);
    let bases: Vec<Option<Fetched>> = match plan.append {
        true => try_join_all(groups.iter().map(|g| async {
            let at = &g.targets[0];
            let base = append::base(registry, at).await?;
            match &base {
                Some(f) => {
                    info!(reference = %at, digest = %f.digest, "appending to what the tag holds")
                }
                None => info!(reference = %at, "--append: the tag does not exist yet; a new index"),
            }
            Ok::<_, Error>(base)
        }))
        .await?,
        false => groups.iter().map(|_| None).collect(),
    };
    let indexes = build_each(plan, &resolved, &groups, &bases)?;

    let Some((looked, mut read)) = looked else {
        // Its reads retry no later than the wait would have.
        // Boxed, as the push's steps are: inlined, the run's future passes the compiler's
        // type-depth limit on a fresh build.
        let mut outcome = Box::pin(preview::preview(
            plan, &looking, &resolved, &groups, indexes, &bases,
        ))
        .await?;
        outcome.missing = missing;
        return Ok(Run::Published(outcome));
    };
    phases.start("multiarch_push", "Pushing the index", true);
    // The push phase's retries end within its allowance (renewed once the copies are done).
    let pushing = &registry.until(Some(Deadline::push(Instant::now())));
    // After a wait, the target tags may have moved meanwhile: look again.
    let current = if waited {
        look_at_targets(plan, pushing).await
    } else {
        Ok(looked)
    };
    let copying = registry.until(Some(Deadline::copy(start, plan.timeout)));
    let pushed = async {
        let current = current?;
        let settled = settle_each(
            plan, pushing, &resolved, &groups, indexes, &bases, &current, &mut read,
        )
        .await?;
        let publishing: Vec<Publishing> = groups
            .iter()
            .zip(settled)
            .zip(bases)
            .map(|((g, (now, settled)), base)| Publishing {
                group: g,
                current: now,
                settled,
                base,
                by_digest: false,
            })
            .collect();
        // Boxed: the future of every step inlined is past the compiler's type-depth limit.
        Box::pin(push_all(
            plan, pushing, &copying, &resolved, publishing, start,
        ))
        .await
    }
    .await;
    phases.end("multiarch_push");
    let mut outcome = pushed?;
    outcome.missing = missing;
    Ok(Run::Published(outcome))
}

/// Settles each destination's tags (`targets::settle`), given what every target tag holds
/// (`current`, in plan order): per destination, what its tags hold and what becomes of them.
#[allow(clippy::too_many_arguments)]
async fn settle_each(
    plan: &Plan,
    registry: &impl Registry,
    resolved: &[Resolved],
    groups: &[Group<'_>],
    indexes: Vec<Index>,
    bases: &[Option<Fetched>],
    current: &[Option<Digest>],
    read: &mut targets::Read,
) -> Result<Vec<(Vec<Option<Digest>>, targets::Settled)>, Error> {
    let mut out = Vec::new();
    for ((g, index), base) in groups.iter().zip(indexes).zip(bases) {
        let now: Vec<Option<Digest>> = g.places.iter().map(|&i| current[i].clone()).collect();
        let b = base.as_ref().map(|f| base_of(f, &g.targets[0]));
        let settled = targets::settle(
            plan,
            registry,
            resolved,
            b.as_ref(),
            index,
            &g.targets,
            &now,
            read,
        )
        .await?;
        out.push((now, settled));
    }
    Ok(out)
}

/// The index of each destination: one for all, or with `--append` one merged into each
/// destination's own base.
fn build_each(
    plan: &Plan,
    resolved: &[Resolved],
    groups: &[Group],
    bases: &[Option<Fetched>],
) -> Result<Vec<Index>, Error> {
    if !plan.append {
        let index = index::build(resolved, plan.format, &plan.annotations, None)?;
        info!(digest = %index.digest, media_type = index.media_type, children = index.children.len(), "index built");
        return Ok(groups.iter().map(|_| index.clone()).collect());
    }
    groups
        .iter()
        .zip(bases)
        .map(|(g, base)| {
            let b = base.as_ref().map(|f| base_of(f, &g.targets[0]));
            let index = index::build(resolved, plan.format, &plan.annotations, b.as_ref())?;
            info!(destination = %g.repository, digest = %index.digest, media_type = index.media_type, children = index.children.len(), "index built");
            Ok(index)
        })
        .collect()
}

fn base_of<'a>(fetched: &'a Fetched, at: &'a Reference) -> Base<'a> {
    Base {
        fetched,
        reference: at.to_string(),
        repository: at.repository(),
    }
}

/// What keeps every target tag when each holds a newer index, read with pull access only (a
/// dry run's look); `None` otherwise, or when the tags cannot be read.
async fn superseded_by_pull(plan: &Plan, registry: &impl Registry) -> Option<Vec<Kept>> {
    let current = try_join_all(plan.targets.iter().map(|t| registry.head_manifest(t)))
        .await
        .ok()?;
    let mut read = targets::Read::new();
    targets::read_held(registry, &plan.targets, &current, None, &mut read)
        .await
        .ok()?;
    targets::superseded(plan, &plan.targets, &current, &read)
}

/// What keeps every target tag, looked at afresh, when each holds a newer index than this run
/// could publish; `None` otherwise, or when looking fails (the caller's error stands). `read`:
/// what is known of the indexes the tags held (only a digest not seen before is read).
async fn superseded_now(
    plan: &Plan,
    registry: &impl Registry,
    read: &mut targets::Read,
) -> Option<Vec<Kept>> {
    let current = look_at_targets(plan, registry).await.ok()?;
    targets::read_held(registry, &plan.targets, &current, None, read)
        .await
        .ok()?;
    targets::superseded(plan, &plan.targets, &current, read)
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
/// may be uploaded there (a source lives elsewhere; with `--append` each destination's base is
/// its own).
async fn check_push(plan: &Plan, registry: &impl Registry) -> Result<(), Error> {
    let uploads = |to: &Repository| plan.sources.iter().any(|s| s.reference.repository() != to);
    try_join_all(
        groups(plan)
            .into_iter()
            .map(|g| registry.check_push(g.repository, uploads(g.repository))),
    )
    .await
    .map(|_| ())
}

/// Warns that tag `t` did not end as this run meant, with `error`'s first line; the tag is named
/// once (most errors open with it).
fn warn_tag(t: &Reference, error: &str, what: &str) {
    match crate::error::names_tag(error, &t.to_string()) {
        true => warn!(%error, "{what}"),
        false => warn!(reference = %t, %error, "{what}"),
    }
}

/// Refuses, before anything is pushed, to move a tag its repository keeps immutable while it
/// holds another index: every such tag of every destination (`moving`: the tags that would move,
/// with what each holds), named at once so one fix covers all.
async fn check_immutable<'a>(
    registry: &impl Registry,
    moving: impl Iterator<Item = (&'a Repository, Vec<(&'a Reference, &'a Option<Digest>)>)>,
) -> Result<(), Error> {
    let mut immutable: Vec<(String, String)> = Vec::new();
    for (repository, tags) in moving {
        let held: Vec<(&Reference, &Digest)> = tags
            .into_iter()
            .filter_map(|(t, c)| c.as_ref().map(|d| (t, d)))
            .collect();
        if held.is_empty() {
            continue;
        }
        let rule = registry.tag_rule(repository).await?;
        let tag_of = |t: &Reference| t.tag().unwrap_or_default().to_string();
        immutable.extend(
            held.iter()
                .filter(|(t, _)| rule.is_immutable(&tag_of(t)))
                .map(|(t, d)| (t.to_string(), d.to_string())),
        );
    }
    match immutable.is_empty() {
        true => Ok(()),
        false => Err(Error::ImmutableTagHolds { tags: immutable }),
    }
}

/// Steps 3 to 6 for every destination, given what every target tag holds and what becomes of
/// it; `copying` is the access whose retries (and streams) end by the copy phase's deadline;
/// the tags were first looked at from `looked_at` on.
async fn push_all<R: Registry>(
    plan: &Plan,
    registry: &R,
    copying: &R,
    resolved: &[Resolved],
    mut publishing: Vec<Publishing<'_>>,
    looked_at: Instant,
) -> Result<Outcome, Error> {
    // Every destination's rule before anything is pushed anywhere.
    check_immutable(
        registry,
        publishing
            .iter()
            .map(|p| (p.group.repository, p.moving().collect())),
    )
    .await?;
    // The destinations with a tag to move get the children they lack, then (with --append, once
    // the tag merged into is looked at again) the index by digest; then the tags move.
    try_join_all(
        publishing
            .iter()
            .filter(|p| p.moving().next().is_some())
            .map(|p| async move {
                copy::children(copying, &p.settled.index, resolved, &[p.group.repository]).await
            }),
    )
    .await?;
    let registry = &registry.until(Some(Deadline::push(Instant::now())));
    try_join_all(publishing.iter_mut().map(|p| async move {
        if p.merges(plan) {
            let at = &p.group.targets[0];
            let held = p.base.as_ref().map(|f| f.digest.clone());
            if let Some(now) = append::look_again(registry, at, held.as_ref()).await? {
                info!(reference = %at, "another writer pushed this tag since it was read: merging into what it holds now");
                p.merge_again(plan, resolved, now)?;
            }
        }
        p.push_by_digest(registry).await
    }))
    .await?;
    let moved = join_all(
        publishing
            .iter_mut()
            .map(|p| move_tags(plan, registry, resolved, p, looked_at)),
    )
    .await;

    let first = publishing[0].settled.index.clone();
    let mut outcome = Outcome::new(first.clone(), Vec::new());
    outcome.destinations = publishing
        .iter()
        .map(|p| Destination {
            repository: p.group.repository.clone(),
            index: (p.settled.index.digest != first.digest).then(|| p.settled.index.clone()),
            by_digest: p.by_digest,
        })
        .collect();
    for (p, (results, kept)) in publishing.iter().zip(moved) {
        outcome
            .kept
            .extend(p.settled.steps.iter().filter_map(|s| match s {
                Step::Keep(k) => Some(k.clone()),
                _ => None,
            }));
        outcome.kept.extend(kept);
        for (t, status, e) in results {
            outcome.targets.push((t.clone(), status));
            if let Some(e) = e {
                let what = match status {
                    Status::Unknown => "it may or may not hold the index",
                    // It moved, and another writer's index replaced it each time.
                    _ if matches!(e, Error::AppendContended { .. }) => {
                        "another append holds the tag"
                    }
                    _ => "the tag did not move",
                };
                warn_tag(&t, &first_line(&e), what);
                outcome.failures.push((t, e));
            }
        }
    }
    // Plan order, destination by destination as `plan.targets` lists them.
    let order = |t: &Reference| plan.targets.iter().position(|p| p == t);
    outcome.targets.sort_by_key(|(t, _)| order(t));
    outcome.failures.sort_by_key(|(t, _)| order(t));
    Ok(outcome)
}

#[cfg(test)]
mod tests;
