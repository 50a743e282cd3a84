//! Why per-architecture sources were not ready at the deadline, and the hints that fix it, each
//! ordered by what was found: for a tag that still holds an image made before the pipeline, first
//! whether the build pushed there at all, then the cached rebuild that labelling fixes; for a later
//! pipeline's build, the digest hand-off or per-commit tags (waiting cannot help); for a missing
//! source, the tag the build jobs push and the platforms they build — always before the switch
//! that turns the check off.

use crate::builder::Builder;
use crate::timestamp::Timestamp;

/// Why a source is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotReady {
    Missing,
    /// Missing, under a name made from the version `MULTIARCH_TAGS=semver` read from a git tag
    /// that is not it (`2.0.1-amd64` for `v2.0.1`): the builds may have pushed under the git tag.
    MissingVersion(SemverTag),
    /// Missing while build jobs handed over other platforms' digests but not this one's
    /// (`variable`): the platform lists of the build jobs and of this job disagree.
    NotHandedOff {
        variable: String,
    },
    /// A build job handed this platform over by digest (`variable`), and what it named is not
    /// in the repository (`stale`: `None`) or is another build (`Some`): read once, never
    /// waited for, so the hints about tags and waiting do not apply.
    HandedOver {
        variable: String,
        stale: Option<Stale>,
    },
    /// Another build is still there.
    Stale {
        why: Stale,
        /// The builder its config points at, for the line that labels an image.
        builder: Option<Builder>,
        /// The variable that would hand this platform's build over by digest (`None`: it was
        /// handed over already).
        hand_off: Option<String>,
    },
}

/// How a source shows it is not this pipeline's build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stale {
    /// Built from this other revision; nothing says when.
    Revision(String),
    /// Built from this other revision by a later pipeline, or while this one ran (`sign` says
    /// which): this pipeline's build was replaced under the shared tag, so waiting cannot help.
    LaterRevision { revision: String, sign: Later },
    /// Without a revision label while one is required (`MULTIARCH_REQUIRE_REVISION`).
    Unlabelled,
    /// Without a revision label, created before this pipeline started.
    CreatedBefore {
        created: Timestamp,
        started: Timestamp,
    },
    /// Without a revision label while `labelled` (another source of this run) carries this
    /// pipeline's: this pipeline labels its builds, so this image is another pipeline's (an
    /// earlier, unlabelled one's that finished late) — whenever it was made.
    UnlabelledBesideLabelled { labelled: String },
}

/// What shows that an image of another revision is a later pipeline's build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Later {
    /// Its `com.gitlab.multiarch.pipeline.id` label names a higher pipeline than this one.
    Pipeline { built_by: u64, this: u64 },
    /// Its config's `created` is after this pipeline started: another pipeline's build, made
    /// while this one ran (an earlier pipeline's that finished late shows the same time).
    Created {
        created: Timestamp,
        started: Timestamp,
    },
}

/// With `MULTIARCH_TAGS=semver`, a git tag that is not the version the sources are named by
/// (`v2.0.1`: sources `2.0.1-<arch>`), when the source template uses `{tag}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SemverTag {
    pub(crate) git_tag: String,
    pub(crate) version: String,
}

/// Why one source is not ready, as one line says it (`expected`: this pipeline's revision).
pub(crate) fn reason(why: &NotReady, expected: Option<&str>) -> String {
    match why {
        NotReady::Missing => "missing".to_string(),
        NotReady::MissingVersion(SemverTag { git_tag, version }) => {
            format!("missing (named by the version {version}, not the git tag {git_tag})")
        }
        NotReady::NotHandedOff { variable } => {
            format!("missing, and no build job handed over {variable} (others were)")
        }
        NotReady::HandedOver { variable, stale } => match stale {
            None => format!("handed over by {variable}, but not in the repository"),
            Some(why) => format!(
                "handed over by {variable}, but {}",
                stale_reason(why, expected)
            ),
        },
        NotReady::Stale { why, .. } => stale_reason(why, expected),
    }
}

fn stale_reason(why: &Stale, expected: Option<&str>) -> String {
    let revision = |h: &str| match expected {
        Some(want) => format!("stale: built from revision {h}, this pipeline is {want}"),
        None => format!("stale: built from revision {h}"),
    };
    match why {
        Stale::Revision(h) => revision(h),
        Stale::LaterRevision { revision: h, sign } => format!(
            "{}; {}",
            revision(h),
            match sign {
                Later::Pipeline { built_by, this } => {
                    format!("a later pipeline's build (pipeline {built_by}; this is {this})")
                }
                Later::Created { created, started } => format!(
                    "created {created}, after this pipeline started at {started}: another pipeline's build, made while this one ran"
                ),
            }
        ),
        Stale::Unlabelled => {
            "no org.opencontainers.image.revision label (MULTIARCH_REQUIRE_REVISION is on)"
                .to_string()
        }
        Stale::CreatedBefore { created, started } => format!(
            "stale: unlabelled, created {created}, before this pipeline started at {started} (no tolerance for clock skew)"
        ),
        Stale::UnlabelledBesideLabelled { labelled } => format!(
            "stale: unlabelled, while {labelled} carries this pipeline's revision label: another pipeline's build"
        ),
    }
}

/// Where the platform list is set, for hints about platforms: both ways of building.
const PLATFORMS: &str = "MULTIARCH_PLATFORMS must list the platforms the build jobs build (with the build components: their `archs` input)";

/// Per-commit source tags, which no other pipeline overwrites.
const PER_COMMIT: &str = "push per-commit source tags and name them in MULTIARCH_SOURCE_TEMPLATE, e.g. {image}:$CI_COMMIT_SHORT_SHA-{arch}{variant}";

/// How to hand a platform's build over by digest (`variable`).
fn hand_off(variable: &str) -> String {
    format!("hand the image over by digest: a dotenv report with {variable}=<repository>@sha256:… (buildah push --digestfile, kaniko --digest-file, docker buildx build --metadata-file), which is exact and never waited for")
}

/// The error's text: one line per source, then the hints that apply.
pub(super) fn describe(sources: &[(String, NotReady)], expected: Option<&str>) -> String {
    let mut out = format!("{} source(s) not ready, nothing was pushed:", sources.len());
    for (reference, why) in sources {
        out.push_str(&format!("\n  - {reference}: {}", reason(why, expected)));
    }
    for hint in hints(sources) {
        out.push_str("\n  hint: ");
        out.push_str(&hint);
    }
    out
}

/// The hints for these sources, most specific first, the switch last.
fn hints(sources: &[(String, NotReady)]) -> Vec<String> {
    let mut out = Vec::new();
    let any = |f: &dyn Fn(&NotReady) -> bool| sources.iter().any(|(_, w)| f(w));
    if any(&|w| matches!(w, NotReady::NotHandedOff { .. })) {
        out.push(format!("build jobs handed over some platforms by digest but not these: {PLATFORMS}, or the build job for them failed"));
    }
    if any(&|w| matches!(w, NotReady::HandedOver { .. })) {
        out.push("a build job handed this digest over (read once, never waited for): check that it pushed this commit's build to the repository its digest names, and that nothing deleted it since".into());
    }
    let semver = sources.iter().find_map(|(_, w)| match w {
        NotReady::MissingVersion(tag) => Some(tag),
        _ => None,
    });
    if let Some(SemverTag { git_tag, version }) = semver {
        out.push(format!("with MULTIARCH_TAGS=semver the sources are named by the version {version}, not the git tag {git_tag}: push the per-architecture images as {version}-<arch> (the build components do), or name the git tag in MULTIARCH_SOURCE_TEMPLATE, e.g. {{image}}:$CI_COMMIT_TAG-{{arch}}{{variant}}"));
    }
    if any(&|w| matches!(w, NotReady::Missing | NotReady::MissingVersion(_))) {
        out.push(format!("check that the build jobs pushed the tags named above (`multiarch plan` lists them), or raise MULTIARCH_TIMEOUT for late builds; {PLATFORMS}"));
    }
    let stale: Vec<(&Stale, Option<Builder>, Option<&str>)> = sources
        .iter()
        .filter_map(|(_, w)| match w {
            NotReady::Stale {
                why,
                builder,
                hand_off,
            } => Some((why, *builder, hand_off.as_deref())),
            _ => None,
        })
        .collect();
    if stale.is_empty() {
        return out;
    }
    let is = |f: &dyn Fn(&Stale) -> bool| stale.iter().any(|(w, _, _)| f(w));
    let or_hand_off = stale
        .iter()
        .find_map(|(_, _, v)| *v)
        .map(|v| format!(", or {}", hand_off(v)))
        .unwrap_or_default();
    if is(&|w| matches!(w, Stale::LaterRevision { .. })) {
        let who = if is(&|w| {
            matches!(
                w,
                Stale::LaterRevision {
                    sign: Later::Pipeline { .. },
                    ..
                }
            )
        }) {
            "a later pipeline's build"
        } else {
            "another pipeline's build, made while this one ran,"
        };
        let first = stale
            .iter()
            .find_map(|(_, _, v)| *v)
            .map(|v| format!("{}; or ", hand_off(v)))
            .unwrap_or_default();
        out.push(format!("{who} replaced this pipeline's under the shared tag, and waiting cannot bring it back: {first}{PER_COMMIT}"));
    }
    if is(&|w| matches!(w, Stale::Revision(_))) {
        out.push(format!("the tag holds another revision's build: check that this commit's build jobs ran and pushed to this tag; if another pipeline pushed there after them, this pipeline's build was replaced under the shared tag: {PER_COMMIT}{or_hand_off}"));
    }
    if is(&|w| matches!(w, Stale::CreatedBefore { .. })) {
        out.push("the tag still holds an image made before this pipeline started: check that this pipeline's build pushed to this tag (a build that pushed to another tag or repository, or not at all, leaves the earlier image there)".into());
    }
    if is(&|w| matches!(w, Stale::UnlabelledBesideLabelled { .. })) {
        out.push(format!("this pipeline's builds carry a revision label, so an unlabelled image under a source tag is another pipeline's: an earlier pipeline's, built before the label was added, that finished late and replaced this pipeline's build (waiting cannot bring it back: {PER_COMMIT}{or_hand_off}), or a build job of this pipeline that does not label its image like the others"));
    }
    let unlabelled: Vec<Option<Builder>> = stale
        .iter()
        .filter(|(w, _, _)| {
            matches!(
                w,
                Stale::Unlabelled
                    | Stale::CreatedBefore { .. }
                    | Stale::UnlabelledBesideLabelled { .. }
            )
        })
        .map(|(_, b, _)| *b)
        .collect();
    if let Some(first) = unlabelled.first() {
        let builder = first.filter(|b| unlabelled.iter().all(|u| *u == Some(*b)));
        let label = format!(
            "label the image with this commit: {}{or_hand_off}",
            Builder::label_lines(builder)
        );
        out.push(if is(&|w| matches!(w, Stale::CreatedBefore { .. })) {
            format!("if it did, a fully cached rebuild (buildah/podman build --layers, docker's classic builder) pushed the earlier image again, dated as it was: {label}; a label also covers a build runner whose clock is behind GitLab's")
        } else {
            format!("make the build {label}")
        });
    }
    out.push(if is(&|w| matches!(w, Stale::Unlabelled)) {
        // The label is required: dropping that requirement is the smaller switch.
        "only if images cannot say their commit: MULTIARCH_REQUIRE_REVISION=false accepts unlabelled images again (with a warning); MULTIARCH_REVISION=none turns the check off".into()
    } else {
        "only if images cannot say their commit: MULTIARCH_REVISION=none turns the check off".into()
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMD: &str = "MULTIARCH_SOURCE_LINUX_AMD64";

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn stale(why: Stale, builder: Option<Builder>) -> NotReady {
        NotReady::Stale {
            why,
            builder,
            hand_off: Some(AMD.into()),
        }
    }

    /// The text for one source under `r/app:latest-amd64`, in a pipeline of revision 3f2a1c0d.
    fn one(why: NotReady) -> String {
        describe(&[("r/app:latest-amd64".into(), why)], Some("3f2a1c0d"))
    }

    const HAND_OFF: &str = "hand the image over by digest: a dotenv report with MULTIARCH_SOURCE_LINUX_AMD64=<repository>@sha256:… (buildah push --digestfile, kaniko --digest-file, docker buildx build --metadata-file), which is exact and never waited for";
    const SWITCH: &str = "\n  hint: only if images cannot say their commit: MULTIARCH_REVISION=none turns the check off";

    #[test]
    fn a_later_pipelines_build_is_named_so_with_the_fixes_that_work() {
        let head = "1 source(s) not ready, nothing was pushed:\n  - r/app:latest-amd64: stale: built from revision 1a2b3c4d, this pipeline is 3f2a1c0d; ";
        let hint = |who: &str| {
            format!("\n  hint: {who} replaced this pipeline's under the shared tag, and waiting cannot bring it back: {HAND_OFF}; or push per-commit source tags and name them in MULTIARCH_SOURCE_TEMPLATE, e.g. {{image}}:$CI_COMMIT_SHORT_SHA-{{arch}}{{variant}}{SWITCH}")
        };
        let by_id = Later::Pipeline {
            built_by: 3002,
            this: 3001,
        };
        let by_time = Later::Created {
            created: t("2026-12-04T12:09:41Z"),
            started: t("2026-12-04T12:07:14Z"),
        };
        // The time alone does not tell a later pipeline from an earlier one that finished late.
        for (sign, says, who) in [
            (by_id, "a later pipeline's build (pipeline 3002; this is 3001)", "a later pipeline's build"),
            (by_time, "created 2026-12-04T12:09:41Z, after this pipeline started at 2026-12-04T12:07:14Z: another pipeline's build, made while this one ran", "another pipeline's build, made while this one ran,"),
        ] {
            let why = Stale::LaterRevision {
                revision: "1a2b3c4d".into(),
                sign,
            };
            assert_eq!(one(stale(why, None)), format!("{head}{says}{}", hint(who)));
        }
    }

    #[test]
    fn another_revision_of_unknown_age_names_both_causes() {
        assert_eq!(
            one(stale(Stale::Revision("1a2b3c4d".into()), None)),
            format!("1 source(s) not ready, nothing was pushed:\n  - r/app:latest-amd64: stale: built from revision 1a2b3c4d, this pipeline is 3f2a1c0d\n  hint: the tag holds another revision's build: check that this commit's build jobs ran and pushed to this tag; if another pipeline pushed there after them, this pipeline's build was replaced under the shared tag: push per-commit source tags and name them in MULTIARCH_SOURCE_TEMPLATE, e.g. {{image}}:$CI_COMMIT_SHORT_SHA-{{arch}}{{variant}}, or {HAND_OFF}{SWITCH}")
        );
    }

    /// An image older than the pipeline: first whether the build pushed there at all (labelling
    /// would not help then), then the cached rebuild that labelling fixes, the switch last.
    #[test]
    fn an_image_older_than_the_pipeline_asks_where_the_build_pushed_first() {
        let why = Stale::CreatedBefore {
            created: t("2026-12-04T11:02:00Z"),
            started: t("2026-12-04T12:07:14Z"),
        };
        assert_eq!(
            one(stale(why, Some(Builder::Kaniko))),
            format!("1 source(s) not ready, nothing was pushed:\n  - r/app:latest-amd64: stale: unlabelled, created 2026-12-04T11:02:00Z, before this pipeline started at 2026-12-04T12:07:14Z (no tolerance for clock skew)\n  hint: the tag still holds an image made before this pipeline started: check that this pipeline's build pushed to this tag (a build that pushed to another tag or repository, or not at all, leaves the earlier image there)\n  hint: if it did, a fully cached rebuild (buildah/podman build --layers, docker's classic builder) pushed the earlier image again, dated as it was: label the image with this commit: /kaniko/executor --label org.opencontainers.image.revision=$CI_COMMIT_SHA …, or {HAND_OFF}; a label also covers a build runner whose clock is behind GitLab's{SWITCH}")
        );
    }

    #[test]
    fn an_unlabelled_image_where_a_label_is_required_asks_for_the_label() {
        assert_eq!(
            one(stale(Stale::Unlabelled, None)),
            format!("1 source(s) not ready, nothing was pushed:\n  - r/app:latest-amd64: no org.opencontainers.image.revision label (MULTIARCH_REQUIRE_REVISION is on)\n  hint: make the build label the image with this commit: buildah build --label org.opencontainers.image.revision=$CI_COMMIT_SHA … | docker buildx build --label org.opencontainers.image.revision=$CI_COMMIT_SHA … | /kaniko/executor --label org.opencontainers.image.revision=$CI_COMMIT_SHA …, or {HAND_OFF}\n  hint: only if images cannot say their commit: MULTIARCH_REQUIRE_REVISION=false accepts unlabelled images again (with a warning); MULTIARCH_REVISION=none turns the check off")
        );
    }

    #[test]
    fn a_missing_source_names_the_tag_and_both_ways_of_setting_platforms() {
        let hint = "\n  hint: check that the build jobs pushed the tags named above (`multiarch plan` lists them), or raise MULTIARCH_TIMEOUT for late builds; MULTIARCH_PLATFORMS must list the platforms the build jobs build (with the build components: their `archs` input)";
        assert_eq!(
            one(NotReady::Missing),
            format!(
                "1 source(s) not ready, nothing was pushed:\n  - r/app:latest-amd64: missing{hint}"
            )
        );
        // A `v`-prefixed release tag read by semver: the sources are the version without `v`.
        let semver = SemverTag {
            git_tag: "v2.0.1".into(),
            version: "2.0.1".into(),
        };
        assert_eq!(
            one(NotReady::MissingVersion(semver)),
            format!("1 source(s) not ready, nothing was pushed:\n  - r/app:latest-amd64: missing (named by the version 2.0.1, not the git tag v2.0.1)\n  hint: with MULTIARCH_TAGS=semver the sources are named by the version 2.0.1, not the git tag v2.0.1: push the per-architecture images as 2.0.1-<arch> (the build components do), or name the git tag in MULTIARCH_SOURCE_TEMPLATE, e.g. {{image}}:$CI_COMMIT_TAG-{{arch}}{{variant}}{hint}")
        );
    }

    #[test]
    fn a_platform_not_handed_over_names_both_ways_of_setting_platforms() {
        let why = NotReady::NotHandedOff {
            variable: "MULTIARCH_SOURCE_LINUX_ARM64".into(),
        };
        assert_eq!(
            one(why),
            "1 source(s) not ready, nothing was pushed:\n  - r/app:latest-amd64: missing, and no build job handed over MULTIARCH_SOURCE_LINUX_ARM64 (others were)\n  hint: build jobs handed over some platforms by digest but not these: MULTIARCH_PLATFORMS must list the platforms the build jobs build (with the build components: their `archs` input), or the build job for them failed"
        );
    }
}
