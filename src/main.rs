//! Entry point: parse, snapshot the environment, install logging, run, map the error to an
//! exit code. Nothing else lives here.

// The AWS SDK futures nest deeply; computing the layout of `run` needs more than 128 levels.
#![recursion_limit = "256"]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use multiarch::cli::Cli;
use multiarch::settings::Env;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: Env = std::env::vars().collect();
    install_logging(cli.log.as_deref(), &env);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(multiarch::run(cli, &env, &mut std::io::stdout().lock()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut text = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!("\n  caused by: {s}"));
                source = s.source();
            }
            eprintln!("{text}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// `--log`/`MULTIARCH_LOG` sets our level (default info); other crates stay at warn. `RUST_LOG`,
/// when set, takes over completely.
fn install_logging(flag: Option<&str>, env: &Env) {
    let level = flag
        .or(env.get("MULTIARCH_LOG").map(String::as_str))
        .filter(|l| !l.is_empty())
        .unwrap_or("info");
    let filter = match env.get("RUST_LOG").filter(|v| !v.is_empty()) {
        Some(spec) => EnvFilter::new(spec),
        None => EnvFilter::try_new(format!("warn,multiarch={level}"))
            .unwrap_or_else(|_| EnvFilter::new("warn,multiarch=info")),
    };
    let ansi = std::io::stderr().is_terminal() || env.get("GITLAB_CI").is_some_and(|v| v == "true");
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .without_time()
        .init();
}
