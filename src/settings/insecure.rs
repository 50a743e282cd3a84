//! Entries of `--insecure-registry` / `MULTIARCH_INSECURE_REGISTRIES`: the hosts reached over
//! plain HTTP. The transport compares `host[:port]` exactly, so an entry written any other way
//! would never match, and the TLS error that follows would tell the user to list a host they
//! listed. Spellings copied from URLs (`http://host:5000`, `host:5000/`) are taken for what they
//! mean; an entry that can never match a registry (a wildcard, a path, no host, a bad port) is
//! refused with exit 2. Pure: no I/O.

use crate::error::Error;

const FORMS: &str = "write host or host:port as in the image reference, e.g. localhost:5000, registry.internal or 10.0.0.5:5000 (http:// and a trailing / are dropped; no wildcards or paths)";

/// The `host[:port]`, lowercase, that `entry` (given by `setting`) names.
pub(super) fn host(setting: &str, entry: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::invalid(setting, entry, reason, FORMS);
    let lower = entry.trim().to_ascii_lowercase();
    let rest = match lower.split_once("://") {
        None => lower.as_str(),
        Some(("http", rest)) => rest,
        Some(("https", _)) => {
            return Err(Error::invalid(
                setting,
                entry,
                "https:// names a TLS registry, but a host listed here is reached over plain HTTP",
                "list a plain-HTTP registry as host:port; for a TLS registry with a private CA, give the CA with --ca-file / MULTIARCH_CA_FILE instead",
            ))
        }
        Some(_) => return Err(bad("a registry is reached over http or https, no other scheme")),
    };
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.contains('*') {
        return Err(bad(
            "wildcards are not supported: each registry is listed by its host",
        ));
    }
    if host.contains('/') {
        return Err(bad(
            "it has a path: a registry is matched by its host[:port] alone",
        ));
    }
    let (name, port) = match host.strip_prefix('[') {
        // An IPv6 literal, as URLs write it: [::1]:5000.
        Some(v6) => {
            let (address, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("the IPv6 address has no closing ]"))?;
            if address.is_empty()
                || !address
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || ":.".contains(c))
            {
                return Err(bad("it is not an IPv6 address"));
            }
            match after {
                "" => (address, None),
                _ => (
                    address,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| bad("it is not host:port"))?,
                    ),
                ),
            }
        }
        None if host.matches(':').count() > 1 => {
            return Err(bad(
                "an IPv6 address is written in brackets, e.g. [::1]:5000",
            ))
        }
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    if name.is_empty() {
        return Err(bad("it names no host"));
    }
    if !host.starts_with('[')
        && !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
    {
        return Err(bad("it is not a host name or address"));
    }
    if let Some(port) = port {
        let valid =
            port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0);
        if !valid {
            return Err(bad("the port is not a number from 1 to 65535"));
        }
    }
    Ok(host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_copied_from_urls_name_their_host() {
        for (entry, want) in [
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            (" 127.0.0.1:5000 ", "127.0.0.1:5000"),
            ("http://127.0.0.1:5000", "127.0.0.1:5000"),
            ("HTTP://Registry.Internal:5000/", "registry.internal:5000"),
            ("127.0.0.1:5000/", "127.0.0.1:5000"),
            ("registry.internal", "registry.internal"),
            ("my_registry:80", "my_registry:80"),
            ("[::1]:5000", "[::1]:5000"),
            ("http://[fd00::5]/", "[fd00::5]"),
        ] {
            assert_eq!(
                host("MULTIARCH_INSECURE_REGISTRIES", entry).unwrap(),
                want,
                "{entry}"
            );
        }
    }

    #[test]
    fn entries_that_can_never_match_are_refused_naming_them() {
        for (entry, why) in [
            ("*", "wildcards are not supported"),
            ("127.0.0.1:*", "wildcards are not supported"),
            ("*.internal", "wildcards are not supported"),
            ("127.0.0.1:5000/v2", "it has a path"),
            ("http://127.0.0.1:5000/v2/", "it has a path"),
            ("127.0.0.1:5000//", "it has a path"),
            ("http://", "it names no host"),
            (":5000", "it names no host"),
            ("/", "it names no host"),
            ("https://127.0.0.1:5000", "https:// names a TLS registry"),
            (
                "ftp://127.0.0.1",
                "a registry is reached over http or https",
            ),
            ("127.0.0.1:0", "the port is not a number from 1 to 65535"),
            (
                "127.0.0.1:99999",
                "the port is not a number from 1 to 65535",
            ),
            ("127.0.0.1:", "the port is not a number from 1 to 65535"),
            ("127.0.0.1:+80", "the port is not a number from 1 to 65535"),
            ("user@127.0.0.1", "it is not a host name or address"),
            ("::1", "an IPv6 address is written in brackets"),
            ("[::1", "the IPv6 address has no closing ]"),
            ("[::1]5000", "it is not host:port"),
        ] {
            let e = host("MULTIARCH_INSECURE_REGISTRIES", entry).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{entry}");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!(
                    "MULTIARCH_INSECURE_REGISTRIES = {entry:?} is invalid: {why}"
                )),
                "{entry}: {text}"
            );
            assert!(text.contains("host:port"), "{entry}: {text}");
        }
    }
}
