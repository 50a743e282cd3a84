//! Which tool built an image, as far as its config shows, and the line that makes that tool
//! label an image with the commit it was built from — so a warning or an error about an
//! unlabelled image can show the one line to add to the user's own build job. Pure.
//!
//! The traces, read from the end of the history (a base image's history and labels are
//! inherited, so only the build's own last step tells who made the final image):
//! - kaniko writes `author: kaniko` on every history entry of a layer it adds;
//! - BuildKit (`docker build`, `docker buildx build`) writes `comment: buildkit.dockerfile.v0`
//!   on every history entry of a Dockerfile step (older versions also a top-level
//!   `moby.buildkit.buildinfo.v1`);
//! - buildah (and podman, which builds with it) sets the `io.buildah.version` label on every
//!   image it commits, overwriting an inherited one.
//!
//! Anything else (crane, ko, jib, nix, a builder that left no trace) is unknown: then every line
//! is shown.

use std::fmt;

use crate::labels::REVISION;

/// A tool that builds images from a Dockerfile/Containerfile in a CI job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builder {
    Buildah,
    BuildKit,
    Kaniko,
}

/// What a config says about its builder: its labels' names, and the last history entry's
/// `author` and `comment`, whether an older BuildKit's `moby.buildkit.buildinfo.v1` is there.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Traces<'a> {
    pub(crate) buildah_label: bool,
    pub(crate) last_author: Option<&'a str>,
    pub(crate) last_comment: Option<&'a str>,
    pub(crate) buildkit_info: bool,
}

impl Builder {
    /// Every builder, in the order lines are shown when the builder is not known.
    pub(crate) const ALL: [Builder; 3] = [Builder::Buildah, Builder::BuildKit, Builder::Kaniko];

    /// The builder the traces point at, if any.
    pub(crate) fn detect(traces: &Traces) -> Option<Builder> {
        if traces.last_author == Some("kaniko") {
            return Some(Builder::Kaniko);
        }
        if traces
            .last_comment
            .is_some_and(|c| c.starts_with("buildkit."))
            || traces.buildkit_info
        {
            return Some(Builder::BuildKit);
        }
        traces.buildah_label.then_some(Builder::Buildah)
    }

    /// The build command with the label this pipeline's commit needs.
    pub(crate) fn label_line(self) -> String {
        let command = match self {
            Builder::Buildah => "buildah build",
            Builder::BuildKit => "docker buildx build",
            Builder::Kaniko => "/kaniko/executor",
        };
        format!("{command} --label {REVISION}=$CI_COMMIT_SHA …")
    }

    /// The lines to show for `builder`: its own, or every builder's when it is not known.
    pub(crate) fn label_lines(builder: Option<Builder>) -> String {
        match builder {
            Some(b) => b.label_line(),
            None => Builder::ALL
                .iter()
                .map(|b| b.label_line())
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }
}

impl fmt::Display for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Builder::Buildah => "buildah",
            Builder::BuildKit => "BuildKit (docker build / buildx)",
            Builder::Kaniko => "kaniko",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_step_tells_the_builder_an_inherited_label_does_not() {
        let t = |buildah_label, last_author, last_comment, buildkit_info| Traces {
            buildah_label,
            last_author,
            last_comment,
            buildkit_info,
        };
        for (traces, want) in [
            (t(true, None, None, false), Some(Builder::Buildah)),
            (
                t(true, None, Some("FROM docker.io/library/alpine"), false),
                Some(Builder::Buildah),
            ),
            (
                t(false, None, Some("buildkit.dockerfile.v0"), false),
                Some(Builder::BuildKit),
            ),
            (t(false, None, None, true), Some(Builder::BuildKit)),
            // A UBI base (built by buildah) under a BuildKit or kaniko build.
            (
                t(true, None, Some("buildkit.dockerfile.v0"), false),
                Some(Builder::BuildKit),
            ),
            (t(true, Some("kaniko"), None, false), Some(Builder::Kaniko)),
            // kaniko on a BuildKit-built base: its own last entry wins.
            (t(false, Some("kaniko"), None, true), Some(Builder::Kaniko)),
            (t(false, None, None, false), None),
            (t(false, Some("someone"), Some("made by hand"), false), None),
        ] {
            assert_eq!(Builder::detect(&traces), want, "{traces:?}");
        }
    }

    #[test]
    fn shows_the_builders_own_line_else_all_three() {
        assert_eq!(
            Builder::label_lines(Some(Builder::Kaniko)),
            "/kaniko/executor --label org.opencontainers.image.revision=$CI_COMMIT_SHA …"
        );
        let all = Builder::label_lines(None);
        for b in Builder::ALL {
            assert!(all.contains(&b.label_line()), "{all}");
        }
    }
}
