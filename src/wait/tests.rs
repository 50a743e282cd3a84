//! Waiting on a paused clock against a scripted registry whose sources appear at set times.
//! Acceptance is the integration tests against the real registry; these cover the timing edges.

use std::cell::Cell;
use std::collections::BTreeMap;

use super::*;
use crate::cli::PushArgs;
use crate::index::Index;
use crate::manifest::{sha256, Descriptor};
use crate::reference::Reference;
use crate::settings::{self, Env};

/// One scripted source: when it appears, what config platform it has, and until when it still
/// holds an earlier pipeline's build (revision `old`, then `new`).
struct Script {
    at: Duration,
    arch: &'static str,
    stale_until: Duration,
}

struct Scripted {
    start: Instant,
    sources: BTreeMap<String, Script>,
    /// Every request fails transiently until this time.
    failing_until: Duration,
    heads: Cell<u32>,
    gets: Cell<u32>,
}

/// Config and manifest bytes.
type Held = (Vec<u8>, Vec<u8>);

impl Scripted {
    fn new(sources: &[(&str, u64, &'static str)]) -> Self {
        Scripted {
            start: Instant::now(),
            sources: sources
                .iter()
                .map(|(tag, at, arch)| {
                    (
                        format!("r.example/app:{tag}"),
                        Script {
                            at: Duration::from_secs(*at),
                            arch,
                            stale_until: Duration::ZERO,
                        },
                    )
                })
                .collect(),
            failing_until: Duration::ZERO,
            heads: Cell::new(0),
            gets: Cell::new(0),
        }
    }

    /// The config and manifest bytes `at` holds now, if it exists.
    fn now(&self, at: &Reference) -> Result<Option<Held>, Error> {
        let now = self.start.elapsed();
        if now < self.failing_until {
            return Err(Error::Transient {
                action: "fetching manifest",
                reference: at.to_string(),
                reason: "HTTP 503".into(),
            });
        }
        let Some(s) = self.sources.get(&at.to_string()).filter(|s| s.at <= now) else {
            return Ok(None);
        };
        let revision = if now < s.stale_until { "old" } else { "new" };
        let config = format!(
            r#"{{"os":"linux","architecture":"{}","config":{{"Labels":{{"org.opencontainers.image.revision":"{revision}"}}}}}}"#,
            s.arch
        )
        .into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
            manifest::OCI_MANIFEST,
            sha256(&config),
            config.len()
        )
        .into_bytes();
        Ok(Some((config, manifest)))
    }
}

impl Registry for Scripted {
    async fn head_manifest(&self, at: &Reference) -> Result<Option<String>, Error> {
        self.heads.set(self.heads.get() + 1);
        Ok(self.now(at)?.map(|(_, m)| sha256(&m)))
    }

    async fn fetch_manifest(&self, at: &Reference) -> Result<Option<Fetched>, Error> {
        self.gets.set(self.gets.get() + 1);
        let Some((_, bytes)) = self.now(at)? else {
            return Ok(None);
        };
        let digest = sha256(&bytes);
        Fetched::parse("scripted", bytes, digest).map(Some)
    }

    async fn fetch_config(&self, repo: &Reference, _: &Descriptor) -> Result<Vec<u8>, Error> {
        Ok(self.now(repo)?.expect("config of a visible source").0)
    }

    async fn push_index(&self, _: &Reference, _: &Index) -> Result<(), Error> {
        unreachable!("waiting never pushes")
    }

    async fn tag_rule(&self, _: &Reference) -> Result<crate::tag_rule::TagRule, Error> {
        unreachable!("waiting never pushes")
    }

    async fn prepare_push(&self, _: &Reference) -> Result<(), Error> {
        unreachable!("waiting never pushes")
    }
}

fn plan(extra: &[(&str, &str)]) -> Plan {
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
    settings::resolve(&PushArgs::default(), &env).unwrap()
}

#[tokio::test(start_paused = true)]
async fn picks_up_a_late_source_within_a_few_seconds() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 100, "arm64")]);
    let start = Instant::now();
    let got = gather(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry)
        .await
        .unwrap();
    let lag = start.elapsed() - Duration::from_secs(100);
    assert_eq!(got.resolved.len(), 2);
    assert!(
        lag <= Duration::from_secs(4),
        "seen {lag:?} after it landed"
    );
    // One GET each in the first round, then HEADs only for the late one, then its GET.
    assert_eq!(registry.gets.get(), 3);
    let heads = registry.heads.get();
    assert!((25..=200).contains(&heads), "{heads} HEADs in 100 s");
}

#[tokio::test(start_paused = true)]
async fn deadline_names_every_missing_source_with_exit_3() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64")]);
    let start = Instant::now();
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "90s")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3);
    assert!(e.to_string().contains("r.example/app:latest-arm64"), "{e}");
    assert_eq!(start.elapsed(), Duration::from_secs(90));
}

#[tokio::test(start_paused = true)]
async fn zero_timeout_looks_once() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 1, "arm64")]);
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "0")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3);
    assert_eq!((registry.gets.get(), registry.heads.get()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn allow_missing_returns_what_exists_at_the_deadline() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64")]);
    let got = gather(
        &plan(&[
            ("MULTIARCH_TIMEOUT", "10s"),
            ("MULTIARCH_ALLOW_MISSING", "true"),
        ]),
        &registry,
    )
    .await
    .unwrap();
    assert_eq!(got.resolved.len(), 1);
    assert_eq!(got.missing, ["r.example/app:latest-arm64"]);
    // ...but never an index of nothing.
    let registry = Scripted::new(&[]);
    let e = gather(
        &plan(&[
            ("MULTIARCH_TIMEOUT", "10s"),
            ("MULTIARCH_ALLOW_MISSING", "true"),
        ]),
        &registry,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.exit_code(), 3);
}

#[tokio::test(start_paused = true)]
async fn wrong_platform_fails_when_it_appears_not_at_the_deadline() {
    let registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 20, "amd64")]);
    let start = Instant::now();
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 4);
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_registry_failing_through_the_deadline_ends_with_75() {
    let mut registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.failing_until = Duration::from_secs(3600);
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "60s")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 75);
    // A registry that recovers in time is just a slower success.
    let mut registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry.failing_until = Duration::from_secs(20);
    assert_eq!(
        gather(&plan(&[("MULTIARCH_TIMEOUT", "60s")]), &registry)
            .await
            .unwrap()
            .resolved
            .len(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_stale_source_is_waited_past_and_read_again_only_when_its_tag_moves() {
    let mut registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry
        .sources
        .get_mut("r.example/app:latest-arm64")
        .unwrap()
        .stale_until = Duration::from_secs(60);
    let start = Instant::now();
    let got = gather(&plan(&[("MULTIARCH_TIMEOUT", "15m")]), &registry)
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(60));
    assert!(start.elapsed() <= Duration::from_secs(64));
    assert_eq!(got.resolved[1].images[0].revision.as_deref(), Some("new"));
    // Two GETs in the first round, one when the tag moved: the stale digest is never re-read.
    assert_eq!(registry.gets.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_source_stale_at_the_deadline_exits_3_naming_both_revisions() {
    let mut registry = Scripted::new(&[("latest-amd64", 0, "amd64"), ("latest-arm64", 0, "arm64")]);
    registry
        .sources
        .get_mut("r.example/app:latest-arm64")
        .unwrap()
        .stale_until = Duration::from_secs(3600);
    let e = gather(&plan(&[("MULTIARCH_TIMEOUT", "30s")]), &registry)
        .await
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 3);
    assert!(
        e.to_string().contains(
            "r.example/app:latest-arm64: stale: built from revision old, this pipeline is new"
        ),
        "{e}"
    );
}

#[test]
fn revisions_match_exactly_or_as_sha_abbreviations() {
    let full = "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49";
    for (held, expected, same) in [
        (full, full, true),
        ("3f2a1c0d", full, true),
        (full, "3F2A1C0D", true),
        ("3f2a1c", full, false),
        ("1a2b3c4d", full, false),
        ("v1.4.2", "v1.4.2", true),
        ("v1.4.2", "v1.4", false),
    ] {
        assert_eq!(same_revision(held, expected), same, "{held} vs {expected}");
    }
}
