//! What the command line said, as the settings read it: the flags given (by their table names)
//! and the positional argument. `cli` fills it in from clap; everything after reads only this.

use std::collections::BTreeMap;

use super::table::Cmd;

/// What the command line said: the command, positional arguments, and every flag given (a switch
/// as `"true"`; a repeated flag once per occurrence).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Given {
    pub(crate) flags: BTreeMap<&'static str, Vec<String>>,
    /// `inspect REFERENCE` / `login HOST`.
    pub(crate) positional: Option<String>,
    /// The command, when a command line was parsed: a variable of a setting this command does
    /// not take is then ignored, as the README promises (tests resolve without one: every
    /// setting is read).
    pub(crate) cmd: Option<Cmd>,
}

impl Given {
    /// Flags from `(flag, value)` pairs (tests).
    #[cfg(test)]
    pub(crate) fn of(pairs: &[(&'static str, &str)]) -> Given {
        let mut given = Given::default();
        for (flag, value) in pairs {
            given
                .flags
                .entry(*flag)
                .or_default()
                .push(value.to_string());
        }
        given
    }
}
