//! The content check: is the program an image starts machine code of the platform its config
//! claims? A config only says what the builder was told; a Dockerfile that downloads
//! `…-linux-amd64.tar.gz` whatever `TARGETARCH` is, or a stage built `FROM
//! --platform=$BUILDPLATFORM`, ships an arm64 image that dies with `exec format error`.
//!
//! The program is found as the runtime would (`program`, `resolve`), in the layers read from the
//! top down (`walk`: `decompress`, `tar`, `tree`) and judged by its header (`machine`). Layers
//! come through the registry seam as bounded, verified streams; the walk runs on a blocking
//! thread fed chunk by chunk, so the run's other requests go on, and stops reading the moment
//! the answer is known. What cannot be judged (no entrypoint, a jar, a layer that cannot be
//! read, a spent budget) is "not checked"; only machine code of another platform fails the run,
//! and only once the source is judged to be this pipeline's build (`enforce`).

mod decompress;
mod machine;
mod program;
mod resolve;
mod tar;
mod tree;
mod verdict;
mod walk;

use std::future::Future;
use std::io::{self, Read};

use bytes::Bytes;
use futures_util::future::{self, FutureExt as _, LocalBoxFuture};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub(crate) use crate::content_check::{Checked, Verdict};
use crate::error::{Error, Mismatched};
use crate::manifest::{Fetched, Manifest, RootLayer};
use crate::model::Resolved;
use crate::platform::Platform;
use crate::reference::{Reference, Repository};
use crate::registry::{first_line, Blob, Registry};
use crate::settings::ContentCheck;
use walk::{Limits, Stop};

/// Bound on decompressed archive bytes, as a multiple of the download budget (a zip bomb is
/// not read forever).
const EXPANSION: u64 = 8;
/// Bound on the entries recorded per image (memory: a few dozen bytes each).
const MAX_ENTRIES: usize = 1_000_000;

/// Checks the image `fetched` of `repo` (its config `config` says `platform`) as `setting`
/// asks. Never fails: what cannot be read is a verdict, said by `enforce`.
pub(crate) async fn check<'r, R: Registry>(
    registry: &'r R,
    setting: &ContentCheck,
    repo: &Repository,
    fetched: &Fetched,
    config: &[u8],
    platform: &Platform,
    early: Early<'r>,
) -> Checked {
    if !setting.enabled {
        return Checked::unread(Verdict::Off);
    }
    let not = |reason: String| {
        Checked::unread(Verdict::NotChecked {
            reason,
            warn: false,
        })
    };
    let Manifest::Image { rootfs, .. } = &fetched.manifest else {
        return not("not an image".into());
    };
    let windows = platform.os == "windows";
    let Some(program) = program::from_config(config, windows) else {
        return not("its config has no entrypoint and no cmd".into());
    };
    let Some(expected) = machine::expected(platform) else {
        return not(format!(
            "multiarch does not know the machine code of {platform}"
        ));
    };
    let top_first: Vec<&RootLayer> = rootfs.iter().rev().collect();
    let skips: Vec<Option<String>> = top_first.iter().map(|l| skip(l)).collect();
    let digests: Vec<String> = rootfs
        .iter()
        .map(|l| l.descriptor.digest.to_string())
        .collect();
    let limits = Limits {
        expanded: setting.budget.saturating_mul(EXPANSION),
        entries: MAX_ENTRIES,
    };
    let described = program.describe();
    let (asks, mut asked) = mpsc::unbounded_channel::<(usize, mpsc::Sender<Chunk>)>();
    let walker = tokio::task::spawn_blocking(move || {
        let mut open = |i: usize| -> io::Result<Box<dyn Read>> {
            let (tx, rx) = mpsc::channel(4);
            asks.send((i, tx))
                .map_err(|_| io::Error::other("the check was abandoned"))?;
            Ok(Box::new(Feed {
                rx,
                piece: Bytes::new(),
            }))
        };
        walk::walk(&program, expected, &skips, limits, &mut open)
    });
    let mut spent = 0u64;
    let mut early = early.0;
    while let Some((i, tx)) = asked.recv().await {
        let left = setting.budget.saturating_sub(spent);
        let opened = match early.take().filter(|_| i == 0) {
            Some(opening) => opening.await,
            None if left == 0 => {
                let _ = tx.send(Err(Stop::Budget)).await;
                continue;
            }
            None => {
                registry
                    .open_blob(repo, &top_first[i].descriptor, left)
                    .await
            }
        };
        feed(opened, tx, &mut spent, setting.budget).await;
    }
    let report = walker.await.expect("the walk does not panic");
    let context = verdict::Context {
        digests: &digests,
        budget: setting.budget,
        limits,
        platform: platform.to_string(),
        program: described,
    };
    let verdict = verdict::from_walk(report.walked, &context);
    let opened = report.opened;
    debug!(%repo, digest = %fetched.digest, layers = opened, bytes = spent, lookups = report.lookups, verdict = ?verdict, "content checked");
    Checked {
        verdict,
        layers_read: opened,
        bytes_read: spent,
    }
}

/// Why a layer cannot be read, if it cannot.
fn skip(layer: &RootLayer) -> Option<String> {
    let media_type = &layer.descriptor.media_type;
    if layer.foreign {
        return Some("foreign".into());
    }
    (!media_type.contains("tar") || media_type.contains("encrypted"))
        .then(|| format!("media type {media_type}"))
}

type Chunk = Result<Bytes, Stop>;

/// The top layer of an image, opened while its config is on the way: the walk reads it first
/// whatever the config says, so in the usual image (the program in the top layer) the check
/// costs no round trip of its own. Still on its way (waiting for one of the run's blob streams)
/// or opened; `Early::none()` when nothing was opened early.
pub(crate) struct Early<'r>(Option<LocalBoxFuture<'r, Result<Blob<'r>, Error>>>);

impl Early<'_> {
    pub(crate) fn none() -> Self {
        Early(None)
    }
}

/// Runs `config` (the read of the config of `fetched`, an image of `repo`) while the image's top
/// layer is opened for the check, unless the check is off or that layer is one the walk skips.
/// Returns as soon as the config is read: an opening that waits for a blob stream goes on when
/// the check awaits it, so configs are never held behind layers. Dropped unread when the config
/// then rules the check out (no program, another platform, an earlier pipeline's build).
pub(crate) async fn alongside_config<'r, T>(
    registry: &'r impl Registry,
    setting: &ContentCheck,
    repo: &'r Repository,
    fetched: &Fetched,
    config: impl Future<Output = T>,
) -> (T, Early<'r>) {
    let top = match &fetched.manifest {
        Manifest::Image { rootfs, .. } => rootfs.last(),
        Manifest::Index { .. } => None,
    };
    let Some(top) = top.filter(|t| setting.enabled && setting.budget > 0 && skip(t).is_none())
    else {
        return (config.await, Early::none());
    };
    let (layer, budget) = (top.descriptor.clone(), setting.budget);
    let mut opening = async move { registry.open_blob(repo, &layer, budget).await }.boxed_local();
    let mut config = std::pin::pin!(config);
    let mut opened = None;
    let read = loop {
        tokio::select! {
            read = &mut config => break read,
            blob = &mut opening, if opened.is_none() => opened = Some(blob),
        }
    };
    let early = match opened {
        Some(blob) => future::ready(blob).boxed_local(),
        None => opening,
    };
    (read, Early(Some(early)))
}

/// Streams one opened layer into the walk, within what is left of the budget; stops when the
/// walk stops reading.
async fn feed(
    opened: Result<Blob<'_>, Error>,
    tx: mpsc::Sender<Chunk>,
    spent: &mut u64,
    budget: u64,
) {
    let mut blob = match opened {
        Ok(b) => b,
        Err(e) => {
            let _ = tx.send(Err(Stop::Failed(first_line(&e)))).await;
            return;
        }
    };
    loop {
        let next = tokio::select! {
            next = blob.next() => next,
            () = tx.closed() => return,
        };
        let chunk = match next {
            None => return,
            Some(Err(e)) => {
                let _ = tx.send(Err(Stop::Failed(first_line(&e)))).await;
                return;
            }
            Some(Ok(chunk)) => chunk,
        };
        let left = budget.saturating_sub(*spent);
        if chunk.len() as u64 > left {
            *spent += left;
            let _ = tx.send(Ok(chunk.slice(..left as usize))).await;
            let _ = tx.send(Err(Stop::Budget)).await;
            return;
        }
        *spent += chunk.len() as u64;
        if tx.send(Ok(chunk)).await.is_err() {
            return;
        }
    }
}

/// A layer's bytes as the walk reads them, from the channel `feed` fills.
struct Feed {
    rx: mpsc::Receiver<Chunk>,
    piece: Bytes,
}

impl Read for Feed {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.piece.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(piece)) => self.piece = piece,
                Some(Err(stop)) => return Err(io::Error::other(stop)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.piece.len());
        out[..n].copy_from_slice(&self.piece.split_to(n));
        Ok(n)
    }
}

/// How an image is named in messages: `reference@digest`.
fn image_name(reference: &Reference, digest: &crate::digest::Digest) -> String {
    match reference.digest() {
        Some(_) => format!("{}@{digest}", reference.repository()),
        None => format!("{reference}@{digest}"),
    }
}

/// For a source judged to be this pipeline's build: what could not be checked and should have
/// been is a warning.
pub(crate) fn warn_unchecked(resolved: &Resolved) {
    let source = resolved.source();
    for image in resolved.images() {
        if let Verdict::NotChecked { reason, warn: true } = &image.content.verdict {
            let name = image_name(&source.reference, &image.fetched.digest);
            warn!(image = %name, platform = %image.config.platform, "machine code not checked: {reason}");
        }
    }
}

/// For the sources judged to be this pipeline's builds: machine code of another platform fails
/// the run (exit 4), naming every image that holds it.
pub(crate) fn enforce(resolved: &[&Resolved]) -> Result<(), Error> {
    let mut images = Vec::new();
    for r in resolved {
        for image in r.images() {
            if let Verdict::Mismatch {
                file,
                found,
                found_platform,
                trail,
            } = &image.content.verdict
            {
                let whose = found_platform
                    .as_ref()
                    .map(|p| format!(" (machine code for {p})"))
                    .unwrap_or_default();
                images.push(Mismatched {
                    image: image_name(&r.source().reference, &image.fetched.digest),
                    platform: image.config.platform.to_string(),
                    found: format!("{file} is {found}{whose}"),
                    found_arch: found_platform
                        .as_deref()
                        .and_then(|p| p.split('/').nth(1))
                        .map(str::to_string),
                    trail: trail.clone(),
                });
            }
        }
    }
    if images.is_empty() {
        Ok(())
    } else {
        Err(Error::MachineMismatch { images })
    }
}

/// One line about the checks of a run: images checked, matched, not checked, warnings.
pub(crate) fn summary<'a>(resolved: impl IntoIterator<Item = &'a Resolved>) {
    let images: Vec<&Checked> = resolved
        .into_iter()
        .flat_map(Resolved::images)
        .map(|i| &i.content)
        .collect();
    if images.iter().all(|c| c.verdict == Verdict::Off) {
        if !images.is_empty() {
            info!("machine code not checked (MULTIARCH_CONTENT_CHECK=off)");
        }
        return;
    }
    let count = |f: &dyn Fn(&Verdict) -> bool| images.iter().filter(|c| f(&c.verdict)).count();
    let matched = count(&|v| matches!(v, Verdict::Matched { .. }));
    let not_checked = count(&|v| matches!(v, Verdict::NotChecked { .. }));
    let warnings = count(&|v| matches!(v, Verdict::NotChecked { warn: true, .. }));
    let layers: usize = images.iter().map(|c| c.layers_read).sum();
    let bytes: u64 = images.iter().map(|c| c.bytes_read).sum();
    info!(
        images = images.len(),
        matched,
        not_checked,
        warnings,
        layers_read = layers,
        bytes_read = %verdict::size(bytes),
        "entrypoint machine code checked"
    );
}
