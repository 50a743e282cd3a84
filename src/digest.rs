//! Content digests, `algorithm:hex`, checked against the grammar the moment they enter, and the
//! hashing that makes them. A `Digest` can only be made by parsing or by hashing, so a value a
//! registry sent with a newline, an unknown algorithm or the wrong length never reaches an index, a
//! log line or the dotenv file. Pure: no I/O.
//! Spec: <https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests>.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

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
}
