//! A cancelled run: the signal that stopped it, how far it had got, and what that leaves in the
//! registry, in words (the error's text; the exit code is the signal's).

use super::exit;

/// A signal that cancels a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGTERM: GitLab's cancel button and job timeout, `docker stop`, Kubernetes.
    Term,
    /// SIGINT: Ctrl-C.
    Int,
}

impl Signal {
    pub(crate) fn exit_code(self) -> i32 {
        match self {
            Signal::Term => exit::TERMINATED,
            Signal::Int => exit::INTERRUPTED,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        })
    }
}

/// How far a cancelled run had got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Nothing that changes a registry had been sent.
    NothingPushed,
    /// A `login` stopped before it wrote (its write, once the lock is held, is not interrupted).
    LoginUnwritten,
    /// Children were being copied or the index pushed by digest: no tag had been asked to move.
    Untagged,
    /// The tags were moving: those that hold the index, those whose PUT was cut off in flight
    /// (they may or may not hold it), and those that did not move with why.
    Tags {
        holding: Vec<String>,
        unsure: Vec<String>,
        not_moved: Vec<(String, String)>,
    },
    /// The run did not wind down in time after writing: what moved is not known.
    Unknown,
}

pub(super) fn cancelled(signal: Signal, progress: &Progress) -> String {
    let rerun = "\n  hint: re-run the job: tags that already hold the index are left alone, the others move";
    match progress {
        Progress::NothingPushed => format!("cancelled by {signal} before anything was pushed"),
        Progress::LoginUnwritten => {
            format!("cancelled by {signal}: the login wrote nothing (the auth file is as it was)")
        }
        Progress::Untagged => format!(
            "cancelled by {signal} while children were copied into the destinations: no tag moved; untagged content may have been added (a re-run reuses it){rerun}"
        ),
        Progress::Tags {
            holding,
            unsure,
            not_moved,
        } if unsure.is_empty() && not_moved.is_empty() => format!(
            "cancelled by {signal} as the push ended: every target tag holds the index ({})",
            holding.join(", ")
        ),
        Progress::Tags {
            holding,
            unsure,
            not_moved,
        } => {
            let all = holding.len() + unsure.len() + not_moved.len();
            let mut out = format!(
                "cancelled by {signal} while tags were moving: {} of {all} target tag(s) hold the index",
                holding.len()
            );
            if !holding.is_empty() {
                out.push_str(&format!(
                    " (stdout and the dotenv name them): {}",
                    holding.join(", ")
                ));
            }
            for tag in unsure {
                out.push_str(&format!("\n  - {tag}: its push was cut off in flight; it may or may not hold the index (look before relying on it)"));
            }
            for (tag, why) in not_moved {
                match super::names_tag(why, tag) {
                    true => out.push_str(&format!("\n  - did not move: {why}")),
                    false => out.push_str(&format!("\n  - {tag}: did not move ({why})")),
                }
            }
            out.push_str(rerun);
            out
        }
        Progress::Unknown => format!(
            "cancelled by {signal}: the run did not wind down in time and was stopped; target tags may have moved: look at them before relying on them{rerun}"
        ),
    }
}
