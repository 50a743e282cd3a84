//! The edge: dispatches a parsed command, reads the files settings name (spec, through
//! `user_file`), writes what users and later jobs read (dotenv, then stdout), reads the clock for
//! GitLab's log sections, listens for the signals that cancel a run (`signals`), and warns about
//! `MULTIARCH_*` variables nobody reads. Everything it calls is pure or behind the registry seam.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{debug, info, warn};

use crate::cancel::{self, Cancel};
use crate::credentials::Credential;
use crate::error::{Error, Progress};
use crate::outcome::Kept;
use crate::publish::{self, NoPhases, Phases, Run};
use crate::registry::Client;
use crate::settings::table::Cmd;
use crate::settings::Given;
use crate::settings::{self, Env, InspectView, LoginOutput, Output, Plan, Presentation};
use crate::{inspect, output_file, reference, report, spec, user_file, wait};

mod auth_file;
mod signals;

/// Runs one command; results go to stdout, logs to stderr through `tracing`.
pub(crate) async fn run(cmd: Cmd, given: &Given, env: &Env) -> Result<(), Error> {
    for (name, closest) in settings::unknown_variables(env) {
        match closest {
            Some(c) => warn!(variable = %name, "unknown variable, ignored; did you mean {c}?"),
            None => warn!(variable = %name, "unknown MULTIARCH_ variable, ignored"),
        }
    }
    let cancel = Cancel::default();
    signals::listen(&cancel);
    let work = async {
        match cmd {
            Cmd::Push => push(given, env, false, &cancel).await,
            Cmd::Plan => push(given, env, true, &cancel).await,
            Cmd::Wait => wait_only(given, env, &cancel).await,
            Cmd::Inspect => show(given, env, &cancel).await,
            Cmd::Login => login(given, env, &cancel).await,
        }
    };
    // A run that has changed nothing is simply dropped on a signal; one that has winds down
    // and reports (`push`), unless it takes too long.
    tokio::select! {
        biased;
        done = work => done,
        signal = cancel.dropped() => Err(Error::Cancelled {
            signal,
            progress: match cmd {
                Cmd::Login => Progress::LoginUnwritten,
                _ => cancel.progress_when_dropped(),
            },
        }),
    }
}

/// `multiarch login HOST`: the credential `push` would use for HOST, checked against the
/// registry, written into an auth file (or printed alone for `--password-stdin`).
async fn login(given: &Given, env: &Env, cancel: &Cancel) -> Result<(), Error> {
    let (output, access) = settings::login(given, env)?;
    let host = given.positional.as_deref().unwrap_or_default().trim();
    let output = match output {
        LoginOutput::AuthFile(path) => LoginOutput::AuthFile(checked_auth_file(&path)?),
        other => other,
    };
    let registry = Client::connect(&access, cancel)?;
    let found = registry.login(host).await?;
    let Credential::Basic { username, password } = &found.credential else {
        unreachable!("login refuses anonymous access")
    };
    match output {
        LoginOutput::Password => {
            info!(registry = host, username = %username, source = %found.origin, "logged in; the password follows on stdout");
            write_out(format!("{}\n", password.expose()).as_bytes())
        }
        LoginOutput::AuthFile(path) => {
            write_auth(&path, host, username, password.expose()).await?;
            info!(registry = host, username = %username, source = %found.origin, file = %path.display(), "logged in");
            Ok(())
        }
    }
}

/// The auth file to write, checked before any request (its directory made, as docker login does).
fn checked_auth_file(path: &Path) -> Result<PathBuf, Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::invalid(
                auth_file::SETTING,
                path.display().to_string(),
                format!("its directory cannot be made ({e})"),
                auth_file::HINT,
            )
        })?;
    }
    let target = output_file::regular(path, auth_file::SETTING, auth_file::HINT)?;
    // The lock file beside it is the first file a login needs: named when it cannot be made.
    auth_file::check_lock(&target)?;
    output_file::creatable_beside(path, &target, auth_file::SETTING, auth_file::HINT)?;
    Ok(target)
}

/// Sets `host`'s credential in a docker/containers auth file (created 0600 if missing), keeping
/// every other byte of it.
async fn write_auth(path: &Path, host: &str, username: &str, password: &str) -> Result<(), Error> {
    use base64::Engine as _;
    let key = crate::credentials::config_key(host);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    auth_file::set(path, key, &auth).await
}

/// `multiarch wait`: the waiting phase alone; prints one `reference@digest` line per source.
async fn wait_only(given: &Given, env: &Env, cancel: &Cancel) -> Result<(), Error> {
    let (plan, _) = resolve(given, env)?;
    let registry = Client::connect(&plan.access, cancel)?;
    let gathered = wait::gather(&plan, &registry).await?;
    let text: String = gathered
        .resolved
        .iter()
        .map(|r| format!("{}@{}\n", r.source().reference, r.fetched().digest))
        .collect();
    write_out(text.as_bytes())
}

async fn push(given: &Given, env: &Env, plan_only: bool, cancel: &Cancel) -> Result<(), Error> {
    let (mut plan, show) = resolve(given, env)?;
    plan.dry_run |= plan_only;
    for (setting, origin) in &show.origins {
        debug!(setting, from = %origin.name(), "setting");
    }
    info!(
        images = %plan.images.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        tags = %plan.tags.join(","),
        platforms = %plan.sources.iter().map(|s| s.platform_text()).collect::<Vec<_>>().join(","),
        dry_run = plan.dry_run,
        "plan"
    );
    let dotenv = match (&show.dotenv, plan.dry_run) {
        (Some(path), false) => Some(output_file::writable(
            path,
            "--dotenv / MULTIARCH_DOTENV",
            "name a writable file in an existing directory, e.g. multiarch.env",
        )?),
        _ => None,
    };
    if let Some(path) = &dotenv {
        dotenv_fits(&plan, &show.dotenv_prefix, path)?;
    }
    let registry = Client::connect(&plan.access, cancel)?;
    let phases: &dyn Phases = if show.gitlab {
        &GitLabSections
    } else {
        &NoPhases
    };
    let outcome = match (
        publish::run(&plan, &registry, phases).await,
        cancel.signal(),
    ) {
        (Ok(Run::Published(outcome)), _) => outcome,
        (Ok(Run::Incomplete(awaited)), _) => {
            return incomplete(&plan, &show, dotenv.as_deref(), &awaited)
        }
        (Ok(Run::Superseded { kept, not_ready }), _) => {
            return superseded(&plan, &show, dotenv.as_deref(), &kept, &not_ready)
        }
        (Err(e), None) => return Err(e),
        // Cancelled before the tags: nothing to report but what the error says.
        (Err(_), Some(signal)) => return Err(cancel::before_tags(signal, cancel)),
    };

    // The dotenv first: a later job must learn which tags moved even if stdout is closed. Then
    // stdout, whatever became of the dotenv: what moved is always said.
    let reported = match &dotenv {
        Some(path) => {
            let mut content = report::dotenv(&outcome, &show.dotenv_prefix);
            // Published: some tag holds this run's index (every tag kept is not a publish).
            if plan.if_complete && outcome.holding().next().is_some() {
                content.push_str(&report::incomplete::published(&show.dotenv_prefix));
            }
            let written = output_file::write(path, &content, 0o644);
            match &written {
                Ok(()) => info!(path = %path.display(), "dotenv written"),
                Err(Error::WriteFile { source, .. }) => {
                    warn!(path = %path.display(), error = %source, "dotenv not written")
                }
                Err(e) => warn!(path = %path.display(), error = %e, "dotenv not written"),
            }
            written
        }
        None => Ok(()),
    };
    let text = match (show.output, plan.dry_run) {
        (Output::Json, _) => report::json(&outcome, plan.if_complete),
        (Output::Text, true) => report::plan(&plan, &outcome),
        (Output::Text, false) => report::text(&outcome),
    };
    let printed = write_out(text.as_bytes());
    let holding: Vec<String> = outcome.holding().map(ToString::to_string).collect();
    outcome.end(cancel.signal())?;
    reported.map_err(|e| match e {
        Error::WriteFile { path, source } => Error::ReportNotWritten {
            path,
            holding,
            source,
        },
        other => other,
    })?;
    printed
}

/// Refuses, before any request, a plan whose dotenv could exceed what GitLab accepts: the
/// report would be refused after the tags moved, and a later job would not learn what moved.
fn dotenv_fits(plan: &Plan, prefix: &str, path: &Path) -> Result<(), Error> {
    let size = report::dotenv_worst_case(plan, prefix);
    if size <= report::DOTENV_LIMIT {
        return Ok(());
    }
    Err(Error::invalid(
        "--dotenv / MULTIARCH_DOTENV",
        path.display().to_string(),
        format!(
            "the report for {} target tag(s) could be {size} bytes, over GitLab's dotenv limit of {} bytes, which would refuse it after the tags moved",
            plan.targets.len(),
            report::DOTENV_LIMIT
        ),
        "publish fewer or shorter tags (or fewer images), or set MULTIARCH_DOTENV=none and read the results from stdout",
    ))
}

/// `--if-complete` found sources not ready: nothing was pushed. Says which (stderr, or stdout
/// with `--output json`) and writes the dotenv a later job tests; exit 0.
fn incomplete(
    plan: &Plan,
    show: &Presentation,
    dotenv: Option<&Path>,
    awaited: &[(String, crate::error::NotReady)],
) -> Result<(), Error> {
    info!("{}", report::incomplete::text(plan, awaited));
    if let Some(path) = dotenv {
        let content = report::incomplete::dotenv(plan, &show.dotenv_prefix, awaited);
        output_file::write(path, &content, 0o644)?;
        info!(path = %path.display(), "dotenv written");
    }
    match show.output {
        Output::Json => write_out(report::incomplete::json(plan, awaited).as_bytes()),
        Output::Text => Ok(()),
    }
}

/// Every target tag holds a newer index than this run could publish: nothing was pushed or
/// waited for. Says so (stderr), names the kept tags (stdout, the dotenv); exit 0.
fn superseded(
    plan: &Plan,
    show: &Presentation,
    dotenv: Option<&Path>,
    kept: &[Kept],
    not_ready: &[(String, crate::error::NotReady)],
) -> Result<(), Error> {
    warn!("{}", report::superseded::text(plan, kept, not_ready));
    if let Some(path) = dotenv {
        output_file::write(
            path,
            &report::superseded::dotenv(plan, &show.dotenv_prefix, kept, not_ready),
            0o644,
        )?;
        info!(path = %path.display(), "dotenv written");
    }
    let text = match show.output {
        Output::Json => report::superseded::json(plan, kept, not_ready),
        Output::Text => report::superseded::lines(kept),
    };
    write_out(text.as_bytes())
}

async fn show(given: &Given, env: &Env, cancel: &Cancel) -> Result<(), Error> {
    let (view, content, access) = settings::inspect(given, env)?;
    let text = given.positional.as_deref().unwrap_or_default();
    let at = reference::parse("REFERENCE", text)?;
    let registry = Client::connect(&access, cancel)?;
    // The exact bytes are all --raw shows: nothing else is read.
    let check = (view != InspectView::Raw).then_some(&content);
    let (fetched, entries) = inspect::run(&at, &registry, check).await?;
    let shown = at.to_string();
    match view {
        InspectView::Raw => write_out(&fetched.bytes),
        InspectView::Json => write_out(report::inspect_json(&shown, &fetched, &entries).as_bytes()),
        InspectView::Text => write_out(report::inspect_text(&shown, &fetched, &entries).as_bytes()),
    }
}

/// Settings, reading the manifest-tool spec first when `--spec`/`MULTIARCH_SPEC` names one.
fn resolve(given: &Given, env: &Env) -> Result<(Plan, Presentation), Error> {
    let Some(found) = settings::spec_path(given, env) else {
        return settings::resolve(given, env, None);
    };
    let path = PathBuf::from(found.text.trim());
    let text = user_file::read(&found.origin.name(), &path, spec::MAX_SPEC_BYTES as u64)?;
    let spec = spec::parse(&path.display().to_string(), &text)?;
    settings::resolve(given, env, Some(&spec))
}

fn write_out(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|source| Error::WriteFile {
            path: "<stdout>".into(),
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
