//! Putting every child of the index into every destination that lacks it, before any tag moves:
//! a child manifest already there (HEAD by digest) is left alone; otherwise each of its blobs is
//! mounted, or (when not there yet) streamed, from where the child lives, then the manifest is PUT
//! by digest with its exact bytes. A failure half-way leaves only untagged content.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;
use tokio::sync::Semaphore;
use tracing::{debug, info};

use crate::error::Error;
use crate::index::{Child, Index};
use crate::manifest::{self, Fetched};
use crate::model::{Digest, Resolved};
use crate::reference::Repository;
use crate::registry::{Copied, Registry};

/// Blob copies in flight at once, across children and destinations: mounts are one small request
/// each (the registry layer bounds the streams among them further), and a bound keeps an index of
/// many children from opening a connection per blob.
const BLOBS_AT_ONCE: usize = 16;

/// Copies what each of `destinations` lacks of `index`'s children.
pub(super) async fn children(
    registry: &impl Registry,
    index: &Index,
    resolved: &[Resolved],
    destinations: &[&Repository],
) -> Result<(), Error> {
    // The image manifests already read (their exact bytes): no need to fetch them again.
    let known: BTreeMap<&Digest, &Fetched> = resolved
        .iter()
        .flat_map(Resolved::images)
        .map(|i| (&i.fetched.digest, &i.fetched))
        .collect();
    let permits = Semaphore::new(BLOBS_AT_ONCE);
    let (known, permits) = (&known, &permits);
    let work = destinations.iter().flat_map(|to| {
        index
            .children
            .iter()
            .filter(move |c| c.from != **to)
            .map(move |c| child(registry, c, to, known, permits))
    });
    try_join_all(work).await.map(|_| ())
}

/// One child into one destination.
async fn child(
    registry: &impl Registry,
    child: &Child,
    to: &Repository,
    known: &BTreeMap<&Digest, &Fetched>,
    permits: &Semaphore,
) -> Result<(), Error> {
    let at = to.digest(&child.digest);
    if registry.check_target(&at).await?.is_some() {
        debug!(reference = %at, "child already there");
        return Ok(());
    }
    let fetched = match known.get(&child.digest) {
        Some(f) => (*f).clone(),
        None => {
            let shown = format!("{}@{}", child.from, child.digest);
            let fetched = registry
                .fetch_manifest(&child.from.digest(&child.digest))
                .await?
                .ok_or_else(|| Error::InvalidManifest {
                    reference: shown.clone(),
                    what: "index entry",
                    reason: "the registry does not have the manifest it points to".into(),
                })?;
            manifest::check_size(
                &shown,
                "index entry",
                &child.digest,
                child.size,
                fetched.bytes.len(),
            )?;
            fetched
        }
    };
    let copies = fetched.manifest.blobs().into_iter().map(|blob| async move {
        let _permit = permits.acquire().await.expect("the semaphore stays open");
        registry.copy_blob(&child.from, to, blob).await
    });
    let done = try_join_all(copies).await?;
    registry
        .push_manifest(&at, &fetched.media_type, &fetched.bytes)
        .await?;
    let count = |k: Copied| done.iter().filter(|c| **c == k).count();
    info!(
        reference = %at,
        from = %child.from,
        mounted = count(Copied::Mounted),
        streamed = count(Copied::Streamed),
        present = count(Copied::Present),
        "child copied"
    );
    Ok(())
}
