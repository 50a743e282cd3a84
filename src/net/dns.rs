//! Name resolution with getaddrinfo's own verdict kept: "no such name" (NXDOMAIN, no address)
//! is a misconfiguration to report at once, "try again" (a resolver outage) is transient. Runs off
//! the async runtime; reqwest uses it for every registry connection (`registry::transport`), and
//! the AWS SDK for its API endpoints (`ecr::sdk`), so a mistyped region fails like a mistyped
//! registry host.

use std::net::SocketAddr;

use super::causes;

/// Why a name did not resolve.
#[derive(Debug)]
pub(crate) struct DnsFailure {
    pub(crate) name: String,
    /// The name does not exist (NXDOMAIN / no address), as opposed to a resolver problem.
    pub(crate) unknown: bool,
}

impl std::fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unknown {
            write!(f, "{} does not resolve", self.name)
        } else {
            write!(f, "resolving {} failed", self.name)
        }
    }
}

impl std::error::Error for DnsFailure {}

impl DnsFailure {
    /// The failure somewhere in an error's chain (an HTTP client wraps it in its own errors,
    /// `io::Error` among them, which hides what it wraps from `source()`).
    pub(crate) fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a DnsFailure> {
        causes(error).find_map(|s| s.downcast_ref::<DnsFailure>())
    }
}

/// The addresses of `name`, or getaddrinfo's verdict.
pub(crate) async fn lookup(name: String) -> Result<Vec<SocketAddr>, DnsFailure> {
    let query = name.clone();
    let found = tokio::task::spawn_blocking(move || {
        // One address per family, not one per socket type.
        let hints = dns_lookup::AddrInfoHints {
            socktype: dns_lookup::SockType::Stream.into(),
            ..Default::default()
        };
        dns_lookup::getaddrinfo(Some(&query), None, Some(hints)).map(|addrs| {
            addrs
                .filter_map(Result::ok)
                .map(|a| a.sockaddr)
                .collect::<Vec<SocketAddr>>()
        })
    })
    .await;
    match found {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(DnsFailure {
            name,
            unknown: true,
        }),
        Ok(Err(e)) => {
            use dns_lookup::LookupErrorKind as K;
            let unknown = matches!(e.kind(), K::NoName | K::NoData);
            Err(DnsFailure { name, unknown })
        }
        Err(_) => Err(DnsFailure {
            name,
            unknown: false,
        }),
    }
}
