//! Where the per-architecture sources are: the target repository and tags, the platform list, the
//! source template (or a manifest-tool spec), the build jobs' digest hand-offs, and the revision
//! they must have been built from.

use super::table::{IMAGE, PLATFORMS, REVISION, SOURCE_TEMPLATE, TAGS};
use super::values::{list, Found, Inputs, Origin};
use super::{flag_only, refuse_with_spec};
use crate::error::{Error, SemverTag};
use crate::model::{Source, SourceOrigin, HAND_OFF_PREFIX};
use crate::platform::Platform;
use crate::reference::{self, Repository};
use crate::spec::Spec;

pub(crate) const DEFAULT_PLATFORMS: &str = "linux/amd64,linux/arm64";
pub(crate) const DEFAULT_TEMPLATE: &str = "{image}:{tag}-{arch}{variant}";

/// The most target tags (destinations × tags) one run publishes. Real pipelines publish a
/// handful — `semver` fans a release out to four tags, pushed to two or three registries — so no
/// real pipeline comes near 64; a list that long is a variable gone wrong (a file of tags, a
/// loop's output), which would send a PUT per entry and make a dotenv report that GitLab, which
/// caps a report at 5 KiB, refuses: at about 70 bytes a reference, 64 tags already fill it.
pub(crate) const MAX_TARGETS: usize = 64;

/// Destinations, tags, sources, (with a spec) the platforms to take from platform-less entries,
/// and (semver) a git tag the sources are not named by.
type Resolved = (
    Vec<Repository>,
    Vec<String>,
    Vec<Source>,
    Option<Vec<Platform>>,
    Option<SemverTag>,
);

/// Images, tags and sources from flags, variables and GitLab defaults.
pub(super) fn from_template(inputs: &Inputs) -> Result<Resolved, Error> {
    let images = images(inputs)?;
    let (tags, semver) = tags(inputs)?;
    let (platform_text, origin) = match inputs.get(&PLATFORMS) {
        Some(f) => (f.text, f.origin),
        None => (DEFAULT_PLATFORMS, Origin::Default),
    };
    let platforms = platforms(&origin, platform_text)?;
    let (template, origin) = match inputs.get(&SOURCE_TEMPLATE) {
        Some(f) => (f.text, f.origin),
        None => (DEFAULT_TEMPLATE, Origin::Default),
    };
    let sources = expand_sources(&origin, template, &images[0], &tags[0], &platforms)?;
    let semver = semver.filter(|_| template.contains("{tag}"));
    Ok((images, tags, sources, None, semver))
}

/// Image, tags and sources from a manifest-tool spec; `--image` and `--tags` flags beat it.
pub(super) fn from_spec(inputs: &Inputs, spec: &Spec) -> Result<Resolved, Error> {
    refuse_with_spec(inputs, spec)?;
    let images = match flag_only(inputs, &IMAGE) {
        Some(f) => repositories(&f)?,
        None => {
            inputs.record(IMAGE.flag, Origin::Spec(format!("{}: image", spec.origin)));
            spec.images.clone()
        }
    };
    let tags = match flag_only(inputs, &TAGS) {
        Some(f) => tag_list(&f)?,
        None => {
            inputs.record(TAGS.flag, Origin::Spec(format!("{}: tags", spec.origin)));
            spec.tags.clone()
        }
    };
    inputs.record(
        "sources",
        Origin::Spec(format!("{}: manifests", spec.origin)),
    );
    // With a spec, only the flag filters the children of platform-less entries: a project's
    // MULTIARCH_PLATFORMS is meant for its own template, not for someone's spec.
    let filter = match flag_only(inputs, &PLATFORMS) {
        Some(f) => Some(platforms(&f.origin, f.text)?),
        None => None,
    };
    Ok((images, tags, spec.sources.clone(), filter, None))
}

fn images(inputs: &Inputs) -> Result<Vec<Repository>, Error> {
    let f = inputs
        .get(&IMAGE)
        .or_else(|| inputs.gitlab("CI_REGISTRY_IMAGE"))
        .ok_or_else(|| Error::MissingSetting {
            setting: IMAGE.both(),
            hint: "outside GitLab (no CI_REGISTRY_IMAGE), name the repository, e.g. --image registry.example.com/group/app".into(),
        })?;
    inputs.record(IMAGE.flag, f.origin.clone());
    repositories(&f)
}

/// A comma-separated list of repositories, each once, at least one.
fn repositories(f: &Found) -> Result<Vec<Repository>, Error> {
    let mut out: Vec<Repository> = Vec::new();
    for text in list(f.text) {
        let r = Repository::parse(&f.origin.name(), text)?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(
            f.origin.name(),
            f.text,
            "no repository in the list",
            "for example registry.example.com/group/app",
        ));
    }
    Ok(out)
}

/// Target tags: flag/variable list, else `CI_COMMIT_TAG`, else `latest` on the default branch,
/// else `CI_COMMIT_REF_SLUG`; with semver, the git tag when its version (the first tag) is not it
/// (`v2.0.1`), for the hint about missing sources.
fn tags(inputs: &Inputs) -> Result<(Vec<String>, Option<SemverTag>), Error> {
    let given = inputs.get(&TAGS);
    let semver = given
        .as_ref()
        .is_some_and(|f| f.text.trim().eq_ignore_ascii_case("semver"));
    let found = match given {
        Some(f) if !semver => f,
        _ => {
            let branch = inputs.var("CI_COMMIT_BRANCH");
            if let Some(t) = inputs.gitlab("CI_COMMIT_TAG") {
                if semver {
                    let fanned = super::semver::fan_out(t.text);
                    let tags =
                        reference::tags(&t.origin.name(), fanned.iter().map(String::as_str))?;
                    inputs.record(TAGS.flag, t.origin);
                    let git_tag = t.text.trim();
                    let renamed = (tags[0] != git_tag).then(|| SemverTag {
                        git_tag: git_tag.to_string(),
                        version: tags[0].clone(),
                    });
                    return Ok((tags, renamed));
                }
                t
            } else if branch.is_some() && branch == inputs.var("CI_DEFAULT_BRANCH") {
                Found {
                    text: "latest",
                    origin: Origin::GitLab("CI_DEFAULT_BRANCH"),
                }
            } else if let Some(slug) = inputs.gitlab("CI_COMMIT_REF_SLUG") {
                slug
            } else {
                return Err(Error::MissingSetting {
                    setting: TAGS.both(),
                    hint:
                        "outside a GitLab pipeline, name the target tags, e.g. --tags latest,1.4.2 (semver needs CI_COMMIT_TAG)"
                            .into(),
                });
            }
        }
    };
    let tags = tag_list(&found).map_err(|e| match (e, &found.origin) {
        // A git tag or branch name is not always an image tag (`release/1.0`): say how to choose.
        (Error::InvalidSetting { setting, value, reason, .. }, Origin::GitLab(_)) => {
            Error::InvalidSetting {
                setting,
                value,
                reason,
                hint: "set MULTIARCH_TAGS to the image tags this pipeline publishes, e.g. MULTIARCH_TAGS=1.0 (or semver on a v1.4.2 tag)".into(),
            }
        }
        (e, _) => e,
    })?;
    inputs.record(TAGS.flag, found.origin);
    Ok((tags, None))
}

fn tag_list(f: &Found) -> Result<Vec<String>, Error> {
    let tags = reference::tags(&f.origin.name(), list(f.text))?;
    if tags.is_empty() {
        return Err(Error::invalid(
            f.origin.name(),
            f.text,
            "no tag in the list",
            "for example latest,1.4.2",
        ));
    }
    Ok(tags)
}

/// Refuses more than `MAX_TARGETS` target tags, naming the settings they came from.
pub(super) fn within_target_limit(
    inputs: &Inputs,
    images: usize,
    tags: &[String],
) -> Result<(), Error> {
    let targets = images * tags.len();
    if targets <= MAX_TARGETS {
        return Ok(());
    }
    let named = |key: &str| inputs.origin_of(key).map_or_else(String::new, |o| o.name());
    let (setting, reason) = if images > 1 {
        (
            format!("{} with {}", named("tags"), named("image")),
            format!(
                "{} tags for {images} images are {targets} target tags",
                tags.len()
            ),
        )
    } else {
        (named("tags"), format!("{targets} target tags"))
    };
    let shown = match tags {
        [a, b, c, _, ..] => format!("{a},{b},{c},…"),
        _ => tags.join(","),
    };
    Err(Error::invalid(
        setting,
        shown,
        format!("{reason}, more than the {MAX_TARGETS} one run publishes"),
        "list the tags this pipeline publishes (a handful: semver gives four); if that many are really meant, publish them from several jobs",
    ))
}

fn platforms(origin: &Origin, text: &str) -> Result<Vec<Platform>, Error> {
    let setting = origin_or(origin, &PLATFORMS);
    let mut out: Vec<Platform> = Vec::new();
    for item in list(text) {
        let p = Platform::parse(&setting, item)?;
        if out.iter().any(|have| have.matches(&p)) {
            return Err(Error::invalid(
                &setting,
                text,
                format!("{p} is listed twice"),
                "list each platform once, e.g. linux/amd64,linux/arm64",
            ));
        }
        out.push(p);
    }
    if out.is_empty() {
        return Err(Error::invalid(
            &setting,
            text,
            "no platform in the list",
            "for example linux/amd64,linux/arm64",
        ));
    }
    Ok(out)
}

/// The origin's name, or both names for a default.
fn origin_or(origin: &Origin, s: &super::table::Setting) -> String {
    match origin {
        Origin::Default => s.both(),
        o => o.name(),
    }
}

/// Expands the source template once per platform.
fn expand_sources(
    origin: &Origin,
    template: &str,
    image: &Repository,
    tag: &str,
    platforms: &[Platform],
) -> Result<Vec<Source>, Error> {
    let setting = origin_or(origin, &SOURCE_TEMPLATE);
    let mut out: Vec<Source> = Vec::new();
    for p in platforms {
        let text = expand(template, |name| match name {
            "image" => Some(image.to_string()),
            "tag" => Some(tag.to_string()),
            "os" => Some(p.os.clone()),
            "arch" => Some(p.architecture.clone()),
            "variant" => Some(p.variant_or_empty().to_string()),
            _ => None,
        })
        .map_err(|name| {
            Error::invalid(
                &setting,
                template,
                format!("unknown placeholder {{{name}}}"),
                "use {image} {tag} {os} {arch} {variant}, e.g. {image}:{tag}-{arch}{variant}",
            )
        })?;
        // Two platforms may name one reference: a multi-platform index gives each its child.
        let reference = reference::parse(&setting, &text).map_err(|e| {
            // A valid target tag can make a source tag past the 128 characters registries take.
            match text.rsplit_once(':').map(|(_, t)| t) {
                Some(t) if !t.contains('/') && t.len() > 128 => Error::invalid(
                    &setting,
                    template,
                    format!(
                        "the source tag {t} made from the target tag {tag} has {} characters; registries take at most 128",
                        t.len()
                    ),
                    "shorten the target tag (MULTIARCH_TAGS), or set MULTIARCH_SOURCE_TEMPLATE to a shorter source tag",
                ),
                _ => e,
            }
        })?;
        out.push(Source {
            platform: Some(p.clone()),
            reference,
            origin: SourceOrigin::Template,
            annotations: Default::default(),
            os_features: None,
            entry_variant: None,
        });
    }
    Ok(out)
}

/// Replaces `{name}` placeholders; an unknown name is returned as the error.
fn expand(template: &str, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or_else(|| after.to_string())?;
        let name = &after[..end];
        out.push_str(&value(name).ok_or_else(|| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Applies the build jobs' digest hand-off: `MULTIARCH_SOURCE_LINUX_ARM64=repo@sha256:…` makes
/// that digest the linux/arm64 source. A variable for a platform not in the list, or a value
/// without a digest, is refused: a silently ignored hand-off would publish a tag's image instead.
pub(super) fn hand_offs(inputs: &Inputs, sources: &mut [Source]) -> Result<(), Error> {
    for (name, value) in inputs.env {
        let Some(suffix) = name.strip_prefix(HAND_OFF_PREFIX) else {
            continue;
        };
        if suffix == "TEMPLATE" || value.trim().is_empty() {
            continue;
        }
        let listed = sources
            .iter()
            .filter_map(|s| s.platform.as_ref().map(ToString::to_string))
            .collect::<Vec<_>>()
            .join(",");
        let named = platform_of_suffix(suffix);
        let Some(source) = sources.iter_mut().find(|s| {
            s.platform.as_ref().is_some_and(|p| {
                p.env_suffix() == suffix || named.as_ref().is_some_and(|n| p.matches(n))
            })
        }) else {
            return Err(Error::invalid(
                name.as_str(),
                value.as_str(),
                format!("no platform in the list ({listed}) has the suffix {suffix}"),
                "a build job built a platform this job does not publish: list the same platforms in MULTIARCH_PLATFORMS and in the build component's `archs` input (or your build jobs), e.g. MULTIARCH_PLATFORMS=linux/amd64,linux/arm64 with archs [amd64, arm64]; the suffix is OS_ARCH[_VARIANT] in upper case, e.g. MULTIARCH_SOURCE_LINUX_ARM_V7",
            ));
        };
        let reference = reference::parse(name, value)?;
        if reference.digest().is_none() {
            return Err(Error::invalid(
                name.as_str(),
                value.as_str(),
                "it names no digest",
                "hand over the pushed image by digest, e.g. registry.example.com/group/app@sha256:<64 hex digits> (buildah push --digestfile, kaniko --digest-file)",
            ));
        }
        source.reference = reference;
        source.origin = SourceOrigin::HandOff(name.clone());
    }
    Ok(())
}

/// The platform a hand-off suffix names (`LINUX_ARM64`, `LINUX_ARM_V7`, `LINUX_ARM64_V8_2`), so a
/// build job that writes `LINUX_ARM` for `linux/arm` still matches `linux/arm/v7`.
fn platform_of_suffix(suffix: &str) -> Option<Platform> {
    let lower = suffix.to_ascii_lowercase();
    let mut parts = lower.split('_');
    let (os, arch) = (parts.next()?, parts.next()?);
    let variant = parts.collect::<Vec<_>>().join(".");
    (!os.is_empty() && !arch.is_empty())
        .then(|| Platform::normalised(os, arch, Some(&variant), None))
}

/// The revision sources must carry: the flag or `MULTIARCH_REVISION`, else `CI_COMMIT_SHA`;
/// `none` switches the check off.
pub(super) fn revision(inputs: &Inputs) -> Result<Option<String>, Error> {
    let Some(f) = inputs
        .get(&REVISION)
        .or_else(|| inputs.gitlab("CI_COMMIT_SHA"))
    else {
        return Ok(None);
    };
    inputs.record(REVISION.flag, f.origin.clone());
    let text = f.text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if text.len() > 256 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            f.origin.name(),
            text,
            "not a revision (at most 256 characters, no spaces)",
            "give the commit SHA the images were built from, or none to skip the check",
        ));
    }
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Given;
    use crate::settings::{resolve, Env};

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tags(n: usize) -> String {
        (0..n)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// 64 target tags are published; one more is refused before anything is asked of a registry,
    /// naming the settings, the count and the limit.
    #[test]
    fn more_target_tags_than_the_limit_exit_2() {
        let at_limit = tags(MAX_TARGETS);
        let vars = env(&[
            ("MULTIARCH_IMAGE", "r.example/app"),
            ("MULTIARCH_TAGS", &at_limit),
        ]);
        let (plan, _) = resolve(&Given::default(), &vars, None).unwrap();
        assert_eq!(plan.targets.len(), 64);

        let over = tags(MAX_TARGETS + 1);
        let vars = env(&[
            ("MULTIARCH_IMAGE", "r.example/app"),
            ("MULTIARCH_TAGS", &over),
        ]);
        let e = resolve(&Given::default(), &vars, None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string().lines().next().unwrap(),
            "MULTIARCH_TAGS = \"t0,t1,t2,…\" is invalid: 65 target tags, more than the 64 one run publishes"
        );

        // Destinations multiply: 3 × 22 = 66.
        let vars = env(&[
            ("MULTIARCH_IMAGE", "r.example/a,r.example/b,q.example/c"),
            ("MULTIARCH_TAGS", &tags(22)),
        ]);
        let (plan, _) = resolve(&Given::of(&[("tags", "x")]), &vars, None).unwrap();
        assert_eq!(plan.targets.len(), 3, "the flag beats the variable");
        let e = resolve(&Given::default(), &vars, None).unwrap_err();
        assert_eq!(
            e.to_string().lines().next().unwrap(),
            "MULTIARCH_TAGS with MULTIARCH_IMAGE = \"t0,t1,t2,…\" is invalid: 22 tags for 3 images are 66 target tags, more than the 64 one run publishes"
        );
    }
}
