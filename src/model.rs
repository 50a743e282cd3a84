//! Pure data that crosses layers: content digests (checked against the grammar the moment they
//! enter), where each source came from, and what a run did to each target tag.
//!
//! A `Digest` can only be made by parsing or by hashing, so a value a registry sent with a newline,
//! an unknown algorithm or the wrong length never reaches an index, a log line or the dotenv file.
//! Pure: no I/O.
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests>.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use std::collections::BTreeMap;

use crate::index::Index;
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
    pub(crate) content: crate::content::Checked,
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

/// What happened to one target tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// The tag now holds the index.
    Pushed,
    /// The tag already held exactly this index: nothing sent.
    Unchanged,
    /// Dry run: nothing looked at or sent.
    Planned,
    /// The registry refused to move the tag (the error is in `Outcome::failures`).
    Failed,
    /// Not moved: it holds a newer pipeline's index or a higher version (`Outcome::kept`).
    Kept,
}

/// A target tag left where it is because what it holds is newer than this run's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) reference: Reference,
    /// The digest it still holds.
    pub(crate) holds: Digest,
    /// Why, naming both publishers.
    pub(crate) why: String,
}

/// The result of a run, for `report`: the index, what happened to each target tag (in plan
/// order), the sources left out, and why tags that did not move did not.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) index: Index,
    pub(crate) targets: Vec<(Reference, Status)>,
    /// Sources missing or stale and left out (only with `--allow-missing`).
    pub(crate) missing: Vec<String>,
    pub(crate) failures: Vec<(Reference, crate::error::Error)>,
    /// Tags not moved because they hold something newer (exit 0).
    pub(crate) kept: Vec<Kept>,
}

impl Outcome {
    /// The tags that hold the index now (pushed or already there).
    pub(crate) fn holding(&self) -> impl Iterator<Item = &Reference> {
        self.targets
            .iter()
            .filter(|(_, s)| matches!(s, Status::Pushed | Status::Unchanged | Status::Planned))
            .map(|(t, _)| t)
    }
}

/// The prefix of the digest hand-off variables; `MULTIARCH_SOURCE_TEMPLATE` is a setting.
pub(crate) const HAND_OFF_PREFIX: &str = "MULTIARCH_SOURCE_";

/// The hash algorithms registries use and that we can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lowercase hex encoding.
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A content digest, `algorithm:hex`, valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 hex>`, `sha384:<96 hex>` or `sha512:<128 hex>` (lowercase hex, as the
    /// OCI spec registers them). The error says what is wrong, without echoing the value.
    pub(crate) fn parse(text: &str) -> Result<Digest, String> {
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or_else(|| "a digest is algorithm:hex".to_string())?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            _ => return Err("the digest algorithm is not sha256, sha384 or sha512".into()),
        };
        if hex.len() != algorithm.hex_len() {
            return Err(format!(
                "a {} digest has {} hex digits",
                algorithm.name(),
                algorithm.hex_len()
            ));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("a digest's hex digits are 0-9 and a-f".into());
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The sha256 digest of `bytes`: how everything we write is named.
    pub(crate) fn of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// True when `bytes` hash to this digest, with this digest's own algorithm.
    pub(crate) fn verifies(&self, bytes: &[u8]) -> bool {
        let mut h = self.hasher();
        h.update(bytes);
        h.finish() == *self
    }

    /// A hasher of this digest's algorithm, for content that arrives in pieces.
    pub(crate) fn hasher(&self) -> Hasher {
        match self.algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl std::str::FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Hashes content that arrives in pieces (blobs while they stream).
pub(crate) enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha384(h) => (Algorithm::Sha384, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// Text a registry supplied (a revision label, a platform name) made safe to show: control
/// characters escaped (`\n`, `\u{1b}`) and at most 200 characters, so a label cannot forge log
/// lines, colour the terminal or close a GitLab log section. Ordinary text is left as it is.
pub(crate) fn printable(text: &str) -> String {
    if text.len() <= SHOWN_CHARS && !text.chars().any(char::is_control) {
        return text.to_string();
    }
    bounded(text.chars().flat_map(|c| {
        let escaped: Vec<char> = if c.is_control() {
            c.escape_default().collect()
        } else {
            vec![c]
        };
        escaped
    }))
}

/// The most characters of registry-supplied text shown in one place.
pub(crate) const SHOWN_CHARS: usize = 200;

/// The first `SHOWN_CHARS` characters, and `…` when there were more.
pub(crate) fn bounded(chars: impl Iterator<Item = char>) -> String {
    let mut chars = chars.peekable();
    let mut out: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.peek().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_registered_grammar() {
        let ok = [
            format!("sha256:{}", "a".repeat(64)),
            format!("sha384:{}", "0".repeat(96)),
            format!("sha512:{}", "f".repeat(128)),
        ];
        for d in &ok {
            assert_eq!(Digest::parse(d).unwrap().to_string(), *d);
        }
        for bad in [
            String::new(),
            "sha256".into(),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}\nMULTIARCH_REF=evil", "a".repeat(64)),
            format!("sha256:{}\n", "a".repeat(64)),
            format!("md5:{}", "a".repeat(32)),
            format!("sha512:{}", "a".repeat(64)),
            format!("SHA256:{}", "a".repeat(64)),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn verifies_with_its_own_algorithm() {
        let bytes = b"hello";
        let sha256 = Digest::of(bytes);
        assert_eq!(
            sha256.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(sha256.verifies(bytes));
        assert!(!sha256.verifies(b"hellO"));
        let sha512 =
            Digest::parse(&format!("sha512:{}", hex::encode(Sha512::digest(bytes)))).unwrap();
        assert!(sha512.verifies(bytes));
        assert!(!sha512.verifies(b"other"));
        let sha384 =
            Digest::parse(&format!("sha384:{}", hex::encode(Sha384::digest(bytes)))).unwrap();
        assert!(sha384.verifies(bytes));
        let mut h = sha384.hasher();
        h.update(b"hel");
        h.update(b"lo");
        assert_eq!(h.finish(), sha384);
    }

    #[test]
    fn deserialising_checks_the_grammar() {
        let good = format!("\"sha256:{}\"", "b".repeat(64));
        assert!(serde_json::from_str::<Digest>(&good).is_ok());
        let evil = format!("\"sha256:{}\\nMULTIARCH_REF=evil\"", "b".repeat(64));
        assert!(serde_json::from_str::<Digest>(&evil).is_err());
    }

    #[test]
    fn registry_text_is_shown_printable_and_bounded() {
        assert_eq!(printable("3f2a1c0"), "3f2a1c0");
        assert_eq!(
            printable("dead\n\x1b[0Ksection_end:1:x\r"),
            "dead\\n\\u{1b}[0Ksection_end:1:x\\r"
        );
        assert_eq!(printable(&"a".repeat(500)).chars().count(), 201);
    }
}
