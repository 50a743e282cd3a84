//! Reading one setting: its flag, else its `MULTIARCH_*` variable (an empty one counts as unset,
//! since GitLab passes empty component inputs as empty strings), with the origin kept so that
//! errors name exactly what the user wrote (`--tags`, `MULTIARCH_TAGS`, `CI_COMMIT_TAG`) and
//! `--log debug` shows where each value came from. Also: the shared value parsers, and the
//! warning for `MULTIARCH_*` variables nobody reads (a typo must not be silently ignored).

use std::time::Duration;

use super::environment;
use super::table::{Kind, Setting, OTHER_PREFIXES, OTHER_VARIABLES, SETTINGS};
use super::Env;
use crate::cli::Given;
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

/// The flags given and the environment: everything settings are resolved from.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub(crate) given: &'a Given,
    pub(crate) env: &'a Env,
}

impl<'a> Inputs<'a> {
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

    /// The flag's (last) value, else the variable; empty counts as unset.
    pub(crate) fn get(&self, s: &'static Setting) -> Option<Found<'a>> {
        let flag = self
            .given
            .flags
            .get(s.flag)
            .and_then(|v| v.last())
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty());
        match flag {
            Some(text) => Some(Found {
                text,
                origin: Origin::Flag(s.flag),
            }),
            None => self.var(s.variable).map(|text| Found {
                text,
                origin: Origin::Variable(s.variable),
            }),
        }
    }

    /// A switch: given, else its variable as a boolean, else false.
    pub(crate) fn switch(&self, s: &'static Setting) -> Result<(bool, Origin), Error> {
        debug_assert_eq!(s.kind, Kind::Switch);
        match self.get(s) {
            None => Ok((false, Origin::Default)),
            Some(f) => Ok((parse_bool(&f.origin.name(), f.text)?, f.origin)),
        }
    }

    /// A repeatable setting: the variable's list items first, then each flag (later ones win
    /// where order matters), each with its origin.
    pub(crate) fn each(&self, s: &'static Setting) -> Vec<(&'a str, Origin)> {
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
            let closest = known
                .iter()
                .map(|n| (strsim::levenshtein(k, n), *n))
                .min()
                .filter(|(distance, _)| *distance <= 4)
                .map(|(_, n)| n);
            (k.clone(), closest)
        })
        .collect()
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
        let inputs = Inputs {
            given: &none,
            env: &e,
        };
        assert_eq!(
            inputs.get(&TAGS),
            Some(Found {
                text: "from-var",
                origin: Origin::Variable("MULTIARCH_TAGS")
            })
        );
        let given = Given::of(&[("tags", "from-flag")]);
        let inputs = Inputs {
            given: &given,
            env: &e,
        };
        assert_eq!(inputs.get(&TAGS).unwrap().origin.name(), "--tags");
        let empty_flag = Given::of(&[("tags", " ")]);
        let blank = env(&[("MULTIARCH_TAGS", "")]);
        let inputs = Inputs {
            given: &empty_flag,
            env: &blank,
        };
        assert_eq!(inputs.get(&TAGS), None);
    }

    #[test]
    fn switches_and_lists() {
        let e = env(&[
            ("MULTIARCH_ALLOW_MISSING", "maybe"),
            ("MULTIARCH_ANNOTATIONS", "a=1\nb=2, c=3"),
        ]);
        let given = Given::of(&[("annotation", "d=4")]);
        let inputs = Inputs {
            given: &given,
            env: &e,
        };
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
            ("CI_COMMIT_SHA", "x"),
        ]);
        assert_eq!(
            unknown_variables(&e),
            [
                (
                    "MULTIARCH_PLATFORM".to_string(),
                    Some("MULTIARCH_PLATFORMS")
                ),
                ("MULTIARCH_WHATEVER_ELSE".to_string(), None),
            ]
        );
    }
}
