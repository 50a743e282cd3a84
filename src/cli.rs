//! The command line, built from the settings table: every flag of `settings::table` becomes a clap
//! argument of the commands that take it, with `[env: …] [default: …]` appended to its help, so
//! `--help` is the reference and cannot drift from what is resolved. Parsing yields the flags as
//! given (`Given`); what an absent flag means is `settings`' business.

use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::settings::table::{Cmd, Kind, LOG, SETTINGS};
use crate::settings::Given;

const ABOUT: &str = "Publish multi-architecture container images from per-architecture tags";

const LONG_ABOUT: &str =
    "Publish multi-architecture container images from per-architecture tags.\n\n\
A GitLab `manifest` job runs `multiarch push`: it finds the per-architecture tags \
(app:latest-amd64, app:latest-arm64, ...) from CI variables, waits until they hold this \
pipeline's builds, reads each image's real platform, and pushes an OCI image index (or Docker \
manifest list) under the common tags.\n\n\
Every option also reads MULTIARCH_<OPTION>; flags beat variables, variables beat GitLab defaults; \
an empty variable counts as unset.\n\
Exit codes: 0 done, 2 usage or misconfiguration, 3 sources missing or stale, 4 validation, \
5 auth, 75 transient, 1 other; 143 / 130 cancelled (SIGTERM / SIGINT).";

/// Variables that are not flags.
const HAND_OFF_HELP: &str = "Build jobs may hand over the exact image they pushed: \
MULTIARCH_SOURCE_<OS>_<ARCH>[_<VARIANT>]=<repository>@sha256:<digest> (e.g. \
MULTIARCH_SOURCE_LINUX_ARM64, through a dotenv report) makes that digest the platform's source \
instead of its tag; it is read once, never waited for, and still checked.";

/// The whole command line.
pub(crate) fn command() -> Command {
    let sub = |name: &'static str, cmd: Cmd, about: &'static str| {
        Command::new(name).about(about).args(
            SETTINGS
                .iter()
                .filter(|s| s.on.contains(&cmd) && s.flag != LOG.flag)
                .map(|s| arg(s)),
        )
    };
    Command::new("multiarch")
        .version(env!("CARGO_PKG_VERSION"))
        .about(ABOUT)
        .long_about(LONG_ABOUT)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(arg(&LOG).global(true))
        .subcommand(
            sub(
                "push",
                Cmd::Push,
                "Wait for every per-architecture source, build the index and push it under every target tag",
            )
            .after_help(HAND_OFF_HELP),
        )
        .subcommand(
            sub(
                "plan",
                Cmd::Plan,
                "Resolve and fetch everything, print sources, targets and the index JSON; push nothing",
            )
            .after_help(HAND_OFF_HELP),
        )
        .subcommand(
            sub(
                "wait",
                Cmd::Wait,
                "Only wait until every per-architecture source is ready (exit 0), or 3 at the deadline",
            )
            .after_help(HAND_OFF_HELP),
        )
        .subcommand(
            sub(
                "login",
                Cmd::Login,
                "Write a registry credential (from the chain push uses: ECR token, GitLab OIDC, CI_REGISTRY_*, docker config) for build tools",
            )
            .arg(
                Arg::new("HOST")
                    .required(true)
                    .help("Registry host, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            ),
        )
        .subcommand(
            sub(
                "inspect",
                Cmd::Inspect,
                "Show a manifest or index: media type, digest, size and platforms",
            )
            .arg(
                Arg::new("REFERENCE")
                    .required(true)
                    .help("Image reference, e.g. registry.example.com/app:latest"),
            ),
        )
}

/// One table row as a clap argument.
fn arg(s: &'static crate::settings::table::Setting) -> Arg {
    let help = format!("{} [env: {}] [default: {}]", s.help, s.variable, s.default);
    let a = Arg::new(s.flag).long(s.flag).help(help);
    match s.kind {
        Kind::Value(name) => a.value_name(name).action(ArgAction::Set),
        Kind::Repeated(name) => a.value_name(name).action(ArgAction::Append),
        Kind::Switch => a.action(ArgAction::SetTrue),
    }
}

/// Parses the command line (clap prints help, version and usage errors itself, exit 2).
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<(Cmd, Given), clap::Error> {
    let matches = command().try_get_matches_from(args)?;
    let (name, sub) = matches.subcommand().expect("a subcommand is required");
    let cmd = match name {
        "push" => Cmd::Push,
        "plan" => Cmd::Plan,
        "wait" => Cmd::Wait,
        "inspect" => Cmd::Inspect,
        "login" => Cmd::Login,
        other => unreachable!("unknown subcommand {other}"),
    };
    Ok((cmd, given(sub, cmd)))
}

/// Reads only the arguments `cmd` has: clap panics on an id a command does not define (release
/// builds included), so the table's `on` column, the same one that built the command, decides.
fn given(m: &ArgMatches, cmd: Cmd) -> Given {
    let mut out = Given {
        cmd: Some(cmd),
        ..Given::default()
    };
    for s in SETTINGS.iter().filter(|s| s.on.contains(&cmd)) {
        match s.kind {
            Kind::Switch => {
                if m.get_flag(s.flag) {
                    out.flags.insert(s.flag, vec!["true".to_string()]);
                }
            }
            Kind::Value(_) | Kind::Repeated(_) => {
                if let Some(values) = m.get_many::<String>(s.flag) {
                    out.flags.insert(s.flag, values.cloned().collect());
                }
            }
        }
    }
    let positional = match cmd {
        Cmd::Inspect => Some("REFERENCE"),
        Cmd::Login => Some("HOST"),
        Cmd::Push | Cmd::Plan | Cmd::Wait => None,
    };
    out.positional = positional.and_then(|id| m.get_one::<String>(id).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::table::{Setting, AUTH};

    fn parse_args(args: &[&str]) -> (Cmd, Given) {
        parse(args.iter().map(OsString::from)).unwrap()
    }

    /// Every option names its variable and its default in `--help`.
    #[test]
    fn every_option_documents_variable_and_default() {
        let cmd = command();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let row = SETTINGS.iter().find(|s| s.flag == long).unwrap();
                assert!(
                    help.contains(&format!("[env: {}]", row.variable)),
                    "{} --{long}: {help}",
                    sub.get_name()
                );
                assert!(help.contains("[default: "), "{} --{long}", sub.get_name());
            }
        }
        command().debug_assert();
    }

    /// `--help` and the README's variables table are written apart: every setting has a row
    /// there, and what users trip over is said in both.
    #[test]
    fn help_and_the_readme_table_agree() {
        let readme = include_str!("../README.md");
        let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| ")).collect();
        let row_of = |s: &Setting| {
            rows.iter()
                .find(|r| r.contains(&format!("`{}`", s.variable)) && r.contains(s.flag))
                .unwrap_or_else(|| panic!("{} has no row in the README's table", s.variable))
        };
        for s in SETTINGS {
            row_of(s);
        }
        // (flag, a fact both its --help text and its README row state)
        for (flag, fact) in [
            ("format", "no annotation was asked for"),
            ("format", "GitLab pipeline"),
            ("annotation", "com.gitlab.multiarch."),
            ("username", "ECR token for ECR hosts"),
            ("log", "RUST_LOG"),
            ("log", "NO_COLOR"),
            ("auth", "AWS credential chain"),
        ] {
            let s = SETTINGS.iter().find(|s| s.flag == flag).unwrap();
            let help = format!("{} [default: {}]", s.help, s.default);
            assert!(
                help.contains(fact),
                "--{flag} --help lacks {fact:?}: {help}"
            );
            let row = row_of(s);
            assert!(
                row.contains(fact),
                "the README row of --{flag} lacks {fact:?}: {row}"
            );
        }
        // No flag: its own row, and --auth's help names it.
        assert!(rows
            .iter()
            .any(|r| r.starts_with("| | `MULTIARCH_OIDC_TOKEN_VAR` |")));
        assert!(AUTH.help.contains("MULTIARCH_OIDC_TOKEN_VAR"));
    }

    #[test]
    fn parses_push_flags_as_given() {
        let (run, given) = parse_args(&[
            "multiarch",
            "push",
            "--image",
            "r.io/app",
            "--annotation",
            "a=b",
            "--annotation",
            "c=d",
            "--insecure-registry",
            "localhost:5000",
            "--allow-missing",
            "--log",
            "debug",
        ]);
        assert_eq!(run, Cmd::Push);
        assert_eq!(given.flags["image"], ["r.io/app"]);
        assert_eq!(given.flags["annotation"], ["a=b", "c=d"]);
        assert_eq!(given.flags["insecure-registry"], ["localhost:5000"]);
        assert_eq!(given.flags["allow-missing"], ["true"]);
        assert_eq!(given.flags["log"], ["debug"]);
        assert!(!given.flags.contains_key("tags"));
    }

    #[test]
    fn inspect_takes_a_reference_and_its_own_switches() {
        let (run, given) = parse_args(&["multiarch", "inspect", "--raw", "r.io/app:1"]);
        assert_eq!(run, Cmd::Inspect);
        assert_eq!(given.positional.as_deref(), Some("r.io/app:1"));
        assert_eq!(given.flags["raw"], ["true"]);
        assert!(command()
            .try_get_matches_from(["multiarch", "push", "--raw"])
            .is_err());
        let (run, given) =
            parse_args(&["multiarch", "login", "--password-stdout", "r.example:5000"]);
        assert_eq!(run, Cmd::Login);
        assert_eq!(given.positional.as_deref(), Some("r.example:5000"));
        assert_eq!(given.flags["password-stdout"], ["true"]);
    }

    /// Every command parses bare and with `--log` after it: `given` asks clap only for ids the
    /// command defines (asking for another panics, in release builds too).
    #[test]
    fn every_command_reads_only_its_own_arguments() {
        for (args, cmd) in [
            (&["push"][..], Cmd::Push),
            (&["plan"], Cmd::Plan),
            (&["wait"], Cmd::Wait),
            (&["inspect", "r.io/app:1"], Cmd::Inspect),
            (&["login", "r.io"], Cmd::Login),
        ] {
            let mut argv = vec!["multiarch"];
            argv.extend_from_slice(args);
            argv.extend(["--log", "warn"]);
            let (run, given) = parse_args(&argv);
            assert_eq!(run, cmd);
            assert_eq!(given.flags.keys().collect::<Vec<_>>(), [&"log"], "{args:?}");
        }
    }
}
