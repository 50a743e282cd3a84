//! The one retry site for registry requests: bounded attempts with exponential backoff and jitter
//! (backon), `Retry-After` honoured (seconds or HTTP date, capped), a per-request time limit, one
//! re-authentication after a 401 (an expired token), and bounded body reads.
//!
//! Only 429, 408, 500, 502, 503, 504, connection errors, timeouts and cut-off bodies are retried;
//! never 401/403/404. Waiting for a source that does not exist yet is `wait`'s loop, not this one.

use std::future::Future;
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use tracing::{debug, warn};

use super::classify::{self, Action};
use super::OciRegistry;
use crate::error::Error;
use crate::reference::Reference;

/// Longest `Retry-After` we honour; a registry asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Error bodies (envelopes) are read up to this size, whatever the success limit.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A registry's answer: status, headers and the (bounded) body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn digest_header(&self) -> Option<String> {
        self.headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
    }
}

/// What one attempt came to.
pub enum Attempt<T> {
    Done(Result<T, Error>),
    /// Worth another try: why, and how long the registry asked us to wait.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

/// Delays between attempts: 250 ms doubling to 8 s, each with up to +100 % jitter.
fn backoff(retries: u32) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(8))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(retries as usize)
        .build()
}

/// Runs `attempt` until it is done or the retries are spent (then `Error::Transient`, exit 75).
pub async fn retry<T, F, Fut>(
    retries: u32,
    at: &Reference,
    action: Action,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut delays = backoff(retries);
    let mut tries = 0u32;
    loop {
        tries += 1;
        let (reason, after) = match attempt().await {
            Attempt::Done(result) => return result,
            Attempt::Retry { reason, after } => (reason, after),
        };
        let Some(delay) = delays.next() else {
            return Err(classify::transient(
                action,
                at,
                format!("{reason}, after {tries} attempts"),
            ));
        };
        let delay = after.map(|a| a.min(MAX_RETRY_AFTER)).unwrap_or(delay);
        warn!(reference = %at, attempt = tries, delay_ms = delay.as_millis() as u64, reason = %reason, "retrying");
        tokio::time::sleep(delay).await;
    }
}

/// The oci-client authentication handshake, through the same retry site.
pub async fn with_retries<T, Fut>(
    retries: u32,
    at: &Reference,
    action: Action,
    op: impl Fn() -> Fut,
) -> Result<T, Error>
where
    Fut: Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
{
    retry(retries, at, action, || async {
        match op().await {
            Ok(v) => Attempt::Done(Ok(v)),
            Err(e) => classify::auth_error(e, action, at),
        }
    })
    .await
}

/// One registry request with retries; `build` makes the request given the current auth header.
/// A 401 gets one authentication and one more try: the registry's challenge for an anonymous
/// request, a fresh token for an expired one (tokens expire during long waits). A second 401 is
/// the answer.
pub async fn request(
    registry: &OciRegistry,
    at: &Reference,
    action: Action,
    limit: usize,
    build: impl Fn(Option<&HeaderValue>) -> reqwest::RequestBuilder,
) -> Result<Reply, Error> {
    let push = matches!(action, Action::Push);
    retry(registry.retries, at, action, || async {
        let mut refresh = false;
        loop {
            let auth = match registry.auth_header(at, push, refresh).await {
                Ok(a) => a,
                Err(e) => return Attempt::Done(Err(e)),
            };
            match once(build(auth.as_ref()), limit, at, action).await {
                Attempt::Done(Ok(reply))
                    if reply.status == StatusCode::UNAUTHORIZED && !refresh =>
                {
                    debug!(reference = %at, anonymous = auth.is_none(), "401: authenticating (again)");
                    refresh = true;
                }
                other => return other,
            }
        }
    })
    .await
}

/// Sends once and reads the body within `limit`.
async fn once(
    req: reqwest::RequestBuilder,
    limit: usize,
    at: &Reference,
    action: Action,
) -> Attempt<Reply> {
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return classify::transport(&e, action, at),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let limit = if status.is_success() {
        limit
    } else {
        ERROR_BODY_LIMIT
    };
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    if !status.is_success() {
                        break; // an oversized error page: the status says enough
                    }
                    return Attempt::Done(Err(Error::InvalidManifest {
                        reference: at.to_string(),
                        what: action.object(),
                        reason: format!("the registry sent more than the {limit} bytes accepted"),
                    }));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return classify::transport(&e, action, at),
        }
    }
    debug!(reference = %at, status = status.as_u16(), bytes = body.len(), "reply");
    if is_transient(status) {
        let after = retry_after(&headers, SystemTime::now());
        return Attempt::Retry {
            reason: format!("HTTP {status}"),
            after,
        };
    }
    Attempt::Done(Ok(Reply {
        status,
        headers,
        body,
    }))
}

fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3), relative to `now`.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, value.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Fri, 27 Nov 2026 04:00:00 GMT").unwrap();
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("Fri, 27 Nov 2026 04:00:12 GMT"), now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            retry_after(&headers("Fri, 27 Nov 2026 03:59:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_is_bounded_in_count_and_size() {
        let delays: Vec<Duration> = backoff(5).collect();
        assert_eq!(delays.len(), 5);
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(16)));
        assert!(delays[0] >= Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_with_exit_75_after_the_retries() {
        let at: Reference = "r.example/app:1".parse().unwrap();
        let mut calls = 0;
        let result: Result<(), Error> = retry(3, &at, Action::Fetch, || {
            calls += 1;
            async {
                Attempt::Retry {
                    reason: "HTTP 503 Service Unavailable".into(),
                    after: None,
                }
            }
        })
        .await;
        assert_eq!(calls, 4);
        let e = result.unwrap_err();
        assert_eq!(e.exit_code(), 75);
        assert!(e.to_string().contains("after 4 attempts"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_capped() {
        let at: Reference = "r.example/app:1".parse().unwrap();
        let start = tokio::time::Instant::now();
        let mut calls = 0;
        let result = retry(2, &at, Action::Fetch, || {
            calls += 1;
            let n = calls;
            async move {
                if n == 1 {
                    Attempt::Retry {
                        reason: "HTTP 429".into(),
                        after: Some(Duration::from_secs(3600)),
                    }
                } else {
                    Attempt::Done(Ok(n))
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(start.elapsed(), MAX_RETRY_AFTER);
    }
}
