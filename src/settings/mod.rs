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
mod given;
mod insecure;
mod pipeline;
mod presentation;
pub(crate) mod semver;
mod sources;
pub(crate) mod table;
mod values;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, SemverTag};
use crate::index::{Annotations, Format};
use crate::model::Source;
use crate::platform::Platform;
use crate::reference::{Reference, Repository};
use crate::spec::Spec;
use table::{
    ALLOW_MISSING, ANNOTATION, APPEND, AUTH_FILE, DRY_RUN, FORMAT, IF_COMPLETE, JSON, LOG,
    PASSWORD_STDOUT, RAW, REQUIRE_REVISION, SOURCE_TEMPLATE, SPEC, TIMEOUT,
};

pub(crate) use access::Access;
pub(crate) use content::ContentCheck;
pub(crate) use environment::snapshot;
pub(crate) use given::Given;
pub(crate) use pipeline::Times;
pub(crate) use presentation::{colour, Output, Presentation};
pub(crate) use values::{unknown_variables, Found, Inputs, Origin};

/// A snapshot of the process environment.
pub(crate) type Env = BTreeMap<String, String>;

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

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
    /// `--if-complete`: look once, publish only a complete set, else report what is awaited.
    pub(crate) if_complete: bool,
    pub(crate) format: Format,
    pub(crate) annotations: Annotations,
    /// Merge into what the first target tag holds.
    pub(crate) append: bool,
    pub(crate) dry_run: bool,
    /// The revision sources must carry (`org.opencontainers.image.revision`); `None` = no check.
    pub(crate) revision: Option<String>,
    /// Unlabelled sources are stale rather than accepted with a warning.
    pub(crate) require_revision: bool,
    /// Whether and how far each image's entrypoint is held against its platform.
    pub(crate) content: ContentCheck,
    /// The pipeline's start and commit time, to date unlabelled sources (only with a revision).
    pub(crate) times: Times,
    /// With `MULTIARCH_TAGS=semver`, a git tag that is not the version the sources are named by
    /// (`v2.0.1`), for the hint when they are missing.
    pub(crate) semver_tag: Option<SemverTag>,
    /// Move target tags that hold a newer pipeline's index or a higher version.
    pub(crate) rollback: bool,
    pub(crate) access: Access,
}

/// A log level (`--log`); `warning` is taken for `warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogLevel {
    Error,
    #[value(alias = "warning")]
    Warn,
    Info,
    Debug,
    Trace,
}

/// The log level: `--log`, else `MULTIARCH_LOG`, else info. Read before anything else runs, so
/// it is resolved on its own; a level that is not one is a usage error, not silently `info`.
pub(crate) fn log_level(given: &Given, env: &Env) -> Result<&'static str, Error> {
    let level = Inputs::new(given, env)
        .choice(&LOG, "not a log level")?
        .unwrap_or(LogLevel::Info);
    Ok(match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    })
}

/// The manifest-tool spec file to read, if `--spec` or `MULTIARCH_SPEC` names one.
pub(crate) fn spec_path<'a>(given: &'a Given, env: &'a Env) -> Option<Found<'a>> {
    Inputs::new(given, env).get(&SPEC)
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
    let inputs = Inputs::new(given, env);
    let raw = inputs.switch(&RAW)?;
    let json = inputs.switch(&JSON)?;
    let view = match (raw, json) {
        (true, true) => {
            let name =
                |s: &table::Setting| inputs.origin_of(s.flag).unwrap_or(Origin::Default).name();
            return Err(Error::invalid(
                format!("{} and {}", name(&RAW), name(&JSON)),
                "true",
                "--raw and --json exclude each other",
                "ask for one of them",
            ));
        }
        (true, false) => InspectView::Raw,
        (false, true) => InspectView::Json,
        (false, false) => InspectView::Text,
    };
    let content = content::resolve(&inputs)?;
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
    let inputs = Inputs::new(given, env);
    let stdout = inputs.switch(&PASSWORD_STDOUT)?;
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

/// Resolves `push`/`plan`/`wait` settings: the plan the steps follow, and how its results are
/// shown. With a manifest-tool `spec`, the image, tags and sources come from it unless `--image` /
/// `--tags` flags say otherwise.
pub(crate) fn resolve(
    given: &Given,
    env: &Env,
    spec: Option<&Spec>,
) -> Result<(Plan, Presentation), Error> {
    let inputs = Inputs::new(given, env);
    let (images, tags, mut sources, platform_filter, semver_tag) = match spec {
        Some(spec) => sources::from_spec(&inputs, spec)?,
        None => sources::from_template(&inputs)?,
    };
    sources::hand_offs(&inputs, &mut sources)?;
    let revision = sources::revision(&inputs)?;
    let require_revision = inputs.switch(&REQUIRE_REVISION)?;
    let times = pipeline::times(&inputs, revision.is_some())?;
    let rollback = pipeline::rollback(&inputs)?;
    let timeout = match inputs.get(&TIMEOUT) {
        Some(f) => values::parse_duration(&f.origin.name(), f.text)?,
        None => DEFAULT_TIMEOUT,
    };
    let allow_missing = inputs.switch(&ALLOW_MISSING)?;
    let if_complete = inputs.switch(&IF_COMPLETE)?;
    if if_complete && allow_missing {
        let name = inputs
            .origin_of(IF_COMPLETE.flag)
            .unwrap_or(Origin::Default)
            .name();
        return Err(Error::invalid(
            name,
            "true",
            format!("it cannot go with {} (on as well)", ALLOW_MISSING.both()),
            "choose one: --if-complete publishes only when every platform is there, --allow-missing publishes whatever is there at the deadline",
        ));
    }
    let append = inputs.switch(&APPEND)?;
    let format = inputs
        .choice(&FORMAT, "unknown format")?
        .unwrap_or(Format::Auto);
    let annotations = annotations(&inputs, spec, revision.as_deref())?;
    if let (Format::Docker, Some(by)) = (format, &annotations.asked) {
        let name = inputs
            .origin_of(FORMAT.flag)
            .unwrap_or(Origin::Default)
            .name();
        return Err(Error::invalid(
            name,
            "docker",
            format!("a Docker manifest list cannot carry the annotations {by} asks for"),
            format!("set MULTIARCH_FORMAT=oci (or auto) to keep them, or drop them from {by}"),
        ));
    }
    let mut presentation = presentation::resolve(&inputs)?;
    let dry_run = inputs.switch(&DRY_RUN)?;
    let content = content::resolve(&inputs)?;
    let access = access::access(&inputs)?;

    sources::within_target_limit(&inputs, images.len(), &tags)?;
    let targets = images
        .iter()
        .flat_map(|image| tags.iter().map(|t| image.tag(t)))
        .collect();
    presentation.origins = inputs.origins();
    let plan = Plan {
        images,
        tags,
        sources,
        targets,
        platform_filter,
        append,
        timeout,
        allow_missing,
        if_complete,
        format,
        annotations,
        dry_run,
        revision,
        require_revision,
        content,
        times,
        semver_tag,
        rollback,
        access,
    };
    Ok((plan, presentation))
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
    let mut asked: Option<String> = None;
    for (key, variable) in [
        ("org.opencontainers.image.source", "CI_PROJECT_URL"),
        ("org.opencontainers.image.revision", "CI_COMMIT_SHA"),
        (crate::labels::VERSION, "CI_COMMIT_TAG"),
        ("org.opencontainers.image.created", "CI_COMMIT_TIMESTAMP"),
    ] {
        if let Some(v) = inputs.var(variable) {
            out.insert(key.to_string(), v.to_string());
        }
    }
    if let Some(r) = revision {
        out.insert(crate::labels::REVISION.to_string(), r.to_string());
    }
    // Who publishes, so that tags never move backwards (an index of a later pipeline of the
    // project, or of a higher version, keeps its tags).
    for (key, variable) in [
        (crate::labels::PROJECT, "CI_PROJECT_ID"),
        (crate::labels::PIPELINE, "CI_PIPELINE_ID"),
    ] {
        if let Some(id) = pipeline::id(inputs, variable)? {
            out.insert(key.to_string(), id);
        }
    }
    if let Some(spec) = spec {
        if !spec.annotations.is_empty() {
            asked = Some("the spec".into());
        }
        out.extend(spec.annotations.clone());
    }
    for (item, origin) in inputs.each(&ANNOTATION) {
        let setting = origin.name();
        asked.get_or_insert_with(|| setting.to_string());
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
