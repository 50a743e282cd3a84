//! Following redirects by hand, and naming who failed when a request left the host first asked:
//! which statuses redirect, and, for a request that failed (or was refused) at a host a redirect
//! or an upload `Location` led to, which host that was and who sent it there, so messages never
//! blame the registry for its storage (ECR redirects blob GETs to S3). Whether a hop may be sent
//! and with what is `origin`'s rule. Pure.

use reqwest::{StatusCode, Url};

use super::origin::{authority, same_origin, Sent};
pub(crate) use super::request::Via;
use super::request::{Failure, Unanswered};

/// The statuses that redirect (RFC 9110 §15.4); 300, 304 and 305 carry no address to follow.
pub(super) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Where the request first sent to `origin` ended up, at `url`, if elsewhere; `sent` is what
/// took it away.
pub(crate) fn via(origin: &Url, url: &Url, sent: Sent) -> Option<Via> {
    if same_origin(origin, url) {
        return None;
    }
    let to = if url.scheme() == origin.scheme() {
        authority(url)
    } else {
        format!("{}://{}", url.scheme(), authority(url))
    };
    Some(Via {
        from: authority(origin),
        to,
        sent,
    })
}

/// `failure` at `url`, as seen from the request first sent to `origin`: with where it happened
/// when that was elsewhere.
pub(super) fn within(failure: Failure, origin: &Url, url: &Url, sent: Sent) -> Unanswered {
    Unanswered {
        failure,
        via: via(origin, url, sent),
    }
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
    fn a_failure_elsewhere_than_asked_is_wrapped_with_who_sent_us_there() {
        let origin = Url::parse("http://r.example:5000/v2/").unwrap();
        let same = Url::parse("http://r.example:5000/other").unwrap();
        assert!(matches!(
            within(Failure::NotTls, &origin, &same, Sent::Redirect),
            Unanswered {
                failure: Failure::NotTls,
                via: None
            }
        ));
        for (to, sent, shown) in [
            (
                "http://s3.example/b",
                Sent::Redirect,
                "s3.example, where r.example:5000 redirected",
            ),
            (
                "https://r.example:5000/b",
                Sent::Redirect,
                "https://r.example:5000, where r.example:5000 redirected",
            ),
            (
                "http://up.example/u",
                Sent::Location,
                "up.example, where r.example:5000's upload Location points",
            ),
        ] {
            match within(Failure::NotTls, &origin, &Url::parse(to).unwrap(), sent) {
                Unanswered {
                    via: Some(via),
                    failure,
                } => {
                    assert_eq!(via.said(), shown);
                    assert!(matches!(failure, Failure::NotTls));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
