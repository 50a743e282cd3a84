//! Whether a source is this pipeline's build. Pure.
//!
//! An image labelled with a revision (its config's `org.opencontainers.image.revision` label, else
//! its manifest's annotation) is judged by it: the expected revision (a commit SHA matches its
//! abbreviations) or another, stale one. An unlabelled image is judged by time: its config's
//! `created` earlier than this pipeline's start (`CI_PIPELINE_CREATED_AT`) is an earlier
//! pipeline's build, stale like another revision. It cannot be dated — and today's rule
//! (`MULTIARCH_REQUIRE_REVISION`) applies — when `created` is missing or unreadable, a
//! placeholder (before 2000: epoch 0 of jib, ko, bazel, kaniko `--reproducible`; nix's
//! 1970-01-01T00:00:01Z; buildpacks' 1980-01-01T00:00:01Z), or exactly the commit's time
//! (`CI_COMMIT_TIMESTAMP`, what `SOURCE_DATE_EPOCH` builds write), or when the pipeline's clocks
//! are unknown (outside GitLab).
//!
//! Clock skew: `created` comes from the build's clock, the pipeline start from GitLab's, and no
//! tolerance is granted. A build job starts after its pipeline, and builders write `created` at
//! the end of the build, so a fresh image is normally minutes younger than the pipeline; only a
//! runner clock behind GitLab's by more than that dates a fresh image too early — and then the
//! job waits and fails naming both times (exit 3), which labelling fixes. A tolerance would
//! instead silently accept the previous pipeline's image whenever it finished within the
//! tolerance before this pipeline started: two quick pushes to one branch, the exact case this
//! check exists for. GitLab gives the start to the second; `created` is compared with it as is.

use crate::builder::Builder;
use crate::error::Later;
use crate::model::{Resolved, SourceImage};
use crate::settings::Times;
use crate::timestamp::Timestamp;

/// `created` before this is a placeholder, not a build time: 2000-01-01T00:00:00Z.
const PLACEHOLDER_BEFORE: Timestamp = Timestamp::from_unix(946_684_800);

/// Whether a source was built by this pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Provenance {
    /// Labelled with the expected revision.
    Built,
    /// Unlabelled, created after this pipeline started: taken as its build (a later pipeline's
    /// would pass too; only a label tells them apart).
    CreatedAfter {
        created: Timestamp,
        started: Timestamp,
    },
    /// Unlabelled and not datable: today's rule (`MULTIARCH_REQUIRE_REVISION`) decides.
    Unlabelled(Undated),
    /// Unlabelled, created before this pipeline started: an earlier pipeline's build.
    CreatedBefore {
        created: Timestamp,
        started: Timestamp,
    },
    /// Built from this other revision.
    Other(String),
}

/// Why an unlabelled image cannot be dated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Undated {
    /// `CI_PIPELINE_CREATED_AT` or `CI_COMMIT_TIMESTAMP` is not set: which of them is known.
    NoClock { started: bool, commit: bool },
    /// The config has no `created`.
    NoCreated,
    /// `created` is not a date-time.
    Unreadable(String),
    /// `created` is a fixed time before 2000.
    Placeholder(Timestamp),
    /// `created` is the commit's time (a reproducible build).
    CommitTime(Timestamp),
}

impl Undated {
    /// Why, for the warning.
    pub(super) fn reason(&self) -> String {
        match self {
            Undated::NoClock {
                started: false,
                commit: false,
            } => "CI_PIPELINE_CREATED_AT and CI_COMMIT_TIMESTAMP are not set: neither the pipeline's start nor the commit's time is known".into(),
            Undated::NoClock { started: false, .. } => {
                "CI_PIPELINE_CREATED_AT is not set: the pipeline's start is not known".into()
            }
            Undated::NoClock { .. } => "CI_COMMIT_TIMESTAMP is not set: without the commit's time a reproducible build's created time cannot be told from a build time".into(),
            Undated::NoCreated => "its config has no created time".into(),
            Undated::Unreadable(text) => format!("its created time {text:?} is not a date"),
            Undated::Placeholder(t) => {
                format!("its created time {t} is a fixed placeholder, not a build time")
            }
            Undated::CommitTime(t) => {
                format!("its created time {t} is the commit's time (a reproducible build)")
            }
        }
    }
}

impl Provenance {
    /// How bad it is: the worst image of a source decides for the whole source.
    fn rank(&self) -> u8 {
        match self {
            Provenance::Built => 0,
            Provenance::CreatedAfter { .. } => 1,
            Provenance::Unlabelled(_) => 2,
            Provenance::CreatedBefore { .. } => 3,
            Provenance::Other(_) => 4,
        }
    }
}

/// Every image of the source must be this pipeline's; the worst one decides (one of another
/// revision makes the whole source stale).
pub(super) fn provenance(r: &Resolved, expected: &str, times: &Times) -> Provenance {
    r.images()
        .iter()
        .map(|image| of_image(image, expected, times))
        .max_by_key(Provenance::rank)
        .unwrap_or(Provenance::Unlabelled(Undated::NoCreated))
}

/// Whether a source of another revision is a later pipeline's build (or one made while this
/// pipeline ran), judged on its images of another revision.
pub(super) fn later(r: &Resolved, expected: &str, times: &Times) -> Option<Later> {
    let other = r
        .images()
        .iter()
        .filter(|image| matches!(of_image(image, expected, times), Provenance::Other(_)))
        .map(|image| (image.config.pipeline, image.config.created.as_deref()));
    later_of(other, times)
}

/// From each image's pipeline label and `created`: a label above this pipeline's id says a later
/// pipeline built it; a label at or below says it did not, whatever the time; without a label to
/// say, a `created` at or after this pipeline's start says it was made while this one ran.
fn later_of<'a>(
    images: impl Iterator<Item = (Option<u64>, Option<&'a str>)>,
    times: &Times,
) -> Option<Later> {
    let mut by_time = None;
    for (pipeline, created) in images {
        match (pipeline, times.pipeline) {
            (Some(built_by), Some(this)) if built_by > this => {
                return Some(Later::Pipeline { built_by, this })
            }
            (Some(_), Some(_)) => {}
            _ => {
                let created = created.map(Timestamp::parse);
                if let (Some(Ok(created)), Some(started)) = (created, times.started) {
                    if created >= started && by_time.is_none() {
                        by_time = Some(Later::Created { created, started });
                    }
                }
            }
        }
    }
    by_time
}

/// Whether every image of a source carries this pipeline's revision: this pipeline labels its
/// builds, so an unlabelled image beside it is another pipeline's.
pub(super) fn labelled(r: &Resolved, expected: &str, times: &Times) -> bool {
    provenance(r, expected, times) == Provenance::Built
}

/// Whether a source (taken as this pipeline's build) holds an image without a revision.
pub(super) fn unlabelled(r: &Resolved) -> bool {
    r.images().iter().any(|i| i.revision.is_none())
}

/// What shows that an image of another revision is not an earlier pipeline's, in a few words.
pub(super) fn later_words(sign: &Later) -> String {
    match sign {
        Later::Pipeline { built_by, .. } => {
            format!("a later pipeline's build, pipeline {built_by}")
        }
        Later::Created { .. } => "another pipeline's build, made while this one ran".into(),
    }
}

/// The builder of a source's images, when they agree on one.
pub(super) fn builder(r: &Resolved) -> Option<Builder> {
    let mut builders = r.images().iter().map(|i| i.config.builder);
    let first = builders.next().flatten()?;
    builders.all(|b| b == Some(first)).then_some(first)
}

fn of_image(image: &SourceImage, expected: &str, times: &Times) -> Provenance {
    judge_image(
        image.revision.as_deref(),
        image.config.created.as_deref(),
        expected,
        times,
    )
}

/// One image, from its revision (label or annotation) and its config's `created`.
pub(super) fn judge_image(
    revision: Option<&str>,
    created: Option<&str>,
    expected: &str,
    times: &Times,
) -> Provenance {
    match revision {
        Some(held) if same_revision(held, expected) => Provenance::Built,
        Some(held) => Provenance::Other(held.to_string()),
        None => dated(created, times),
    }
}

impl Provenance {
    /// True for an earlier pipeline's build, whatever the settings: waited past, never published.
    pub(super) fn is_earlier(&self) -> bool {
        matches!(
            self,
            Provenance::Other(_) | Provenance::CreatedBefore { .. }
        )
    }
}

/// An unlabelled image judged by its `created`.
fn dated(created: Option<&str>, times: &Times) -> Provenance {
    let (Some(started), Some(commit)) = (times.started, times.commit) else {
        return Provenance::Unlabelled(Undated::NoClock {
            started: times.started.is_some(),
            commit: times.commit.is_some(),
        });
    };
    let Some(text) = created else {
        return Provenance::Unlabelled(Undated::NoCreated);
    };
    let Ok(created) = Timestamp::parse(text) else {
        return Provenance::Unlabelled(Undated::Unreadable(text.to_string()));
    };
    if created < PLACEHOLDER_BEFORE {
        return Provenance::Unlabelled(Undated::Placeholder(created));
    }
    // Exactly the commit's time: SOURCE_DATE_EPOCH is whole seconds, so a time with a fraction
    // in the commit's second is a build time, not the commit's.
    if created == commit {
        return Provenance::Unlabelled(Undated::CommitTime(created));
    }
    if created < started {
        Provenance::CreatedBefore { created, started }
    } else {
        Provenance::CreatedAfter { created, started }
    }
}

/// Equal, or (commit SHAs) one an abbreviation of the other: builds labelled with
/// `$CI_COMMIT_SHORT_SHA` match a pipeline expecting `$CI_COMMIT_SHA`.
fn same_revision(held: &str, expected: &str) -> bool {
    let (a, b) = (held.trim(), expected.trim());
    if a == b {
        return true;
    }
    let hex = |s: &str| s.len() >= 7 && s.bytes().all(|c| c.is_ascii_hexdigit());
    hex(a)
        && hex(b)
        && (a.to_ascii_lowercase().starts_with(&b.to_ascii_lowercase())
            || b.to_ascii_lowercase().starts_with(&a.to_ascii_lowercase()))
}

/// A commit SHA as people read it: the first 8 characters (other revisions as they are).
pub(super) fn short(revision: &str) -> String {
    if revision.len() > 12 && revision.bytes().all(|c| c.is_ascii_hexdigit()) {
        revision[..8].to_string()
    } else {
        revision.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_match_exactly_or_as_sha_abbreviations() {
        let full = "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
        for (held, expected, same) in [
            (full, full, true),
            ("3f2a1c0d", full, true),
            (full, "3F2A1C0D", true),
            ("3f2a1c", full, false),
            ("1a2b3c4d", full, false),
            ("v1.4.2", "v1.4.2", true),
            ("v1.4.2", "v1.4", false),
        ] {
            assert_eq!(same_revision(held, expected), same, "{held} vs {expected}");
        }
    }

    #[test]
    fn unlabelled_images_are_judged_by_their_created_time() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let started = t("2026-12-04T12:07:14Z");
        let commit = t("2026-12-04T11:58:02+00:00");
        let gitlab = Times {
            started: Some(started),
            commit: Some(commit),
            pipeline: None,
        };
        let before = |c: &str| Provenance::CreatedBefore {
            created: t(c),
            started,
        };
        let after = |c: &str| Provenance::CreatedAfter {
            created: t(c),
            started,
        };
        // (created, pipeline clocks, provenance)
        let rows = [
            (
                Some("2026-12-04T11:02:00Z"),
                gitlab,
                before("2026-12-04T11:02:00Z"),
            ),
            (
                Some("2026-12-04T12:07:13.999999999Z"),
                gitlab,
                before("2026-12-04T12:07:13.999999999Z"),
            ),
            (
                Some("2026-12-04T12:07:14Z"),
                gitlab,
                after("2026-12-04T12:07:14Z"),
            ),
            (
                Some("2026-12-04T12:09:41.123456789Z"),
                gitlab,
                after("2026-12-04T12:09:41.123456789Z"),
            ),
            (
                Some("2026-12-04T13:09:41+01:00"),
                gitlab,
                after("2026-12-04T12:09:41Z"),
            ),
            // Reproducible builds: the commit's time, to the second, or a placeholder.
            (
                Some("2026-12-04T11:58:02Z"),
                gitlab,
                Provenance::Unlabelled(Undated::CommitTime(commit)),
            ),
            // In the commit's second with a fraction: a build time (SOURCE_DATE_EPOCH is whole
            // seconds), judged as one.
            (
                Some("2026-12-04T11:58:02.5Z"),
                gitlab,
                before("2026-12-04T11:58:02.5Z"),
            ),
            (
                Some("1970-01-01T00:00:00Z"),
                gitlab,
                Provenance::Unlabelled(Undated::Placeholder(t("1970-01-01T00:00:00Z"))),
            ),
            (
                Some("1980-01-01T00:00:01Z"),
                gitlab,
                Provenance::Unlabelled(Undated::Placeholder(t("1980-01-01T00:00:01Z"))),
            ),
            (
                Some("0001-01-01T00:00:00Z"),
                gitlab,
                Provenance::Unlabelled(Undated::Placeholder(t("0001-01-01T00:00:00Z"))),
            ),
            (
                Some("yesterday"),
                gitlab,
                Provenance::Unlabelled(Undated::Unreadable("yesterday".into())),
            ),
            (None, gitlab, Provenance::Unlabelled(Undated::NoCreated)),
            // Outside GitLab nothing is dated.
            (
                Some("2026-12-04T11:02:00Z"),
                Times::default(),
                Provenance::Unlabelled(Undated::NoClock {
                    started: false,
                    commit: false,
                }),
            ),
            (
                Some("2026-12-04T11:02:00Z"),
                Times {
                    started: Some(started),
                    commit: None,
                    pipeline: None,
                },
                Provenance::Unlabelled(Undated::NoClock {
                    started: true,
                    commit: false,
                }),
            ),
            (
                Some("2026-12-04T11:02:00Z"),
                Times {
                    started: None,
                    commit: Some(commit),
                    pipeline: None,
                },
                Provenance::Unlabelled(Undated::NoClock {
                    started: false,
                    commit: true,
                }),
            ),
        ];
        for (created, times, want) in rows {
            assert_eq!(dated(created, &times), want, "{created:?}");
        }
    }

    /// The warning names exactly the variables that are missing, and only those.
    #[test]
    fn an_unknown_clock_names_each_missing_variable() {
        let reason = |started, commit| Undated::NoClock { started, commit }.reason();
        assert_eq!(
            reason(false, false),
            "CI_PIPELINE_CREATED_AT and CI_COMMIT_TIMESTAMP are not set: neither the pipeline's start nor the commit's time is known"
        );
        assert_eq!(
            reason(false, true),
            "CI_PIPELINE_CREATED_AT is not set: the pipeline's start is not known"
        );
        assert_eq!(
            reason(true, false),
            "CI_COMMIT_TIMESTAMP is not set: without the commit's time a reproducible build's created time cannot be told from a build time"
        );
    }

    #[test]
    fn another_revisions_build_is_later_by_its_pipeline_label_else_by_its_time() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let started = t("2026-12-04T12:07:14Z");
        let times = Times {
            started: Some(started),
            commit: Some(t("2026-12-04T11:58:02Z")),
            pipeline: Some(3001),
        };
        let (before, after) = (Some("2026-12-04T11:02:00Z"), Some("2026-12-04T12:09:41Z"));
        let by_time = Some(Later::Created {
            created: t("2026-12-04T12:09:41Z"),
            started,
        });
        // (pipeline label, created, this pipeline's id known, verdict)
        let rows = [
            (
                Some(3002),
                before,
                true,
                Some(Later::Pipeline {
                    built_by: 3002,
                    this: 3001,
                }),
            ),
            (Some(3000), after, true, None),
            (Some(3001), after, true, None),
            (None, after, true, by_time),
            (Some(3002), after, false, by_time),
            (None, before, true, None),
            (None, Some("yesterday"), true, None),
            (None, None, true, None),
        ];
        for (pipeline, created, known, want) in rows {
            let times = Times {
                pipeline: times.pipeline.filter(|_| known),
                ..times
            };
            assert_eq!(
                later_of([(pipeline, created)].into_iter(), &times),
                want,
                "{pipeline:?} {created:?}"
            );
        }
        // Outside GitLab nothing is known.
        assert_eq!(
            later_of([(None, after)].into_iter(), &Times::default()),
            None
        );
    }

    #[test]
    fn the_worst_image_of_a_source_decides() {
        let ranks: Vec<u8> = [
            Provenance::Built,
            Provenance::CreatedAfter {
                created: Timestamp::from_unix(2),
                started: Timestamp::from_unix(1),
            },
            Provenance::Unlabelled(Undated::NoCreated),
            Provenance::CreatedBefore {
                created: Timestamp::from_unix(1),
                started: Timestamp::from_unix(2),
            },
            Provenance::Other("1a2b3c4d".into()),
        ]
        .iter()
        .map(Provenance::rank)
        .collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
    }
}
