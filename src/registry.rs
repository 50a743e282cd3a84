//! The only way to the network: the distribution API through oci-client.
//!
//! `Registry` is the seam orchestration uses (and that tests can script); `OciRegistry` is the
//! real one. This module alone imports oci-client and converts its errors, by registry error
//! *code* and HTTP status, into `Error`: 404/`MANIFEST_UNKNOWN` is an answer (`Ok(None)`), 401/403
//! is exit 5, 429/5xx/connection is exit 75. Manifests travel as raw bytes: hashed here, never
//! re-serialised, pushed by tag (a push by digest panics in oci-client on registries that send no
//! `Location`, as ECR does).

use std::collections::HashSet;
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use tokio::sync::Mutex;
use tracing::debug;

use crate::auth::{Credential, Credentials};
use crate::error::Error;
use crate::index::Index;
use crate::manifest::{Descriptor, Fetched, ACCEPT, MAX_CONFIG_BYTES};
use crate::reference::Reference;
use crate::settings::Access;

/// The only way orchestration reaches a registry.
#[allow(async_fn_in_trait)]
pub trait Registry {
    /// Fetches a manifest's exact bytes, verified against its digest. `Ok(None)` = not pushed
    /// (yet): an answer, not an error.
    async fn fetch_manifest(&self, at: &Reference) -> Result<Option<Fetched>, Error>;
    /// Fetches an image config blob (at most `MAX_CONFIG_BYTES`), verified against its digest.
    async fn fetch_config(&self, repo: &Reference, config: &Descriptor) -> Result<Vec<u8>, Error>;
    /// PUTs the index bytes under the tag of `to`.
    async fn push_index(&self, to: &Reference, index: &Index) -> Result<(), Error>;
}

const USER_AGENT: &str = concat!("multiarch/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A real registry client for every host of a run: one connection pool, one authentication per
/// registry, repository and operation.
pub struct OciRegistry {
    client: Client,
    credentials: Credentials,
    authenticated: Mutex<HashSet<(String, String, bool)>>,
}

impl OciRegistry {
    pub fn new(access: &Access) -> Result<OciRegistry, Error> {
        // reqwest is built without a default crypto provider so the binary carries only ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(access.insecure.clone()),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            user_agent: USER_AGENT,
            platform_resolver: None,
            ..Default::default()
        };
        if let Some(path) = &access.ca_file {
            config.extra_root_certificates = read_ca_file(path)?;
        }
        let client = Client::try_from(config).map_err(|e| {
            Error::invalid(
                "--ca-file / MULTIARCH_CA_FILE",
                access
                    .ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                format!("the HTTP client cannot use it ({e})"),
                "give a PEM file of CA certificates",
            )
        })?;
        Ok(OciRegistry {
            client,
            credentials: Credentials::load(&access.credentials)?,
            authenticated: Mutex::new(HashSet::new()),
        })
    }

    fn auth_for(&self, at: &Reference) -> RegistryAuth {
        match self.credentials.for_host(at.registry()) {
            Credential::Anonymous => RegistryAuth::Anonymous,
            Credential::Basic { username, password } => {
                RegistryAuth::Basic(username, password.expose().to_string())
            }
        }
    }

    /// Authenticates once per registry, repository and operation, before the first request, so
    /// concurrent requests share one token instead of racing for N. Push tokens are fetched
    /// explicitly: oci-client keeps the first auth it saw for a registry.
    async fn authenticate(&self, at: &Reference, op: RegistryOperation) -> Result<(), Error> {
        let push = matches!(op, RegistryOperation::Push);
        let key = (at.registry().to_string(), at.repository().to_string(), push);
        let mut done = self.authenticated.lock().await;
        if done.contains(&key) {
            return Ok(());
        }
        let auth = self.auth_for(at);
        debug!(reference = %at, push, "authenticating");
        self.client
            .auth(at, &auth, op)
            .await
            .map_err(|e| classify(e, if push { Action::Push } else { Action::Pull }, at))?;
        done.insert(key);
        Ok(())
    }
}

impl Registry for OciRegistry {
    async fn fetch_manifest(&self, at: &Reference) -> Result<Option<Fetched>, Error> {
        self.authenticate(at, RegistryOperation::Pull).await?;
        debug!(reference = %at, "GET manifest");
        let result = self
            .client
            .pull_manifest_raw(at, &self.auth_for(at), &ACCEPT)
            .await;
        let (bytes, digest) = match result {
            Ok(found) => found,
            Err(e) => {
                return match classify(e, Action::Fetch, at) {
                    Error::Registry { reason, .. } if reason == NOT_FOUND => Ok(None),
                    other => Err(other),
                }
            }
        };
        // oci-client verified the body against the registry's digest header; hash it ourselves
        // too, so the digest we write into the index is the one of these exact bytes.
        let ours = crate::manifest::sha256(&bytes);
        if digest.starts_with("sha256:") && digest != ours {
            return Err(Error::DigestMismatch {
                reference: at.to_string(),
                expected: digest,
                actual: ours,
            });
        }
        Fetched::parse(&at.to_string(), bytes.to_vec(), digest).map(Some)
    }

    async fn fetch_config(&self, repo: &Reference, config: &Descriptor) -> Result<Vec<u8>, Error> {
        if config.size > MAX_CONFIG_BYTES {
            return Err(Error::InvalidManifest {
                reference: format!("{repo} ({})", config.digest),
                what: "image config",
                reason: format!(
                    "it is {} bytes, more than the {MAX_CONFIG_BYTES} accepted",
                    config.size
                ),
            });
        }
        self.authenticate(repo, RegistryOperation::Pull).await?;
        debug!(reference = %repo, digest = %config.digest, "GET config");
        let mut out = Vec::with_capacity(config.size as usize);
        self.client
            .pull_blob(repo, config.digest.as_str(), &mut out)
            .await
            .map_err(|e| classify(e, Action::FetchConfig, repo))?;
        Ok(out)
    }

    async fn push_index(&self, to: &Reference, index: &Index) -> Result<(), Error> {
        self.authenticate(to, RegistryOperation::Push).await?;
        debug!(reference = %to, digest = %index.digest, "PUT index");
        let content_type = index
            .media_type
            .parse()
            .expect("media types are valid header values");
        self.client
            .push_manifest_raw(to, index.bytes.clone(), content_type)
            .await
            .map_err(|e| classify(e, Action::Push, to))?;
        Ok(())
    }
}

/// What we were doing when an error came back; it words the message.
#[derive(Clone, Copy)]
enum Action {
    Fetch,
    FetchConfig,
    Push,
    Pull,
}

impl Action {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Action::Fetch => ("fetching manifest", "pull"),
            Action::FetchConfig => ("fetching image config of", "pull"),
            Action::Pull => ("authenticating to pull", "pull"),
            Action::Push => ("pushing index to", "push to"),
        }
    }
}

const NOT_FOUND: &str = "not found";

/// Converts an oci-client error by registry error code and status, never by message text.
fn classify(e: OciDistributionError, action: Action, at: &Reference) -> Error {
    let (doing, verb) = action.words();
    let reference = at.to_string();
    let denied = |reason: String| Error::AccessDenied {
        action: doing,
        verb,
        reference: reference.clone(),
        registry: at.registry().to_string(),
        reason,
    };
    let transient = |reason: String| Error::Transient {
        action: doing,
        reference: reference.clone(),
        reason,
    };
    let other = |reason: String| Error::Registry {
        action: doing,
        reference: reference.clone(),
        reason,
    };
    match e {
        OciDistributionError::RegistryError { envelope, .. } => {
            let code = envelope.errors.first().map(|e| &e.code);
            match code {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown,
                ) => other(NOT_FOUND.into()),
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => denied(codes(&envelope)),
                Some(OciErrorCode::Toomanyrequests) => transient(codes(&envelope)),
                _ => other(codes(&envelope)),
            }
        }
        OciDistributionError::ServerError { code, .. } => match code {
            404 => other(NOT_FOUND.into()),
            401 | 403 => denied(format!("HTTP {code}")),
            408 | 429 | 500..=599 => transient(format!("HTTP {code}")),
            _ => other(format!("HTTP {code}")),
        },
        OciDistributionError::UnauthorizedError { .. } => denied("HTTP 401".into()),
        OciDistributionError::AuthenticationFailure(_) => {
            denied("the token service refused the credentials".into())
        }
        OciDistributionError::DigestError(d) => Error::DigestMismatch {
            reference,
            expected: "the digest the registry announced".into(),
            actual: d.to_string(),
        },
        OciDistributionError::RequestError(r) => {
            if let Some(detail) = certificate_problem(&r) {
                return Error::UntrustedCertificate {
                    registry: at.registry().to_string(),
                    detail,
                };
            }
            if r.is_builder() || r.is_redirect() {
                other(without_url(&r))
            } else {
                transient(without_url(&r))
            }
        }
        e => other(e.to_string()),
    }
}

fn codes(envelope: &oci_client::errors::OciEnvelope) -> String {
    envelope
        .errors
        .iter()
        .map(|e| format!("{:?}: {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Describes a transport error without its URL (URLs may carry signed queries after a redirect).
fn without_url(r: &reqwest::Error) -> String {
    let kind = if r.is_timeout() {
        "timed out"
    } else if r.is_connect() {
        "connection failed"
    } else if r.is_body() || r.is_decode() {
        "response cut off"
    } else {
        "request failed"
    };
    match r.status() {
        Some(s) => format!("{kind}, HTTP {s}"),
        None => kind.to_string(),
    }
}

/// Finds a rustls certificate rejection anywhere in the error chain. `io::Error` hides the error
/// it wraps from `source()` (it reports that error's source), so those are unwrapped by hand.
fn certificate_problem(r: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(r);
    while let Some(s) = source {
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) = s.downcast_ref::<rustls::Error>()
        {
            return Some(tls.to_string());
        }
        source = match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    None
}

/// Splits a PEM bundle into certificates (one oci-client `Certificate` each).
fn read_ca_file(path: &std::path::Path) -> Result<Vec<Certificate>, Error> {
    let setting = "--ca-file / MULTIARCH_CA_FILE";
    let text = std::fs::read_to_string(path).map_err(|source| Error::UnreadableFile {
        setting: setting.into(),
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<Certificate> = text
        .split_inclusive("-----END CERTIFICATE-----")
        .filter_map(|block| {
            block
                .find("-----BEGIN CERTIFICATE-----")
                .map(|at| &block[at..])
        })
        .map(|pem| Certificate {
            encoding: CertificateEncoding::Pem,
            data: pem.as_bytes().to_vec(),
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::invalid(
            setting,
            path.display().to_string(),
            "no PEM certificate in the file",
            "give a file with one or more -----BEGIN CERTIFICATE----- blocks",
        ));
    }
    Ok(certs)
}
