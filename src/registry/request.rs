//! What crosses the transport: a request to send (`Request`, its `Body`, how much of the answer
//! to read, `Limit`, and how long it may take, `Within`) and what comes back (`Reply`, `Opened`:
//! both an `Answer`), or why nothing did, and where (`Unanswered`: a `Failure` at a host). Plain
//! values; the transport sends them.

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use std::time::Duration;

use super::origin::Sent;

/// A request to send; built afresh for every attempt.
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// Where the credentials belong when `url` is an upload `Location` a registry sent (the
    /// registry's URL); `None`: `url` itself, which we built.
    pub(crate) origin: Option<Url>,
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
            origin: None,
            headers: HeaderMap::new(),
            body: Body::Empty,
        }
    }

    /// Whether sending it changes what a registry holds (a cancelled run that sent none ends
    /// at once): a PUT (a manifest, an upload's last step), a PATCH, a mount (POST with
    /// `mount=`). Opening an upload session (a POST without one) or giving one back (DELETE,
    /// the only one sent) adds nothing.
    pub(crate) fn writes(&self) -> bool {
        match self.method {
            Method::PUT | Method::PATCH => true,
            Method::POST => self.url.query_pairs().any(|(k, _)| k == "mount"),
            _ => false,
        }
    }

    /// A request to an upload `Location` that the registry at `registry` sent: the origin rule
    /// judges it against the registry.
    pub(crate) fn located(mut self, registry: &Url) -> Request {
        self.origin = Some(registry.clone());
        self
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

    /// An answer read only for its status, headers and error envelope (a push's or an upload's
    /// answer, `login`'s `/v2/`, every error body, a token service's refusal): its first 64 KiB.
    pub(crate) const ANSWER: Limit = Limit {
        bytes: 64 * 1024,
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
    /// True when this host (scheme, host and port) had answered with something else than a 400
    /// before in the run: it speaks HTTP as it was spoken to.
    pub(crate) known: bool,
    /// Where the answer came from, when not from the host the credentials are for (a redirect
    /// or Location target, which got none).
    pub(crate) via: Option<Via>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }
}

/// An answer opened to be streamed: a success whose body is left unread (a blob to stream
/// elsewhere), or any other answer, read (`Limit::ANSWER`) for its status and error envelope.
pub(crate) enum Opened {
    Stream(reqwest::Response),
    Refused(Reply),
}

/// What the request loop reads of any answer, read or opened: whether to learn a challenge (a
/// 401 of the registry itself) or to retry (a transient status).
pub(crate) trait Answer {
    fn status(&self) -> StatusCode;
    fn headers(&self) -> &HeaderMap;
    /// The answer as read, unless it is a success left to stream.
    fn reply(&self) -> Option<&Reply>;
}

impl Answer for Reply {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn reply(&self) -> Option<&Reply> {
        Some(self)
    }
}

impl Answer for Opened {
    fn status(&self) -> StatusCode {
        match self {
            Opened::Stream(r) => r.status(),
            Opened::Refused(r) => r.status,
        }
    }

    fn headers(&self) -> &HeaderMap {
        match self {
            Opened::Stream(r) => r.headers(),
            Opened::Refused(r) => &r.headers,
        }
    }

    fn reply(&self) -> Option<&Reply> {
        match self {
            Opened::Stream(_) => None,
            Opened::Refused(r) => Some(r),
        }
    }
}

/// A request that got no answer: why, and where.
#[derive(Debug)]
pub(crate) struct Unanswered {
    pub(crate) failure: Failure,
    /// Where it failed, when a redirect or an upload Location led elsewhere than the host first
    /// asked (ECR serves blobs from S3): messages must name the host that failed, not the
    /// registry.
    pub(crate) via: Option<Via>,
}

impl From<Failure> for Unanswered {
    /// A failure at the host first asked.
    fn from(failure: Failure) -> Unanswered {
        Unanswered { failure, via: None }
    }
}

/// The most bytes of a response head the HTTP client (hyper) reads.
pub(crate) const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// The most response headers the HTTP client (hyper) reads.
pub(crate) const MAX_HEADERS: usize = 100;

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
    /// A redirect or upload Location (`sent`) from `by` to plain HTTP at `host`, which is not
    /// listed as insecure: nothing was sent there.
    PlainHttp {
        host: String,
        sent: Sent,
        by: String,
    },
    /// A redirect whose `Location` cannot be followed (not a URL, a port out of range, a scheme
    /// other than HTTP): the fault of the server that sent it (`by`), not of the settings.
    BadRedirect { by: String, location: String },
    /// More redirects in a row than `MAX_REDIRECTS`: a loop, which no retry ends.
    TooManyRedirects {
        from: String,
        hops: usize,
        last: String,
    },
    /// The response body was larger than the limit.
    TooLarge(usize),
    /// The response head (status line and headers) was larger than the HTTP client reads
    /// (`MAX_HEAD_BYTES`, `MAX_HEADERS`): the server's fault, which no retry changes.
    OversizedHead,
    /// Worth another try: connection refused or reset, timeout, cut-off body, DNS outage.
    Transient(String),
}

/// How long a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Within {
    /// From connecting to the last byte of the answer.
    Whole(Duration),
    /// Until the answer's head (and, for a failure, its bounded body); a successful body handed
    /// back unread is the caller's to bound (a blob's stall detector).
    Head(Duration),
    /// No bound here: the caller bounds the whole exchange (a streamed upload, whose answer
    /// comes only after its body).
    Caller,
}

/// Where a request ended up when that is not the host first asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Via {
    /// The host first asked (`host[:port]`).
    pub(crate) from: String,
    /// The host that answered or failed (`host[:port]`, prefixed with its scheme when that
    /// differs from the first one's).
    pub(crate) to: String,
    /// What sent the request there.
    pub(crate) sent: Sent,
}

impl Via {
    /// `s3.example, where r.example redirected`.
    pub(crate) fn said(&self) -> String {
        format!("{}, {}", self.to, self.sent.said(&self.from))
    }
}
