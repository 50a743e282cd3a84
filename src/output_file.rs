//! Files the user names for us to write (the dotenv report, a login's auth file): checked before
//! any request, so a run never pushes and then fails to say so, and written so that nothing but
//! the named regular file changes. A device, FIFO or socket (`/dev/null`, a named pipe), anything
//! in `/dev` or `/proc`, and the file this process logs to are refused: replacing them with a
//! regular file would break the rest of the job (a root CI job that "switches the report off" with
//! `/dev/null` would turn `/dev/null` into a file).

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::debug;

use crate::error::Error;
use crate::user_file::irregular;

/// Checks that `path` can be written after the run: not a directory or special file, not in
/// `/dev` or `/proc`, not our own stdout/stderr, and a file can be created next to it (a unique
/// temporary one, removed at once). A symlink is followed: the file it points to is what gets
/// written. Returns the path to write. `setting` and `hint` name the setting in errors.
pub(crate) fn writable(path: &Path, setting: &str, hint: &str) -> Result<PathBuf, Error> {
    let target = regular(path, setting, hint)?;
    creatable_beside(path, &target, setting, hint)?;
    Ok(target)
}

/// `writable` but for the last check (a file can be created next to it): the path to write,
/// for a caller that needs another file beside it first (a login's lock file).
pub(crate) fn regular(path: &Path, setting: &str, hint: &str) -> Result<PathBuf, Error> {
    let bad = |reason: String| Error::invalid(setting, path.display().to_string(), reason, hint);
    let target = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink points at where the file will be.
            match std::fs::read_link(path) {
                Ok(to) if to.is_absolute() => to,
                Ok(to) => dir_of(path).join(to),
                Err(_) => path.to_path_buf(),
            }
        }
        Err(e) => return Err(bad(format!("it cannot be reached ({e})"))),
    };
    for shown in [path, target.as_path()] {
        if let Some(system) = system_dir(shown) {
            return Err(bad(format!(
                "it is in {system}, which holds devices and process state, not reports"
            )));
        }
    }
    if let Ok(meta) = std::fs::metadata(&target) {
        if let Some(kind) = irregular(meta.file_type()) {
            return Err(bad(format!("it is {kind}, not a regular file")));
        }
        if let Some(stream) = own_stream(&meta) {
            return Err(bad(format!(
                "it is the file this job's {stream} goes to; writing it would replace the log"
            )));
        }
    }
    Ok(target)
}

/// `writable`'s last check: a file can be created next to `target` (what `path` leads to).
pub(crate) fn creatable_beside(
    path: &Path,
    target: &Path,
    setting: &str,
    hint: &str,
) -> Result<(), Error> {
    let probe = temp_beside(target);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            Error::invalid(
                setting,
                path.display().to_string(),
                format!(
                    "no file can be created in {} ({e})",
                    dir_of(target).display()
                ),
                hint,
            )
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes through a unique temporary file and a rename, so a reader never sees half a file and no
/// file of the user's is touched but the one named. Where the rename cannot replace the file (a
/// bind-mounted file, as containers and Kubernetes subPaths mount them: EBUSY; another file
/// system), the file is rewritten in place instead, its mode first set to `mode`. A `mode` that
/// gives nothing to group and others marks the content as a secret: if the file cannot be made
/// so and others could read it, nothing is written.
pub(crate) fn write(path: &Path, content: &str, mode: u32) -> Result<(), Error> {
    let failed = |source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    let tmp = temp_beside(path);
    let staged = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(content.as_bytes()).and_then(|()| f.sync_all()));
    if let Err(e) = staged {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            debug!(path = %path.display(), error = %e, "cannot replace the file; rewriting it in place");
            in_place(path, content, mode).map_err(|inner| {
                failed(std::io::Error::new(
                    inner.kind(),
                    format!("it cannot be replaced ({e}) and was rewritten in place: {inner}"),
                ))
            })
        }
    }
}

/// Rewrites an existing regular file (never creates one, never follows into a special file),
/// with `mode` set on it before anything is written (see `write` for secrets).
fn in_place(path: &Path, content: &str, mode: u32) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if irregular(meta.file_type()).is_some() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    if let Err(e) = f.set_permissions(std::fs::Permissions::from_mode(mode)) {
        let now = f.metadata()?.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 && now & 0o077 != 0 {
            return Err(std::io::Error::new(
                e.kind(),
                format!("its mode {now:04o} lets others read it and it cannot be made {mode:04o} ({e}), so the secret was not written"),
            ));
        }
        debug!(path = %path.display(), error = %e, "mode not changed");
    }
    f.set_len(0)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

/// `/dev` or `/proc`, when `path` lies in one.
fn system_dir(path: &Path) -> Option<&'static str> {
    ["/dev", "/proc"]
        .into_iter()
        .find(|dir| path.starts_with(dir))
}

/// `"stdout"`/`"stderr"` when `meta` is the very file one of them writes to.
fn own_stream(meta: &std::fs::Metadata) -> Option<&'static str> {
    [("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]
        .into_iter()
        .find(|(_, fd)| {
            std::fs::metadata(fd).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
        })
        .map(|(name, _)| name)
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A name in the same directory that nobody else uses: `.multiarch.env.<pid>.<nanos>.tmp`.
fn temp_beside(path: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dotenv".into());
    dir_of(path).join(format!(".{name}.{}.{nanos}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt as _;

    use super::*;

    const SETTING: &str = "--dotenv / MULTIARCH_DOTENV";

    fn check(path: &Path) -> Result<PathBuf, Error> {
        writable(path, SETTING, "name a file")
    }

    #[test]
    fn the_path_is_checked_before_anything_is_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("multiarch.env");
        assert_eq!(check(&file).unwrap(), file);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the probe is removed"
        );
        for bad in [
            dir.path().to_path_buf(),
            dir.path().join("missing/multiarch.env"),
            PathBuf::from("/proc/multiarch.env"),
        ] {
            let e = check(&bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{}", bad.display());
        }
    }

    /// `/dev/null`, a FIFO, and a symlink to either are refused: nothing but a regular file is
    /// ever replaced.
    #[test]
    fn special_files_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = crate::testing::fifo(&dir.path().join("pipe"));
        let link = dir.path().join("to-null.env");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let fifo_link = dir.path().join("to-pipe.env");
        std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
        for (bad, why) in [
            (PathBuf::from("/dev/null"), "in /dev"),
            (PathBuf::from("/dev/stderr"), "in /dev"),
            (link, "in /dev"),
            (fifo.clone(), "named pipe"),
            (fifo_link, "named pipe"),
        ] {
            let e = check(&bad).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(why), "{}: {e}", bad.display());
        }
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
    }

    /// The path a bind-mounted file takes: the file keeps its inode, gets the mode asked for
    /// before the content, and loses what it held before.
    #[test]
    fn a_file_rewritten_in_place_gets_the_mode_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(&file, "a longer old content\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let inode = std::fs::metadata(&file).unwrap().ino();
        in_place(&file, "{}\n", 0o600).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.ino(), inode);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}\n");
    }

    #[test]
    fn writes_through_a_symlink_and_leaves_other_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.env");
        let link = dir.path().join("report.env");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let neighbour = dir.path().join("report.tmp");
        std::fs::write(&neighbour, "mine").unwrap();
        let target = check(&link).unwrap();
        write(&target, "A=1\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "A=1\n");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&neighbour).unwrap(), "mine");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp") && n != "report.tmp")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
