//! Registry answers and transport failures → `Error`, by HTTP status, registry error *code*
//! (`MANIFEST_UNKNOWN`, `DENIED`, `TOOMANYREQUESTS`, `TAG_INVALID`) and the transport's verdict,
//! never by message text. Pure: no I/O.
//!
//! Four classes: permanent misconfiguration (a host that does not exist, TLS answered in plain
//! HTTP or the reverse, an untrusted certificate, an unusable URL) ends the run at once with
//! exit 2 and a hint; a registry's own broken redirect or upload `Location` (unusable, a loop,
//! plain HTTP to a host not listed, a refusal from the host it names, which gets no credentials)
//! ends it at once with exit 1, since neither settings nor a retry fix it; refusals (401/403, or
//! a `DENIED` code) exit 5, a manifest refused as invalid (400 on its PUT) exit 4; 408/429/5xx,
//! refused or reset connections and timeouts are transient: retried, then exit 75. A failure
//! after a redirect or at a Location names the host that failed and the one that sent us there.
//! A bare 400 is read as "plain HTTP sent to a TLS port" only where that can be true: before a
//! plain-HTTP host has answered anything else (a TLS port answers every request so); once it has,
//! it has shown it speaks plain HTTP and a 400 is its refusal, with its status.

use serde::Deserialize;

use super::origin::Sent;
use super::request::{MAX_HEADERS, MAX_HEAD_BYTES};
use super::transport::{Failure, Reply, Unanswered, MAX_REDIRECTS};
use crate::error::{Creator, Error, GaveUp, Origin};
use crate::text::bounded;

/// What we were doing; it words messages and tells which credentials were needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Fetch,
    FetchConfig,
    FetchBlob,
    /// Looking at a target tag with push credentials (the push-access check).
    CheckTarget,
    PushManifest,
    MountBlob,
    UploadBlob,
    Token,
    Login,
}

impl Action {
    pub(crate) fn doing(self) -> &'static str {
        match self {
            Action::Fetch => "fetching manifest",
            Action::FetchConfig => "fetching image config of",
            Action::FetchBlob => "reading blob",
            Action::MountBlob => "mounting blob into",
            Action::UploadBlob => "uploading blob to",
            Action::CheckTarget => "checking push access to",
            Action::PushManifest => "pushing to",
            Action::Token => "getting a token for",
            Action::Login => "logging in to",
        }
    }

    fn pushes(self) -> bool {
        match self {
            Action::Fetch
            | Action::FetchConfig
            | Action::FetchBlob
            | Action::Token
            | Action::Login => false,
            Action::CheckTarget | Action::PushManifest | Action::MountBlob | Action::UploadBlob => {
                true
            }
        }
    }

    /// What a body is, for size errors.
    pub(crate) fn object(self) -> &'static str {
        match self {
            Action::Fetch => "manifest",
            Action::FetchConfig => "image config",
            Action::Token => "token answer",
            Action::UploadBlob | Action::MountBlob | Action::FetchBlob => "blob",
            _ => "response",
        }
    }
}

/// One operation, as messages and the auth layer need it.
#[derive(Debug, Clone)]
pub(crate) struct Op<'a> {
    pub(crate) action: Action,
    /// The reference (or repository) being worked on, as users see it.
    pub(crate) at: &'a str,
    /// The host the request goes to (`registry-1.docker.io`, a token service).
    pub(crate) host: &'a str,
    /// The registry as users name it (`docker.io`, `localhost:5000`): the credential's key.
    pub(crate) registry: &'a str,
    /// Token scope: `repository:group/app:pull[,push]`, several separated by spaces.
    pub(crate) scope: String,
    /// Where the user named the registry hosts (`Access::hosts_from`): what to check when one
    /// does not resolve.
    pub(crate) hosts_from: &'a str,
    /// The repository's path in the registry (`group/app`); `None` for a login.
    pub(crate) path: Option<&'a str>,
    /// The registry is Amazon ECR (by its host name, or `MULTIARCH_AUTH=ecr`): it words hints.
    pub(crate) ecr: bool,
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

/// Text a server chose to show, made safe for one line of a log: printable, without this run's
/// secrets (servers echo credentials), at most 200 chars.
pub(crate) fn clean(text: &str) -> String {
    let text = crate::secret::redact(text);
    bounded(text.chars().map(|c| if c.is_control() { ' ' } else { c }))
        .trim()
        .to_string()
}

/// 408, 429 and the 5xx that say "try again".
pub(crate) fn is_transient(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A non-success reply (after retries) as an error; `credential` names what was presented.
/// Whether a refusal is about the credential (401, 403, or a `DENIED`/`UNAUTHORIZED` error code
/// with another status, as some registries answer a protected tag): then the error names where
/// the credential came from.
pub(crate) fn about_credentials(reply: &Reply) -> bool {
    matches!(reply.status.as_u16(), 401 | 403)
        || codes(&reply.body)
            .iter()
            .any(|(c, _)| c == "DENIED" || c == "UNAUTHORIZED")
}

pub(crate) fn reply(reply: &Reply, op: &Op, credential: Option<&Origin>) -> Error {
    let codes = codes(&reply.body);
    let status = reply.status;
    let mut reason = format!("HTTP {status}");
    for (code, message) in &codes {
        reason.push_str(&format!(", {}: {}", clean(code), clean(message)));
    }
    let has = |wanted: &[&str]| codes.iter().any(|(c, _)| wanted.contains(&c.as_str()));
    if let Some(via) = &reply.via {
        // A host a redirect or an upload Location named: it got no credentials, so neither
        // its refusal nor anything else it says is about them.
        let who = format!(
            "{} answered {reason} ({})",
            via.to,
            via.sent.said(&via.from)
        );
        return if is_transient(status) {
            Error::Transient {
                action: op.action.doing(),
                reference: op.at.to_string(),
                reason: who,
                gave_up: GaveUp::Not,
            }
        } else if matches!(status.as_u16(), 401 | 403) {
            Error::Registry {
                action: op.action.doing(),
                reference: op.at.to_string(),
                reason: format!("{who}; no credentials are sent there, only to {}", via.from),
            }
        } else {
            Error::Registry {
                action: op.action.doing(),
                reference: op.at.to_string(),
                reason: who,
            }
        };
    }
    if has(&["DIGEST_INVALID", "SIZE_INVALID"]) {
        return Error::InvalidManifest {
            reference: op.at.to_string(),
            what: op.action.object(),
            reason: format!("the registry found it corrupt ({reason})"),
        };
    }
    if has(&["TAG_INVALID"]) && op.action == Action::PushManifest {
        return Error::TagImmutable {
            reference: op.at.to_string(),
            reason,
        };
    }
    // A registry that does not create repositories on push (ECR; those whose repositories
    // belong to projects) names the one it lacks so; a bare 404 is left to the caller's reading.
    if let (404, true, Some(path)) = (status.as_u16(), has(&["NAME_UNKNOWN"]), op.path) {
        if op.action.pushes() {
            return Error::RepositoryMissing {
                action: op.action.doing(),
                at: op.at.to_string(),
                path: path.to_string(),
                reason,
                creator: creator(op),
            };
        }
    }
    match status.as_u16() {
        401 | 403 => denied(op, credential, reason),
        _ if has(&["DENIED", "UNAUTHORIZED"]) => denied(op, credential, reason),
        s if is_transient(status) && s != 0 => Error::Transient {
            action: op.action.doing(),
            reference: op.at.to_string(),
            reason: format!("{} answered {reason}", op.host),
            gave_up: GaveUp::Not,
        },
        // Go's HTTP server answers plain HTTP sent to its TLS port with a bare 400 — to every
        // request, so not once the host has answered anything else.
        400 if reply.plain && !reply.known && codes.is_empty() => Error::Unreachable {
            host: op.host.to_string(),
            problem: "it answered plain HTTP with 400 Bad Request, as TLS servers do".into(),
            hint: format!(
                "if {} serves HTTPS, remove it from MULTIARCH_INSECURE_REGISTRIES",
                op.host
            ),
        },
        400 if op.action == Action::PushManifest => Error::ManifestRefused {
            reference: op.at.to_string(),
            reason,
        },
        _ => Error::Registry {
            action: op.action.doing(),
            reference: op.at.to_string(),
            reason: format!("the registry answered {reason}"),
        },
    }
}

fn denied(op: &Op, credential: Option<&Origin>, reason: String) -> Error {
    let credential = credential.cloned().unwrap_or(Origin::Anonymous);
    if op.action == Action::Login {
        return Error::LoginRefused {
            registry: op.registry.to_string(),
            refused_by: "the registry".into(),
            credential,
            reason,
        };
    }
    Error::AccessDenied {
        action: op.action.doing(),
        push: op.action.pushes(),
        reference: op.at.to_string(),
        registry: op.registry.to_string(),
        credential,
        reason,
    }
}

/// Who creates a repository of `op`'s registry, for the hint of a missing one.
fn creator(op: &Op) -> Creator {
    match op.ecr {
        true => Creator::Ecr {
            region: crate::ecr::parse_host(op.registry).map(|h| h.region),
        },
        false => Creator::Registry {
            registry: op.registry.to_string(),
        },
    }
}

/// The reason a token service gave for refusing: its `details`, its error envelope's messages,
/// or its text, cleaned.
pub(crate) fn service_reason(reply: &Reply) -> String {
    #[derive(Deserialize)]
    struct Details {
        details: Option<String>,
    }
    let mut reason = format!("HTTP {}", reply.status);
    if let Some(d) = serde_json::from_slice::<Details>(&reply.body)
        .ok()
        .and_then(|d| d.details)
    {
        reason.push_str(&format!(": {}", clean(&d)));
    } else if let Some((code, message)) = codes(&reply.body).into_iter().next() {
        reason.push_str(&format!(": {}: {}", clean(&code), clean(&message)));
    } else if let Ok(text) = std::str::from_utf8(&reply.body) {
        if !text.trim().is_empty() {
            reason.push_str(&format!(": {}", clean(text)));
        }
    }
    reason
}

/// What a request that got no answer comes to.
#[derive(Debug)]
pub(crate) enum Failed {
    /// No retry changes it: misconfiguration, a size, a registry's broken redirect or Location.
    Final(Error),
    /// Worth another try (exit 75 when none is left).
    Transient(Error),
}

impl Failed {
    pub(crate) fn error(self) -> Error {
        match self {
            Failed::Final(e) | Failed::Transient(e) => e,
        }
    }
}

/// A request that got no answer: final (misconfiguration, size, a registry's broken redirect or
/// Location) or worth another try. After a redirect or at an upload Location, the host that
/// failed is named with the one that sent the request there.
pub(crate) fn failure(unanswered: Unanswered, op: &Op) -> Failed {
    let done = Failed::Final;
    let Unanswered { failure: f, via } = unanswered;
    let service = |host: &str| {
        if op.action == Action::Token {
            format!("the token service {host} of {}", op.registry)
        } else {
            host.to_string()
        }
    };
    // The host that failed as messages name it, and, for hints, what led there.
    let (host, where_) = match &via {
        None => (op.host.to_string(), service(op.host)),
        Some(v) => {
            let at = format!("{}, {}", v.to, v.sent.said(&service(&v.from)));
            (at.clone(), at)
        }
    };
    let what_sends = |sent: Sent| match sent {
        Sent::Location => "upload URL",
        _ => "redirect URL",
    };
    let registry_fault = |reason: String| Error::Registry {
        action: op.action.doing(),
        reference: op.at.to_string(),
        reason,
    };
    match f {
        Failure::UnknownHost(name) => done(Error::Unreachable {
            host: match &via {
                None => name,
                Some(v) => format!("{name}, {}", v.sent.said(&service(&v.from))),
            },
            problem: "the name does not resolve (DNS: no such host)".into(),
            hint: match (&via, op.action) {
                (Some(v), _) => format!(
                    "{} sends clients to this address (a storage or CDN URL in its configuration); check that configuration",
                    v.from
                ),
                (None, Action::Token) => format!(
                    "{where_} is what the registry's challenge names; check the registry's configuration"
                ),
                (None, _) => format!("check {}", op.hosts_from),
            },
        }),
        Failure::NotTls => done(Error::Unreachable {
            host,
            problem: "it answered the TLS handshake in plain HTTP".into(),
            hint: match &via {
                None => format!(
                    "if {where_} serves plain HTTP, list it in MULTIARCH_INSECURE_REGISTRIES (host:port)"
                ),
                Some(v) => format!(
                    "{} sends clients to HTTPS there, but that server speaks plain HTTP; the registry's {} is misconfigured",
                    v.from,
                    what_sends(v.sent)
                ),
            },
        }),
        Failure::Untrusted(detail) => done(Error::UntrustedCertificate {
            registry: match &via {
                None => host,
                Some(v) => format!("{} ({})", v.to, v.sent.said(&service(&v.from))),
            },
            detail,
        }),
        Failure::BadUrl(problem) => match &via {
            None => done(Error::Unreachable {
                host,
                problem,
                hint: "check the host and port (host:port, port 1 to 65535)".into(),
            }),
            Some(v) => done(registry_fault(format!(
                "a {} to {where_} that cannot be requested ({problem})",
                match v.sent {
                    Sent::Location => "upload Location",
                    _ => "redirect",
                }
            ))),
        },
        Failure::PlainHttp { host, sent, by } => done(registry_fault(format!(
            "{} plain HTTP at {host}, which is not listed in MULTIARCH_INSECURE_REGISTRIES; nothing was sent there",
            match sent {
                Sent::Location => format!("{by}'s upload Location points to"),
                _ => format!("{by} redirected to"),
            }
        ))),
        Failure::BadRedirect { by, location } => done(registry_fault(format!(
            "a redirect from {by} to an unusable location \"{}\"",
            clean(&location)
        ))),
        Failure::TooManyRedirects { from, hops, last } => done(registry_fault(format!(
            "{hops} redirects in a row from {from}, the last to {last} (at most {MAX_REDIRECTS} are followed): a redirect loop in the registry or a proxy in front of it"
        ))),
        // A token is a few KiB: more is the token service's fault, not content of ours.
        Failure::TooLarge(bound) if op.action == Action::Token => done(registry_fault(format!(
            "{where_} answered with more than {bound} bytes, far more than any token"
        ))),
        Failure::TooLarge(bound) => done(Error::InvalidManifest {
            reference: op.at.to_string(),
            what: op.action.object(),
            reason: format!("{where_} sent more than the {bound} bytes accepted"),
        }),
        Failure::OversizedHead => done(registry_fault(format!(
            "{where_} answered with response headers over {} KiB or more than {} of them, which no registry sends",
            MAX_HEAD_BYTES / 1024,
            MAX_HEADERS
        ))),
        Failure::Transient(reason) => Failed::Transient(Error::Transient {
            action: op.action.doing(),
            reference: op.at.to_string(),
            reason: format!("{reason} at {where_}"),
            gave_up: GaveUp::Not,
        }),
    }
}

#[cfg(test)]
mod tests;
