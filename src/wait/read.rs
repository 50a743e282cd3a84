//! Reading one source: its images with their own configs — for an index, each image child of a
//! wanted platform and the attestations about them — checked at once, so a wrong image fails as
//! soon as it is seen. An index is bounded and de-duplicated before its children are read
//! (`index::distinct`): one request per distinct child, however often the index repeats it.
//! Each image's top layer is opened alongside its config (`content::alongside_config`), and its content
//! check runs as soon as the config is read (`content::check`); its
//! verdict is held until the source is judged this pipeline's build.

use futures_util::future::try_join_all;
use tokio::time::Instant;

use crate::content::{self, Checked, Verdict};
use crate::error::Error;
use crate::index;
use crate::labels::REVISION;
use crate::manifest::{self, Descriptor, DescriptorPlatform, Fetched, ImageConfig, Manifest};
use crate::model::{Resolved, Source, SourceImage};
use crate::registry::{Deadline, Registry};
use crate::settings::Plan;
use crate::text::printable;

/// Reads the images of a fetched source with their own configs — for an index, each image child
/// of a wanted platform, and the attestations about them — and checks them at once.
pub(super) async fn resolve(
    registry: &impl Registry,
    plan: &Plan,
    source: &Source,
    fetched: Fetched,
) -> Result<Resolved, Error> {
    let resolved = match &fetched.manifest {
        Manifest::Image { config, .. } => {
            let config = config.clone();
            let image = image(registry, plan, source, fetched, &config, None).await?;
            Resolved::Image {
                source: source.clone(),
                image: Box::new(image),
            }
        }
        Manifest::Index { manifests } => {
            // Decided from the index alone, before any child is fetched: each distinct child is
            // read once, and an index that cannot be used costs no further request.
            let shown = source.reference.to_string();
            let manifests = &index::distinct(&shown, manifests)?;
            let wanted = wanted(manifests, source, plan);
            index::one_per_platform(&shown, &wanted)?;
            let images = try_join_all(
                wanted
                    .iter()
                    .map(|d| child(registry, plan, source, &fetched, d)),
            )
            .await?;
            let all = wanted.len()
                == manifests
                    .iter()
                    .filter(|d| !index::is_attestation(d))
                    .count();
            let attestations = manifests
                .iter()
                .filter(|d| index::is_attestation(d))
                .filter(|d| match index::attests(d) {
                    Some(about) => wanted.iter().any(|w| w.digest == about),
                    None => all,
                })
                .cloned()
                .collect();
            Resolved::Index {
                source: source.clone(),
                fetched,
                images,
                attestations,
            }
        }
    };
    index::check(&resolved)?;
    Ok(resolved)
}

/// The image children of an index a source contributes: those of its platform (a per-arch index
/// holds only that one; a multi-platform index gives one of many), or, for a spec entry without
/// a platform, all of them (within `--platforms`, when given). A per-arch index whose only image
/// says another platform is still taken, so the check names both platforms.
fn wanted(manifests: &[Descriptor], source: &Source, plan: &Plan) -> Vec<Descriptor> {
    let images: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| !index::is_attestation(d))
        .collect();
    let said = |d: &Descriptor| d.platform.as_ref().map(DescriptorPlatform::to_platform);
    let picked: Vec<&Descriptor> = match &source.platform {
        Some(p) => {
            let matching: Vec<&Descriptor> = images
                .iter()
                .copied()
                .filter(|d| {
                    said(d).is_some_and(|s| {
                        p.matches(&s) && (p.os_version.is_none() || p.os_version == s.os_version)
                    })
                })
                .collect();
            if matching.is_empty() && images.len() == 1 {
                images
            } else {
                matching
            }
        }
        None => images
            .into_iter()
            .filter(|d| match (&plan.platform_filter, said(d)) {
                (Some(list), Some(s)) => list.iter().any(|p| p.matches(&s)),
                _ => true,
            })
            .collect(),
    };
    picked.into_iter().cloned().collect()
}

/// One image child of an index source: its manifest (by digest), then its config.
async fn child(
    registry: &impl Registry,
    plan: &Plan,
    source: &Source,
    parent: &Fetched,
    d: &Descriptor,
) -> Result<SourceImage, Error> {
    let at = source.reference.repository().digest(&d.digest);
    let where_ = format!("{} ({})", source.reference, d.digest);
    let fetched = registry.fetch_entry(&at, d.size).await?;
    let Manifest::Image { config, .. } = &fetched.manifest else {
        return Err(Error::InvalidManifest {
            reference: where_,
            what: "index entry",
            reason: format!("nested {} is not supported", fetched.media_type),
        });
    };
    let config = config.clone();
    image(registry, plan, source, fetched, &config, Some((parent, d))).await
}

/// One image of a source (`config`: its manifest's config descriptor; `child_of`: the index it
/// is an entry of, and that entry): its config, read with its top layer alongside, its revision
/// (its own label, else its manifest's annotation, else the index's) and its content check.
async fn image(
    registry: &impl Registry,
    plan: &Plan,
    source: &Source,
    fetched: Fetched,
    config: &Descriptor,
    child_of: Option<(&Fetched, &Descriptor)>,
) -> Result<SourceImage, Error> {
    let (at, shown) = match child_of {
        Some((_, d)) => (
            source.reference.repository().digest(&d.digest),
            format!("{} ({})", source.reference, d.digest),
        ),
        None => (source.reference.clone(), source.reference.to_string()),
    };
    let repo = at.repository();
    // The layers are read for a check that only warns when it cannot read them: their retries
    // end sooner than the wait's.
    let checking = registry.until(Some(Deadline::content(Instant::now())));
    let (bytes, early) = content::alongside_config(
        &checking,
        &plan.content,
        repo,
        &fetched,
        registry.fetch_config(&at, config),
    )
    .await;
    let bytes = bytes?;
    let config = manifest::config(&shown, &bytes)?;
    let annotation = |f: &Fetched| f.annotations.get(REVISION).map(|r| printable(r));
    let revision = config
        .revision
        .clone()
        .or_else(|| annotation(&fetched))
        .or_else(|| child_of.and_then(|(parent, _)| annotation(parent)));
    let content = match ruled_out(plan, source, &config, revision.as_deref()) {
        Some(verdict) => verdict,
        None => {
            let platform = &config.platform;
            content::check(
                &checking,
                &plan.content,
                repo,
                &fetched,
                &bytes,
                platform,
                early,
            )
            .await
        }
    };
    Ok(SourceImage {
        fetched,
        config,
        revision,
        entry: child_of.map(|(_, d)| d.clone()),
        content,
    })
}

/// A verdict without reading, when the config already rules the content check out: another
/// platform than promised (that error comes next) or an earlier pipeline's build (another
/// revision, or unlabelled and created before this pipeline: waited past, never published).
fn ruled_out(
    plan: &Plan,
    source: &Source,
    config: &ImageConfig,
    revision: Option<&str>,
) -> Option<Checked> {
    let other_platform = source
        .platform
        .as_ref()
        .is_some_and(|p| !p.matches(&config.platform));
    let earlier = plan.revision.as_deref().is_some_and(|want| {
        super::provenance::judge_image(revision, config.created.as_deref(), want, &plan.times)
            .is_earlier()
    });
    (other_platform || earlier).then(|| {
        Checked::unread(Verdict::NotChecked {
            reason: "not this pipeline's image".into(),
            warn: false,
        })
    })
}
