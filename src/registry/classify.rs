//! Registry answers and transport failures → `Error`, by HTTP status and registry error code
//! (`MANIFEST_UNKNOWN`, `DENIED`, `TOOMANYREQUESTS`, `TAG_INVALID`), never by message text.

use oci_client::errors::OciDistributionError;
use serde::Deserialize;

use super::send::{Attempt, Reply};
use crate::error::Error;
use crate::reference::Reference;

/// What we were doing; it words messages and tells which credentials were needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Fetch,
    FetchConfig,
    Push,
}

impl Action {
    fn doing(self) -> &'static str {
        match self {
            Action::Fetch => "fetching manifest",
            Action::FetchConfig => "fetching image config of",
            Action::Push => "pushing index to",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Fetch | Action::FetchConfig => "pull",
            Action::Push => "push to",
        }
    }

    /// What the body is, for size errors.
    pub fn object(self) -> &'static str {
        match self {
            Action::Fetch => "manifest",
            Action::FetchConfig => "image config",
            Action::Push => "push response",
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// The distribution error codes of a reply body, if it has an envelope.
fn codes(body: &[u8]) -> Vec<(String, String)> {
    serde_json::from_slice::<Envelope>(body)
        .map(|e| e.errors.into_iter().map(|b| (b.code, b.message)).collect())
        .unwrap_or_default()
}

/// A non-success reply (after retries) as an error.
pub fn reply(reply: &Reply, action: Action, at: &Reference) -> Error {
    let codes = codes(&reply.body);
    let status = reply.status;
    let mut reason = format!("HTTP {status}");
    for (code, message) in &codes {
        reason.push_str(&format!(", {code}: {message}"));
    }
    if codes.iter().any(|(c, _)| c == "TAG_INVALID") && action == Action::Push {
        return Error::TagImmutable {
            reference: at.to_string(),
            reason,
        };
    }
    match status.as_u16() {
        401 | 403 => Error::AccessDenied {
            action: action.doing(),
            verb: action.verb(),
            reference: at.to_string(),
            registry: at.registry().to_string(),
            reason,
        },
        408 | 429 | 500..=599 => transient(action, at, reason),
        _ => Error::Registry {
            action: action.doing(),
            reference: at.to_string(),
            reason,
        },
    }
}

pub fn transient(action: Action, at: &Reference, reason: String) -> Error {
    Error::Transient {
        action: action.doing(),
        reference: at.to_string(),
        reason,
    }
}

/// A failed send or body read: a TLS trust problem is final (exit 2); anything else is worth
/// another try (connection refused or reset, timeout, cut-off body).
pub fn transport<T>(e: &reqwest::Error, action: Action, at: &Reference) -> Attempt<T> {
    if let Some(detail) = certificate_problem(e) {
        return Attempt::Done(Err(Error::UntrustedCertificate {
            registry: at.registry().to_string(),
            detail,
        }));
    }
    if e.is_builder() || e.is_redirect() {
        return Attempt::Done(Err(Error::Registry {
            action: action.doing(),
            reference: at.to_string(),
            reason: describe(e),
        }));
    }
    Attempt::Retry {
        reason: describe(e),
        after: None,
    }
}

/// An error of oci-client's authentication handshake.
pub fn auth_error<T>(e: OciDistributionError, action: Action, at: &Reference) -> Attempt<T> {
    match e {
        OciDistributionError::RequestError(r) => transport(&r, action, at),
        // The token service refused the credentials (oci-client keeps only its text).
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => {
            Attempt::Done(Err(Error::AccessDenied {
                action: action.doing(),
                verb: action.verb(),
                reference: at.to_string(),
                registry: at.registry().to_string(),
                reason: "the token service refused the credentials".into(),
            }))
        }
        other => Attempt::Done(Err(Error::Registry {
            action: action.doing(),
            reference: at.to_string(),
            reason: format!("authentication failed ({other})"),
        })),
    }
}

/// A transport error without its URL (URLs may carry signed queries after a redirect).
fn describe(r: &reqwest::Error) -> String {
    let kind = if r.is_timeout() {
        "timed out"
    } else if r.is_connect() {
        "connection failed"
    } else if r.is_body() || r.is_decode() {
        "response cut off"
    } else if r.is_redirect() {
        "too many redirects"
    } else {
        "request failed"
    };
    kind.to_string()
}

/// Finds a rustls certificate rejection anywhere in the error chain. `io::Error` hides the error
/// it wraps from `source()` (it reports that error's source), so those are unwrapped by hand.
fn certificate_problem(r: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(r);
    while let Some(s) = source {
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) = s.downcast_ref::<rustls::Error>()
        {
            return Some(tls.to_string());
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
