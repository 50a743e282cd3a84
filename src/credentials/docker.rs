//! Docker's credential files and helpers, read as docker reads them: `config.json` `auths`
//! (inline `auth` or `username`/`password`), per-host `credHelpers`, a default `credsStore`, each
//! helper being `docker-credential-<name> get` on `PATH`.
//!
//! Helpers are programs we do not control: they run as child processes off the async runtime's
//! path, with the request time limit, a bound on what they print, and their stderr discarded.
//! A helper that is missing, fails, hangs or prints nonsense is a warning, and the next source is
//! tried. A broken config file is a usage error that never shows its content.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, warn};

use super::{basic, same_host, Credential};
use crate::error::Error;
use crate::secret::Secret;

/// Most a helper may print: an answer is a user name and a token.
const HELPER_OUTPUT_LIMIT: u64 = 64 * 1024;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(default)]
    auths: BTreeMap<String, Auth>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct Auth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// What `docker-credential-<helper> get` prints.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// What a docker config offers: inline `auths`, per-host `credHelpers`, a default `credsStore`.
#[derive(Debug, Clone, Default)]
pub(super) struct DockerConfig {
    pub(super) auths: Vec<(String, Credential)>,
    pub(super) helpers: Vec<(String, String)>,
    pub(super) store: Option<String>,
}

impl DockerConfig {
    /// The helpers to ask for `host`, in order: its `credHelpers` entry, then `credsStore`.
    pub(super) fn helpers_for(&self, host: &str) -> Vec<&str> {
        self.helpers
            .iter()
            .filter(|(k, _)| same_host(k, host))
            .map(|(_, h)| h.as_str())
            .chain(self.store.as_deref())
            .collect()
    }

    /// The inline `auths` entry for `host`.
    pub(super) fn auth_for(&self, host: &str) -> Option<&Credential> {
        self.auths
            .iter()
            .find(|(k, _)| same_host(k, host))
            .map(|(_, c)| c)
    }
}

/// Parses a docker config.json; a broken one is a configuration error (its content never shown).
pub(super) fn parse(origin: &str, text: &str) -> Result<DockerConfig, Error> {
    let bad = |reason: String| {
        Error::invalid(
            origin,
            "<content hidden>",
            reason,
            "it must be docker's config.json format: {\"auths\": {\"host\": {\"auth\": \"base64(user:password)\"}}}",
        )
    };
    let config: File = serde_json::from_str(text).map_err(|e| {
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
    Ok(DockerConfig {
        auths: out,
        helpers: config
            .cred_helpers
            .into_iter()
            .map(|(host, helper)| (normalise_host(&host), helper))
            .collect(),
        store: config.creds_store.filter(|s| !s.is_empty()),
    })
}

/// Asks `docker-credential-<helper> get` for `host`'s credentials, as docker does, within
/// `limit`. `None`: the helper has nothing (or failed, which is logged); the next source is tried.
pub(super) async fn ask_helper(helper: &str, host: &str, limit: Duration) -> Option<Credential> {
    let program = format!("docker-credential-{helper}");
    let server = config_key(host);
    let mut child = match tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(helper = %program, error = %e, "credential helper named in the docker config cannot run");
            return None;
        }
    };
    let mut stdin = child.stdin.take()?;
    let mut stdout = child.stdout.take()?;
    let talk = async {
        // A helper that does not read its input must not block us: write, then close.
        let _ = stdin.write_all(server.as_bytes()).await;
        drop(stdin);
        let mut out = Vec::new();
        (&mut stdout)
            .take(HELPER_OUTPUT_LIMIT + 1)
            .read_to_end(&mut out)
            .await
            .ok()?;
        Some(out)
    };
    let out = match tokio::time::timeout(limit, talk).await {
        Ok(Some(out)) => out,
        Ok(None) => {
            warn!(helper = %program, registry = host, "the credential helper failed; trying the next source");
            return None;
        }
        Err(_) => {
            warn!(helper = %program, registry = host, limit_s = limit.as_secs(), "the credential helper did not answer in time and was stopped; trying the next source");
            return None;
        }
    };
    if out.len() as u64 > HELPER_OUTPUT_LIMIT {
        let _ = child.kill().await;
        warn!(helper = %program, registry = host, "the credential helper printed more than {HELPER_OUTPUT_LIMIT} bytes and was stopped; trying the next source");
        return None;
    }
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => status,
        _ => {
            warn!(helper = %program, registry = host, "the credential helper did not exit; trying the next source");
            return None;
        }
    };
    if !status.success() {
        debug!(helper = %program, registry = host, "the credential helper has nothing for this registry");
        return None;
    }
    let Ok(answer) = serde_json::from_slice::<HelperAnswer>(&out) else {
        warn!(helper = %program, registry = host, "the credential helper's answer is not {{\"Username\", \"Secret\"}} JSON; trying the next source");
        return None;
    };
    if answer.username == "<token>" {
        warn!(helper = %program, registry = host, "the helper returned an identity token, which multiarch cannot use; trying the next source");
        return None;
    }
    Some(basic(&answer.username, &Secret::new(answer.secret)))
}

/// The name docker gives `host` in its config's `auths` and to credential helpers: Docker Hub is
/// `https://index.docker.io/v1/` (under any of its aliases), every other registry its host.
pub(crate) fn config_key(host: &str) -> &str {
    if same_host(host, "docker.io") {
        "https://index.docker.io/v1/"
    } else {
        host
    }
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `http://h:5000/x` → `h:5000`.
pub(super) fn normalise_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k).to_ascii_lowercase()
}
