//! Index assembly: resolved sources in, index bytes and their digest out.
//!
//! Owns the policy the README promises: each image's platform from its own config (checked
//! against what the tag, the spec or the index entry says), flattening of per-arch indexes
//! (buildx with provenance) with their attestation manifests kept, one image per platform (Windows
//! images told apart by `os.version`), the `auto|oci|docker` format rule (annotations asked for
//! make an OCI index, and so does the pipeline id that orders publishers; a Docker list never
//! drops them silently), `--append`'s merge into what a
//! tag already holds, and deterministic bytes (same inputs → same bytes → same digest, so a re-run
//! is a no-op). Pure: no I/O, no clock.

use std::collections::BTreeMap;

use serde::Serialize;
use tracing::{info, warn};

use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{
    Descriptor, DescriptorPlatform, Fetched, Manifest, DOCKER_LIST, DOCKER_MANIFEST,
    MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST,
};
use crate::model::{Resolved, SourceImage};
use crate::platform::Platform;
use crate::reference::Repository;

mod source;

pub(crate) use source::{base as base_entries, distinct, one_per_platform, BASE};

/// Which kind of list to write (`--format`: its values are these variants' names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    // Docker manifest list when every child is a Docker v2 manifest and no annotation was asked
    // for, else OCI index. (Not a doc comment: clap would show it as the value's help.)
    Auto,
    Oci,
    Docker,
}

/// Index annotations, and where the first one asked for came from (`--annotation`,
/// `MULTIARCH_ANNOTATIONS`, the spec's), `None` when all are derived from CI variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Annotations {
    pub(crate) values: BTreeMap<String, String>,
    pub(crate) asked: Option<String>,
}

/// One entry of the built index, for reports and for copying children between repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Child {
    pub(crate) platform: Platform,
    pub(crate) digest: Digest,
    pub(crate) media_type: String,
    /// The source reference this child came from, as users see it.
    pub(crate) source: String,
    /// The repository that holds the child manifest now.
    #[serde(skip)]
    pub(crate) from: Repository,
    /// Attestation manifests (buildx provenance/SBOM) ride along with their image.
    pub(crate) attestation: bool,
    /// The revision the image was built from, when labelled (attestations: none).
    pub(crate) revision: Option<String>,
    /// The manifest's size as the index says it: a copy checks what it fetches against it.
    #[serde(skip)]
    pub(crate) size: u64,
    /// What the content check found (images of this run's sources).
    #[serde(skip)]
    pub(crate) content: Option<crate::content_check::Checked>,
}

/// The built index: bytes to push as they are, and what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) bytes: Vec<u8>,
    pub(crate) digest: Digest,
    pub(crate) media_type: &'static str,
    pub(crate) children: Vec<Child>,
}

/// What a target tag already held, for `--append`: its index and the repository it is in.
pub(crate) struct Base<'a> {
    pub(crate) fetched: &'a Fetched,
    pub(crate) reference: String,
    pub(crate) repository: &'a Repository,
}

/// The serialised document; field order here is the byte order on the wire.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    schema_version: u32,
    media_type: &'a str,
    manifests: &'a [Descriptor],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// Builds the index from `sources` (in plan order, which is the order of the children), merged
/// into `base` when appending.
pub(crate) fn build(
    sources: &[Resolved],
    format: Format,
    annotations: &Annotations,
    base: Option<&Base>,
) -> Result<Index, Error> {
    let mut entries: Vec<(Descriptor, Child)> = Vec::new();
    for source in sources {
        entries.extend(entries_of(source)?);
    }
    check_unique(&entries)?;
    if let Some(base) = base {
        entries = merge(base, entries)?;
    }

    let all_docker = entries.iter().all(|(d, _)| d.media_type == DOCKER_MANIFEST);
    let entry_annotations = entries
        .iter()
        .any(|(d, c)| !c.attestation && d.annotations.as_ref().is_some_and(|a| !a.is_empty()));
    let docker = match format {
        Format::Auto => {
            // The pipeline that publishes is recorded so tags never move backwards: worth an
            // OCI index, which every current client and registry reads.
            let ordered = annotations.values.contains_key(crate::labels::PIPELINE);
            let asked = annotations.asked.is_some();
            let docker = all_docker && !asked && !entry_annotations && !ordered;
            if all_docker && !docker && !asked && !entry_annotations {
                info!("OCI index rather than a Docker manifest list: the index records the pipeline that published it (so no older pipeline moves its tags back), and a Docker list cannot carry annotations");
            } else if all_docker && !docker {
                info!("OCI index rather than a Docker manifest list: annotations were asked for, and a Docker list cannot carry them");
            }
            docker
        }
        Format::Oci => false,
        Format::Docker => {
            if let Some((d, c)) = entries
                .iter()
                .find(|(d, _)| d.media_type != DOCKER_MANIFEST)
            {
                return Err(Error::MixedFormat {
                    reference: format!("{} ({})", c.source, d.digest),
                    media_type: d.media_type.clone(),
                });
            }
            true
        }
    };

    let (media_type, descriptors, annotations) = if docker {
        // Docker manifest lists have no annotations, on the list or on its entries.
        if annotations.values.contains_key(crate::labels::PIPELINE) {
            warn!("MULTIARCH_FORMAT=docker: a Docker manifest list cannot record the pipeline that published it, so an older pipeline finishing later may move these tags back (MULTIARCH_FORMAT=auto or oci records it)");
        } else if !annotations.values.is_empty() {
            info!(
                left_out = %annotations.values.keys().cloned().collect::<Vec<_>>().join(","),
                "Docker manifest list: the CI annotations are left out (a Docker list cannot carry them; MULTIARCH_FORMAT=oci keeps them)"
            );
        }
        let bare: Vec<Descriptor> = entries
            .iter()
            .map(|(d, _)| Descriptor {
                annotations: None,
                artifact_type: None,
                ..d.clone()
            })
            .collect();
        (DOCKER_LIST, bare, BTreeMap::new())
    } else {
        let ds = entries.iter().map(|(d, _)| d.clone()).collect();
        (OCI_INDEX, ds, annotations.values.clone())
    };
    let doc = Document {
        schema_version: 2,
        media_type,
        manifests: &descriptors,
        annotations: &annotations,
    };
    let bytes = serde_json::to_vec_pretty(&doc).expect("an index always serialises");
    // A registry stores more than multiarch (or many clients) reads back: refuse what we could
    // not read ourselves.
    if bytes.len() > MAX_MANIFEST_BYTES {
        let (reference, what, made) = match base {
            Some(b) => (
                b.reference.clone(),
                BASE,
                "merged with this run's images it",
            ),
            None => ("the built index".to_string(), "index", "it"),
        };
        return Err(Error::InvalidManifest {
            reference,
            what,
            reason: format!(
                "{made} would be {} bytes ({} entries), more than the {MAX_MANIFEST_BYTES} a manifest may have to be read back (multiarch inspect refuses more, as do other clients)",
                bytes.len(),
                descriptors.len()
            ),
        });
    }
    Ok(Index {
        digest: Digest::of(&bytes),
        bytes,
        media_type,
        children: entries.into_iter().map(|(_, c)| c).collect(),
    })
}

/// Checks one source on its own (each image's config against what was promised, one image per
/// platform), so a wrong image fails as soon as it is seen rather than after waiting for the
/// others.
pub(crate) fn check(source: &Resolved) -> Result<(), Error> {
    entries_of(source)?;
    source::within(source)
}

/// The index entries one source contributes: its images, each checked on its own config, then
/// (flattened from an index) their attestations.
fn entries_of(resolved: &Resolved) -> Result<Vec<(Descriptor, Child)>, Error> {
    let source = resolved.source();
    let shown = source.reference.to_string();
    let repository = source.reference.repository();
    let child = |platform: Platform,
                 digest: &Digest,
                 media_type: &str,
                 size: u64,
                 image: Option<&SourceImage>| Child {
        platform,
        digest: digest.clone(),
        media_type: media_type.to_string(),
        source: shown.clone(),
        from: repository.clone(),
        attestation: image.is_none(),
        revision: image.and_then(|i| i.revision.clone()),
        size,
        content: image.map(|i| i.content.clone()),
    };
    let mut out = Vec::new();
    for image in resolved.images() {
        let actual = &image.config.platform;
        let where_ = match &image.entry {
            Some(_) => format!("{shown} ({})", image.fetched.digest),
            None => shown.clone(),
        };
        if let Some(expected) = &source.platform {
            if !expected.matches(actual) {
                return Err(mismatch(&where_, expected, actual, "its image config"));
            }
            if let (Some(want), got) = (&expected.os_version, &actual.os_version) {
                if got.as_ref() != Some(want) {
                    return Err(mismatch(
                        &where_,
                        expected,
                        actual,
                        "its image config's os.version",
                    ));
                }
            }
        }
        let descriptor = match &image.entry {
            // Flattened from an index: the entry as the index wrote it, after checking that its
            // platform agrees with the config.
            Some(entry) => {
                let said = entry.platform.as_ref().map(DescriptorPlatform::to_platform);
                if let Some(said) = said.filter(|s| !s.matches(actual)) {
                    return Err(mismatch(&where_, actual, &said, "its index entry"));
                }
                entry.clone()
            }
            None => {
                let mut d = image.fetched.descriptor();
                let mut platform = DescriptorPlatform::from_platform(actual);
                platform.os_features = source.os_features.clone();
                // The variant as the config (else the spec entry) writes it, not as matching
                // normalises it: `arm64` `v8` stays, and none is invented.
                platform.variant = image
                    .config
                    .entry_variant
                    .clone()
                    .or_else(|| source.entry_variant.clone());
                d.platform = Some(platform);
                if !source.annotations.is_empty() {
                    d.annotations = Some(source.annotations.clone());
                }
                d
            }
        };
        let c = child(
            actual.clone(),
            &image.fetched.digest,
            &image.fetched.media_type,
            descriptor.size,
            Some(image),
        );
        out.push((descriptor, c));
    }
    if let Resolved::Index { attestations, .. } = resolved {
        for d in attestations {
            let platform = d
                .platform
                .as_ref()
                .map(DescriptorPlatform::to_platform)
                .unwrap_or_else(|| Platform::normalised("unknown", "unknown", None, None));
            let c = child(platform, &d.digest, &d.media_type, d.size, None);
            out.push((d.clone(), c));
        }
    }
    if out.iter().all(|(_, c)| c.attestation) {
        let wanted = source.platform_text();
        return Err(Error::InvalidManifest {
            reference: shown,
            what: "index",
            reason: format!("it holds no image for {wanted}"),
        });
    }
    Ok(out)
}

/// buildx marks attestation manifests with platform `unknown/unknown` and a
/// `vnd.docker.reference.type` annotation (<https://docs.docker.com/build/metadata/attestations/attestation-storage/>).
pub(crate) fn is_attestation(d: &Descriptor) -> bool {
    d.platform
        .as_ref()
        .is_some_and(|p| p.to_platform().is_unknown())
        || d.annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("vnd.docker.reference.type"))
}

/// The image an attestation is about (`vnd.docker.reference.digest`).
pub(crate) fn attests(d: &Descriptor) -> Option<Digest> {
    d.annotations
        .as_ref()?
        .get("vnd.docker.reference.digest")
        .and_then(|s| Digest::parse(s).ok())
}

fn mismatch(
    reference: &str,
    expected: &Platform,
    actual: &Platform,
    said_by: &'static str,
) -> Error {
    let show = |p: &Platform| match &p.os_version {
        Some(v) => format!("{p} (os.version {v})"),
        None => p.to_string(),
    };
    Error::PlatformMismatch {
        reference: reference.to_string(),
        expected: show(expected),
        actual: show(actual),
        said_by,
    }
}

/// Refuses two images for one platform. Windows images of one os/arch are told apart by their
/// `os.version` (a host picks the one matching its build); attestations never collide.
fn check_unique(entries: &[(Descriptor, Child)]) -> Result<(), Error> {
    let mut seen: Vec<&Child> = Vec::new();
    for (_, c) in entries.iter().filter(|(_, c)| !c.attestation) {
        let same = |s: &&&Child| {
            s.platform.matches(&c.platform) && s.platform.os_version == c.platform.os_version
        };
        if let Some(first) = seen.iter().find(same) {
            return Err(Error::DuplicatePlatform {
                platform: c.platform.to_string(),
                first: first.source.clone(),
                second: c.source.clone(),
            });
        }
        seen.push(c);
    }
    Ok(())
}

/// `--append`: the children `base` already holds, with each platform given now replacing the
/// old child in place (its attestations go with it), and new platforms added at the end.
fn merge(base: &Base, new: Vec<(Descriptor, Child)>) -> Result<Vec<(Descriptor, Child)>, Error> {
    let Manifest::Index { manifests } = &base.fetched.manifest else {
        return Err(Error::InvalidManifest {
            reference: base.reference.clone(),
            what: BASE,
            reason: "it is a single image, not an index".into(),
        });
    };
    let manifests = &source::base(&base.reference, manifests)?;
    let same = |a: &Platform, b: &Platform| a.matches(b) && a.os_version == b.os_version;
    let replaced: Vec<Digest> = manifests
        .iter()
        .filter(|d| !is_attestation(d))
        .filter(|d| {
            let p = d.platform.as_ref().map(DescriptorPlatform::to_platform);
            new.iter()
                .any(|(_, c)| !c.attestation && p.as_ref().is_some_and(|p| same(p, &c.platform)))
        })
        .map(|d| d.digest.clone())
        .collect();
    let mut placed = vec![false; new.len()];
    let mut out = Vec::new();
    for d in manifests {
        if is_attestation(d) {
            if attests(d).is_some_and(|a| replaced.contains(&a)) {
                continue;
            }
        } else if replaced.contains(&d.digest) {
            let p = d.platform.as_ref().map(DescriptorPlatform::to_platform);
            // The new image for this platform, and the attestations that follow it.
            if let Some(i) = new.iter().position(|(_, c)| {
                !c.attestation && p.as_ref().is_some_and(|p| same(p, &c.platform))
            }) {
                out.push(new[i].clone());
                placed[i] = true;
                for (j, (nd, nc)) in new.iter().enumerate() {
                    if nc.attestation && attests(nd).as_ref() == Some(&new[i].1.digest) {
                        out.push((nd.clone(), nc.clone()));
                        placed[j] = true;
                    }
                }
            }
            continue;
        }
        let platform = d
            .platform
            .as_ref()
            .map(DescriptorPlatform::to_platform)
            .unwrap_or_else(|| Platform::normalised("unknown", "unknown", None, None));
        let attestation = is_attestation(d);
        out.push((
            d.clone(),
            Child {
                platform,
                digest: d.digest.clone(),
                media_type: d.media_type.clone(),
                source: base.reference.clone(),
                from: base.repository.clone(),
                attestation,
                revision: None,
                size: d.size,
                content: None,
            },
        ));
    }
    for (i, e) in new.into_iter().enumerate() {
        if !placed[i] {
            out.push(e);
        }
    }
    if let Some((d, _)) = out
        .iter()
        .find(|(d, _)| d.media_type != OCI_MANIFEST && d.media_type != DOCKER_MANIFEST)
    {
        let what = if d.media_type == OCI_INDEX || d.media_type == DOCKER_LIST {
            "a nested index".to_string()
        } else {
            format!("of media type {:?}, not an image manifest", d.media_type)
        };
        return Err(Error::InvalidManifest {
            reference: base.reference.clone(),
            what: BASE,
            reason: format!(
                "its entry {} is {what}: only image manifests can be appended to",
                d.digest
            ),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
