//! What crosses the transport: a request to send (`Request`, its `Body`, how much of the answer
//! to read, `Limit`, and how long it may take, `Within`) and what comes back (`Reply`, `Opened`),
//! or why nothing did (`Failure`). Plain values; the transport sends them.

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
    /// `failure` happened at another host than the one asked, which sent us there (ECR serves
    /// blobs from S3): messages must name the host that failed, not the registry.
    Elsewhere { via: Via, failure: Box<Failure> },
    /// The response body was larger than the limit.
    TooLarge(usize),
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
