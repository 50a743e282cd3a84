//! How the check of one image reads: the verdict a walk came to, with the file, how it was found
//! and the machine; layer names and sizes as users count them. Pure.

use super::machine::{self, Judgement};
use super::resolve::{Finding, Step};
use super::walk::Walked;
use crate::content_check::Verdict;

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
