//! The push command's orchestration: the one place that knows the order of the steps.
//!
//! sources → fetch every manifest at once → fetch every config at once → build the index →
//! for each target tag at once: look, skip if it already holds the index, else PUT.
//! Nothing is pushed unless every step before succeeded (no partial index).

use futures_util::future::try_join_all;
use tracing::{info, warn};

use crate::error::Error;
use crate::index::{self, Index, Resolved};
use crate::manifest::{self, Fetched, Manifest};
use crate::reference::Reference;
use crate::registry::Registry;
use crate::settings::{Plan, Source};

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
    fn start(&self, name: &str, title: &str);
    fn end(&self, name: &str);
}

/// No sections (outside GitLab, and in tests).
pub struct NoPhases;

impl Phases for NoPhases {
    fn start(&self, _: &str, _: &str) {}
    fn end(&self, _: &str) {}
}

/// Runs `push` (or `plan`, when `plan.dry_run`).
pub async fn run(
    plan: &Plan,
    registry: &impl Registry,
    phases: &dyn Phases,
) -> Result<Outcome, Error> {
    phases.start("multiarch_sources", "Reading per-architecture sources");
    let gathered = gather(plan, registry).await;
    phases.end("multiarch_sources");
    let (resolved, missing) = gathered?;

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
    phases.start("multiarch_push", "Pushing the index");
    let pushed = try_join_all(plan.targets.iter().map(|t| push_one(registry, t, &index))).await;
    phases.end("multiarch_push");
    Ok(Outcome {
        targets: pushed?,
        index,
        missing,
    })
}

/// Fetches every source manifest, then every config, all concurrently. Returns the resolved
/// sources in plan order and the references of the missing ones (allowed only with
/// `--allow-missing`, and only while at least one source exists).
async fn gather(
    plan: &Plan,
    registry: &impl Registry,
) -> Result<(Vec<Resolved>, Vec<String>), Error> {
    let fetched = try_join_all(
        plan.sources
            .iter()
            .map(|s| registry.fetch_manifest(&s.reference)),
    )
    .await?;
    let mut present: Vec<(&Source, Fetched)> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for (source, found) in plan.sources.iter().zip(fetched) {
        match found {
            Some(f) => present.push((source, f)),
            None => missing.push(source.reference.to_string()),
        }
    }
    if !missing.is_empty() {
        if !plan.allow_missing || present.is_empty() {
            return Err(Error::SourcesMissing { missing });
        }
        warn!(missing = %missing.join(", "), "publishing without the missing sources (--allow-missing)");
    }
    let resolved = try_join_all(present.into_iter().map(|(s, f)| resolve(registry, s, f))).await?;
    Ok((resolved, missing))
}

/// Reads the platform of one fetched source: from its config for an image; an index carries
/// its platforms in its entries.
async fn resolve(
    registry: &impl Registry,
    source: &Source,
    fetched: Fetched,
) -> Result<Resolved, Error> {
    let reference = source.reference.to_string();
    let config_platform = match &fetched.manifest {
        Manifest::Image { config } => {
            let bytes = registry.fetch_config(&source.reference, config).await?;
            Some(manifest::config_platform(&reference, &bytes)?)
        }
        Manifest::Index { .. } => None,
    };
    info!(
        reference = %reference,
        digest = %fetched.digest,
        platform = %config_platform.as_ref().map(ToString::to_string).unwrap_or_else(|| "index".into()),
        "source found"
    );
    Ok(Resolved {
        reference,
        expected: source.platform.clone(),
        fetched,
        config_platform,
    })
}

/// Looks at the target tag first: if it already holds the index, nothing is sent (this keeps
/// immutable tags re-runnable); otherwise PUT.
async fn push_one(
    registry: &impl Registry,
    target: &Reference,
    index: &Index,
) -> Result<(Reference, Status), Error> {
    let current = registry.fetch_manifest(target).await.or_else(|e| match e {
        // A target that holds something we cannot parse (a foreign artifact) is simply replaced.
        Error::InvalidManifest { .. } => Ok(None),
        e => Err(e),
    })?;
    if current.is_some_and(|c| c.digest == index.digest) {
        info!(reference = %target, digest = %index.digest, "unchanged");
        return Ok((target.clone(), Status::Unchanged));
    }
    registry.push_index(target, index).await?;
    info!(reference = %target, digest = %index.digest, "pushed");
    Ok((target.clone(), Status::Pushed))
}
