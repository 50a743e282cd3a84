//! Settings resolution: flags + environment (+ GitLab predefined variables, + a manifest-tool
//! spec) → a validated `Plan`.
//!
//! The order is the contract the README states: a flag beats the spec, which beats its `MULTIARCH_*`
//! variable, which beats the GitLab default. Every setting is declared once in `table`; an empty
//! variable counts as unset (GitLab passes empty component inputs as empty strings). Pure: the
//! environment arrives as a map and the spec as parsed text; nothing here reads the process
//! environment, the filesystem or the clock. Every problem is an exit-2 error naming the flag or
//! variable the value came from.

mod access;
mod content;
mod environment;
mod insecure;
mod pipeline;
pub(crate) mod semver;
mod sources;
pub(crate) mod table;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Given;
use crate::error::Error;
use crate::index::{Annotations, Format};
use crate::model::Source;
use crate::platform::Platform;
use crate::reference::{Reference, Repository};
use crate::spec::Spec;
use table::{
    ALLOW_MISSING, ANNOTATION, APPEND, AUTH_FILE, DOTENV, DOTENV_PREFIX, DRY_RUN, FORMAT, JSON,
    LOG, OUTPUT, PASSWORD_STDOUT, RAW, REQUIRE_REVISION, SOURCE_TEMPLATE, SPEC, TIMEOUT,
};

pub(crate) use access::{Access, AwsInputs, CredentialInputs};
pub(crate) use content::ContentCheck;
pub(crate) use environment::snapshot;
pub(crate) use pipeline::Times;
pub(crate) use values::{unknown_variables, Found, Inputs, Origin};

/// A snapshot of the process environment.
pub(crate) type Env = BTreeMap<String, String>;

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

pub(crate) const GITLAB_DOTENV: &str = "multiarch.env";

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Text,
    Json,
}

/// Everything a push, plan or wait needs, validated.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Where the index goes (at least one): one index, pushed to each.
    pub(crate) images: Vec<Repository>,
    pub(crate) tags: Vec<String>,
    pub(crate) sources: Vec<Source>,
    /// Every image × tag, destination by destination.
    pub(crate) targets: Vec<Reference>,
    /// With a spec and `--platforms`: which children of platform-less entries to take.
    pub(crate) platform_filter: Option<Vec<Platform>>,
    pub(crate) timeout: Duration,
    pub(crate) allow_missing: bool,
    pub(crate) format: Format,
    pub(crate) annotations: Annotations,
    /// Merge into what the first target tag holds.
    pub(crate) append: bool,
    pub(crate) dotenv: Option<PathBuf>,
    /// Prepended to every dotenv variable name.
    pub(crate) dotenv_prefix: String,
    pub(crate) output: Output,
    /// Running inside a GitLab job (`GITLAB_CI=true`): collapsible log sections.
    pub(crate) gitlab: bool,
    pub(crate) dry_run: bool,
    /// The revision sources must carry (`org.opencontainers.image.revision`); `None` = no check.
    pub(crate) revision: Option<String>,
    /// Unlabelled sources are stale rather than accepted with a warning.
    pub(crate) require_revision: bool,
    /// Whether and how far each image's entrypoint is held against its platform.
    pub(crate) content: ContentCheck,
    /// The pipeline's start and commit time, to date unlabelled sources (only with a revision).
    pub(crate) times: Times,
    /// Move target tags that hold a newer pipeline's index or a higher version.
    pub(crate) rollback: bool,
    pub(crate) access: Access,
    /// Where each setting came from, for `debug` logs.
    pub(crate) origins: Vec<(&'static str, Origin)>,
}

/// The log level: `--log`, else `MULTIARCH_LOG`, else info. Read before anything else runs, so
/// it is resolved on its own; a level that is not one is a usage error, not silently `info`.
pub(crate) fn log_level(given: &Given, env: &Env) -> Result<&'static str, Error> {
    let inputs = Inputs { given, env };
    let Some(f) = inputs.get(&LOG) else {
        return Ok("info");
    };
    match f.text.trim().to_ascii_lowercase().as_str() {
        "error" => Ok("error"),
        "warn" | "warning" => Ok("warn"),
        "info" => Ok("info"),
        "debug" => Ok("debug"),
        "trace" => Ok("trace"),
        _ => Err(Error::invalid(
            f.origin.name(),
            f.text,
            "not a log level",
            "use error, warn, info, debug or trace",
        )),
    }
}

/// The manifest-tool spec file to read, if `--spec` or `MULTIARCH_SPEC` names one.
pub(crate) fn spec_path<'a>(given: &'a Given, env: &'a Env) -> Option<Found<'a>> {
    Inputs { given, env }.get(&SPEC)
}

/// What `inspect` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InspectView {
    Text,
    Raw,
    Json,
}

/// `inspect`'s own settings: how to show it, how far to read each image's content, and how to
/// reach the registry.
pub(crate) fn inspect(
    given: &Given,
    env: &Env,
) -> Result<(InspectView, ContentCheck, Access), Error> {
    let inputs = Inputs { given, env };
    let (raw, raw_origin) = inputs.switch(&RAW)?;
    let (json, json_origin) = inputs.switch(&JSON)?;
    let view = match (raw, json) {
        (true, true) => {
            return Err(Error::invalid(
                format!("{} and {}", raw_origin.name(), json_origin.name()),
                "true",
                "--raw and --json exclude each other",
                "ask for one of them",
            ))
        }
        (true, false) => InspectView::Raw,
        (false, true) => InspectView::Json,
        (false, false) => InspectView::Text,
    };
    let content = content::resolve(&inputs, &mut Vec::new())?;
    Ok((view, content, access::access(&inputs)?))
}

/// What `login` does with the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginOutput {
    /// Print the password alone (for `--password-stdin`).
    Password,
    /// Write it into this docker/containers auth file.
    AuthFile(PathBuf),
}

/// `login`'s own settings: where the credential goes, and how to reach the registry.
pub(crate) fn login(given: &Given, env: &Env) -> Result<(LoginOutput, Access), Error> {
    let inputs = Inputs { given, env };
    let (stdout, _) = inputs.switch(&PASSWORD_STDOUT)?;
    let output = if stdout {
        LoginOutput::Password
    } else {
        let file = inputs
            .get(&AUTH_FILE)
            .map(|f| PathBuf::from(f.text.trim()))
            .or_else(|| inputs.var("REGISTRY_AUTH_FILE").map(PathBuf::from))
            .or_else(|| inputs.var("DOCKER_CONFIG").map(|d| PathBuf::from(d).join("config.json")))
            .or_else(|| inputs.var("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")))
            .ok_or_else(|| Error::MissingSetting {
                setting: AUTH_FILE.both(),
                hint: "no REGISTRY_AUTH_FILE, DOCKER_CONFIG or HOME to put it in; name the file, or use --password-stdout".into(),
            })?;
        LoginOutput::AuthFile(file)
    };
    Ok((output, access::access(&inputs)?))
}

/// Resolves `push`/`plan`/`wait` settings; with a manifest-tool `spec`, the image, tags and
/// sources come from it unless `--image` / `--tags` flags say otherwise.
pub(crate) fn resolve(given: &Given, env: &Env, spec: Option<&Spec>) -> Result<Plan, Error> {
    let inputs = Inputs { given, env };
    let mut origins = Vec::new();
    let (images, tags, mut sources, platform_filter) = match spec {
        Some(spec) => sources::from_spec(&inputs, spec, &mut origins)?,
        None => sources::from_template(&inputs, &mut origins)?,
    };
    sources::hand_offs(&inputs, &mut sources)?;
    let (revision, origin) = sources::revision(&inputs)?;
    origins.push(("revision", origin));
    let (require_revision, origin) = inputs.switch(&REQUIRE_REVISION)?;
    origins.push(("require-revision", origin));
    let times = pipeline::times(&inputs, revision.is_some())?;
    let (rollback, origin) = pipeline::rollback(&inputs)?;
    origins.push(("rollback", origin));

    let (timeout, origin) = match inputs.get(&TIMEOUT) {
        Some(f) => (values::parse_duration(&f.origin.name(), f.text)?, f.origin),
        None => (DEFAULT_TIMEOUT, Origin::Default),
    };
    origins.push(("timeout", origin));

    let (allow_missing, origin) = inputs.switch(&ALLOW_MISSING)?;
    origins.push(("allow-missing", origin));
    let (append, origin) = inputs.switch(&APPEND)?;
    origins.push(("append", origin));

    let (format, origin) = match inputs.get(&FORMAT) {
        Some(f) => (parse_format(&f)?, f.origin),
        None => (Format::Auto, Origin::Default),
    };
    origins.push(("format", origin));

    let annotations = annotations(&inputs, spec, revision.as_deref())?;

    let gitlab = inputs.var("GITLAB_CI") == Some("true");
    let (dotenv, origin) = match inputs.get(&DOTENV) {
        // The way to write no report in GitLab, where one is written by default.
        Some(f) if f.text.trim() == "none" => (None, f.origin),
        Some(f) => (Some(PathBuf::from(f.text.trim())), f.origin),
        None if gitlab => (
            Some(PathBuf::from(GITLAB_DOTENV)),
            Origin::GitLab("GITLAB_CI"),
        ),
        None => (None, Origin::Default),
    };
    origins.push(("dotenv", origin));
    let dotenv_prefix = match inputs.get(&DOTENV_PREFIX) {
        None => String::new(),
        Some(f) => {
            let p = f.text.trim();
            let ok = p
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
                && p.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(Error::invalid(
                    f.origin.name(),
                    f.text,
                    "not the start of a variable name",
                    "upper-case letters, digits and _, e.g. API_",
                ));
            }
            p.to_string()
        }
    };

    let output = match inputs.get(&OUTPUT) {
        None => Output::Text,
        Some(f) => match f.text.trim().to_ascii_lowercase().as_str() {
            "text" => Output::Text,
            "json" => Output::Json,
            _ => {
                return Err(Error::invalid(
                    f.origin.name(),
                    f.text,
                    "unknown output",
                    "use text or json",
                ))
            }
        },
    };
    let (dry_run, _) = inputs.switch(&DRY_RUN)?;
    let content = content::resolve(&inputs, &mut origins)?;

    sources::within_target_limit(images.len(), &tags, &origins)?;
    let targets = images
        .iter()
        .flat_map(|image| tags.iter().map(|t| image.tag(t)))
        .collect();
    Ok(Plan {
        images,
        tags,
        sources,
        targets,
        platform_filter,
        append,
        timeout,
        allow_missing,
        format,
        annotations,
        dotenv,
        dotenv_prefix,
        output,
        gitlab,
        dry_run,
        revision,
        require_revision,
        content,
        times,
        rollback,
        access: access::access(&inputs)?,
        origins,
    })
}

fn parse_format(f: &Found) -> Result<Format, Error> {
    match f.text.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Format::Auto),
        "oci" => Ok(Format::Oci),
        "docker" => Ok(Format::Docker),
        _ => Err(Error::invalid(
            f.origin.name(),
            f.text,
            "unknown format",
            "use auto, oci or docker",
        )),
    }
}

/// Index annotations: CI defaults, then the spec's, then `MULTIARCH_ANNOTATIONS`, then
/// `--annotation`, per key. An empty value removes the key. `created` comes from
/// `CI_COMMIT_TIMESTAMP`, never the clock, so a re-run produces the same bytes; `revision` is the
/// revision the sources were checked for; the project and pipeline ids order publishers (a new
/// pipeline of a commit already published adopts the index it finds, see `order`).
fn annotations(
    inputs: &Inputs,
    spec: Option<&Spec>,
    revision: Option<&str>,
) -> Result<Annotations, Error> {
    let mut out = BTreeMap::new();
    let mut asked = false;
    for (key, variable) in [
        ("org.opencontainers.image.source", "CI_PROJECT_URL"),
        ("org.opencontainers.image.revision", "CI_COMMIT_SHA"),
        (crate::manifest::VERSION, "CI_COMMIT_TAG"),
        ("org.opencontainers.image.created", "CI_COMMIT_TIMESTAMP"),
    ] {
        if let Some(v) = inputs.var(variable) {
            out.insert(key.to_string(), v.to_string());
        }
    }
    if let Some(r) = revision {
        out.insert(crate::manifest::REVISION.to_string(), r.to_string());
    }
    // Who publishes, so that tags never move backwards (an index of a later pipeline of the
    // project, or of a higher version, keeps its tags).
    for (key, variable) in [
        (crate::manifest::PROJECT, "CI_PROJECT_ID"),
        (crate::manifest::PIPELINE, "CI_PIPELINE_ID"),
    ] {
        if let Some(id) = pipeline::id(inputs, variable)? {
            out.insert(key.to_string(), id);
        }
    }
    if let Some(spec) = spec {
        asked |= !spec.annotations.is_empty();
        out.extend(spec.annotations.clone());
    }
    for (item, origin) in inputs.each(&ANNOTATION) {
        asked = true;
        let setting = origin.name();
        let (k, v) = item.split_once('=').ok_or_else(|| {
            Error::invalid(
                &setting,
                item,
                "expected key=value",
                "for example org.opencontainers.image.title=app; in MULTIARCH_ANNOTATIONS put one per line when a value has a comma",
            )
        })?;
        let k = k.trim();
        if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                &setting,
                item,
                "the key is empty or has spaces",
                "for example org.opencontainers.image.title=app",
            ));
        }
        if v.is_empty() {
            out.remove(k);
        } else {
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(Annotations { values: out, asked })
}

/// Refuses a `--source-template` flag with a spec: a spec lists its own sources.
fn refuse_with_spec(inputs: &Inputs, spec: &Spec) -> Result<(), Error> {
    for s in [&SOURCE_TEMPLATE] {
        if flag_only(inputs, s).is_some() {
            return Err(Error::invalid(
                format!("--{}", s.flag),
                inputs.given.flags[s.flag].join(","),
                format!("{} lists its own sources", spec.origin),
                "drop the flag, or the spec",
            ));
        }
    }
    Ok(())
}

/// The flag beats the spec's value: `--image` / `--tags` given with a spec.
fn flag_only<'a>(inputs: &Inputs<'a>, s: &'static table::Setting) -> Option<Found<'a>> {
    inputs
        .get(s)
        .filter(|f| matches!(f.origin, Origin::Flag(_)))
}

#[cfg(test)]
mod tests;
