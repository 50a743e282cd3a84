//! multiarch: publish multi-architecture container images from per-architecture tags.
//!
//! `run` dispatches a parsed command line; `main` only parses, snapshots the environment,
//! installs logging and maps the error to an exit code. Layers (see STYLE.md): pure modules
//! (`cli`, `settings`, `reference`, `platform`, `manifest`, `index`, `report`, `error`, `secret`)
//! below I/O (`registry`, `auth`) below orchestration (`publish`, `inspect`).

// The AWS SDK and instrumented futures nest deeply; their layouts need more than 128 levels.
#![recursion_limit = "256"]

pub mod auth;
pub mod cli;
pub mod ecr;
pub mod error;
pub mod index;
pub mod inspect;
pub mod manifest;
pub mod platform;
pub mod publish;
pub mod reference;
pub mod registry;
pub mod report;
pub mod secret;
pub mod settings;
pub mod spec;
pub mod tag_rule;
pub mod wait;

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{debug, info};

use cli::{Cli, Command, InspectArgs, PushArgs};
use error::Error;
use publish::{NoPhases, Phases};
use registry::OciRegistry;
use settings::{Env, Output};

/// Runs one command; results go to `out` (stdout), logs to stderr through `tracing`.
pub async fn run(cli: Cli, env: &Env, out: &mut dyn Write) -> Result<(), Error> {
    match cli.command {
        Command::Push(args) => push(args, env, false, out).await,
        Command::Plan(args) => push(args, env, true, out).await,
        Command::Wait(args) => wait_only(args, env, out).await,
        Command::Inspect(args) => inspect(args, env, out).await,
    }
}

/// `multiarch wait`: the waiting phase alone; prints one `reference@digest` line per source.
async fn wait_only(args: PushArgs, env: &Env, out: &mut dyn Write) -> Result<(), Error> {
    let plan = resolve(&args, env)?;
    let registry = OciRegistry::new(&plan.access)?;
    let gathered = wait::gather(&plan, &registry).await?;
    let text: String = gathered
        .resolved
        .iter()
        .map(|r| format!("{}@{}\n", r.reference, r.fetched.digest))
        .collect();
    write_out(out, text.as_bytes())
}

async fn push(
    args: PushArgs,
    env: &Env,
    plan_only: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut plan = resolve(&args, env)?;
    plan.dry_run |= plan_only;
    for (setting, origin) in &plan.origins {
        debug!(setting, ?origin, "setting");
    }
    info!(
        image = %plan.image,
        tags = %plan.tags.join(","),
        platforms = %plan.sources.iter().map(|s| s.platform.to_string()).collect::<Vec<_>>().join(","),
        dry_run = plan.dry_run,
        "plan"
    );
    if let (Some(path), false) = (&plan.dotenv, plan.dry_run) {
        check_writable_dir(path)?;
    }
    let registry = OciRegistry::new(&plan.access)?;
    let phases: &dyn Phases = if plan.gitlab {
        &GitLabSections
    } else {
        &NoPhases
    };
    let outcome = publish::run(&plan, &registry, phases).await?;

    let text = match (plan.output, plan.dry_run) {
        (Output::Json, _) => report::json(&plan, &outcome),
        (Output::Text, true) => report::plan(&plan, &outcome),
        (Output::Text, false) => report::text(&outcome),
    };
    write_out(out, text.as_bytes())?;
    if let (Some(path), false) = (&plan.dotenv, plan.dry_run) {
        write_file(path, &report::dotenv(&plan.image, &outcome.index))?;
        info!(path = %path.display(), "dotenv written");
    }
    Ok(())
}

async fn inspect(args: InspectArgs, env: &Env, out: &mut dyn Write) -> Result<(), Error> {
    let access = settings::access(&args.access, env)?;
    let at = reference::parse("REFERENCE", &args.reference)?;
    let registry = OciRegistry::new(&access)?;
    let (fetched, entries) = inspect::run(&at, &registry).await?;
    let shown = at.to_string();
    if args.raw {
        return write_out(out, &fetched.bytes);
    }
    let text = if args.json {
        report::inspect_json(&shown, &fetched, &entries)
    } else {
        report::inspect_text(&shown, &fetched, &entries)
    };
    write_out(out, text.as_bytes())
}

/// Settings, reading the manifest-tool spec first when `--spec`/`MULTIARCH_SPEC` names one.
fn resolve(args: &PushArgs, env: &Env) -> Result<settings::Plan, Error> {
    let path = args.spec.clone().or_else(|| {
        env.get("MULTIARCH_SPEC")
            .filter(|v| !v.is_empty())
            .map(Into::into)
    });
    let Some(path) = path else {
        return settings::resolve(args, env);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::UnreadableFile {
        setting: "--spec / MULTIARCH_SPEC".into(),
        path: path.clone(),
        source,
    })?;
    let spec = spec::parse(&path.display().to_string(), &text)?;
    settings::resolve_with(args, env, Some(&spec))
}

fn write_out(out: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|source| Error::WriteFile {
            path: "<stdout>".into(),
            source,
        })
}

/// Fails before any work when the dotenv file could not be written afterwards (a missing
/// directory), so a run never pushes and then fails to report.
fn check_writable_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        return Ok(());
    }
    Err(Error::invalid(
        "--dotenv / MULTIARCH_DOTENV",
        path.display().to_string(),
        format!("the directory {} does not exist", dir.display()),
        "name a file in an existing directory, e.g. multiarch.env",
    ))
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_file(path: &Path, content: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| Error::WriteFile {
            path: path.to_path_buf(),
            source,
        })
}

/// GitLab's collapsible sections on stderr.
struct GitLabSections;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Phases for GitLabSections {
    fn start(&self, name: &str, title: &str, collapsed: bool) {
        eprint!(
            "{}",
            report::section_start(unix_now(), name, title, collapsed)
        );
    }
    fn end(&self, name: &str) {
        eprint!("{}", report::section_end(unix_now(), name));
    }
}
