//! Blobs between repositories and registries, for children that live elsewhere than a
//! destination (upload sessions themselves are `upload`'s). On one registry a blob is mounted first (`POST …/blobs/uploads/?mount=&from=`): one request, no
//! bytes, and a blob the destination already has is simply mounted again. Only where the registry
//! declines (202: an upload session instead; 401/403/404 when it will not let us read the source)
//! or across registries is the destination asked whether it has the blob (HEAD), and if not the
//! blob is streamed from the source straight into a monolithic upload (`PUT <session>?digest=`
//! with the whole body, the method Amazon ECR, distribution, GitLab and Docker Hub all take),
//! never held in memory, verified on the way (`blob_stream`). At most `client::STREAMS_AT_ONCE`
//! blobs stream at a time per run.
//!
//! The upload goes where the session's `Location` says, judged by `origin`'s rule like a redirect
//! — credentials only if it stays on the registry's origin, plain HTTP only to a listed host.
//!
//! Time: an attempt ends within the request limit plus one second per MiB (and by the copy
//! phase's deadline); a source that stalls or drips is cut off within the request limit and named
//! as the source. A failed copy is retried as a whole, from a fresh upload session (a stream
//! cannot be replayed) — but not one that ran out of time: it would run out again.
//! Spec: <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs>.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::header::{ACCEPT, CONTENT_LENGTH};
use reqwest::{Method, StatusCode, Url};
use tokio::time::Instant;
use tracing::debug;

use super::blob_stream::{checked, verified, Shared, Verdict, STALL_BLOCK};
use super::classify::{self, Action, Op};
use super::client::Client;
use super::origin::Sent;
use super::redirect::via;
use super::retry::{retry, Attempt, Deadline};
use super::transport::{Limit, Opened, Request, Within};
use super::upload::session_of;
use super::{Blob, Copied};
use crate::digest::Digest;
use crate::error::{Error, GaveUp};
use crate::manifest::Descriptor;
use crate::reference::Repository;

/// The slowest average a blob copy attempt may have: the request limit plus one second per MiB.
const BYTES_PER_SECOND: u64 = 1024 * 1024;

/// What a mount request came to.
enum Mount {
    Done,
    /// The registry opened an upload session instead (the source blob is not there for us).
    Session(Url),
    /// The registry will not mount for us (no read access to the source): upload instead.
    Declined,
}

impl Client {
    /// Whether `repo` has the blob (asked with push credentials: `repo` is a destination).
    async fn has_blob(&self, repo: &Repository, digest: &Digest) -> Result<bool, Error> {
        let shown = format!("{repo}@{digest}");
        let op = self.op(Action::UploadBlob, &shown, repo, true);
        let url = self.url(repo, "blobs", &digest.to_string());
        let reply = self
            .call(&op, Limit::NONE, || Request::new(Method::HEAD, url.clone()))
            .await?;
        match reply.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.refusal(&reply, &op).await),
        }
    }

    /// Puts `blob` of `from` into `to`: mounted on the same registry, else (unless `to` has it)
    /// streamed.
    pub(super) async fn put_blob(
        &self,
        from: &Repository,
        to: &Repository,
        blob: &Descriptor,
    ) -> Result<Copied, Error> {
        let same_registry = from.api_host() == to.api_host();
        let once = self.once();
        let shown = format!("{to}@{}", blob.digest);
        let op = self.op(Action::UploadBlob, &shown, to, true);
        // The streamed upload is sent outside the request loop: bounded here, as a whole.
        let copy = retry(self.budget(), || async {
            let session = if same_registry {
                match once.mount(from, to, blob).await {
                    Ok(Mount::Done) => return Attempt::Done(Ok(Copied::Mounted)),
                    Ok(Mount::Session(url)) => Some(url),
                    Ok(Mount::Declined) => None,
                    Err(e) => return retry_if_transient(e),
                }
            } else {
                None
            };
            match once.has_blob(to, &blob.digest).await {
                Ok(true) => {
                    if let Some(url) = session {
                        once.cancel(to, url).await;
                    }
                    return Attempt::Done(Ok(Copied::Present));
                }
                Ok(false) => {}
                Err(e) => return retry_if_transient(e),
            }
            let _turn = once.stream_turn().await;
            match once.stream(from, to, blob, session).await {
                Attempt::Done(r) => Attempt::Done(r.map(|()| Copied::Streamed)),
                Attempt::Retry { error, after } => Attempt::Retry { error, after },
            }
        });
        self.bounded(&op, &Cell::new(false), copy).await
    }

    async fn mount(
        &self,
        from: &Repository,
        to: &Repository,
        blob: &Descriptor,
    ) -> Result<Mount, Error> {
        let shown = format!("{to}@{}", blob.digest);
        let mut op = self.op(Action::MountBlob, &shown, to, true);
        // One token for both: push on the destination, pull on the source.
        op.scope = format!("{} repository:{}:pull", op.scope, from.path());
        let mut url = self.url(to, "blobs", "uploads/");
        url.query_pairs_mut()
            .append_pair("mount", &blob.digest.to_string())
            .append_pair("from", from.path());
        let reply = self
            .call(&op, Limit::ANSWER, || {
                Request::new(Method::POST, url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        match reply.status {
            StatusCode::CREATED => {
                debug!(blob = %blob.digest, from = %from, to = %to, "mounted");
                Ok(Mount::Done)
            }
            StatusCode::ACCEPTED => session_of(&reply, &url, &shown).map(Mount::Session),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                debug!(blob = %blob.digest, status = reply.status.as_u16(), "mount declined; uploading");
                Ok(Mount::Declined)
            }
            _ => Err(self.refusal(&reply, &op).await),
        }
    }

    /// One attempt to stream `blob` from `from` into an upload session of `to` (opened here
    /// unless given), within its time limit.
    async fn stream(
        &self,
        from: &Repository,
        to: &Repository,
        blob: &Descriptor,
        session: Option<Url>,
    ) -> Attempt<()> {
        let budget = self.budget();
        let (limit, said) = attempt_limit(
            budget.request_timeout,
            blob.size,
            budget.deadline,
            Instant::now(),
        );
        let watch: Shared = Arc::default();
        let upload_host = RefCell::new(None);
        let copy = self.stream_within(from, to, blob, session, &watch, &upload_host);
        match tokio::time::timeout(limit, copy).await {
            Ok(Ok(())) => Attempt::Done(Ok(())),
            Ok(Err(e)) => retry_if_transient(e),
            // Out of time: another attempt would be as slow.
            Err(_) => {
                let passed = watch.passed.load(Ordering::Relaxed);
                let upload_host = upload_host.borrow_mut().take();
                Attempt::Done(Err(Error::Transient {
                    action: "copying blob",
                    reference: format!("{} from {from} to {to}", blob.digest),
                    reason: out_of_time(&said, passed, blob.size, upload_host),
                    gave_up: GaveUp::Not,
                }))
            }
        }
    }

    async fn stream_within(
        &self,
        from: &Repository,
        to: &Repository,
        blob: &Descriptor,
        session: Option<Url>,
        watch: &Shared,
        upload_host: &RefCell<Option<String>>,
    ) -> Result<(), Error> {
        let source_shown = format!("{} from {from}", blob.digest);
        let source_op = self.op(Action::FetchBlob, &source_shown, from, false);
        let head = Within::Head(self.budget().request_timeout);
        let (response, source_host) = self.get_blob(&source_op, from, blob, head).await?;
        let shown = format!("{to}@{}", blob.digest);
        let registry = self.url(to, "blobs", "uploads/");
        let mut location = match session {
            Some(url) => url,
            None => self.session(to, &shown).await?,
        };
        location
            .query_pairs_mut()
            .append_pair("digest", &blob.digest.to_string());
        let op = self.op(Action::UploadBlob, &shown, to, true);
        *upload_host.borrow_mut() = Some(super::origin::authority(&location));
        let stall = self.budget().request_timeout;
        let body = verified(
            response,
            blob.digest.clone(),
            blob.size,
            stall,
            Arc::clone(watch),
        );
        debug!(blob = %blob.digest, size = blob.size, from = %from, to = %to, "streaming");
        let upload = Request::new(Method::PUT, location)
            .located(&registry)
            .stream(body, blob.size);
        let sent = self
            .send_once(&op, upload, Within::Caller, Limit::ANSWER)
            .await;
        let stopped = watch.verdict.lock().expect("verdict").take();
        if let Some(verdict) = stopped {
            return Err(source_failed(
                verdict,
                blob,
                &source_shown,
                &source_host,
                stall,
            ));
        }
        let reply = sent?;
        match reply.status {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            s if classify::is_transient(s) => Err(classify::reply(&reply, &op, None)),
            _ => Err(self.refusal(&reply, &op).await),
        }
    }
}

/// A source whose body stopped early, as the source's failure: content of another size or digest
/// is invalid (exit 4); a stall, a drip or a cut connection is transient (retried, then 75).
fn source_failed(
    verdict: Verdict,
    blob: &Descriptor,
    shown: &str,
    host: &str,
    stall: Duration,
) -> Error {
    let size = blob.size;
    let transient = |reason: String| Error::Transient {
        action: "reading blob",
        reference: shown.to_string(),
        reason,
        gave_up: GaveUp::Not,
    };
    let invalid = |reason: String| Error::InvalidManifest {
        reference: shown.to_string(),
        what: "blob",
        reason,
    };
    match verdict {
        Verdict::TooLong => invalid(format!(
            "{host} sent more than the {size} bytes its descriptor says"
        )),
        Verdict::TooShort { seen } => invalid(format!(
            "{host} ended it after {seen} of the {size} bytes its descriptor says"
        )),
        Verdict::Digest(actual) => Error::DigestMismatch {
            reference: shown.to_string(),
            expected: blob.digest.to_string(),
            actual: actual.to_string(),
        },
        Verdict::Stalled { seen } => transient(format!(
            "{host} sent {seen} of {size} bytes, then less than {} MiB in {} s (MULTIARCH_REQUEST_TIMEOUT): a stalled or dripping source",
            STALL_BLOCK / (1024 * 1024),
            stall.as_secs_f64()
        )),
        Verdict::Failed { seen, what } => {
            transient(format!("{what} at {host} after {seen} of {size} bytes"))
        }
    }
}

/// Why a copy attempt ran out of time (`said`: the limit it ran into): a destination that took
/// every byte and never answered is named as the one that did not answer (a source that stalls
/// is cut off sooner, and named as the source); otherwise how far the bytes got, and where to.
fn out_of_time(said: &str, passed: u64, size: u64, upload_host: Option<String>) -> String {
    match upload_host {
        Some(host) if passed == size => format!(
            "the destination {host} took all {size} bytes of the upload and did not answer {said}; it was not retried"
        ),
        Some(host) => format!(
            "the copy did not finish {said}: {passed} of {size} bytes had been sent on to {host}; it was not retried"
        ),
        None => format!("the copy did not finish {said}; it was not retried"),
    }
}

/// The time one copy attempt of `size` bytes may take from `now`: the request limit plus one
/// second per MiB begun (so never less than a stalled source takes to be found out), and no
/// later than `deadline` (the copy phase's); with what set it, for the message.
fn attempt_limit(
    request_timeout: Duration,
    size: u64,
    deadline: Option<Deadline>,
    now: Instant,
) -> (Duration, String) {
    let own = request_timeout + Duration::from_secs(size.div_ceil(BYTES_PER_SECOND));
    match deadline {
        Some(d) if d.at < now + own => (
            d.at.saturating_duration_since(now),
            format!("by {}", d.what),
        ),
        _ => (
            own,
            format!(
                "within {} s (MULTIARCH_REQUEST_TIMEOUT plus 1 s per MiB)",
                own.as_secs()
            ),
        ),
    }
}

fn retry_if_transient<T>(e: Error) -> Attempt<T> {
    match e {
        e @ Error::Transient { .. } => Attempt::Retry {
            error: e,
            after: None,
        },
        e => Attempt::Done(Err(e)),
    }
}

/// Blobs up to this size are read like a config (their body follows at once); larger ones take
/// one of the run's stream turns while open.
pub(crate) const SMALL_BLOB: u64 = 1024 * 1024;

impl Client {
    /// Opens `blob` of `repo` to read (the content check's layers), checked on the way
    /// (`blob_stream::checked`: its size, its digest, a source that stalls or drips); the whole
    /// read may take the request limit plus one second per MiB of the `up_to` bytes wanted, as
    /// a copy may. The reader drops it to stop the download.
    pub(super) async fn read_blob(
        &self,
        repo: &Repository,
        blob: &Descriptor,
        up_to: u64,
    ) -> Result<Blob<'_>, Error> {
        let turn = if blob.size > SMALL_BLOB {
            Some(self.stream_turn().await)
        } else {
            None
        };
        let shown = format!("{} from {repo}", blob.digest);
        let op = self.op(Action::FetchBlob, &shown, repo, false);
        let stall = self.budget().request_timeout;
        let whole = stall + Duration::from_secs(up_to.min(blob.size).div_ceil(BYTES_PER_SECOND));
        debug!(blob = %blob.digest, size = blob.size, from = %repo, "reading");
        let (response, host) = self.get_blob(&op, repo, blob, Within::Whole(whole)).await?;
        let described = blob.clone();
        let stream = checked(response, blob.digest.clone(), blob.size, stall).map(move |piece| {
            let _turn = &turn;
            piece.map_err(|why| source_failed(why, &described, &shown, &host, stall))
        });
        Ok(Blob::new(stream))
    }

    /// GETs `blob` of `repo` for `op`, its body left unread to stream, with the host it comes
    /// from (ECR: S3, where the registry redirected), which a source that fails is named by.
    async fn get_blob(
        &self,
        op: &Op<'_>,
        repo: &Repository,
        blob: &Descriptor,
        bound: Within,
    ) -> Result<(reqwest::Response, String), Error> {
        let url = self.url(repo, "blobs", &blob.digest.to_string());
        let response = match self
            .open(op, bound, || {
                Request::new(Method::GET, url.clone()).header(ACCEPT, "*/*")
            })
            .await?
        {
            Opened::Stream(r) => r,
            Opened::Refused(reply) => return Err(self.refusal(&reply, op).await),
        };
        let host = match via(&url, response.url(), Sent::Redirect) {
            None => repo.api_host().to_string(),
            Some(v) => v.said(),
        };
        Ok((response, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_that_fails_is_named_as_the_source() {
        let blob = Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            digest: Digest::of(b"layer"),
            size: 2_000_000,
            platform: None,
            artifact_type: None,
            annotations: None,
        };
        let shown = format!("{} from src.example/app", blob.digest);
        let said =
            |v| source_failed(v, &blob, &shown, "src.example", Duration::from_secs(30)).to_string();
        assert_eq!(
            said(Verdict::Stalled { seen: 1024 }),
            format!("reading blob {shown}: src.example sent 1024 of 2000000 bytes, then less than 1 MiB in 30 s (MULTIARCH_REQUEST_TIMEOUT): a stalled or dripping source\n  hint: this is usually temporary; retry the job (exit code 75)")
        );
        assert_eq!(
            said(Verdict::Failed {
                seen: 7,
                what: "response cut off".into()
            })
            .lines()
            .next()
            .unwrap(),
            format!(
                "reading blob {shown}: response cut off at src.example after 7 of 2000000 bytes"
            )
        );
        assert_eq!(
            said(Verdict::TooLong),
            format!("{shown} is not a usable blob: src.example sent more than the 2000000 bytes its descriptor says")
        );
    }

    #[test]
    fn an_attempt_may_take_the_request_limit_plus_a_second_per_mib_until_the_copy_deadline() {
        let now = Instant::now();
        let limit = Duration::from_secs(30);
        let (took, said) = attempt_limit(limit, 1024 * 1024 * 1024, None, now);
        assert_eq!(took, Duration::from_secs(30 + 1024));
        assert_eq!(
            said,
            "within 1054 s (MULTIARCH_REQUEST_TIMEOUT plus 1 s per MiB)"
        );
        let copy = Deadline::copy(now, Duration::from_secs(60));
        let (took, said) = attempt_limit(limit, 1024 * 1024 * 1024, Some(copy), now);
        assert_eq!(took, Duration::from_secs(60 + 600));
        assert!(
            said.starts_with("by the end of the time for copying"),
            "{said}"
        );
        // A small blob far from the deadline keeps its own limit.
        assert_eq!(
            attempt_limit(limit, 10, Some(copy), now).0,
            Duration::from_secs(31)
        );
        // Past the deadline, none is left.
        let past = Deadline { at: now, ..copy };
        let later = now + Duration::from_secs(1);
        assert_eq!(
            attempt_limit(limit, 10, Some(past), later).0,
            Duration::ZERO
        );
    }
}
