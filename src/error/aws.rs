//! Why no AWS credentials were found, in terms of what the job set: the variable that is missing
//! or empty, the file that cannot be read (with the system's error), the profile no file defines,
//! the config file that does not parse. Each says what to change; the `id_tokens:` lines a job
//! needs carry the variable the run reads. Pure: `ecr` finds out which case it is.

use std::fmt;

/// What is missing or broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Missing {
    /// `AWS_ROLE_ARN` is set (and no token file), but the id_token variable is not (or empty).
    IdToken { var: IdTokenVar, empty: bool },
    /// The id_token variable holds a token, but `AWS_ROLE_ARN` is not set.
    RoleArn { var: IdTokenVar },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` names a file that cannot be read; `var`: the id_token
    /// variable, when it holds a token (the file wins over it).
    TokenFileUnreadable {
        path: String,
        os: String,
        var: Option<IdTokenVar>,
    },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` is set without `AWS_ROLE_ARN`.
    TokenFileWithoutRole { path: String },
    /// The SDK's web identity exchange with the token file failed (STS refused it, …).
    WebIdentityFailed { path: String, error: String },
    /// The AWS config or credentials file cannot be read or parsed: the SDK loader's words.
    ProfilesBroken { error: String },
    /// `AWS_PROFILE` names a profile that `files` do not define.
    ProfileUndefined { profile: String, files: String },
    /// `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` name files that do not exist.
    ProfileFilesAbsent { files: Vec<String> },
    /// `AWS_PROFILE` names a profile that gives no credentials.
    ProfileWithoutCredentials { profile: String, files: String },
    /// `AWS_PROFILE` names a role profile whose `source_profile` the files do not define.
    SourceProfileUndefined {
        profile: String,
        source: String,
        files: String,
    },
    /// One of `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` without the other.
    HalfKey {
        set: &'static str,
        unset: &'static str,
    },
    /// A provider of the SDK's chain failed otherwise: its words.
    ChainFailed { error: String },
    /// Nothing is set that gives credentials.
    Nothing { var: IdTokenVar },
}

/// The variable the GitLab id_token is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdTokenVar {
    pub(crate) name: String,
    /// Named by `MULTIARCH_OIDC_TOKEN_VAR` (else the default, `GITLAB_OIDC_TOKEN`).
    pub(crate) renamed: bool,
}

impl fmt::Display for IdTokenVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.renamed {
            true => write!(f, "{} (named by MULTIARCH_OIDC_TOKEN_VAR)", self.name),
            false => f.write_str(&self.name),
        }
    }
}

impl Missing {
    /// What is wrong, as one clause.
    pub(crate) fn problem(&self) -> String {
        match self {
            Missing::IdToken { var, empty } => format!(
                "AWS_ROLE_ARN is set, but {var}, which must hold the job's GitLab id_token, is {}",
                if *empty { "empty" } else { "not set" }
            ),
            Missing::RoleArn { var } => format!(
                "{var} holds a GitLab id_token, but AWS_ROLE_ARN, the role to assume with it, is not set"
            ),
            Missing::TokenFileUnreadable { path, os, .. } => {
                format!("AWS_WEB_IDENTITY_TOKEN_FILE names {path}, which cannot be read: {os}")
            }
            Missing::TokenFileWithoutRole { path } => format!(
                "AWS_WEB_IDENTITY_TOKEN_FILE is set ({path}), but AWS_ROLE_ARN, the role to assume with it, is not"
            ),
            Missing::WebIdentityFailed { path, error } => format!(
                "assuming AWS_ROLE_ARN with the token in AWS_WEB_IDENTITY_TOKEN_FILE ({path}) failed: {error}"
            ),
            Missing::ProfilesBroken { error } => {
                format!("the AWS config files cannot be used: {error}")
            }
            Missing::ProfileUndefined { profile, files } => {
                format!("AWS_PROFILE names the profile {profile}, which {files} do not define")
            }
            Missing::ProfileFilesAbsent { files } => match files.as_slice() {
                [one] => format!("{one} does not exist, so no profile was read from it"),
                many => format!(
                    "{} do not exist, so no profile was read from them",
                    many.join(" and ")
                ),
            },
            Missing::ProfileWithoutCredentials { profile, files } => format!(
                "AWS_PROFILE names the profile {profile}, which gives no credentials ({files})"
            ),
            Missing::SourceProfileUndefined {
                profile,
                source,
                files,
            } => format!(
                "AWS_PROFILE names the profile {profile}, whose source_profile {source} {files} do not define"
            ),
            Missing::HalfKey { set, unset } => format!("{set} is set, but {unset} is not"),
            Missing::ChainFailed { error } => {
                format!("the AWS SDK's credential chain failed: {error}")
            }
            Missing::Nothing { var } => format!(
                "none is set; tried AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, AWS_ROLE_ARN with {} or AWS_WEB_IDENTITY_TOKEN_FILE, the container role (ECS/EKS), the instance role (IMDS)",
                var.name
            ),
        }
    }

    /// What to change.
    pub(crate) fn hint(&self) -> String {
        match self {
            Missing::IdToken { var, .. } => format!(
                "request the id_token in the job, with the audience the role's trust policy expects{}:\n{}",
                components(var),
                id_tokens(var)
            ),
            Missing::RoleArn { .. } => "set AWS_ROLE_ARN to the role's ARN (arn:aws:iam::<account>:role/<name>), e.g. as a CI/CD variable (the components: the aws-role-arn input)".into(),
            Missing::TokenFileUnreadable { var: Some(var), .. } => format!(
                "{} holds an id_token, but AWS_WEB_IDENTITY_TOKEN_FILE comes first: unset AWS_WEB_IDENTITY_TOKEN_FILE, or write the token to that file before multiarch runs",
                var.name
            ),
            Missing::TokenFileUnreadable { var: None, .. } => "write the token to that file before multiarch runs, or unset AWS_WEB_IDENTITY_TOKEN_FILE and request a GitLab id_token (id_tokens:, see the README)".into(),
            Missing::TokenFileWithoutRole { .. } | Missing::WebIdentityFailed { .. } => {
                "set AWS_ROLE_ARN to the role's ARN; its trust policy must accept the token (the aud and sub conditions)".into()
            }
            Missing::ProfilesBroken { .. } => "fix that file, or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at other files".into(),
            Missing::ProfileUndefined { .. } => {
                "name a profile those files define, or unset AWS_PROFILE".into()
            }
            Missing::ProfileFilesAbsent { .. } => {
                "point the variable at the file (a File-type CI/CD variable gives a path), or unset it to read ~/.aws".into()
            }
            Missing::ProfileWithoutCredentials { .. } => "give the profile credentials (aws_access_key_id/aws_secret_access_key, role_arn with a source_profile or credential_source, credential_process), or unset AWS_PROFILE".into(),
            Missing::SourceProfileUndefined { source, .. } => format!(
                "define the profile {source} with credentials (in ~/.aws/credentials as [{source}], in the config file as [profile {source}]), or name one that exists in source_profile"
            ),
            Missing::HalfKey { .. } => {
                "set both (as masked CI/CD variables), or neither".into()
            }
            Missing::ChainFailed { .. } => {
                "fix what the message names in the AWS_* variables or ~/.aws files".into()
            }
            Missing::Nothing { var } => format!(
                "in GitLab set AWS_ROLE_ARN and request the id_token{}:\n{}\n  or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                components(var),
                id_tokens(var)
            ),
        }
    }
}

/// How AWS refused the credentials themselves, from its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The access key is unknown, or the secret does not match it.
    Key,
    /// A session's credentials (a key with AWS_SESSION_TOKEN, an assumed role's) expired.
    Expired,
    /// The request's time is too far from AWS's (the runner's clock).
    Clock,
    /// STS does not accept the web identity token for the role (trust policy, audience).
    IdToken,
    /// The job's id_token expired before STS saw it.
    IdTokenExpired,
}

impl Refused {
    /// The credential problem an AWS error code names for `action`, if it names one (STS's
    /// expired token, assuming a role with an id_token, is the id_token's).
    pub(crate) fn of(code: &str, action: &str) -> Option<Refused> {
        match Refused::of_code(code) {
            Some(Refused::Expired) if action == "sts:AssumeRoleWithWebIdentity" => {
                Some(Refused::IdTokenExpired)
            }
            other => other,
        }
    }

    /// The credential problem an AWS error code names, if it names one.
    pub(crate) fn of_code(code: &str) -> Option<Refused> {
        Some(match code {
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken" => Refused::Key,
            "ExpiredToken" | "ExpiredTokenException" => Refused::Expired,
            "RequestExpired" => Refused::Clock,
            "InvalidIdentityToken" | "IDPRejectedClaim" => Refused::IdToken,
            _ => return None,
        })
    }

    /// What is wrong, as one clause.
    pub(crate) fn problem(&self) -> &'static str {
        match self {
            Refused::Key => "AWS does not know the access key, or its secret does not match",
            Refused::Expired => "the credentials have expired",
            Refused::Clock => "the request's time is too far from AWS's",
            Refused::IdToken => "STS does not accept the job's GitLab id_token for the role",
            Refused::IdTokenExpired => "the job's GitLab id_token has expired",
        }
    }

    /// What to change.
    pub(crate) fn hint(&self) -> &'static str {
        match self {
            Refused::Key => "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (mistyped, rotated or deleted keys; masked CI/CD variables hold them exactly) and AWS_SESSION_TOKEN when the key is temporary; no IAM permission changes this",
            Refused::Expired => "temporary credentials (a key with AWS_SESSION_TOKEN) last hours at most: store long-lived keys, or use GitLab OIDC (AWS_ROLE_ARN and an id_token), which gets fresh ones every job",
            Refused::Clock => "fix the runner's clock (NTP): AWS refuses requests signed more than 5 minutes off",
            Refused::IdToken => "the role's trust policy must trust GitLab's OIDC provider and accept the token's claims: aud must be the audience the job requests (id_tokens: aud, or the components' oidc-audience input), and the sub condition must match this project and ref (project_path:group/app:ref_type:branch:ref:main)",
            Refused::IdTokenExpired => "GitLab's id_tokens are made for one job and expire with it: re-run the job; a token written to AWS_WEB_IDENTITY_TOKEN_FILE must be the job's own, not one from an earlier job",
        }
    }
}

/// What to change when AWS denies `action`: a permission for the job's identity, or for
/// assuming a role, the role's trust policy.
pub(crate) fn denied_hint(action: &str) -> String {
    match action {
        "sts:AssumeRoleWithWebIdentity" => "the role's trust policy must allow this job to assume it: trust GitLab's OIDC provider (Federated), allow sts:AssumeRoleWithWebIdentity, and match the token's aud and sub conditions; check that AWS_ROLE_ARN names that role".into(),
        _ => format!("the job's AWS identity needs the IAM permission {action} (see the README's minimal policy); with GitLab OIDC also check the role's trust policy (the aud and sub conditions)"),
    }
}

/// The components request the default variable: said only when it is the one read.
fn components(var: &IdTokenVar) -> &'static str {
    match var.renamed {
        true => "",
        false => " (the components: oidc: true)",
    }
}

/// The job's `id_tokens:` lines that fill `var`, indented under a hint.
fn id_tokens(var: &IdTokenVar) -> String {
    format!(
        "    id_tokens:\n      {}:\n        aud: https://gitlab.com",
        var.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, renamed: bool) -> IdTokenVar {
        IdTokenVar {
            name: name.into(),
            renamed,
        }
    }

    #[test]
    fn refused_credentials_are_told_from_missing_permissions_by_aws_error_code() {
        for (code, want) in [
            ("UnrecognizedClientException", Some(Refused::Key)),
            ("InvalidClientTokenId", Some(Refused::Key)),
            ("SignatureDoesNotMatch", Some(Refused::Key)),
            ("InvalidSignatureException", Some(Refused::Key)),
            ("ExpiredTokenException", Some(Refused::Expired)),
            ("ExpiredToken", Some(Refused::Expired)),
            ("RequestExpired", Some(Refused::Clock)),
            ("IDPRejectedClaim", Some(Refused::IdToken)),
            ("InvalidIdentityToken", Some(Refused::IdToken)),
            ("AccessDeniedException", None),
            ("ThrottlingException", None),
        ] {
            assert_eq!(Refused::of_code(code), want, "{code}");
        }
        assert!(Refused::IdToken.hint().contains("oidc-audience"));
        assert_eq!(
            Refused::of("ExpiredTokenException", "sts:AssumeRoleWithWebIdentity"),
            Some(Refused::IdTokenExpired)
        );
        assert_eq!(
            Refused::of("ExpiredTokenException", "ecr:GetAuthorizationToken"),
            Some(Refused::Expired)
        );
        // Assuming a role is the trust policy's to allow, not a permission of the job's.
        assert!(denied_hint("sts:AssumeRoleWithWebIdentity")
            .starts_with("the role's trust policy must allow this job to assume it"));
        assert!(denied_hint("ecr:PutImage")
            .starts_with("the job's AWS identity needs the IAM permission ecr:PutImage"));
    }

    #[test]
    fn a_missing_id_token_shows_the_lines_that_request_it_under_its_own_name() {
        let m = Missing::IdToken {
            var: var("AWS_ID_TOKEN", true),
            empty: false,
        };
        assert_eq!(
            m.problem(),
            "AWS_ROLE_ARN is set, but AWS_ID_TOKEN (named by MULTIARCH_OIDC_TOKEN_VAR), which must hold the job's GitLab id_token, is not set"
        );
        assert_eq!(
            m.hint(),
            "request the id_token in the job, with the audience the role's trust policy expects:\n    id_tokens:\n      AWS_ID_TOKEN:\n        aud: https://gitlab.com"
        );
        let m = Missing::IdToken {
            var: var("GITLAB_OIDC_TOKEN", false),
            empty: true,
        };
        assert!(m
            .problem()
            .ends_with("GITLAB_OIDC_TOKEN, which must hold the job's GitLab id_token, is empty"));
        assert!(m.hint().contains("(the components: oidc: true)"));
        assert!(m.hint().contains("      GITLAB_OIDC_TOKEN:\n"));
    }
}
