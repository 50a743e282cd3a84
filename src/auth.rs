//! Credential resolution for a registry host, first match wins (DESIGN.md):
//! explicit `--username/--password`; an ECR token for ECR hosts (or every host with `--auth ecr`),
//! from AWS credentials; `$CI_REGISTRY` with the job's `CI_REGISTRY_USER/PASSWORD`;
//! `DOCKER_AUTH_CONFIG`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json` (`credHelpers`,
//! `credsStore`, then `auths`);
//! anonymous (the registry's bearer-token challenge still applies).
//!
//! Reads docker config files once, at start; logs in to ECR once per host (again after a 401). Never logs or formats a secret: values stay in
//! `Secret` and only `registry` exposes them, to oci-client.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use tracing::{debug, instrument, warn};

use crate::ecr::Ecr;
use crate::error::Error;
use crate::secret::Secret;
use crate::settings::CredentialInputs;

/// What to present to one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    Basic { username: String, password: Secret },
}

/// Credentials for every host of a run, with the docker config already read.
pub struct Credentials {
    inputs: CredentialInputs,
    ecr: Ecr,
    /// The credential found for each host so far.
    found: tokio::sync::Mutex<std::collections::HashMap<String, Credential>>,
    /// `auths` of the docker config in force, keys normalised to `host[:port]`, and its origin.
    docker: DockerCredentials,
    docker_origin: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

/// What a docker config offers: inline `auths`, per-host `credHelpers`, a default `credsStore`.
#[derive(Debug, Clone, Default)]
struct DockerCredentials {
    auths: Vec<(String, Credential)>,
    helpers: Vec<(String, String)>,
    store: Option<String>,
}

/// What `docker-credential-<helper> get` prints.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl Credentials {
    /// Reads `DOCKER_AUTH_CONFIG`, else the first docker config file that exists.
    pub fn load(inputs: &CredentialInputs) -> Result<Credentials, Error> {
        let (text, origin) = if let Some(inline) = &inputs.docker_auth_config {
            (
                Some(inline.expose().to_string()),
                "DOCKER_AUTH_CONFIG".to_string(),
            )
        } else {
            let mut found = (None, String::new());
            for path in &inputs.docker_config_files {
                match std::fs::read_to_string(path) {
                    Ok(t) => {
                        found = (Some(t), path.display().to_string());
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => {
                        return Err(Error::UnreadableFile {
                            setting: "docker config".into(),
                            path: path.clone(),
                            source,
                        })
                    }
                }
            }
            found
        };
        let docker = match text {
            Some(t) => parse_docker_config(&origin, &t)?,
            None => DockerCredentials::default(),
        };
        Ok(Credentials {
            ecr: Ecr::new(&inputs.aws),
            found: Default::default(),
            inputs: inputs.clone(),
            docker,
            docker_origin: origin,
        })
    }

    /// The credential for `host` (`registry.example.com`, `localhost:5000`, `docker.io`), found
    /// once per host and kept (an ECR login or a credential helper costs a call each time);
    /// `refresh` finds it again (the registry refused the one we had: an expired ECR token).
    #[instrument(skip_all, fields(registry = host))]
    pub async fn resolve(&self, host: &str, refresh: bool) -> Result<Credential, Error> {
        let mut found = self.found.lock().await;
        if let (Some(c), false) = (found.get(host), refresh) {
            return Ok(c.clone());
        }
        let (credential, origin) = if self.inputs.explicit.is_none() && self.ecr.applies_to(host) {
            let (username, password) = self.ecr.login(host).await?;
            (
                Credential::Basic { username, password },
                "ECR GetAuthorizationToken".to_string(),
            )
        } else {
            self.pick(host)
        };
        debug!(registry = host, source = origin, "credentials");
        found.insert(host.to_string(), credential.clone());
        Ok(credential)
    }

    /// ECR access (tag mutability) for the registry module.
    pub fn ecr(&self) -> &Ecr {
        &self.ecr
    }

    fn pick(&self, host: &str) -> (Credential, String) {
        if let Some((user, password)) = &self.inputs.explicit {
            return (
                basic(user, password),
                "MULTIARCH_USERNAME/MULTIARCH_PASSWORD".to_string(),
            );
        }
        if let Some((ci_host, user, password)) = &self.inputs.ci_registry {
            if same_host(ci_host, host) {
                return (
                    basic(user, password),
                    "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD".to_string(),
                );
            }
        }
        let helper = self
            .docker
            .helpers
            .iter()
            .find(|(k, _)| same_host(k, host))
            .map(|(_, h)| h);
        for name in helper.into_iter().chain(self.docker.store.as_ref()) {
            if let Some(c) = from_helper(name, host) {
                return (c, format!("docker-credential-{name}"));
            }
        }
        if let Some((_, c)) = self.docker.auths.iter().find(|(k, _)| same_host(k, host)) {
            return (c.clone(), self.docker_origin.clone());
        }
        (Credential::Anonymous, "anonymous".to_string())
    }
}

fn basic(user: &str, password: &Secret) -> Credential {
    Credential::Basic {
        username: user.to_string(),
        password: password.clone(),
    }
}

/// Parses a docker config.json; a broken one is a configuration error (its content never shown).
fn parse_docker_config(origin: &str, text: &str) -> Result<DockerCredentials, Error> {
    let bad = |reason: String| {
        Error::invalid(
            origin,
            "<content hidden>",
            reason,
            "it must be docker's config.json format: {\"auths\": {\"host\": {\"auth\": \"base64(user:password)\"}}}",
        )
    };
    let config: DockerConfig = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "not JSON at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let mut out = Vec::new();
    for (key, entry) in config.auths {
        let credential = match (entry.auth, entry.username, entry.password) {
            (Some(auth), _, _) if !auth.is_empty() => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        bad(format!("the auth of {key} is not base64 of user:password"))
                    })?;
                let (user, password) = decoded.split_once(':').ok_or_else(|| {
                    bad(format!("the auth of {key} is not base64 of user:password"))
                })?;
                basic(user, &Secret::new(password))
            }
            (_, Some(user), Some(password)) => basic(&user, &Secret::new(password)),
            _ => continue,
        };
        out.push((normalise_host(&key), credential));
    }
    Ok(DockerCredentials {
        auths: out,
        helpers: config
            .cred_helpers
            .into_iter()
            .map(|(host, helper)| (normalise_host(&host), helper))
            .collect(),
        store: config.creds_store.filter(|s| !s.is_empty()),
    })
}

/// Asks `docker-credential-<helper> get` for `host`'s credentials, as docker does. A helper that
/// is missing or has none is not an error: the next source is tried.
fn from_helper(helper: &str, host: &str) -> Option<Credential> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let server = if same_host(host, "docker.io") {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(helper = %program, error = %e, "credential helper named in the docker config cannot run");
            return None;
        }
    };
    let _ = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(server.as_bytes()));
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        debug!(helper = %program, registry = host, "the credential helper has nothing for this registry");
        return None;
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).ok()?;
    if answer.username == "<token>" {
        warn!(helper = %program, registry = host, "the helper returned an identity token, which multiarch cannot use; trying the next source");
        return None;
    }
    Some(basic(&answer.username, &Secret::new(answer.secret)))
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `http://h:5000/x` → `h:5000`.
fn normalise_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k).to_ascii_lowercase()
}

/// Host equality with Docker Hub's aliases.
fn same_host(a: &str, b: &str) -> bool {
    let canon = |h: &str| {
        let h = normalise_host(h);
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

    fn inputs() -> CredentialInputs {
        CredentialInputs::default()
    }

    fn creds(inputs: CredentialInputs) -> Credentials {
        Credentials::load(&inputs).unwrap()
    }

    fn user_of((c, _): (Credential, String)) -> Option<String> {
        match c {
            Credential::Basic { username, .. } => Some(username),
            Credential::Anonymous => None,
        }
    }

    #[test]
    fn first_match_wins_per_host() {
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
            ..inputs()
        };
        let c = creds(base.clone());
        assert_eq!(
            user_of(c.pick("registry.gitlab.example")).as_deref(),
            Some("gitlab-ci-token")
        );
        assert_eq!(user_of(c.pick("docker.io")).as_deref(), Some("cfguser"));
        assert_eq!(user_of(c.pick("localhost:5000")).as_deref(), Some("u2"));
        assert_eq!(c.pick("quay.io").0, Credential::Anonymous);
        let c = creds(CredentialInputs {
            explicit: Some(("me".into(), Secret::new("pw"))),
            ..base
        });
        assert_eq!(
            user_of(c.pick("registry.gitlab.example")).as_deref(),
            Some("me")
        );
    }

    #[test]
    fn reads_the_first_docker_config_file_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, r#"{"auths":{"r.example":{"auth":"YTpi"}}}"#).unwrap();
        let c = creds(CredentialInputs {
            docker_config_files: vec![dir.path().join("absent/config.json"), file],
            ..inputs()
        });
        assert_eq!(
            c.pick("r.example").0,
            Credential::Basic {
                username: "a".into(),
                password: Secret::new("b")
            }
        );
    }

    #[test]
    fn broken_docker_auth_config_is_a_usage_error_without_its_content() {
        let Err(e) = Credentials::load(&CredentialInputs {
            docker_auth_config: Some(Secret::new("{\"auths\": secret-stuff")),
            ..inputs()
        }) else {
            panic!("a broken DOCKER_AUTH_CONFIG must be refused")
        };
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("secret-stuff"), "{e}");
        assert!(e.to_string().contains("DOCKER_AUTH_CONFIG"), "{e}");
    }
}
