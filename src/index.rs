//! Index assembly: fetched per-architecture manifests in, index bytes and their digest out.
//!
//! Owns the policy DESIGN.md promises: platform from the image config (checked against the tag's),
//! flattening of per-arch indexes (buildx with provenance) with their attestation manifests kept,
//! one source per platform, the `auto|oci|docker` format rule, annotations, and deterministic
//! bytes (same inputs → same bytes → same digest, so a re-run is a no-op). Pure: no I/O, no clock.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::manifest::{
    Descriptor, DescriptorPlatform, Fetched, ImageConfig, Manifest, DOCKER_LIST, DOCKER_MANIFEST,
    OCI_INDEX, OCI_MANIFEST,
};
use crate::model::Digest;
use crate::platform::Platform;

/// Which kind of list to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// Docker manifest list when every child is a Docker v2 manifest, else OCI index.
    Auto,
    Oci,
    Docker,
}

/// One per-architecture source, fetched.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The source reference as users see it (`registry/app:latest-arm64`).
    pub(crate) reference: String,
    /// The platform the tag promises.
    pub(crate) expected: Platform,
    pub(crate) fetched: Fetched,
    /// The images the source contributes, each with its own config: the manifest itself, or
    /// the image children of an index (attestations have no config worth reading).
    pub(crate) images: Vec<SourceImage>,
}

/// One image of a source, with what its own config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceImage {
    pub(crate) digest: Digest,
    pub(crate) config: ImageConfig,
    /// The revision it was built from: its config's label, else its manifest's annotation, else
    /// (a child of an index) the index's annotation.
    pub(crate) revision: Option<String>,
}

impl Resolved {
    /// The config of the image with `digest`.
    fn config_of(&self, digest: &Digest) -> Option<&ImageConfig> {
        self.images
            .iter()
            .find(|i| i.digest == *digest)
            .map(|i| &i.config)
    }
}

/// One entry of the built index, for reports (dotenv per-platform digests, inspect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Child {
    pub(crate) platform: Platform,
    pub(crate) digest: Digest,
    pub(crate) media_type: String,
    /// Source reference this child came from.
    pub(crate) source: String,
    /// Attestation manifests (buildx provenance/SBOM) ride along with their image.
    pub(crate) attestation: bool,
    /// The revision the image was built from, when labelled (attestations: none).
    pub(crate) revision: Option<String>,
}

/// The built index: bytes to push as they are, and what they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) bytes: Vec<u8>,
    pub(crate) digest: Digest,
    pub(crate) media_type: &'static str,
    pub(crate) children: Vec<Child>,
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

/// Builds the index. `sources` are in plan order, which is the order of the children.
pub(crate) fn build(
    sources: &[Resolved],
    format: Format,
    annotations: &BTreeMap<String, String>,
) -> Result<Index, Error> {
    let mut entries: Vec<(Descriptor, Child)> = Vec::new();
    for source in sources {
        entries.extend(entries_of(source)?);
    }
    check_unique(&entries)?;

    let all_docker = entries.iter().all(|(d, _)| d.media_type == DOCKER_MANIFEST);
    let docker = match format {
        Format::Auto => all_docker,
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
        (OCI_INDEX, ds, annotations.clone())
    };
    let doc = Document {
        schema_version: 2,
        media_type,
        manifests: &descriptors,
        annotations: &annotations,
    };
    let bytes = serde_json::to_vec_pretty(&doc).expect("an index always serialises");
    Ok(Index {
        digest: Digest::of(&bytes),
        bytes,
        media_type,
        children: entries.into_iter().map(|(_, c)| c).collect(),
    })
}

/// Checks one source on its own (platform against the tag's, index shape), so a wrong image
/// fails as soon as it is seen rather than after waiting for the others.
pub(crate) fn check(source: &Resolved) -> Result<(), Error> {
    entries_of(source).map(|_| ())
}

/// The index entries one source contributes: itself (an image) or its children (an index).
fn entries_of(source: &Resolved) -> Result<Vec<(Descriptor, Child)>, Error> {
    let f = &source.fetched;
    match &f.manifest {
        Manifest::Image { .. } => {
            let actual = source
                .config_of(&f.digest)
                .expect("image sources are resolved with their config")
                .platform
                .clone();
            if !source.expected.matches(&actual) {
                return Err(mismatch(
                    &source.reference,
                    &source.expected,
                    &actual,
                    "its image config",
                ));
            }
            let mut d = f.descriptor();
            d.platform = Some(DescriptorPlatform::from_platform(&actual));
            Ok(vec![(
                d,
                child(source, actual, &f.digest, &f.media_type, false),
            )])
        }
        Manifest::Index { manifests } => {
            let mut out = Vec::new();
            for d in manifests {
                let where_ = format!("{} ({})", source.reference, d.digest);
                if d.media_type != OCI_MANIFEST && d.media_type != DOCKER_MANIFEST {
                    return Err(Error::InvalidManifest {
                        reference: where_,
                        what: "index entry",
                        reason: format!("nested {} is not supported", d.media_type),
                    });
                }
                let platform = d
                    .platform
                    .as_ref()
                    .map(DescriptorPlatform::to_platform)
                    .ok_or_else(|| Error::InvalidManifest {
                        reference: where_.clone(),
                        what: "index entry",
                        reason: "it has no platform".into(),
                    })?;
                let attestation = is_attestation(d);
                if !attestation {
                    // The entry's word is not enough: the child's own config decides.
                    let config =
                        source
                            .config_of(&d.digest)
                            .ok_or_else(|| Error::InvalidManifest {
                                reference: where_.clone(),
                                what: "index entry",
                                reason: "its image config was not read".into(),
                            })?;
                    for (said, by) in [
                        (&config.platform, "its image config"),
                        (&platform, "its index entry"),
                    ] {
                        if !source.expected.matches(said) {
                            return Err(mismatch(&where_, &source.expected, said, by));
                        }
                    }
                }
                let c = child(source, platform, &d.digest, &d.media_type, attestation);
                out.push((d.clone(), c));
            }
            if out.iter().all(|(_, c)| c.attestation) {
                return Err(Error::InvalidManifest {
                    reference: source.reference.clone(),
                    what: "per-architecture index",
                    reason: format!("it holds no image for {}", source.expected),
                });
            }
            // Images first, then their attestations: the order buildx writes.
            out.sort_by_key(|(_, c)| c.attestation);
            Ok(out)
        }
    }
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

fn child(
    source: &Resolved,
    platform: Platform,
    digest: &Digest,
    media_type: &str,
    attestation: bool,
) -> Child {
    Child {
        platform,
        digest: digest.clone(),
        media_type: media_type.to_string(),
        source: source.reference.clone(),
        attestation,
        revision: source
            .images
            .iter()
            .find(|i| i.digest == *digest)
            .and_then(|i| i.revision.clone()),
    }
}

fn mismatch(
    reference: &str,
    expected: &Platform,
    actual: &Platform,
    said_by: &'static str,
) -> Error {
    Error::PlatformMismatch {
        reference: reference.to_string(),
        expected: expected.to_string(),
        actual: actual.to_string(),
        said_by,
    }
}

/// Refuses two images for one platform (attestations are per image and never collide).
fn check_unique(entries: &[(Descriptor, Child)]) -> Result<(), Error> {
    let mut seen: Vec<&Child> = Vec::new();
    for (_, c) in entries.iter().filter(|(_, c)| !c.attestation) {
        if let Some(first) = seen.iter().find(|s| s.platform.matches(&c.platform)) {
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

#[cfg(test)]
mod tests;
