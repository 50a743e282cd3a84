//! A run's cancellation — SIGTERM (GitLab's cancel button and job timeout), SIGINT (Ctrl-C) — as
//! every layer sees it, and what a cancelled push reports.
//!
//! The edge (`app`) turns signals into stages; the registry client asks before every request
//! whether it may start one and cuts off what is still in flight when the grace ends; the edge
//! drops a run that has written nothing yet at once, and lets one that has wind down and report
//! exactly which tags moved.
//!
//! Stages, never going back: `Running` → `Stopping` (the signal: no new request starts; requests
//! in flight get `GRACE` to finish) → `Aborted` (what is still in flight is cut off; the run winds
//! down and reports) → `Abandoned` (it did not within `WIND_DOWN`: it is dropped). So a run ends
//! within `GRACE + WIND_DOWN` of the signal, below the 2 s a job's cancel should take.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Progress, Signal};

/// How long requests in flight at the signal may take to finish: a tag PUT takes milliseconds,
/// and one that lands is reported as moved rather than as "may have moved".
pub(crate) const GRACE: Duration = Duration::from_millis(1000);

/// How long a run has, once requests are cut off, to report before it is dropped.
pub(crate) const WIND_DOWN: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    Running,
    Stopping,
    Aborted,
    Abandoned,
}

/// One run's cancellation, shared by its clones.
#[derive(Clone)]
pub(crate) struct Cancel {
    inner: Arc<Inner>,
}

struct Inner {
    stage: watch::Sender<(Stage, Option<Signal>)>,
    /// A request that changes a registry (PUT, POST, PATCH, DELETE) was sent.
    wrote: AtomicBool,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            inner: Arc::new(Inner {
                stage: watch::Sender::new((Stage::Running, None)),
                wrote: AtomicBool::new(false),
            }),
        }
    }
}

impl Cancel {
    /// Moves on to `stage` (never back); the first signal is the one kept.
    pub(crate) fn advance(&self, stage: Stage, signal: Signal) {
        self.inner.stage.send_if_modified(|(now, first)| {
            first.get_or_insert(signal);
            if stage > *now {
                *now = stage;
                true
            } else {
                false
            }
        });
    }

    /// The signal that cancels the run, if one came.
    pub(crate) fn signal(&self) -> Option<Signal> {
        self.inner.stage.borrow().1
    }

    /// `Err` (the signal) once no new request may start.
    pub(crate) fn gate(&self) -> Result<(), Signal> {
        match *self.inner.stage.borrow() {
            (Stage::Running, _) | (_, None) => Ok(()),
            (_, Some(signal)) => Err(signal),
        }
    }

    /// Notes that a request changing a registry is being sent.
    pub(crate) fn wrote(&self) {
        self.inner.wrote.store(true, Ordering::SeqCst);
    }

    /// Resolves (with the signal) once the run has reached `stage`.
    pub(crate) async fn reached(&self, stage: Stage) -> Signal {
        self.until(|now| now >= stage).await
    }

    /// Resolves (with the signal) when the run is to be dropped rather than waited for: as soon
    /// as it is stopping if it has changed nothing in any registry (there is nothing to report),
    /// else when it did not wind down in time.
    pub(crate) async fn dropped(&self) -> Signal {
        let wrote = || self.inner.wrote.load(Ordering::SeqCst);
        self.until(|now| now >= Stage::Abandoned || (now >= Stage::Stopping && !wrote()))
            .await
    }

    /// What a dropped run can say about itself.
    pub(crate) fn progress_when_dropped(&self) -> Progress {
        if self.inner.wrote.load(Ordering::SeqCst) {
            Progress::Unknown
        } else {
            Progress::NothingPushed
        }
    }

    async fn until(&self, done: impl Fn(Stage) -> bool) -> Signal {
        let mut rx = self.inner.stage.subscribe();
        let seen = rx
            .wait_for(|(stage, signal)| signal.is_some() && done(*stage))
            .await
            .expect("the sender lives as long as the receiver's owner");
        seen.1.expect("checked above")
    }
}

/// The error a push cancelled by `signal` ends with, when its push step did not finish
/// (children were being copied, or the index pushed by digest: no tag was asked to move).
pub(crate) fn before_tags(signal: Signal, cancel: &Cancel) -> Error {
    Error::Cancelled {
        signal,
        progress: match cancel.progress_when_dropped() {
            Progress::NothingPushed => Progress::NothingPushed,
            _ => Progress::Untagged,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stages_only_move_on_and_keep_the_first_signal() {
        let cancel = Cancel::default();
        assert_eq!(cancel.gate(), Ok(()));
        assert_eq!(cancel.signal(), None);
        cancel.advance(Stage::Stopping, Signal::Term);
        assert_eq!(cancel.gate(), Err(Signal::Term));
        cancel.advance(Stage::Running, Signal::Int);
        assert_eq!(
            cancel.gate(),
            Err(Signal::Term),
            "never back, first signal kept"
        );
        assert_eq!(cancel.reached(Stage::Stopping).await, Signal::Term);
        let aborted = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.reached(Stage::Aborted).await }
        });
        tokio::task::yield_now().await;
        assert!(!aborted.is_finished());
        cancel.advance(Stage::Aborted, Signal::Int);
        assert_eq!(aborted.await.unwrap(), Signal::Term);
    }

    /// A run that has written nothing is dropped at the signal; one that has is dropped only
    /// when it did not wind down in time.
    #[tokio::test(start_paused = true)]
    async fn only_a_run_that_wrote_nothing_is_dropped_at_once() {
        let quiet = Cancel::default();
        quiet.advance(Stage::Stopping, Signal::Int);
        assert_eq!(quiet.dropped().await, Signal::Int);
        assert_eq!(quiet.progress_when_dropped(), Progress::NothingPushed);

        let busy = Cancel::default();
        busy.wrote();
        busy.advance(Stage::Stopping, Signal::Term);
        let dropped = tokio::spawn({
            let busy = busy.clone();
            async move { busy.dropped().await }
        });
        busy.advance(Stage::Aborted, Signal::Term);
        tokio::task::yield_now().await;
        assert!(!dropped.is_finished());
        busy.advance(Stage::Abandoned, Signal::Term);
        assert_eq!(dropped.await.unwrap(), Signal::Term);
        assert_eq!(busy.progress_when_dropped(), Progress::Unknown);
    }
}
