//! How to reach registries, shared by every command: plain-HTTP hosts, extra CA certificates,
//! the request budget, and the raw material of credentials (explicit, GitLab job, docker config,
//! AWS/GitLab OIDC). Pure like the rest of `settings`: the environment arrives as a map.

use std::path::PathBuf;
use std::time::Duration;

use super::{list, parse_duration, pick, var, Env};
use crate::cli::AccessArgs;
use crate::error::Error;
use crate::secret::Secret;

pub const DEFAULT_RETRIES: u32 = 5;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Hosts (host[:port]) reached over plain HTTP.
    pub insecure: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub credentials: CredentialInputs,
    /// The request budget: retries of one transiently failing request, and its time limit.
    /// (The polling budget, `Plan::timeout`, is separate: a missing source is not a failure.)
    pub retries: u32,
    pub request_timeout: Duration,
}

/// The raw material of credential resolution (`auth` reads the files and picks).
#[derive(Debug, Clone, Default)]
pub struct CredentialInputs {
    /// `--username/--password`, `MULTIARCH_USERNAME/MULTIARCH_PASSWORD`: used for every registry.
    pub explicit: Option<(String, Secret)>,
    /// `CI_REGISTRY` with `CI_REGISTRY_USER/CI_REGISTRY_PASSWORD`: used for that host.
    pub ci_registry: Option<(String, String, Secret)>,
    /// Content of `DOCKER_AUTH_CONFIG` (GitLab's way to pass a docker config.json).
    pub docker_auth_config: Option<Secret>,
    /// Candidate docker config files, in order: `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`.
    pub docker_config_files: Vec<PathBuf>,
    pub aws: AwsInputs,
}

/// What ECR authentication needs beyond the AWS SDK's own environment (keys, profiles, token files).
#[derive(Debug, Clone, Default)]
pub struct AwsInputs {
    /// `--auth ecr`: use an ECR token for every registry host.
    pub force_ecr: bool,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`: for hosts that do not name a region.
    pub region: Option<String>,
    /// GitLab OIDC: the role to assume with `web_identity_token` (only when the SDK has no token
    /// file of its own, `AWS_WEB_IDENTITY_TOKEN_FILE`).
    pub role_arn: Option<String>,
    pub web_identity_token: Option<Secret>,
    /// Says which project and job assumed the role (CloudTrail shows it).
    pub session_name: String,
}

/// Resolves how to reach registries (shared by every command).
pub fn access(args: &AccessArgs, env: &Env) -> Result<Access, Error> {
    let mut insecure: Vec<String> = args
        .insecure_registries
        .iter()
        .flat_map(|s| list(s))
        .map(str::to_string)
        .collect();
    if let Some(v) = var(env, "MULTIARCH_INSECURE_REGISTRIES") {
        insecure.extend(list(v).map(str::to_string));
    }
    let ca_file = args
        .ca_file
        .clone()
        .or_else(|| var(env, "MULTIARCH_CA_FILE").map(PathBuf::from));

    let username = pick(args.username.as_deref(), env, "MULTIARCH_USERNAME").map(|(u, _)| u);
    let password = pick(args.password.as_deref(), env, "MULTIARCH_PASSWORD").map(|(p, _)| p);
    let explicit =
        match (username, password) {
            (Some(u), Some(p)) => Some((u.to_string(), Secret::new(p))),
            (None, None) => None,
            (Some(_), None) => return Err(Error::MissingSetting {
                setting: "--password / MULTIARCH_PASSWORD".into(),
                hint: "a user name was given; give its password or token too (prefer the variable)"
                    .into(),
            }),
            (None, Some(_)) => {
                return Err(Error::MissingSetting {
                    setting: "--username / MULTIARCH_USERNAME".into(),
                    hint: "a password was given; give the user name too".into(),
                })
            }
        };
    let ci_registry = match (
        var(env, "CI_REGISTRY"),
        var(env, "CI_REGISTRY_USER"),
        var(env, "CI_REGISTRY_PASSWORD"),
    ) {
        (Some(host), Some(user), Some(password)) => {
            Some((host.to_string(), user.to_string(), Secret::new(password)))
        }
        _ => None,
    };
    let mut docker_config_files = Vec::new();
    if let Some(dir) = var(env, "DOCKER_CONFIG") {
        docker_config_files.push(PathBuf::from(dir).join("config.json"));
    }
    if let Some(home) = var(env, "HOME") {
        docker_config_files.push(PathBuf::from(home).join(".docker/config.json"));
    }
    let retries = match pick(args.retries.as_deref(), env, "MULTIARCH_RETRIES") {
        Some((r, _)) => r
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 20)
            .ok_or_else(|| {
                Error::invalid(
                    "--retries / MULTIARCH_RETRIES",
                    r,
                    "not a whole number from 0 to 20",
                    "for example 5",
                )
            })?,
        None => DEFAULT_RETRIES,
    };
    let request_timeout = match pick(
        args.request_timeout.as_deref(),
        env,
        "MULTIARCH_REQUEST_TIMEOUT",
    ) {
        Some((t, _)) => Some(parse_duration(
            "--request-timeout / MULTIARCH_REQUEST_TIMEOUT",
            t,
        )?)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::invalid(
                "--request-timeout / MULTIARCH_REQUEST_TIMEOUT",
                t,
                "must be more than 0",
                "for example 30s",
            )
        })?,
        None => DEFAULT_REQUEST_TIMEOUT,
    };
    let force_ecr = match pick(args.auth.as_deref(), env, "MULTIARCH_AUTH") {
        None => false,
        Some((mode, _)) => match mode.trim().to_ascii_lowercase().as_str() {
            "auto" => false,
            "ecr" => true,
            _ => {
                return Err(Error::invalid(
                    "--auth / MULTIARCH_AUTH",
                    mode,
                    "unknown mode",
                    "use auto or ecr",
                ))
            }
        },
    };
    let token_var = var(env, "MULTIARCH_OIDC_TOKEN_VAR").unwrap_or("GITLAB_OIDC_TOKEN");
    let aws = AwsInputs {
        force_ecr,
        region: var(env, "AWS_REGION")
            .or_else(|| var(env, "AWS_DEFAULT_REGION"))
            .map(str::to_string),
        role_arn: var(env, "AWS_ROLE_ARN").map(str::to_string),
        web_identity_token: var(env, "AWS_WEB_IDENTITY_TOKEN_FILE")
            .is_none()
            .then(|| var(env, token_var).map(Secret::new))
            .flatten(),
        session_name: session_name(var(env, "CI_PROJECT_PATH"), var(env, "CI_JOB_ID")),
    };
    Ok(Access {
        retries,
        request_timeout,
        insecure,
        ca_file,
        credentials: CredentialInputs {
            explicit,
            ci_registry,
            docker_auth_config: var(env, "DOCKER_AUTH_CONFIG").map(Secret::new),
            docker_config_files,
            aws,
        },
    })
}

/// `multiarch-<project path>-<job id>`, within STS's 64 characters of `[\w+=,.@-]`.
pub(super) fn session_name(project: Option<&str>, job: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '.'
                }
            })
            .collect()
    };
    let job = job.map(|j| format!("-{}", clean(j))).unwrap_or_default();
    let mut name = format!(
        "multiarch-{}",
        project.map(clean).unwrap_or_else(|| "local".into())
    );
    name.truncate(64usize.saturating_sub(job.len()));
    name + &job
}
