//! multiarch: publish multi-architecture container images from per-architecture tags.
//!
//! The entry: parse the command line, snapshot the environment, install logging, run, map the
//! error to an exit code. Everything else is a module of this one crate, `pub(crate)` at most,
//! so the compiler sees dead code. Layers (dependencies point down): the edge (`app`: files,
//! stdout, clock, GitLab sections, signals) → orchestration (`publish`, `wait`, `inspect`) → I/O
//! (`registry`, `credentials`, `ecr`, `user_file`, and `cancel`, the run's cancellation state
//! they share with the edge) → pure (`cli`, `settings`, `spec`,
//! `reference`, `platform`, `manifest`, `index`, `report`, `model`, `error`, `secret`,
//! `tag_rule`, `timestamp`, `builder`, `order`).

mod app;
mod builder;
mod cancel;
mod cli;
mod content;
mod content_check;
mod credentials;
mod digest;
mod ecr;
mod error;
mod index;
mod inspect;
mod labels;
mod manifest;
mod model;
mod net;
mod order;
mod outcome;
mod output_file;
mod platform;
mod publish;
mod reference;
mod registry;
mod report;
mod secret;
mod settings;
mod spec;
mod tag_rule;
#[cfg(test)]
mod testing;
mod text;
mod timestamp;
mod user_file;
mod wait;

use std::io::IsTerminal;
use std::process::ExitCode;

use error::Error;
use settings::Env;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let (run, given) = match cli::parse(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(), // help, version, usage errors: clap prints them (exit 0 or 2)
    };
    let env: Env = match settings::snapshot(std::env::vars_os()) {
        Ok(env) => env,
        Err(e) => return report_error(&e),
    };
    let level = match settings::log_level(&given, &env) {
        Ok(l) => l,
        Err(e) => return report_error(&e),
    };
    install_logging(level, &env);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(app::run(run, &given, &env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report_error(&e),
    }
}

/// Prints the error and its causes once, and exits with its code.
fn report_error(e: &Error) -> ExitCode {
    let mut text = format!("error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    eprintln!("{text}");
    ExitCode::from(e.exit_code() as u8)
}

/// Our level on stderr; other crates stay at warn. `RUST_LOG`, when set, takes over completely.
/// Coloured as `settings::colour` says (`NO_COLOR` first).
fn install_logging(level: &str, env: &Env) {
    let filter = match env.get("RUST_LOG").filter(|v| !v.is_empty()) {
        Some(spec) => EnvFilter::try_new(spec).unwrap_or_else(|e| {
            // Logging is not up yet: said plainly, once, and the run goes on at warn.
            eprintln!("RUST_LOG={spec:?} is not a filter multiarch can use ({e}); logging at warn (unset it to use --log / MULTIARCH_LOG)");
            EnvFilter::new("warn")
        }),
        // The AWS SDK's own warnings about a credential source repeat what our error then says
        // (naming what the job set); they show with debug and trace.
        None if matches!(level, "debug" | "trace") => {
            EnvFilter::new(format!("warn,multiarch={level}"))
        }
        None => EnvFilter::new(format!(
            "warn,aws_config=error,aws_runtime=error,multiarch={level}"
        )),
    };
    let ansi = settings::colour(env, std::io::stderr().is_terminal());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .without_time()
        .init();
}
