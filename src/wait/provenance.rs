//! Whether a source is this pipeline's build: every image it contributes must carry the expected
//! revision (its config's `org.opencontainers.image.revision` label, else its manifest's
//! annotation); a commit SHA matches its abbreviations. Pure.

use crate::model::Resolved;

/// Whether a source was built from the expected revision.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Provenance {
    Built,
    Unlabelled,
    /// Built from this other revision.
    Other(String),
}

/// Every image of the source must carry the expected revision; one from another revision makes
/// the whole source stale.
pub(super) fn provenance(r: &Resolved, expected: &str) -> Provenance {
    let mut unlabelled = false;
    for image in r.images() {
        match image.revision.as_deref() {
            None => unlabelled = true,
            Some(held) if !same_revision(held, expected) => {
                return Provenance::Other(held.to_string())
            }
            Some(_) => {}
        }
    }
    if unlabelled || r.images().is_empty() {
        Provenance::Unlabelled
    } else {
        Provenance::Built
    }
}

/// Equal, or (commit SHAs) one an abbreviation of the other: builds labelled with
/// `$CI_COMMIT_SHORT_SHA` match a pipeline expecting `$CI_COMMIT_SHA`.
pub(super) fn same_revision(held: &str, expected: &str) -> bool {
    let (a, b) = (held.trim(), expected.trim());
    if a == b {
        return true;
    }
    let hex = |s: &str| s.len() >= 7 && s.bytes().all(|c| c.is_ascii_hexdigit());
    hex(a)
        && hex(b)
        && (a.to_ascii_lowercase().starts_with(&b.to_ascii_lowercase())
            || b.to_ascii_lowercase().starts_with(&a.to_ascii_lowercase()))
}

/// A commit SHA as people read it: the first 8 characters (other revisions as they are).
pub(super) fn short(revision: &str) -> String {
    if revision.len() > 12 && revision.bytes().all(|c| c.is_ascii_hexdigit()) {
        revision[..8].to_string()
    } else {
        revision.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_match_exactly_or_as_sha_abbreviations() {
        let full = "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
        for (held, expected, same) in [
            (full, full, true),
            ("3f2a1c0d", full, true),
            (full, "3F2A1C0D", true),
            ("3f2a1c", full, false),
            ("1a2b3c4d", full, false),
            ("v1.4.2", "v1.4.2", true),
            ("v1.4.2", "v1.4", false),
        ] {
            assert_eq!(same_revision(held, expected), same, "{held} vs {expected}");
        }
    }
}
