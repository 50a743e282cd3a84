//! Image references: the Docker reference grammar (`registry/path:tag@digest`, `docker.io` and
//! `library/` defaults), and the repository-without-tag that `--image` names. Pure: no I/O.

use std::fmt;
use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};

use crate::digest::Digest;
use crate::error::Error;

const EXAMPLE: &str = "registry.example.com/group/app, 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app or localhost:5000/app";

/// A repository in a registry, without tag or digest: what `--image` names and what tags are
/// added to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Repository {
    registry: String,
    path: String,
}

impl Repository {
    /// Parses `registry/path` (a `:tag` or `@digest` is refused: tags come from `--tags`).
    pub(crate) fn parse(setting: &str, text: &str) -> Result<Repository, Error> {
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
        Ok(r.repository)
    }

    /// The reference of `tag` in this repository.
    pub(crate) fn tag(&self, tag: &str) -> Reference {
        Reference {
            repository: self.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    /// The reference of `digest` in this repository.
    pub(crate) fn digest(&self, digest: &Digest) -> Reference {
        Reference {
            repository: self.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }

    /// The registry as written (`docker.io`, `localhost:5000`).
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to connect to: Docker Hub's API lives on `registry-1.docker.io`.
    pub(crate) fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The path inside the registry (`group/app`, `library/alpine`).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// A manifest's name: a repository and a tag, a digest, or both (the digest wins).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Reference {
    repository: Repository,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    pub(crate) fn repository(&self) -> &Repository {
        &self.repository
    }

    pub(crate) fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub(crate) fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes after `/manifests/` in the API: the digest when there is one, else the tag.
    pub(crate) fn api_name(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The reference grammar of distribution's `reference` package (Go), whose `\w` is ASCII (a
/// Unicode `\w` would accept non-ASCII tags and cost about 70 ms per process to build). Its host
/// is a domain name, an IPv4 address or, since distribution/reference v0.5, an IPv6 address in
/// brackets (`[::1]:5000/app`; no zone identifier, no IPv4-mapped form).
/// <https://github.com/distribution/reference/blob/main/regexp.go>
const GRAMMAR: &str = r"^((?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?/)?[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?)(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}))?$";

fn grammar() -> &'static Regex {
    static GRAMMAR_RE: OnceLock<Regex> = OnceLock::new();
    GRAMMAR_RE.get_or_init(|| {
        RegexBuilder::new(GRAMMAR)
            .unicode(false)
            .build()
            .expect("the reference grammar compiles")
    })
}

/// Parses a full reference (`registry/path:tag`, `…@sha256:…`); a missing tag means `latest`.
pub(crate) fn parse(setting: &str, text: &str) -> Result<Reference, Error> {
    let text = text.trim();
    let bad = |reason: &str| {
        Error::invalid(
            setting,
            text,
            format!("not an image reference ({reason})"),
            format!("use lowercase registry/path[:tag][@digest], e.g. {EXAMPLE}"),
        )
    };
    let caps = grammar()
        .captures(text)
        .ok_or_else(|| bad(mismatch(text)))?;
    let name = &caps[1];
    let tag = caps.get(2).map(|m| m.as_str().to_string());
    let digest = match caps.get(3) {
        Some(d) => Some(Digest::parse(d.as_str()).map_err(|reason| bad(&reason))?),
        None => None,
    };
    let (registry, path) = split_domain(name);
    if path.len() > 255 {
        return Err(bad("the repository name is longer than 255 characters"));
    }
    // Only the registry part may carry capitals (the grammar would read `UPPER/app` as one).
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("the repository path must be lowercase"));
    }
    let port = match registry.strip_prefix('[') {
        Some(bracketed) => {
            let (address, rest) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("[{address}] is not an IPv6 address")));
            }
            rest.strip_prefix(':')
        }
        None => registry.rsplit_once(':').map(|(_, port)| port),
    };
    if port.is_some_and(|port| port.parse::<u16>().map_or(true, |p| p == 0)) {
        return Err(bad("the registry port is not a number from 1 to 65535"));
    }
    let tag = match (tag, &digest) {
        (None, None) => Some("latest".to_string()),
        (t, _) => t,
    };
    Ok(Reference {
        repository: Repository { registry, path },
        tag,
        digest,
    })
}

/// Why `text` does not follow the grammar, where a common mistake can be named: an IPv6 address
/// without brackets or with a zone, an unclosed bracket; else the grammar's shape.
fn mismatch(text: &str) -> &'static str {
    let host = text.split('/').next().unwrap_or(text);
    if host.starts_with('[') && !host.contains(']') {
        "the IPv6 address has no closing ]"
    } else if host.starts_with('[') && host.contains('%') {
        "an IPv6 zone (%eth0) cannot be part of a reference"
    } else if host.starts_with('[') && host.contains('.') {
        "an IPv6 address in a reference is hex digits and colons (no IPv4-mapped form)"
    } else if !host.starts_with('[') && text.contains('/') && host.matches(':').count() > 1 {
        "an IPv6 registry address goes in brackets, e.g. [::1]:5000/app"
    } else {
        "it does not follow registry/path[:tag][@digest]"
    }
}

/// Docker's normalisation: a first component with `.` or `:` (or `localhost`) is a registry;
/// otherwise the registry is `docker.io`, where one-component names live under `library/`.
fn split_domain(name: &str) -> (String, String) {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("docker.io", name),
    };
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let path = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    (registry.to_string(), path)
}

/// Checks a tag against the distribution spec's grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn check_tag(setting: &str, tag: &str) -> Result<(), Error> {
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

/// Checks each tag and keeps the first of duplicates, in order.
pub(crate) fn tags<'a>(
    setting: &str,
    given: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for tag in given {
        check_tag(setting, tag)?;
        if !out.iter().any(|have| have == tag) {
            out.push(tag.to_string());
        }
    }
    Ok(out)
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
            ("[::1]:5000/app", "[::1]:5000", "app", Some("latest"), None),
            ("[2001:DB8::1]/g/app:v1", "[2001:DB8::1]", "g/app", Some("v1"), None),
            (
                "registry.gitlab.com/g/sub/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "registry.gitlab.com",
                "g/sub/app",
                None,
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
        ] {
            let r = parse("REF", text).unwrap();
            assert_eq!(r.repository().registry(), registry, "{text}");
            assert_eq!(r.repository().path(), repo, "{text}");
            assert_eq!(r.tag(), tag, "{text}");
            assert_eq!(r.digest().map(ToString::to_string).as_deref(), digest, "{text}");
        }
    }

    #[test]
    fn agrees_with_oci_spec_parser_on_ascii_references() {
        for text in [
            "alpine",
            "alpine:3.20",
            "index.docker.io/user/app:1",
            "docker.io/library/alpine",
            "localhost/app",
            "localhost:5000/a/b/c:1.0-rc_1",
            "r.example:443/g/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "r.example/g/app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:latest-arm64",
            "a__b/c-d---e.f:_x",
        ] {
            let theirs: oci_spec::distribution::Reference = text.parse().unwrap();
            let ours = parse("REF", text).unwrap();
            assert_eq!(ours.repository().registry(), theirs.registry(), "{text}");
            assert_eq!(ours.repository().path(), theirs.repository(), "{text}");
            assert_eq!(ours.tag(), theirs.tag(), "{text}");
            assert_eq!(
                ours.digest().map(ToString::to_string).as_deref(),
                theirs.digest(),
                "{text}"
            );
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
        }
    }

    #[test]
    fn rejects_bad_references_with_an_example() {
        for bad in [
            "",
            "UPPER/app",
            "app:",
            "a b",
            "app@sha256:12",
            "app:täg",
            "app@md5:0123456789abcdef0123456789abcdef",
            "localhost:99999/app",
            "localhost:0/app",
        ] {
            let e = parse("REF", bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("localhost:5000/app"), "{bad}: {e}");
        }
    }

    #[test]
    fn names_what_is_wrong_with_an_ipv6_registry() {
        for (text, reason) in [
            ("[::1:5000/app", "the IPv6 address has no closing ]"),
            (
                "[fe80::1%eth0]:5000/app",
                "an IPv6 zone (%eth0) cannot be part",
            ),
            ("[::ffff:1.2.3.4]/app", "no IPv4-mapped form"),
            ("::1:5000/app", "goes in brackets, e.g. [::1]:5000/app"),
            ("fe80::1/app", "goes in brackets"),
            ("[:::]/app", "[:::] is not an IPv6 address"),
            (
                "[::1]:0/app",
                "the registry port is not a number from 1 to 65535",
            ),
            (
                "[::1]:99999/app",
                "the registry port is not a number from 1 to 65535",
            ),
        ] {
            let e = parse("REF", text).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{text}");
            assert!(e.to_string().contains(reason), "{text}: {e}");
        }
    }

    #[test]
    fn repository_refuses_tags_but_accepts_ports() {
        let r = Repository::parse("--image", "localhost:5000/app").unwrap();
        assert_eq!(r.to_string(), "localhost:5000/app");
        assert_eq!(r.tag("latest").to_string(), "localhost:5000/app:latest");
        let r = Repository::parse("--image", "[::1]:5000/app").unwrap();
        assert_eq!(r.api_host(), "[::1]:5000");
        assert_eq!(r.tag("1").to_string(), "[::1]:5000/app:1");
        assert_eq!(
            Repository::parse("--image", "app").unwrap().to_string(),
            "docker.io/library/app"
        );
        for bad in [
            "localhost:5000/app:1",
            "[::1]:5000/app:1",
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
