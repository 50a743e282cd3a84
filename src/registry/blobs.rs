//! Blobs between repositories and registries, for children that live elsewhere than a
//! destination. On one registry a blob is mounted first (`POST …/blobs/uploads/?mount=&from=`):
//! one request, no bytes, and a blob the destination already has is simply mounted again. Only
//! where the registry declines (202: an upload session instead; 401/403/404 when it will not let
//! us read the source) or across registries is the destination asked whether it has the blob
//! (HEAD), and if not the blob is streamed from the source straight into a monolithic upload
//! (`PUT <session>?digest=` with the whole body, the method Amazon ECR, distribution, GitLab and
//! Docker Hub all take), never held in memory, hashed on the way and cut off the moment it exceeds
//! its size or hashes wrong. At most `STREAMS_AT_ONCE` blobs stream at a time per run.
//!
//! A failed copy is retried as a whole, from a fresh upload session: a stream cannot be replayed.
//!
//! Blobs are also read (`read_blob`: the content check's layers) through the same verified
//! stream: bounded by the descriptor's size, hashed on the way, its last piece held back until
//! the digest is right; the reader drops it to stop the download. A read over `SMALL_BLOB` takes
//! a stream turn like a copy; a smaller one is over in about a round trip, like a config.
//! Spec: <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs>.

use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt as _};
use reqwest::header::{ACCEPT, CONTENT_LENGTH};
use reqwest::{Method, StatusCode, Url};
use tracing::debug;

use super::classify::{self, Action};
use super::client::Client;
use super::retry::{retry, Attempt};
use super::transport::{Limit, Opened, Overflow, Request};
use super::{Blob, Copied};
use crate::error::Error;
use crate::manifest::Descriptor;
use crate::model::Digest;
use crate::reference::Repository;

/// Upload answers say nothing we need beyond their status.
const UPLOAD_REPLY_LIMIT: Limit = Limit {
    bytes: 64 * 1024,
    overflow: Overflow::Ignore,
};

/// The slowest a streamed blob may move before its upload is given up: the request limit plus
/// one second per MiB.
const MIB_PER_SECOND: u64 = 1024 * 1024;

/// Blobs streamed at once in a run: enough to keep a link busy, few enough that each gets a fair
/// share of it and of the registry's ingest.
pub(super) const STREAMS_AT_ONCE: usize = 4;

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
                Ok(()) => Attempt::Done(Ok(Copied::Streamed)),
                Err(e) => retry_if_transient(e),
            }
        });
        self.bounded(&op, &Cell::new(false), copy).await
    }

    /// Gives back an upload session we will not use (best effort: sessions expire anyway).
    async fn cancel(&self, to: &Repository, session: Url) {
        let shown = format!("{to} (upload session)");
        let op = self.op(Action::UploadBlob, &shown, to, true);
        let sent = self
            .call(&op, UPLOAD_REPLY_LIMIT, || {
                Request::new(Method::DELETE, session.clone())
            })
            .await;
        debug!(status = ?sent.map(|r| r.status.as_u16()), "upload session given back");
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
            .call(&op, UPLOAD_REPLY_LIMIT, || {
                Request::new(Method::POST, url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        match reply.status {
            StatusCode::CREATED => {
                debug!(blob = %blob.digest, from = %from, to = %to, "mounted");
                Ok(Mount::Done)
            }
            StatusCode::ACCEPTED => match reply.header("location") {
                Some(l) => Ok(Mount::Session(
                    url.join(l).map_err(|_| bad_location(&shown))?,
                )),
                None => Err(bad_location(&shown)),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                debug!(blob = %blob.digest, status = reply.status.as_u16(), "mount declined; uploading");
                Ok(Mount::Declined)
            }
            _ => Err(self.refusal(&reply, &op).await),
        }
    }

    /// Opens an upload session in `to`.
    async fn session(&self, to: &Repository, shown: &str) -> Result<Url, Error> {
        let op = self.op(Action::UploadBlob, shown, to, true);
        let url = self.url(to, "blobs", "uploads/");
        let reply = self
            .call(&op, UPLOAD_REPLY_LIMIT, || {
                Request::new(Method::POST, url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        match (reply.status, reply.header("location")) {
            (StatusCode::ACCEPTED, Some(l)) => url.join(l).map_err(|_| bad_location(shown)),
            (StatusCode::ACCEPTED, None) => Err(bad_location(shown)),
            _ => Err(self.refusal(&reply, &op).await),
        }
    }

    /// Streams `blob` from `from` into an upload session of `to` (opened here unless given).
    async fn stream(
        &self,
        from: &Repository,
        to: &Repository,
        blob: &Descriptor,
        session: Option<Url>,
    ) -> Result<(), Error> {
        let source_shown = format!("{from}@{}", blob.digest);
        let source_op = self.op(Action::FetchBlob, &source_shown, from, false);
        let source_url = self.url(from, "blobs", &blob.digest.to_string());
        let response = match self
            .exchange(&source_op, None, || {
                Request::new(Method::GET, source_url.clone()).header(ACCEPT, "*/*")
            })
            .await?
        {
            Opened::Stream(r) => r,
            Opened::Done(reply) => return Err(self.refusal(&reply, &source_op).await),
        };
        let shown = format!("{to}@{}", blob.digest);
        let mut location = match session {
            Some(url) => url,
            None => self.session(to, &shown).await?,
        };
        location
            .query_pairs_mut()
            .append_pair("digest", &blob.digest.to_string());
        let op = self.op(Action::UploadBlob, &shown, to, true);
        let header = self.header(&op).await?;
        self.admit(&op, Some(&Method::PUT))?;
        let verdict: Arc<Mutex<Option<String>>> = Arc::default();
        let body = verified(response, blob.digest.clone(), blob.size, verdict.clone());
        let timeout =
            self.budget().request_timeout + Duration::from_secs(blob.size / MIB_PER_SECOND);
        debug!(blob = %blob.digest, size = blob.size, from = %from, to = %to, "streaming");
        let sent = self
            .transport()
            .exchange(
                Request::new(Method::PUT, location).stream(body, blob.size),
                header.as_ref(),
                Some(UPLOAD_REPLY_LIMIT),
                timeout,
            )
            .await;
        if let Some(problem) = verdict.lock().expect("verdict").take() {
            return Err(Error::DigestMismatch {
                reference: source_shown,
                expected: blob.digest.to_string(),
                actual: problem,
            });
        }
        let reply = match sent {
            Ok(Opened::Done(reply)) => reply,
            Ok(Opened::Stream(_)) => unreachable!("a limit reads the body"),
            Err(f) => {
                return match classify::failure::<()>(f, &op) {
                    Attempt::Done(Err(e)) | Attempt::Retry { error: e, .. } => Err(e),
                    Attempt::Done(Ok(())) => Ok(()),
                }
            }
        };
        match reply.status {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            s if classify::is_transient(s) => Err(classify::reply(&reply, &op, None)),
            _ => Err(self.refusal(&reply, &op).await),
        }
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

fn bad_location(shown: &str) -> Error {
    Error::Registry {
        action: "uploading a blob to",
        reference: shown.to_string(),
        reason: "its upload answer has no usable Location".into(),
    }
}

/// What was wrong with a blob's bytes.
enum Bad {
    /// More than the size announced.
    Long,
    /// The stream ended short: bytes seen.
    Short(u64),
    /// It hashed to this other digest.
    Digest(Digest),
    /// The download failed.
    Transport(reqwest::Error),
}

impl Bad {
    fn reason(&self, size: u64) -> String {
        match self {
            Bad::Long => format!("more than the {size} bytes announced"),
            Bad::Short(seen) => format!("{seen} bytes, not the {size} announced"),
            Bad::Digest(d) => d.to_string(),
            Bad::Transport(_) => "the download was cut off".into(),
        }
    }
}

/// A blob's body, hashed on the way: past `size` bytes, short of it at the end, or at the end
/// with another digest, the stream ends with an error. The last piece is held back until the
/// whole blob hashes right, so no consumer ever takes wrong content for complete.
fn checked<S>(
    inner: S,
    expected: Digest,
    size: u64,
) -> impl Stream<Item = Result<bytes::Bytes, Bad>>
where
    S: Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    struct State<S> {
        inner: S,
        hasher: crate::model::Hasher,
        expected: Digest,
        size: u64,
        seen: u64,
    }
    let state = State {
        inner,
        hasher: expected.hasher(),
        expected,
        size,
        seen: 0,
    };
    futures_util::stream::unfold(Some(state), move |state| async move {
        let mut st = state?;
        match st.inner.next().await {
            Some(Ok(chunk)) => {
                st.seen += chunk.len() as u64;
                if st.seen > st.size {
                    return Some((Err(Bad::Long), None));
                }
                st.hasher.update(&chunk);
                if st.seen < st.size {
                    return Some((Ok(chunk), Some(st)));
                }
                let actual = st.hasher.finish();
                if actual != st.expected {
                    return Some((Err(Bad::Digest(actual)), None));
                }
                Some((Ok(chunk), None))
            }
            Some(Err(e)) => Some((Err(Bad::Transport(e)), None)),
            None if st.seen == st.size => {
                // An empty blob: nothing was held back, only the hash is left to check.
                let actual = std::mem::replace(&mut st.hasher, st.expected.hasher()).finish();
                if actual == st.expected {
                    return None;
                }
                Some((Err(Bad::Digest(actual)), None))
            }
            None => Some((Err(Bad::Short(st.seen)), None)),
        }
    })
}

/// The source's body as an upload body (`checked`): a failure aborts the upload, never
/// committed, and `verdict` says why.
fn verified(
    response: reqwest::Response,
    expected: Digest,
    size: u64,
    verdict: Arc<Mutex<Option<String>>>,
) -> reqwest::Body {
    let stream = checked(response.bytes_stream().boxed(), expected, size).map(move |r| {
        r.map_err(|bad| {
            let why = bad.reason(size);
            *verdict.lock().expect("verdict") = Some(why.clone());
            match bad {
                Bad::Transport(e) => std::io::Error::other(e),
                _ => std::io::Error::other(why),
            }
        })
    });
    reqwest::Body::wrap_stream(stream)
}

/// Blobs up to this size are read like a config (their body follows at once); larger ones take
/// one of the run's stream turns while open.
pub(crate) const SMALL_BLOB: u64 = 1024 * 1024;

impl Client {
    /// Opens `blob` of `repo` to read, hashed on the way (`checked`); the time allowed grows by
    /// one second per MiB of the `up_to` bytes wanted, as for copies.
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
        let shown = format!("{repo}@{}", blob.digest);
        let op = self.op(Action::FetchBlob, &shown, repo, false);
        let url = self.url(repo, "blobs", &blob.digest.to_string());
        let timeout = self.budget().request_timeout
            + Duration::from_secs(up_to.min(blob.size) / MIB_PER_SECOND);
        debug!(blob = %blob.digest, size = blob.size, from = %repo, "reading");
        let response = match self
            .with_request_timeout(timeout)
            .exchange(&op, None, || {
                Request::new(Method::GET, url.clone()).header(ACCEPT, "*/*")
            })
            .await?
        {
            Opened::Stream(r) => r,
            Opened::Done(reply) => return Err(self.refusal(&reply, &op).await),
        };
        let (expected, size) = (blob.digest.clone(), blob.size);
        let stream =
            checked(response.bytes_stream().boxed(), expected.clone(), size).map(move |r| {
                let _turn = &turn;
                r.map_err(|bad| match bad {
                    Bad::Transport(_) => Error::Transient {
                        action: "reading",
                        reference: shown.clone(),
                        reason: "the download was cut off".into(),
                    },
                    bad => Error::DigestMismatch {
                        reference: shown.clone(),
                        expected: expected.to_string(),
                        actual: bad.reason(size),
                    },
                })
            });
        Ok(Blob::new(stream))
    }
}
