//! How the check of one image reads: the verdict a walk came to, with the file, how it was found
//! and the machine; layer names and sizes as users count them. Pure.

use super::machine::{self, Judgement};
use super::resolve::{Finding, Step, MAX_LINKS};
use super::walk::{Limit, Limits, Walked};
use crate::content_check::Verdict;
use crate::text::escaped;

/// What a verdict's words need besides the walk.
pub(crate) struct Context<'a> {
    /// The image's layer digests, in manifest order.
    pub(crate) digests: &'a [String],
    /// `MULTIARCH_CONTENT_BUDGET`, and the bounds derived from it.
    pub(crate) budget: u64,
    pub(crate) limits: Limits,
    /// `linux/arm64`.
    pub(crate) platform: String,
    /// `entrypoint "app"`.
    pub(crate) program: String,
}

/// Names layer `i` (top first) of `digests` (manifest order) as users count them.
pub(crate) fn layer_name(i: usize, digests: &[String]) -> String {
    let n = digests.len();
    let at = n - i;
    let digest = &digests[at - 1];
    let short = digest.get(..19).unwrap_or(digest);
    format!("layer {at}/{n} ({short}…)")
}

/// The verdict a walk came to, its text shown safely: file names, entrypoints and `#!` lines are
/// the image's, so their control characters are escaped (no forged log line, no colour, no
/// GitLab section closed by a file name).
pub(crate) fn from_walk(walked: Walked, cx: &Context) -> Verdict {
    let e = |t: &str| escaped(t);
    match composed(walked, cx) {
        Verdict::Off => Verdict::Off,
        Verdict::Matched {
            file,
            machine,
            trail,
        } => Verdict::Matched {
            file: e(&file),
            machine,
            trail: e(&trail),
        },
        Verdict::Mismatch {
            file,
            found,
            found_platform,
            trail,
        } => Verdict::Mismatch {
            file: e(&file),
            found,
            found_platform,
            trail: e(&trail),
        },
        Verdict::NotChecked { reason, warn } => Verdict::NotChecked {
            reason: e(&reason),
            warn,
        },
    }
}

fn composed(walked: Walked, cx: &Context) -> Verdict {
    let digests = cx.digests;
    match walked {
        Walked::Found(Finding::Judged {
            file,
            steps,
            judgement,
        }) => {
            let trail = trail(&steps, &file.path, &layer_name(file.layer, digests), digests);
            // A carriage return after the interpreter's name lands in its argument (`-e\r`):
            // the interpreter is there, but the script still fails when it starts.
            if !matches!(judgement, Judgement::Differs { .. })
                && carriage_return(&steps) == Some(InLine::Argument)
            {
                return Verdict::NotChecked {
                    reason: format!(
                        "{} passes its interpreter an argument ending in a carriage return: its #! line was saved with Windows line endings, so the interpreter gets `…\\r` and fails when the container starts; save it with Unix line endings (dos2unix, or `*.sh text eol=lf` in .gitattributes) (found: {trail})",
                        script_path(&steps),
                    ),
                    warn: true,
                };
            }
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
                "the program was not found: {what} (looked for: {}){}",
                looked_for(&steps, digests),
                crlf(&steps)
            ),
            warn: true,
        },
        Walked::Found(Finding::Loop { path, steps }) => Verdict::NotChecked {
            reason: format!(
                "the program was not found: more than {MAX_LINKS} symbolic links in a row, a loop, the last at {path} (looked for: {})",
                looked_for(&steps, digests)
            ),
            warn: true,
        },
        Walked::Hidden { layer, path } => Verdict::NotChecked {
            reason: format!(
                "{path} may be in {}, which is foreign, nondistributable or of a media type multiarch does not read",
                layer_name(layer, digests)
            ),
            warn: true,
        },
        Walked::OverBudget {
            layer,
            limit,
            waiting,
        } => Verdict::NotChecked {
            reason: over(limit, &layer_name(layer, digests), &waiting, cx),
            warn: true,
        },
        Walked::Unreadable { layer, why } => Verdict::NotChecked {
            reason: format!("{} could not be read ({why})", layer_name(layer, digests)),
            warn: true,
        },
    }
}

/// Where a carriage return at the end of a `#!` line lands, split as the kernel splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InLine {
    /// In the interpreter's name (`#!/bin/sh\r`).
    Name,
    /// In the argument after it (`#!/bin/sh -e\r`).
    Argument,
}

fn carriage_return(steps: &[Step]) -> Option<InLine> {
    steps.iter().find_map(|s| match s {
        Step::Script { line, .. } if line.ends_with('\r') => {
            let words = line.split(machine::BLANK).filter(|w| !w.is_empty()).count();
            Some(if words > 1 {
                InLine::Argument
            } else {
                InLine::Name
            })
        }
        _ => None,
    })
}

/// What an interpreter not found means when its name ends in a carriage return: the script was
/// saved with Windows line endings, and the kernel looks for a name ending in `\r`.
fn crlf(steps: &[Step]) -> &'static str {
    match carriage_return(steps) {
        Some(InLine::Name) => "; the script's #! line ends in a carriage return (saved with Windows line endings): the container fails with \"no such file or directory\"; save it with Unix line endings (dos2unix, or `*.sh text eol=lf` in .gitattributes)",
        _ => "",
    }
}

/// The script whose `#!` line the steps read.
fn script_path(steps: &[Step]) -> &str {
    steps
        .iter()
        .find_map(|s| match s {
            Step::Script { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .unwrap_or("the script")
}

/// Why a bound ended the walk in `layer`, waiting for `waiting`.
fn over(limit: Limit, layer: &str, waiting: &str, cx: &Context) -> String {
    let budget = size(cx.budget);
    let looking = format!("while looking for {waiting} ({})", cx.program);
    match limit {
        Limit::Download => format!(
            "the program was not found within MULTIARCH_CONTENT_BUDGET ({budget}) of {} layers downloaded: it ran out in {layer} {looking}; raise it to check this image",
            cx.platform
        ),
        Limit::Expanded => format!(
            "the program was not found: {layer} expands past the decompressed limit of {} ({}× MULTIARCH_CONTENT_BUDGET {budget}, a bound apart from the download budget) {looking}; a layer that large is broken or hostile — if it is genuine, raise MULTIARCH_CONTENT_BUDGET",
            size(cx.limits.expanded),
            cx.limits.expanded / cx.budget.max(1)
        ),
        Limit::Entries => format!(
            "the program was not found: {layer} takes the image past {} archive entries, the most read per image, {looking}",
            cx.limits.entries
        ),
    }
}

/// The steps of a lookup that found nothing; a long one (a chain of links) shortened to its
/// start and its end.
fn looked_for(steps: &[Step], digests: &[String]) -> String {
    const HEAD: usize = 4;
    const TAIL: usize = 2;
    let parts: Vec<String> = steps.iter().map(|s| step(s, digests)).collect();
    if parts.len() <= HEAD + TAIL + 1 {
        return parts.join(" → ");
    }
    let mut out = parts[..HEAD].to_vec();
    out.push(format!("… {} more …", parts.len() - HEAD - TAIL));
    out.extend_from_slice(&parts[parts.len() - TAIL..]);
    out.join(" → ")
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
        Step::WorkingDir(p) => format!("working directory {p}"),
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
    use super::super::resolve::Located;
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

    fn context(digests: &[String]) -> Context<'_> {
        Context {
            digests,
            budget: 256 << 20,
            limits: Limits {
                expanded: 2 << 30,
                entries: 1_000_000,
            },
            platform: "linux/arm64".into(),
            program: "entrypoint \"/srv/app\"".into(),
        }
    }

    #[test]
    fn a_bound_reached_names_the_path_the_layer_and_which_bound() {
        let digests = vec![
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        ];
        let cx = context(&digests);
        let reason = |limit| match from_walk(
            Walked::OverBudget {
                layer: 0,
                limit,
                waiting: "/srv".into(),
            },
            &cx,
        ) {
            Verdict::NotChecked { reason, warn: true } => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            reason(Limit::Download),
            "the program was not found within MULTIARCH_CONTENT_BUDGET (256MiB) of linux/arm64 layers downloaded: it ran out in layer 2/2 (sha256:bbbbbbbbbbbb…) while looking for /srv (entrypoint \"/srv/app\"); raise it to check this image"
        );
        assert_eq!(
            reason(Limit::Expanded),
            "the program was not found: layer 2/2 (sha256:bbbbbbbbbbbb…) expands past the decompressed limit of 2GiB (8× MULTIARCH_CONTENT_BUDGET 256MiB, a bound apart from the download budget) while looking for /srv (entrypoint \"/srv/app\"); a layer that large is broken or hostile — if it is genuine, raise MULTIARCH_CONTENT_BUDGET"
        );
        assert!(reason(Limit::Entries).contains("past 1000000 archive entries"));
    }

    /// A walk that found `path` (64-bit little-endian ELF of `machine`) by the entrypoint, through
    /// a script `/run.sh` whose `#!` line is `line` when one is given.
    fn found(path: &str, machine: u16, line: Option<&str>, judgement: Judgement) -> Walked {
        let mut steps = vec![Step::Start("entrypoint \"/run.sh\"".into())];
        if let Some(line) = line {
            steps.push(Step::Script {
                path: "/run.sh".into(),
                line: line.into(),
            });
        }
        Walked::Found(Finding::Judged {
            file: Located {
                path: path.into(),
                layer: 0,
                mode: 0o755,
                head: machine::Head::Elf(machine::Elf {
                    bits64: true,
                    little: true,
                    machine,
                }),
            },
            steps,
            judgement,
        })
    }

    #[test]
    fn a_windows_line_ending_is_named_and_the_images_control_characters_are_escaped() {
        let digests = vec![format!("sha256:{}", "a".repeat(64))];
        let steps = vec![
            Step::Start("entrypoint \"/run.sh\"".into()),
            Step::Script {
                path: "/run.sh".into(),
                line: "/bin/sh\r".into(),
            },
        ];
        let Verdict::NotChecked { reason, warn: true } = from_walk(
            Walked::Found(Finding::Missing {
                what: "/bin/sh\r".into(),
                steps,
            }),
            &context(&digests),
        ) else {
            panic!()
        };
        assert!(!reason.contains('\r'), "{reason}");
        assert!(
            reason.starts_with("the program was not found: /bin/sh\\r (looked for: entrypoint \"/run.sh\" → script /run.sh #!/bin/sh\\r); the script's #! line ends in a carriage return (saved with Windows line endings): the container fails with \"no such file or directory\""),
            "{reason}"
        );
        let Verdict::Mismatch { file, trail, .. } = from_walk(
            found(
                "/app\n\u{1b}[31m",
                62,
                None,
                Judgement::Differs {
                    found: "ELF 64-bit LSB x86-64".into(),
                    platform: Some("linux/amd64".into()),
                },
            ),
            &context(&digests),
        ) else {
            panic!()
        };
        assert_eq!(file, "/app\\n\\u{1b}[31m");
        assert!(!trail.chars().any(char::is_control), "{trail}");

        // A carriage return in the interpreter's argument: found and of this machine, but the
        // script fails all the same: a warning.
        let Verdict::NotChecked { reason, warn: true } = from_walk(
            found("/bin/sh", 183, Some("/bin/sh -e\r"), Judgement::Matches),
            &context(&digests),
        ) else {
            panic!()
        };
        assert!(
            reason.starts_with("/run.sh passes its interpreter an argument ending in a carriage return: its #! line was saved with Windows line endings"),
            "{reason}"
        );

        // An image that holds an interpreter named with the carriage return runs the script:
        // judged as found, no warning.
        let judged = from_walk(
            found("/bin/sh\r", 183, Some("/bin/sh\r"), Judgement::Matches),
            &context(&digests),
        );
        assert!(matches!(judged, Verdict::Matched { .. }), "{judged:?}");
    }

    #[test]
    fn a_loop_names_the_entrypoint_and_a_shortened_way() {
        let digests = vec![format!("sha256:{}", "a".repeat(64))];
        let mut steps = vec![Step::Start("entrypoint \"/l0\"".into())];
        steps.extend((0..41).map(|i| Step::Symlink {
            from: format!("/l{i}"),
            to: format!("l{}", i + 1),
            layer: 0,
        }));
        let Verdict::NotChecked { reason, warn: true } = from_walk(
            Walked::Found(Finding::Loop {
                path: "/l40".into(),
                steps,
            }),
            &context(&digests),
        ) else {
            panic!()
        };
        assert!(
            reason.starts_with("the program was not found: more than 40 symbolic links in a row, a loop, the last at /l40 (looked for: entrypoint \"/l0\" → symlink /l0 to l1 in layer 1/1 (sha256:aaaaaaaaaaaa…) → "),
            "{reason}"
        );
        assert!(
            reason.contains(" → … 36 more … → symlink /l39 to l40"),
            "{reason}"
        );
    }
}
