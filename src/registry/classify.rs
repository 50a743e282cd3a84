//! Registry answers and transport failures → `Error`, by HTTP status, registry error *code*
//! (`MANIFEST_UNKNOWN`, `DENIED`, `TOOMANYREQUESTS`, `TAG_INVALID`) and the transport's verdict,
//! never by message text. Pure: no I/O.
//!
//! Four classes: permanent misconfiguration (a host that does not exist, TLS answered in plain
//! HTTP or the reverse, an untrusted certificate, an unusable URL) ends the run at once with
//! exit 2 and a hint; a registry's own broken redirect (an unusable `Location`, a redirect loop,
//! a downgrade to plain HTTP) ends it at once with exit 1, since neither settings nor a retry fix
//! it; refusals (401/403) exit 5; 408/429/5xx, refused or reset connections and timeouts are
//! transient: retried, then exit 75. A failure after a redirect names the host that failed and
//! the one that redirected there.

use serde::Deserialize;

use super::retry::Attempt;
use super::transport::{Failure, Reply, MAX_REDIRECTS};
use crate::error::Error;
use crate::model::bounded;

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
            Action::FetchBlob => "fetching blob",
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
pub(crate) fn reply(reply: &Reply, op: &Op, credential: Option<&str>) -> Error {
    let codes = codes(&reply.body);
    let status = reply.status;
    let mut reason = format!("HTTP {status}");
    for (code, message) in &codes {
        reason.push_str(&format!(", {}: {}", clean(code), clean(message)));
    }
    if codes
        .iter()
        .any(|(c, _)| c == "DIGEST_INVALID" || c == "SIZE_INVALID")
    {
        return Error::InvalidManifest {
            reference: op.at.to_string(),
            what: op.action.object(),
            reason: format!("the registry found it corrupt ({reason})"),
        };
    }
    if codes.iter().any(|(c, _)| c == "TAG_INVALID") && op.action == Action::PushManifest {
        return Error::TagImmutable {
            reference: op.at.to_string(),
            reason,
        };
    }
    match status.as_u16() {
        401 | 403 => Error::AccessDenied {
            action: op.action.doing(),
            push: op.action.pushes(),
            reference: op.at.to_string(),
            registry: op.registry.to_string(),
            credential: credential.unwrap_or("anonymous").to_string(),
            reason,
        },
        s if is_transient(status) && s != 0 => Error::Transient {
            action: op.action.doing(),
            reference: op.at.to_string(),
            reason: format!("{reason} from {}", op.host),
        },
        // Go's HTTP server answers plain HTTP sent to its TLS port with a bare 400.
        400 if reply.plain && codes.is_empty() => Error::Unreachable {
            host: op.host.to_string(),
            problem: "it answered plain HTTP with 400 Bad Request, as TLS servers do".into(),
            hint: format!(
                "if {} serves HTTPS, remove it from MULTIARCH_INSECURE_REGISTRIES",
                op.host
            ),
        },
        _ => Error::Registry {
            action: op.action.doing(),
            reference: op.at.to_string(),
            reason,
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

/// A request that got no answer: final (misconfiguration, size, a registry's broken redirect)
/// or worth another try. After a redirect, the host that failed is named with the one that sent
/// the request there.
pub(crate) fn failure<T>(f: Failure, op: &Op) -> Attempt<T> {
    let done = |e| Attempt::Done(Err(e));
    let (f, via) = match f {
        Failure::Redirected { via, failure } => (*failure, Some(via)),
        f => (f, None),
    };
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
            let at = format!("{}, where {} redirected", v.to, service(&v.from));
            (at.clone(), at)
        }
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
                Some(v) => format!("{name}, where {} redirected", service(&v.from)),
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
                (None, _) => {
                    "check the registry host in MULTIARCH_IMAGE (--image), the source template or the spec".into()
                }
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
                    "{} redirects to HTTPS there, but that server speaks plain HTTP; the registry's redirect URL is misconfigured",
                    v.from
                ),
            },
        }),
        Failure::Untrusted(detail) => done(Error::UntrustedCertificate {
            registry: match &via {
                None => host,
                Some(v) => format!("{} (where {} redirected)", v.to, service(&v.from)),
            },
            detail,
        }),
        Failure::BadUrl(problem) => match &via {
            None => done(Error::Unreachable {
                host,
                problem,
                hint: "check the host and port (host:port, port 1 to 65535)".into(),
            }),
            Some(_) => done(registry_fault(format!(
                "a redirect to {where_} that cannot be requested ({problem})"
            ))),
        },
        Failure::InsecureRedirect(to) => done(registry_fault(format!(
            "it redirected to plain HTTP at {to}, which is not listed in MULTIARCH_INSECURE_REGISTRIES"
        ))),
        Failure::BadRedirect { by, location } => done(registry_fault(format!(
            "a redirect from {by} to an unusable location \"{}\"",
            clean(&location)
        ))),
        Failure::TooManyRedirects { from, hops, last } => done(registry_fault(format!(
            "{hops} redirects in a row from {from}, the last to {last} (at most {MAX_REDIRECTS} are followed): a redirect loop in the registry or a proxy in front of it"
        ))),
        // Redirects are unwrapped above; a nested one cannot be built.
        Failure::Redirected { failure, .. } => self::failure(*failure, op),
        Failure::TooLarge(bound) => done(Error::InvalidManifest {
            reference: op.at.to_string(),
            what: op.action.object(),
            reason: format!("{where_} sent more than the {bound} bytes accepted"),
        }),
        Failure::Transient(reason) => Attempt::Retry {
            error: Error::Transient {
                action: op.action.doing(),
                reference: op.at.to_string(),
                reason: format!("{reason} at {where_}"),
            },
            after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use reqwest::StatusCode;

    fn reply_of(status: u16, body: &str, plain: bool) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            plain,
        }
    }

    fn op(action: Action) -> Op<'static> {
        Op {
            action,
            at: "r.example/app:1",
            host: "r.example",
            registry: "r.example",
            scope: "repository:app:pull".into(),
        }
    }

    #[test]
    fn statuses_and_codes_pick_the_exit_code() {
        let denied = r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
        for (status, body, action, plain, code) in [
            (401, "", Action::Fetch, false, 5),
            (403, denied, Action::PushManifest, false, 5),
            (503, "", Action::Fetch, false, 75),
            (429, "", Action::Fetch, false, 75),
            (
                400,
                r#"{"errors":[{"code":"TAG_INVALID","message":"tag invalid"}]}"#,
                Action::PushManifest,
                false,
                4,
            ),
            (
                400,
                "Client sent an HTTP request to an HTTPS server.",
                Action::Fetch,
                true,
                2,
            ),
            (400, "", Action::Fetch, false, 1),
            (418, "", Action::Fetch, false, 1),
        ] {
            let e = reply(&reply_of(status, body, plain), &op(action), None);
            assert_eq!(e.exit_code(), code, "{status} {action:?}: {e}");
        }
        let e = reply(
            &reply_of(403, denied, false),
            &op(Action::PushManifest),
            Some("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
        );
        assert!(e.to_string().contains("DENIED: requested access"), "{e}");
        assert!(
            e.to_string()
                .contains("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
            "{e}"
        );
    }

    #[test]
    fn misconfiguration_is_final_and_outages_are_retried() {
        for (f, code) in [
            (Failure::UnknownHost("typo.example".into()), 2),
            (Failure::NotTls, 2),
            (Failure::Untrusted("UnknownIssuer".into()), 2),
            (Failure::BadUrl("bad port".into()), 2),
            (Failure::TooLarge(10), 4),
            (Failure::InsecureRedirect("s3.example".into()), 1),
        ] {
            match failure::<()>(f, &op(Action::Fetch)) {
                Attempt::Done(Err(e)) => assert_eq!(e.exit_code(), code, "{e}"),
                _ => panic!("final"),
            }
        }
        match failure::<()>(
            Failure::Transient("connection refused".into()),
            &op(Action::Token),
        ) {
            Attempt::Retry { error, .. } => {
                assert_eq!(error.exit_code(), 75);
                assert!(
                    error
                        .to_string()
                        .contains("the token service r.example of r.example"),
                    "{error}"
                );
            }
            _ => panic!("transient"),
        }
    }

    fn redirected(to: &str, failure: Failure) -> Failure {
        Failure::Redirected {
            via: super::super::redirect::Redirect {
                from: "r.example".into(),
                to: to.into(),
            },
            failure: Box::new(failure),
        }
    }

    #[test]
    fn failures_after_a_redirect_name_the_host_that_failed_and_who_sent_us_there() {
        let at = "s3.example:443, where r.example redirected";
        for (f, code, what, not) in [
            (
                redirected("s3.example:443", Failure::Untrusted("UnknownIssuer".into())),
                2,
                "TLS connection to s3.example:443 (where r.example redirected) refused".into(),
                "",
            ),
            (
                redirected("https://r.example", Failure::NotTls),
                2,
                "cannot reach https://r.example, where r.example redirected: it answered the TLS handshake in plain HTTP".into(),
                "list it in MULTIARCH_INSECURE_REGISTRIES",
            ),
            (
                redirected("s3.example:443", Failure::UnknownHost("s3.example".into())),
                2,
                "cannot reach s3.example, where r.example redirected: the name does not resolve".into(),
                "MULTIARCH_IMAGE",
            ),
            (
                redirected("s3.example:443", Failure::BadUrl("bad".into())),
                1,
                format!("a redirect to {at} that cannot be requested"),
                "host:port",
            ),
            (
                redirected("s3.example:443", Failure::TooLarge(10)),
                4,
                format!("{at} sent more than the 10 bytes"),
                "",
            ),
        ] {
            match failure::<()>(f, &op(Action::FetchConfig)) {
                Attempt::Done(Err(e)) => {
                    assert_eq!(e.exit_code(), code, "{e}");
                    assert!(e.to_string().contains(&what), "{e}");
                    assert!(not.is_empty() || !e.to_string().contains(not), "{e}");
                }
                _ => panic!("final"),
            }
        }
        match failure::<()>(
            redirected(
                "127.0.0.1:1",
                Failure::Transient("connection refused".into()),
            ),
            &op(Action::FetchBlob),
        ) {
            Attempt::Retry { error, .. } => {
                assert_eq!(error.exit_code(), 75);
                assert!(
                    error
                        .to_string()
                        .contains("connection refused at 127.0.0.1:1, where r.example redirected"),
                    "{error}"
                );
            }
            _ => panic!("transient"),
        }
        match failure::<()>(
            redirected("127.0.0.1:1", Failure::Transient("timed out".into())),
            &op(Action::Token),
        ) {
            Attempt::Retry { error, .. } => assert!(
                error.to_string().contains(
                    "timed out at 127.0.0.1:1, where the token service r.example of r.example redirected"
                ),
                "{error}"
            ),
            _ => panic!("transient"),
        }
    }

    #[test]
    fn a_broken_redirect_is_the_registrys_fault_shown_cleaned_and_bounded() {
        let location = format!("http://[::1:bad\t\u{7f}{}", "x".repeat(500));
        let cases = [
            (
                Failure::BadRedirect {
                    by: "r.example".into(),
                    location,
                },
                "a redirect from r.example to an unusable location \"http://[::1:bad",
            ),
            (
                Failure::TooManyRedirects {
                    from: "r.example".into(),
                    hops: 6,
                    last: "r.example".into(),
                },
                "6 redirects in a row from r.example, the last to r.example (at most 5 are followed)",
            ),
        ];
        for (f, what) in cases {
            match failure::<()>(f, &op(Action::Fetch)) {
                Attempt::Done(Err(e)) => {
                    assert_eq!(e.exit_code(), 1, "{e}");
                    let text = e.to_string();
                    assert!(text.contains(what), "{text}");
                    assert!(!text.contains('\t') && !text.contains('\u{7f}'), "{text}");
                    assert!(text.len() < 500, "{text}");
                }
                _ => panic!("final"),
            }
        }
    }

    #[test]
    fn server_text_is_cleaned_and_bounded() {
        assert_eq!(
            clean("a\nMULTIARCH_REF=evil\x1b[31m"),
            "a MULTIARCH_REF=evil [31m"
        );
        assert_eq!(clean(&"x".repeat(500)).chars().count(), 201);
        let r = reply_of(401, r#"{"details":"bad\ncredentials"}"#, false);
        assert_eq!(service_reason(&r), "HTTP 401 Unauthorized: bad credentials");
    }
}
