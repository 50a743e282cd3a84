//! How a push, plan or wait shows what it did, apart from what it does: stdout as text or JSON,
//! the dotenv report (where, and the prefix of its names), GitLab's collapsible log sections, and
//! where each setting came from for `--log debug`. The steps never read these; `app` does. Pure.

use std::path::PathBuf;

use super::table::{DOTENV, DOTENV_PREFIX, OUTPUT};
use super::values::{Inputs, Origin};
use super::Env;
use crate::error::Error;

pub(crate) const GITLAB_DOTENV: &str = "multiarch.env";

/// How results are printed on stdout (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub(crate) struct Presentation {
    pub(crate) output: Output,
    /// The dotenv report to write, if any.
    pub(crate) dotenv: Option<PathBuf>,
    /// Prepended to every dotenv variable name.
    pub(crate) dotenv_prefix: String,
    /// Running inside a GitLab job (`GITLAB_CI=true`): collapsible log sections.
    pub(crate) gitlab: bool,
    /// Where each setting came from, for `debug` logs.
    pub(crate) origins: Vec<(&'static str, Origin)>,
}

/// Resolves how results are shown; `origins` are filled in by the caller once every setting is
/// resolved.
pub(super) fn resolve(inputs: &Inputs) -> Result<Presentation, Error> {
    let gitlab = inputs.var("GITLAB_CI") == Some("true");
    let dotenv = match inputs.get(&DOTENV) {
        // The way to write no report in GitLab, where one is written by default.
        Some(f) if f.text.trim() == "none" => None,
        Some(f) => Some(PathBuf::from(f.text.trim())),
        None if gitlab => {
            inputs.record(DOTENV.flag, Origin::GitLab("GITLAB_CI"));
            Some(PathBuf::from(GITLAB_DOTENV))
        }
        None => None,
    };
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
    let output = inputs
        .choice(&OUTPUT, "unknown output")?
        .unwrap_or(Output::Text);
    Ok(Presentation {
        output,
        dotenv,
        dotenv_prefix,
        gitlab,
        origins: Vec::new(),
    })
}

/// Whether logs on stderr are coloured: never while `NO_COLOR` holds anything but the empty
/// string (<https://no-color.org>), whatever else is true; else on a terminal (`terminal`, which
/// the edge finds out) or in a GitLab job, whose log viewer shows ANSI colours.
pub(crate) fn colour(env: &Env, terminal: bool) -> bool {
    if env.get("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    terminal || env.get("GITLAB_CI").is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_over_the_terminal_and_gitlab() {
        // (NO_COLOR, GITLAB_CI, stderr is a terminal, coloured)
        for (no_color, gitlab, terminal, coloured) in [
            (None, None, false, false),
            (None, None, true, true),
            (None, Some("true"), false, true),
            (None, Some("false"), false, false),
            (Some("1"), Some("true"), false, false),
            (Some("1"), None, true, false),
            (Some("0"), Some("true"), true, false),
            (Some(""), Some("true"), false, true),
            (Some(""), None, true, true),
        ] {
            let mut env = Env::new();
            if let Some(v) = no_color {
                env.insert("NO_COLOR".into(), v.into());
            }
            if let Some(v) = gitlab {
                env.insert("GITLAB_CI".into(), v.into());
            }
            assert_eq!(
                colour(&env, terminal),
                coloured,
                "{no_color:?} {gitlab:?} {terminal}"
            );
        }
    }
}
