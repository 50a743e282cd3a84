//! `multiarch login`'s auth file (a docker `config.json` or a containers `auth.json`): one entry
//! set under `auths`, everything else in the file kept byte for byte.
//!
//! - **Locked**: parallel logins into one file (build jobs sharing a home, a matrix on one
//!   runner) each read, change and write it; without a lock the last writer drops the others'
//!   entries. An exclusive `flock` on a lock file beside it (`<file>.lock`) is held from the
//!   read to the rename. Not on the file itself: the file is replaced by a rename, so a lock on
//!   it would be on the old inode, and a login that opened the new one would not wait for it.
//!   The wait is bounded (`LOCK_WAIT`); the system drops a lock when its holder ends, so a lock
//!   file left behind never blocks anyone.
//! - **Edited, not re-serialised**: the values are located in the original text (serde_json's
//!   `RawValue`, borrowed from it) and only the host's entry is replaced or inserted. Numbers
//!   serde_json would turn into floats (`12345678901234567890123`), spellings such as `1.0e3`,
//!   escapes, key order and layout stay as they were written.
//! - **Owner-only**: written 0600, through a rename or, for a bind-mounted file, in place (where
//!   `output_file` makes it 0600 before writing, or writes nothing).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::time::Instant;
use tracing::info;

use crate::error::Error;
use crate::{output_file, user_file};

pub(super) const SETTING: &str = "--auth-file / MULTIARCH_AUTH_FILE";
pub(super) const HINT: &str =
    "name a JSON auth file (docker config.json or containers auth.json), or use --password-stdout";

/// How long a login waits for another one to finish writing the file: writing takes
/// milliseconds, so a lock held this long belongs to a process that is stuck or stopped.
pub(super) const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Sets `key`'s credential (`auth`: base64 of `user:password`) in the auth file at `path` (the
/// checked target of `output_file::writable`), under the lock.
pub(super) async fn set(path: &Path, key: &str, auth: &str) -> Result<(), Error> {
    let _held = lock(path).await?;
    let existing = user_file::read_if_exists(SETTING, path, user_file::MAX_BYTES)?;
    let text = with_entry(existing.as_deref(), key, auth)
        .map_err(|reason| Error::invalid(SETTING, path.display().to_string(), reason, HINT))?;
    output_file::write(path, &text, 0o600)
}

/// `<file>.lock` beside the file.
fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "auth.json".into());
    path.with_file_name(format!("{name}.lock"))
}

/// Takes the exclusive lock for `path`, waiting at most `LOCK_WAIT`; it is released when the
/// returned file is dropped (closed). The lock file is empty and opened for reading (a lock
/// needs no more), so a login running as another user can take it too.
async fn lock(path: &Path) -> Result<File, Error> {
    let at = lock_path(path);
    let file = open_lock(&at).map_err(|source| Error::WriteFile {
        path: at.clone(),
        source,
    })?;
    let start = Instant::now();
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                if !std::mem::replace(&mut said, true) {
                    info!(lock = %at.display(), "another login holds the auth file's lock; waiting for it");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(Error::FileLocked {
                    path: path.to_path_buf(),
                    lock: at,
                    waited: LOCK_WAIT,
                })
            }
            Err(TryLockError::Error(source)) => return Err(Error::WriteFile { path: at, source }),
        }
    }
}

/// The lock file at `at`, opened as it is or created.
fn open_lock(at: &Path) -> std::io::Result<File> {
    match File::open(at) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(at),
        other => other,
    }
}

/// Refuses, before any request, an auth file whose lock file cannot be opened or created
/// beside it (a read-only directory with a writable file in it, as a single-file mount
/// leaves): the login could not write.
pub(super) fn check_lock(path: &Path) -> Result<(), Error> {
    let at = lock_path(path);
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.display().to_string(),
        None => ".".to_string(),
    };
    open_lock(&at).map(drop).map_err(|e| {
        Error::invalid(
            SETTING,
            path.display().to_string(),
            format!(
                "its lock file {}, which keeps concurrent logins apart, cannot be created in {dir} ({e})",
                at.display()
            ),
            format!(
                "make {dir} writable for the job (a login creates the lock file there and replaces the auth file through a temporary file beside it), or name an auth file in a writable directory, or use --password-stdout"
            ),
        )
    })
}

/// `existing` (the file's text; `None` or blank: no file yet) with `key`'s entry under `auths`
/// set to `{"auth": …}`; every other byte as it was. `Err` says why the text cannot be used.
fn with_entry(existing: Option<&str>, key: &str, auth: &str) -> Result<String, &'static str> {
    let entry = format!("{{\"auth\": {}}}", quoted(auth));
    let member = format!("{}: {entry}", quoted(key));
    let text = match existing {
        Some(t) if !t.trim().is_empty() => t,
        _ => {
            let doc = serde_json::json!({ "auths": { key: { "auth": auth } } });
            return Ok(serde_json::to_string_pretty(&doc).expect("JSON values serialise") + "\n");
        }
    };
    let whole: &RawValue =
        serde_json::from_str(text).map_err(|_| "it is not JSON (its content is not shown)")?;
    if !whole.get().starts_with('{') {
        return Err("it is not a JSON object");
    }
    let top = members(whole)?;
    let edited = match top.get("auths") {
        None => insert(
            text,
            span(text, whole),
            !top.is_empty(),
            &format!("\"auths\": {{{member}}}"),
        ),
        Some(auths) if auths.get() == "null" => {
            replace(text, span(text, auths), &format!("{{{member}}}"))
        }
        Some(auths) if auths.get().starts_with('{') => {
            let hosts = members(auths)?;
            match hosts.get(key) {
                Some(old) => replace(text, span(text, old), &entry),
                None => insert(text, span(text, auths), !hosts.is_empty(), &member),
            }
        }
        Some(_) => return Err("its \"auths\" is not an object"),
    };
    debug_assert!(
        serde_json::from_str::<&RawValue>(&edited).is_ok(),
        "{edited}"
    );
    Ok(edited)
}

/// An object's members, each value as its text in the file (a repeated key: the last, as Go's
/// encoding/json and serde_json read it).
fn members(object: &RawValue) -> Result<BTreeMap<String, &RawValue>, &'static str> {
    serde_json::from_str(object.get()).map_err(|_| "it is not JSON (its content is not shown)")
}

/// Where `value` (borrowed from `text`) lies in `text`.
fn span(text: &str, value: &RawValue) -> Range<usize> {
    let start = value.get().as_ptr() as usize - text.as_ptr() as usize;
    let range = start..start + value.get().len();
    debug_assert_eq!(&text[range.clone()], value.get());
    range
}

fn replace(text: &str, at: Range<usize>, with: &str) -> String {
    format!("{}{with}{}", &text[..at.start], &text[at.end..])
}

/// `member` as the first member of the object at `object`, laid out like the member that
/// follows it (the same white space after the brace).
fn insert(text: &str, object: Range<usize>, has_members: bool, member: &str) -> String {
    let after = object.start + 1;
    let rest = &text[after..];
    if !has_members {
        return format!("{}{member}{rest}", &text[..after]);
    }
    let gap = &rest[..rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len()];
    format!("{}{gap}{member},{rest}", &text[..after])
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_in(text: &str) -> String {
        with_entry(Some(text), "r.example:5000", "dTpw").unwrap()
    }

    /// Only the host's entry changes: numbers serde_json cannot hold, exponents, escapes and
    /// layout stay as written.
    #[test]
    fn every_other_byte_is_kept() {
        let text = "{\n\t\"x\": 12345678901234567890123,\n\t\"y\": 1.0e3,\n\t\"auths\": {\n\t\t\"other.example\": {\"auth\": \"eDp5\", \"n\": -0.000}\n\t},\n\t\"z\": \"caf\\u00e9 \\/\"\n}\n";
        assert_eq!(
            set_in(text),
            "{\n\t\"x\": 12345678901234567890123,\n\t\"y\": 1.0e3,\n\t\"auths\": {\n\t\t\"r.example:5000\": {\"auth\": \"dTpw\"},\n\t\t\"other.example\": {\"auth\": \"eDp5\", \"n\": -0.000}\n\t},\n\t\"z\": \"caf\\u00e9 \\/\"\n}\n"
        );
    }

    #[test]
    fn the_hosts_entry_is_replaced_in_place() {
        let text = r#"{"auths": {"a": {}, "r.example:5000": {"auth": "b2xk", "identitytoken": "t"}, "b": 1}, "n": 1e400}"#;
        assert_eq!(
            set_in(text),
            r#"{"auths": {"a": {}, "r.example:5000": {"auth": "dTpw"}, "b": 1}, "n": 1e400}"#
        );
        // Spelled with an escape, it is still the same key.
        let text = r#"{"auths": {"r.example\u003a5000": {"auth": "b2xk"}}}"#;
        assert_eq!(
            set_in(text),
            r#"{"auths": {"r.example\u003a5000": {"auth": "dTpw"}}}"#
        );
    }

    #[test]
    fn auths_is_made_where_it_is_missing_or_null() {
        assert_eq!(
            set_in(r#"{"credHelpers": {"x": "y"}}"#),
            r#"{"auths": {"r.example:5000": {"auth": "dTpw"}},"credHelpers": {"x": "y"}}"#
        );
        assert_eq!(
            set_in("{ }"),
            r#"{"auths": {"r.example:5000": {"auth": "dTpw"}} }"#
        );
        assert_eq!(
            set_in(r#"{"auths": null}"#),
            r#"{"auths": {"r.example:5000": {"auth": "dTpw"}}}"#
        );
        assert_eq!(
            set_in(r#"{"auths": {}}"#),
            r#"{"auths": {"r.example:5000": {"auth": "dTpw"}}}"#
        );
    }

    #[test]
    fn a_new_or_empty_file_gets_a_fresh_document() {
        let fresh = "{\n  \"auths\": {\n    \"r.example:5000\": {\n      \"auth\": \"dTpw\"\n    }\n  }\n}\n";
        assert_eq!(with_entry(None, "r.example:5000", "dTpw").unwrap(), fresh);
        assert_eq!(
            with_entry(Some(" \n"), "r.example:5000", "dTpw").unwrap(),
            fresh
        );
    }

    #[test]
    fn text_that_is_not_an_auth_file_is_refused() {
        for (text, why) in [
            ("{\"auths\": ", "it is not JSON (its content is not shown)"),
            ("{\"a\": 1} {}", "it is not JSON (its content is not shown)"),
            ("[1]", "it is not a JSON object"),
            ("{\"auths\": []}", "its \"auths\" is not an object"),
        ] {
            assert_eq!(with_entry(Some(text), "h", "a"), Err(why), "{text}");
        }
    }

    /// A login that finds the lock taken waits for it, and gives up at the limit with an error
    /// naming the file and the lock.
    #[tokio::test(start_paused = true)]
    async fn a_held_lock_is_waited_for_within_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        let other = lock(&path).await.unwrap();
        let e = set(&path, "h", "YQ==").await.unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "another process has held the lock {} on {} for 10 s",
                lock_path(&path).display(),
                path.display()
            )),
            "{e}"
        );
        assert!(!path.exists(), "nothing was written");
        drop(other);
        set(&path, "h", "YQ==").await.unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains("\"h\""), "{written}");
    }
}
