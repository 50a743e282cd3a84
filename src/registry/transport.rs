//! The bottom layer: the only HTTP clients of the program. One plain-HTTP client (no trust roots
//! loaded), one TLS client (system roots plus `--ca-file`, built on first use), a DNS resolver that
//! tells a name that does not exist from a resolver that is down, bounded body reads, and
//! redirects followed by hand so that `Authorization` never reaches another host (ECR serves
//! blobs by redirecting to S3) nor travels over plain HTTP to a host not listed as insecure.
//!
//! It sends one request and reports what happened as a `Reply` or a `Failure`; deciding what a
//! failure means (retry, exit 2, …) is `classify`'s job and retrying is `retry`'s. At most
//! `REQUESTS_AT_ONCE` requests of the run are in flight; the others wait for a turn.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::debug;

use super::dns::{DnsFailure, Resolver};
use super::redirect::{is_redirect, next_hop, within, Redirect};
use crate::error::Error;

const USER_AGENT: &str = concat!("multiarch/", env!("CARGO_PKG_VERSION"));
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Error bodies (envelopes, token-service refusals) are read up to this size.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Redirects followed in a row; one more is a loop.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Requests in flight at once for the whole run, token requests included. However many sources
/// and children a run reads, a registry sees at most this many connections from it (a burst of
/// thousands exhausted distribution's file descriptors); enough to keep every request of a
/// normal run (two per platform, two per tag) going at once.
pub(crate) const REQUESTS_AT_ONCE: usize = 32;

/// A request to send; built afresh for every attempt.
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
}

/// A request body.
pub(crate) enum Body {
    Empty,
    Bytes {
        content_type: String,
        bytes: Vec<u8>,
    },
    /// Streamed from elsewhere (a blob being copied), of a known length; sent once.
    Stream {
        body: reqwest::Body,
        length: u64,
    },
}

impl Request {
    pub(crate) fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
        }
    }

    pub(crate) fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Request {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub(crate) fn stream(mut self, body: reqwest::Body, length: u64) -> Request {
        self.body = Body::Stream { body, length };
        self
    }

    pub(crate) fn bytes(mut self, content_type: &str, bytes: Vec<u8>) -> Request {
        self.body = Body::Bytes {
            content_type: content_type.to_string(),
            bytes,
        };
        self
    }
}

/// What to do with a successful body larger than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Refuse it (a manifest, a config, a token: more is not what a registry should send).
    Refuse,
    /// Keep the first `limit` bytes (a push response's body says nothing we need).
    Ignore,
}

/// How much of a response body to read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub(crate) bytes: usize,
    pub(crate) overflow: Overflow,
}

impl Limit {
    /// No body wanted (a HEAD's answer).
    pub(crate) const NONE: Limit = Limit {
        bytes: 0,
        overflow: Overflow::Ignore,
    };
}

/// A registry's answer: status, headers and the (bounded) body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    /// True when the request went over plain HTTP.
    pub(crate) plain: bool,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }
}

/// A response whose success body is left unread (a blob to stream elsewhere); any other answer
/// is read, bounded, for its status and error envelope.
pub(crate) enum Opened {
    Stream(reqwest::Response),
    Done(Reply),
}

impl Opened {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Opened::Stream(r) => r.status(),
            Opened::Done(r) => r.status,
        }
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        match self {
            Opened::Stream(r) => r.headers(),
            Opened::Done(r) => &r.headers,
        }
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The host name does not exist (DNS says so: not a resolver outage).
    UnknownHost(String),
    /// A TLS handshake was answered with something that is not TLS (a plain-HTTP server).
    NotTls,
    /// The certificate was refused.
    Untrusted(String),
    /// The URL cannot be used (a port out of range, …).
    BadUrl(String),
    /// A redirect to plain HTTP for a host that is not listed as insecure.
    InsecureRedirect(String),
    /// A redirect whose `Location` cannot be followed (not a URL, a port out of range, a scheme
    /// other than HTTP): the fault of the server that sent it (`by`), not of the settings.
    BadRedirect { by: String, location: String },
    /// More redirects in a row than `MAX_REDIRECTS`: a loop, which no retry ends.
    TooManyRedirects {
        from: String,
        hops: usize,
        last: String,
    },
    /// `failure` happened at another host than the one asked, which redirected there (ECR
    /// serves blobs from S3): messages must name the host that failed, not the registry.
    Redirected {
        via: Redirect,
        failure: Box<Failure>,
    },
    /// The response body was larger than the limit.
    TooLarge(usize),
    /// Worth another try: connection refused or reset, timeout, cut-off body, DNS outage.
    Transient(String),
}

/// The HTTP clients of a run.
pub(crate) struct Transport {
    plain: reqwest::Client,
    tls: OnceLock<reqwest::Client>,
    roots: Vec<reqwest::Certificate>,
    /// Hosts (`host[:port]`, lowercase) reached over plain HTTP.
    insecure: Vec<String>,
    idle: Duration,
    /// Turns to have a request in flight (`REQUESTS_AT_ONCE`).
    in_flight: Semaphore,
}

impl Transport {
    /// Clients for `insecure` hosts and everyone else (with `pems` as extra CA certificates);
    /// `idle` bounds the wait for each piece of a response (a stalled stream).
    pub(crate) fn new(
        insecure: Vec<String>,
        pems: &[Vec<u8>],
        idle: Duration,
    ) -> Result<Transport, String> {
        // reqwest is built without a default crypto provider so the binary carries only ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = Vec::new();
        for pem in pems {
            roots.push(reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?);
        }
        // Plain HTTP needs no trust roots; loading the system's (hundreds of files) is left to
        // the first HTTPS request.
        let plain = client(Vec::new(), true, idle).map_err(|e| e.to_string())?;
        Ok(Transport {
            plain,
            tls: OnceLock::new(),
            roots,
            insecure,
            idle,
            in_flight: Semaphore::new(REQUESTS_AT_ONCE),
        })
    }

    /// True when `host` (`host[:port]`) is reached over plain HTTP.
    pub(crate) fn is_insecure(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.insecure.contains(&host)
    }

    /// `http` for insecure hosts, else `https`.
    pub(crate) fn scheme(&self, host: &str) -> &'static str {
        if self.is_insecure(host) {
            "http"
        } else {
            "https"
        }
    }

    fn client_for(&self, url: &Url) -> &reqwest::Client {
        if url.scheme() == "http" {
            return &self.plain;
        }
        self.tls.get_or_init(|| {
            // The roots were parsed in `new`; building cannot fail on them.
            client(self.roots.clone(), false, self.idle).expect("a TLS client with checked roots")
        })
    }

    /// Waits for a turn to have a request in flight; the turn ends when the permit drops. Held
    /// only around one exchange: never across another request (a token fetch comes before, as a
    /// request of its own) nor while a body handed back unread is streamed, so no turn waits on
    /// another.
    async fn turn(&self) -> SemaphorePermit<'_> {
        self.in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// Sends `req` once (following redirects for GET and HEAD) within `timeout`, reading at most
    /// `limit` of the body.
    pub(crate) async fn send(
        &self,
        req: Request,
        auth: Option<&HeaderValue>,
        limit: Limit,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let _turn = self.turn().await;
        let origin = req.url.clone();
        let (resp, url) = self.respond(req, auth, timeout).await?;
        let plain = url.scheme() == "http";
        read(resp, plain, limit)
            .await
            .map_err(|f| within(f, &origin, &url))
    }

    /// Sends `req` once; with `limit`, reads the body like `send`; without, hands back a
    /// successful response unread.
    pub(crate) async fn exchange(
        &self,
        req: Request,
        auth: Option<&HeaderValue>,
        limit: Option<Limit>,
        timeout: Duration,
    ) -> Result<Opened, Failure> {
        let turn = self.turn().await;
        let origin = req.url.clone();
        let (resp, url) = self.respond(req, auth, timeout).await?;
        let plain = url.scheme() == "http";
        let finish = |resp, limit| async move {
            read(resp, plain, limit)
                .await
                .map_err(|f| within(f, &origin, &url))
        };
        match limit {
            None if resp.status().is_success() => {
                // Streamed by the caller, perhaps into a request of its own: the turn ends here.
                drop(turn);
                Ok(Opened::Stream(resp))
            }
            None => finish(
                resp,
                Limit {
                    bytes: ERROR_BODY_LIMIT,
                    overflow: Overflow::Ignore,
                },
            )
            .await
            .map(Opened::Done),
            Some(limit) => finish(resp, limit).await.map(Opened::Done),
        }
    }

    async fn respond(
        &self,
        req: Request,
        auth: Option<&HeaderValue>,
        timeout: Duration,
    ) -> Result<(reqwest::Response, Url), Failure> {
        let follow = req.method == Method::GET || req.method == Method::HEAD;
        let origin = req.url.clone();
        let mut url = req.url;
        let mut auth = auth.cloned();
        let (method, headers) = (req.method, req.headers);
        let mut body = Some(req.body);
        let mut hops = 0;
        loop {
            let mut b = self
                .client_for(&url)
                .request(method.clone(), url.clone())
                .timeout(timeout)
                .headers(headers.clone());
            if let Some(h) = &auth {
                b = b.header(AUTHORIZATION, h.clone());
            }
            b = match body.take().unwrap_or(Body::Empty) {
                Body::Empty => b,
                Body::Bytes {
                    content_type,
                    bytes,
                } => b.header(CONTENT_TYPE, content_type).body(bytes),
                Body::Stream { body, length } => b
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, length)
                    .body(body),
            };
            let resp = b
                .send()
                .await
                .map_err(|e| within(failure(&e), &origin, &url))?;
            let status = resp.status();
            let (true, true, Some(location)) =
                (follow, is_redirect(status), resp.headers().get(LOCATION))
            else {
                return Ok((resp, url));
            };
            let next = next_hop(&url, location)?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(Failure::TooManyRedirects {
                    from: authority(&origin),
                    hops,
                    last: authority(&next),
                });
            }
            if next.scheme() == "http" && !self.is_insecure(&authority(&next)) {
                return Err(Failure::InsecureRedirect(authority(&next)));
            }
            // Credentials are for the registry: never for another host (S3 refuses a second
            // auth mechanism anyway), never downgraded to plain HTTP.
            if authority(&next) != authority(&origin) || next.scheme() != origin.scheme() {
                auth = None;
            }
            debug!(status = status.as_u16(), to = %authority(&next), "following a redirect");
            url = next;
        }
    }
}

/// `host[:port]` of a URL, as users name registries.
pub(crate) fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// Reads a body within the limit; error bodies are read up to `ERROR_BODY_LIMIT` and cut there.
async fn read(mut resp: reqwest::Response, plain: bool, limit: Limit) -> Result<Reply, Failure> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let (bound, overflow) = if status.is_success() {
        (limit.bytes, limit.overflow)
    } else {
        (ERROR_BODY_LIMIT, Overflow::Ignore)
    };
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > bound {
                    match overflow {
                        Overflow::Refuse => return Err(Failure::TooLarge(bound)),
                        Overflow::Ignore => {
                            body.extend_from_slice(&chunk[..bound - body.len()]);
                            break;
                        }
                    }
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(failure(&e)),
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
        plain,
    })
}

/// A reqwest client: our user agent, connect and idle-read timeouts, keep-alive pool, our
/// resolver, no automatic redirects. `plain_only` skips the system trust roots; otherwise `extra_roots` join them.
fn client(
    extra_roots: Vec<reqwest::Certificate>,
    plain_only: bool,
    idle: Duration,
) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(idle)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Resolver));
    let builder = if plain_only {
        builder.tls_certs_only(Vec::new())
    } else {
        builder.tls_certs_merge(extra_roots)
    };
    builder.build()
}

/// Reads a PEM bundle into one PEM per certificate.
pub(crate) fn read_ca_file(path: &std::path::Path, setting: &str) -> Result<Vec<Vec<u8>>, Error> {
    let text = crate::user_file::read(setting, path, crate::user_file::MAX_BYTES)?;
    let pems: Vec<Vec<u8>> = text
        .split_inclusive("-----END CERTIFICATE-----")
        .filter_map(|block| {
            block
                .find("-----BEGIN CERTIFICATE-----")
                .map(|at| block.as_bytes()[at..].to_vec())
        })
        .collect();
    if pems.is_empty() {
        return Err(Error::invalid(
            setting,
            path.display().to_string(),
            "no PEM certificate in the file",
            "give a file with one or more -----BEGIN CERTIFICATE----- blocks",
        ));
    }
    Ok(pems)
}

/// What went wrong with a request that got no answer, from the error chain: our resolver's
/// verdict, rustls' (a certificate refused, a handshake answered in plain text), or the kind
/// reqwest reports. Nothing here matches message text.
fn failure(e: &reqwest::Error) -> Failure {
    if let Some(dns) = DnsFailure::find(e) {
        return if dns.unknown {
            Failure::UnknownHost(dns.name.clone())
        } else {
            Failure::Transient(dns.to_string())
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        match s.downcast_ref::<rustls::Error>() {
            Some(tls @ rustls::Error::InvalidCertificate(_)) => {
                return Failure::Untrusted(tls.to_string())
            }
            Some(rustls::Error::InvalidMessage(_)) => return Failure::NotTls,
            _ => {}
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return Failure::Transient("connection refused".into())
                }
                std::io::ErrorKind::ConnectionReset => {
                    return Failure::Transient("connection reset".into())
                }
                _ => {}
            }
        }
        // `io::Error` hides the error it wraps from `source()`: unwrap it by hand.
        source = match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    if e.is_builder() {
        return Failure::BadUrl("the request URL cannot be used".into());
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response cut off"
    } else {
        "request failed"
    };
    Failure::Transient(kind.to_string())
}
