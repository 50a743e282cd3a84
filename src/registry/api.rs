//! The distribution calls orchestration uses (`Registry`) and `login`'s check, each one request
//! (or two) through the client's request loop (`client`), reading answers by status.
//!
//! Every digest a registry sends is parsed (grammar, length per algorithm) and every manifest or
//! config it serves is hashed and compared — with sha256, sha384 or sha512, as the pin says.

use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode, Url};
use tracing::{debug, warn};

use super::classify::{Action, Op};
use super::client::Client;
use super::retry::Deadline;
use super::transport::{Limit, Overflow, Request};
use super::{Blob, Copied, Headed, Registry};
use crate::credentials::{Credential, Found};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{self, Descriptor, Fetched, MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES};
use crate::reference::{Reference, Repository};
use crate::tag_rule::TagRule;

impl Client {
    /// The credential for `host`, checked against the registry (`GET /v2/`, through its token
    /// service when it has one): what `login` hands to build tools.
    pub(crate) async fn login(&self, host: &str) -> Result<Found, Error> {
        let found = self.credential(host).await?;
        if found.credential == Credential::Anonymous {
            return Err(Error::NoCredentials {
                host: host.to_string(),
                tried: "MULTIARCH_USERNAME/MULTIARCH_PASSWORD, an ECR token (for ECR hosts or MULTIARCH_AUTH=ecr), CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (for $CI_REGISTRY), DOCKER_AUTH_CONFIG and docker config files".into(),
            });
        }
        let repo = crate::reference::Repository::parse("HOST", &format!("{host}/x")).map_err(|_| {
            Error::invalid(
                "HOST",
                host,
                "not a registry host",
                "host[:port], e.g. registry.gitlab.com or 123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            )
        })?;
        let op = Op {
            action: Action::Login,
            at: host,
            host: repo.api_host(),
            registry: host,
            scope: String::new(),
            hosts_from: self.hosts_from(),
            path: None,
            ecr: self.ecr().applies_to(host),
        };
        let url = Url::parse(&format!(
            "{}://{}/v2/",
            self.transport().scheme(repo.api_host()),
            repo.api_host()
        ))
        .expect("a checked host makes a URL");
        let reply = self
            .call(&op, Limit::ANSWER, || {
                Request::new(Method::GET, url.clone())
            })
            .await?;
        if !reply.status.is_success() {
            return Err(self.refusal(&reply, &op).await);
        }
        // An answer from another host, where a redirect led (without the credential, by the
        // origin rule), says nothing about the credential.
        if let Some(via) = &reply.via {
            return Err(Error::Registry {
                action: op.action.doing(),
                reference: host.to_string(),
                reason: format!(
                    "the credential could not be checked: {} redirected GET /v2/ to {}, which gets no credentials (it answered HTTP {}); nothing was written",
                    via.from,
                    via.to,
                    reply.status.as_u16()
                ),
            });
        }
        Ok(found)
    }

    /// HEAD of a manifest with pull or push credentials.
    async fn head(
        &self,
        at: &Reference,
        action: Action,
        push: bool,
    ) -> Result<Option<Headed>, Error> {
        debug!(reference = %at, push, "HEAD manifest");
        let shown = at.to_string();
        let op = self.op(action, &shown, at.repository(), push);
        let url = self.url(at.repository(), "manifests", &at.api_name());
        let reply = self
            .call(&op, Limit::NONE, || {
                Request::new(Method::HEAD, url.clone()).header(ACCEPT, &manifest::ACCEPT.join(", "))
            })
            .await?;
        match reply.status {
            StatusCode::OK => match reply.header("docker-content-digest") {
                Some(d) => {
                    let digest = Digest::parse(d).map_err(|reason| Error::InvalidManifest {
                        reference: shown.clone(),
                        what: "Docker-Content-Digest header",
                        reason,
                    })?;
                    // No manifest is empty: a 0 is a proxy that drops HEAD lengths, not a size.
                    let length = reply
                        .header("content-length")
                        .and_then(|n| n.parse().ok())
                        .filter(|n: &u64| *n > 0);
                    Ok(Some(Headed { digest, length }))
                }
                // A registry that does not say the digest on HEAD: read the bytes instead.
                None => Ok(self.fetch_manifest(at).await?.map(|f| Headed {
                    length: Some(f.bytes.len() as u64),
                    digest: f.digest,
                })),
            },
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.refusal(&reply, &op).await),
        }
    }
}

impl Registry for Client {
    fn until(&self, deadline: Option<Deadline>) -> Client {
        self.with_deadline(deadline)
    }

    async fn head_manifest(&self, at: &Reference) -> Result<Option<Digest>, Error> {
        Ok(self.head(at, Action::Fetch, false).await?.map(|h| h.digest))
    }

    async fn check_target(&self, at: &Reference) -> Result<Option<Digest>, Error> {
        Ok(self
            .head(at, Action::CheckTarget, true)
            .await?
            .map(|h| h.digest))
    }

    async fn check_entry(&self, at: &Reference) -> Result<Option<Headed>, Error> {
        self.head(at, Action::CheckTarget, true).await
    }

    async fn check_push(&self, to: &Repository, uploads: bool) -> Result<(), Error> {
        Client::check_push(self, to, uploads).await
    }

    async fn check_exists(&self, to: &Repository) -> Result<(), Error> {
        Client::check_exists(self, to, "looking up the destination").await
    }

    async fn fetch_manifest(&self, at: &Reference) -> Result<Option<Fetched>, Error> {
        debug!(reference = %at, "GET manifest");
        let shown = at.to_string();
        let op = self.op(Action::Fetch, &shown, at.repository(), false);
        let url = self.url(at.repository(), "manifests", &at.api_name());
        let limit = Limit {
            bytes: MAX_MANIFEST_BYTES,
            overflow: Overflow::Refuse,
        };
        let reply = self
            .call(&op, limit, || {
                Request::new(Method::GET, url.clone()).header(ACCEPT, &manifest::ACCEPT.join(", "))
            })
            .await?;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.refusal(&reply, &op).await),
        }
        // Hash the exact bytes; the registry's header and the reference's pin must agree.
        let header = match reply.header("docker-content-digest") {
            Some(d) => Some(Digest::parse(d).map_err(|reason| Error::InvalidManifest {
                reference: shown.clone(),
                what: "Docker-Content-Digest header",
                reason,
            })?),
            None => None,
        };
        for expected in header.iter().chain(at.digest()) {
            if !expected.verifies(&reply.body) {
                return Err(Error::DigestMismatch {
                    reference: shown,
                    expected: expected.to_string(),
                    actual: Digest::of(&reply.body).to_string(),
                });
            }
        }
        let digest = Digest::of(&reply.body);
        Fetched::parse(&shown, reply.body, digest).map(Some)
    }

    async fn fetch_config(&self, at: &Reference, config: &Descriptor) -> Result<Vec<u8>, Error> {
        let where_ = format!("{} ({})", at.repository(), config.digest);
        if config.size > MAX_CONFIG_BYTES {
            return Err(Error::InvalidManifest {
                reference: where_,
                what: "image config",
                reason: format!(
                    "it is {} bytes, more than the {MAX_CONFIG_BYTES} accepted",
                    config.size
                ),
            });
        }
        debug!(reference = %at, digest = %config.digest, "GET config");
        let op = self.op(Action::FetchConfig, &where_, at.repository(), false);
        let url = self.url(at.repository(), "blobs", &config.digest.to_string());
        let limit = Limit {
            bytes: MAX_CONFIG_BYTES as usize,
            overflow: Overflow::Refuse,
        };
        let reply = self
            .call(&op, limit, || Request::new(Method::GET, url.clone()))
            .await?;
        if reply.status != StatusCode::OK {
            return Err(self.refusal(&reply, &op).await);
        }
        manifest::check_size(
            &at.to_string(),
            "image config",
            &config.digest,
            config.size,
            reply.body.len(),
        )?;
        if !config.digest.verifies(&reply.body) {
            return Err(Error::DigestMismatch {
                reference: where_,
                expected: config.digest.to_string(),
                actual: Digest::of(&reply.body).to_string(),
            });
        }
        Ok(reply.body)
    }

    async fn open_blob(
        &self,
        repo: &Repository,
        blob: &Descriptor,
        up_to: u64,
    ) -> Result<Blob<'_>, Error> {
        self.read_blob(repo, blob, up_to).await
    }

    async fn push_manifest(
        &self,
        to: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let digest = Digest::of(bytes);
        debug!(reference = %to, %digest, "PUT manifest");
        let shown = to.to_string();
        let op = self.op(Action::PushManifest, &shown, to.repository(), true);
        let url = self.url(to.repository(), "manifests", &to.api_name());
        let reply = self
            // A push's answer says nothing we need beyond its status and digest header.
            .call(&op, Limit::ANSWER, || {
                Request::new(Method::PUT, url.clone()).bytes(media_type, bytes.to_vec())
            })
            .await?;
        if !reply.status.is_success() {
            return Err(self.refusal(&reply, &op).await);
        }
        // The registry stored the bytes (2xx) and we know their digest: a header that names
        // another digest says it stored something else (an error); one that is not a digest at
        // all says nothing, and failing on it would report a tag that moved as not moved.
        match reply.header("docker-content-digest").map(Digest::parse) {
            Some(Ok(d)) if d.verifies(bytes) => Ok(()),
            None => Ok(()),
            Some(Ok(d)) => Err(Error::DigestMismatch {
                reference: shown,
                expected: digest.to_string(),
                actual: d.to_string(),
            }),
            Some(Err(reason)) => {
                warn!(reference = %shown, %digest, reason, "the registry accepted the push but its Docker-Content-Digest header is not a digest; ignored (the digest pushed is known)");
                Ok(())
            }
        }
    }

    async fn tag_rule(&self, repo: &Repository) -> Result<TagRule, Error> {
        let ecr = self.ecr();
        if !ecr.applies_to(repo.registry()) {
            return Ok(TagRule::Mutable);
        }
        ecr.tag_rule(repo.registry(), repo.path()).await
    }

    async fn copy_blob(
        &self,
        from: &Repository,
        to: &Repository,
        blob: &Descriptor,
    ) -> Result<Copied, Error> {
        self.put_blob(from, to, blob).await
    }
}
