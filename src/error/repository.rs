//! A destination repository that does not exist, on a registry that does not create repositories
//! on push (Amazon ECR; registries whose repositories belong to projects): how to create it. Pure.

/// Who creates a missing repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Creator {
    /// Amazon ECR, in this region when the registry host names it.
    Ecr { region: Option<String> },
    /// Any other registry (this host): its own UI or API.
    Registry { registry: String },
}

/// How to create the repository `path`, or name another.
pub(crate) fn hint(creator: &Creator, path: &str) -> String {
    let elsewhere = "or correct the destination (MULTIARCH_IMAGE, --image, the spec's image, or in GitLab CI_REGISTRY_IMAGE)";
    match creator {
        Creator::Ecr { region } => format!(
            "ECR does not create repositories on push: create it with `aws ecr create-repository --repository-name {path}{}` (in Terraform an aws_ecr_repository, or in the ECR console), {elsewhere}",
            region
                .as_ref()
                .map(|r| format!(" --region {r}"))
                .unwrap_or_default()
        ),
        Creator::Registry { registry } => format!(
            "{registry} does not create it on push: create the repository {path} (on GitLab, Harbor and the like, the project or group that holds it), {elsewhere}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_how_to_create_the_repository_where_it_lives() {
        assert_eq!(
            hint(
                &Creator::Ecr {
                    region: Some("eu-west-1".into())
                },
                "team/app"
            ),
            "ECR does not create repositories on push: create it with `aws ecr create-repository --repository-name team/app --region eu-west-1` (in Terraform an aws_ecr_repository, or in the ECR console), or correct the destination (MULTIARCH_IMAGE, --image, the spec's image, or in GitLab CI_REGISTRY_IMAGE)"
        );
        assert!(hint(&Creator::Ecr { region: None }, "app")
            .contains("`aws ecr create-repository --repository-name app`"));
        assert_eq!(
            hint(
                &Creator::Registry {
                    registry: "harbor.example".into()
                },
                "team/app"
            ),
            "harbor.example does not create it on push: create the repository team/app (on GitLab, Harbor and the like, the project or group that holds it), or correct the destination (MULTIARCH_IMAGE, --image, the spec's image, or in GitLab CI_REGISTRY_IMAGE)"
        );
    }
}
