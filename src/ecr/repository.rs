//! What ECR's DescribeRepositories says of a repository, asked once per run: whether it exists
//! (ECR does not create repositories on push, so a missing one ends the run at the push-access
//! check, exit 2, with the command that creates it) and its tag mutability (an immutable tag is
//! refused before anything is pushed).
//!
//! Only an answer about the account the registry host names is the registry's own: with
//! `MULTIARCH_AUTH=ecr` (a VPC endpoint name, a proxy) the question goes to the credentials'
//! account, which may not be the registry's, so "not found" there is left for the push to meet.
//! `ecr:DescribeRepositories` is optional: denied, nothing is known (a warning, once).

use aws_sdk_ecr::error::ProvideErrorMetadata as _;
use aws_sdk_ecr::types::ImageTagMutability;
use tracing::{debug, warn};

use super::{parse_host, Ecr};
use crate::error::{Creator, Error};
use crate::tag_rule::TagRule;

/// What DescribeRepositories said of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Described {
    Found(TagRule),
    /// RepositoryNotFoundException, with its message.
    NotFound(String),
    /// The identity may not ask (`ecr:DescribeRepositories` is not in its policy).
    Denied,
}

impl Ecr {
    /// Whether `repository` exists, asked where the answer is the registry's own (the host names
    /// its account): a missing one is an error naming how to create it. Denied, failed, or asked
    /// of a host that names no account, nothing is known and the run goes on: the registry
    /// answers the push anyway, and a failure that matters (no credentials, an endpoint that
    /// does not exist) is met by the login too.
    /// `action` says what the run was doing, as the error's first words.
    pub async fn check_repository(
        &self,
        action: &'static str,
        host: &str,
        repository: &str,
    ) -> Result<(), Error> {
        if parse_host(host).is_none() {
            return Ok(());
        }
        let described = match self.describe(host, repository).await {
            Ok(d) => d,
            Err(e) => {
                debug!(repository, error = %e, "DescribeRepositories failed: whether the repository exists is left to the push");
                return Ok(());
            }
        };
        match described {
            Described::NotFound(message) => Err(missing(action, host, repository, &message)),
            Described::Found(_) | Described::Denied => Ok(()),
        }
    }

    /// The tag mutability of `repository`. Denied (warned once, by `describe`) → assume mutable
    /// (the registry will still refuse an immutable tag with `TAG_INVALID`, explained the same way).
    pub async fn tag_rule(&self, host: &str, repository: &str) -> Result<TagRule, Error> {
        match self.describe(host, repository).await? {
            Described::Found(rule) => Ok(rule),
            Described::NotFound(message) if parse_host(host).is_some() => Err(missing(
                "checking tag mutability of",
                host,
                repository,
                &message,
            )),
            Described::NotFound(_) => {
                debug!(
                    repository,
                    "no such repository in the credentials' ECR account: the push will tell"
                );
                Ok(TagRule::Mutable)
            }
            Described::Denied => Ok(TagRule::Mutable),
        }
    }

    /// DescribeRepositories for `repository` of `host` (in the account the host names, else the
    /// credentials'), asked once per run.
    async fn describe(&self, host: &str, repository: &str) -> Result<Described, Error> {
        let key = format!("{host}/{repository}");
        if let Some(known) = self.described.lock().await.get(&key) {
            return Ok(known.clone());
        }
        let region = self.region(host)?;
        let client = self.client(&region).await?;
        let mut req = client.describe_repositories().repository_names(repository);
        if let Some(h) = parse_host(host) {
            req = req.registry_id(h.account);
        }
        let described = match req.send().await {
            Ok(out) => Described::Found(out.repositories().first().map_or(TagRule::Mutable, rule)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                Described::NotFound(
                    e.as_service_error()
                        .and_then(|s| s.message())
                        .unwrap_or_default()
                        .to_string(),
                )
            }
            Err(e) => match self
                .failure(e, "ecr:DescribeRepositories", repository, &region)
                .await
            {
                // Denied this action itself; a denied login or role (another action) is the
                // run's failure, not this check's.
                Error::EcrDenied {
                    action: "ecr:DescribeRepositories",
                    ..
                } => {
                    // Said once per repository: the answer is kept.
                    warn!(
                        repository,
                        "ecr:DescribeRepositories denied: whether the repository exists and whether its tags are immutable cannot be checked before pushing (the push will tell)"
                    );
                    Described::Denied
                }
                other => return Err(other),
            },
        };
        debug!(repository, ?described, "DescribeRepositories");
        self.described.lock().await.insert(key, described.clone());
        Ok(described)
    }
}

/// A repository's tag mutability, with its exclusion filters.
fn rule(repo: &aws_sdk_ecr::types::Repository) -> TagRule {
    let filters: Vec<String> = repo
        .image_tag_mutability_exclusion_filters()
        .iter()
        .map(|f| f.filter().to_string())
        .collect();
    match repo.image_tag_mutability() {
        Some(ImageTagMutability::Immutable) if filters.is_empty() => TagRule::Immutable,
        Some(ImageTagMutability::Immutable | ImageTagMutability::ImmutableWithExclusion) => {
            TagRule::ImmutableExcept(filters)
        }
        Some(ImageTagMutability::MutableWithExclusion) => TagRule::MutableExcept(filters),
        Some(ImageTagMutability::Mutable) if !filters.is_empty() => TagRule::MutableExcept(filters),
        _ => TagRule::Mutable,
    }
}

/// The repository `path` of the ECR registry `host` does not exist, as DescribeRepositories said
/// (its `message`) while `action`.
fn missing(action: &'static str, host: &str, path: &str, message: &str) -> Error {
    Error::RepositoryMissing {
        action,
        at: format!("{host}/{path}"),
        path: path.to_string(),
        reason: format!("ecr:DescribeRepositories answered RepositoryNotFoundException: {message}"),
        creator: Creator::Ecr {
            region: parse_host(host).map(|h| h.region),
        },
    }
}
