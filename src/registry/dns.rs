//! Name resolution with getaddrinfo's own verdict kept: "no such name" (NXDOMAIN, no address)
//! is a misconfiguration to report at once, "try again" (a resolver outage) is transient. Runs off
//! the async runtime; reqwest uses it for every connection.

use std::net::SocketAddr;

/// getaddrinfo, off the runtime, keeping its verdict: "no such name" is a misconfiguration to
/// report at once; "try again" (a resolver outage) is transient.
pub(super) struct Resolver;

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

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            let lookup = name.clone();
            let found = tokio::task::spawn_blocking(move || {
                // One address per family, not one per socket type.
                let hints = dns_lookup::AddrInfoHints {
                    socktype: dns_lookup::SockType::Stream.into(),
                    ..Default::default()
                };
                dns_lookup::getaddrinfo(Some(&lookup), None, Some(hints)).map(|addrs| {
                    addrs
                        .filter_map(Result::ok)
                        .map(|a| a.sockaddr)
                        .collect::<Vec<SocketAddr>>()
                })
            })
            .await;
            match found {
                Ok(Ok(addrs)) if !addrs.is_empty() => {
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
                Ok(Ok(_)) => Err(Box::new(DnsFailure {
                    name,
                    unknown: true,
                }) as _),
                Ok(Err(e)) => {
                    use dns_lookup::LookupErrorKind as K;
                    let unknown = matches!(e.kind(), K::NoName | K::NoData);
                    Err(Box::new(DnsFailure { name, unknown }) as _)
                }
                Err(_) => Err(Box::new(DnsFailure {
                    name,
                    unknown: false,
                }) as _),
            }
        })
    }
}
