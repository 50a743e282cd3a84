//! Reading a file the user named — the spec, the CA file, a docker config or auth file — as a
//! regular file (a symbolic link to one is followed) of bounded size. Anything else is a
//! misconfiguration that must fail at once with exit 2, naming the setting, the path and why: a
//! FIFO blocks a reader until some writer comes (forever, in a CI job), `/dev/zero` never ends,
//! a directory is a typo.
//!
//! The type is looked at before the file is opened, because `open(2)` itself blocks on a FIFO;
//! it is looked at again on the open file, and the read stops one byte past the bound, so a file
//! swapped or grown in between is still refused rather than read without end.
//!
//! A leading UTF-8 byte order mark is dropped: Windows editors write one, and neither YAML
//! parsers (serde_norway reads it as part of the first key) nor JSON (RFC 8259 §8.1) want it.

use std::fs::{File, FileType, Metadata};
use std::io::Read as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use crate::error::Error;

/// The most read from a CA file or a docker config: the whole Mozilla CA bundle is about
/// 220 KiB, a docker config a few hundred bytes per registry.
pub(crate) const MAX_BYTES: u64 = 1024 * 1024;

/// The byte order mark some editors put at the start of a UTF-8 file.
const BOM: char = '\u{feff}';

/// The text of the file at `path` that `setting` names, at most `limit` bytes, without a leading
/// byte order mark.
pub(crate) fn read(setting: &str, path: &Path, limit: u64) -> Result<String, Error> {
    let found = std::fs::metadata(path).map_err(|e| unreadable(setting, path, e))?;
    read_checked(setting, path, &found, limit)
}

/// The same, with `None` when nothing is there (a dangling symbolic link included): for files
/// looked for in several places (a docker config).
pub(crate) fn read_if_exists(
    setting: &str,
    path: &Path,
    limit: u64,
) -> Result<Option<String>, Error> {
    match std::fs::metadata(path) {
        Ok(found) => read_checked(setting, path, &found, limit).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(setting, path, e)),
    }
}

fn read_checked(setting: &str, path: &Path, found: &Metadata, limit: u64) -> Result<String, Error> {
    usable(setting, path, found, limit)?;
    let file = File::open(path).map_err(|e| unreadable(setting, path, e))?;
    let opened = file.metadata().map_err(|e| unreadable(setting, path, e))?;
    usable(setting, path, &opened, limit)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(setting, path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(setting, path, None, limit));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::invalid(
            setting,
            path.display().to_string(),
            "it is not UTF-8 text",
            "name a text file",
        )
    })?;
    Ok(match text.strip_prefix(BOM) {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Refuses what is not a regular file, or is larger than `limit`.
fn usable(setting: &str, path: &Path, found: &Metadata, limit: u64) -> Result<(), Error> {
    if let Some(kind) = irregular(found.file_type()) {
        return Err(Error::invalid(
            setting,
            path.display().to_string(),
            format!("it is {kind}, not a regular file"),
            "name a regular file (a symbolic link to one is fine)",
        ));
    }
    if found.len() > limit {
        return Err(too_large(setting, path, Some(found.len()), limit));
    }
    Ok(())
}

/// What a file that is not a regular one is, in words; `None` for a regular file.
pub(crate) fn irregular(t: FileType) -> Option<&'static str> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// `size` when the file said it (a `/proc` file says 0 and is longer).
fn too_large(setting: &str, path: &Path, size: Option<u64>, limit: u64) -> Error {
    let reason = match size {
        Some(n) => format!("it is {n} bytes, more than the {limit} accepted"),
        None => format!("it is more than the {limit} bytes accepted"),
    };
    Error::invalid(
        setting,
        path.display().to_string(),
        reason,
        "name the right file: the files multiarch reads are a few KiB",
    )
}

fn unreadable(setting: &str, path: &Path, source: std::io::Error) -> Error {
    Error::UnreadableFile {
        setting: setting.to_string(),
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `read` off the test thread: a regression that blocks must fail, not hang the suite.
    fn read_within(path: &Path, limit: u64) -> Result<String, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(read("--ca-file / MULTIARCH_CA_FILE", &path, limit));
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("reading a user-named file must not block")
    }

    #[test]
    fn reads_a_regular_file_through_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "pem").unwrap();
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_within(&link, 3).unwrap(), "pem");
        assert_eq!(
            read_if_exists("s", &dir.path().join("absent"), 3).unwrap(),
            None
        );
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).unwrap();
        assert_eq!(read_if_exists("s", &dangling, 3).unwrap(), None);
        let e = read_within(&dir.path().join("absent"), 3).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_or_too_large_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = crate::testing::fifo(&dir.path().join("fifo"));
        let fifo_link = dir.path().join("fifo-link");
        std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_BYTES + 1)
            .unwrap();
        let not_text = dir.path().join("binary");
        std::fs::write(&not_text, [0xff, 0xfe]).unwrap();
        for (path, why) in [
            (
                fifo.as_path(),
                "it is a FIFO (named pipe), not a regular file",
            ),
            (
                fifo_link.as_path(),
                "it is a FIFO (named pipe), not a regular file",
            ),
            (
                Path::new("/dev/zero"),
                "it is a character device, not a regular file",
            ),
            (dir.path(), "it is a directory, not a regular file"),
            (
                big.as_path(),
                "it is 1048577 bytes, more than the 1048576 accepted",
            ),
            (not_text.as_path(), "it is not UTF-8 text"),
        ] {
            let e = read_within(path, MAX_BYTES).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert_eq!(
                e.to_string().lines().next().unwrap(),
                format!(
                    "--ca-file / MULTIARCH_CA_FILE = {:?} is invalid: {why}",
                    path.display().to_string()
                )
            );
        }
    }

    /// A Windows editor's byte order mark is not part of the text; one inside the text is.
    #[test]
    fn a_leading_byte_order_mark_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.yml");
        std::fs::write(&file, "\u{feff}image: a\n\u{feff}").unwrap();
        assert_eq!(read_within(&file, 100).unwrap(), "image: a\n\u{feff}");
        assert_eq!(
            read_if_exists("s", &file, 100).unwrap().as_deref(),
            Some("image: a\n\u{feff}")
        );
    }

    #[test]
    fn a_file_that_reports_no_size_is_still_bounded() {
        // /proc files say 0 bytes and are as long as they are.
        let e = read_within(Path::new("/proc/self/maps"), 8).unwrap_err();
        assert!(
            e.to_string()
                .contains("it is more than the 8 bytes accepted"),
            "{e}"
        );
    }
}
