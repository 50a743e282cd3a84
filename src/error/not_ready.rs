//! Why per-architecture sources were not ready at the deadline, and the hints that fix it: how
//! to make the build label its image (its builder's own line) or hand its digest over, and when
//! the platform list disagrees with the build jobs, the build component's `archs` input — before
//! the switch that turns the check off.

use crate::builder::Builder;
use crate::timestamp::Timestamp;

/// Why a source is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotReady {
    Missing,
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
    /// An earlier build is still there.
    Stale {
        why: Stale,
        /// The builder its config points at, for the line that labels an image.
        builder: Option<Builder>,
        /// The variable that would hand this platform's build over by digest (`None`: it was
        /// handed over already).
        hand_off: Option<String>,
    },
}

/// How a source shows it is an earlier build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stale {
    /// Built from this other revision.
    Revision(String),
    /// Without a revision label while one is required (`MULTIARCH_REQUIRE_REVISION`).
    Unlabelled,
    /// Without a revision label, created before this pipeline started.
    CreatedBefore {
        created: Timestamp,
        started: Timestamp,
    },
}

/// Why one source is not ready, as one line says it (`expected`: this pipeline's revision).
pub(crate) fn reason(why: &NotReady, expected: Option<&str>) -> String {
    match why {
    NotReady::Missing => "missing".to_string(),
    NotReady::NotHandedOff { variable } => {
        format!("missing, and no build job handed over {variable} (others were)")
    }
    NotReady::HandedOver { variable, stale } => match stale {
        None => format!("handed over by {variable}, but not in the repository"),
        Some(why) => format!(
            "handed over by {variable}, but {}",
            reason(
                &NotReady::Stale {
                    why: why.clone(),
                    builder: None,
                    hand_off: None
                },
                expected
            )
        ),
    },
    NotReady::Stale { why, .. } => match (why, expected) {
        (Stale::Revision(h), Some(want)) => {
            format!("stale: built from revision {h}, this pipeline is {want}")
        }
        (Stale::Revision(h), None) => format!("stale: built from revision {h}"),
        (Stale::Unlabelled, _) => {
            "no org.opencontainers.image.revision label (MULTIARCH_REQUIRE_REVISION is on)"
                .to_string()
        }
        (Stale::CreatedBefore { created, started }, _) => format!(
            "stale: unlabelled, created {created}, before this pipeline started at {started} (no tolerance for clock skew)"
        ),
    },
    }
}

/// The error's text: one line per source, then the hints that apply.
pub(super) fn describe(sources: &[(String, NotReady)], expected: Option<&str>) -> String {
    let mut out = format!("{} source(s) not ready, nothing was pushed:", sources.len());
    for (reference, why) in sources {
        out.push_str(&format!("\n  - {reference}: {}", reason(why, expected)));
    }
    let any = |f: &dyn Fn(&NotReady) -> bool| sources.iter().any(|(_, w)| f(w));
    if any(&|w| matches!(w, NotReady::NotHandedOff { .. })) {
        out.push_str("\n  hint: build jobs handed over some platforms by digest but not these: the build component's `archs` input and MULTIARCH_PLATFORMS must list the same platforms (or the build job for them failed)");
    }
    if any(&|w| matches!(w, NotReady::HandedOver { .. })) {
        out.push_str("\n  hint: a build job handed this digest over (read once, never waited for): check that it pushed this commit's build to the repository its digest names, and that nothing deleted it since");
    }
    if any(&|w| *w == NotReady::Missing) {
        out.push_str("\n  hint: check that every per-architecture build job pushed its tag, or set MULTIARCH_TIMEOUT to wait for late builds; the platforms awaited (MULTIARCH_PLATFORMS) must be those the build jobs build (the build component's `archs` input)");
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
    let hand_off = stale
        .iter()
        .find_map(|(_, _, v)| *v)
        .map(|v| format!(", or hand the image over by digest: a dotenv report with {v}=<repository>@sha256:… (buildah push --digestfile, kaniko --digest-file, docker buildx build --metadata-file), which is exact and never waited for"))
        .unwrap_or_default();
    if stale
        .iter()
        .any(|(w, _, _)| matches!(w, Stale::Revision(_)))
    {
        out.push_str(&format!("\n  hint: this pipeline's build did not land under the tag in time (an earlier pipeline's image is still there): check that this commit's build jobs ran and pushed{hand_off}"));
    }
    let unlabelled: Vec<Option<Builder>> = stale
        .iter()
        .filter(|(w, _, _)| !matches!(w, Stale::Revision(_)))
        .map(|(_, b, _)| *b)
        .collect();
    if let Some(first) = unlabelled.first() {
        let builder = first.filter(|b| unlabelled.iter().all(|u| *u == Some(*b)));
        out.push_str(&format!(
            "\n  hint: make the build label its image with this commit: {}{hand_off}",
            Builder::label_lines(builder)
        ));
        if stale
            .iter()
            .any(|(w, _, _)| matches!(w, Stale::CreatedBefore { .. }))
        {
            out.push_str("; an image dated before the pipeline started is an earlier build, unless the build runner's clock is behind GitLab's (label it, or fix the clock)");
        }
    }
    out.push_str("\n  hint: only if images cannot say their commit: MULTIARCH_REVISION=none turns the check off");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_sources_get_the_fix_before_the_switch() {
        let t = |s: &str| Timestamp::parse(s).unwrap();
        let text = describe(
            &[
                (
                    "r/app:latest-amd64".into(),
                    NotReady::Stale {
                        why: Stale::CreatedBefore {
                            created: t("2026-12-04T11:02:00Z"),
                            started: t("2026-12-04T12:07:14Z"),
                        },
                        builder: Some(Builder::Kaniko),
                        hand_off: Some("MULTIARCH_SOURCE_LINUX_AMD64".into()),
                    },
                ),
                (
                    "r/app:latest-arm64".into(),
                    NotReady::NotHandedOff {
                        variable: "MULTIARCH_SOURCE_LINUX_ARM64".into(),
                    },
                ),
            ],
            Some("3f2a1c0d"),
        );
        assert!(text.contains("\n  - r/app:latest-amd64: stale: unlabelled, created 2026-12-04T11:02:00Z, before this pipeline started at 2026-12-04T12:07:14Z"), "{text}");
        assert!(
            text.contains("no build job handed over MULTIARCH_SOURCE_LINUX_ARM64"),
            "{text}"
        );
        assert!(
            text.contains("the build component's `archs` input and MULTIARCH_PLATFORMS"),
            "{text}"
        );
        let label = text
            .find("/kaniko/executor --label org.opencontainers.image.revision=$CI_COMMIT_SHA")
            .expect("the kaniko line");
        let hand = text
            .find("MULTIARCH_SOURCE_LINUX_AMD64=<repository>@sha256:")
            .expect("the hand-off");
        let off = text.find("MULTIARCH_REVISION=none").expect("the switch");
        assert!(label < hand && hand < off, "{text}");
        assert!(!text.contains("buildah build"), "{text}");
    }
}
