//! SIGTERM and SIGINT, turned into the stages of the run's `Cancel`: the first signal stops new
//! requests, `GRACE` later what is still in flight is cut off, `WIND_DOWN` after that a run that
//! has not reported is dropped. A second signal (either) ends the process at once, as a second
//! Ctrl-C does in most tools, without a report and with the first signal's exit code.
//!
//! GitLab sends SIGTERM when a job is cancelled or times out, and SIGKILL some seconds later:
//! without this the run died mid-push with nothing on stdout and no dotenv.

use tokio::signal::unix::{signal, Signal as Stream, SignalKind};
use tokio::time::sleep;
use tracing::warn;

use crate::cancel::{Cancel, Stage, GRACE, WIND_DOWN};
use crate::error::Signal;

/// Listens for SIGTERM and SIGINT for the rest of the run (a task on the runtime).
pub(super) fn listen(cancel: &Cancel) {
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => {
            tokio::spawn(watch(cancel.clone(), term, int));
        }
        (Err(e), _) | (_, Err(e)) => {
            warn!(error = %e, "signals cannot be listened to: a cancelled job ends without a report");
        }
    }
}

async fn watch(cancel: Cancel, mut term: Stream, mut int: Stream) {
    let first = next(&mut term, &mut int).await;
    cancel.advance(Stage::Stopping, first);
    warn!(
        "{first}: cancelling; no new request is started, requests in flight have {} ms to finish",
        GRACE.as_millis()
    );
    for (wait, then) in [(GRACE, Stage::Aborted), (WIND_DOWN, Stage::Abandoned)] {
        tokio::select! {
            () = sleep(wait) => cancel.advance(then, first),
            again = next(&mut term, &mut int) => at_once(first, again),
        }
    }
    at_once(first, next(&mut term, &mut int).await)
}

async fn next(term: &mut Stream, int: &mut Stream) -> Signal {
    tokio::select! {
        _ = term.recv() => Signal::Term,
        _ = int.recv() => Signal::Int,
    }
}

/// A second signal (`again`, of either kind): out now, with the first signal's exit code (the
/// job was cancelled by that one).
fn at_once(first: Signal, again: Signal) -> ! {
    eprintln!("error: a second signal ({again} after {first}): exiting at once; what moved is not reported");
    std::process::exit(first.exit_code())
}
