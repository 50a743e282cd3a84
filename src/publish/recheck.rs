//! A look at the tags just after they moved, where nothing serialises the publishers of a tag.
//! Build jobs (`--if-complete`) have no `resource_group`, and the manifest component's is per
//! ref, while a release's floating tags (`latest`, `2`, `2.0`) are shared by every release
//! pipeline: two publishers can each read a tag (holding neither's index), then PUT — and the
//! older one's PUT can land last, moving the tag backwards. So a run that moved such a tag (`due`)
//! looks at it again, after as long as its own run took (the window in which a racer that read
//! the tag before this run's PUT lands its own), and:
//!
//! - finds an older pipeline's (or lower version's) index of this project there: PUTs its own
//!   again (`ROUNDS` in all), so the newer index is the one that stays;
//! - finds a newer one: the tag is reported kept, as if it had been read so before the PUT;
//! - finds another index that records no order (another tool's): leaves it, reported as what
//!   the tag holds (`kept`), not as this run's; finds nothing: says so.
//!
//! One HEAD per moved tag (plus a GET when it was replaced). A racer whose PUT lands later than
//! that window is not seen, and a run's report says what the tags held at its last look (an
//! older run that looked before the newer one pushed over it reports the tag as its own); the
//! README says so.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::{info, warn};

use super::publishing::{self, Moved, Publishing};
use super::targets;
use crate::digest::Digest;
use crate::order::{self, Recorded, Verdict};
use crate::outcome::{Kept, Status};
use crate::reference::Reference;
use crate::registry::{first_line, Registry};
use crate::settings::Plan;

/// Whether this run looks at the tags it moved again: a build job (`--if-complete`), or a
/// release (the index records a version: its floating tags are shared with other releases'
/// pipelines, which the per-ref `resource_group` does not serialise). Not with `--append`, which
/// reads its tag back itself.
pub(super) fn due(plan: &Plan) -> bool {
    let release = Recorded::from_annotations(&plan.annotations.values)
        .version
        .is_some();
    (plan.if_complete || release) && !plan.append
}

/// Looks after the PUTs, at most this many (each may PUT the index again).
pub(super) const ROUNDS: usize = 2;

/// The shortest and longest wait before looking again.
const SETTLE_MIN: Duration = Duration::from_millis(100);
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// How long to wait before looking again: as long as this run took since it first read the
/// tags, within bounds.
pub(super) fn settle(started: Instant) -> Duration {
    started.elapsed().clamp(SETTLE_MIN, SETTLE_MAX)
}

/// Looks again (through `looks`) at the tags of `p` this run moved (`moved`), `settle` after
/// their PUTs, pushing again through `registry`; updates `moved` and `kept` with what it finds.
#[allow(clippy::too_many_arguments)]
pub(super) async fn tags<R: Registry>(
    plan: &Plan,
    registry: &R,
    looks: &R,
    p: &Publishing<'_>,
    moved: &mut [Moved],
    kept: &mut Vec<Kept>,
    settle: Duration,
) {
    let ours = Recorded::from_annotations(&plan.annotations.values);
    let index = &p.settled.index;
    for round in 1..=ROUNDS {
        let pushed: Vec<usize> = (0..moved.len())
            .filter(|&i| moved[i].1 == Status::Pushed)
            .collect();
        if pushed.is_empty() {
            return;
        }
        tokio::time::sleep(settle).await;
        let mut again = Vec::new();
        // Every tag at once: one request limit at most, however many tags.
        let found = join_all(
            pushed
                .iter()
                .map(|&i| look_again(looks, &moved[i].0, &index.digest)),
        )
        .await;
        for (i, found) in pushed.into_iter().zip(found) {
            let Some((holds, held)) = found else {
                continue;
            };
            let t = moved[i].0.clone();
            let why = match order::decide(&ours, &held, false) {
                Verdict::Keep(newer) => {
                    let why = format!(
                        "{}; it replaced this run's index just after its PUT",
                        order::explain(&newer, &ours, &held)
                    );
                    info!(reference = %t, holds = %holds, "kept: {why}");
                    why
                }
                Verdict::Move | Verdict::RollBack(_) if held.is_ordered() => {
                    warn!(reference = %t, holds = %holds, round, "{held} pushed this tag just after this run, moving it back: pushing this run's index again");
                    again.push(i);
                    continue;
                }
                Verdict::Move | Verdict::RollBack(_) => {
                    // Not this run's any more, and nothing says which is newer: reported as what
                    // the tag holds, not as this run's.
                    let why = "an index recording no order (another tool's, or not readable) replaced this run's just after its PUT; left as it is".to_string();
                    warn!(reference = %t, holds = %holds, "{why}");
                    why
                }
            };
            // Left holding what it holds now: reported so, not as this run's.
            moved[i].1 = Status::Kept;
            kept.push(Kept {
                reference: t,
                holds,
                why,
            });
        }
        if again.is_empty() {
            return;
        }
        for i in again {
            let t = moved[i].0.clone();
            let r = registry
                .push_manifest(&t, index.media_type, &index.bytes)
                .await
                .map(|()| Status::Pushed);
            if let Err(e) = &r {
                warn!(reference = %t, error = %first_line(e), "pushing again failed");
            }
            moved[i] = publishing::moved(&t, r);
        }
    }
}

/// What tag `t` holds when looked at again, and what that records: `None` when it holds this
/// run's index (`ours`), or could not be looked at (said as a warning).
async fn look_again<R: Registry>(
    looks: &R,
    t: &Reference,
    ours: &Digest,
) -> Option<(Digest, Recorded)> {
    let holds = match looks.check_target(t).await {
        Ok(Some(d)) if d == *ours => return None,
        Ok(Some(d)) => d,
        Ok(None) => {
            warn!(reference = %t, "the tag is gone again just after this run pushed it");
            return None;
        }
        Err(e) => {
            warn!(reference = %t, error = %first_line(&e), "could not look at the tag again after pushing it");
            return None;
        }
    };
    let at = t.repository().digest(&holds);
    match targets::read(looks, &at).await {
        Ok(a) => Some((holds, Recorded::from_annotations(&a))),
        Err(e) => {
            warn!(reference = %t, holds = %holds, error = %first_line(&e), "another index replaced this run's just after its PUT");
            None
        }
    }
}
