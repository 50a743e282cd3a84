//! The only way to the network: the OCI distribution API.
//!
//! `Registry` is the seam orchestration uses; `OciRegistry` is the real one. oci-client does the
//! authentication handshake (the `/v2/` ping, the bearer challenge, the token service, its token
//! cache); the manifest and blob requests themselves go through the same reqwest stack here,
//! because a publish step needs what oci-client's request methods hide: response headers
//! (`Retry-After`, `Docker-Content-Digest`, `Content-Type`), bounded body reads, HEAD without a
//! fallback GET, and one retry site for every request. Manifests travel as raw bytes, hashed here
//! and never re-serialised, and are pushed by tag.
//!
//! Errors are converted here, by HTTP status and registry error *code*, never by message text:
//! 404 is an answer (`Ok(None)`), 401/403 exit 5, 429/5xx/connection exit 75 once retries are spent.

mod classify;
mod handshake;
mod send;
mod tls;

use std::collections::HashMap;

use reqwest::header::{HeaderValue, ACCEPT as ACCEPT_HEADER, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;
use tracing::debug;

use crate::auth::Credentials;
use crate::error::Error;
use crate::index::Index;
use crate::manifest::{sha256, Descriptor, Fetched, ACCEPT, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES};
use crate::reference::Reference;
use crate::settings::Access;
use crate::tag_rule::TagRule;
use classify::Action;
use send::Reply;
use tls::{http_client, read_ca_file};

/// The only way orchestration reaches a registry.
#[allow(async_fn_in_trait)]
pub trait Registry {
    /// Whether a manifest exists, and its digest: a HEAD, which registries (Docker Hub) do not
    /// count as a pull. `Ok(None)` = not pushed (yet): an answer, not an error.
    async fn head_manifest(&self, at: &Reference) -> Result<Option<String>, Error>;
    /// A manifest's exact bytes, verified against its digest. `Ok(None)` = not pushed (yet).
    async fn fetch_manifest(&self, at: &Reference) -> Result<Option<Fetched>, Error>;
    /// An image config blob (at most `MAX_CONFIG_BYTES`), verified against its digest.
    async fn fetch_config(&self, repo: &Reference, config: &Descriptor) -> Result<Vec<u8>, Error>;
    /// PUTs the index bytes under the tag of `to`.
    async fn push_index(&self, to: &Reference, index: &Index) -> Result<(), Error>;
    /// Whether tags of this repository may move (ECR immutability; `Mutable` elsewhere).
    async fn tag_rule(&self, repo: &Reference) -> Result<TagRule, Error>;
    /// Gets push credentials for `to` ahead of time, so the push itself costs one round trip.
    async fn prepare_push(&self, to: &Reference) -> Result<(), Error>;
}

const USER_AGENT: &str = concat!("multiarch/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type AuthSlot = std::sync::Arc<Mutex<Option<Option<HeaderValue>>>>;

/// Registry access for every host of a run: one connection pool, one authentication per
/// registry, repository and operation.
pub struct OciRegistry {
    /// oci-client, for the authentication handshake only; built on first use, so runs that
    /// never need a handshake (anonymous access to an open registry) never load its TLS roots.
    oci: std::sync::OnceLock<oci_client::Client>,
    /// Extra CA certificates (PEM), for the oci-client built later.
    pems: Vec<Vec<u8>>,
    /// For plain-HTTP (insecure) hosts.
    plain: reqwest::Client,
    /// For HTTPS, with the system roots plus `--ca-file`; built on first use.
    tls: std::sync::OnceLock<reqwest::Client>,
    roots: Vec<reqwest::Certificate>,
    credentials: Credentials,
    insecure: Vec<String>,
    retries: u32,
    request_timeout: std::time::Duration,
    /// Authorization header per (registry, repository, push?), each behind its own lock;
    /// `Some(None)` = anonymous.
    auth_headers: Mutex<HashMap<(String, String, bool), AuthSlot>>,
}

impl OciRegistry {
    pub fn new(access: &Access) -> Result<OciRegistry, Error> {
        // reqwest is built without a default crypto provider so the binary carries only ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pems = match &access.ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        let bad_ca = |e: String| {
            Error::invalid(
                "--ca-file / MULTIARCH_CA_FILE",
                access
                    .ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                format!("the TLS stack cannot use it ({e})"),
                "give a PEM file of CA certificates",
            )
        };
        let mut roots = Vec::new();
        for pem in &pems {
            roots.push(reqwest::Certificate::from_pem(pem).map_err(|e| bad_ca(e.to_string()))?);
        }
        // Plain HTTP needs no trust roots; loading the system's (hundreds of files) is left to
        // the first HTTPS request.
        let plain = http_client(Vec::new(), true).map_err(|e| bad_ca(e.to_string()))?;
        Ok(OciRegistry {
            oci: std::sync::OnceLock::new(),
            pems,
            roots,
            plain,
            tls: std::sync::OnceLock::new(),
            credentials: Credentials::load(&access.credentials)?,
            insecure: access.insecure.clone(),
            retries: access.retries,
            request_timeout: access.request_timeout,
            auth_headers: Mutex::new(HashMap::new()),
        })
    }

    /// The HTTP client for a URL: plain or TLS (built on first use).
    fn client_for(&self, url: &str) -> &reqwest::Client {
        if url.starts_with("http://") {
            return &self.plain;
        }
        self.tls.get_or_init(|| {
            // The roots were checked when `--ca-file` was read; building cannot fail on them.
            http_client(self.roots.clone(), false).expect("a TLS client with checked roots")
        })
    }

    fn url(&self, at: &Reference, kind: &str, name: &str) -> String {
        let host = at.resolve_registry();
        let scheme = if self.insecure.iter().any(|h| h == host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/{}/{kind}/{name}", at.repository())
    }

    /// The path of a manifest by digest (when the reference has one) or tag.
    fn manifest_url(&self, at: &Reference) -> String {
        let name = at.digest().or(at.tag()).unwrap_or("latest");
        self.url(at, "manifests", name)
    }

    /// One request through the retry site; `limit` bounds the body read.
    async fn request(
        &self,
        at: &Reference,
        action: Action,
        method: Method,
        url: &str,
        limit: usize,
        body: Option<(&'static str, &[u8])>,
    ) -> Result<Reply, Error> {
        send::request(self, at, action, limit, |auth| {
            let mut req = self
                .client_for(url)
                .request(method.clone(), url)
                .timeout(self.request_timeout);
            if let Some(h) = auth {
                req = req.header(reqwest::header::AUTHORIZATION, h.clone());
            }
            match body {
                Some((content_type, bytes)) => {
                    req.header(CONTENT_TYPE, content_type).body(bytes.to_vec())
                }
                None => req.header(ACCEPT_HEADER, ACCEPT.join(", ")),
            }
        })
        .await
    }
}

impl Registry for OciRegistry {
    async fn head_manifest(&self, at: &Reference) -> Result<Option<String>, Error> {
        debug!(reference = %at, "HEAD manifest");
        let reply = self
            .request(
                at,
                Action::Fetch,
                Method::HEAD,
                &self.manifest_url(at),
                0,
                None,
            )
            .await?;
        match reply.status {
            StatusCode::OK => match reply.digest_header() {
                Some(d) => Ok(Some(d)),
                // A registry that does not say the digest on HEAD: read the bytes instead.
                None => Ok(self.fetch_manifest(at).await?.map(|f| f.digest)),
            },
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(classify::reply(&reply, Action::Fetch, at)),
        }
    }

    async fn fetch_manifest(&self, at: &Reference) -> Result<Option<Fetched>, Error> {
        debug!(reference = %at, "GET manifest");
        let reply = self
            .request(
                at,
                Action::Fetch,
                Method::GET,
                &self.manifest_url(at),
                MAX_MANIFEST_BYTES,
                None,
            )
            .await?;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(classify::reply(&reply, Action::Fetch, at)),
        }
        // Hash the exact bytes; the registry's header and the reference's digest must agree.
        let digest = sha256(&reply.body);
        for expected in [reply.digest_header(), at.digest().map(str::to_string)]
            .into_iter()
            .flatten()
        {
            if expected.starts_with("sha256:") && expected != digest {
                return Err(Error::DigestMismatch {
                    reference: at.to_string(),
                    expected,
                    actual: digest,
                });
            }
        }
        Fetched::parse(&at.to_string(), reply.body, digest).map(Some)
    }

    async fn fetch_config(&self, repo: &Reference, config: &Descriptor) -> Result<Vec<u8>, Error> {
        let where_ = || format!("{repo} ({})", config.digest);
        if config.size > MAX_CONFIG_BYTES {
            return Err(Error::InvalidManifest {
                reference: where_(),
                what: "image config",
                reason: format!(
                    "it is {} bytes, more than the {MAX_CONFIG_BYTES} accepted",
                    config.size
                ),
            });
        }
        debug!(reference = %repo, digest = %config.digest, "GET config");
        let url = self.url(repo, "blobs", &config.digest);
        let reply = self
            .request(
                repo,
                Action::FetchConfig,
                Method::GET,
                &url,
                MAX_CONFIG_BYTES as usize,
                None,
            )
            .await?;
        if reply.status != StatusCode::OK {
            return Err(classify::reply(&reply, Action::FetchConfig, repo));
        }
        let actual = sha256(&reply.body);
        if actual != config.digest {
            return Err(Error::DigestMismatch {
                reference: where_(),
                expected: config.digest.clone(),
                actual,
            });
        }
        Ok(reply.body)
    }

    async fn push_index(&self, to: &Reference, index: &Index) -> Result<(), Error> {
        debug!(reference = %to, digest = %index.digest, "PUT index");
        let url = self.manifest_url(to);
        let reply = self
            .request(
                to,
                Action::Push,
                Method::PUT,
                &url,
                64 * 1024,
                Some((index.media_type, &index.bytes)),
            )
            .await?;
        if !reply.status.is_success() {
            return Err(classify::reply(&reply, Action::Push, to));
        }
        match reply.digest_header() {
            Some(d) if d != index.digest => Err(Error::DigestMismatch {
                reference: to.to_string(),
                expected: index.digest.clone(),
                actual: d,
            }),
            _ => Ok(()),
        }
    }

    async fn prepare_push(&self, to: &Reference) -> Result<(), Error> {
        self.auth_header(to, true, false).await.map(|_| ())
    }

    async fn tag_rule(&self, repo: &Reference) -> Result<TagRule, Error> {
        let ecr = self.credentials.ecr();
        if !ecr.applies_to(repo.registry()) {
            return Ok(TagRule::Mutable);
        }
        ecr.tag_rule(repo.registry(), repo.repository()).await
    }
}
