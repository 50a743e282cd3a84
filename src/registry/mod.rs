//! The only way to the network: the OCI distribution API, in layers whose dependencies point
//! down (after go-containerregistry's transports and regclient's reghttp):
//!
//! - `transport`: the HTTP clients, DNS (`net`'s resolver), TLS trust, bounded bodies, redirects
//!   without credentials (`redirect`: which to follow, and who failed after one); one exchange,
//!   whose answer is read (`Reply`) or, when it succeeded, left to stream (`Opened`);
//! - `retry`: one budget (retries, per-request limit, a deadline for retries) and its one loop;
//! - `origin`: credentials only where the registry lives — the one rule every hop is judged by
//!   (redirects, upload Locations, token realms);
//! - `token`: challenges, the token exchange (through transport and retry), headers per scope;
//! - `api`: the distribution calls orchestration uses, behind the `Registry` seam;
//! - `classify`: pure, status + error codes + transport verdicts → `Error`.
//!
//! Credentials come from `credentials` through one boxed seam; the AWS SDK is reached through
//! `ecr`. Manifests travel as raw bytes, hashed here and never re-serialised.

mod api;
mod blob_stream;
mod blobs;
mod classify;
mod client;
mod origin;
mod redirect;
mod request;
mod retry;
mod token;
mod transport;
mod upload;

use bytes::Bytes;
use futures_util::stream::{LocalBoxStream, Stream, StreamExt as _};

use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{Descriptor, Fetched};
use crate::reference::{Reference, Repository};
use crate::tag_rule::TagRule;

pub(crate) use client::Client;
pub(crate) use retry::{first_line, Deadline};

/// How a blob got into a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    /// Mounted from another repository of the same registry: no bytes sent.
    Mounted,
    /// Streamed from the source.
    Streamed,
    /// The destination had it already.
    Present,
}

/// What a HEAD of a manifest found: its digest, and its size when the registry says it
/// (`Content-Length`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Headed {
    pub(crate) digest: Digest,
    pub(crate) length: Option<u64>,
}

/// A blob being read: its bytes as they arrive, never more than its descriptor says and, read to
/// its end, hashing to its digest (else the last item is an error). Dropping it ends the download.
pub(crate) struct Blob<'a> {
    inner: LocalBoxStream<'a, Result<Bytes, Error>>,
}

impl<'a> Blob<'a> {
    pub(crate) fn new(inner: impl Stream<Item = Result<Bytes, Error>> + 'a) -> Self {
        Blob {
            inner: inner.boxed_local(),
        }
    }

    /// The next piece; `None` at the end.
    pub(crate) async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        self.inner.next().await
    }
}

/// The only way orchestration reaches a registry. `Ok(None)` = not there (yet): an answer, not
/// an error.
#[allow(async_fn_in_trait)]
pub(crate) trait Registry {
    /// The same access whose retries never sleep past `deadline` (the wait's, so the wait ends
    /// on time; the copy phase's, which also cuts a blob copy still running then).
    fn until(&self, deadline: Option<Deadline>) -> Self
    where
        Self: Sized;
    /// Whether a manifest exists, and its digest: a HEAD, which registries (Docker Hub) do not
    /// count as a pull.
    async fn head_manifest(&self, at: &Reference) -> Result<Option<Digest>, Error>;
    /// What a target tag holds now, asked with push credentials: a refused push credential
    /// fails here, at the start, not after the wait.
    async fn check_target(&self, at: &Reference) -> Result<Option<Digest>, Error>;
    /// The child an index entry names (`at` = its repository @ its digest) in a destination,
    /// asked as `check_target` asks: `None` when it is not there, else what the HEAD said (its
    /// size too, which the entry must match).
    async fn check_entry(&self, at: &Reference) -> Result<Option<Headed>, Error> {
        Ok(self.check_target(at).await?.map(|digest| Headed {
            digest,
            length: None,
        }))
    }
    /// Whether the credentials may push to `to`, asked as a push asks (an upload session opened
    /// and given back): a token that may pull but not push fails here, at the start. `uploads`
    /// says whether the run may upload blobs into `to` (a source lives elsewhere).
    async fn check_push(&self, to: &Repository, uploads: bool) -> Result<(), Error>;
    /// Whether `to` exists where the registry can say so without a push credential (ECR's
    /// DescribeRepositories): a dry run's part of `check_push`.
    async fn check_exists(&self, _to: &Repository) -> Result<(), Error> {
        Ok(())
    }
    /// A manifest's exact bytes, verified against every digest that names it.
    async fn fetch_manifest(&self, at: &Reference) -> Result<Option<Fetched>, Error>;
    /// The manifest an index entry points to (`at` = its repository @ its digest), which must be
    /// there and have the entry's `size`: reading a child, whether to check it or to copy it.
    async fn fetch_entry(&self, at: &Reference, size: u64) -> Result<Fetched, Error> {
        let shown = at.to_string();
        let fetched = self
            .fetch_manifest(at)
            .await?
            .ok_or_else(|| Error::InvalidManifest {
                reference: shown.clone(),
                what: "index entry",
                reason: "the registry does not have the manifest it points to".into(),
            })?;
        crate::manifest::check_size(
            &shown,
            "index entry",
            &fetched.digest,
            size,
            fetched.bytes.len(),
        )?;
        Ok(fetched)
    }
    /// An image config blob (bounded), verified against its digest.
    async fn fetch_config(&self, at: &Reference, config: &Descriptor) -> Result<Vec<u8>, Error>;
    /// Opens a blob of `repo` for reading, of which at most `up_to` bytes are wanted (the time
    /// the read may take grows with it). A blob larger than `blobs::SMALL_BLOB` takes one of the
    /// run's stream turns while it is open.
    async fn open_blob(
        &self,
        repo: &Repository,
        blob: &Descriptor,
        up_to: u64,
    ) -> Result<Blob<'_>, Error>;
    /// PUTs manifest bytes under `to` (a tag, or their digest).
    async fn push_manifest(
        &self,
        to: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), Error>;
    /// Whether tags of this repository may move (ECR immutability; `Mutable` elsewhere).
    async fn tag_rule(&self, repo: &Repository) -> Result<TagRule, Error>;
    /// Puts a blob of `from` into `to`: mounted on one registry; else, unless `to` has it,
    /// streamed and verified.
    async fn copy_blob(
        &self,
        from: &Repository,
        to: &Repository,
        blob: &Descriptor,
    ) -> Result<Copied, Error>;
}
