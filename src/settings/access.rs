//! How to reach registries, shared by every command: plain-HTTP hosts, extra CA certificates,
//! the request budget, and the raw material of credentials (explicit, GitLab job, docker config,
//! AWS/GitLab OIDC). Pure like the rest of `settings`: the environment arrives as a map.

use std::path::PathBuf;
use std::time::Duration;

use super::table::{
    Cmd, AUTH, CA_FILE, INSECURE_REGISTRY, PASSWORD, REQUEST_TIMEOUT, RETRIES, USERNAME,
};
use super::values::{list, parse_duration, Inputs};
use super::{environment, insecure};
use crate::credentials::CredentialInputs;
use crate::ecr::{AwsInputs, AwsSetup, Held};
use crate::error::Error;
use crate::secret::Secret;

pub(crate) const DEFAULT_RETRIES: u32 = 5;
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Access {
    /// Hosts (host[:port]) reached over plain HTTP.
    pub(crate) insecure: Vec<String>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) credentials: CredentialInputs,
    /// The request budget: retries of one transiently failing request, and its time limit.
    /// (The polling budget, `Plan::timeout`, is separate: a missing source is not a failure.)
    pub(crate) retries: u32,
    pub(crate) request_timeout: Duration,
    /// What to check when a registry host does not resolve: where this command's hosts were
    /// named (settings for push, plan and wait; the argument of inspect and login).
    pub(crate) hosts_from: &'static str,
}

/// Resolves how to reach registries (shared by every command).
pub(crate) fn access(inputs: &Inputs) -> Result<Access, Error> {
    let insecure = inputs
        .each(&INSECURE_REGISTRY)
        .into_iter()
        .flat_map(|(v, origin)| list(v).map(move |entry| insecure::host(&origin.name(), entry)))
        .collect::<Result<Vec<String>, Error>>()?;
    let ca_file = inputs.get(&CA_FILE).map(|f| PathBuf::from(f.text));

    let username = inputs.get(&USERNAME).map(|f| f.text);
    let password = inputs.get(&PASSWORD).map(|f| f.text);
    let explicit =
        match (username, password) {
            (Some(u), Some(p)) => Some((u.to_string(), Secret::new(p))),
            (None, None) => None,
            (Some(_), None) => return Err(Error::MissingSetting {
                setting: PASSWORD.both(),
                hint: "a user name was given; give its password or token too (prefer the variable)"
                    .into(),
            }),
            (None, Some(_)) => {
                return Err(Error::MissingSetting {
                    setting: USERNAME.both(),
                    hint: "a password was given; give the user name too".into(),
                })
            }
        };
    let ci_registry = match (
        inputs.var("CI_REGISTRY"),
        inputs.var("CI_REGISTRY_USER"),
        inputs.var("CI_REGISTRY_PASSWORD"),
    ) {
        (Some(host), Some(user), Some(password)) => {
            Some((host.to_string(), user.to_string(), Secret::new(password)))
        }
        _ => None,
    };
    let mut docker_config_files = Vec::new();
    if let Some(dir) = inputs.var("DOCKER_CONFIG") {
        docker_config_files.push(PathBuf::from(dir).join("config.json"));
    }
    if let Some(home) = inputs.var("HOME") {
        docker_config_files.push(PathBuf::from(home).join(".docker/config.json"));
    }
    let retries = match inputs.get(&RETRIES) {
        Some(f) => f
            .text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 20)
            .ok_or_else(|| {
                Error::invalid(
                    f.origin.name(),
                    f.text,
                    "not a whole number from 0 to 20",
                    "for example 5",
                )
            })?,
        None => DEFAULT_RETRIES,
    };
    let request_timeout = match inputs.get(&REQUEST_TIMEOUT) {
        Some(f) => Some(parse_duration(&f.origin.name(), f.text)?)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                Error::invalid(
                    f.origin.name(),
                    f.text,
                    "must be more than 0",
                    "for example 30s",
                )
            })?,
        None => DEFAULT_REQUEST_TIMEOUT,
    };
    let force_ecr = inputs.choice(&AUTH, "unknown mode")? == Some(AuthMode::Ecr);
    let token_var = environment::token_var(inputs.env);
    let aws = AwsInputs {
        force_ecr,
        region: inputs
            .var("AWS_REGION")
            .or_else(|| inputs.var("AWS_DEFAULT_REGION"))
            .map(str::to_string),
        role_arn: inputs.var("AWS_ROLE_ARN").map(str::to_string),
        web_identity_token: inputs
            .var("AWS_WEB_IDENTITY_TOKEN_FILE")
            .is_none()
            .then(|| inputs.var(token_var).map(Secret::new))
            .flatten(),
        session_name: session_name(inputs.var("CI_PROJECT_PATH"), inputs.var("CI_JOB_ID")),
        setup: aws_setup(inputs, token_var),
        request_timeout,
    };
    Ok(Access {
        hosts_from: hosts_from(inputs.given.cmd),
        retries,
        request_timeout,
        insecure,
        ca_file,
        credentials: CredentialInputs {
            explicit,
            ci_registry,
            docker_auth_config: inputs.var("DOCKER_AUTH_CONFIG").map(Secret::new),
            docker_config_files,
            aws,
        },
    })
}

/// Where a command's registry hosts were named, for the hint of one that does not resolve.
fn hosts_from(cmd: Option<Cmd>) -> &'static str {
    match cmd {
        Some(Cmd::Inspect) => "the registry host in the reference given to multiarch inspect",
        Some(Cmd::Login) => "the host given to multiarch login",
        Some(Cmd::Push | Cmd::Plan | Cmd::Wait) | None => {
            "the registry host in MULTIARCH_IMAGE (--image), the source template, MULTIARCH_SOURCE_* or the spec"
        }
    }
}

/// What the job set for the AWS SDK's credential chain and the GitLab OIDC exchange (never a
/// value), for saying what is missing when no credentials are found.
fn aws_setup(inputs: &Inputs, token_var: &str) -> AwsSetup {
    // The SDK reads these itself; remembered so that an endpoint echoing them back is redacted.
    for secret in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(value) = inputs.var(secret) {
            crate::secret::remember(value);
        }
    }
    let path = |name| inputs.var(name).map(str::to_string);
    AwsSetup {
        access_key_id: inputs.var("AWS_ACCESS_KEY_ID").is_some(),
        secret_access_key: inputs.var("AWS_SECRET_ACCESS_KEY").is_some(),
        profile: path("AWS_PROFILE"),
        config_file: path("AWS_CONFIG_FILE"),
        credentials_file: path("AWS_SHARED_CREDENTIALS_FILE"),
        role_arn: inputs.var("AWS_ROLE_ARN").is_some(),
        token_file: path("AWS_WEB_IDENTITY_TOKEN_FILE"),
        token_var: token_var.to_string(),
        token_var_renamed: token_var != environment::DEFAULT_TOKEN_VAR,
        token: match inputs.env.get(token_var) {
            None => Held::Unset,
            Some(v) if v.trim().is_empty() => Held::Empty,
            Some(_) => Held::Value,
        },
    }
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

/// `--auth`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuthMode {
    Auto,
    Ecr,
}
