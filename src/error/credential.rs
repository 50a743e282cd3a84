//! Where a credential presented to a registry came from (never its value), and what to check when
//! the registry refuses it: the hint follows the origin, so an ECR token's refusal points at the
//! job's IAM permissions, not at user names and docker config files it never came from. Pure.

use std::fmt;

/// The source in the credential chain that supplied what a registry was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `--username/--password`, `MULTIARCH_USERNAME/MULTIARCH_PASSWORD`.
    Explicit,
    /// An ECR token from GetAuthorizationToken, for the job's AWS identity.
    Ecr,
    /// `CI_REGISTRY_USER/CI_REGISTRY_PASSWORD` for `$CI_REGISTRY`.
    CiRegistry,
    /// `docker-credential-<name>`, named by a docker config's `credHelpers` or `credsStore`.
    Helper(Box<str>),
    /// An `auths` entry of `DOCKER_AUTH_CONFIG` or of the docker config file at this path.
    /// (Boxed strings, not `String`s, keep `Error` within clippy's size bound.)
    DockerConfig(Box<str>),
    /// Nothing: the registry's anonymous access (its bearer challenge still applies).
    Anonymous,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Explicit => f.write_str("MULTIARCH_USERNAME/MULTIARCH_PASSWORD"),
            Origin::Ecr => f.write_str("ECR GetAuthorizationToken"),
            Origin::CiRegistry => f.write_str("CI_REGISTRY_USER/CI_REGISTRY_PASSWORD"),
            Origin::Helper(name) => write!(f, "docker-credential-{name}"),
            Origin::DockerConfig(file) => f.write_str(file),
            Origin::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// What to check when `registry` refused the credential from `origin` to pull, or (`push`) to
/// push.
pub(crate) fn hint(origin: &Origin, registry: &str, push: bool) -> String {
    let may = if push { "push to" } else { "pull" };
    match origin {
        Origin::Ecr => format!(
            "the ECR token stands for the job's AWS identity (the role AWS_ROLE_ARN names, or the keys' user): it needs the IAM permissions {} on this repository (see the README's minimal IAM policy)",
            if push {
                "ecr:PutImage, and ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload where children are copied"
            } else {
                "ecr:BatchGetImage, ecr:GetDownloadUrlForLayer"
            }
        ),
        Origin::Anonymous => format!(
            "no credential was found for {registry}; give one that may {may} this repository: MULTIARCH_USERNAME/MULTIARCH_PASSWORD, CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (for $CI_REGISTRY) or a docker config entry"
        ),
        other => format!(
            "check the credential from {other} for {registry} and that it may {may} this repository{}",
            if push {
                "; a protected tag refuses pushes from jobs that may not push it"
            } else {
                ""
            }
        ),
    }
}

/// What to check when `registry` refused, at a login, the credential from `origin`: a login
/// names no repository, so the credential itself was not taken.
pub(crate) fn login_hint(origin: &Origin, registry: &str) -> String {
    let itself = "a login asks for no repository, so the credential itself is not taken";
    match origin {
        Origin::Ecr => format!(
            "{itself}: the ECR token comes from GetAuthorizationToken for the job's AWS identity, in the region of the registry host (with MULTIARCH_AUTH=ecr, AWS_REGION); check that account and region"
        ),
        Origin::Anonymous => hint(origin, registry, false),
        other => format!(
            "check the credential from {other} for {registry}: {itself} (wrong, expired or revoked)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ecr_token_is_pointed_at_iam_not_at_registry_logins() {
        let push = hint(
            &Origin::Ecr,
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            true,
        );
        assert!(push.contains("ecr:PutImage"), "{push}");
        assert!(push.contains("ecr:InitiateLayerUpload"), "{push}");
        for elsewhere in ["MULTIARCH_USERNAME", "CI_REGISTRY", "docker config"] {
            assert!(!push.contains(elsewhere), "{push}");
        }
        let pull = hint(&Origin::Ecr, "r", false);
        assert!(pull.contains("ecr:BatchGetImage"), "{pull}");
        assert!(!pull.contains("ecr:PutImage"), "{pull}");
    }

    #[test]
    fn other_origins_are_named_and_anonymous_lists_where_one_comes_from() {
        assert_eq!(
            hint(&Origin::CiRegistry, "r.example", true),
            "check the credential from CI_REGISTRY_USER/CI_REGISTRY_PASSWORD for r.example and that it may push to this repository; a protected tag refuses pushes from jobs that may not push it"
        );
        assert_eq!(
            hint(&Origin::Helper("pass".into()), "r.example", false),
            "check the credential from docker-credential-pass for r.example and that it may pull this repository"
        );
        let anonymous = hint(&Origin::Anonymous, "r.example", false);
        assert!(
            anonymous.starts_with("no credential was found for r.example"),
            "{anonymous}"
        );
        assert!(anonymous.contains("MULTIARCH_USERNAME/MULTIARCH_PASSWORD"));
    }
}
