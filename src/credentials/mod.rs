//! Credential resolution for a registry host, first match wins (see the README):
//! explicit `--username/--password`; an ECR token for ECR hosts (or every host with `--auth ecr`),
//! from AWS credentials; `$CI_REGISTRY` with the job's `CI_REGISTRY_USER/PASSWORD`;
//! `DOCKER_AUTH_CONFIG`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json` (`credHelpers`,
//! `credsStore`, then `auths`); anonymous (the registry's bearer-token challenge still applies).
//!
//! The registry layers reach this through one boxed seam, `Credentials::get`, so a credential
//! lookup (an AWS SDK call, a helper process) is a type-erased future of its own rather than part
//! of every request's future. Docker config files are read once, at start; each host's credential
//! is found once and kept (again after the registry refused it: an expired ECR token). Secrets
//! stay in `Secret`; only the registry's auth layer exposes them, to build a header.

mod docker;

pub(crate) use docker::config_key;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use tracing::{debug, instrument};

use crate::ecr::Ecr;
use crate::error::{Error, Origin};
use crate::secret::Secret;
use crate::user_file;

/// The raw material of credential resolution (`auth` reads the files and picks).
#[derive(Debug, Clone, Default)]
pub(crate) struct CredentialInputs {
    /// `--username/--password`, `MULTIARCH_USERNAME/MULTIARCH_PASSWORD`: used for every registry.
    pub(crate) explicit: Option<(String, Secret)>,
    /// `CI_REGISTRY` with `CI_REGISTRY_USER/CI_REGISTRY_PASSWORD`: used for that host.
    pub(crate) ci_registry: Option<(String, String, Secret)>,
    /// Content of `DOCKER_AUTH_CONFIG` (GitLab's way to pass a docker config.json).
    pub(crate) docker_auth_config: Option<Secret>,
    /// Candidate docker config files, in order: `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`.
    pub(crate) docker_config_files: Vec<std::path::PathBuf>,
    pub(crate) aws: crate::ecr::AwsInputs,
}

/// What to present to one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    Anonymous,
    Basic { username: String, password: Secret },
}

/// A credential and where it came from (`CI_REGISTRY_USER/CI_REGISTRY_PASSWORD`, a helper, …),
/// so a refusal can say which credential was refused without showing it, and what to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) credential: Credential,
    pub(crate) origin: Origin,
}

/// The seam the registry layers use.
pub(crate) trait Credentials {
    /// The credential for `host` (`registry.example.com`, `localhost:5000`, `docker.io`);
    /// `refresh` looks again (the registry refused the one we had).
    fn get<'a>(&'a self, host: &'a str, refresh: bool) -> LocalBoxFuture<'a, Result<Found, Error>>;
}

/// The chain the README describes, with the docker config already read.
pub(crate) struct Chain {
    inputs: CredentialInputs,
    ecr: Arc<Ecr>,
    /// The credential found for each host so far.
    found: tokio::sync::Mutex<HashMap<String, Found>>,
    docker: docker::DockerConfig,
    /// `DOCKER_AUTH_CONFIG`, or the path of the docker config file read.
    docker_origin: String,
    /// Time limit of a credential helper (the request time limit).
    helper_limit: Duration,
}

impl Chain {
    /// Reads `DOCKER_AUTH_CONFIG`, else the first docker config file that exists.
    pub(crate) fn load(
        inputs: &CredentialInputs,
        ecr: Arc<Ecr>,
        helper_limit: Duration,
    ) -> Result<Chain, Error> {
        let (text, origin) = if let Some(inline) = &inputs.docker_auth_config {
            (
                Some(inline.expose().to_string()),
                "DOCKER_AUTH_CONFIG".to_string(),
            )
        } else {
            let mut found = (None, String::new());
            for path in &inputs.docker_config_files {
                if let Some(t) =
                    user_file::read_if_exists("docker config", path, user_file::MAX_BYTES)?
                {
                    found = (Some(t), path.display().to_string());
                    break;
                }
            }
            found
        };
        let docker = match text {
            Some(t) => docker::parse(&origin, &t)?,
            None => docker::DockerConfig::default(),
        };
        Ok(Chain {
            ecr,
            found: Default::default(),
            inputs: inputs.clone(),
            docker,
            docker_origin: origin,
            helper_limit,
        })
    }

    #[instrument(skip_all, fields(registry = host))]
    async fn resolve(&self, host: &str, refresh: bool) -> Result<Found, Error> {
        let mut found = self.found.lock().await;
        if let (Some(c), false) = (found.get(host), refresh) {
            return Ok(c.clone());
        }
        let chosen = if self.inputs.explicit.is_none() && self.ecr.applies_to(host) {
            let (username, password) = self.ecr.login(host).await?;
            Found {
                credential: Credential::Basic { username, password },
                origin: Origin::Ecr,
            }
        } else {
            self.pick(host).await
        };
        debug!(registry = host, source = %chosen.origin, "credentials");
        found.insert(host.to_string(), chosen.clone());
        Ok(chosen)
    }

    async fn pick(&self, host: &str) -> Found {
        let found = |credential, origin| Found { credential, origin };
        if let Some((user, password)) = &self.inputs.explicit {
            return found(basic(user, password), Origin::Explicit);
        }
        if let Some((ci_host, user, password)) = &self.inputs.ci_registry {
            if same_host(ci_host, host) {
                return found(basic(user, password), Origin::CiRegistry);
            }
        }
        for helper in self.docker.helpers_for(host) {
            if let Some(c) = docker::ask_helper(helper, host, self.helper_limit).await {
                return found(c, Origin::Helper(helper.into()));
            }
        }
        if let Some(c) = self.docker.auth_for(host) {
            return found(
                c.clone(),
                Origin::DockerConfig(self.docker_origin.as_str().into()),
            );
        }
        found(Credential::Anonymous, Origin::Anonymous)
    }
}

impl Credentials for Chain {
    fn get<'a>(&'a self, host: &'a str, refresh: bool) -> LocalBoxFuture<'a, Result<Found, Error>> {
        Box::pin(self.resolve(host, refresh))
    }
}

pub(crate) fn basic(user: &str, password: &Secret) -> Credential {
    Credential::Basic {
        username: user.to_string(),
        password: password.clone(),
    }
}

/// Host equality with Docker Hub's aliases.
pub(crate) fn same_host(a: &str, b: &str) -> bool {
    let canon = |h: &str| {
        let h = docker::normalise_host(h);
        match h.as_str() {
            "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            _ => h,
        }
    };
    canon(a) == canon(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(inputs: CredentialInputs) -> Chain {
        let ecr = Arc::new(Ecr::new(&inputs.aws));
        Chain::load(&inputs, ecr, Duration::from_secs(5)).unwrap()
    }

    fn user_of(f: Found) -> Option<String> {
        match f.credential {
            Credential::Basic { username, .. } => Some(username),
            Credential::Anonymous => None,
        }
    }

    #[tokio::test]
    async fn first_match_wins_per_host() {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode("cfguser:cfgpass");
        let docker = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"localhost:5000":{{"username":"u2","password":"p2"}}}}}}"#
        );
        let base = CredentialInputs {
            ci_registry: Some((
                "registry.gitlab.example".into(),
                "gitlab-ci-token".into(),
                Secret::new("tok"),
            )),
            docker_auth_config: Some(Secret::new(docker)),
            ..Default::default()
        };
        let c = chain(base.clone());
        let gitlab = c.pick("registry.gitlab.example").await;
        assert_eq!(gitlab.origin, Origin::CiRegistry);
        assert_eq!(user_of(gitlab).as_deref(), Some("gitlab-ci-token"));
        assert_eq!(
            user_of(c.pick("docker.io").await).as_deref(),
            Some("cfguser")
        );
        assert_eq!(
            user_of(c.pick("localhost:5000").await).as_deref(),
            Some("u2")
        );
        assert_eq!(c.pick("quay.io").await.credential, Credential::Anonymous);
        let c = chain(CredentialInputs {
            explicit: Some(("me".into(), Secret::new("pw"))),
            ..base
        });
        assert_eq!(
            user_of(c.pick("registry.gitlab.example").await).as_deref(),
            Some("me")
        );
    }

    #[tokio::test]
    async fn reads_the_first_docker_config_file_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, r#"{"auths":{"r.example":{"auth":"YTpi"}}}"#).unwrap();
        let c = chain(CredentialInputs {
            docker_config_files: vec![dir.path().join("absent/config.json"), file],
            ..Default::default()
        });
        assert_eq!(
            c.pick("r.example").await.credential,
            Credential::Basic {
                username: "a".into(),
                password: Secret::new("b")
            }
        );
    }

    #[test]
    fn broken_docker_auth_config_is_a_usage_error_without_its_content() {
        let inputs = CredentialInputs {
            docker_auth_config: Some(Secret::new("{\"auths\": secret-stuff")),
            ..Default::default()
        };
        let ecr = Arc::new(Ecr::new(&inputs.aws));
        let Err(e) = Chain::load(&inputs, ecr, Duration::from_secs(5)) else {
            panic!("a broken DOCKER_AUTH_CONFIG must be refused")
        };
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("secret-stuff"), "{e}");
        assert!(e.to_string().contains("DOCKER_AUTH_CONFIG"), "{e}");
    }

    #[tokio::test]
    async fn a_hanging_or_chatty_helper_is_stopped_and_the_next_source_tried() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path();
        for (name, script) in [
            ("hang", "#!/bin/sh\nsleep 60\n"),
            (
                "chatty",
                "#!/bin/sh\nyes '{\"Username\":\"u\",\"Secret\":\"s\"}'\n",
            ),
            (
                "good",
                "#!/bin/sh\ncat >/dev/null\necho '{\"Username\":\"u\",\"Secret\":\"s\"}'\n",
            ),
        ] {
            let path = bin.join(format!("docker-credential-{name}"));
            std::fs::write(&path, script).unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // Child processes find helpers through PATH; set it for this test process only.
        std::env::set_var("PATH", &path);
        let start = std::time::Instant::now();
        assert_eq!(
            docker::ask_helper("hang", "r.example", Duration::from_millis(300)).await,
            None
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(
            docker::ask_helper("chatty", "r.example", Duration::from_secs(5)).await,
            None
        );
        assert_eq!(
            docker::ask_helper("good", "r.example", Duration::from_secs(5)).await,
            Some(basic("u", &Secret::new("s")))
        );
    }
}
