//! `Secret`: the only type credentials travel in. Its `Debug` prints `<redacted>`, it has no
//! `Display`, and `expose()` is the one way out, so `grep expose(` audits every use.
//!
//! Servers echo what they were sent ("bad credentials u:hunter2", "token Bearer … lacks scope"),
//! so every secret of the run, and every Authorization value built from one, is also remembered
//! here, and `redact` blanks them out of any server-supplied text before it is shown.

use std::fmt;
use std::sync::Mutex;

/// Shorter values would blank out ordinary words; no real credential is that short.
const MIN_REDACTED: usize = 4;

/// The secret values of this run, longest first.
static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers `value` (a password, a token, an Authorization credential) for `redact`.
pub(crate) fn remember(value: &str) {
    if value.len() < MIN_REDACTED {
        return;
    }
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_string());
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// `text` with every remembered secret replaced by `<redacted>`, and the signature of an AWS
/// Signature Version 4 Authorization value (`Signature=<hex>`, which the SDK builds and a server
/// may echo) too.
pub(crate) fn redact(text: &str) -> String {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "<redacted>");
        }
    }
    signatures_out(&out)
}

/// `Signature=` followed by hex digits: the digits blanked out.
fn signatures_out(text: &str) -> String {
    const KEY: &str = "Signature=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let hex = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_hexdigit())
                .len();
        if hex >= 16 {
            out.push_str("<redacted>");
        } else {
            out.push_str(&after[..hex]);
        }
        rest = &after[hex..];
    }
    out.push_str(rest);
    out
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Secret(value)
    }

    /// The secret value, for the one place that must hand it to a protocol.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(
            format!("{:?}", Some(("user", s.clone()))),
            "Some((\"user\", <redacted>))"
        );
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn known_secrets_are_blanked_out_of_any_text() {
        let _ = Secret::new("s3cr3t-password");
        remember("dXNlcjpzM2NyM3QtcGFzc3dvcmQ=");
        remember("abc"); // too short to redact without blanking words
        assert_eq!(
            redact("bad credentials user:s3cr3t-password (Basic dXNlcjpzM2NyM3QtcGFzc3dvcmQ=) abc"),
            "bad credentials user:<redacted> (Basic <redacted>) abc"
        );
        assert_eq!(
            redact("Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=0123456789abcdef0123456789abcdef; Signature=12"),
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=<redacted>; Signature=12"
        );
    }
}
