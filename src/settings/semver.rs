//! `MULTIARCH_TAGS=semver`: a release tag fans out to the tags people pull by. `v1.4.2` publishes
//! `1.4.2`, `1.4`, `1` and `latest`; a pre-release (`1.5.0-rc.1`) only itself; a major 0
//! (`0.4.2`) gets no bare `0` (0.x releases may break anything); a tag that is not semver is
//! published as itself. The leading `v` is dropped, as image tags usually are. Pure.
//! Spec: <https://semver.org/#semantic-versioning-specification-semver>.

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

#[cfg(test)]
mod tests {
    use super::*;

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
