//! The inspect command's orchestration: fetch one manifest and describe it. For an image the
//! platform comes from its config (one more request); an index lists its entries as they are.

use crate::error::Error;
use crate::manifest::{self, Fetched, Manifest};
use crate::reference::Reference;
use crate::registry::Registry;
use crate::report::Entry;

/// Fetches `at` and the entries `report` shows for it.
pub async fn run(at: &Reference, registry: &impl Registry) -> Result<(Fetched, Vec<Entry>), Error> {
    let fetched = registry
        .fetch_manifest(at)
        .await?
        .ok_or_else(|| Error::ManifestNotFound {
            reference: at.to_string(),
        })?;
    let entries = match &fetched.manifest {
        Manifest::Index { manifests } => manifests
            .iter()
            .map(|d| {
                let platform = d
                    .platform
                    .as_ref()
                    .map(manifest::DescriptorPlatform::to_platform)
                    .unwrap_or_else(|| {
                        crate::platform::Platform::normalised("unknown", "unknown", None, None)
                    });
                Entry {
                    attestation: platform.is_unknown()
                        || d.annotations
                            .as_ref()
                            .is_some_and(|a| a.contains_key("vnd.docker.reference.type")),
                    platform,
                    digest: d.digest.clone(),
                    media_type: d.media_type.clone(),
                    size: d.size,
                }
            })
            .collect(),
        Manifest::Image { config, .. } => {
            let bytes = registry.fetch_config(at, config).await?;
            vec![Entry {
                platform: manifest::config(&at.to_string(), &bytes)?.platform,
                digest: fetched.digest.clone(),
                media_type: fetched.media_type.clone(),
                size: fetched.bytes.len() as u64,
                attestation: false,
            }]
        }
    };
    Ok((fetched, entries))
}
