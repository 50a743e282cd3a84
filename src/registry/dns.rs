//! Name resolution with getaddrinfo's own verdict kept: "no such name" (NXDOMAIN, no address)
//! is a misconfiguration to report at once, "try again" (a resolver outage) is transient. Runs off
//! the async runtime; reqwest uses it for every registry connection, and the AWS SDK (`ecr`) for
//! its API endpoints, so a mistyped region fails like a mistyped registry host.

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

impl DnsFailure {
    /// The failure somewhere in an error's chain (an HTTP client wraps it in its own errors,
    /// `io::Error` among them, which hides what it wraps from `source()`).
    pub(crate) fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a DnsFailure> {
        let mut source = Some(error);
        while let Some(s) = source {
            if let Some(dns) = s.downcast_ref::<DnsFailure>() {
                return Some(dns);
            }
            source = match s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => s.source(),
            };
        }
        None
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

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            match lookup(name).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(failure) => Err(Box::new(failure) as _),
            }
        })
    }
}
