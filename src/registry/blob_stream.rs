//! A blob's body as it is read: hashed on the way, cut off the moment it exceeds its size or
//! hashes wrong (the last piece is held back until the whole blob hashes right, so no consumer
//! takes wrong content for complete), and watched for a source that stalls or drips: each MiB
//! (or the rest of the blob) must arrive within the request limit of time spent waiting for the
//! source. Time the consumer takes (a destination reading an upload, a layer being unpacked)
//! does not count: the clock runs only while the source is waited for, so a slow destination
//! is never blamed on the source, nor the reverse.
//!
//! Two consumers: a copy's upload body (`verified`), whose `Verdict` is left where the copy reads
//! it after the upload failed, so the failure is reported as the source's (`reading blob … from
//! <source>`), not the destination's; and a read (`checked`: the content check's layers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{BoxStream, Stream};
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::time::Instant;

use crate::digest::{Digest, Hasher};

/// The progress a source must make within the request limit: less is a stall (or a drip).
pub(super) const STALL_BLOCK: u64 = 1024 * 1024;

/// Why a blob's body stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It sent more than the descriptor's size.
    TooLong,
    /// It ended cleanly after `seen` bytes, short of the size.
    TooShort { seen: u64 },
    /// It hashes to another digest.
    Digest(Digest),
    /// Less than `STALL_BLOCK` arrived within the limit, after `seen` bytes.
    Stalled { seen: u64 },
    /// Its connection failed (`what`: cut off, reset, timed out) after `seen` bytes.
    Failed { seen: u64, what: String },
}

/// What a copy's upload body leaves for the copy to read: why it stopped early, if it did, and
/// how many bytes it handed to the destination (all of them: the source did its part, so a copy
/// still unanswered is waiting on the destination).
#[derive(Debug, Default)]
pub(super) struct Watch {
    pub(super) verdict: Mutex<Option<Verdict>>,
    pub(super) passed: AtomicU64,
}

/// Where a stream's `Watch` is shared with the copy.
pub(super) type Shared = Arc<Watch>;

struct State {
    inner: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    hasher: Hasher,
    expected: Digest,
    size: u64,
    seen: u64,
    /// Bytes of the current block, and the time spent waiting for them.
    block: u64,
    waited: Duration,
    limit: Duration,
}

/// `response`'s body, a blob of `size` bytes that must hash to `expected`, checked; `limit` is
/// the time each `STALL_BLOCK` may take to arrive. The stream ends after its first error.
pub(super) fn checked(
    response: reqwest::Response,
    expected: Digest,
    size: u64,
    limit: Duration,
) -> impl Stream<Item = Result<bytes::Bytes, Verdict>> + Send + 'static {
    let state = State {
        inner: response.bytes_stream().boxed(),
        hasher: expected.hasher(),
        expected,
        size,
        seen: 0,
        block: 0,
        waited: Duration::ZERO,
        limit,
    };
    futures_util::stream::unfold(Some(state), next)
}

/// The same as a request body (a copy's upload): a failure aborts the upload, never committed,
/// and `watch` says why (and how many bytes it passed on).
pub(super) fn verified(
    response: reqwest::Response,
    expected: Digest,
    size: u64,
    limit: Duration,
    watch: Shared,
) -> reqwest::Body {
    let stream = checked(response, expected, size, limit).map(move |piece| match piece {
        Ok(chunk) => {
            watch
                .passed
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok(chunk)
        }
        Err(why) => {
            let text = format!("{why:?}");
            *watch.verdict.lock().expect("verdict") = Some(why);
            Err(std::io::Error::other(text))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

type Item = Result<bytes::Bytes, Verdict>;

async fn next(state: Option<State>) -> Option<(Item, Option<State>)> {
    let mut st = state?;
    // A piece already there costs no timer (most of a fast copy); only waiting is timed.
    let piece = match st.inner.next().now_or_never() {
        Some(piece) => piece,
        None => {
            let asked = Instant::now();
            let left = st.limit.saturating_sub(st.waited);
            match tokio::time::timeout(left, st.inner.next()).await {
                Ok(piece) => {
                    st.waited += asked.elapsed();
                    piece
                }
                Err(_) => return Some((Err(Verdict::Stalled { seen: st.seen }), None)),
            }
        }
    };
    match piece {
        Some(Ok(chunk)) => {
            st.seen += chunk.len() as u64;
            if st.seen > st.size {
                return Some((Err(Verdict::TooLong), None));
            }
            st.block += chunk.len() as u64;
            if st.block >= STALL_BLOCK {
                st.block %= STALL_BLOCK;
                st.waited = Duration::ZERO;
            }
            st.hasher.update(&chunk);
            if st.seen < st.size {
                return Some((Ok(chunk), Some(st)));
            }
            // The last piece is held back until the whole blob hashes right: no consumer ever
            // completes with wrong content (an upload's client stops reading at the length).
            let actual = std::mem::replace(&mut st.hasher, st.expected.hasher()).finish();
            if actual != st.expected {
                return Some((Err(Verdict::Digest(actual)), None));
            }
            Some((Ok(chunk), None))
        }
        Some(Err(e)) => {
            let what = match super::transport::failure(&e) {
                super::transport::Failure::Transient(what) => what,
                other => format!("{other:?}"),
            };
            Some((
                Err(Verdict::Failed {
                    seen: st.seen,
                    what,
                }),
                None,
            ))
        }
        None if st.seen == st.size => {
            // An empty blob: nothing was held back, only the hash is left to check.
            let actual = std::mem::replace(&mut st.hasher, st.expected.hasher()).finish();
            if actual == st.expected {
                return None;
            }
            Some((Err(Verdict::Digest(actual)), None))
        }
        None => Some((Err(Verdict::TooShort { seen: st.seen }), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    /// A response whose body is `pieces`, each after its delay (on the paused test clock).
    fn response(pieces: Vec<(u64, Vec<u8>)>) -> reqwest::Response {
        let body = stream::iter(pieces).then(|(ms, bytes)| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))
        });
        reqwest::Response::from(http::Response::new(reqwest::Body::wrap_stream(body)))
    }

    /// Drains `pieces` through the verifier (a blob of `size` bytes hashing to the digest of
    /// `content`, at most 2 s of waiting per block): the bytes that got through, and the verdict.
    async fn drain(
        pieces: Vec<(u64, Vec<u8>)>,
        content: &[u8],
        size: u64,
    ) -> (usize, Option<Verdict>) {
        drain_slowly(pieces, content, size, Duration::ZERO).await
    }

    /// The same, the reader pausing `pause` after each piece (a slow destination).
    async fn drain_slowly(
        pieces: Vec<(u64, Vec<u8>)>,
        content: &[u8],
        size: u64,
        pause: Duration,
    ) -> (usize, Option<Verdict>) {
        let verdict: Shared = Arc::default();
        let body = verified(
            response(pieces),
            Digest::of(content),
            size,
            Duration::from_secs(2),
            verdict.clone(),
        );
        let mut out = reqwest::Response::from(http::Response::new(body)).bytes_stream();
        let mut passed = 0;
        while let Some(Ok(chunk)) = out.next().await {
            passed += chunk.len();
            tokio::time::sleep(pause).await;
        }
        let said = verdict.verdict.lock().unwrap().clone();
        (passed, said)
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_keeps_up_passes_whole() {
        let blob = vec![7u8; 3 * 1024 * 1024];
        // A MiB every 1.5 s: slow, but each block within the limit.
        let pieces = blob
            .chunks(1024 * 1024)
            .map(|c| (1500, c.to_vec()))
            .collect();
        assert_eq!(
            drain(pieces, &blob, blob.len() as u64).await,
            (blob.len(), None)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dripping_or_stalled_source_is_cut_off_within_the_limit() {
        let blob = vec![1u8; 100];
        let start = tokio::time::Instant::now();
        // A byte every 500 ms: each arrives in time, the block does not.
        let drip = blob.iter().map(|b| (500, vec![*b])).collect();
        let (passed, verdict) = drain(drip, &blob, 100).await;
        assert_eq!(verdict, Some(Verdict::Stalled { seen: 4 }));
        assert_eq!(passed, 4);
        assert!(
            start.elapsed() <= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        let stall = vec![(0, blob[..10].to_vec()), (60_000, blob[10..].to_vec())];
        assert_eq!(
            drain(stall, &blob, 100).await.1,
            Some(Verdict::Stalled { seen: 10 })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_destination_that_reads_slowly_is_not_a_stalled_source() {
        let blob = vec![3u8; 10];
        let pieces = blob.iter().map(|b| (0, vec![*b])).collect::<Vec<_>>();
        let drained = drain_slowly(pieces, &blob, 10, Duration::from_secs(60)).await;
        assert_eq!(drained, (10, None));
    }

    #[tokio::test(start_paused = true)]
    async fn content_of_another_size_or_digest_never_completes_the_upload() {
        let blob = b"0123456789".to_vec();
        let (passed, verdict) = drain(vec![(0, blob.clone())], &blob, 8).await;
        assert_eq!((passed, verdict), (0, Some(Verdict::TooLong)));
        let (passed, verdict) = drain(vec![(0, blob[..4].to_vec())], &blob, 10).await;
        assert_eq!((passed, verdict), (4, Some(Verdict::TooShort { seen: 4 })));
        // The last piece is held back when the whole hashes wrong.
        let wrong = b"0123456780".to_vec();
        let pieces = vec![(0, wrong[..5].to_vec()), (0, wrong[5..].to_vec())];
        let (passed, verdict) = drain(pieces, &blob, 10).await;
        assert_eq!(
            (passed, verdict),
            (5, Some(Verdict::Digest(Digest::of(&wrong))))
        );
    }
}
