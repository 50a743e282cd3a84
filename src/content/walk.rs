//! The walk through an image's layers, from the top down: each layer opened only when the
//! answer needs it, its entries recorded as they stream by (`tree`), and the program looked for
//! again whenever an entry it waits for arrives (`resolve`); the walk stops — dropping the
//! layer's stream — the moment the answer is known. Synchronous (it runs on a blocking thread,
//! fed by the registry's stream); pure apart from the layers it is handed.

use std::io::{self, Read};

use super::decompress;
use super::machine::Expected;
use super::program::{self, Program};
use super::resolve::{Finding, Memo, Progress, State, View, Wait};
use super::tar::{Entries, Entry, Kind, Problem};
use super::tree::{components, Key, Keys, Node, Tree};

/// Why the stream of a layer stopped before its end (sent by whoever feeds the walk).
#[derive(Debug)]
pub(crate) enum Stop {
    /// The byte budget is spent.
    Budget,
    /// Reading failed: why.
    Failed(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Budget => f.write_str("the read budget is spent"),
            Stop::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Stop {}

/// The bounds of one walk besides the bytes downloaded (which the feeder counts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Archive bytes, once decompressed, over all layers read.
    pub(crate) expanded: u64,
    /// Entries recorded over all layers read (each costs a few dozen bytes of memory).
    pub(crate) entries: usize,
}

/// Which bound a walk reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The bytes downloaded (`MULTIARCH_CONTENT_BUDGET`).
    Download,
    /// The archive bytes once decompressed (`Limits::expanded`).
    Expanded,
    /// The entries recorded (`Limits::entries`).
    Entries,
}

/// How the walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Walked {
    Found(Finding),
    /// The answer lies in a layer that cannot be read.
    Hidden {
        layer: usize,
        path: String,
    },
    /// A bound was reached in a layer (top first) before the answer was known: which, and the
    /// path the answer waited for.
    OverBudget {
        layer: usize,
        limit: Limit,
        waiting: String,
    },
    /// A layer could not be read: which (top first), and why.
    Unreadable {
        layer: usize,
        why: String,
    },
}

/// How a walk ended and what it cost.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) walked: Walked,
    /// Layers opened.
    pub(crate) opened: usize,
    /// Paths looked up in the layers' trees (the CPU work, which grows with `PATH` and the
    /// entries awaited, never with their product).
    pub(crate) lookups: u64,
}

/// Walks `layers` (top first; `Some(why)` for one that cannot be read) for `program`, opening
/// layer `i` with `open(i)`.
pub(crate) fn walk(
    program: &Program,
    expected: Expected,
    layers: &[Option<String>],
    limits: Limits,
    open: &mut dyn FnMut(usize) -> io::Result<Box<dyn Read>>,
) -> Report {
    let memo = Memo::default();
    let (walked, opened) = walk_layers(program, expected, layers, limits, open, &memo);
    Report {
        walked,
        opened,
        lookups: memo.lookups.get(),
    }
}

fn walk_layers(
    program: &Program,
    expected: Expected,
    layers: &[Option<String>],
    limits: Limits,
    open: &mut dyn FnMut(usize) -> io::Result<Box<dyn Read>>,
    memo: &Memo,
) -> (Walked, usize) {
    let keys = Keys::default();
    let n = layers.len();
    let mut trees: Vec<Tree> = (0..n).map(|_| Tree::default()).collect();
    let mut states = vec![State::Unread; n];
    let mut opened = 0;
    let mut expanded = 0u64;
    let mut entries = 0usize;
    let evaluate = |trees: &[Tree], states: &[State]| {
        View {
            trees,
            states,
            keys: &keys,
            memo,
            windows: program.windows,
        }
        .evaluate(program, expected)
    };
    for i in 0..n {
        let mut waiting = match evaluate(&trees, &states) {
            Progress::Done(f) => return (Walked::Found(f), opened),
            Progress::Hidden { layer, path } => return (Walked::Hidden { layer, path }, opened),
            Progress::Pending(w) => w,
        };
        if layers[i].is_some() {
            states[i] = State::Skipped;
            continue;
        }
        opened += 1;
        let unreadable = |why: String| Walked::Unreadable { layer: i, why };
        let over = |limit: Limit, waiting: &Wait| Walked::OverBudget {
            layer: i,
            limit,
            waiting: waiting.path.clone(),
        };
        let reader = match open(i).and_then(decompress::open) {
            Ok(r) => r,
            Err(e) => {
                return (
                    stopped(e, unreadable, over(Limit::Download, &waiting)),
                    opened,
                )
            }
        };
        let mut archive = Entries::new(reader, limits.expanded.saturating_sub(expanded));
        states[i] = State::Reading;
        loop {
            let entry = match archive.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(Problem::TooLarge) => return (over(Limit::Expanded, &waiting), opened),
                Err(Problem::Invalid(why)) => return (unreadable(why), opened),
                Err(Problem::Io(e)) => {
                    return (
                        stopped(e, unreadable, over(Limit::Download, &waiting)),
                        opened,
                    )
                }
            };
            let touched = record(&mut trees[i], &keys, entry, program.windows);
            entries += 1;
            if entries > limits.entries {
                return (over(Limit::Entries, &waiting), opened);
            }
            if touched.contains(&waiting.key) {
                match evaluate(&trees, &states) {
                    Progress::Done(f) => return (Walked::Found(f), opened),
                    Progress::Hidden { layer, path } => {
                        return (Walked::Hidden { layer, path }, opened)
                    }
                    Progress::Pending(w) => waiting = w,
                }
            }
        }
        expanded += archive.read;
        states[i] = State::Read;
    }
    match evaluate(&trees, &states) {
        Progress::Done(f) => (Walked::Found(f), opened),
        Progress::Hidden { layer, path } => (Walked::Hidden { layer, path }, opened),
        // Every layer is read: nothing is left to wait for.
        Progress::Pending(_) => (
            Walked::Unreadable {
                layer: n.saturating_sub(1),
                why: "the layers end before the answer".into(),
            },
            opened,
        ),
    }
}

/// A stream that stopped: over the download budget, or unreadable with the feeder's reason or
/// the decoder's.
fn stopped(e: io::Error, unreadable: impl Fn(String) -> Walked, over: Walked) -> Walked {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Stop>()) {
        Some(Stop::Budget) => over,
        Some(Stop::Failed(why)) => unreadable(why.clone()),
        None => unreadable(e.to_string()),
    }
}

/// Records an entry in its layer's tree; returns the keys of the paths it makes present.
fn record(tree: &mut Tree, keys: &Keys, entry: Entry, windows: bool) -> Vec<Key> {
    let Some(path) = layer_form(&entry.path, windows) else {
        return Vec::new();
    };
    let mut parts = components(&path);
    let Some(name) = parts.pop() else {
        return Vec::new();
    };
    if name == ".wh..wh..opq" {
        let k = keys.prefixes(&parts);
        tree.opaque(&k);
        return k;
    }
    if name.starts_with(".wh..wh.") {
        // aufs bookkeeping (`.wh..wh.plnk`), not a whiteout.
        return Vec::new();
    }
    if let Some(hidden) = name.strip_prefix(".wh.") {
        parts.push(hidden);
        let k = keys.prefixes(&parts);
        tree.whiteout(&k);
        return k[..k.len() - 1].to_vec();
    }
    parts.push(name);
    let node = match entry.kind {
        Kind::File(head) => Node::File {
            mode: entry.mode,
            head,
        },
        Kind::Dir => Node::Dir,
        Kind::Symlink(to) => Node::Symlink(to.into()),
        Kind::Hardlink(to) => match layer_form(&to, windows) {
            Some(to) => Node::Hardlink(to.into()),
            None => Node::Other,
        },
        Kind::Other => Node::Other,
    };
    let k = keys.prefixes(&parts);
    tree.add(&k, node);
    k
}

/// An entry's path as the container sees it: Windows layers keep files under `Files/`
/// (`Hives/` holds registry hives) and compare without case.
fn layer_form(path: &str, windows: bool) -> Option<String> {
    if !windows {
        return Some(path.to_string());
    }
    let lower = program::layer_path(path, true);
    lower
        .strip_prefix("files/")
        .map(str::to_string)
        .or_else(|| (lower == "files").then(String::new))
}

#[cfg(test)]
mod tests;
