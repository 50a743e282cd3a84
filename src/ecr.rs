//! Amazon ECR: which hosts are ECR registries, a registry login from nothing but AWS credentials
//! (ECR GetAuthorizationToken through the SDK's default chain, or a GitLab OIDC token exchanged
//! with STS AssumeRoleWithWebIdentity), and what DescribeRepositories says of a repository
//! (`repository`: whether it exists, its tag mutability).
//!
//! The only user of the AWS SDK (set up in `sdk`). Its errors are converted there, by error code:
//! `AccessDenied*` names the IAM action that is missing (exit 5); no credentials says what the job
//! set and what is missing or broken (`diagnosis`, exit 5); an API endpoint that does not exist (a mistyped region) is exit 2 at once,
//! naming it and where the region came from; timeouts and dispatch failures are transient
//! (exit 75). No secret is ever logged.

use std::collections::HashMap;

use base64::Engine as _;
use tokio::sync::{Mutex, OnceCell};
use tracing::{info, instrument};

use crate::error::Error;
use crate::secret::Secret;
pub(crate) use diagnosis::{AwsSetup, Held};
use sdk::{Region, UnknownHostIsFinal};

/// What ECR authentication needs beyond the AWS SDK's own environment (keys, profiles, token files).
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsInputs {
    /// `--auth ecr`: use an ECR token for every registry host.
    pub(crate) force_ecr: bool,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`: for hosts that do not name a region.
    pub(crate) region: Option<String>,
    /// GitLab OIDC: the role to assume with `web_identity_token` (only when the SDK has no token
    /// file of its own, `AWS_WEB_IDENTITY_TOKEN_FILE`).
    pub(crate) role_arn: Option<String>,
    pub(crate) web_identity_token: Option<Secret>,
    /// Says which project and job assumed the role (CloudTrail shows it).
    pub(crate) session_name: String,
    /// What the job set for credentials, to say what is missing when none are found.
    pub(crate) setup: AwsSetup,
    /// `MULTIARCH_REQUEST_TIMEOUT`: one attempt of an AWS call gets as long as a registry
    /// request, so an endpoint that never answers cannot hold the run.
    pub(crate) request_timeout: std::time::Duration,
}

mod diagnosis;
mod repository;
mod sdk;

/// What an ECR registry host says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrHost {
    pub account: String,
    pub region: String,
}

/// Recognises `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` and the dual-stack
/// `<account>.dkr-ecr[-fips].<region>.on.aws` (a `:443` port is ignored).
pub fn parse_host(host: &str) -> Option<EcrHost> {
    let host = host
        .strip_suffix(":443")
        .unwrap_or(host)
        .to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let account = *labels.first()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &labels[1..];
    let (region, tail) = match rest {
        ["dkr", "ecr" | "ecr-fips", region, tail @ ..] => (*region, tail),
        ["dkr-ecr" | "dkr-ecr-fips", region, tail @ ..] => (*region, tail),
        _ => return None,
    };
    let tail_ok = match rest[0] {
        "dkr" => matches!(tail, ["amazonaws", "com"] | ["amazonaws", "com", "cn"]),
        _ => matches!(tail, ["on", "aws"]),
    };
    (tail_ok && !region.is_empty()).then(|| EcrHost {
        account: account.to_string(),
        region: region.to_string(),
    })
}

/// The web identity token the SDK reads from `AWS_WEB_IDENTITY_TOKEN_FILE`, remembered as a
/// secret so that an endpoint echoing it back is redacted (a token is a few KiB; a file larger
/// than 64 KiB is not one, and is left to the SDK to refuse).
fn remember_token_file(path: Option<&str>) {
    let Some(path) = path else { return };
    let small = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= 64 * 1024);
    if let Some(token) = small.then(|| std::fs::read_to_string(path).ok()).flatten() {
        crate::secret::remember(token.trim());
    }
}

/// ECR access for a run: SDK clients per region, built on first use; the OIDC exchange done once.
pub struct Ecr {
    inputs: AwsInputs,
    clients: Mutex<HashMap<String, aws_sdk_ecr::Client>>,
    oidc: OnceCell<Option<aws_credential_types::Credentials>>,
    /// What DescribeRepositories said of each `host/repository`, asked once per run.
    described: Mutex<HashMap<String, repository::Described>>,
}

impl Ecr {
    pub fn new(inputs: &AwsInputs) -> Ecr {
        remember_token_file(inputs.setup.token_file.as_deref());
        Ecr {
            inputs: inputs.clone(),
            clients: Mutex::new(HashMap::new()),
            oidc: OnceCell::new(),
            described: Mutex::new(HashMap::new()),
        }
    }

    /// True when `host` should get an ECR token.
    pub fn applies_to(&self, host: &str) -> bool {
        self.inputs.force_ecr || parse_host(host).is_some()
    }

    /// A registry login (`AWS`, token) for `host`, from GetAuthorizationToken.
    #[instrument(skip_all, fields(registry = host))]
    pub async fn login(&self, host: &str) -> Result<(String, Secret), Error> {
        let region = self.region(host)?;
        let client = self.client(&region).await?;
        let out = match client.get_authorization_token().send().await {
            Ok(out) => out,
            Err(e) => {
                return Err(self
                    .failure(e, "ecr:GetAuthorizationToken", host, &region)
                    .await)
            }
        };
        let token = out
            .authorization_data()
            .first()
            .and_then(|d| d.authorization_token())
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Error::Registry {
                action: "logging in to",
                reference: host.to_string(),
                reason: "ECR returned no usable authorization token".into(),
            })?;
        let (user, password) = token.split_once(':').ok_or_else(|| Error::Registry {
            action: "logging in to",
            reference: host.to_string(),
            reason: "the ECR authorization token is not user:password".into(),
        })?;
        info!(registry = host, "ECR login");
        Ok((user.to_string(), Secret::new(password)))
    }

    /// A failed SDK call as an error (`sdk::failure`, told what the job set for credentials).
    async fn failure<E>(
        &self,
        e: aws_sdk_ecr::error::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
        action: &'static str,
        resource: &str,
        region: &Region,
    ) -> Error
    where
        E: aws_sdk_ecr::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        sdk::failure(e, action, resource, region, &self.inputs.setup).await
    }

    /// The region of `host`'s API calls: the one its name says, else (`--auth ecr`)
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`.
    fn region(&self, host: &str) -> Result<Region, Error> {
        if let Some(h) = parse_host(host) {
            return Ok(Region {
                name: h.region,
                from: format!("the registry host {host}"),
            });
        }
        let name = self.inputs.region.clone().ok_or_else(|| Error::MissingSetting {
            setting: "AWS_REGION".into(),
            hint: format!("{host} does not name an AWS region (MULTIARCH_AUTH=ecr); set AWS_REGION, e.g. eu-west-1"),
        })?;
        Ok(Region {
            name,
            from: "AWS_REGION / AWS_DEFAULT_REGION".into(),
        })
    }

    async fn client(&self, region: &Region) -> Result<aws_sdk_ecr::Client, Error> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&region.name) {
            return Ok(c.clone());
        }
        let sdk = sdk::config(region, self.inputs.request_timeout).await;
        let mut config =
            aws_sdk_ecr::config::Builder::from(&sdk).retry_classifier(UnknownHostIsFinal);
        if let Some(credentials) = self.oidc_credentials(&sdk, region).await? {
            config = config.credentials_provider(credentials);
        }
        let client = aws_sdk_ecr::Client::from_conf(config.build());
        clients.insert(region.name.clone(), client.clone());
        Ok(client)
    }

    /// GitLab OIDC: with `AWS_ROLE_ARN` and an id_token variable (and no SDK token file), assume
    /// the role by web identity once per run. Otherwise the SDK's default chain applies.
    async fn oidc_credentials(
        &self,
        sdk: &aws_config::SdkConfig,
        region: &Region,
    ) -> Result<Option<aws_credential_types::Credentials>, Error> {
        let (Some(role), Some(token)) = (&self.inputs.role_arn, &self.inputs.web_identity_token)
        else {
            return Ok(None);
        };
        self.oidc
            .get_or_try_init(|| async {
                let sts = aws_sdk_sts::config::Builder::from(sdk)
                    .retry_classifier(UnknownHostIsFinal)
                    .build();
                let sent = aws_sdk_sts::Client::from_conf(sts)
                    .assume_role_with_web_identity()
                    .role_arn(role)
                    .role_session_name(&self.inputs.session_name)
                    .web_identity_token(token.expose())
                    .send()
                    .await;
                let out = match sent {
                    Ok(out) => out,
                    Err(e) => {
                        return Err(self
                            .failure(e, "sts:AssumeRoleWithWebIdentity", role, region)
                            .await)
                    }
                };
                let c = out.credentials().ok_or_else(|| Error::Registry {
                    action: "assuming",
                    reference: role.clone(),
                    reason: "STS returned no credentials".into(),
                })?;
                info!(role = %role, session = %self.inputs.session_name, "assumed role with the GitLab OIDC token");
                Ok(Some(aws_credential_types::Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    std::time::SystemTime::try_from(*c.expiration()).ok(),
                    "gitlab-oidc",
                )))
            })
            .await
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_every_ecr_host_form() {
        let ecr = |a: &str, r: &str| {
            Some(EcrHost {
                account: a.into(),
                region: r.into(),
            })
        };
        for (host, want) in [
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                ecr("123456789012", "eu-west-1"),
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443",
                ecr("123456789012", "eu-west-1"),
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                ecr("123456789012", "cn-north-1"),
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                ecr("123456789012", "us-gov-west-1"),
            ),
            (
                "123456789012.dkr-ecr.us-east-1.on.aws",
                ecr("123456789012", "us-east-1"),
            ),
            (
                "123456789012.dkr-ecr-fips.us-east-2.on.aws",
                ecr("123456789012", "us-east-2"),
            ),
            (
                "123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM",
                ecr("123456789012", "eu-west-1"),
            ),
            ("public.ecr.aws", None),
            ("12345678901.dkr.ecr.eu-west-1.amazonaws.com", None),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example",
                None,
            ),
            ("123456789012.dkr-ecr.us-east-1.amazonaws.com", None),
            ("registry.gitlab.com", None),
            ("localhost:5000", None),
        ] {
            assert_eq!(parse_host(host), want, "{host}");
        }
    }
}
