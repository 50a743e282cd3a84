//! Following one path through the layers read so far, as extraction and the kernel do: what
//! the layers from one down hold at a path (whiteouts and opaque directories hiding what lies
//! below), symbolic links among its directories and at its end (absolute ones from the root, at
//! most `MAX_LINKS`), hard links to the file they name in their own layer or a layer below.

use super::{Located, Look, Miss, Progress, State, Step, View, Wait, MAX_LINKS};
use crate::content::tree::{components, Node};

type Reached<'a> = (Vec<String>, usize, &'a Node);

/// Hard links in a chain followed before giving up: extraction links each to its target's file,
/// so a chain has no bound of its own; this one only ends a ring (links naming each other).
const MAX_HARD_LINKS: usize = 1024;

impl View<'_> {
    /// What the layers from `from` down have at `path`: the file system a layer was applied
    /// onto, which is what a hard link in it names.
    pub(super) fn lookup_from<S: AsRef<str>>(&self, path: &[S], from: usize) -> Progress<Look<'_>> {
        self.memo.lookups.set(self.memo.lookups.get() + 1);
        let keys = self.keys.prefixes(path);
        let key = *keys.last().expect("never the root");
        let wait = || {
            Progress::Pending(Wait {
                key,
                path: self.shown(path),
            })
        };
        let layers = self.trees.iter().zip(self.states).enumerate();
        for (i, (tree, state)) in layers.skip(from) {
            match state {
                State::Unread => return wait(),
                State::Skipped => {
                    return Progress::Hidden {
                        layer: i,
                        path: self.shown(path),
                    }
                }
                State::Reading => {
                    return match tree.get(key) {
                        Some(node) => Progress::Done(Look::Found(i, node)),
                        None => wait(),
                    }
                }
                State::Read => {
                    if let Some(node) = tree.get(key) {
                        return Progress::Done(Look::Found(i, node));
                    }
                    if tree.cuts(&keys) {
                        return Progress::Done(Look::Absent);
                    }
                }
            }
        }
        Progress::Done(Look::Absent)
    }

    /// Resolves an absolute path (in the layers' form) to a file.
    pub(super) fn resolve(
        &self,
        path: &str,
        steps: &mut Vec<Step>,
    ) -> Progress<Result<Located, Miss>> {
        self.resolve_counted(path, &mut 0, steps)
    }

    /// `resolve`, the symbolic links followed so far counted in `links` (a lookup that went
    /// through a hard link to a symbolic link goes on with the same count).
    fn resolve_counted(
        &self,
        path: &str,
        links: &mut usize,
        steps: &mut Vec<Step>,
    ) -> Progress<Result<Located, Miss>> {
        let mut path = path.to_string();
        loop {
            let (done, layer, node) = match ready!(self.reach(&path, 0, links, steps)) {
                Ok(reached) => reached,
                Err(miss) => return Progress::Done(Err(miss)),
            };
            match node {
                Node::File { mode, head } => {
                    return Progress::Done(Ok(Located {
                        path: self.shown(&done),
                        layer,
                        mode: *mode,
                        head: head.clone(),
                    }))
                }
                Node::Hardlink(to) => {
                    steps.push(Step::Hardlink {
                        from: self.shown(&done),
                        to: self.shown(&components(to)),
                    });
                    return self.linked(to, layer, &done, links, steps);
                }
                Node::Symlink(to) => {
                    if let Err(miss) = self.follow(&done, to, layer, links, steps) {
                        return Progress::Done(Err(miss));
                    }
                    path = beside(&done, to);
                }
                Node::Dir => {
                    return Progress::Done(Err(Ok(format!("{} is a directory", self.shown(&done)))))
                }
                Node::Other => {
                    return Progress::Done(Err(Ok(format!(
                        "{} is not a regular file",
                        self.shown(&done)
                    ))))
                }
            }
        }
    }

    /// Counts one more symbolic link followed, at `at` (pointing to `to`, held by `layer`), and
    /// says it in `steps`; past `MAX_LINKS` (a loop) the miss names where.
    fn follow(
        &self,
        at: &[String],
        to: &str,
        layer: usize,
        links: &mut usize,
        steps: &mut Vec<Step>,
    ) -> Result<(), Miss> {
        *links += 1;
        if *links > MAX_LINKS {
            return Err(Err(self.shown(at)));
        }
        steps.push(Step::Symlink {
            from: self.shown(at),
            to: to.to_string(),
            layer,
        });
        Ok(())
    }

    /// Follows `path` to its last component in the layers from `from` down: every symbolic link
    /// among its directories is followed (counted in `links`, at most `MAX_LINKS`), the last
    /// component is not interpreted. Its path as resolved, the layer that has it, and what it is.
    fn reach(
        &self,
        path: &str,
        from: usize,
        links: &mut usize,
        steps: &mut Vec<Step>,
    ) -> Progress<Result<Reached<'_>, Miss>> {
        let mut todo: std::collections::VecDeque<String> =
            path.split('/').map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => done.push(c),
            }
            let last = !todo.iter().any(|c| !c.is_empty() && c != ".");
            let (layer, node) = match ready!(self.lookup_from(&done, from)) {
                Look::Absent => {
                    return Progress::Done(Err(Ok(format!("{} does not exist", self.shown(&done)))))
                }
                Look::Found(i, node) => (i, node),
            };
            if last {
                return Progress::Done(Ok((done, layer, node)));
            }
            match node {
                Node::Dir => {}
                Node::Symlink(to) => {
                    if let Err(miss) = self.follow(&done, to, layer, links, steps) {
                        return Progress::Done(Err(miss));
                    }
                    done.pop();
                    if to.starts_with('/') {
                        done.clear();
                    }
                    for c in to.rsplit('/') {
                        todo.push_front(c.to_string());
                    }
                }
                _ => {
                    return Progress::Done(Err(Ok(format!(
                        "{} is not a directory",
                        self.shown(&done)
                    ))))
                }
            }
        }
        Progress::Done(Err(Ok("the root is a directory".into())))
    }

    /// The file a hard link at `link` in `layer` names: an earlier entry of that layer, or what
    /// the layers below it hold (extraction links to what the file system holds when the layer is
    /// applied, as containerd and Docker do: symbolic links among the name's directories
    /// followed there, the last component taken as it is). A link to another hard link (one a
    /// lower layer holds) is followed, at most `MAX_HARD_LINKS` deep; a link to a symbolic link is
    /// that symbolic link at `link`, resolved from there in the merged file system.
    fn linked(
        &self,
        to: &str,
        layer: usize,
        link: &[String],
        links: &mut usize,
        steps: &mut Vec<Step>,
    ) -> Progress<Result<Located, Miss>> {
        let (mut to, mut layer) = (to.to_string(), layer);
        for _ in 0..MAX_HARD_LINKS {
            let (target, at, node) = match ready!(self.reach(&to, layer, links, steps)) {
                Ok(reached) => reached,
                Err(miss) => return Progress::Done(Err(miss)),
            };
            match node {
                Node::File { mode, head } => {
                    return Progress::Done(Ok(Located {
                        path: self.shown(&target),
                        layer: at,
                        mode: *mode,
                        head: head.clone(),
                    }))
                }
                Node::Hardlink(next) if components(next) == target => {
                    return Progress::Done(Err(Ok(format!(
                        "{} is a hard link to itself",
                        self.shown(&target)
                    ))))
                }
                Node::Hardlink(next) => (to, layer) = (next.to_string(), at),
                Node::Symlink(points) => {
                    if let Err(miss) = self.follow(link, points, at, links, steps) {
                        return Progress::Done(Err(miss));
                    }
                    return self.resolve_counted(&beside(link, points), links, steps);
                }
                Node::Dir | Node::Other => {
                    return Progress::Done(Err(Ok(format!(
                        "{} is named by a hard link but is not a regular file",
                        self.shown(&target)
                    ))))
                }
            }
        }
        Progress::Done(Err(Ok(format!(
            "{} is reached through more than {MAX_HARD_LINKS} hard links (a ring), never a file",
            self.shown(&components(&to))
        ))))
    }
}

/// Where a symbolic link at `link` pointing to `to` leads: `to` itself when absolute, else `to`
/// in the link's directory.
fn beside(link: &[String], to: &str) -> String {
    match to.starts_with('/') {
        true => to.to_string(),
        false => format!("{}/{to}", link[..link.len().saturating_sub(1)].join("/")),
    }
}
