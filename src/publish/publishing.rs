//! One destination on its way to the push: its tags, what each held, what becomes of each and
//! the index it gets (with `--append`, and what that was merged into); and a tag's result.

use super::targets::{Settled, Step};
use super::{base_of, Group};
use crate::digest::Digest;
use crate::error::Error;
use crate::index;
use crate::manifest::Fetched;
use crate::model::Resolved;
use crate::outcome::Status;
use crate::reference::Reference;
use crate::registry::Registry;
use crate::settings::Plan;

/// One destination on its way to the push.
pub(super) struct Publishing<'a> {
    pub(super) group: &'a Group<'a>,
    /// What each of its tags held when looked at.
    pub(super) current: Vec<Option<Digest>>,
    pub(super) settled: Settled,
    /// With `--append`: what the index is merged into.
    pub(super) base: Option<Fetched>,
    /// The index was PUT here by digest.
    pub(super) by_digest: bool,
}

impl Publishing<'_> {
    pub(super) fn moving(&self) -> impl Iterator<Item = (&Reference, &Option<Digest>)> {
        self.group
            .targets
            .iter()
            .zip(&self.current)
            .zip(&self.settled.steps)
            .filter(|(_, s)| **s == Step::Move)
            .map(|(t, _)| t)
    }

    /// With `--append`, the tag merged into moves: it is looked at around its PUT.
    pub(super) fn merges(&self, plan: &Plan) -> bool {
        plan.append && self.settled.steps[0] == Step::Move
    }

    /// The index again, merged into `base` (what the tag merged into holds now).
    pub(super) fn merge_again(
        &mut self,
        plan: &Plan,
        resolved: &[Resolved],
        base: Option<Fetched>,
    ) -> Result<(), Error> {
        self.base = base;
        let b = self
            .base
            .as_ref()
            .map(|f| base_of(f, &self.group.targets[0]));
        self.settled.index = index::build(resolved, plan.format, &plan.annotations, b.as_ref())?;
        Ok(())
    }

    /// The index by digest, when several tags move here (one tag's PUT is all or nothing).
    pub(super) async fn push_by_digest(&mut self, registry: &impl Registry) -> Result<(), Error> {
        if self.moving().count() > 1 {
            let index = &self.settled.index;
            registry
                .push_manifest(
                    &self.group.repository.digest(&index.digest),
                    index.media_type,
                    &index.bytes,
                )
                .await?;
            self.by_digest = true;
        }
        Ok(())
    }
}

/// A tag's result: its status, and why it does not hold the index (`Failed`, `Unknown`).
pub(super) type Moved = (Reference, Status, Option<Error>);

pub(super) fn moved(t: &Reference, r: Result<Status, Error>) -> Moved {
    match r {
        Ok(status) => (t.clone(), status, None),
        Err(e) => (t.clone(), Status::of_failure(&e), Some(e)),
    }
}
