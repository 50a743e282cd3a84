//! What the check of one image found, as data that crosses layers (into `SourceImage`, `plan`,
//! `inspect`, the error), and how it reads: the file, how it was found, the machine. Pure.

use super::machine::{self, Judgement};
use super::resolve::{Finding, Step};
use super::walk::Walked;

/// The check of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub(crate) verdict: Verdict,
    /// Layers opened, and their bytes downloaded.
    pub(crate) layers_read: usize,
    pub(crate) bytes_read: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `MULTIARCH_CONTENT_CHECK=off`.
    Off,
    /// The file is machine code of the image's platform.
    Matched {
        file: String,
        machine: String,
        trail: String,
    },
    /// The file is machine code of another platform.
    Mismatch {
        file: String,
        /// `ELF 64-bit LSB x86-64`.
        found: String,
        /// `linux/amd64`, when known.
        found_platform: Option<String>,
        trail: String,
    },
    /// Not judged: why, and whether the user should look (`warn`: not found, over budget,
    /// unreadable) or not (no entrypoint, a jar, a platform without known machine code).
    NotChecked { reason: String, warn: bool },
}

impl Checked {
    pub(crate) fn unread(verdict: Verdict) -> Checked {
        Checked {
            verdict,
            layers_read: 0,
            bytes_read: 0,
        }
    }

    /// One line for `plan` and `inspect`.
    pub(crate) fn summary(&self) -> String {
        match &self.verdict {
            Verdict::Off => "not checked (MULTIARCH_CONTENT_CHECK=off)".into(),
            Verdict::Matched { file, machine, .. } => format!("{file}: {machine}, matches"),
            Verdict::Mismatch {
                file,
                found,
                found_platform,
                ..
            } => format!(
                "{file}: {found}{}, DOES NOT MATCH",
                found_platform
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            ),
            Verdict::NotChecked { reason, .. } => format!("not checked: {reason}"),
        }
    }
}

/// Names layer `i` (top first) of `digests` (manifest order) as users count them.
pub(crate) fn layer_name(i: usize, digests: &[String]) -> String {
    let n = digests.len();
    let at = n - i;
    let digest = &digests[at - 1];
    let short = digest.get(..19).unwrap_or(digest);
    format!("layer {at}/{n} ({short}…)")
}

/// The verdict a walk came to; `budget` is shown when it was spent.
pub(crate) fn from_walk(
    walked: Walked,
    digests: &[String],
    budget: u64,
    platform: &str,
) -> Verdict {
    match walked {
        Walked::Found(Finding::Judged {
            file,
            steps,
            judgement,
        }) => {
            let trail = trail(&steps, &file.path, &layer_name(file.layer, digests), digests);
            match judgement {
                Judgement::Matches => Verdict::Matched {
                    machine: machine::describe(&file.head),
                    file: file.path,
                    trail,
                },
                Judgement::Differs { found, platform } => Verdict::Mismatch {
                    file: file.path,
                    found,
                    found_platform: platform,
                    trail,
                },
                Judgement::Unjudged(why) => Verdict::NotChecked {
                    reason: format!("{} is {why} (found: {trail})", file.path),
                    warn: false,
                },
            }
        }
        Walked::Found(Finding::Missing { what, steps }) => Verdict::NotChecked {
            reason: format!(
                "the program was not found: {what} (looked for: {})",
                steps.iter().map(|s| step(s, digests)).collect::<Vec<_>>().join(" → ")
            ),
            warn: true,
        },
        Walked::Found(Finding::Loop { path }) => Verdict::NotChecked {
            reason: format!("{path} has more than 40 symbolic links in a row (a loop)"),
            warn: true,
        },
        Walked::Hidden { layer, path } => Verdict::NotChecked {
            reason: format!(
                "{path} may be in {}, which is foreign, nondistributable or of a media type multiarch does not read",
                layer_name(layer, digests)
            ),
            warn: true,
        },
        Walked::OverBudget => Verdict::NotChecked {
            reason: format!(
                "the program was not found within MULTIARCH_CONTENT_BUDGET ({}) of {platform} layers; raise it to check this image",
                size(budget)
            ),
            warn: true,
        },
        Walked::Unreadable { layer, why } => Verdict::NotChecked {
            reason: format!("{} could not be read ({why})", layer_name(layer, digests)),
            warn: true,
        },
    }
}

/// `entrypoint "app" → PATH /usr/local/bin/app → symlink … → /opt/app/bin/app in layer 1/3`.
fn trail(steps: &[Step], file: &str, layer: &str, digests: &[String]) -> String {
    let mut parts: Vec<String> = steps.iter().map(|s| step(s, digests)).collect();
    parts.push(format!("{file} in {layer}"));
    parts.join(" → ")
}

fn step(s: &Step, digests: &[String]) -> String {
    match s {
        Step::Start(what) => what.clone(),
        Step::Path(p) => format!("PATH {p}"),
        Step::Symlink { from, to, layer } => {
            format!("symlink {from} to {to} in {}", layer_name(*layer, digests))
        }
        Step::Hardlink { from, to } => format!("hard link {from} to {to}"),
        Step::Script { path, line } => format!("script {path} #!{line}"),
        Step::Env(name) => format!("env {name:?}"),
    }
}

/// `256MiB`, `1.5GiB`, `512KiB`, `100B`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, n) in UNITS {
        if bytes >= n {
            let whole = bytes / n;
            let tenth = (bytes % n) * 10 / n;
            return if tenth == 0 {
                format!("{whole}{unit}")
            } else {
                format!("{whole}.{tenth}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_setting() {
        assert_eq!(size(256 << 20), "256MiB");
        assert_eq!(size(3 << 29), "1.5GiB");
        assert_eq!(size(100), "100B");
    }

    #[test]
    fn layers_are_counted_from_the_bottom_as_manifests_list_them() {
        let digests: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|c| format!("sha256:{}", c.repeat(64)))
            .collect();
        assert_eq!(layer_name(0, &digests), "layer 3/3 (sha256:cccccccccccc…)");
        assert_eq!(layer_name(2, &digests), "layer 1/3 (sha256:aaaaaaaaaaaa…)");
    }
}
