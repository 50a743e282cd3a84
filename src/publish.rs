//! The push command's orchestration: the one place that knows the order of the steps.
//!
//! sources (wait for all, fetch every manifest and config at once) → build the index → for each
//! target tag at once: look (HEAD), skip if it already holds the index, else PUT.
//! Nothing is pushed unless every step before succeeded (no partial index).

use futures_util::future::try_join_all;
use tracing::info;

use crate::error::Error;
use crate::index::{self, Index};
use crate::reference::Reference;
use crate::registry::Registry;
use crate::settings::Plan;
use crate::wait::{self, Gathered};

/// What happened to one target tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The tag now holds the index.
    Pushed,
    /// The tag already held exactly this index: nothing sent.
    Unchanged,
    /// Dry run: nothing looked at or sent.
    Planned,
}

/// The result of a run, for `report`.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub index: Index,
    pub targets: Vec<(Reference, Status)>,
    /// Sources that were missing and left out (only with `--allow-missing`).
    pub missing: Vec<String>,
}

/// Marks the phases of a run, for GitLab's collapsible log sections.
pub trait Phases {
    fn start(&self, name: &str, title: &str, collapsed: bool);
    fn end(&self, name: &str);
}

/// No sections (outside GitLab, and in tests).
pub struct NoPhases;

impl Phases for NoPhases {
    fn start(&self, _: &str, _: &str, _: bool) {}
    fn end(&self, _: &str) {}
}

/// Runs `push` (or `plan`, when `plan.dry_run`).
pub async fn run(
    plan: &Plan,
    registry: &impl Registry,
    phases: &dyn Phases,
) -> Result<Outcome, Error> {
    phases.start(
        "multiarch_sources",
        "Waiting for and reading per-architecture sources",
        false,
    );
    // Alongside the sources: what the target tags hold now, and push credentials, so the push
    // phase is a single round trip. Skipped for a dry run, which touches nothing.
    let look = async {
        if plan.dry_run {
            return Ok(None);
        }
        let (current, ()) = futures_util::future::try_join(
            look_at_targets(plan, registry),
            prepare_push(plan, registry),
        )
        .await?;
        Ok::<_, Error>(Some(current))
    };
    let (gathered, looked) = futures_util::future::join(wait::gather(plan, registry), look).await;
    phases.end("multiarch_sources");
    let Gathered {
        resolved,
        missing,
        waited,
    } = gathered?;

    let index = index::build(&resolved, plan.format, &plan.annotations)?;
    info!(digest = %index.digest, media_type = index.media_type, children = index.children.len(), "index built");

    if plan.dry_run {
        let targets = plan
            .targets
            .iter()
            .map(|t| (t.clone(), Status::Planned))
            .collect();
        return Ok(Outcome {
            index,
            targets,
            missing,
        });
    }
    phases.start("multiarch_push", "Pushing the index", true);
    // After a wait, the target tags may have moved meanwhile: look again.
    let current = match looked? {
        Some(current) if !waited => current,
        _ => look_at_targets(plan, registry).await?,
    };
    let pushed = push_all(plan, registry, &index, current).await;
    phases.end("multiarch_push");
    Ok(Outcome {
        targets: pushed?,
        index,
        missing,
    })
}

/// The digest each target tag holds now (`None`: the tag does not exist).
async fn look_at_targets(
    plan: &Plan,
    registry: &impl Registry,
) -> Result<Vec<Option<String>>, Error> {
    try_join_all(plan.targets.iter().map(|t| registry.head_manifest(t))).await
}

/// Push credentials for the target repository (all targets share it).
async fn prepare_push(plan: &Plan, registry: &impl Registry) -> Result<(), Error> {
    match plan.targets.first() {
        Some(t) => registry.prepare_push(t).await,
        None => Ok(()),
    }
}

/// Given what every target tag holds, refuses (before pushing anything) to move a tag the
/// repository keeps immutable (ECR); then pushes where the tag does not already hold the index.
async fn push_all(
    plan: &Plan,
    registry: &impl Registry,
    index: &Index,
    current: Vec<Option<String>>,
) -> Result<Vec<(Reference, Status)>, Error> {
    let moving: Vec<(&Reference, &String)> = plan
        .targets
        .iter()
        .zip(&current)
        .filter_map(|(t, c)| c.as_ref().filter(|d| **d != index.digest).map(|d| (t, d)))
        .collect();
    if let Some((first, _)) = moving.first() {
        let rule = registry.tag_rule(first).await?;
        let tag_of = |t: &Reference| t.tag().unwrap_or_default().to_string();
        if let Some((t, held)) = moving.iter().find(|(t, _)| rule.is_immutable(&tag_of(t))) {
            return Err(Error::TagImmutable {
                reference: t.to_string(),
                reason: format!("the repository keeps this tag immutable and it holds {held}; nothing was pushed"),
            });
        }
    }
    let pushes = plan
        .targets
        .iter()
        .zip(current)
        .map(|(t, c)| push_one(registry, t, index, c));
    try_join_all(pushes).await
}

/// If the target tag already holds the index, nothing is sent (this keeps immutable tags
/// re-runnable); otherwise PUT.
async fn push_one(
    registry: &impl Registry,
    target: &Reference,
    index: &Index,
    current: Option<String>,
) -> Result<(Reference, Status), Error> {
    if current.as_deref() == Some(index.digest.as_str()) {
        info!(reference = %target, digest = %index.digest, "unchanged");
        return Ok((target.clone(), Status::Unchanged));
    }
    registry.push_index(target, index).await?;
    info!(reference = %target, digest = %index.digest, "pushed");
    Ok((target.clone(), Status::Pushed))
}
