//! Credentials only where the registry lives: the one rule for every request that goes where a
//! server told us to go — a redirect, an upload `Location` (the 202 of `POST …/blobs/uploads/`,
//! of a mount answered with an upload session, of the push-access check), a token realm — and
//! for the requests we address ourselves. It says whether a request may be sent at all and
//! whether the credentials go with it; the transport asks it before every hop. Pure.
//!
//! - **Plain HTTP only to listed hosts.** A URL on plain HTTP is sent only when its host is in
//!   `MULTIARCH_INSECURE_REGISTRIES`; anything else is refused before a byte leaves (a registry's
//!   redirect or Location there is the registry's fault, exit 1; a realm there is exit 5).
//! - **Credentials only to the registry's own origin.** A redirect or a Location is followed
//!   with the credentials only when it stays on the scheme, host and port the request was first
//!   sent to — the host that challenged for them. Elsewhere (ECR's S3 blob URLs, a storage or
//!   CDN host for uploads) the request goes without them, as docker and containerd send it: they
//!   too keep credentials for the hosts that challenged. An answer from elsewhere never teaches
//!   us a challenge.
//! - **A token realm gets the registry's credential.** The registry names its token service,
//!   often on another host (registry.gitlab.com sends clients to gitlab.com/jwt/auth); docker
//!   sends the registry's basic credential there, and so do we — over TLS, or plain HTTP when
//!   the realm's host is listed. A realm on unlisted plain HTTP is never followed.

use reqwest::header::HeaderValue;
use reqwest::Url;

/// How a request came to be addressed to its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// We built the URL (the registry's API, a realm already judged).
    Asked,
    /// A 3xx answer's `Location`.
    Redirect,
    /// An upload session's `Location` (a 202 of POST, of a mount).
    Location,
    /// A `WWW-Authenticate` challenge's `realm`.
    Realm,
}

impl Sent {
    /// How a message says that `from` sent us there: `where r.example redirected`.
    pub(crate) fn said(self, from: &str) -> String {
        match self {
            Sent::Asked => from.to_string(),
            Sent::Redirect => format!("where {from} redirected"),
            Sent::Location => format!("where {from}'s upload Location points"),
            Sent::Realm => format!("where {from}'s challenge points"),
        }
    }
}

/// What may go with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carry {
    Credentials,
    Nothing,
}

/// A URL on plain HTTP whose host is not listed as insecure: not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlainHttp {
    /// `host[:port]` of the URL refused.
    pub(crate) host: String,
}

/// The hosts reached over plain HTTP (`MULTIARCH_INSECURE_REGISTRIES`, `host[:port]`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Insecure(Vec<String>);

impl Insecure {
    pub(crate) fn new(hosts: Vec<String>) -> Insecure {
        Insecure(hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect())
    }

    /// True when `host` (`host[:port]`) is listed.
    pub(crate) fn lists(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.0.contains(&host)
    }
}

/// The rule. `origin` is where the credentials belong (the URL first asked: the registry, or a
/// realm for its token request); `to` is where the request would go now, and `sent` says why.
pub(crate) fn judge(
    sent: Sent,
    origin: &Url,
    to: &Url,
    insecure: &Insecure,
) -> Result<Carry, PlainHttp> {
    if to.scheme() != "https" && !insecure.lists(&authority(to)) {
        return Err(PlainHttp {
            host: authority(to),
        });
    }
    if sent == Sent::Realm || same_origin(origin, to) {
        Ok(Carry::Credentials)
    } else {
        Ok(Carry::Nothing)
    }
}

/// Same scheme, host and port (a default port and no port are the same).
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && authority(a) == authority(b)
}

/// `host[:port]` of a URL, as users name registries.
pub(crate) fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// Where a `Location` header sent by the server at `base` leads: joined onto `base` (relative,
/// absolute-path, scheme-relative `//host/path` and absolute forms; a query such as an upload's
/// `_state` kept), if it is an HTTP(S) URL with a host. Else the Location as sent (lossy), for
/// the message.
pub(crate) fn locate(base: &Url, location: &HeaderValue) -> Result<Url, String> {
    location
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .and_then(|l| base.join(l).ok())
        .filter(|next| matches!(next.scheme(), "http" | "https") && next.host_str().is_some())
        .ok_or_else(|| String::from_utf8_lossy(location.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn credentials_stay_on_the_registrys_origin_except_for_its_realm() {
        let insecure = Insecure::new(vec!["plain.example:5000".into(), "R.example:81".into()]);
        let registry = url("https://r.example/v2/app/blobs/uploads/");
        for (sent, to, carry) in [
            (
                Sent::Asked,
                "https://r.example/v2/",
                Some(Carry::Credentials),
            ),
            (
                Sent::Location,
                "https://r.example:443/v2/app/blobs/uploads/1?_state=x",
                Some(Carry::Credentials),
            ),
            (
                Sent::Location,
                "https://storage.example/upload/1",
                Some(Carry::Nothing),
            ),
            (
                Sent::Location,
                "https://r.example:8443/upload/1",
                Some(Carry::Nothing),
            ),
            (
                Sent::Redirect,
                "https://s3.example/blob?X-Amz-Signature=x",
                Some(Carry::Nothing),
            ),
            // Plain HTTP: only listed hosts, and never with the credentials of a TLS registry.
            (Sent::Location, "http://r.example/upload", None),
            (Sent::Redirect, "http://s3.example/blob", None),
            (
                Sent::Location,
                "http://plain.example:5000/upload",
                Some(Carry::Nothing),
            ),
            (
                Sent::Location,
                "http://r.example:81/upload",
                Some(Carry::Nothing),
            ),
            (
                Sent::Realm,
                "https://gitlab.example/jwt/auth",
                Some(Carry::Credentials),
            ),
            (
                Sent::Realm,
                "http://plain.example:5000/token",
                Some(Carry::Credentials),
            ),
            (Sent::Realm, "http://auth.example/token", None),
        ] {
            let got = judge(sent, &registry, &url(to), &insecure);
            match carry {
                Some(c) => assert_eq!(got, Ok(c), "{sent:?} {to}"),
                None => assert_eq!(
                    got,
                    Err(PlainHttp {
                        host: authority(&url(to))
                    }),
                    "{sent:?} {to}"
                ),
            }
        }
        // A plain-HTTP registry (listed) keeps its credentials on its own host and port.
        let plain = url("http://plain.example:5000/v2/app/blobs/uploads/");
        assert_eq!(
            judge(
                Sent::Location,
                &plain,
                &url("http://plain.example:5000/up/1"),
                &insecure
            ),
            Ok(Carry::Credentials)
        );
        assert_eq!(
            judge(
                Sent::Location,
                &plain,
                &url("https://plain.example:5000/up/1"),
                &insecure
            ),
            Ok(Carry::Nothing),
            "another scheme is another origin"
        );
    }

    #[test]
    fn locations_of_every_form_are_joined_with_their_query_kept() {
        let base = url("http://r.example:5000/v2/app/blobs/uploads/?mount=sha256:1&from=src");
        let at = |l: &str| locate(&base, &HeaderValue::from_str(l).unwrap());
        for (location, expected) in [
            (
                "/v2/app/blobs/uploads/u1?_state=ab%3D",
                "http://r.example:5000/v2/app/blobs/uploads/u1?_state=ab%3D",
            ),
            (
                "u2?_state=cd",
                "http://r.example:5000/v2/app/blobs/uploads/u2?_state=cd",
            ),
            (
                "//capture.example:81/up/u3?_state=ef",
                "http://capture.example:81/up/u3?_state=ef",
            ),
            (
                "https://capture.example/up/u4?_state=gh",
                "https://capture.example/up/u4?_state=gh",
            ),
            (
                " https://capture.example/up/u5 ",
                "https://capture.example/up/u5",
            ),
        ] {
            assert_eq!(at(location).unwrap().as_str(), expected, "{location}");
        }
        for bad in [
            "",
            "http://[::1:bad",
            "ftp://h/x",
            "file:///etc/passwd",
            "http://h:99999/",
        ] {
            assert_eq!(at(bad), Err(bad.to_string()), "{bad:?}");
        }
    }

    #[test]
    fn what_sent_us_there_is_said_once() {
        assert_eq!(
            Sent::Redirect.said("r.example"),
            "where r.example redirected"
        );
        assert_eq!(
            Sent::Location.said("r.example"),
            "where r.example's upload Location points"
        );
    }
}
