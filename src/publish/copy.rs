//! Putting every child of the index into every destination that lacks it, before any tag moves:
//! a child manifest already there (HEAD by digest) is left alone; otherwise each of its blobs is
//! mounted, or (when not there yet) streamed, from where the child lives, then the manifest is PUT
//! by digest with its exact bytes. A failure half-way leaves only untagged content. How many
//! requests and streams run at once is the registry layer's business (it bounds both per run).

use std::collections::BTreeMap;

use futures_util::future::try_join_all;
use tracing::{debug, info};

use crate::digest::Digest;
use crate::error::Error;
use crate::index::{Child, Index};
use crate::manifest::Fetched;
use crate::model::Resolved;
use crate::reference::Repository;
use crate::registry::{Copied, Registry};

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
    let known = &known;
    let work = destinations.iter().flat_map(|to| {
        index
            .children
            .iter()
            .filter(move |c| c.from != **to)
            .map(move |c| child(registry, c, to, known))
    });
    try_join_all(work).await.map(|_| ())
}

/// One child into one destination.
async fn child(
    registry: &impl Registry,
    child: &Child,
    to: &Repository,
    known: &BTreeMap<&Digest, &Fetched>,
) -> Result<(), Error> {
    let at = to.digest(&child.digest);
    if registry.check_target(&at).await?.is_some() {
        debug!(reference = %at, "child already there");
        return Ok(());
    }
    let fetched = match known.get(&child.digest) {
        Some(f) => (*f).clone(),
        None => {
            registry
                .fetch_entry(&child.from.digest(&child.digest), child.size)
                .await?
        }
    };
    let copies = fetched
        .manifest
        .blobs()
        .into_iter()
        .map(|blob| registry.copy_blob(&child.from, to, blob));
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
