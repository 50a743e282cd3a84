//! Tags never move backwards: what an index records about who published it, and whether a target
//! tag may move from what it holds to this run's index. Pure: `publish` reads what each tag holds
//! and applies the verdicts.
//!
//! Every index a GitLab pipeline publishes records, next to the OCI revision and version
//! annotations, the GitLab project and pipeline that published it (`PROJECT`, `PIPELINE`). A
//! target tag holding an index of the same project is then kept when that index is newer than
//! this run's:
//! - a higher version (`org.opencontainers.image.version`, the git tag: semver precedence, the
//!   leading `v` ignored): `v1.9.1` after `v2.0.1` moves `1.9.1`, `1.9` and `1`, not `2` and
//!   `latest`;
//! - else (versions equal, or not both semver) a higher pipeline id: an older pipeline that
//!   finishes last does not move `latest` back to its build.
//!
//! An index that records no order (another tool's, an older multiarch's, a Docker manifest list)
//! or another project's is moved as before; so is everything when this run records none (outside
//! GitLab). `MULTIARCH_ROLLBACK=allow` moves kept tags anyway.
//!
//! Re-running a pipeline for a commit already published must not change what the tags hold
//! (immutable tags would refuse it): a held index that differs from this run's only in who
//! published it (`equivalent`, these keys) is adopted as this run's index, unless that would lower
//! what another tag it moves records (`adopt`).

use std::collections::BTreeMap;
use std::fmt;

use crate::digest::Digest;
use crate::labels::{PIPELINE, PROJECT, REVISION, VERSION};
use crate::settings::semver::Version;
use crate::text::printable;

/// The annotations that say who published an index, rather than what it holds.
const PUBLISHER: [&str; 2] = [PROJECT, PIPELINE];

/// What an index records about its publisher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) project: Option<u64>,
    pub(crate) pipeline: Option<u64>,
    pub(crate) revision: Option<String>,
    pub(crate) version: Option<String>,
}

impl Recorded {
    /// Read from an index's annotations (a registry's text: numbers or nothing, the rest shown
    /// printable).
    pub(crate) fn from_annotations(a: &BTreeMap<String, String>) -> Recorded {
        let number = |k: &str| a.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        let text = |k: &str| a.get(k).map(|v| printable(v.trim()));
        Recorded {
            project: number(PROJECT),
            pipeline: number(PIPELINE),
            revision: text(REVISION),
            version: text(VERSION),
        }
    }

    /// True when it says which project and pipeline published it.
    pub(crate) fn is_ordered(&self) -> bool {
        self.project.is_some() && self.pipeline.is_some()
    }
}

/// How people read a publisher: `pipeline 1235 (revision 9a8b7c6d)`.
impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pipeline {
            Some(p) => write!(f, "pipeline {p}")?,
            None => f.write_str("no recorded pipeline")?,
        }
        if let Some(r) = &self.revision {
            write!(f, " (revision {})", short(r))?;
        }
        Ok(())
    }
}

/// A commit SHA as people read it (8 characters); other revisions as they are.
fn short(revision: &str) -> &str {
    if revision.len() > 12 && revision.bytes().all(|c| c.is_ascii_hexdigit()) {
        &revision[..8]
    } else {
        revision
    }
}

/// Why a held index is newer than this run's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Newer {
    /// It holds a higher version.
    Version,
    /// It was published by a later pipeline of the project.
    Pipeline,
}

/// What to do with a target tag that holds another index than this run's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Move it: nothing says what it holds is newer.
    Move,
    /// Keep it where it is (exit 0, said on stderr, stdout and in the dotenv).
    Keep(Newer),
    /// Move it although what it holds is newer: `MULTIARCH_ROLLBACK=allow`.
    RollBack(Newer),
}

/// The verdict for a tag holding an index that records `held`, this run recording `ours`.
pub(crate) fn decide(ours: &Recorded, held: &Recorded, rollback: bool) -> Verdict {
    match (newer(ours, held), rollback) {
        (None, _) => Verdict::Move,
        (Some(n), false) => Verdict::Keep(n),
        (Some(n), true) => Verdict::RollBack(n),
    }
}

/// Whether `held` is newer than `ours`: only between indexes of one project that both record
/// their order; a version decides first, the pipeline when the versions are equal or not both
/// semver.
fn newer(ours: &Recorded, held: &Recorded) -> Option<Newer> {
    if !ours.is_ordered() || !held.is_ordered() || ours.project != held.project {
        return None;
    }
    let version = |r: &Recorded| r.version.as_deref().and_then(Version::parse);
    if let (Some(o), Some(h)) = (version(ours), version(held)) {
        if h != o {
            return (h > o).then_some(Newer::Version);
        }
    }
    (held.pipeline > ours.pipeline).then_some(Newer::Pipeline)
}

/// The notice for a kept (or rolled back) tag, naming both publishers.
pub(crate) fn explain(newer: &Newer, ours: &Recorded, held: &Recorded) -> String {
    let version = |r: &Recorded| r.version.clone().unwrap_or_default();
    match newer {
        Newer::Version => format!(
            "it holds version {}, published by {held}, higher than {}, which this {ours} publishes",
            version(held),
            version(ours)
        ),
        Newer::Pipeline => format!("it holds the index of {held}, newer than this {ours}"),
    }
}

/// This run's annotations as a publisher recording `held` would have written them: the
/// publisher keys replaced by the held index's own (dropped where it has none). An index built
/// from them that hashes to the held index's digest is the held index: the same content, only
/// published by another run.
pub(crate) fn equivalent(
    ours: &BTreeMap<String, String>,
    held: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut values = ours.clone();
    for key in PUBLISHER {
        match held.get(key) {
            Some(v) => values.insert(key.to_string(), v.clone()),
            None => values.remove(key),
        };
    }
    values
}

/// What a target tag holds, as read before it is moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) digest: Digest,
    pub(crate) recorded: Recorded,
}

/// Which of the held indexes equivalent to this run's (`candidates`) to adopt as this run's
/// index: the most recently published one, unless a tag that would move to it (`moving`: what
/// each holds) records a later pipeline of the same project, whose order moving it to the
/// adopted index would lower. `None`: publish this run's own index.
pub(crate) fn adopt<'a>(candidates: &[&'a Held], moving: &[&Held]) -> Option<&'a Held> {
    let best = candidates
        .iter()
        .copied()
        .max_by_key(|h| h.recorded.pipeline)?;
    let lowered = moving.iter().any(|m| {
        m.digest != best.digest
            && m.recorded.is_ordered()
            && m.recorded.project == best.recorded.project
            && m.recorded.pipeline > best.recorded.pipeline
    });
    (!lowered).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(project: Option<u64>, pipeline: Option<u64>, version: Option<&str>) -> Recorded {
        Recorded {
            project,
            pipeline,
            revision: Some("3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49".into()),
            version: version.map(str::to_string),
        }
    }

    #[test]
    fn a_tag_moves_unless_it_holds_something_newer_of_this_project() {
        use Verdict::{Keep, Move, RollBack};
        let p = Some(42);
        // (ours, held, rollback, verdict)
        let rows = [
            // Pipelines of one branch: the newer one stays.
            (
                rec(p, Some(100), None),
                rec(p, Some(101), None),
                false,
                Keep(Newer::Pipeline),
            ),
            (
                rec(p, Some(101), None),
                rec(p, Some(100), None),
                false,
                Move,
            ),
            // The same pipeline again (a retried job whose sources changed): it moves.
            (
                rec(p, Some(100), None),
                rec(p, Some(100), None),
                false,
                Move,
            ),
            // Releases: the version decides, whatever the pipeline order.
            (
                rec(p, Some(201), Some("v1.9.1")),
                rec(p, Some(200), Some("v2.0.1")),
                false,
                Keep(Newer::Version),
            ),
            (
                rec(p, Some(200), Some("v2.0.1")),
                rec(p, Some(201), Some("v1.9.1")),
                false,
                Move,
            ),
            (
                rec(p, Some(200), Some("v1.10.0")),
                rec(p, Some(201), Some("1.9.1")),
                false,
                Move,
            ),
            (
                rec(p, Some(200), Some("2.1.0-rc.1")),
                rec(p, Some(199), Some("2.1.0")),
                false,
                Keep(Newer::Version),
            ),
            // Equal versions, or versions that are not semver: the pipeline decides.
            (
                rec(p, Some(200), Some("v2.0.1")),
                rec(p, Some(201), Some("2.0.1")),
                false,
                Keep(Newer::Pipeline),
            ),
            (
                rec(p, Some(200), Some("release-7")),
                rec(p, Some(201), Some("release-6")),
                false,
                Keep(Newer::Pipeline),
            ),
            (
                rec(p, Some(202), Some("v1.9.1")),
                rec(p, Some(201), None),
                false,
                Move,
            ),
            (
                rec(p, Some(200), Some("v1.9.1")),
                rec(p, Some(201), None),
                false,
                Keep(Newer::Pipeline),
            ),
            // No order recorded (another tool, an older multiarch), another project, or a run
            // outside GitLab: moved as before.
            (
                rec(p, Some(100), None),
                rec(None, None, Some("v9.0.0")),
                false,
                Move,
            ),
            (rec(p, Some(100), None), rec(p, None, None), false, Move),
            (
                rec(p, Some(100), None),
                rec(Some(7), Some(900), None),
                false,
                Move,
            ),
            (
                rec(None, None, Some("v1.0.0")),
                rec(p, Some(900), Some("v2.0.0")),
                false,
                Move,
            ),
            // The override.
            (
                rec(p, Some(100), None),
                rec(p, Some(101), None),
                true,
                RollBack(Newer::Pipeline),
            ),
            (
                rec(p, Some(201), Some("1.9.1")),
                rec(p, Some(200), Some("2.0.1")),
                true,
                RollBack(Newer::Version),
            ),
            (rec(p, Some(101), None), rec(p, Some(100), None), true, Move),
        ];
        for (ours, held, rollback, want) in rows {
            assert_eq!(decide(&ours, &held, rollback), want, "{ours} vs {held}");
        }
    }

    #[test]
    fn reads_what_an_index_records_leniently() {
        let a: BTreeMap<String, String> = [
            (PROJECT, " 42 "),
            (PIPELINE, "not a number"),
            (VERSION, "v1\n2"),
            (REVISION, "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let r = Recorded::from_annotations(&a);
        assert_eq!((r.project, r.pipeline), (Some(42), None));
        assert!(!r.is_ordered());
        assert_eq!(r.version.as_deref(), Some("v1\\n2"));
        let (ours, held) = (
            rec(Some(42), Some(1236), Some("v1.9.1")),
            rec(Some(42), Some(1235), Some("v2.0.1")),
        );
        assert_eq!(
            explain(&Newer::Version, &ours, &held),
            "it holds version v2.0.1, published by pipeline 1235 (revision 3f2a1c0d), higher than v1.9.1, which this pipeline 1236 (revision 3f2a1c0d) publishes"
        );
        assert_eq!(
            explain(&Newer::Pipeline, &held, &ours),
            "it holds the index of pipeline 1236 (revision 3f2a1c0d), newer than this pipeline 1235 (revision 3f2a1c0d)"
        );
    }

    #[test]
    fn an_equivalent_index_is_ours_with_the_held_publisher() {
        let ours: BTreeMap<String, String> =
            [(PROJECT, "42"), (PIPELINE, "101"), (REVISION, "3f2a1c0d")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let held: BTreeMap<String, String> = [(PIPELINE.to_string(), "100".to_string())].into();
        let got = equivalent(&ours, &held);
        assert_eq!(got.get(PIPELINE).map(String::as_str), Some("100"));
        assert_eq!(got.get(PROJECT), None);
        assert_eq!(got.get(REVISION).map(String::as_str), Some("3f2a1c0d"));
    }

    #[test]
    fn adopts_the_latest_equivalent_unless_a_moving_tag_would_record_less() {
        let d = |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let held = |c: char, pipeline: Option<u64>| Held {
            digest: d(c),
            recorded: rec(pipeline.map(|_| 42), pipeline, None),
        };
        let (a, b) = (held('a', Some(100)), held('b', Some(102)));
        let unordered = held('e', None);
        let mid = held('c', Some(101));
        let later = held('d', Some(103));
        // (candidates, what the moving tags hold, adopted)
        let rows: [(&[&Held], &[&Held], Option<&Held>); 6] = [
            (&[], &[&mid], None),
            (&[&a], &[&a], Some(&a)),
            (&[&a, &b], &[&a, &b], Some(&b)),
            (&[&a], &[&unordered], Some(&a)),
            // Moving a tag from pipeline 101's index to 100's would let 101 move it back.
            (&[&a], &[&a, &mid], None),
            (&[&b], &[&mid, &later], None),
        ];
        for (candidates, moving, want) in rows {
            assert_eq!(adopt(candidates, moving), want);
        }
    }
}
