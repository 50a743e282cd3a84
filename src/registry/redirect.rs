//! Following redirects by hand (the transport sends `Authorization` to the registry only): which
//! statuses redirect, where a `Location` leads (or why it cannot be followed, the server's fault),
//! and, for a request that failed after a redirect, which host failed and who sent it there, so
//! messages never blame the registry for its storage (ECR redirects blob GETs to S3). Pure.

use reqwest::header::HeaderValue;
use reqwest::{StatusCode, Url};

use super::transport::{authority, Failure};

/// Where a redirected request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// The host first asked (`host[:port]`).
    pub(crate) from: String,
    /// The host that failed (`host[:port]`, prefixed with its scheme when the redirect changed
    /// the scheme).
    pub(crate) to: String,
}

/// The statuses that redirect (RFC 9110 §15.4); 300, 304 and 305 carry no address to follow.
pub(super) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `failure` at `url`, as seen from the request first sent to `origin`: wrapped with the
/// redirect when a redirect had taken the request elsewhere.
pub(super) fn within(failure: Failure, origin: &Url, url: &Url) -> Failure {
    if authority(url) == authority(origin) && url.scheme() == origin.scheme() {
        return failure;
    }
    let to = if url.scheme() == origin.scheme() {
        authority(url)
    } else {
        format!("{}://{}", url.scheme(), authority(url))
    };
    Failure::Redirected {
        via: Redirect {
            from: authority(origin),
            to,
        },
        failure: Box::new(failure),
    }
}

/// Where a redirect answered by `url` leads: the `Location` joined to `url`, if it is an HTTP(S)
/// URL with a host; else the Location as sent (lossy), for the message.
pub(super) fn next_hop(url: &Url, location: &HeaderValue) -> Result<Url, Failure> {
    location
        .to_str()
        .ok()
        .and_then(|l| url.join(l).ok())
        .filter(|next| matches!(next.scheme(), "http" | "https") && next.host_str().is_some())
        .ok_or_else(|| Failure::BadRedirect {
            by: authority(url),
            location: String::from_utf8_lossy(location.as_bytes()).into_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_redirect_statuses_are_followed() {
        for code in [301, 302, 303, 307, 308] {
            assert!(is_redirect(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 300, 304, 305, 306, 400] {
            assert!(!is_redirect(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn a_location_must_be_an_http_url_with_a_host() {
        let url = Url::parse("http://r.example:5000/v2/app/blobs/x").unwrap();
        let hop = |l: &str| next_hop(&url, &HeaderValue::from_str(l).unwrap());
        assert_eq!(
            hop("/other").unwrap().as_str(),
            "http://r.example:5000/other"
        );
        assert_eq!(
            hop("https://[::1]:9/b").unwrap().as_str(),
            "https://[::1]:9/b"
        );
        for bad in [
            "http://[::1:bad",
            "http://h:99999/",
            "ftp://h/x",
            "file:///etc/passwd",
        ] {
            match hop(bad) {
                Err(Failure::BadRedirect { by, location }) => {
                    assert_eq!(by, "r.example:5000");
                    assert_eq!(location, bad);
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_failure_elsewhere_than_asked_is_wrapped_with_the_redirect() {
        let origin = Url::parse("http://r.example:5000/v2/").unwrap();
        let same = Url::parse("http://r.example:5000/other").unwrap();
        assert!(matches!(
            within(Failure::NotTls, &origin, &same),
            Failure::NotTls
        ));
        for (to, shown) in [
            ("http://s3.example/b", "s3.example"),
            ("https://r.example:5000/b", "https://r.example:5000"),
        ] {
            match within(Failure::NotTls, &origin, &Url::parse(to).unwrap()) {
                Failure::Redirected { via, failure } => {
                    assert_eq!(via.from, "r.example:5000");
                    assert_eq!(via.to, shown);
                    assert!(matches!(*failure, Failure::NotTls));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
