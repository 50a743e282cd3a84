//! The authentication handshake, through oci-client: the `/v2/` ping, the registry's challenge,
//! the token service. One Authorization header per registry, repository and operation, behind its
//! own lock; anonymous access skips the handshake until a registry asks (a 401).

use base64::Engine as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use reqwest::header::HeaderValue;
use tracing::{debug, instrument};

use super::classify::Action;
use super::{send, OciRegistry, CONNECT_TIMEOUT, USER_AGENT};
use crate::auth::Credential;
use crate::error::Error;
use crate::reference::Reference;

impl OciRegistry {
    /// The oci-client for handshakes, built on first use with the same TLS trust as ours.
    pub(super) fn oci(
        &self,
    ) -> Result<&oci_client::Client, oci_client::errors::OciDistributionError> {
        if let Some(c) = self.oci.get() {
            return Ok(c);
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.insecure.clone()),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(self.request_timeout),
            user_agent: USER_AGENT,
            platform_resolver: None,
            extra_root_certificates: self
                .pems
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config)?;
        Ok(self.oci.get_or_init(|| client))
    }

    /// The Authorization header for `at`, from oci-client's handshake (once per registry,
    /// repository and operation, so concurrent requests share one token). `refresh` asks for a
    /// new token after a 401 (an expired token).
    #[instrument(skip_all, fields(reference = %at, push, refresh))]
    pub(super) async fn auth_header(
        &self,
        at: &Reference,
        push: bool,
        refresh: bool,
    ) -> Result<Option<HeaderValue>, Error> {
        let key = (
            at.resolve_registry().to_string(),
            at.repository().to_string(),
            push,
        );
        // One lock per key, so pull and push authenticate concurrently; requests for the same
        // key wait for the first one's token instead of racing for their own.
        let slot = self
            .auth_headers
            .lock()
            .await
            .entry(key)
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if let (Some(h), false) = (cached.as_ref(), refresh) {
            return Ok(h.clone());
        }
        let credential = self.credentials.resolve(at.registry(), refresh).await?;
        if matches!(credential, Credential::Anonymous) && !refresh {
            // Anonymous: no handshake until a registry asks for one (a 401 with its challenge),
            // so open registries cost no ping at all.
            *cached = Some(None);
            return Ok(None);
        }
        let auth = match &credential {
            Credential::Anonymous => RegistryAuth::Anonymous,
            Credential::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.expose().to_string())
            }
        };
        let op = if push {
            RegistryOperation::Push
        } else {
            RegistryOperation::Pull
        };
        debug!(reference = %at, push, refresh, "authenticating");
        let action = if push { Action::Push } else { Action::Fetch };
        let token = send::with_retries(self.retries, at, action, || async {
            self.oci()?.auth(at, &auth, op).await
        })
        .await?;
        let value = match (token, &credential) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            // No bearer challenge: the registry takes basic auth (or none at all).
            (None, Credential::Basic { username, password }) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            )),
            (None, Credential::Anonymous) => None,
        };
        let header = value.map(|v| {
            let mut h = HeaderValue::from_str(&v).expect("tokens are header-safe");
            h.set_sensitive(true);
            h
        });
        *cached = Some(header.clone());
        Ok(header)
    }
}
