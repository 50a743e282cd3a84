//! Reading one setting: its flag, else its `MULTIARCH_*` variable (an empty one counts as unset,
//! since GitLab passes empty component inputs as empty strings), with the origin kept so that
//! errors name exactly what the user wrote (`--tags`, `MULTIARCH_TAGS`, `CI_COMMIT_TAG`) and
//! `--log debug` shows where each value came from. Also: the shared value parsers, and the
//! warning for `MULTIARCH_*` variables nobody reads (a typo must not be silently ignored).

use std::cell::RefCell;
use std::time::Duration;

use clap::ValueEnum;

use super::environment;
use super::table::{Kind, Setting, OTHER_PREFIXES, OTHER_VARIABLES, SETTINGS};
use super::Env;
use super::Given;
use crate::error::Error;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Flag(&'static str),
    Variable(&'static str),
    /// A GitLab predefined (or other non-multiarch) variable.
    GitLab(&'static str),
    /// A manifest-tool spec file, and the key in it.
    Spec(String),
    Default,
}

impl Origin {
    /// How an error names the setting: `--tags`, `MULTIARCH_TAGS`, `CI_COMMIT_TAG`.
    pub(crate) fn name(&self) -> String {
        match self {
            Origin::Flag(f) => format!("--{f}"),
            Origin::Variable(v) | Origin::GitLab(v) => v.to_string(),
            Origin::Spec(at) => format!("--spec {at}"),
            Origin::Default => "default".to_string(),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found<'a> {
    pub(crate) text: &'a str,
    pub(crate) origin: Origin,
}

/// The flags given and the environment: everything settings are resolved from; and, as values
/// are resolved, where each came from (for `--log debug` and for errors that name the settings
/// behind a value).
pub(crate) struct Inputs<'a> {
    pub(crate) given: &'a Given,
    pub(crate) env: &'a Env,
    origins: RefCell<Vec<(&'static str, Origin)>>,
}

impl<'a> Inputs<'a> {
    pub(crate) fn new(given: &'a Given, env: &'a Env) -> Inputs<'a> {
        Inputs {
            given,
            env,
            origins: RefCell::default(),
        }
    }

    /// Records where the value of `setting` (its flag name) came from; a later record of the same
    /// setting replaces the earlier one (a fallback found after the flag and variable were not).
    pub(crate) fn record(&self, setting: &'static str, origin: Origin) {
        let mut origins = self.origins.borrow_mut();
        match origins.iter_mut().find(|(k, _)| *k == setting) {
            Some(entry) => entry.1 = origin,
            None => origins.push((setting, origin)),
        }
    }

    /// Where the value of `setting` came from, if it was resolved.
    pub(crate) fn origin_of(&self, setting: &str) -> Option<Origin> {
        self.origins
            .borrow()
            .iter()
            .find(|(k, _)| *k == setting)
            .map(|(_, o)| o.clone())
    }

    /// Every setting resolved so far, in order, with where its value came from.
    pub(crate) fn origins(&self) -> Vec<(&'static str, Origin)> {
        self.origins.borrow().clone()
    }

    /// A variable's value; empty means unset.
    pub(crate) fn var(&self, name: &str) -> Option<&'a str> {
        debug_assert!(
            environment::is_read(name, environment::token_var(self.env)),
            "{name} is read: list it in settings::environment, so that a value that is not UTF-8 is refused"
        );
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A non-multiarch variable with its origin (`CI_COMMIT_TAG`).
    pub(crate) fn gitlab(&self, name: &'static str) -> Option<Found<'a>> {
        self.var(name).map(|text| Found {
            text,
            origin: Origin::GitLab(name),
        })
    }

    /// The flag's (last) value, else the variable; empty counts as unset. Recorded as the
    /// setting's origin (`Default` when neither is given). A setting the command does not take
    /// is unset, whatever its variable says.
    pub(crate) fn get(&self, s: &'static Setting) -> Option<Found<'a>> {
        if self.given.cmd.is_some_and(|cmd| !s.on.contains(&cmd)) {
            return None;
        }
        let flag = self
            .given
            .flags
            .get(s.flag)
            .and_then(|v| v.last())
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty());
        let found = match flag {
            Some(text) => Some(Found {
                text,
                origin: Origin::Flag(s.flag),
            }),
            None => self.var(s.variable).map(|text| Found {
                text,
                origin: Origin::Variable(s.variable),
            }),
        };
        let origin = found.as_ref().map_or(Origin::Default, |f| f.origin.clone());
        self.record(s.flag, origin);
        found
    }

    /// A switch: given, else its variable as a boolean, else false.
    pub(crate) fn switch(&self, s: &'static Setting) -> Result<bool, Error> {
        debug_assert!(matches!(s.kind, Kind::Switch));
        match self.get(s) {
            None => Ok(false),
            Some(f) => parse_bool(&f.origin.name(), f.text),
        }
    }

    /// One of a setting's choices (`--format oci`, `MULTIARCH_FORMAT=OCI`), any case; a value
    /// that is none of them is refused with `reason`, naming every choice (with what each does,
    /// where the enum says).
    pub(crate) fn choice<T: ValueEnum>(
        &self,
        s: &'static Setting,
        reason: &str,
    ) -> Result<Option<T>, Error> {
        let Some(f) = self.get(s) else {
            return Ok(None);
        };
        T::from_str(f.text.trim(), true).map(Some).map_err(|_| {
            Error::invalid(
                f.origin.name(),
                f.text,
                reason,
                format!("use {}", choices::<T>()),
            )
        })
    }

    /// A repeatable setting: the variable's list items first, then each flag (later ones win
    /// where order matters), each with its origin.
    pub(crate) fn each(&self, s: &'static Setting) -> Vec<(&'a str, Origin)> {
        if self.given.cmd.is_some_and(|cmd| !s.on.contains(&cmd)) {
            return Vec::new();
        }
        let mut out: Vec<(&'a str, Origin)> = self
            .var(s.variable)
            .map(|v| {
                list(v)
                    .map(|item| (item, Origin::Variable(s.variable)))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(values) = self.given.flags.get(s.flag) {
            out.extend(
                values
                    .iter()
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
                    .map(|v| (v, Origin::Flag(s.flag))),
            );
        }
        out
    }
}

/// `a (what a does), b or c`: a choice setting's values, as an error's hint lists them.
pub(crate) fn choices<T: ValueEnum>() -> String {
    let names: Vec<String> = T::value_variants()
        .iter()
        .filter_map(T::to_possible_value)
        .filter(|v| !v.is_hide_set())
        .map(|v| match v.get_help() {
            Some(help) => format!("{} ({help})", v.get_name()),
            None => v.get_name().to_string(),
        })
        .collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Splits a comma- or newline-separated list, dropping blanks.
pub(crate) fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(crate) fn parse_bool(setting: &str, value: &str) -> Result<bool, Error> {
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

/// The longest duration any setting takes: beyond it a value is a mistake, not a wish.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// `90s`, `15m`, `1h30m`, a bare number of seconds, or `0`; at most 24 hours.
pub(crate) fn parse_duration(setting: &str, text: &str) -> Result<Duration, Error> {
    let t = text.trim();
    let parsed = match t.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs.min(u64::MAX / 2))),
        Err(_) => humantime::parse_duration(t).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        Ok(_) => Err(Error::invalid(
            setting,
            text,
            "longer than 24 hours",
            "for example 90s, 15m or 1h; 0 disables waiting",
        )),
        Err(e) => Err(Error::invalid(
            setting,
            text,
            format!("not a duration ({e})"),
            "for example 90s, 15m or 1h; 0 disables waiting",
        )),
    }
}

/// `MULTIARCH_*` variables that no setting reads, each with the closest known name: a typo
/// (`MULTIARCH_PLATFORM`) must not be silently ignored.
pub(crate) fn unknown_variables(env: &Env) -> Vec<(String, Option<&'static str>)> {
    let known: Vec<&'static str> = SETTINGS
        .iter()
        .map(|s| s.variable)
        .chain(OTHER_VARIABLES.iter().copied())
        .collect();
    env.keys()
        .filter(|k| k.starts_with("MULTIARCH_"))
        .filter(|k| !known.contains(&k.as_str()))
        .filter(|k| !OTHER_PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(|k| {
            // Only a setting is suggested: the dotenv's outputs (MULTIARCH_KEPT…) are read by
            // later jobs, never set for multiarch.
            let closest = SETTINGS
                .iter()
                .map(|s| (strsim::levenshtein(k, s.variable), s.variable))
                .min()
                .filter(|(distance, _)| *distance <= typos_allowed(k))
                .map(|(_, n)| n);
            (k.clone(), closest)
        })
        .collect()
}

/// How many edits a name may be from a setting to be taken for a typo of it: one per three
/// letters after `MULTIARCH_` (at least one, at most four), so a short name is not "corrected"
/// into an unrelated setting (`MULTIARCH_TYPO` is not `MULTIARCH_TAGS`).
fn typos_allowed(name: &str) -> usize {
    let own = name.trim_start_matches("MULTIARCH_").chars().count();
    (own / 3).clamp(1, 4)
}

#[cfg(test)]
mod tests {
    use super::super::table::{ALLOW_MISSING, ANNOTATION, TAGS};
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flag_beats_variable_and_empty_is_unset() {
        let e = env(&[("MULTIARCH_TAGS", "from-var")]);
        let none = Given::default();
        let inputs = Inputs::new(&none, &e);
        assert_eq!(
            inputs.get(&TAGS),
            Some(Found {
                text: "from-var",
                origin: Origin::Variable("MULTIARCH_TAGS")
            })
        );
        let given = Given::of(&[("tags", "from-flag")]);
        let inputs = Inputs::new(&given, &e);
        assert_eq!(inputs.get(&TAGS).unwrap().origin.name(), "--tags");
        let empty_flag = Given::of(&[("tags", " ")]);
        let blank = env(&[("MULTIARCH_TAGS", "")]);
        let inputs = Inputs::new(&empty_flag, &blank);
        assert_eq!(inputs.get(&TAGS), None);
    }

    #[test]
    fn switches_and_lists() {
        let e = env(&[
            ("MULTIARCH_ALLOW_MISSING", "maybe"),
            ("MULTIARCH_ANNOTATIONS", "a=1\nb=2, c=3"),
        ]);
        let given = Given::of(&[("annotation", "d=4")]);
        let inputs = Inputs::new(&given, &e);
        let err = inputs.switch(&ALLOW_MISSING).unwrap_err();
        assert!(
            err.to_string().starts_with("MULTIARCH_ALLOW_MISSING"),
            "{err}"
        );
        let items: Vec<&str> = inputs
            .each(&ANNOTATION)
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(items, ["a=1", "b=2", "c=3", "d=4"]);
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_duration("t", "90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("t", "0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("t", "24h").unwrap(), MAX_DURATION);
        for bad in [
            "25h",
            "18446744073709551615",
            "100000000000000000000000",
            "soon",
            "-1s",
        ] {
            assert_eq!(
                parse_duration("t", bad).unwrap_err().exit_code(),
                2,
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_variables_are_named_with_the_closest_known_one() {
        let e = env(&[
            ("MULTIARCH_PLATFORM", "linux/amd64"),
            ("MULTIARCH_TAGS", "x"),
            ("MULTIARCH_SOURCE_LINUX_ARM64", "x"),
            ("MULTIARCH_DIGEST_LINUX_ARM64", "x"),
            ("MULTIARCH_REF", "x"),
            ("MULTIARCH_WHATEVER_ELSE", "x"),
            // Close to the output MULTIARCH_KEPT (outputs are not suggested), and to no setting.
            ("MULTIARCH_TYPO", "x"),
            ("MULTIARCH_TIMOUT", "x"),
            ("MULTIARCH_TAG", "x"),
            ("MULTIARCH_CONTENT_CHEK", "x"),
            ("CI_COMMIT_SHA", "x"),
        ]);
        assert_eq!(
            unknown_variables(&e),
            [
                (
                    "MULTIARCH_CONTENT_CHEK".to_string(),
                    Some("MULTIARCH_CONTENT_CHECK")
                ),
                (
                    "MULTIARCH_PLATFORM".to_string(),
                    Some("MULTIARCH_PLATFORMS")
                ),
                ("MULTIARCH_TAG".to_string(), Some("MULTIARCH_TAGS")),
                ("MULTIARCH_TIMOUT".to_string(), Some("MULTIARCH_TIMEOUT")),
                ("MULTIARCH_TYPO".to_string(), None),
                ("MULTIARCH_WHATEVER_ELSE".to_string(), None),
            ]
        );
    }
}
