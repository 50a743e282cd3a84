//! Finding the program in the layers read so far, as the runtime would in the merged file
//! system: component by component, symbolic links followed (absolute ones from the root, at
//! most 40, as the kernel allows), hard links to the file they name in their layer or a layer
//! below (what extraction links to), the top-most layer's entry winning,
//! whiteouts and opaque directories hiding what lies below; a bare name through `PATH` (the
//! first executable match, a candidate that cannot be resolved — a link loop, a dangling link, a
//! directory — skipped as Go's `exec.LookPath` skips one it cannot stat); a script's `#!`
//! interpreter (one level; `/usr/bin/env NAME` is judged itself, then NAME looked up in `PATH`).
//!
//! Layers are read from the top down, and this is asked again as entries arrive: an answer comes
//! as soon as the entries read decide it, or it names the path it waits for in the layer being
//! read. One shortcut, so that a program in the top layer never costs the layers below: a name
//! found in `PATH` in a layer above is taken without waiting to see whether a lower layer holds
//! the same name in a directory listed earlier in `PATH`. That shortcut is weighed when a layer
//! is about to be opened; while a layer is read, only the first `PATH` directory still undecided
//! is asked again, and the directories ruled out before it are remembered (`Memo`), so a long
//! `PATH` costs a lookup per directory, not one per directory per entry. Following one path
//! (links, whiteouts) is `paths`'s. Pure.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::machine::{self, Expected, Head, Judgement};
use super::program::{self, Program};
use super::tree::{components, Key, Keys, Node, Tree};

/// The kernel's bound on symbolic links followed in one lookup (`MAXSYMLINKS`).
pub(crate) const MAX_LINKS: usize = 40;

/// How far a layer has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Unread,
    Reading,
    Read,
    /// Cannot be read (foreign, or an unknown media type): what it holds is unknown.
    Skipped,
}

/// The layers, top first, and how far each has been read.
pub(crate) struct View<'a> {
    pub(crate) trees: &'a [Tree],
    pub(crate) states: &'a [State],
    pub(crate) keys: &'a Keys,
    pub(crate) memo: &'a Memo,
    /// A Windows image: paths are shown as its users write them (`C:\app\app.exe`).
    pub(crate) windows: bool,
}

/// What the layers read so far leave undecided, across the evaluations of one walk: how many
/// leading `PATH` directories are ruled out for a name (a verdict on them cannot change as more
/// entries arrive), and how many lookups were made (the work, which tests bound).
#[derive(Default)]
pub(crate) struct Memo {
    ruled_out: RefCell<HashMap<String, usize>>,
    pub(crate) lookups: Cell<u64>,
}

impl Memo {
    fn ruled_out(&self, name: &str) -> usize {
        self.ruled_out.borrow().get(name).copied().unwrap_or(0)
    }

    fn rule_out(&self, name: &str, leading: usize) {
        self.ruled_out
            .borrow_mut()
            .insert(name.to_string(), leading);
    }
}

/// A path an answer waits for: whether the layer being read (or the next) has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wait {
    pub(crate) key: Key,
    /// As the container sees it (`/usr/local/bin`).
    pub(crate) path: String,
}

/// Either an answer, or what is needed to give one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Progress<T> {
    Done(T),
    Pending(Wait),
    /// Decided by a layer that cannot be read.
    Hidden {
        layer: usize,
        path: String,
    },
}

macro_rules! ready {
    ($e:expr) => {
        match $e {
            Progress::Done(v) => v,
            Progress::Pending(w) => return Progress::Pending(w),
            Progress::Hidden { layer, path } => return Progress::Hidden { layer, path },
        }
    };
}

/// A step of how the file was found, for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `entrypoint "app"`.
    Start(String),
    /// A `PATH` directory held it: the path.
    Path(String),
    /// The working directory held it (Windows looks there first): the path.
    WorkingDir(String),
    Symlink {
        from: String,
        to: String,
        layer: usize,
    },
    Hardlink {
        from: String,
        to: String,
    },
    /// A script and its `#!` line.
    Script {
        path: String,
        line: String,
    },
    /// `/usr/bin/env NAME`: NAME.
    Env(String),
}

/// A file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// Absolute, as the container sees it.
    pub(crate) path: String,
    /// Top first.
    pub(crate) layer: usize,
    pub(crate) mode: u32,
    pub(crate) head: Head,
}

/// What finding and judging the program came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    Judged {
        file: Located,
        steps: Vec<Step>,
        judgement: Judgement,
    },
    /// Not there: what was looked for.
    Missing { what: String, steps: Vec<Step> },
    /// More symbolic links than the kernel follows: where the 41st was, and the way there.
    Loop { path: String, steps: Vec<Step> },
}

/// Why a path does not lead to a file: `Ok(what)`, or `Err(path)` past `MAX_LINKS` links.
type Miss = Result<String, String>;

enum Look<'a> {
    Found(usize, &'a Node),
    Absent,
}

impl View<'_> {
    /// A path (its components) as the container's users write it: `/usr/bin/app`, or on
    /// Windows `C:\app\app.exe` (in the lower case lookups use).
    fn shown<S: AsRef<str>>(&self, path: &[S]) -> String {
        let parts: Vec<&str> = path.iter().map(AsRef::as_ref).collect();
        if self.windows {
            format!("C:\\{}", parts.join("\\"))
        } else {
            format!("/{}", parts.join("/"))
        }
    }

    /// The first layer not read to its end (where a pending answer waits).
    fn current(&self) -> usize {
        self.states
            .iter()
            .position(|s| matches!(s, State::Unread | State::Reading))
            .unwrap_or(self.states.len())
    }

    /// Finds a program as the runtime does: a path as it is (relative to the working
    /// directory), a name through `PATH` (Windows: the working directory first, `.exe` added).
    fn find(
        &self,
        name: &str,
        program: &Program,
        steps: &mut Vec<Step>,
    ) -> Progress<Result<Located, Miss>> {
        let windows = program.windows;
        if program::is_path(name, windows) {
            let path = if program::is_absolute(name, windows) {
                program::layer_path(name, windows)
            } else {
                format!("{}/{}", program.workdir, program::layer_path(name, windows))
            };
            return self.resolve(&path, steps);
        }
        let name = if windows {
            let lower = name.to_lowercase();
            if lower.contains('.') {
                lower
            } else {
                format!("{lower}.exe")
            }
        } else {
            name.to_string()
        };
        let dirs: Vec<&str> = if windows {
            std::iter::once(program.workdir.as_str())
                .chain(program.path.iter().map(String::as_str))
                .collect()
        } else {
            program.path.iter().map(String::as_str).collect()
        };
        let current = self.current();
        // About to open a layer (or all read): every directory is weighed, so that one found in
        // a layer above wins over an earlier one still undecided (the shortcut). While a layer
        // is read, the first undecided directory is all the arriving entries can change.
        let weigh_all = self.states.get(current).is_none_or(|s| *s == State::Unread);
        let mut blocked: Option<Progress<()>> = None;
        for (at, dir) in dirs.iter().enumerate().skip(self.memo.ruled_out(&name)) {
            if blocked.is_some() && !weigh_all {
                break;
            }
            let candidate = format!("{dir}/{name}");
            let mut more = Vec::new();
            match self.resolve(&candidate, &mut more) {
                Progress::Done(Ok(file)) if windows || file.mode & 0o111 != 0 => {
                    // An earlier directory still undecided wins if it is decided in the same
                    // layer or above; one found in a layer above wins over it (the shortcut).
                    let before = match &blocked {
                        None => false,
                        Some(Progress::Hidden { layer, .. }) => file.layer >= *layer,
                        Some(_) => file.layer >= current,
                    };
                    if before {
                        break;
                    }
                    let found = self.shown(&components(&candidate));
                    // Windows looks in the working directory before PATH.
                    steps.push(match windows && at == 0 {
                        true => Step::WorkingDir(found),
                        false => Step::Path(found),
                    });
                    steps.extend(more);
                    return Progress::Done(Ok(file));
                }
                // Not executable, not there, a directory, a dangling link or a loop: the runtime
                // cannot run it and goes on to the next directory; so does this, for good.
                Progress::Done(_) => {
                    if blocked.is_none() {
                        self.memo.rule_out(&name, at + 1);
                    }
                }
                Progress::Pending(w) => {
                    blocked.get_or_insert(Progress::Pending(w));
                }
                Progress::Hidden { layer, path } => {
                    blocked.get_or_insert(Progress::Hidden { layer, path });
                }
            }
        }
        match blocked {
            Some(Progress::Pending(w)) => Progress::Pending(w),
            Some(Progress::Hidden { layer, path }) => Progress::Hidden { layer, path },
            _ => Progress::Done(Err(Ok(format!(
                "{name:?} is in no directory of PATH ({}) as an executable file",
                listed(program)
            )))),
        }
    }

    /// Finds the program, follows a script to its interpreter, and judges what it finds.
    pub(crate) fn evaluate(&self, program: &Program, expected: Expected) -> Progress<Finding> {
        let mut steps = vec![Step::Start(program.describe())];
        let file = match ready!(self.find(&program.name, program, &mut steps)) {
            Ok(file) => file,
            Err(miss) => return Progress::Done(missing(miss, steps)),
        };
        let Head::Script(line) = &file.head else {
            return Progress::Done(judged(file, steps, expected, program));
        };
        steps.push(Step::Script {
            path: file.path.clone(),
            line: line.to_string(),
        });
        // Split as the kernel splits it: at blanks only, so a carriage return left by Windows
        // line endings stays in the interpreter's name (`/bin/sh\r`, found nowhere).
        let mut words = line.split(machine::BLANK).filter(|w| !w.is_empty());
        let Some(interpreter) = words.next() else {
            return Progress::Done(Finding::Judged {
                file,
                steps,
                judgement: Judgement::Unjudged(
                    "a script whose #! line names no interpreter".into(),
                ),
            });
        };
        let rest: Vec<&str> = words.collect();
        // Named by the line, not by what it resolves to (often a link to busybox or coreutils).
        let env = interpreter.rsplit('/').next() == Some("env");
        // The kernel loads the interpreter the line names, `/usr/bin/env` too: it must be there
        // and of this machine before what env runs (NAME, through PATH) is looked at.
        let path = if program::is_absolute(interpreter, program.windows) {
            program::layer_path(interpreter, program.windows)
        } else {
            format!("{}/{interpreter}", program.workdir)
        };
        let interpreter = match ready!(self.resolve(&path, &mut steps)) {
            Ok(f) => f,
            Err(miss) => return Progress::Done(missing(miss, steps)),
        };
        if !env || matches!(interpreter.head, Head::Script(_)) {
            return Progress::Done(interpreted(interpreter, steps, expected, program));
        }
        let finding = judged(interpreter, steps, expected, program);
        let Finding::Judged {
            judgement: Judgement::Matches | Judgement::Unjudged(_),
            mut steps,
            file,
        } = finding
        else {
            return Progress::Done(finding);
        };
        let Some(name) = env_program(&rest) else {
            return Progress::Done(Finding::Judged {
                file,
                steps,
                judgement: Judgement::Unjudged("a script run by env without a program name".into()),
            });
        };
        steps.push(Step::Env(name.to_string()));
        let interpreter = match ready!(self.find(name, program, &mut steps)) {
            Ok(f) => f,
            Err(miss) => return Progress::Done(missing(miss, steps)),
        };
        Progress::Done(interpreted(interpreter, steps, expected, program))
    }
}

/// Judges a script's interpreter: one level is followed, so one that is itself a script is not
/// judged.
fn interpreted(
    interpreter: Located,
    steps: Vec<Step>,
    expected: Expected,
    program: &Program,
) -> Finding {
    if let Head::Script(_) = interpreter.head {
        let path = interpreter.path.clone();
        return Finding::Judged {
            file: interpreter,
            steps,
            judgement: Judgement::Unjudged(format!(
                "the script's interpreter {path} is itself a script (one level is followed)"
            )),
        };
    }
    judged(interpreter, steps, expected, program)
}

fn judged(file: Located, steps: Vec<Step>, expected: Expected, program: &Program) -> Finding {
    let os = if program.windows { "windows" } else { "linux" };
    let judgement = machine::judge(&file.head, expected, os);
    Finding::Judged {
        file,
        steps,
        judgement,
    }
}

fn missing(miss: Miss, steps: Vec<Step>) -> Finding {
    match miss {
        Ok(what) => Finding::Missing { what, steps },
        Err(path) => Finding::Loop { path, steps },
    }
}

/// The program `env` runs, from what follows `env` on a `#!` line: options (`-i`, `-S`, `-u
/// NAME`) and `NAME=value` assignments skipped.
fn env_program<'a>(args: &[&'a str]) -> Option<&'a str> {
    let mut args = args.iter();
    while let Some(a) = args.next() {
        match *a {
            "-u" | "--unset" | "-C" | "--chdir" => {
                args.next();
            }
            a if a.starts_with('-') => {
                // `-S` may carry the program glued on (`-Spython3`).
                if let Some(glued) = a.strip_prefix("-S").filter(|g| !g.is_empty()) {
                    return Some(glued);
                }
            }
            a if a.contains('=') => {}
            a => return Some(a),
        }
    }
    None
}

/// The `PATH` looked in, as the config writes it; a long one shortened, and the directories
/// past `MAX_PATH_DIRS` counted.
fn listed(program: &Program) -> String {
    const SHOWN: usize = 8;
    let separator = if program.windows { ";" } else { ":" };
    let dirs = &program.path;
    let all = dirs.len() + program.path_dropped;
    let mut out: Vec<String> = dirs.iter().take(SHOWN).map(|d| format!("/{d}")).collect();
    if all > SHOWN {
        out.push(format!("… {all} directories in all"));
    }
    let mut out = out.join(separator);
    if program.path_dropped > 0 {
        out.push_str(&format!(
            "; only the first {} were looked in, as multiarch looks in at most {}",
            program::MAX_PATH_DIRS,
            program::MAX_PATH_DIRS
        ));
    }
    out
}

mod paths;

#[cfg(test)]
mod tests;
