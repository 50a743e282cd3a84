//! The walk through an image's layers, from the top down: each layer opened only when the
//! answer needs it, its entries recorded as they stream by (`tree`), and the program looked for
//! again whenever an entry it waits for arrives (`resolve`); the walk stops — dropping the
//! layer's stream — the moment the answer is known. Synchronous (it runs on a blocking thread,
//! fed by the registry's stream); pure apart from the layers it is handed.

use std::io::{self, Read};

use super::decompress;
use super::machine::Expected;
use super::program::{self, Program};
use super::resolve::{Finding, Progress, State, View};
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

/// How the walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Walked {
    Found(Finding),
    /// The answer lies in a layer that cannot be read.
    Hidden {
        layer: usize,
        path: String,
    },
    /// The budget was spent before the answer was known.
    OverBudget,
    /// A layer could not be read: which (top first), and why.
    Unreadable {
        layer: usize,
        why: String,
    },
}

/// Walks `layers` (top first; `Some(why)` for one that cannot be read) for `program`, opening
/// layer `i` with `open(i)`; returns how it ended and how many layers were opened.
pub(crate) fn walk(
    program: &Program,
    expected: Expected,
    layers: &[Option<String>],
    limits: Limits,
    open: &mut dyn FnMut(usize) -> io::Result<Box<dyn Read>>,
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
        }
        .evaluate(program, expected)
    };
    for i in 0..n {
        let mut waiting = match evaluate(&trees, &states) {
            Progress::Done(f) => return (Walked::Found(f), opened),
            Progress::Hidden { layer, path } => return (Walked::Hidden { layer, path }, opened),
            Progress::Pending(k) => k,
        };
        if layers[i].is_some() {
            states[i] = State::Skipped;
            continue;
        }
        opened += 1;
        let unreadable = |why: String| Walked::Unreadable { layer: i, why };
        let reader = match open(i).and_then(decompress::open) {
            Ok(r) => r,
            Err(e) => return (stopped(e, unreadable), opened),
        };
        let mut archive = Entries::new(reader, limits.expanded.saturating_sub(expanded));
        states[i] = State::Reading;
        loop {
            let entry = match archive.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(Problem::TooLarge) => return (Walked::OverBudget, opened),
                Err(Problem::Invalid(why)) => return (unreadable(why), opened),
                Err(Problem::Io(e)) => return (stopped(e, unreadable), opened),
            };
            let touched = record(&mut trees[i], &keys, entry, program.windows);
            entries += 1;
            if entries > limits.entries {
                return (Walked::OverBudget, opened);
            }
            if touched.contains(&waiting) {
                match evaluate(&trees, &states) {
                    Progress::Done(f) => return (Walked::Found(f), opened),
                    Progress::Hidden { layer, path } => {
                        return (Walked::Hidden { layer, path }, opened)
                    }
                    Progress::Pending(k) => waiting = k,
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

/// A stream that stopped: over budget, or unreadable with the feeder's reason or the decoder's.
fn stopped(e: io::Error, unreadable: impl Fn(String) -> Walked) -> Walked {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Stop>()) {
        Some(Stop::Budget) => Walked::OverBudget,
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
