//! `MULTIARCH_TAGS=semver`: a release tag fans out to the tags people pull by. `v1.4.2` publishes
//! `1.4.2`, `1.4`, `1` and `latest`; a pre-release (`1.5.0-rc.1`) only itself; a major 0
//! (`0.4.2`) gets no bare `0` (0.x releases may break anything); a tag that is not semver is
//! published as itself. The leading `v` is dropped, as image tags usually are. Also: a version's
//! precedence, so a floating tag (`latest`, `1`, `1.4`) never moves to a lower release. Pure.
//! Spec: <https://semver.org/#semantic-versioning-specification-semver>.

use std::cmp::Ordering;
use std::sync::OnceLock;

use regex::Regex;

fn grammar() -> &'static Regex {
    static SEMVER: OnceLock<Regex> = OnceLock::new();
    SEMVER.get_or_init(|| {
        Regex::new(
            r"^[vV]?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$",
        )
        .expect("the semver grammar compiles")
    })
}

/// The tags a git tag fans out to; the first is the version itself (what `{tag}` means in the
/// source template, and what the build components push under).
pub(crate) fn fan_out(git_tag: &str) -> Vec<String> {
    let Some(c) = grammar().captures(git_tag.trim()) else {
        return vec![git_tag.trim().to_string()];
    };
    let (major, minor, patch) = (&c[1], &c[2], &c[3]);
    let version = format!("{major}.{minor}.{patch}");
    match (c.get(4), c.get(5)) {
        // Image tags cannot carry `+`: build metadata joins with `_`.
        (pre, Some(build)) => vec![format!(
            "{version}{}_{}",
            pre.map_or("", |p| p.as_str()),
            &build.as_str()[1..]
        )],
        (Some(pre), None) => vec![format!("{version}{}", pre.as_str())],
        (None, None) => {
            let mut tags = vec![version, format!("{major}.{minor}")];
            if major != "0" {
                tags.push(major.to_string());
            }
            tags.push("latest".to_string());
            tags
        }
    }
}

/// A semantic version, ordered by semver precedence (build metadata ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    core: [u64; 3],
    /// The pre-release identifiers (`rc`, `1`); empty for a release.
    pre: Vec<String>,
}

impl Version {
    /// `v1.4.2`, `1.5.0-rc.1`, `1.2.3+build.7`; `None` for anything else (`release-42`, `v1.4`).
    pub(crate) fn parse(text: &str) -> Option<Version> {
        let c = grammar().captures(text.trim())?;
        let n = |i: usize| c[i].parse::<u64>().ok();
        Some(Version {
            core: [n(1)?, n(2)?, n(3)?],
            pre: c
                .get(4)
                .map(|p| p.as_str()[1..].split('.').map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }
}

impl Ord for Version {
    /// <https://semver.org/#spec-item-11>: the numbers, then a pre-release below its release,
    /// identifiers compared one by one (numbers numerically and below words), more beats fewer.
    fn cmp(&self, other: &Self) -> Ordering {
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let order = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if order != Ordering::Equal {
                            return order;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_semver_precedence() {
        // The spec's own example chain, then ours.
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "v1.9.1",
            "1.10.0",
            "V2.0.1",
            "10.0.0",
        ];
        for pair in chain.windows(2) {
            let (a, b) = (
                Version::parse(pair[0]).unwrap(),
                Version::parse(pair[1]).unwrap(),
            );
            assert!(a < b, "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(
            Version::parse("v1.2.3+b7")
                .unwrap()
                .cmp(&Version::parse("1.2.3").unwrap()),
            Ordering::Equal
        );
        for other in ["release-42", "v1.4", "01.2.3", ""] {
            assert_eq!(Version::parse(other), None, "{other}");
        }
    }

    #[test]
    fn releases_fan_out_and_pre_releases_do_not() {
        for (tag, want) in [
            ("v1.4.2", &["1.4.2", "1.4", "1", "latest"][..]),
            ("1.4.2", &["1.4.2", "1.4", "1", "latest"]),
            ("V10.0.0", &["10.0.0", "10.0", "10", "latest"]),
            ("v0.4.2", &["0.4.2", "0.4", "latest"]),
            ("1.5.0-rc.1", &["1.5.0-rc.1"]),
            ("v2.0.0-beta", &["2.0.0-beta"]),
            ("1.2.3+build.7", &["1.2.3_build.7"]),
            ("1.2.3-rc.1+b7", &["1.2.3-rc.1_b7"]),
            ("release-42", &["release-42"]),
            ("v1.4", &["v1.4"]),
            ("01.2.3", &["01.2.3"]),
        ] {
            assert_eq!(fan_out(tag), want, "{tag}");
        }
    }
}
