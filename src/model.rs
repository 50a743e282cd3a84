//! Pure data that crosses layers: each source, where it came from and what it contributes once
//! read and checked (what a run did to each target tag is `outcome`). Pure: no I/O.

use std::collections::BTreeMap;

use crate::manifest::{Descriptor, Fetched, ImageConfig};
use crate::platform::Platform;
use crate::reference::Reference;

/// One source: where to find it, the platform it promises (a spec entry may leave it to the
/// image's config), and annotations for its entry in the index (spec entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) platform: Option<Platform>,
    pub(crate) reference: Reference,
    pub(crate) origin: SourceOrigin,
    pub(crate) annotations: BTreeMap<String, String>,
    /// `os.features` a spec entry gives for its index entry.
    pub(crate) os_features: Option<Vec<String>>,
    /// The variant a spec entry writes (`v8` for arm64, which matching ignores), for the index
    /// entry.
    pub(crate) entry_variant: Option<String>,
}

impl Source {
    /// The platform as shown: `linux/arm64`, or `from its config`.
    pub(crate) fn platform_text(&self) -> String {
        self.platform
            .as_ref()
            .map_or_else(|| "(config)".to_string(), ToString::to_string)
    }
}

/// One image a source contributes, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceImage {
    /// The image manifest, exact bytes (copied as they are when the destination lacks it).
    pub(crate) fetched: Fetched,
    pub(crate) config: ImageConfig,
    /// The revision it was built from: its config's label, else its manifest's annotation, else
    /// (a child of an index) the index's annotation.
    pub(crate) revision: Option<String>,
    /// Its entry in the source's index, when it came from one (kept as written).
    pub(crate) entry: Option<Descriptor>,
    /// Whether its entrypoint is machine code of its platform.
    pub(crate) content: crate::content_check::Checked,
}

/// A source, fetched and checked: what it contributes to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A single-platform image.
    Image {
        source: Source,
        image: Box<SourceImage>,
    },
    /// An index (a buildx per-arch index, or a multi-platform one): the images it contributes
    /// (those of the wanted platforms) and the attestation manifests that ride along with them.
    Index {
        source: Source,
        fetched: Fetched,
        images: Vec<SourceImage>,
        attestations: Vec<Descriptor>,
    },
}

impl Resolved {
    pub(crate) fn source(&self) -> &Source {
        match self {
            Resolved::Image { source, .. } | Resolved::Index { source, .. } => source,
        }
    }

    /// What the source's reference names (the image, or the index).
    pub(crate) fn fetched(&self) -> &Fetched {
        match self {
            Resolved::Image { image, .. } => &image.fetched,
            Resolved::Index { fetched, .. } => fetched,
        }
    }

    pub(crate) fn images(&self) -> &[SourceImage] {
        match self {
            Resolved::Image { image, .. } => std::slice::from_ref(image),
            Resolved::Index { images, .. } => images,
        }
    }
}

/// Where a source's reference came from (shown by `plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceOrigin {
    /// The source template (a per-architecture tag).
    Template,
    /// An entry of the manifest-tool spec.
    Spec,
    /// A build job's digest hand-off, `MULTIARCH_SOURCE_<OS>_<ARCH>[_<VARIANT>]`: exact, no waiting.
    HandOff(String),
}

impl SourceOrigin {
    /// True for a digest handed over by a build job: it exists already, or never will.
    pub(crate) fn is_hand_off(&self) -> bool {
        matches!(self, SourceOrigin::HandOff(_))
    }
}

/// The prefix of the digest hand-off variables; `MULTIARCH_SOURCE_TEMPLATE` is a setting.
pub(crate) const HAND_OFF_PREFIX: &str = "MULTIARCH_SOURCE_";
