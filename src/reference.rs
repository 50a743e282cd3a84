//! Image references: the Docker reference grammar (`registry/path:tag@digest`, `docker.io` and
//! `library/` defaults) through the parser oci-client already brings (oci-spec's), plus the
//! repository-without-tag that `--image` names. Pure: no I/O.

use std::fmt;

pub use oci_spec::distribution::Reference;

use crate::error::Error;

const EXAMPLE: &str = "registry.example.com/group/app, 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app or localhost:5000/app";

/// A repository in a registry, without tag or digest: what `--image` names and what tags are
/// added to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    registry: String,
    path: String,
}

impl Repository {
    /// Parses `registry/path` (a `:tag` or `@digest` is refused: tags come from `--tags`).
    pub fn parse(setting: &str, text: &str) -> Result<Repository, Error> {
        let text = text.trim();
        let r = parse(setting, text)?;
        if r.digest().is_some() || has_explicit_tag(text) {
            return Err(Error::invalid(
                setting,
                text,
                "the image must not carry a tag or digest",
                format!(
                    "give the repository alone, e.g. {EXAMPLE}, and the tags with --tags / MULTIARCH_TAGS"
                ),
            ));
        }
        Ok(Repository {
            registry: r.registry().to_string(),
            path: r.repository().to_string(),
        })
    }

    /// The reference of `tag` in this repository.
    pub fn tag(&self, tag: &str) -> Reference {
        Reference::with_tag(self.registry.clone(), self.path.clone(), tag.to_string())
    }

    /// The reference of `digest` in this repository.
    pub fn digest(&self, digest: &str) -> Reference {
        Reference::with_digest(self.registry.clone(), self.path.clone(), digest.to_string())
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// Parses a full reference (`registry/path:tag`, `…@sha256:…`); a missing tag means `latest`.
pub fn parse(setting: &str, text: &str) -> Result<Reference, Error> {
    let text = text.trim();
    let bad = |reason: String| {
        Error::invalid(
            setting,
            text,
            format!("not an image reference ({reason})"),
            format!("use lowercase registry/path[:tag][@digest], e.g. {EXAMPLE}"),
        )
    };
    let r = text.parse::<Reference>().map_err(|e| bad(e.to_string()))?;
    // The grammar allows only lowercase repository paths; oci-spec's parser lets uppercase pass.
    if r.repository().chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("the repository path must be lowercase".into()));
    }
    Ok(r)
}

/// The repository a reference lives in.
pub fn repository_of(r: &Reference) -> Repository {
    Repository {
        registry: r.registry().to_string(),
        path: r.repository().to_string(),
    }
}

/// Checks a tag against the distribution spec's grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(setting: &str, tag: &str) -> Result<(), Error> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            setting,
            tag,
            "not a valid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')",
            "for example latest, 1.4.2 or main-3f2a1c",
        ))
    }
}

/// True when the last path component carries `:tag` (a `:` before the first `/` is a port).
fn has_explicit_tag(text: &str) -> bool {
    let name = text.split('@').next().unwrap_or(text);
    name.rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_with_docker_defaults() {
        for (text, registry, repo, tag, digest) in [
            ("alpine", "docker.io", "library/alpine", Some("latest"), None),
            ("alpine:3.20", "docker.io", "library/alpine", Some("3.20"), None),
            ("user/app:1", "docker.io", "user/app", Some("1"), None),
            ("localhost:5000/app", "localhost:5000", "app", Some("latest"), None),
            ("127.0.0.1:5000/g/app:v1-amd64", "127.0.0.1:5000", "g/app", Some("v1-amd64"), None),
            (
                "registry.gitlab.com/g/sub/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "registry.gitlab.com",
                "g/sub/app",
                None,
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
        ] {
            let r = parse("REF", text).unwrap();
            assert_eq!(r.registry(), registry, "{text}");
            assert_eq!(r.repository(), repo, "{text}");
            assert_eq!(r.tag(), tag, "{text}");
            assert_eq!(r.digest(), digest, "{text}");
        }
    }

    #[test]
    fn rejects_bad_references_with_an_example() {
        for bad in ["", "UPPER/app", "app:", "a b", "app@sha256:12"] {
            let e = parse("REF", bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("localhost:5000/app"), "{bad}: {e}");
        }
    }

    #[test]
    fn repository_refuses_tags_but_accepts_ports() {
        let r = Repository::parse("--image", "localhost:5000/app").unwrap();
        assert_eq!(r.to_string(), "localhost:5000/app");
        assert_eq!(r.tag("latest").to_string(), "localhost:5000/app:latest");
        assert_eq!(
            Repository::parse("--image", "app").unwrap().to_string(),
            "docker.io/library/app"
        );
        for bad in [
            "localhost:5000/app:1",
            "app:1",
            "r.io/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let e = Repository::parse("--image", bad).unwrap_err();
            assert!(e.to_string().contains("must not carry a tag"), "{bad}: {e}");
        }
    }

    #[test]
    fn checks_tag_grammar() {
        for good in ["latest", "1.4.2", "_x", "main-3f2a1c", &"a".repeat(128)] {
            assert!(check_tag("--tags", good).is_ok(), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(check_tag("--tags", bad).is_err(), "{bad}");
        }
    }
}
