//! Getting every per-architecture source: the first round GETs them all at once; the sources not
//! there yet are polled with HEAD (Docker Hub does not count a HEAD as a pull) with capped
//! exponential backoff and jitter until they appear or `--timeout` runs out. A source that
//! appears is fetched and its platform checked at once, so a wrong image fails now (exit 4), not
//! at the deadline.
//!
//! Here 404 means "not yet"; a registry that keeps failing is remembered per source, and if it is
//! still failing at the deadline the run ends with exit 75 (retry the job), not 3. Time comes from
//! `tokio::time` only, so tests run on a paused clock.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::error::Error;
use crate::index::{self, Resolved};
use crate::manifest::{self, Fetched, Manifest};
use crate::registry::Registry;
use crate::settings::{Plan, Source};

/// At least this often a progress line, even when nothing changed.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Delays between polls: 0.5 s growing ×1.5 to 2 s, each with up to +100 % jitter, so a source
/// that lands late is seen within 2–4 s (median lag about 1.5 s) at one HEAD per missing source.
fn poll_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(1.5)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The sources that exist, in plan order, and the references of those still missing (non-empty
/// only with `--allow-missing`).
pub struct Gathered {
    pub resolved: Vec<Resolved>,
    pub missing: Vec<String>,
    /// True when some source was not there at first and had to be waited for.
    pub waited: bool,
}

/// Waits for every source of `plan` (up to `plan.timeout`) and resolves each one's platform.
pub async fn gather(plan: &Plan, registry: &impl Registry) -> Result<Gathered, Error> {
    let start = Instant::now();
    let deadline = start + plan.timeout;
    let n = plan.sources.len();
    let mut found: Vec<Option<Resolved>> = vec![None; n];
    let mut failing: Vec<Option<Error>> = (0..n).map(|_| None).collect();
    let mut delays = poll_delays();
    let mut last_progress: Option<Instant> = None;
    let mut rounds = 0u32;
    loop {
        let first_round = rounds == 0;
        let pending: Vec<usize> = (0..n).filter(|i| found[*i].is_none()).collect();
        let probes = pending
            .iter()
            .map(|&i| probe(registry, &plan.sources[i], first_round));
        let mut appeared = false;
        for (i, result) in pending.iter().copied().zip(join_all(probes).await) {
            failing[i] = None;
            match result {
                Ok(Some(r)) => {
                    if !first_round {
                        info!(reference = %r.reference, elapsed = %secs(start.elapsed()), "source appeared");
                    }
                    found[i] = Some(r);
                    appeared = true;
                }
                Ok(None) => {}
                // A flaky registry is not a missing source: keep polling, decide at the deadline.
                Err(e @ Error::Transient { .. }) if !plan.timeout.is_zero() => {
                    warn!(reference = %plan.sources[i].reference, error = %first_line(&e), "still failing; polling on");
                    failing[i] = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        rounds += 1;
        let now = Instant::now();
        if found.iter().all(Option::is_some) {
            break;
        }
        if now >= deadline {
            return at_deadline(plan, found, failing);
        }
        if appeared || last_progress.is_none_or(|last| now - last >= PROGRESS_EVERY) {
            progress(plan, &found, start.elapsed(), deadline - now);
            last_progress = Some(now);
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(2));
        tokio::time::sleep(delay.min(deadline - now)).await;
    }
    Ok(Gathered {
        resolved: found.into_iter().flatten().collect(),
        missing: Vec::new(),
        waited: rounds > 1,
    })
}

/// The deadline passed with sources missing: 75 if the registry was still failing, else 3 —
/// or, with `--allow-missing`, the sources that exist.
fn at_deadline(
    plan: &Plan,
    found: Vec<Option<Resolved>>,
    failing: Vec<Option<Error>>,
) -> Result<Gathered, Error> {
    if let Some(e) = failing.into_iter().flatten().next() {
        return Err(e);
    }
    let missing: Vec<String> = plan
        .sources
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(s, _)| s.reference.to_string())
        .collect();
    let resolved: Vec<Resolved> = found.into_iter().flatten().collect();
    if !plan.allow_missing || resolved.is_empty() {
        return Err(Error::SourcesMissing { missing });
    }
    warn!(missing = %missing.join(", "), "publishing without the missing sources (--allow-missing)");
    Ok(Gathered {
        resolved,
        missing,
        waited: true,
    })
}

/// One look at one source: GET in the first round, then a HEAD until it exists, then a GET.
async fn probe(
    registry: &impl Registry,
    source: &Source,
    first_round: bool,
) -> Result<Option<Resolved>, Error> {
    if !first_round && registry.head_manifest(&source.reference).await?.is_none() {
        return Ok(None);
    }
    match registry.fetch_manifest(&source.reference).await? {
        Some(fetched) => resolve(registry, source, fetched).await.map(Some),
        None => Ok(None),
    }
}

/// Reads the platform of a fetched source (from its config for an image; an index carries its
/// platforms in its entries) and checks it against the tag's at once.
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
    let resolved = Resolved {
        reference,
        expected: source.platform.clone(),
        fetched,
        config_platform,
    };
    index::check(&resolved)?;
    info!(
        reference = %resolved.reference,
        digest = %resolved.fetched.digest,
        platform = %resolved.config_platform.as_ref().map_or_else(|| "index".to_string(), ToString::to_string),
        "source found"
    );
    Ok(resolved)
}

fn progress(plan: &Plan, found: &[Option<Resolved>], elapsed: Duration, remaining: Duration) {
    let list = |want: bool| {
        plan.sources
            .iter()
            .zip(found)
            .filter(|(_, f)| f.is_some() == want)
            .map(|(s, _)| s.reference.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    info!(
        ready = %list(true),
        missing = %list(false),
        elapsed = %secs(elapsed),
        remaining = %secs(remaining),
        "waiting for sources"
    );
}

fn secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn first_line(e: &Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests;
