//! What a push did, computed once by `publish` and only read after: the index of each
//! destination, what became of each target tag, and from those alone which tags hold the index,
//! which destinations hold it under its digest, and the error the run ends with.
//!
//! Everything users and later jobs are told (stdout, the dotenv, the JSON summary, the error)
//! is derived here, so none of them can name what is not there: a `repository@digest` is named
//! only where the registry holds it (a tag there holds it, or it was PUT there by digest), a tag
//! only when it is known to hold it (a PUT cut off in flight may or may not have landed).
//! Pure: no I/O.

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{Error, Progress, Signal};
use crate::index::Index;
use crate::reference::{Reference, Repository};

/// What happened to one target tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// The tag now holds the index.
    Pushed,
    /// The tag already held exactly this index: nothing sent.
    Unchanged,
    /// Dry run: nothing looked at or sent.
    Planned,
    /// The registry refused to move the tag, or its PUT was never sent (the error is in
    /// `Outcome::failures`): it holds what it held.
    Failed,
    /// It may or may not hold the index: its PUT was cut off in flight by a cancellation, or
    /// (`--append`) reading it back failed (the error is in `Outcome::failures`).
    #[serde(rename = "unknown")]
    Unknown,
    /// Not moved: it holds a newer pipeline's index or a higher version (`Outcome::kept`).
    Kept,
}

impl Status {
    /// The status of a tag whose PUT ended with `e`.
    pub(crate) fn of_failure(e: &Error) -> Status {
        match e {
            Error::RequestCancelled {
                in_flight: true, ..
            } => Status::Unknown,
            _ => Status::Failed,
        }
    }

    /// True when the tag is known to hold the index (or, in a dry run, would).
    fn holds(self) -> bool {
        matches!(self, Status::Pushed | Status::Unchanged | Status::Planned)
    }
}

/// A target tag left where it is because what it holds is newer than this run's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) reference: Reference,
    /// The digest it still holds.
    pub(crate) holds: Digest,
    /// Why, naming both publishers.
    pub(crate) why: String,
}

/// One destination repository of the run.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    pub(crate) repository: Repository,
    /// Its own index, when `--append` merged into what this destination held and that differs
    /// from `Outcome::index`; `None`: `Outcome::index`.
    pub(crate) index: Option<Index>,
    /// The index was PUT here under its digest (before its tags, when several were to move).
    pub(crate) by_digest: bool,
}

/// The result of a run: the index, each destination, what happened to each target tag (in plan
/// order), the sources left out, and why tags that did not move did not.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The index (the first destination's, when `--append` made one per destination).
    pub(crate) index: Index,
    /// Every destination, in plan order.
    pub(crate) destinations: Vec<Destination>,
    pub(crate) targets: Vec<(Reference, Status)>,
    /// Sources missing or stale and left out (only with `--allow-missing`).
    pub(crate) missing: Vec<String>,
    /// The tags `Failed` or `Unknown`, with why.
    pub(crate) failures: Vec<(Reference, Error)>,
    /// Tags not moved because they hold something newer (exit 0).
    pub(crate) kept: Vec<Kept>,
    /// A dry run that could not read what the target tags hold: why (every tag is then shown
    /// as planned, whatever it holds).
    pub(crate) unread: Option<String>,
}

impl Outcome {
    /// An outcome whose destinations are those of `targets`, none of them written by digest.
    pub(crate) fn new(index: Index, targets: Vec<(Reference, Status)>) -> Outcome {
        let mut destinations: Vec<Destination> = Vec::new();
        for (t, _) in &targets {
            if !destinations.iter().any(|d| d.repository == *t.repository()) {
                destinations.push(Destination {
                    repository: t.repository().clone(),
                    index: None,
                    by_digest: false,
                });
            }
        }
        Outcome {
            index,
            destinations,
            targets,
            missing: Vec::new(),
            failures: Vec::new(),
            kept: Vec::new(),
            unread: None,
        }
    }

    /// The index published to `repository`.
    pub(crate) fn index_of(&self, repository: &Repository) -> &Index {
        self.destinations
            .iter()
            .find(|d| d.repository == *repository)
            .and_then(|d| d.index.as_ref())
            .unwrap_or(&self.index)
    }

    /// The tags that hold the index now (pushed or already there; planned, in a dry run).
    pub(crate) fn holding(&self) -> impl Iterator<Item = &Reference> {
        self.targets
            .iter()
            .filter(|(_, s)| s.holds())
            .map(|(t, _)| t)
    }

    /// `repository@digest` of each destination that holds its index (a tag there holds it, or
    /// it was PUT there by digest), in plan order; a destination that does not is left out.
    pub(crate) fn stored(&self) -> Vec<Reference> {
        self.destinations
            .iter()
            .filter(|d| self.holds_index(d))
            .map(|d| d.repository.digest(&self.index_of(&d.repository).digest))
            .collect()
    }

    /// `stored()` of the first destination, if it holds its index.
    pub(crate) fn first_stored(&self) -> Option<Reference> {
        let first = self.destinations.first()?;
        self.holds_index(first).then(|| {
            first
                .repository
                .digest(&self.index_of(&first.repository).digest)
        })
    }

    fn holds_index(&self, d: &Destination) -> bool {
        d.by_digest || self.holding().any(|t| *t.repository() == d.repository)
    }

    /// Ends the run: `Ok` when every tag holds the index or was kept; else the error that lists
    /// each tag that did not move (and what holds the index), or, when `signal` cancelled the
    /// run, what the cancellation leaves behind.
    pub(crate) fn end(self, signal: Option<Signal>) -> Result<(), Error> {
        let holding: Vec<String> = self.holding().map(ToString::to_string).collect();
        if let Some(signal) = signal {
            return Err(Error::Cancelled {
                signal,
                progress: self.progress(holding),
            });
        }
        if self.failures.is_empty() {
            return Ok(());
        }
        let failed_in = |d: &Destination| {
            self.failures
                .iter()
                .any(|(t, _)| *t.repository() == d.repository)
        };
        let (untagged, absent): (Vec<&Destination>, Vec<&Destination>) = self
            .destinations
            .iter()
            .filter(|d| failed_in(d) && !self.holding().any(|t| *t.repository() == d.repository))
            .partition(|d| d.by_digest);
        let names = |ds: &[&Destination]| ds.iter().map(|d| d.repository.to_string()).collect();
        // The index the message names: the one the tags that moved hold (with `--append`, each
        // destination has its own), else the one that did not land.
        let named = self
            .holding()
            .next()
            .map(Reference::repository)
            .or_else(|| untagged.iter().chain(&absent).map(|d| &d.repository).next())
            .map_or(&self.index, |r| self.index_of(r));
        let moved = self
            .holding()
            .map(|t| {
                let own = &self.index_of(t.repository()).digest;
                match *own == named.digest {
                    true => t.to_string(),
                    false => format!("{t} (its own index {own})"),
                }
            })
            .collect();
        Err(Error::PartialPush {
            digest: named.digest.to_string(),
            moved,
            untagged: names(&untagged),
            absent: names(&absent),
            failed: self
                .failures
                .into_iter()
                .map(|(t, e)| (t.to_string(), Box::new(e)))
                .collect(),
        })
    }

    /// How far the tags got, for a cancelled run.
    fn progress(&self, holding: Vec<String>) -> Progress {
        let mut unsure = Vec::new();
        let mut not_moved = Vec::new();
        for (tag, e) in &self.failures {
            let status = self.targets.iter().find(|(t, _)| t == tag).map(|(_, s)| *s);
            match e {
                _ if status == Some(Status::Unknown) => unsure.push(tag.to_string()),
                Error::RequestCancelled { .. } => {
                    not_moved.push((tag.to_string(), "not sent".to_string()))
                }
                other => {
                    let why = other.to_string();
                    let why = why.lines().next().unwrap_or_default().to_string();
                    not_moved.push((tag.to_string(), why));
                }
            }
        }
        Progress::Tags {
            holding,
            unsure,
            not_moved,
        }
    }
}

#[cfg(test)]
mod tests;
