//! The bottom layer: the only HTTP clients of the program. One plain-HTTP client (no trust roots
//! loaded), one TLS client (system roots plus `--ca-file`, built on first use), a DNS resolver that
//! tells a name that does not exist from a resolver that is down, bounded body reads, and
//! redirects followed by hand. Before every hop — the first one included, which may be an upload
//! `Location` — `origin`'s rule decides whether it may be sent and whether `Authorization` goes
//! with it: never to another host than the one the credentials are for (ECR serves blobs by
//! redirecting to S3), never over plain HTTP to a host not listed as insecure.
//!
//! It sends one request (`exchange`, the only way a request leaves) and reports what happened: an
//! answer taken off the wire as the caller asked (`Take`: read into a `Reply`, or a success left
//! unread to stream, `Opened`), or why none came and where (`Unanswered`); deciding what a
//! failure means (retry, exit 2, …) is `classify`'s job and retrying is `retry`'s. At most
//! `REQUESTS_AT_ONCE` requests of the run are in flight; the others wait for a turn. It remembers
//! which hosts have answered with something else than a 400, so that a bare 400 can be told from
//! a TLS port spoken to in plain HTTP.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::{debug, info};

use super::origin::{self, authority, locate, Carry, Insecure, Sent};
use super::redirect::{is_redirect, via, within};
pub(crate) use super::request::{
    Answer, Body, Failure, Limit, Opened, Overflow, Reply, Request, Unanswered, Within,
};
use crate::error::Error;
use crate::net::{causes, lookup, DnsFailure};

const USER_AGENT: &str = concat!("multiarch/", env!("CARGO_PKG_VERSION"));
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed in a row; one more is a loop.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Requests in flight at once for the whole run, token requests included. However many sources
/// and children a run reads, a registry sees at most this many connections from it (a burst of
/// thousands exhausted distribution's file descriptors); enough to keep every request of a
/// normal run (two per platform, two per tag, two per destination) going at once.
pub(crate) const REQUESTS_AT_ONCE: usize = 32;

/// The HTTP clients of a run.
pub(crate) struct Transport {
    plain: reqwest::Client,
    tls: OnceLock<reqwest::Client>,
    roots: Vec<reqwest::Certificate>,
    /// Hosts reached over plain HTTP.
    insecure: Insecure,
    /// Turns to have a request in flight (`REQUESTS_AT_ONCE`).
    in_flight: Semaphore,
    /// The origins (`scheme://host[:port]`) that have answered with something else than a 400:
    /// a TLS port spoken to in plain HTTP answers every request with a bare 400, so only an
    /// origin not among these can be one.
    spoken: Mutex<HashSet<String>>,
    /// The hosts an upload `Location` sent blobs to, away from the registry: said once each, so
    /// a later failure (the registry not finding those blobs) can be read against it.
    elsewhere: Mutex<HashSet<String>>,
}

impl Transport {
    /// Clients for `insecure` hosts and everyone else (with `pems` as extra CA certificates).
    pub(crate) fn new(insecure: Vec<String>, pems: &[Vec<u8>]) -> Result<Transport, String> {
        // reqwest is built without a default crypto provider so the binary carries only ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = Vec::new();
        for pem in pems {
            roots.push(reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?);
        }
        // Plain HTTP needs no trust roots; loading the system's (hundreds of files) is left to
        // the first HTTPS request.
        let plain = client(Vec::new(), true).map_err(|e| e.to_string())?;
        Ok(Transport {
            plain,
            tls: OnceLock::new(),
            roots,
            insecure: Insecure::new(insecure),
            in_flight: Semaphore::new(REQUESTS_AT_ONCE),
            spoken: Mutex::default(),
            elsewhere: Mutex::default(),
        })
    }

    /// The hosts reached over plain HTTP, for `origin`'s rule.
    pub(crate) fn insecure(&self) -> &Insecure {
        &self.insecure
    }

    /// `http` for insecure hosts, else `https`.
    pub(crate) fn scheme(&self, host: &str) -> &'static str {
        if self.insecure.lists(host) {
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
            client(self.roots.clone(), false).expect("a TLS client with checked roots")
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

    /// The one exchange: sends `req` once (following redirects for GET and HEAD) within `bound`
    /// and takes its answer off the wire as `take` says: read within a limit (`Limit`: a
    /// `Reply`), or a success left unread to stream (`Unread`: `Opened`).
    pub(crate) async fn exchange<T: Take>(
        &self,
        req: Request,
        auth: Option<&HeaderValue>,
        bound: Within,
        take: T,
    ) -> Result<T::Answer, Unanswered> {
        let turn = self.turn().await;
        let answered = self.respond(req, auth, bound).await?;
        take.take(Head {
            answered,
            bound,
            turn,
        })
        .await
    }

    /// Sends `req`, following redirects for GET and HEAD, each hop judged by `origin`'s rule.
    async fn respond(
        &self,
        req: Request,
        auth: Option<&HeaderValue>,
        bound: Within,
    ) -> Result<Answered, Unanswered> {
        let follow = req.method == Method::GET || req.method == Method::HEAD;
        let (origin, mut sent) = match req.origin {
            Some(registry) => (registry, Sent::Location),
            None => (req.url.clone(), Sent::Asked),
        };
        let mut url = req.url;
        let mut by = authority(&origin);
        let (method, headers) = (req.method, req.headers);
        let mut body = Some(req.body);
        let mut hops = 0;
        loop {
            let carry = origin::judge(sent, &origin, &url, &self.insecure).map_err(|p| {
                Failure::PlainHttp {
                    host: p.host,
                    sent,
                    by: by.clone(),
                }
            })?;
            let mut b = self
                .client_for(&url)
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Within::Whole(d) = bound {
                b = b.timeout(d);
            }
            if let (Carry::Credentials, Some(h)) = (carry, auth) {
                b = b.header(AUTHORIZATION, h.clone());
            }
            let uploads = method == Method::PUT || method == Method::PATCH;
            if (carry, sent) == (Carry::Nothing, Sent::Location) && uploads {
                let host = authority(&url);
                if self
                    .elsewhere
                    .lock()
                    .expect("hosts uploaded to")
                    .insert(host.clone())
                {
                    info!(%host, "blobs are uploaded to {host}, {}, without the registry's credentials", sent.said(&by));
                }
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
            let sending = b.send();
            let sent_off = match bound {
                Within::Head(d) => match tokio::time::timeout(d, sending).await {
                    Ok(r) => r.map_err(|e| failure(&e)),
                    Err(_) => Err(Failure::Transient("timed out".into())),
                },
                Within::Whole(_) | Within::Caller => sending.await.map_err(|e| failure(&e)),
            };
            let resp = sent_off.map_err(|f| within(f, &origin, &url, sent))?;
            let status = resp.status();
            let known = {
                let mut spoken = self.spoken.lock().expect("hosts that spoke");
                let key = format!("{}://{}", url.scheme(), authority(&url));
                let known = spoken.contains(&key);
                if status != StatusCode::BAD_REQUEST {
                    spoken.insert(key);
                }
                known
            };
            let (true, true, Some(location)) =
                (follow, is_redirect(status), resp.headers().get(LOCATION))
            else {
                return Ok(Answered {
                    resp,
                    url,
                    origin,
                    sent,
                    known,
                });
            };
            let next = locate(&url, location).map_err(|location| Failure::BadRedirect {
                by: authority(&url),
                location,
            })?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(Failure::TooManyRedirects {
                    from: authority(&origin),
                    hops,
                    last: authority(&next),
                }
                .into());
            }
            debug!(status = status.as_u16(), to = %authority(&next), "following a redirect");
            by = authority(&url);
            sent = Sent::Redirect;
            url = next;
        }
    }
}

/// An answer's head, and where it came from.
struct Answered {
    resp: reqwest::Response,
    /// The URL that answered.
    url: Url,
    /// Where the credentials belong.
    origin: Url,
    /// What took the request to `url`, when that is elsewhere than `origin`.
    sent: Sent,
    /// `url`'s origin had answered with something else than a 400 before.
    known: bool,
}

/// An answer whose head has arrived and whose body is still on the wire; it holds the request's
/// turn until its body is read or handed on.
pub(crate) struct Head<'t> {
    answered: Answered,
    bound: Within,
    turn: SemaphorePermit<'t>,
}

impl Head<'_> {
    /// Reads the body: a success's within `limit`, any other's up to `Limit::ANSWER` (cut
    /// there); with `Within::Head`, within that time.
    async fn read(self, limit: Limit) -> Result<Reply, Unanswered> {
        let Answered {
            resp,
            url,
            origin,
            sent,
            known,
        } = self.answered;
        let reading = read(resp, limit);
        let read = match self.bound {
            Within::Head(d) => tokio::time::timeout(d, reading)
                .await
                .unwrap_or_else(|_| Err(Failure::Transient("timed out".into()))),
            Within::Whole(_) | Within::Caller => reading.await,
        };
        drop(self.turn);
        let (status, headers, body) = read.map_err(|f| within(f, &origin, &url, sent))?;
        Ok(Reply {
            status,
            headers,
            body,
            plain: url.scheme() == "http",
            known,
            via: via(&origin, &url, sent),
        })
    }
}

/// How a caller takes an answer off the wire, and what it gets: the typed halves of the one
/// exchange.
#[allow(async_fn_in_trait)]
pub(crate) trait Take: Copy {
    type Answer: Answer;
    async fn take(self, head: Head<'_>) -> Result<Self::Answer, Unanswered>;
}

/// An answer read, whatever its status, a success's body within the limit.
impl Take for Limit {
    type Answer = Reply;

    async fn take(self, head: Head<'_>) -> Result<Reply, Unanswered> {
        head.read(self).await
    }
}

/// A success left unread, for the caller to stream (and bound); any other answer read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unread;

impl Take for Unread {
    type Answer = Opened;

    async fn take(self, head: Head<'_>) -> Result<Opened, Unanswered> {
        if !head.answered.resp.status().is_success() {
            return head.read(Limit::ANSWER).await.map(Opened::Refused);
        }
        // Streamed by the caller, perhaps into a request of its own: the turn ends here.
        drop(head.turn);
        Ok(Opened::Stream(head.answered.resp))
    }
}

/// Reads a body within the limit; error bodies are read up to `Limit::ANSWER` and cut there.
async fn read(
    mut resp: reqwest::Response,
    limit: Limit,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), Failure> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let Limit {
        bytes: bound,
        overflow,
    } = if status.is_success() {
        limit
    } else {
        Limit::ANSWER
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
    Ok((status, headers, body))
}

/// A reqwest client: our user agent, a connect timeout, keep-alive pool, our resolver, no
/// automatic redirects. No read timeout of its own: it would also run while a long upload is
/// still sending its body; each request is bounded by its caller (`Within`). `plain_only` skips
/// the system trust roots; otherwise `extra_roots` join them.
fn client(
    extra_roots: Vec<reqwest::Certificate>,
    plain_only: bool,
) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
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
pub(super) fn failure(e: &reqwest::Error) -> Failure {
    if let Some(dns) = DnsFailure::find(e) {
        return if dns.unknown {
            Failure::UnknownHost(dns.name.clone())
        } else {
            Failure::Transient(dns.to_string())
        };
    }
    for s in causes(e) {
        match s.downcast_ref::<rustls::Error>() {
            Some(tls @ rustls::Error::InvalidCertificate(_)) => {
                return Failure::Untrusted(tls.to_string())
            }
            Some(rustls::Error::InvalidMessage(_)) => return Failure::NotTls,
            _ => {}
        }
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse_too_large)
        {
            return Failure::OversizedHead;
        }
        match s.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
            Some(std::io::ErrorKind::ConnectionRefused) => {
                return Failure::Transient("connection refused".into())
            }
            Some(std::io::ErrorKind::ConnectionReset) => {
                return Failure::Transient("connection reset".into())
            }
            _ => {}
        }
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

/// getaddrinfo, off the runtime, keeping its verdict (`net::lookup`): "no such name" is a
/// misconfiguration to report at once; "try again" (a resolver outage) is transient.
struct Resolver;

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
