//! Which entries of a source index get read, decided from the index alone before any child is
//! fetched: at most `MAX_SOURCE_ENTRIES` of them, identical repeats (same digest, same platform)
//! read as one, and one image per platform. A registry stores whatever index it is given
//! (distribution accepts 15,000 copies of one entry in 3 MB); reading every entry as written
//! would be two requests each, all for one image. After the children are read, `within` checks
//! the same rule on what their configs say, for entries that name no platform. The index
//! `--append` merges into is held to the same rules (`base`): a tag can hold whatever was pushed.
//! Pure: no I/O.

use std::collections::HashMap;

use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{Descriptor, DescriptorPlatform};
use crate::model::Resolved;
use crate::platform::Platform;

/// Most entries a source index may have. A buildx per-architecture index holds an image and its
/// attestation, a multi-platform base image a few dozen, a Windows image one per OS build; a
/// thousand is far beyond any of them and still a bounded amount of work.
pub(crate) const MAX_SOURCE_ENTRIES: usize = 1000;

/// The entries of the source index `index` (its reference, as users see it), each distinct one
/// once, in the order first written: repeats of one digest with the same platform collapse into
/// the first. More than `MAX_SOURCE_ENTRIES` entries, or one digest listed under two platforms,
/// is refused (exit 4) before anything is fetched.
pub(crate) fn distinct(index: &str, manifests: &[Descriptor]) -> Result<Vec<Descriptor>, Error> {
    distinct_in(SOURCE, index, manifests)
}

/// What a source index is called in errors.
const SOURCE: &str = "source index";

/// What the index `--append` merges into is called in errors.
pub(crate) const BASE: &str = "index to append to";

/// The entries of `index` (what a destination's tag holds), checked as a source index is before
/// `--append` merges into it: at most `MAX_SOURCE_ENTRIES`, identical repeats read once, one
/// digest under one platform, one image per platform (attestations aside).
pub(crate) fn base(index: &str, manifests: &[Descriptor]) -> Result<Vec<Descriptor>, Error> {
    let entries = distinct_in(BASE, index, manifests)?;
    let images: Vec<Descriptor> = entries
        .iter()
        .filter(|d| !super::is_attestation(d))
        .cloned()
        .collect();
    one_image_each(BASE, index, &images)?;
    Ok(entries)
}

fn distinct_in(
    what: &'static str,
    index: &str,
    manifests: &[Descriptor],
) -> Result<Vec<Descriptor>, Error> {
    if manifests.len() > MAX_SOURCE_ENTRIES {
        return Err(Error::InvalidManifest {
            reference: index.to_string(),
            what,
            reason: format!(
                "it has {} entries, more than the {MAX_SOURCE_ENTRIES} accepted",
                manifests.len()
            ),
        });
    }
    let mut out: Vec<Descriptor> = Vec::new();
    let mut seen: HashMap<&Digest, usize> = HashMap::new();
    for d in manifests {
        match seen.get(&d.digest).map(|&i| &out[i]) {
            None => {
                seen.insert(&d.digest, out.len());
                out.push(d.clone());
            }
            Some(kept) if said(kept) == said(d) => {}
            Some(kept) => {
                return Err(Error::InvalidManifest {
                    reference: index.to_string(),
                    what,
                    reason: format!(
                        "it lists {} both as {} and as {}",
                        d.digest,
                        shown(said(kept).as_ref()),
                        shown(said(d).as_ref())
                    ),
                })
            }
        }
    }
    Ok(out)
}

/// Refuses two different images that the entries of `index` say are for one platform (Windows
/// images of one os/arch are told apart by `os.version`). `wanted` holds distinct digests (see
/// `distinct`); entries that name no platform are left to `within`.
pub(crate) fn one_per_platform(index: &str, wanted: &[Descriptor]) -> Result<(), Error> {
    one_image_each(SOURCE, index, wanted)
}

fn one_image_each(what: &'static str, index: &str, wanted: &[Descriptor]) -> Result<(), Error> {
    for (i, d) in wanted.iter().enumerate() {
        let Some(p) = said(d) else { continue };
        if let Some(first) = wanted[..i].iter().find(|e| said(e).as_ref() == Some(&p)) {
            return Err(ambiguous(what, index, &p, &first.digest, &d.digest));
        }
    }
    Ok(())
}

/// The same rule on what the children's configs say: a source index contributes at most one
/// image per platform.
pub(crate) fn within(resolved: &Resolved) -> Result<(), Error> {
    let Resolved::Index { source, images, .. } = resolved else {
        return Ok(());
    };
    for (i, image) in images.iter().enumerate() {
        let p = &image.config.platform;
        if let Some(first) = images[..i].iter().find(|e| e.config.platform == *p) {
            return Err(ambiguous(
                SOURCE,
                &source.reference.to_string(),
                p,
                &first.fetched.digest,
                &image.fetched.digest,
            ));
        }
    }
    Ok(())
}

fn ambiguous(
    what: &'static str,
    index: &str,
    platform: &Platform,
    first: &Digest,
    second: &Digest,
) -> Error {
    Error::AmbiguousIndex {
        what,
        index: index.to_string(),
        platform: shown(Some(platform)),
        first: first.to_string(),
        second: second.to_string(),
    }
}

/// The platform an entry says, normalised; `None` when it names none. Normalised platforms are
/// equal exactly when pullers take them for one (`arm64` ≡ `arm64/v8`) and their `os.version`
/// is the same: one platform for an index.
fn said(d: &Descriptor) -> Option<Platform> {
    d.platform.as_ref().map(DescriptorPlatform::to_platform)
}

fn shown(p: Option<&Platform>) -> String {
    match p {
        Some(p) => match &p.os_version {
            Some(v) => format!("{p} (os.version {v})"),
            None => p.to_string(),
        },
        None => "no platform".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8, platform: Option<&str>) -> Descriptor {
        let platform = platform.map(|p| {
            let (p, os_version) = match p.split_once('@') {
                Some((p, v)) => (p, Some(v.to_string())),
                None => (p, None),
            };
            let parts: Vec<&str> = p.split('/').collect();
            DescriptorPlatform {
                os: parts[0].into(),
                architecture: parts[1].into(),
                variant: parts.get(2).map(|v| v.to_string()),
                os_version,
                os_features: None,
            }
        });
        Descriptor {
            media_type: crate::manifest::OCI_MANIFEST.into(),
            digest: Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap(),
            size: 100,
            platform,
            artifact_type: None,
            annotations: None,
        }
    }

    #[test]
    fn identical_repeats_are_read_once_in_the_order_first_written() {
        let a = entry(1, Some("linux/amd64"));
        let att = entry(2, Some("unknown/unknown"));
        let mut many = vec![a.clone(); 999];
        many.push(att.clone());
        assert_eq!(distinct("r/app:x", &many).unwrap(), [a.clone(), att]);
        // arm64 and arm64/v8 (or aarch64) are one platform: a repeat, not a conflict.
        let v8 = entry(3, Some("linux/arm64/v8"));
        let bare = entry(3, Some("linux/aarch64"));
        assert_eq!(distinct("r/app:x", &[v8.clone(), bare]).unwrap(), [v8]);
    }

    #[test]
    fn refuses_too_many_entries_and_one_digest_under_two_platforms() {
        let many = vec![entry(1, Some("linux/amd64")); MAX_SOURCE_ENTRIES + 1];
        let e = distinct("r/app:latest-amd64", &many).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert_eq!(
            e.to_string(),
            "r/app:latest-amd64 is not a usable source index: it has 1001 entries, more than the 1000 accepted"
        );
        let e = distinct(
            "r/app:latest-amd64",
            &[entry(1, Some("linux/amd64")), entry(1, Some("linux/arm64"))],
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(
            e.to_string().contains("lists sha256:0101")
                && e.to_string()
                    .contains("both as linux/amd64 and as linux/arm64"),
            "{e}"
        );
    }

    #[test]
    fn rejects_two_images_for_one_platform_naming_the_index() {
        let rows: &[(&[Option<&str>], Option<&str>)] = &[
            (&[Some("linux/amd64"), Some("linux/arm64")], None),
            (
                &[Some("linux/amd64"), Some("linux/amd64")],
                Some("linux/amd64"),
            ),
            (
                &[Some("linux/arm64"), Some("linux/arm64/v8")],
                Some("linux/arm64"),
            ),
            (&[Some("linux/amd64"), Some("linux/amd64/v3")], None),
            (
                &[Some("windows/amd64@10.0.1"), Some("windows/amd64@10.0.2")],
                None,
            ),
            (
                &[Some("windows/amd64@10.0.1"), Some("windows/amd64@10.0.1")],
                Some("windows/amd64 (os.version 10.0.1)"),
            ),
            // No platform said: the configs decide, after reading.
            (&[None, None], None),
        ];
        for (platforms, refused) in rows {
            let wanted: Vec<Descriptor> = platforms
                .iter()
                .enumerate()
                .map(|(i, p)| entry(i as u8 + 1, *p))
                .collect();
            let got = one_per_platform("r/app:latest-amd64", &wanted);
            match refused {
                None => assert!(got.is_ok(), "{platforms:?}: {got:?}"),
                Some(p) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.exit_code(), 4);
                    let text = e.to_string();
                    assert!(
                        text.starts_with(&format!(
                            "the source index r/app:latest-amd64 lists two different images for {p}: sha256:0101"
                        )),
                        "{text}"
                    );
                    assert!(!text.contains("MULTIARCH_PLATFORMS"), "{text}");
                }
            }
        }
    }
}
