//! What one layer holds, as far as it has been read: every path's kind (a file with what its
//! first bytes say, a directory, a symbolic or hard link), the paths it whites out for the
//! layers below (`.wh.<name>`) and the directories it makes opaque (`.wh..wh..opq`), per the
//! OCI image spec's changesets (<https://github.com/opencontainers/image-spec/blob/main/layer.md>).
//!
//! Paths are kept as 64-bit keys (a per-run random hash of their components), not as text: a
//! layer of 100,000 files costs a few MiB. Directories that an entry implies are recorded even
//! when the archive has no entry for them. Pure.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use super::machine::Head;

/// The key of a path: a hash of its components.
pub(crate) type Key = u64;

/// Makes keys; one per check, so keys of different checks never meet.
#[derive(Clone, Default)]
pub(crate) struct Keys(RandomState);

impl Keys {
    /// The keys of every prefix of `components` (`usr`, `usr/bin`, `usr/bin/sh`).
    pub(crate) fn prefixes<S: AsRef<str>>(&self, components: &[S]) -> Vec<Key> {
        let mut h = self.0.build_hasher();
        components
            .iter()
            .map(|c| {
                h.write(c.as_ref().as_bytes());
                // Never part of UTF-8: components cannot run into each other.
                h.write_u8(0xff);
                h.clone().finish()
            })
            .collect()
    }
}

/// A path's components, resolved lexically within the archive (`./a//b/../c` → `a`, `c`), as
/// extraction does: an archive cannot reach above its root.
pub(crate) fn components(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// What a layer has at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    File {
        mode: u32,
        head: Head,
    },
    Symlink(Box<str>),
    /// A hard link: the path it names, in its own layer (an earlier entry) or a layer below.
    Hardlink(Box<str>),
    Other,
}

/// Keys are hashes already: used as they are.
#[derive(Default)]
pub(crate) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map<V> = HashMap<Key, V, BuildHasherDefault<Identity>>;
type Set = HashSet<Key, BuildHasherDefault<Identity>>;

/// One layer's paths, as far as read.
#[derive(Default)]
pub(crate) struct Tree {
    nodes: Map<Node>,
    whiteouts: Set,
    opaque: Set,
    opaque_root: bool,
    /// Entries recorded (for the bound on memory).
    pub(crate) entries: usize,
}

impl Tree {
    /// Records `node` at the path whose prefix keys are `keys`, and the directories it implies.
    /// A later entry for the same path wins, as on extraction.
    pub(crate) fn add(&mut self, keys: &[Key], node: Node) {
        let Some((last, parents)) = keys.split_last() else {
            return;
        };
        self.implied(parents);
        self.nodes.insert(*last, node);
        self.entries += 1;
    }

    /// `.wh.<name>`: the path `keys` names is hidden in the layers below.
    pub(crate) fn whiteout(&mut self, keys: &[Key]) {
        if let Some((last, parents)) = keys.split_last() {
            self.implied(parents);
            self.whiteouts.insert(*last);
            self.entries += 1;
        }
    }

    /// `.wh..wh..opq`: the directory `keys` names (the root when empty) shows nothing of the
    /// layers below.
    pub(crate) fn opaque(&mut self, keys: &[Key]) {
        match keys.last() {
            None => self.opaque_root = true,
            Some(last) => {
                self.implied(keys);
                self.opaque.insert(*last);
            }
        }
        self.entries += 1;
    }

    fn implied(&mut self, dirs: &[Key]) {
        for k in dirs {
            self.nodes.entry(*k).or_insert(Node::Dir);
        }
    }

    pub(crate) fn get(&self, key: Key) -> Option<&Node> {
        self.nodes.get(&key)
    }

    /// True when this layer hides from the layers below it the path whose prefix keys are
    /// `keys`: it whites out the path or a parent, makes a parent opaque, or has something
    /// other than a directory where a parent would be.
    pub(crate) fn cuts(&self, keys: &[Key]) -> bool {
        let Some((last, parents)) = keys.split_last() else {
            return false;
        };
        self.opaque_root
            || self.whiteouts.contains(last)
            || parents.iter().any(|p| {
                self.whiteouts.contains(p)
                    || self.opaque.contains(p)
                    || self.nodes.get(p).is_some_and(|n| *n != Node::Dir)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_lexically_within_the_archive() {
        assert_eq!(components("./usr//bin/../lib/x"), ["usr", "lib", "x"]);
        assert_eq!(components("/../../etc/passwd"), ["etc", "passwd"]);
        assert!(components("./").is_empty());
    }

    #[test]
    fn keys_tell_paths_apart_and_agree_across_calls() {
        let keys = Keys::default();
        let a = keys.prefixes(&["usr", "bin"]);
        let b = keys.prefixes(&["usrb", "in"]);
        assert_ne!(a[1], b[1]);
        assert_eq!(a, keys.prefixes(&["usr", "bin"]));
    }

    #[test]
    fn whiteouts_opaque_directories_and_files_over_parents_cut() {
        let keys = Keys::default();
        let k = |p: &str| keys.prefixes(&components(p));
        let mut t = Tree::default();
        t.add(&k("usr/local/bin/app"), Node::Other);
        assert_eq!(t.get(*k("usr/local").last().unwrap()), Some(&Node::Dir));
        assert!(!t.cuts(&k("usr/local/bin/other")));
        t.whiteout(&k("opt/app"));
        assert!(t.cuts(&k("opt/app")));
        assert!(t.cuts(&k("opt/app/bin/app")));
        assert!(!t.cuts(&k("opt/other")));
        t.opaque(&k("srv"));
        assert!(t.cuts(&k("srv/x")));
        assert!(!t.cuts(&k("srv")));
        t.add(&k("lib"), Node::Symlink("usr/lib".into()));
        assert!(t.cuts(&k("lib/x")));
        t.opaque(&[]);
        assert!(t.cuts(&k("anything")));
    }
}
