//! Moving one destination's tags: each tag's PUT on its own (a refusal stops no other), and the
//! looks after the PUTs that `--append` (the tag merged into, read back), `--if-complete` and
//! releases (`recheck`) pay for.

use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::{info, warn};

use super::publishing::{moved, Moved, Publishing};
use super::targets::Step;
use super::{append, recheck};
use crate::error::Error;
use crate::model::Resolved;
use crate::outcome::{Kept, Status};
use crate::registry::{Deadline, Registry};
use crate::settings::Plan;

/// Moves one destination's tags (each on its own: a refusal stops no other). With `--append`,
/// the tag merged into is read back: an index another writer pushed over this run's, lacking
/// its platforms, is merged into and pushed again, up to `append::ROUNDS` rounds. With
/// `--if-complete`, and in a release, the tags that moved are looked at again (`recheck`):
/// nothing serialises those publishers, and an older one landing just after would move them
/// backwards.
pub(super) async fn move_tags<R: Registry>(
    plan: &Plan,
    registry: &R,
    resolved: &[Resolved],
    p: &mut Publishing<'_>,
    looked_at: Instant,
) -> (Vec<Moved>, Vec<Kept>) {
    let mut started = Instant::now();
    let mut moved = put_tags(registry, p).await;
    let mut kept = Vec::new();
    if recheck::due(plan) {
        let settle = recheck::settle(looked_at);
        // The looks are not retried (a failed one is a warning); a PUT again is, as every PUT.
        let looks = registry.until(Some(Deadline::once(Instant::now())));
        recheck::tags(plan, registry, &looks, p, &mut moved, &mut kept, settle).await;
        return (moved, kept);
    }
    if !p.merges(plan) {
        return (moved, kept);
    }
    let at = p.group.targets[0].clone();
    for round in 1..=append::ROUNDS {
        if moved[0].1 != Status::Pushed {
            break;
        }
        let index = &p.settled.index;
        let failure = match append::read_back_settled(registry, &at, index, started).await {
            Ok(append::ReadBack::Ours) => break,
            Ok(append::ReadBack::Covers(holds)) => {
                info!(reference = %at, holds = %holds, "another --append pushed this tag after this run, holding every platform of this run's: left as it is");
                moved[0].1 = Status::Kept;
                kept.push(Kept {
                    reference: at.clone(),
                    holds,
                    why: "another --append run pushed it after this run, and what it holds has every platform of this run's".into(),
                });
                break;
            }
            Ok(append::ReadBack::Lacks { missing, .. }) if round == append::ROUNDS => {
                Error::AppendContended {
                    reference: at.to_string(),
                    rounds: round,
                    missing,
                }
            }
            Ok(append::ReadBack::Lacks { theirs, missing }) => {
                warn!(reference = %at, missing = %missing.join(","), round, "another writer pushed this tag over this run's index: merging into what it holds and pushing again");
                let again = match theirs {
                    Some(f) => p.merge_again(plan, resolved, Some(f)),
                    None => Ok(()),
                };
                match again {
                    Ok(()) => match p.push_by_digest(registry).await {
                        Ok(()) => {
                            started = Instant::now();
                            moved = put_tags(registry, p).await;
                            continue;
                        }
                        Err(e) => e,
                    },
                    Err(e) => e,
                }
            }
            // Not sent: the run is being cancelled; the tag was pushed.
            Err(Error::RequestCancelled {
                in_flight: false, ..
            }) => break,
            Err(e) => {
                // It was pushed; what it holds now is not known.
                moved[0] = (at, Status::Unknown, Some(e));
                break;
            }
        };
        moved[0] = (at, Status::Failed, Some(failure));
        break;
    }
    (moved, kept)
}

/// PUTs the index under each tag of `p` that moves.
async fn put_tags(registry: &impl Registry, p: &Publishing<'_>) -> Vec<Moved> {
    let index = &p.settled.index;
    join_all(
        p.group
            .targets
            .iter()
            .zip(&p.settled.steps)
            .map(|(t, step)| async move {
                let status = match step {
                    Step::Unchanged => {
                        info!(reference = %t, digest = %index.digest, "unchanged");
                        Ok(Status::Unchanged)
                    }
                    Step::Keep(_) => Ok(Status::Kept),
                    Step::Move => registry
                        .push_manifest(t, index.media_type, &index.bytes)
                        .await
                        .map(|()| {
                            info!(reference = %t, digest = %index.digest, "pushed");
                            Status::Pushed
                        }),
                };
                moved(t, status)
            }),
    )
    .await
}
