//! Getting every per-architecture source: the first round GETs them all at once; the sources not
//! there yet are polled with HEAD (Docker Hub does not count a HEAD as a pull) with capped
//! exponential backoff and jitter until they appear or `--timeout` runs out. A source that
//! appears is fetched and checked at once, so a wrong image fails now (exit 4), not at the
//! deadline.
//!
//! A source built from another revision than this pipeline's (its `org.opencontainers.image.
//! revision` label says so), or unlabelled and created before this pipeline started, is
//! **stale**: usually an earlier pipeline's image still under the tag (`provenance` decides). It
//! is waited past exactly like a missing one; HEAD polling sees when the tag moves, and only then
//! is it read again. While a source is stale, whoever gave `relook` is asked every `RELOOK_EVERY`
//! whether waiting is still worth it (a later pipeline, whose builds those may be, may have
//! published meanwhile: then no tag could move). A build job's digest hand-off
//! (`MULTIARCH_SOURCE_*`) is exact: it is read once and never waited for.
//!
//! Here 404 means "not yet". A registry that fails transiently is polled on, but not forever: if
//! every request fails for `FAILING_LIMIT`, or it is still failing at the deadline, the run ends
//! with exit 75 (retry the job), naming the cause, not 3. The deadline also bounds every retry
//! (`Registry::until`; `NO_WAIT_RETRIES` when no wait was asked for), and progress is logged at
//! least every 30 s even while requests hang, so a run ends within the deadline plus one request
//! limit. Time comes from `tokio::time` only, so
//! tests run on a paused clock.
//!
//! `--if-complete` never waits, whatever `--timeout` says: one round, as with `--timeout 0`, and
//! the sources not ready then are an answer (`Gathered::awaited`), not an error.

use std::cell::Cell;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::future::{join_all, LocalBoxFuture};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::builder::Builder;
use crate::digest::Digest;
use crate::error::{Error, GaveUp, NotReady, Stale};
use crate::model::{Resolved, Source, SourceOrigin, HAND_OFF_PREFIX};
use crate::registry::{first_line, Deadline, Registry};
use crate::settings::Plan;
use judge::judge;
use provenance::{labelled, later_words, short, unlabelled};
use read::resolve;

mod judge;
mod provenance;
mod read;

/// At least this often a progress line, even when nothing changed (or requests hang).
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// A registry answering nothing but transient failures for this long ends the wait with 75.
pub(crate) const FAILING_LIMIT: Duration = Duration::from_secs(120);

/// With `--timeout 0` ("look once, do not wait") retries of the look sleep no further than this:
/// enough for the default backoff (5 retries, at most about 15 s) to ride out a flaky registry,
/// while a registry asking (`Retry-After`) to come back later ends the run at once with 75.
pub(crate) const NO_WAIT_RETRIES: Duration = Duration::from_secs(15);

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

/// The sources that are ready, in plan order, and the references of those that are not (non-empty
/// only with `--allow-missing`).
pub(crate) struct Gathered {
    pub(crate) resolved: Vec<Resolved>,
    pub(crate) missing: Vec<String>,
    /// True when some source was not ready at first and had to be waited for.
    pub(crate) waited: bool,
    /// With `--if-complete`, the sources not ready at the one look and why (nothing is
    /// published then); else empty.
    pub(crate) awaited: Vec<(String, NotReady)>,
    /// The wait was given up (`gather_until`) with these sources not ready, and why.
    pub(crate) given_up: Option<Vec<(String, NotReady)>>,
}

/// How long to wait for sources: `--timeout`, or nothing at all with `--if-complete`.
fn waits(plan: &Plan) -> Duration {
    if plan.if_complete {
        Duration::ZERO
    } else {
        plan.timeout
    }
}

/// Where one source stands.
enum State {
    /// Not seen yet (or not there).
    Waiting,
    /// Seen under `digest`, but an earlier build (`why`). Read again only when the tag's digest
    /// changes.
    Stale {
        digest: Digest,
        why: Stale,
        builder: Option<Builder>,
    },
    Ready(Box<Resolved>),
}

/// What one look at a source found.
enum Look {
    /// Not there (404).
    Absent,
    /// Still the stale digest seen before: not read again.
    Same,
    Found(Box<Resolved>),
}

/// The time no retry of a request made while looking for sources (from `start`) sleeps past:
/// the wait's deadline; with no wait asked for, a short window, so a request still gets its
/// retries.
pub(crate) fn retries_until(plan: &Plan, start: Instant) -> Instant {
    match waits(plan) {
        Duration::ZERO => start + NO_WAIT_RETRIES,
        wait => start + wait,
    }
}

/// Waits for every source of `plan` (up to `plan.timeout`) and resolves each one's platform and
/// revision.
pub(crate) async fn gather(plan: &Plan, registry: &impl Registry) -> Result<Gathered, Error> {
    gather_until(plan, registry, &Cell::new(false), None).await
}

/// Asked while a source is stale: whether waiting is no longer worth it.
pub(crate) type Relook<'a> = &'a dyn Fn() -> LocalBoxFuture<'a, bool>;

/// How often `relook` is asked.
pub(crate) const RELOOK_EVERY: Duration = Duration::from_secs(10);

/// `gather`, given up after a round that leaves a source not ready once `give_up` is set (by
/// whoever learns that no tag could move anyway) or `relook` says so: nothing is worth waiting
/// for then.
pub(crate) async fn gather_until(
    plan: &Plan,
    registry: &impl Registry,
    give_up: &Cell<bool>,
    relook: Option<Relook<'_>>,
) -> Result<Gathered, Error> {
    let start = Instant::now();
    let deadline = start + waits(plan);
    let registry = &registry.until(Some(Deadline::wait(retries_until(plan, start))));
    let n = plan.sources.len();
    let mut states: Vec<State> = (0..n).map(|_| State::Waiting).collect();
    let mut failing: Vec<Option<Error>> = (0..n).map(|_| None).collect();
    let mut failing_since: Option<Instant> = None;
    let mut delays = poll_delays();
    let mut next_progress = start + PROGRESS_EVERY;
    let mut rounds = 0u32;
    let mut next_relook = start + RELOOK_EVERY;
    loop {
        let first_round = rounds == 0;
        let pending: Vec<usize> = (0..n)
            .filter(|i| !matches!(states[*i], State::Ready(_)))
            .collect();
        let results = {
            let looks = join_all(
                pending
                    .iter()
                    .map(|&i| look(registry, plan, &plan.sources[i], &states[i], first_round)),
            );
            tokio::pin!(looks);
            // Requests may hang up to their time limit: progress still comes on time.
            loop {
                tokio::select! {
                    results = &mut looks => break results,
                    () = tokio::time::sleep_until(next_progress) => {
                        let now = Instant::now();
                        progress(plan, &states, now - start, deadline.saturating_duration_since(now));
                        next_progress = now + PROGRESS_EVERY;
                    }
                }
            }
        };
        // A source of this pipeline's revision, by its label (ready before, or read now): beside
        // it, an unlabelled image is another pipeline's build.
        let labelled = plan.revision.as_deref().and_then(|want| {
            let by_label = |r: &Resolved| labelled(r, want, &plan.times);
            let ready = states
                .iter()
                .zip(&plan.sources)
                .find_map(|(s, src)| match s {
                    State::Ready(r) if by_label(r) => Some(src.reference.to_string()),
                    _ => None,
                });
            ready.or_else(|| {
                pending
                    .iter()
                    .zip(&results)
                    .find_map(|(&i, res)| match res {
                        Ok(Look::Found(r)) if by_label(r) => {
                            Some(plan.sources[i].reference.to_string())
                        }
                        _ => None,
                    })
            })
        });
        let mut changed = false;
        let mut answered = false;
        for (i, result) in pending.iter().copied().zip(results) {
            failing[i] = None;
            let source = &plan.sources[i];
            if !matches!(result, Err(Error::Transient { .. })) {
                answered = true;
            }
            match result {
                Ok(Look::Found(r)) => {
                    changed = true;
                    states[i] = judge(plan, source, r, first_round, labelled.as_deref())?;
                    if let State::Ready(r) = &states[i] {
                        crate::content::warn_unchecked(r);
                    }
                }
                Ok(Look::Absent) if source.origin.is_hand_off() => {
                    return Err(hand_off_error(source, None));
                }
                Ok(Look::Absent) => {
                    if matches!(states[i], State::Stale { .. }) {
                        changed = true;
                        states[i] = State::Waiting;
                    }
                }
                Ok(Look::Same) => {}
                // A registry asking (`Retry-After`) for a pause past the wait's deadline is
                // taken at its word: polling on would only hit it again.
                Err(
                    e @ Error::Transient {
                        gave_up: GaveUp::Deadline { asked: Some(_), .. },
                        ..
                    },
                ) => return Err(e),
                // A flaky registry is not a missing source: keep polling, within limits.
                Err(e @ Error::Transient { .. }) if !waits(plan).is_zero() => {
                    warn!(reference = %source.reference, error = %first_line(&e), "still failing; polling on");
                    failing[i] = Some(e);
                }
                Err(e) => return Err(e),
            }
            if let (State::Stale { why, builder, .. }, true) =
                (&states[i], source.origin.is_hand_off())
            {
                return Err(hand_off_error(source, Some((why.clone(), *builder))));
            }
        }
        // An unlabelled image taken in an earlier round, before a labelled one was seen.
        if let Some(by) = &labelled {
            changed |= unlabelled_beside(plan, &mut states, by);
        }
        // Every source this round read is judged before the verdict: one failed run names each
        // image whose program is of another machine (sources not there yet are not waited for).
        let ready: Vec<&Resolved> = states
            .iter()
            .filter_map(|s| match s {
                State::Ready(r) => Some(&**r),
                _ => None,
            })
            .collect();
        if let Err(e) = crate::content::enforce(&ready) {
            crate::content::summary(ready);
            return Err(e);
        }
        rounds += 1;
        let now = Instant::now();
        if states.iter().all(|s| matches!(s, State::Ready(_))) {
            break;
        }
        if answered {
            failing_since = None;
        } else {
            let since = *failing_since.get_or_insert(now);
            if now - since >= FAILING_LIMIT {
                if let Some(e) = failing.iter_mut().find_map(Option::take) {
                    return Err(e);
                }
            }
        }
        let stale = states.iter().any(|s| matches!(s, State::Stale { .. }));
        if let Some(relook) = relook.filter(|_| stale && now >= next_relook && !give_up.get()) {
            if relook().await {
                give_up.set(true);
            }
            next_relook = Instant::now() + RELOOK_EVERY;
        }
        if give_up.get() && !plan.if_complete {
            return Ok(Gathered {
                resolved: Vec::new(),
                missing: Vec::new(),
                waited: rounds > 1,
                awaited: Vec::new(),
                given_up: Some(not_ready(plan, &states, false)),
            });
        }
        if now >= deadline {
            return at_deadline(plan, states, failing);
        }
        if changed || now >= next_progress || rounds == 1 {
            progress(plan, &states, now - start, deadline - now);
            next_progress = now + PROGRESS_EVERY;
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(2));
        tokio::time::sleep(delay.min(deadline - now)).await;
    }
    let resolved: Vec<Resolved> = states
        .into_iter()
        .filter_map(|s| match s {
            State::Ready(r) => Some(*r),
            _ => None,
        })
        .collect();
    crate::content::summary(&resolved);
    Ok(Gathered {
        resolved,
        missing: Vec::new(),
        waited: rounds > 1,
        awaited: Vec::new(),
        given_up: None,
    })
}

/// A handed-off digest that is missing or stale will not change by waiting: fail at once.
fn hand_off_error(source: &Source, stale: Option<(Stale, Option<Builder>)>) -> Error {
    let variable = match &source.origin {
        SourceOrigin::HandOff(v) => v.clone(),
        _ => String::new(),
    };
    let state = NotReady::HandedOver {
        variable: variable.clone(),
        stale: stale.map(|(why, _)| why),
    };
    Error::SourcesNotReady {
        sources: vec![(source.reference.to_string(), state)],
        expected: None,
    }
}

/// The variable that would hand a source's platform over by digest.
fn hand_off_variable(source: &Source) -> Option<String> {
    source
        .platform
        .as_ref()
        .map(|p| format!("{HAND_OFF_PREFIX}{}", p.env_suffix()))
}

/// The deadline passed with sources not ready: 75 if the registry was still failing, else 3 —
/// or, with `--allow-missing`, the sources that are ready; with `--if-complete`, none of them
/// and what is awaited.
fn at_deadline(
    plan: &Plan,
    states: Vec<State>,
    failing: Vec<Option<Error>>,
) -> Result<Gathered, Error> {
    if let Some(e) = failing.into_iter().flatten().next() {
        return Err(e);
    }
    // Build jobs that hand over some platforms but not others build another platform list —
    // unless this is a build job that hands over its own platform and looks for the others.
    let handing_off = !plan.if_complete && plan.sources.iter().any(|s| s.origin.is_hand_off());
    let not_ready = not_ready(plan, &states, handing_off);
    if plan.if_complete {
        return Ok(Gathered {
            resolved: Vec::new(),
            missing: Vec::new(),
            waited: false,
            awaited: not_ready,
            given_up: None,
        });
    }
    let resolved: Vec<Resolved> = states
        .into_iter()
        .filter_map(|s| match s {
            State::Ready(r) => Some(*r),
            _ => None,
        })
        .collect();
    if !plan.allow_missing || resolved.is_empty() {
        return Err(Error::SourcesNotReady {
            sources: not_ready,
            expected: plan.revision.clone(),
        });
    }
    let missing: Vec<String> = not_ready.into_iter().map(|(r, _)| r).collect();
    warn!(missing = %missing.join(", "), "publishing without the sources that are missing or stale (--allow-missing)");
    crate::content::summary(&resolved);
    Ok(Gathered {
        resolved,
        missing,
        waited: true,
        awaited: Vec::new(),
        given_up: None,
    })
}

/// The sources of `plan` not ready in `states`, and why (`handing_off`: the build jobs hand
/// digests over, so a missing one was not handed over).
fn not_ready(plan: &Plan, states: &[State], handing_off: bool) -> Vec<(String, NotReady)> {
    plan.sources
        .iter()
        .zip(states)
        .filter_map(|(s, state)| {
            let why = match state {
                State::Ready(_) => return None,
                State::Waiting => match hand_off_variable(s) {
                    Some(variable) if handing_off => NotReady::NotHandedOff { variable },
                    _ => match &plan.semver_tag {
                        Some(tag) => NotReady::MissingVersion(tag.clone()),
                        None => NotReady::Missing,
                    },
                },
                State::Stale { why, builder, .. } => NotReady::Stale {
                    why: why.clone(),
                    builder: *builder,
                    hand_off: hand_off_variable(s),
                },
            };
            Some((s.reference.to_string(), why))
        })
        .collect()
}

/// One look at one source: GET in the first round; then a HEAD, and a GET only when the tag
/// exists and does not still hold the stale digest seen before.
async fn look(
    registry: &impl Registry,
    plan: &Plan,
    source: &Source,
    state: &State,
    first_round: bool,
) -> Result<Look, Error> {
    if !first_round {
        match registry.head_manifest(&source.reference).await? {
            None => return Ok(Look::Absent),
            Some(d) if matches!(state, State::Stale { digest, .. } if *digest == d) => {
                return Ok(Look::Same)
            }
            Some(_) => {}
        }
    }
    match registry.fetch_manifest(&source.reference).await? {
        Some(fetched) => resolve(registry, plan, source, fetched)
            .await
            .map(|r| Look::Found(Box::new(r))),
        None => Ok(Look::Absent),
    }
}

/// Turns the ready sources under per-architecture tags (the source template) holding an
/// unlabelled image into stale ones, now that `by` shows this pipeline labels its builds; true
/// when one was.
fn unlabelled_beside(plan: &Plan, states: &mut [State], by: &str) -> bool {
    let mut changed = false;
    for (state, source) in states.iter_mut().zip(&plan.sources) {
        let State::Ready(r) = state else { continue };
        if source.origin != SourceOrigin::Template || !unlabelled(r) {
            continue;
        }
        let digest = r.fetched().digest.clone();
        info!(reference = %source.reference, %digest, labelled = %by, "stale after all: unlabelled, while this pipeline's builds are labelled");
        *state = State::Stale {
            digest,
            builder: provenance::builder(r),
            why: Stale::UnlabelledBesideLabelled {
                labelled: by.to_string(),
            },
        };
        changed = true;
    }
    changed
}

fn progress(plan: &Plan, states: &[State], elapsed: Duration, remaining: Duration) {
    let list = |keep: &dyn Fn(&State) -> Option<String>| {
        plan.sources
            .iter()
            .zip(states)
            .filter_map(|(s, st)| keep(st).map(|extra| format!("{}{extra}", s.reference)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ready = list(&|s| matches!(s, State::Ready(_)).then(String::new));
    let missing = list(&|s| matches!(s, State::Waiting).then(String::new));
    let stale = list(&|s| match s {
        State::Stale { why, .. } => Some(match why {
            Stale::Revision(held) => format!(" holds {}", short(held)),
            Stale::LaterRevision { revision, sign } => {
                format!(" holds {} ({})", short(revision), later_words(sign))
            }
            Stale::Unlabelled => " holds no revision label".to_string(),
            Stale::CreatedBefore { created, .. } => {
                format!(" holds an unlabelled image created {created}")
            }
            Stale::UnlabelledBesideLabelled { .. } => {
                " holds an unlabelled image (this pipeline's builds are labelled)".to_string()
            }
        }),
        _ => None,
    });
    let want = plan.revision.as_deref().map(short).unwrap_or_default();
    info!(
        %ready,
        %missing,
        %stale,
        awaiting_revision = %want,
        elapsed = %secs(elapsed),
        remaining = %secs(remaining),
        "waiting for sources"
    );
}

fn secs(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests;
