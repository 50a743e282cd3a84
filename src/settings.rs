//! Settings resolution: flags + environment (+ GitLab predefined variables) → a validated `Plan`.
//!
//! The order is the contract of DESIGN.md: a flag beats its `MULTIARCH_*` variable, which beats
//! the GitLab default. An empty variable counts as unset (GitLab passes empty component inputs as
//! empty strings). Pure: the environment arrives as a map; nothing here reads the process
//! environment, the filesystem or the clock. Every problem is an exit-2 error naming the setting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::PushArgs;
use crate::error::Error;
use crate::index::Format;
use crate::platform::Platform;
use crate::reference::{self, Reference, Repository};
use crate::spec::Spec;

/// A snapshot of the process environment.
pub type Env = BTreeMap<String, String>;

pub const DEFAULT_PLATFORMS: &str = "linux/amd64,linux/arm64";
pub const DEFAULT_TEMPLATE: &str = "{image}:{tag}-{arch}{variant}";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
pub const GITLAB_DOTENV: &str = "multiarch.env";

/// Where a setting's value came from, for the debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Spec,
    Variable(&'static str),
    GitLab(&'static str),
    Default,
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// One per-architecture source: the platform promised and where to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub platform: Platform,
    pub reference: Reference,
    pub origin: SourceOrigin,
}

/// Where a source's reference came from (shown by `plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceOrigin {
    /// The source template (a per-architecture tag).
    Template,
    /// An entry of the manifest-tool spec.
    Spec,
    /// A build job's digest hand-off, `MULTIARCH_SOURCE_<OS>_<ARCH>[_<VARIANT>]`: exact, no waiting.
    HandOff(String),
}

impl SourceOrigin {
    /// True for a digest handed over by a build job: it exists already, or never will.
    pub fn is_hand_off(&self) -> bool {
        matches!(self, SourceOrigin::HandOff(_))
    }
}

/// The prefix of the digest hand-off variables; `MULTIARCH_SOURCE_TEMPLATE` is a setting.
pub const HAND_OFF_PREFIX: &str = "MULTIARCH_SOURCE_";

/// Everything a push or plan needs, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub image: Repository,
    pub tags: Vec<String>,
    pub sources: Vec<Source>,
    pub targets: Vec<Reference>,
    pub timeout: Duration,
    pub allow_missing: bool,
    pub format: Format,
    pub annotations: BTreeMap<String, String>,
    pub dotenv: Option<PathBuf>,
    pub output: Output,
    /// Running inside a GitLab job (`GITLAB_CI=true`): collapsible log sections.
    pub gitlab: bool,
    pub dry_run: bool,
    /// The revision sources must carry (`org.opencontainers.image.revision`); `None` = no check.
    pub revision: Option<String>,
    /// Unlabelled sources are stale rather than accepted with a warning.
    pub require_revision: bool,
    pub access: Access,
    /// Where each setting came from, for `debug` logs.
    pub origins: Vec<(&'static str, Origin)>,
}

/// Looks up a variable; empty means unset.
fn var<'a>(env: &'a Env, name: &str) -> Option<&'a str> {
    env.get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// A flag, else its variable: the value and where it came from.
fn pick<'a>(
    flag: Option<&'a str>,
    env: &'a Env,
    variable: &'static str,
) -> Option<(&'a str, Origin)> {
    match flag.filter(|f| !f.trim().is_empty()) {
        Some(f) => Some((f, Origin::Flag)),
        None => var(env, variable).map(|v| (v, Origin::Variable(variable))),
    }
}

fn parse_bool(setting: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(
            setting,
            value,
            "not a boolean",
            "use true or false",
        )),
    }
}

/// A boolean flag (present = true), else its variable.
fn flag_or_var(flag: bool, env: &Env, variable: &'static str) -> Result<(bool, Origin), Error> {
    if flag {
        return Ok((true, Origin::Flag));
    }
    match var(env, variable) {
        Some(v) => Ok((parse_bool(variable, v)?, Origin::Variable(variable))),
        None => Ok((false, Origin::Default)),
    }
}

/// Splits a comma (or newline) separated list, dropping blanks.
fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Resolves `push`/`plan` settings.
pub fn resolve(args: &PushArgs, env: &Env) -> Result<Plan, Error> {
    resolve_with(args, env, None)
}

/// Resolves `push`/`plan` settings; with a manifest-tool `spec`, the image, tags and sources come
/// from it instead of `--image`, `--tags`, `--platforms` and `--source-template`.
pub fn resolve_with(args: &PushArgs, env: &Env, spec: Option<&Spec>) -> Result<Plan, Error> {
    let mut origins = Vec::new();
    let (image, tags, mut sources) = match spec {
        Some(spec) => {
            origins.push(("image, tags, sources", Origin::Spec));
            (spec.image.clone(), spec.tags.clone(), spec.sources.clone())
        }
        None => from_template(args, env, &mut origins)?,
    };
    hand_offs(env, &mut sources)?;
    check_same_repository(&image, &sources)?;
    let (revision, origin) = revision(args, env)?;
    origins.push(("revision", origin));
    let (require_revision, origin) =
        flag_or_var(args.require_revision, env, "MULTIARCH_REQUIRE_REVISION")?;
    origins.push(("require-revision", origin));

    let (timeout, origin) = match pick(args.timeout.as_deref(), env, "MULTIARCH_TIMEOUT") {
        Some((t, o)) => (parse_duration("--timeout / MULTIARCH_TIMEOUT", t)?, o),
        None => (DEFAULT_TIMEOUT, Origin::Default),
    };
    origins.push(("timeout", origin));

    let (allow_missing, origin) = flag_or_var(args.allow_missing, env, "MULTIARCH_ALLOW_MISSING")?;
    origins.push(("allow-missing", origin));

    let (format, origin) = match pick(args.format.as_deref(), env, "MULTIARCH_FORMAT") {
        Some((f, o)) => (parse_format(f)?, o),
        None => (Format::Auto, Origin::Default),
    };
    origins.push(("format", origin));

    let annotations = annotations(args, env, revision.as_deref())?;

    let gitlab = var(env, "GITLAB_CI") == Some("true");
    let dotenv = match (&args.dotenv, var(env, "MULTIARCH_DOTENV")) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(v)) => Some(PathBuf::from(v)),
        (None, None) if gitlab => Some(PathBuf::from(GITLAB_DOTENV)),
        (None, None) => None,
    };

    let output = match pick(args.output.as_deref(), env, "MULTIARCH_OUTPUT") {
        None => Output::Text,
        Some((o, _)) => match o.trim().to_ascii_lowercase().as_str() {
            "text" => Output::Text,
            "json" => Output::Json,
            _ => {
                return Err(Error::invalid(
                    "--output / MULTIARCH_OUTPUT",
                    o,
                    "unknown output",
                    "use text or json",
                ))
            }
        },
    };
    let (dry_run, _) = flag_or_var(args.dry_run, env, "MULTIARCH_DRY_RUN")?;

    let targets = tags.iter().map(|t| image.tag(t)).collect();
    Ok(Plan {
        image,
        tags,
        sources,
        targets,
        timeout,
        allow_missing,
        format,
        annotations,
        dotenv,
        output,
        gitlab,
        dry_run,
        revision,
        require_revision,
        access: access(&args.access, env)?,
        origins,
    })
}

/// Image, tags and sources from flags, variables and GitLab defaults.
fn from_template(
    args: &PushArgs,
    env: &Env,
    origins: &mut Vec<(&'static str, Origin)>,
) -> Result<(Repository, Vec<String>, Vec<Source>), Error> {
    let (image_text, origin) = pick(args.image.as_deref(), env, "MULTIARCH_IMAGE")
        .or_else(|| var(env, "CI_REGISTRY_IMAGE").map(|v| (v, Origin::GitLab("CI_REGISTRY_IMAGE"))))
        .ok_or_else(|| Error::MissingSetting {
            setting: "--image / MULTIARCH_IMAGE".into(),
            hint: "outside GitLab (no CI_REGISTRY_IMAGE), name the repository, e.g. --image registry.example.com/group/app".into(),
        })?;
    let image = Repository::parse("--image / MULTIARCH_IMAGE", image_text)?;
    origins.push(("image", origin));

    let (tags, origin) = tags(args, env)?;
    origins.push(("tags", origin));

    let (platform_text, origin) = pick(args.platforms.as_deref(), env, "MULTIARCH_PLATFORMS")
        .unwrap_or((DEFAULT_PLATFORMS, Origin::Default));
    let platforms = platforms(platform_text)?;
    origins.push(("platforms", origin));

    let (template, origin) = pick(
        args.source_template.as_deref(),
        env,
        "MULTIARCH_SOURCE_TEMPLATE",
    )
    .unwrap_or((DEFAULT_TEMPLATE, Origin::Default));
    origins.push(("source-template", origin));
    let sources = sources(template, &image, &tags[0], &platforms)?;
    Ok((image, tags, sources))
}

/// An index may only reference manifests of its own repository: registries (distribution, ECR,
/// GitLab) refuse the push otherwise (`MANIFEST_BLOB_UNKNOWN`). Say so before any work.
fn check_same_repository(image: &Repository, sources: &[Source]) -> Result<(), Error> {
    match sources.iter().find(|s| reference::repository_of(&s.reference) != *image) {
        None => Ok(()),
        Some(s) => Err(Error::invalid(
            "sources",
            s.reference.to_string(),
            format!("it is not in {image}, the repository the index is pushed to; an index can only reference manifests of its own repository"),
            format!("push the per-architecture images to {image} (e.g. {image}:latest-amd64), or publish to their repository"),
        )),
    }
}

/// Target tags: flag/variable list, else `CI_COMMIT_TAG`, else `latest` on the default branch,
/// else `CI_COMMIT_REF_SLUG`.
fn tags(args: &PushArgs, env: &Env) -> Result<(Vec<String>, Origin), Error> {
    let (text, origin) = match pick(args.tags.as_deref(), env, "MULTIARCH_TAGS") {
        Some(found) => found,
        None => {
            if let Some(t) = var(env, "CI_COMMIT_TAG") {
                (t, Origin::GitLab("CI_COMMIT_TAG"))
            } else if var(env, "CI_COMMIT_BRANCH").is_some()
                && var(env, "CI_COMMIT_BRANCH") == var(env, "CI_DEFAULT_BRANCH")
            {
                ("latest", Origin::GitLab("CI_DEFAULT_BRANCH"))
            } else if let Some(slug) = var(env, "CI_COMMIT_REF_SLUG") {
                (slug, Origin::GitLab("CI_COMMIT_REF_SLUG"))
            } else {
                return Err(Error::MissingSetting {
                    setting: "--tags / MULTIARCH_TAGS".into(),
                    hint:
                        "outside a GitLab pipeline, name the target tags, e.g. --tags latest,1.4.2"
                            .into(),
                });
            }
        }
    };
    let tags = reference::tags("--tags / MULTIARCH_TAGS", list(text))?;
    if tags.is_empty() {
        return Err(Error::invalid(
            "--tags / MULTIARCH_TAGS",
            text,
            "no tag in the list",
            "for example latest,1.4.2",
        ));
    }
    Ok((tags, origin))
}

fn platforms(text: &str) -> Result<Vec<Platform>, Error> {
    let setting = "--platforms / MULTIARCH_PLATFORMS";
    let mut out: Vec<Platform> = Vec::new();
    for item in list(text) {
        let p = Platform::parse(setting, item)?;
        if out.iter().any(|have| have.matches(&p)) {
            return Err(Error::invalid(
                setting,
                text,
                format!("{p} is listed twice"),
                "list each platform once, e.g. linux/amd64,linux/arm64",
            ));
        }
        out.push(p);
    }
    if out.is_empty() {
        return Err(Error::invalid(
            setting,
            text,
            "no platform in the list",
            "for example linux/amd64,linux/arm64",
        ));
    }
    Ok(out)
}

/// Expands the source template once per platform; each result must be a distinct reference.
fn sources(
    template: &str,
    image: &Repository,
    tag: &str,
    platforms: &[Platform],
) -> Result<Vec<Source>, Error> {
    let setting = "--source-template / MULTIARCH_SOURCE_TEMPLATE";
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
                setting,
                template,
                format!("unknown placeholder {{{name}}}"),
                "use {image} {tag} {os} {arch} {variant}, e.g. {image}:{tag}-{arch}{variant}",
            )
        })?;
        let reference = reference::parse(setting, &text)?;
        if let Some(other) = out.iter().find(|s| s.reference == reference) {
            return Err(Error::invalid(
                setting,
                template,
                format!("{} and {p} both expand to {text}", other.platform),
                "include {arch} (and {variant}) in the template",
            ));
        }
        out.push(Source {
            platform: p.clone(),
            reference,
            origin: SourceOrigin::Template,
        });
    }
    Ok(out)
}

/// Applies the build jobs' digest hand-off: `MULTIARCH_SOURCE_LINUX_ARM64=repo@sha256:…` makes
/// that digest the linux/arm64 source. A variable for a platform not in the list, or a value
/// without a digest, is refused: a silently ignored hand-off would publish a tag's image instead.
fn hand_offs(env: &Env, sources: &mut [Source]) -> Result<(), Error> {
    for (name, value) in env {
        let Some(suffix) = name.strip_prefix(HAND_OFF_PREFIX) else {
            continue;
        };
        if suffix == "TEMPLATE" || value.trim().is_empty() {
            continue;
        }
        let listed = sources
            .iter()
            .map(|s| s.platform.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let named = platform_of_suffix(suffix);
        let Some(source) = sources.iter_mut().find(|s| {
            s.platform.env_suffix() == suffix
                || named.as_ref().is_some_and(|p| s.platform.matches(p))
        }) else {
            return Err(Error::invalid(
                name.as_str(),
                value.as_str(),
                format!("no platform in the list ({listed}) has the suffix {suffix}"),
                "add the platform to MULTIARCH_PLATFORMS (the suffix is OS_ARCH[_VARIANT] in upper case, e.g. MULTIARCH_SOURCE_LINUX_ARM_V7), or do not hand this build over to this job",
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
fn revision(args: &PushArgs, env: &Env) -> Result<(Option<String>, Origin), Error> {
    let (text, origin) = match pick(args.revision.as_deref(), env, "MULTIARCH_REVISION") {
        Some(found) => found,
        None => match var(env, "CI_COMMIT_SHA") {
            Some(sha) => (sha, Origin::GitLab("CI_COMMIT_SHA")),
            None => return Ok((None, Origin::Default)),
        },
    };
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok((None, origin));
    }
    if text.len() > 256 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "--revision / MULTIARCH_REVISION",
            text,
            "not a revision (at most 256 characters, no spaces)",
            "give the commit SHA the images were built from, or none to skip the check",
        ));
    }
    Ok((Some(text.to_string()), origin))
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

/// `90s`, `15m`, `1h30m`, a bare number of seconds, or `0`.
pub fn parse_duration(setting: &str, text: &str) -> Result<Duration, Error> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|e| {
        Error::invalid(
            setting,
            text,
            format!("not a duration ({e})"),
            "for example 90s, 15m or 1h; 0 disables waiting",
        )
    })
}

fn parse_format(text: &str) -> Result<Format, Error> {
    match text.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Format::Auto),
        "oci" => Ok(Format::Oci),
        "docker" => Ok(Format::Docker),
        _ => Err(Error::invalid(
            "--format / MULTIARCH_FORMAT",
            text,
            "unknown format",
            "use auto, oci or docker",
        )),
    }
}

/// Index annotations: CI defaults, then `MULTIARCH_ANNOTATIONS`, then `--annotation`, per key.
/// An empty value removes the key. `created` comes from `CI_COMMIT_TIMESTAMP`, never the clock,
/// so a re-run produces the same bytes; `revision` is the revision the sources were checked for.
fn annotations(
    args: &PushArgs,
    env: &Env,
    revision: Option<&str>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (key, variable) in [
        ("org.opencontainers.image.source", "CI_PROJECT_URL"),
        ("org.opencontainers.image.revision", "CI_COMMIT_SHA"),
        ("org.opencontainers.image.version", "CI_COMMIT_TAG"),
        ("org.opencontainers.image.created", "CI_COMMIT_TIMESTAMP"),
    ] {
        if let Some(v) = var(env, variable) {
            out.insert(key.to_string(), v.to_string());
        }
    }
    if let Some(r) = revision {
        out.insert(crate::manifest::REVISION.to_string(), r.to_string());
    }
    let from_env = var(env, "MULTIARCH_ANNOTATIONS").map(|t| {
        list(t)
            .map(|s| (s, "MULTIARCH_ANNOTATIONS"))
            .collect::<Vec<_>>()
    });
    let from_flags = args
        .annotations
        .iter()
        .map(|s| (s.as_str(), "--annotation"));
    for (item, setting) in from_env.into_iter().flatten().chain(from_flags) {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            Error::invalid(
                setting,
                item,
                "expected key=value",
                "for example org.opencontainers.image.title=app",
            )
        })?;
        let k = k.trim();
        if k.is_empty() {
            return Err(Error::invalid(
                setting,
                item,
                "empty key",
                "for example org.opencontainers.image.title=app",
            ));
        }
        if v.is_empty() {
            out.remove(k);
        } else {
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(out)
}

mod access;
pub use access::{
    access, Access, AwsInputs, CredentialInputs, DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRIES,
};

#[cfg(test)]
mod tests;
