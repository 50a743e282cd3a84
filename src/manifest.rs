//! Read-only views of what registries serve: image manifests, indexes and image configs in both
//! the OCI and the Docker v2 media types, with the size bounds we accept.
//!
//! These views are for *reading*; the bytes of a fetched manifest are kept as fetched and never
//! re-serialised (that would change its digest). Pure: no I/O.
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/manifest.md>,
//! <https://github.com/opencontainers/image-spec/blob/main/image-index.md>.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::builder::{Builder, Traces};
use crate::digest::Digest;
use crate::error::Error;
use crate::labels::{PIPELINE, REVISION};
use crate::platform::Platform;
use crate::text::printable;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The Accept list for every manifest request: all four, so registries never down-convert.
pub(crate) const ACCEPT: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// Largest manifest we read: the distribution spec's recommended minimum a registry must accept.
pub(crate) const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest image config we read; real configs are a few KiB, history included.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A content descriptor as indexes and manifests carry them. Field order is the order we write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<DescriptorPlatform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

/// The `platform` object of an index entry, as written (names not normalised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DescriptorPlatform {
    pub(crate) architecture: String,
    pub(crate) os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) variant: Option<String>,
}

impl DescriptorPlatform {
    pub(crate) fn to_platform(&self) -> Platform {
        Platform::normalised(
            &self.os,
            &self.architecture,
            self.variant.as_deref(),
            self.os_version.as_deref(),
        )
    }

    pub(crate) fn from_platform(p: &Platform) -> Self {
        DescriptorPlatform {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            os_version: p.os_version.clone(),
            os_features: None,
            variant: p.variant.clone(),
        }
    }
}

/// What a manifest is, once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Manifest {
    /// A single-platform image: its config says the platform; its blobs are the config and the
    /// layers that live in the registry (foreign layers are left out).
    Image {
        config: Box<Descriptor>,
        layers: Vec<Descriptor>,
        /// Every layer in order, base first, foreign ones included: the file system.
        rootfs: Vec<RootLayer>,
    },
    /// An index / manifest list: each entry carries its own platform.
    Index { manifests: Vec<Descriptor> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    schema_version: Option<i64>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Layer>,
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// A layer descriptor; `urls` marks a foreign layer (Windows base layers), which lives elsewhere
/// and is never copied between registries.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layer {
    #[serde(flatten)]
    descriptor: Descriptor,
    #[serde(default)]
    urls: Option<Vec<String>>,
}

/// A layer of an image's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RootLayer {
    pub(crate) descriptor: Descriptor,
    /// It lives elsewhere (`urls`, a foreign media type), not in the registry.
    pub(crate) foreign: bool,
}

/// A manifest as fetched: the exact bytes, their verified digest and the media type they declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetched {
    pub(crate) bytes: Vec<u8>,
    pub(crate) digest: Digest,
    pub(crate) media_type: String,
    pub(crate) manifest: Manifest,
    /// The manifest's own `annotations` (OCI only; Docker v2 has none).
    pub(crate) annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// The blobs an image needs in a repository (config first); none for an index.
    pub(crate) fn blobs(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Image { config, layers, .. } => {
                std::iter::once(config.as_ref()).chain(layers).collect()
            }
            Manifest::Index { .. } => Vec::new(),
        }
    }
}

impl Fetched {
    /// Parses fetched bytes. The media type comes from the document (`mediaType`), or, for OCI
    /// documents that omit it, from its shape (`manifests` → index, `config` → image).
    pub(crate) fn parse(reference: &str, bytes: Vec<u8>, digest: Digest) -> Result<Fetched, Error> {
        let bad = |reason: String| Error::InvalidManifest {
            reference: reference.to_string(),
            what: "manifest",
            reason,
        };
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(bad(format!(
                "it is {} bytes, more than the {} accepted",
                bytes.len(),
                MAX_MANIFEST_BYTES
            )));
        }
        let shape: Shape =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not manifest JSON ({e})")))?;
        if shape.schema_version != Some(2) {
            return Err(bad(format!(
                "schemaVersion {:?} is not 2 (Docker schema 1 images must be re-pushed)",
                shape.schema_version
            )));
        }
        let media_type = match (shape.media_type, &shape.manifests, &shape.config) {
            (Some(m), _, _) => m,
            (None, Some(_), _) => OCI_INDEX.to_string(),
            (None, None, Some(_)) => OCI_MANIFEST.to_string(),
            (None, None, None) => return Err(bad("neither an image manifest nor an index".into())),
        };
        let manifest = match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => Manifest::Index {
                manifests: shape
                    .manifests
                    .ok_or_else(|| bad("index without manifests".into()))?,
            },
            OCI_MANIFEST | DOCKER_MANIFEST => {
                let rootfs: Vec<RootLayer> = shape
                    .layers
                    .into_iter()
                    .map(|l| RootLayer {
                        foreign: !l.urls.as_ref().is_none_or(Vec::is_empty)
                            || l.descriptor.media_type.contains(".foreign."),
                        descriptor: l.descriptor,
                    })
                    .collect();
                Manifest::Image {
                    config: Box::new(
                        shape
                            .config
                            .ok_or_else(|| bad("image manifest without config".into()))?,
                    ),
                    layers: rootfs
                        .iter()
                        .filter(|l| !l.foreign)
                        .map(|l| l.descriptor.clone())
                        .collect(),
                    rootfs,
                }
            }
            other => return Err(bad(format!("unsupported media type {other}"))),
        };
        Ok(Fetched {
            bytes,
            digest,
            media_type,
            manifest,
            annotations: shape.annotations.unwrap_or_default(),
        })
    }

    /// The descriptor an index uses to point at this manifest.
    pub(crate) fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            platform: None,
            artifact_type: None,
            annotations: None,
        }
    }
}

/// Checks that content fetched by a descriptor (a config, an index entry) has the size the
/// descriptor `said`. Clients verify it (containerd refuses to pull such an image), and an index
/// published with a wrong size would carry the lie on: so `what` of `reference` is refused.
pub(crate) fn check_size(
    reference: &str,
    what: &'static str,
    digest: &Digest,
    said: u64,
    actual: usize,
) -> Result<(), Error> {
    if said == actual as u64 {
        return Ok(());
    }
    Err(Error::InvalidManifest {
        reference: reference.to_string(),
        what,
        reason: format!(
            "its descriptor says {said} bytes but {digest} is {actual} bytes (clients such as containerd refuse it); push the image again with a correct manifest"
        ),
    })
}

#[derive(Deserialize)]
struct ConfigShape {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
    #[serde(rename = "os.version")]
    os_version: Option<String>,
    config: Option<RunConfig>,
    /// Read leniently (any JSON): a `created` or `history` of another shape means "unknown",
    /// never an unusable image.
    created: Option<serde_json::Value>,
    history: Option<serde_json::Value>,
    /// Older BuildKit versions recorded their build here.
    #[serde(rename = "moby.buildkit.buildinfo.v1")]
    buildkit_info: Option<serde::de::IgnoredAny>,
}

/// The `config` object of an image config, of which only the labels matter here.
#[derive(Deserialize)]
struct RunConfig {
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

/// What an image config says that multiarch checks: the platform, the revision label, when it
/// was built and by what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageConfig {
    pub(crate) platform: Platform,
    /// The variant its index entry carries: as the config writes it (`arm64` with `v8` keeps
    /// `v8`, which matching ignores), none when it writes none.
    pub(crate) entry_variant: Option<String>,
    /// The `org.opencontainers.image.revision` label, when the build set one.
    pub(crate) revision: Option<String>,
    /// The config's `created`, as written (shown printable), when it is a string.
    pub(crate) created: Option<String>,
    /// The tool that built it, when its traces say so.
    pub(crate) builder: Option<Builder>,
    /// The pipeline that built it, when a `com.gitlab.multiarch.pipeline.id` label says so:
    /// what tells a later pipeline's build from an earlier one's.
    pub(crate) pipeline: Option<u64>,
}

/// Reads an image config.
pub(crate) fn config(reference: &str, bytes: &[u8]) -> Result<ImageConfig, Error> {
    let bad = |reason: String| Error::InvalidManifest {
        reference: reference.to_string(),
        what: "image config",
        reason,
    };
    let c: ConfigShape =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not config JSON ({e})")))?;
    let platform = match (&c.os, &c.architecture) {
        (Some(os), Some(arch)) if !os.is_empty() && !arch.is_empty() => {
            Platform::normalised(os, arch, c.variant.as_deref(), c.os_version.as_deref())
        }
        _ => return Err(bad("it does not say os and architecture".into())),
    };
    let entry_variant = entry_variant(&platform, c.architecture.as_deref(), c.variant.as_deref());
    let mut labels = c.config.and_then(|r| r.labels).unwrap_or_default();
    let revision = labels
        .remove(REVISION)
        .filter(|r| !r.trim().is_empty())
        .map(|r| printable(&r));
    let pipeline = labels.get(PIPELINE).and_then(|p| p.trim().parse().ok());
    let last = c
        .history
        .as_ref()
        .and_then(serde_json::Value::as_array)
        .and_then(|h| h.last());
    let text = |key: &str| {
        last.and_then(|e| e.get(key))
            .and_then(serde_json::Value::as_str)
    };
    let builder = Builder::detect(&Traces {
        buildah_label: labels.contains_key("io.buildah.version"),
        last_author: text("author"),
        last_comment: text("comment"),
        buildkit_info: c.buildkit_info.is_some(),
    });
    let created = c
        .created
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .map(printable);
    Ok(ImageConfig {
        platform,
        entry_variant,
        revision,
        created,
        builder,
        pipeline,
    })
}

/// The variant an index entry carries for a config that says `architecture` and `variant`
/// (normalised to `platform`): what it writes (`7` as `v7`); with none written, the one its
/// architecture's name implies (`armhf`: `v7`), else none — never one invented for matching.
pub(crate) fn entry_variant(
    platform: &Platform,
    architecture: Option<&str>,
    variant: Option<&str>,
) -> Option<String> {
    match variant.filter(|v| !v.trim().is_empty()) {
        Some(v) => {
            let v = printable(v.trim()).to_ascii_lowercase();
            Some(if v.starts_with(|c: char| c.is_ascii_digit()) {
                format!("v{v}")
            } else {
                v
            })
        }
        None => {
            let arch = architecture.unwrap_or_default().to_ascii_lowercase();
            matches!(arch.as_str(), "armhf" | "armel")
                .then(|| platform.variant.clone())
                .flatten()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_media_type_from_shape_when_absent() {
        let img = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},"layers":[]}}"#,
            "a".repeat(64)
        );
        let f = Fetched::parse("r", img.into_bytes(), Digest::of(b"x")).unwrap();
        assert_eq!(f.media_type, OCI_MANIFEST);
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        let f = Fetched::parse("r", idx.to_vec(), Digest::of(b"x")).unwrap();
        assert_eq!(f.media_type, OCI_INDEX);
    }

    #[test]
    fn refuses_descriptors_whose_digest_is_not_a_digest() {
        let evil = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{}\nMULTIARCH_REF=evil","size":2}}]}}"#,
            "a".repeat(64)
        );
        let e = Fetched::parse("r", evil.into_bytes(), Digest::of(b"x")).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(!e.to_string().contains("MULTIARCH_REF=evil"), "{e}");
    }

    #[test]
    fn an_image_needs_its_config_and_its_own_layers_not_foreign_ones() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let img = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":2}},"layers":[
              {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":9,"urls":["https://mcr.microsoft.com/x"]}},
              {{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":3}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let f = Fetched::parse("r", img.into_bytes(), Digest::of(b"x")).unwrap();
        let blobs: Vec<String> = f
            .manifest
            .blobs()
            .iter()
            .map(|b| b.digest.to_string())
            .collect();
        assert_eq!(blobs, [d('a'), d('c')]);
    }

    #[test]
    fn rejects_schema1_and_oversized_manifests() {
        let s1 = br#"{"schemaVersion":1,"name":"x"}"#;
        let e = Fetched::parse("r", s1.to_vec(), Digest::of(b"d")).unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        let e = Fetched::parse("r", big, Digest::of(b"d")).unwrap_err();
        assert_eq!(e.exit_code(), 4);
    }

    #[test]
    fn content_must_have_the_size_its_descriptor_says() {
        let digest = Digest::of(b"x");
        assert!(check_size("r/app:1", "image config", &digest, 191, 191).is_ok());
        let e = check_size("r/app:1", "image config", &digest, 10, 191).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        let text = e.to_string();
        assert!(
            text.starts_with("r/app:1 is not a usable image config"),
            "{text}"
        );
        assert!(text.contains("says 10 bytes but sha256:"), "{text}");
        assert!(text.contains("is 191 bytes"), "{text}");
    }

    #[test]
    fn reads_platform_from_config() {
        let c = br#"{"architecture":"arm","os":"linux","variant":"v7","rootfs":{}}"#;
        assert_eq!(config("r", c).unwrap().platform.to_string(), "linux/arm/v7");
        assert_eq!(config("r", c).unwrap().entry_variant.as_deref(), Some("v7"));
        let c = br#"{"architecture":"amd64","os":"windows","os.version":"10.0.20348.1"}"#;
        let p = config("r", c).unwrap().platform;
        assert_eq!(p.os_version.as_deref(), Some("10.0.20348.1"));
        assert!(config("r", br#"{"os":"linux"}"#).is_err());
    }

    #[test]
    fn the_index_entry_keeps_the_variant_the_config_writes_and_invents_none() {
        for (c, platform, entry) in [
            (
                r#"{"architecture":"arm64","os":"linux","variant":"v8"}"#,
                "linux/arm64",
                Some("v8"),
            ),
            (
                r#"{"architecture":"arm64","os":"linux"}"#,
                "linux/arm64",
                None,
            ),
            (
                r#"{"architecture":"arm","os":"linux"}"#,
                "linux/arm/v7",
                None,
            ),
            (
                r#"{"architecture":"arm","os":"linux","variant":"6"}"#,
                "linux/arm/v6",
                Some("v6"),
            ),
            (
                r#"{"architecture":"armhf","os":"linux"}"#,
                "linux/arm/v7",
                Some("v7"),
            ),
        ] {
            let read = config("r", c.as_bytes()).unwrap();
            assert_eq!(read.platform.to_string(), platform, "{c}");
            assert_eq!(read.entry_variant.as_deref(), entry, "{c}");
        }
    }

    #[test]
    fn reads_when_and_by_what_an_image_was_built() {
        let c = br#"{"architecture":"amd64","os":"linux","created":"2026-12-04T12:07:14.123456789Z",
            "config":{"Labels":{"io.buildah.version":"1.28.2"}},
            "history":[{"comment":"buildkit.dockerfile.v0"},{"created_by":"/bin/sh -c #(nop) LABEL x=y"}]}"#;
        let c = config("r", c).unwrap();
        assert_eq!(c.created.as_deref(), Some("2026-12-04T12:07:14.123456789Z"));
        assert_eq!(c.builder, Some(Builder::Buildah));
        let c = br#"{"architecture":"amd64","os":"linux","history":[{"author":"kaniko","created_by":"COPY a /a"}]}"#;
        let c = config("r", c).unwrap();
        assert_eq!((c.created, c.builder), (None, Some(Builder::Kaniko)));
        // Shapes no builder writes are "unknown", never an unusable image.
        let c = br#"{"architecture":"amd64","os":"linux","created":12,"history":{"x":1}}"#;
        let c = config("r", c).unwrap();
        assert_eq!((c.created, c.builder), (None, None));
        let c = br#"{"architecture":"amd64","os":"linux","moby.buildkit.buildinfo.v1":"e30="}"#;
        assert_eq!(config("r", c).unwrap().builder, Some(Builder::BuildKit));
    }

    #[test]
    fn reads_the_revision_label_from_config() {
        let c = br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"org.opencontainers.image.revision":"3f2a1c0","x":"y"}}}"#;
        assert_eq!(config("r", c).unwrap().revision.as_deref(), Some("3f2a1c0"));
        let c = br#"{"architecture":"amd64","os":"linux","config":{"Labels":null}}"#;
        assert_eq!(config("r", c).unwrap().revision, None);
        let c = br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"org.opencontainers.image.revision":" "}}}"#;
        assert_eq!(config("r", c).unwrap().revision, None);
    }
}
