//! A scripted in-process registry for orchestration tests on a paused clock (`wait`, `publish`):
//! sources that appear, go stale or fail at set times, target tags that hold digests, pushes that
//! are refused. Acceptance is the integration tests against the real registry; this covers the
//! timing and failure edges that a real one cannot be made to show on demand.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use crate::digest::Digest;
use crate::error::{Error, GaveUp};
use crate::manifest::{self, Descriptor, Fetched};
use crate::reference::{Reference, Repository};
use crate::registry::{Blob, Copied, Deadline, Registry};
use crate::settings::Given;
use crate::settings::{self, Env, Plan};
use crate::tag_rule::TagRule;

/// One scripted source: when it appears, what its config says, and until when it still holds an
/// earlier pipeline's build (revision `old`, then `new`).
#[derive(Clone)]
pub(crate) struct Script {
    pub(crate) at: Duration,
    pub(crate) arch: &'static str,
    pub(crate) stale_until: Duration,
    /// Its image carries no revision label (an unlabelled build, of no known time).
    pub(crate) unlabelled: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) sources: BTreeMap<String, Script>,
    /// Every request fails transiently until this time.
    pub(crate) failing_until: Duration,
    /// Every manifest request hangs this long, then fails as a request that timed out does.
    pub(crate) hang: Option<Duration>,
    /// What each target tag holds.
    pub(crate) tags: BTreeMap<String, Digest>,
    /// Pushes to these references fail with the error made by the function.
    pub(crate) refuse: BTreeMap<String, fn(&str) -> Error>,
    /// `check_target` refuses push credentials.
    pub(crate) deny_push: bool,
    /// `check_push` is refused (a token that may look at the tag but not upload).
    pub(crate) deny_upload: bool,
    /// The repositories `check_push` was asked about, in order, and whether blobs may be
    /// uploaded there.
    pub(crate) push_checks: Vec<(String, bool)>,
    /// References pushed to, in order.
    pub(crate) pushed: Vec<String>,
    /// The deadlines `until` was given.
    pub(crate) deadlines: Vec<Option<Deadline>>,
    /// Manifests and configs served as they are, by reference (`r.example/app:tag`,
    /// `r.example/app@sha256:…`) or, for configs, by digest, ahead of the scripted sources: an
    /// index source and its children.
    pub(crate) raw: BTreeMap<String, Vec<u8>>,
    /// Every manifest reference fetched, in order.
    pub(crate) fetched: Vec<String>,
}

/// Shared by its clones, as a real client's pools and caches are.
#[derive(Clone)]
pub(crate) struct Scripted {
    start: Instant,
    pub(crate) state: Rc<RefCell<State>>,
    pub(crate) heads: Rc<Cell<u32>>,
    pub(crate) gets: Rc<Cell<u32>>,
}

/// Config and manifest bytes.
type Held = (Vec<u8>, Vec<u8>);

impl Scripted {
    /// Sources `(tag in r.example/app, appears after seconds, config architecture)`.
    pub(crate) fn new(sources: &[(&str, u64, &'static str)]) -> Self {
        let state = State {
            sources: sources
                .iter()
                .map(|(tag, at, arch)| {
                    (
                        format!("r.example/app:{tag}"),
                        Script {
                            at: Duration::from_secs(*at),
                            arch,
                            stale_until: Duration::ZERO,
                            unlabelled: false,
                        },
                    )
                })
                .collect(),
            ..Default::default()
        };
        Scripted {
            start: Instant::now(),
            state: Rc::new(RefCell::new(state)),
            heads: Rc::new(Cell::new(0)),
            gets: Rc::new(Cell::new(0)),
        }
    }

    async fn hang(&self, at: &Reference) -> Result<(), Error> {
        let hang = self.state.borrow().hang;
        let Some(hang) = hang else { return Ok(()) };
        tokio::time::sleep(hang).await;
        Err(Error::Transient {
            action: "fetching manifest",
            reference: at.to_string(),
            reason: format!("r.example timed out after {}s", hang.as_secs()),
            gave_up: GaveUp::Not,
        })
    }

    /// The source `tag` holds an earlier pipeline's build (revision `old`) until `secs` seconds.
    pub(crate) fn stale_until(&self, tag: &str, secs: u64) {
        self.state
            .borrow_mut()
            .sources
            .get_mut(&format!("r.example/app:{tag}"))
            .expect("a scripted source")
            .stale_until = Duration::from_secs(secs);
    }

    /// The source `tag` holds an image without a revision label.
    pub(crate) fn unlabelled(&self, tag: &str) {
        self.state
            .borrow_mut()
            .sources
            .get_mut(&format!("r.example/app:{tag}"))
            .expect("a scripted source")
            .unlabelled = true;
    }

    fn failing(&self, at: &Reference) -> Result<(), Error> {
        if self.start.elapsed() < self.state.borrow().failing_until {
            return Err(Error::Transient {
                action: "fetching manifest",
                reference: at.to_string(),
                reason: "r.example answered HTTP 503".into(),
                gave_up: GaveUp::Not,
            });
        }
        Ok(())
    }

    /// The config and manifest bytes a source holds now, if it exists.
    fn now(&self, at: &Reference) -> Result<Option<Held>, Error> {
        self.failing(at)?;
        let now = self.start.elapsed();
        let state = self.state.borrow();
        let key = match at.digest() {
            // A digest reference names what a tag held: find the source by its bytes.
            Some(d) => state
                .sources
                .keys()
                .find(|k| {
                    let r = crate::reference::parse("t", k).unwrap();
                    self.held(&state, &r, now)
                        .is_some_and(|(_, m)| Digest::of(&m) == *d)
                })
                .cloned(),
            None => Some(at.to_string()),
        };
        let Some(key) = key else { return Ok(None) };
        let r = crate::reference::parse("t", &key).unwrap();
        Ok(self.held(&state, &r, now))
    }

    fn held(&self, state: &State, at: &Reference, now: Duration) -> Option<Held> {
        let s = state.sources.get(&at.to_string()).filter(|s| s.at <= now)?;
        let revision = if now < s.stale_until { "old" } else { "new" };
        let config = match s.unlabelled {
            false => format!(
                r#"{{"os":"linux","architecture":"{}","config":{{"Labels":{{"org.opencontainers.image.revision":"{revision}"}}}}}}"#,
                s.arch
            ),
            true => format!(r#"{{"os":"linux","architecture":"{}"}}"#, s.arch),
        }
        .into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
            manifest::OCI_MANIFEST,
            Digest::of(&config),
            config.len()
        )
        .into_bytes();
        Some((config, manifest))
    }
}

impl Registry for Scripted {
    fn until(&self, deadline: Option<Deadline>) -> Self {
        self.state.borrow_mut().deadlines.push(deadline);
        self.clone()
    }

    async fn head_manifest(&self, at: &Reference) -> Result<Option<Digest>, Error> {
        self.heads.set(self.heads.get() + 1);
        self.hang(at).await?;
        if let Some(d) = self.state.borrow().tags.get(&at.to_string()) {
            return Ok(Some(d.clone()));
        }
        Ok(self.now(at)?.map(|(_, m)| Digest::of(&m)))
    }

    async fn check_target(&self, at: &Reference) -> Result<Option<Digest>, Error> {
        self.failing(at)?;
        let state = self.state.borrow();
        if state.deny_push {
            return Err(Error::AccessDenied {
                action: "checking push access to",
                push: true,
                reference: at.to_string(),
                registry: at.repository().registry().to_string(),
                credential: crate::error::Origin::CiRegistry,
                reason: "HTTP 403 Forbidden".into(),
            });
        }
        Ok(state.tags.get(&at.to_string()).cloned())
    }

    async fn check_push(&self, to: &Repository, uploads: bool) -> Result<(), Error> {
        self.state
            .borrow_mut()
            .push_checks
            .push((to.to_string(), uploads));
        if self.state.borrow().deny_upload {
            return Err(Error::AccessDenied {
                action: "checking push access to",
                push: true,
                reference: to.to_string(),
                registry: to.registry().to_string(),
                credential: crate::error::Origin::CiRegistry,
                reason: "HTTP 401 Unauthorized".into(),
            });
        }
        Ok(())
    }

    async fn fetch_manifest(&self, at: &Reference) -> Result<Option<Fetched>, Error> {
        self.gets.set(self.gets.get() + 1);
        self.state.borrow_mut().fetched.push(at.to_string());
        self.hang(at).await?;
        let raw = self.state.borrow().raw.get(&at.to_string()).cloned();
        if let Some(bytes) = raw {
            let digest = Digest::of(&bytes);
            return Fetched::parse("scripted", bytes, digest).map(Some);
        }
        let Some((_, bytes)) = self.now(at)? else {
            return Ok(None);
        };
        let digest = Digest::of(&bytes);
        Fetched::parse("scripted", bytes, digest).map(Some)
    }

    async fn fetch_config(&self, at: &Reference, config: &Descriptor) -> Result<Vec<u8>, Error> {
        if let Some(bytes) = self.state.borrow().raw.get(&config.digest.to_string()) {
            return Ok(bytes.clone());
        }
        Ok(self.now(at)?.expect("config of a visible source").0)
    }

    /// Blobs are served from `raw` by digest, whole.
    async fn open_blob(
        &self,
        repo: &Repository,
        blob: &Descriptor,
        _: u64,
    ) -> Result<Blob<'_>, Error> {
        let bytes = self
            .state
            .borrow()
            .raw
            .get(&blob.digest.to_string())
            .cloned();
        match bytes {
            Some(b) => Ok(Blob::new(futures_util::stream::iter([Ok(
                bytes::Bytes::from(b),
            )]))),
            None => Err(Error::Registry {
                action: "reading",
                reference: format!("{repo}@{}", blob.digest),
                reason: "HTTP 404 (BLOB_UNKNOWN)".into(),
            }),
        }
    }

    async fn push_manifest(&self, to: &Reference, _: &str, bytes: &[u8]) -> Result<(), Error> {
        let key = to.to_string();
        let mut state = self.state.borrow_mut();
        if let Some(refuse) = state.refuse.get(&key) {
            return Err(refuse(&key));
        }
        state.pushed.push(key.clone());
        let digest = Digest::of(bytes);
        // Served back by digest, as a registry does.
        state
            .raw
            .insert(to.repository().digest(&digest).to_string(), bytes.to_vec());
        state.tags.insert(key, digest);
        Ok(())
    }

    async fn tag_rule(&self, _: &Repository) -> Result<TagRule, Error> {
        Ok(TagRule::Mutable)
    }

    async fn copy_blob(
        &self,
        _: &Repository,
        _: &Repository,
        _: &Descriptor,
    ) -> Result<Copied, Error> {
        // Scripted registries are one registry: a blob is mounted into another repository.
        Ok(Copied::Mounted)
    }
}

/// What a registry answers a push to a protected tag `reference` (HTTP 403, DENIED).
pub(crate) fn protected_tag(reference: &str) -> Error {
    Error::AccessDenied {
        action: "pushing to",
        push: true,
        reference: reference.to_string(),
        registry: "r.example".into(),
        credential: crate::error::Origin::CiRegistry,
        reason: "HTTP 403 Forbidden, DENIED: protected tag".into(),
    }
}

/// A plan publishing `r.example/app:latest` from `latest-amd64` and `latest-arm64`, expecting
/// revision `new`, with `extra` variables.
pub(crate) fn plan(extra: &[(&str, &str)]) -> Plan {
    let mut env: Env = [
        ("MULTIARCH_IMAGE", "r.example/app"),
        ("MULTIARCH_TAGS", "latest"),
        ("MULTIARCH_REVISION", "new"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    settings::resolve(&Given::default(), &env, None).unwrap().0
}

/// What `tracing` logs on this thread while the guard lives, as text without colours: what a
/// paused-clock test reads to see a progress line.
#[derive(Clone, Default)]
pub(crate) struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn capture() -> (tracing::subscriber::DefaultGuard, Logs) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (tracing::subscriber::set_default(subscriber), logs)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Makes a FIFO at `path` (a special file the file readers and writers must refuse); returns it.
pub(crate) fn fifo(path: &std::path::Path) -> std::path::PathBuf {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
    path.to_path_buf()
}
