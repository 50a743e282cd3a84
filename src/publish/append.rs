//! `--append`: each destination's own index is the base its new index is merged into, checked
//! before anything is merged, and looked at again around the PUT so that another `--append` of
//! the same tag landing at the same time is merged in rather than overwritten.
//!
//! A registry has no compare-and-swap for tags, so this is read, merge, push, read back: just
//! before the PUT the tag is looked at (one HEAD: did someone push since the base was read?),
//! after it the tag is read back, twice (`read_back_settled`); an index there that lacks
//! platforms of this run's is merged into and pushed again, at most `ROUNDS` times in all. `publish` orders these steps; this module
//! only reads and judges.

use std::time::Duration;

use futures_util::future::try_join_all;

use crate::digest::Digest;
use crate::error::Error;
use crate::index::{self, Index};
use crate::manifest::{DescriptorPlatform, Fetched, Manifest};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{Headed, Registry};

/// The most PUT rounds of one destination's index with `--append`: the first, and a merge
/// again after each read-back that found another writer's index lacking this run's platforms.
pub(crate) const ROUNDS: u32 = 5;

/// What the tag `at` holds (each destination's first target tag), checked as a base: `None`
/// when the tag does not exist yet (a new index).
pub(super) async fn base(
    registry: &impl Registry,
    at: &Reference,
) -> Result<Option<Fetched>, Error> {
    let Some(fetched) = registry.fetch_manifest(at).await? else {
        return Ok(None);
    };
    check(registry, at, &fetched).await?;
    Ok(Some(fetched))
}

/// Checks the index a tag holds as a source index is checked (entries bounded, one image per
/// platform, one platform per digest: `index::base_entries`), then that every child it lists is
/// in the repository with the size its entry says (a Docker list, like an OCI index, can name a
/// manifest that is gone, or say a wrong size, and the registry would refuse the merged index,
/// or store it broken). A single image is left to
/// the merge, which refuses it.
async fn check(registry: &impl Registry, at: &Reference, fetched: &Fetched) -> Result<(), Error> {
    let Manifest::Index { manifests } = &fetched.manifest else {
        return Ok(());
    };
    let entries = index::base_entries(&at.to_string(), manifests)?;
    let repository = at.repository();
    try_join_all(entries.iter().map(|d| async move {
        let child = repository.digest(&d.digest);
        // The entry's size is what pullers check the child against: the HEAD's length, or where
        // the registry (or a proxy) says none, the child's bytes.
        let held = match registry.check_entry(&child).await? {
            None => None,
            Some(Headed {
                length: Some(n), ..
            }) => Some(n),
            Some(Headed { length: None, .. }) => registry
                .fetch_manifest(&child)
                .await?
                .map(|f| f.bytes.len() as u64),
        };
        match held {
            Some(n) if n != d.size => Err(Error::InvalidManifest {
                reference: at.to_string(),
                what: index::BASE,
                reason: format!(
                    "its entry {} ({}) says {} bytes, but the registry holds {n} bytes under that digest, which pulls of that platform refuse; push the tag again whole (without --append)",
                    d.digest,
                    platform(d.platform.as_ref()),
                    d.size
                ),
            }),
            Some(_) => Ok(()),
            None => Err(Error::InvalidManifest {
                reference: at.to_string(),
                what: index::BASE,
                reason: format!(
                    "its entry {} ({}) is not in {repository}: an index whose child is gone cannot be appended to; push the tag again whole (without --append)",
                    d.digest,
                    platform(d.platform.as_ref())
                ),
            }),
        }
    }))
    .await?;
    Ok(())
}

/// Just before the PUT: `None` when `at` still holds `base` (by digest, or still does not
/// exist), else what it holds now, checked as a base (another writer pushed meanwhile).
pub(super) async fn look_again(
    registry: &impl Registry,
    at: &Reference,
    base: Option<&Digest>,
) -> Result<Option<Option<Fetched>>, Error> {
    let now = registry.check_target(at).await?;
    if now.as_ref() == base {
        return Ok(None);
    }
    self::base(registry, at).await.map(Some)
}

/// What a tag held when read back after this run's PUT.
pub(super) enum ReadBack {
    /// This run's index.
    Ours,
    /// Another writer's index that holds every platform of this run's (it merged ours in).
    Covers(Digest),
    /// Another writer's index (checked as a base) that lacks `missing` platforms of this run's;
    /// `None`: the tag is gone.
    Lacks {
        theirs: Option<Fetched>,
        missing: Vec<String>,
    },
}

/// Reads `at` back after `ours` was PUT under it (the PUT and this look taking `took` so far).
/// When it holds `ours`, it is read once more after `settle(took)`: a writer that looked at the
/// tag just before this PUT landed may still land its own after the first look, and then lacks
/// this run's platforms (seen 1 time in 12 with 20 ms round trips, without this second look).
pub(super) async fn read_back_settled(
    registry: &impl Registry,
    at: &Reference,
    ours: &Index,
    started: tokio::time::Instant,
) -> Result<ReadBack, Error> {
    match read_back(registry, at, ours).await? {
        ReadBack::Ours => {
            tokio::time::sleep(settle(started.elapsed())).await;
            read_back(registry, at, ours).await
        }
        other => Ok(other),
    }
}

/// How long to wait before the second look: twice what the PUT and the first look took (a
/// writer that looked before this PUT landed sends its own within about that), at least 0.1 s,
/// at most 1 s (a cancelled run must still end within its grace).
pub(crate) fn settle(took: Duration) -> Duration {
    (took * 2).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Reads `at` back after `ours` was PUT under it.
async fn read_back(
    registry: &impl Registry,
    at: &Reference,
    ours: &Index,
) -> Result<ReadBack, Error> {
    if registry.check_target(at).await?.as_ref() == Some(&ours.digest) {
        return Ok(ReadBack::Ours);
    }
    let theirs = base(registry, at).await?;
    let held: Vec<Platform> = match theirs.as_ref().map(|f| &f.manifest) {
        Some(Manifest::Index { manifests }) => manifests
            .iter()
            .filter(|d| !index::is_attestation(d))
            .filter_map(|d| d.platform.as_ref().map(DescriptorPlatform::to_platform))
            .collect(),
        _ => Vec::new(),
    };
    let missing: Vec<String> = ours
        .children
        .iter()
        .filter(|c| !c.attestation)
        .filter(|c| !held.iter().any(|p| same(p, &c.platform)))
        .map(|c| c.platform.to_string())
        .collect();
    match (missing.is_empty(), theirs) {
        (true, Some(f)) => Ok(ReadBack::Covers(f.digest)),
        (_, theirs) => Ok(ReadBack::Lacks { theirs, missing }),
    }
}

/// One platform for an index: pullers take them for one, and their `os.version` is the same.
fn same(a: &Platform, b: &Platform) -> bool {
    a.matches(b) && a.os_version == b.os_version
}

fn platform(p: Option<&DescriptorPlatform>) -> String {
    p.map_or_else(
        || "no platform".to_string(),
        |p| p.to_platform().to_string(),
    )
}
