//! The inspect command's orchestration: fetch one manifest and describe it. For an image the
//! platform comes from its config (one more request); an index lists its entries as they are.
//! Unless `content` is off, each image (each image child of an index) is read for the machine
//! code of its entrypoint, shown beside its platform: inspect shows, it does not fail on it.

use futures_util::future::join_all;

use crate::content::{self, Checked};
use crate::error::Error;
use crate::manifest::{self, Descriptor, Fetched, Manifest};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::Registry;
use crate::report::Entry;
use crate::settings::ContentCheck;
use crate::text::printable;

/// Fetches `at` and the entries `report` shows for it (with their content checked as `check`
/// says; `None`: not looked at, for `--raw`).
pub async fn run(
    at: &Reference,
    registry: &impl Registry,
    check: Option<&ContentCheck>,
) -> Result<(Fetched, Vec<Entry>), Error> {
    let fetched = registry
        .fetch_manifest(at)
        .await?
        .ok_or_else(|| Error::ManifestNotFound {
            reference: at.to_string(),
        })?;
    let entries = match &fetched.manifest {
        Manifest::Index { manifests } => {
            join_all(manifests.iter().map(|d| entry(registry, at, d, check))).await
        }
        Manifest::Image { config, .. } => {
            let bytes = registry.fetch_config(at, config).await?;
            let config = manifest::config(&at.to_string(), &bytes)?;
            let platform = config.platform;
            // Shown with the variant the config writes (`arm64` with `v8`), as its entry would be.
            let listed = Platform {
                variant: config.entry_variant,
                ..platform.clone()
            }
            .to_string();
            let content = match check {
                Some(c) => Some(
                    content::check(
                        registry,
                        c,
                        at.repository(),
                        &fetched,
                        &bytes,
                        &platform,
                        content::Early::none(),
                    )
                    .await,
                ),
                None => None,
            };
            vec![Entry {
                platform: listed,
                digest: fetched.digest.clone(),
                media_type: fetched.media_type.clone(),
                size: fetched.bytes.len() as u64,
                attestation: false,
                content,
            }]
        }
    };
    Ok((fetched, entries))
}

/// One entry of an index; an image child is read (manifest, config, layers) for its content.
async fn entry(
    registry: &impl Registry,
    at: &Reference,
    d: &Descriptor,
    check: Option<&ContentCheck>,
) -> Entry {
    let platform = d
        .platform
        .as_ref()
        .map(manifest::DescriptorPlatform::to_platform)
        .unwrap_or_else(|| Platform::normalised("unknown", "unknown", None, None));
    // The one rule the index assembly uses too: an entry without a platform is an image whose
    // config says what it is, not an attestation.
    let attestation = crate::index::is_attestation(d);
    let content = match check {
        Some(c) if !attestation => Some(child(registry, at, d, c, &platform).await),
        _ => None,
    };
    Entry {
        attestation,
        platform: d
            .platform
            .as_ref()
            .map_or_else(|| platform.to_string(), listed),
        digest: d.digest.clone(),
        media_type: d.media_type.clone(),
        size: d.size,
        content,
    }
}

/// An entry's platform as the index writes it (`linux/arm64/v8`, `linux/aarch64`), made
/// printable: inspect shows what is there, not what matching takes it for.
fn listed(p: &manifest::DescriptorPlatform) -> String {
    let mut shown = format!("{}/{}", printable(&p.os), printable(&p.architecture));
    if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
        shown.push('/');
        shown.push_str(&printable(v));
    }
    shown
}

/// The content check of an index's child; what keeps it from being read is its verdict.
async fn child(
    registry: &impl Registry,
    at: &Reference,
    d: &Descriptor,
    check: &ContentCheck,
    platform: &Platform,
) -> Checked {
    let not = |e: Error| {
        Checked::unread(content::Verdict::NotChecked {
            reason: crate::registry::first_line(&e),
            warn: true,
        })
    };
    if !check.enabled {
        return Checked::unread(content::Verdict::Off);
    }
    let child_at = at.repository().digest(&d.digest);
    let fetched = match registry.fetch_entry(&child_at, d.size).await {
        Ok(f) => f,
        Err(e) => return not(e),
    };
    let Manifest::Image { config, .. } = &fetched.manifest else {
        return Checked::unread(content::Verdict::NotChecked {
            reason: "a nested index".into(),
            warn: false,
        });
    };
    let bytes = match registry.fetch_config(&child_at, config).await {
        Ok(b) => b,
        Err(e) => return not(e),
    };
    // The config's platform is what the code is held against (the entry's may differ).
    let platform = manifest::config(&child_at.to_string(), &bytes)
        .map(|c| c.platform)
        .unwrap_or_else(|_| platform.clone());
    content::check(
        registry,
        check,
        at.repository(),
        &fetched,
        &bytes,
        &platform,
        content::Early::none(),
    )
    .await
}
