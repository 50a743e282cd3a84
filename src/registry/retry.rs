//! The one retry site for registry requests, and the one budget they spend: a number of retries,
//! a time limit per request, and — while looking for sources, and while copying — a deadline no
//! retry sleeps past (the wait's, or a short window when no wait was asked for; the copy phase's;
//! the push phase's `PUSH_ALLOWANCE`); a retry that would sleep past it ends the retries at once,
//! and so does a `Retry-After` asking for more than the phase has left (it is not slept in part
//! only to be refused again). Backoff is exponential with jitter (backon); `Retry-After` (seconds
//! or an HTTP date) within the deadline is honoured up to a cap. How the retries ended is said once, on the error (`GaveUp`), however many loops it
//! passed through (a blob copy is retried as a whole around requests of its own).
//!
//! What is worth retrying is decided below (`classify`, `api`): 429, 408, 5xx, refused or reset
//! connections, timeouts, cut-off bodies, a resolver outage — never 401/403/404, an unknown host
//! or a TLS mismatch. Waiting for a source that does not exist yet is `wait`'s loop, not this one.

use std::future::Future;
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;
use tracing::warn;

use super::classify::{self, Failed, Op};
use super::request::{Answer, Unanswered};
use crate::error::{Error, GaveUp};

/// Longest `Retry-After` we honour; a registry asking for more gets this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The time copying children may take beyond the wait: the copy phase ends by the run's start
/// plus `MULTIARCH_TIMEOUT` plus this, so a run (wait, copies, push) fits the manifest
/// component's default job timeout of 30 minutes with the default wait of 15.
pub(crate) const COPY_ALLOWANCE: Duration = Duration::from_secs(10 * 60);

/// How long the push phase (what the tags hold, the index by digest, the tags) may go on
/// retrying from its start, and again after the copies: a rate-limited or failing registry ends
/// the run within this rather than after `MULTIARCH_RETRIES` capped `Retry-After` sleeps per
/// request.
pub(crate) const PUSH_ALLOWANCE: Duration = Duration::from_secs(2 * 60);

/// A time no retry sleeps past (and no blob copy runs past), and what set it, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) what: &'static str,
}

/// How long the content check's layer reads are retried.
const CONTENT_RETRIES: Duration = Duration::from_secs(15);

impl Deadline {
    /// The wait's deadline (or, with no wait, the look's short window).
    pub(crate) fn wait(at: Instant) -> Deadline {
        Deadline {
            at,
            what: "the time MULTIARCH_TIMEOUT leaves",
        }
    }

    /// The copy phase's: `COPY_ALLOWANCE` past the wait's time, from the run's `start`.
    pub(crate) fn copy(start: Instant, timeout: Duration) -> Deadline {
        Deadline {
            at: start + timeout + COPY_ALLOWANCE,
            what:
                "the end of the time for copying (MULTIARCH_TIMEOUT plus 10 minutes from the start)",
        }
    }

    /// The content check's layer reads, from `now`: a few retries, then "not checked".
    pub(crate) fn content(now: Instant) -> Deadline {
        Deadline {
            at: now + CONTENT_RETRIES,
            what: "the 15 s in which the content check retries a layer (an attempt may take MULTIARCH_REQUEST_TIMEOUT)",
        }
    }

    /// None past `now`: one attempt, no retry (a look whose failure is only a warning).
    pub(crate) fn once(now: Instant) -> Deadline {
        Deadline {
            at: now,
            what: "the one attempt this look gets",
        }
    }

    /// The push phase's, from `now` (its start, and again once the copies are done).
    pub(crate) fn push(now: Instant) -> Deadline {
        Deadline {
            at: now + PUSH_ALLOWANCE,
            what: "the 2 minutes the push phase retries for",
        }
    }
}

/// What requests may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Retries of one request that failed transiently.
    pub(crate) retries: u32,
    /// Time limit of one attempt, connection to last body byte.
    pub(crate) request_timeout: Duration,
    /// No retry sleeps past this (the wait's deadline, or the short window of `--timeout 0`; the
    /// copy phase's), so the look for sources ends within it plus one request limit.
    pub(crate) deadline: Option<Deadline>,
}

/// What one attempt came to.
pub(crate) enum Attempt<T> {
    Done(Result<T, Error>),
    /// Worth another try: `error` is reported if none is left; `after` is the registry's
    /// `Retry-After`.
    Retry {
        error: Error,
        after: Option<Duration>,
    },
}

impl<T> From<Failed> for Attempt<T> {
    fn from(failed: Failed) -> Attempt<T> {
        match failed {
            Failed::Final(e) => Attempt::Done(Err(e)),
            Failed::Transient(error) => Attempt::Retry { error, after: None },
        }
    }
}

/// What one exchange for `op` came to, as an attempt: no answer is judged by `classify`; an
/// answer with a transient status (408, 429, 5xx) is worth another try, after its
/// `Retry-After`; any other answer is the caller's to read.
pub(crate) fn attempt<A: Answer>(sent: Result<A, Unanswered>, op: &Op) -> Attempt<A> {
    let answer = match sent {
        Ok(answer) => answer,
        Err(f) => return classify::failure(f, op).into(),
    };
    match answer.reply() {
        Some(reply) if classify::is_transient(reply.status) => Attempt::Retry {
            error: classify::reply(reply, op, None),
            after: retry_after(&reply.headers, SystemTime::now()),
        },
        _ => Attempt::Done(Ok(answer)),
    }
}

/// Delays between attempts: 250 ms doubling to 8 s, each with up to +100 % jitter.
fn backoff(retries: u32) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(8))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(retries as usize)
        .build()
}

/// Runs `attempt` until it is done, the retries are spent, or the next try would start after the
/// deadline; then the last transient error (exit 75) is returned, saying how many attempts it took.
pub(crate) async fn retry<T, F, Fut>(budget: &Budget, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut delays = backoff(budget.retries);
    let mut tries = 0u32;
    loop {
        tries += 1;
        let (error, after) = match attempt().await {
            Attempt::Done(result) => return result,
            Attempt::Retry { error, after } => (error, after),
        };
        let Some(delay) = delays.next() else {
            return Err(spent(error, GaveUp::Spent { attempts: tries }));
        };
        // A `Retry-After` is held against the deadline as asked, and slept only up to the cap.
        let needs = after.unwrap_or(delay);
        let delay = after.map(|a| a.min(MAX_RETRY_AFTER)).unwrap_or(delay);
        if let Some(d) = budget.deadline.filter(|d| Instant::now() + needs > d.at) {
            let how = GaveUp::Deadline {
                attempts: tries,
                deadline: d.what,
                asked: after.map(|a| a.as_secs()),
            };
            return Err(spent(error, how));
        }
        let error = spent(error, GaveUp::Not);
        warn!(attempt = tries, delay_ms = delay.as_millis() as u64, error = %first_line(&error), "retrying");
        tokio::time::sleep(delay).await;
    }
}

/// Says on a transient error how the budget ran out (an inner loop's word is replaced: the
/// outermost loop counts the attempts that matter; `GaveUp::Not` while it retries, so its
/// warning does not carry an inner loop's count).
fn spent(error: Error, how: GaveUp) -> Error {
    match error {
        Error::Transient {
            action,
            reference,
            reason,
            ..
        } => Error::Transient {
            action,
            reference,
            reason,
            gave_up: how,
        },
        other => other,
    }
}

pub(crate) fn first_line(e: &Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3), relative to `now`, as asked
/// (`retry` caps the sleep, and says what was asked when it gives up on it).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, value.parse().unwrap());
        h
    }

    fn budget(retries: u32, deadline: Option<Instant>) -> Budget {
        Budget {
            retries,
            request_timeout: Duration::from_secs(30),
            deadline: deadline.map(Deadline::wait),
        }
    }

    fn unavailable() -> Error {
        Error::Transient {
            action: "fetching manifest",
            reference: "r.example/app:1".into(),
            reason: "r.example answered HTTP 503 Service Unavailable".into(),
            gave_up: GaveUp::Not,
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Fri, 27 Nov 2026 04:00:00 GMT").unwrap();
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("99999999999999999999"), now),
            None,
            "not a number we take"
        );
        assert_eq!(
            retry_after(&headers("3600"), now),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            retry_after(&headers("Fri, 27 Nov 2026 04:00:12 GMT"), now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            retry_after(&headers("Fri, 27 Nov 2026 03:59:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_is_bounded_in_count_and_size() {
        let delays: Vec<Duration> = backoff(5).collect();
        assert_eq!(delays.len(), 5);
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(16)));
        assert!(delays[0] >= Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_with_exit_75_after_the_retries() {
        let mut calls = 0;
        let result: Result<(), Error> = retry(&budget(3, None), || {
            calls += 1;
            async {
                Attempt::Retry {
                    error: unavailable(),
                    after: None,
                }
            }
        })
        .await;
        assert_eq!(calls, 4);
        let e = result.unwrap_err();
        assert_eq!(e.exit_code(), 75);
        assert!(e.to_string().contains("after 4 attempts"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn nested_retries_say_how_they_ended_once() {
        // A copy retried as a whole around a step that is not retried on its own.
        let (_guard, logs) = crate::testing::Logs::capture();
        let once = budget(0, None);
        let result: Result<(), Error> = retry(&budget(2, None), || async {
            match retry(&once, || async {
                Attempt::<()>::Retry {
                    error: unavailable(),
                    after: None,
                }
            })
            .await
            {
                Err(e) => Attempt::Retry {
                    error: e,
                    after: None,
                },
                Ok(()) => Attempt::Done(Ok(())),
            }
        })
        .await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "fetching manifest r.example/app:1: r.example answered HTTP 503 Service Unavailable, after 3 attempts\n  hint: this is usually temporary; retry the job (exit code 75)"
        );
        // The warnings while retrying carry no count of the inner loop's.
        let said = logs.text();
        assert_eq!(said.matches("retrying").count(), 2, "{said}");
        assert!(!said.contains("after 1 attempt"), "{said}");
        let one: Result<(), Error> = retry(&once, || async {
            Attempt::Retry {
                error: unavailable(),
                after: None,
            }
        })
        .await;
        assert!(
            one.unwrap_err()
                .to_string()
                .contains("Service Unavailable, after 1 attempt\n"),
            "singular"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn never_sleeps_past_the_deadline() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(2);
        let result: Result<(), Error> = retry(&budget(20, Some(deadline)), || async {
            Attempt::Retry {
                error: unavailable(),
                after: Some(Duration::from_secs(1)),
            }
        })
        .await;
        let e = result.unwrap_err();
        assert!(
            e.to_string().contains("the time MULTIARCH_TIMEOUT leaves"),
            "{e}"
        );
        assert!(start.elapsed() <= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_past_the_deadline_ends_the_retries_at_once() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(15);
        let mut calls = 0;
        let result: Result<(), Error> = retry(&budget(5, Some(deadline)), || {
            calls += 1;
            async {
                Attempt::Retry {
                    error: unavailable(),
                    after: Some(Duration::from_secs(999_999_999)),
                }
            }
        })
        .await;
        let e = result.unwrap_err();
        assert_eq!(e.exit_code(), 75);
        assert_eq!(calls, 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(
            e.to_string()
                .contains("it asks to be retried in 999999999 s (Retry-After)"),
            "{e}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_past_the_deadline_is_not_slept_even_in_part() {
        // Within the deadline once capped, past it as asked: the registry would refuse again.
        let start = Instant::now();
        let deadline = Deadline::push(start);
        let mut calls = 0;
        let budget = Budget {
            deadline: Some(deadline),
            ..budget(5, None)
        };
        let result: Result<(), Error> = retry(&budget, || {
            calls += 1;
            async {
                Attempt::Retry {
                    error: unavailable(),
                    after: Some(Duration::from_secs(99_999)),
                }
            }
        })
        .await;
        let e = result.unwrap_err();
        assert_eq!((e.exit_code(), calls), (75, 1));
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(
            e.to_string().contains(
                "after 1 attempt: it asks to be retried in 99999 s (Retry-After), past the 2 minutes the push phase retries for"
            ),
            "{e}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_push_phase_stops_retrying_at_its_allowance() {
        let start = Instant::now();
        let budget = Budget {
            deadline: Some(Deadline::push(start)),
            ..budget(20, None)
        };
        let result: Result<(), Error> = retry(&budget, || async {
            Attempt::Retry {
                error: unavailable(),
                after: Some(Duration::from_secs(30)),
            }
        })
        .await;
        let e = result.unwrap_err();
        assert!(
            e.to_string()
                .contains("after 5 attempts: it asks to be retried in 30 s (Retry-After)"),
            "{e}"
        );
        assert!(start.elapsed() <= PUSH_ALLOWANCE);
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_capped() {
        let start = Instant::now();
        let mut calls = 0;
        let result = retry(&budget(2, None), || {
            calls += 1;
            let n = calls;
            async move {
                if n == 1 {
                    Attempt::Retry {
                        error: unavailable(),
                        after: Some(Duration::from_secs(3600)),
                    }
                } else {
                    Attempt::Done(Ok(n))
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(start.elapsed(), MAX_RETRY_AFTER);
    }
}
