//! The one declaration of every user-facing setting: its flag, its `MULTIARCH_*` variable, the
//! default `--help` shows, its help text and the commands that take it. clap's arguments, `--help`,
//! resolution (flag beats variable, empty = unset), the origins `--log debug` prints, error
//! messages and the unknown-variable warning all come from this table, so they cannot disagree.

/// Which commands take a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    Push,
    Plan,
    Wait,
    Inspect,
    Login,
}

/// push, plan and wait resolve the same plan.
const PUBLISH: &[Cmd] = &[Cmd::Push, Cmd::Plan, Cmd::Wait];
/// What shapes the index: `wait` builds none, so it does not take these.
const INDEX: &[Cmd] = &[Cmd::Push, Cmd::Plan];
/// What only a real push does (a dry run writes no report).
const PUSH: &[Cmd] = &[Cmd::Push];
/// What reads images' content: the commands that read sources, and inspect.
const CONTENT: &[Cmd] = &[Cmd::Push, Cmd::Plan, Cmd::Wait, Cmd::Inspect];
/// Every command that reaches a registry.
const NETWORK: &[Cmd] = &[Cmd::Push, Cmd::Plan, Cmd::Wait, Cmd::Inspect, Cmd::Login];
const ALL: &[Cmd] = NETWORK;

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One value (`--image REPOSITORY`).
    Value(&'static str),
    /// A switch; its variable takes true/false.
    Switch,
    /// A repeatable flag; its variable is a comma- or newline-separated list.
    Repeated(&'static str),
}

/// One setting.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Setting {
    /// The long flag, without dashes.
    pub(crate) flag: &'static str,
    pub(crate) variable: &'static str,
    pub(crate) kind: Kind,
    /// What `--help` says happens when neither flag nor variable is given.
    pub(crate) default: &'static str,
    pub(crate) help: &'static str,
    pub(crate) on: &'static [Cmd],
}

impl Setting {
    /// `--tags / MULTIARCH_TAGS`: how messages name a setting whose origin does not matter.
    pub(crate) fn both(&self) -> String {
        format!("--{} / {}", self.flag, self.variable)
    }
}

macro_rules! settings {
    ($($name:ident: $flag:literal, $variable:literal, $kind:expr, $default:literal, $on:expr, $help:literal;)*) => {
        $(pub(crate) const $name: Setting = Setting {
            flag: $flag,
            variable: $variable,
            kind: $kind,
            default: $default,
            help: $help,
            on: $on,
        };)*
        /// Every setting, in `--help` order.
        pub(crate) const SETTINGS: &[&Setting] = &[$(&$name),*];
    };
}

use Kind::{Repeated, Switch, Value};

settings! {
    SPEC: "spec", "MULTIARCH_SPEC", Value("FILE"), "none", PUBLISH,
        "manifest-tool YAML spec (image, tags, manifests, annotations); flags still beat it";
    IMAGE: "image", "MULTIARCH_IMAGE", Value("REPOSITORY,..."), "$CI_REGISTRY_IMAGE", PUBLISH,
        "Repository to publish, without tag; several comma-separated: one index, pushed to each (children copied where missing)";
    TAGS: "tags", "MULTIARCH_TAGS", Value("TAG,..."), "$CI_COMMIT_TAG, else latest on the default branch, else $CI_COMMIT_REF_SLUG", PUBLISH,
        "Comma-separated target tags; the first fills {tag} in the source template; semver: on a tag v1.4.2 publish 1.4.2, 1.4, 1 and latest (a pre-release only itself)";
    PLATFORMS: "platforms", "MULTIARCH_PLATFORMS", Value("PLATFORM,..."), "linux/amd64,linux/arm64", PUBLISH,
        "Comma-separated os/arch[/variant] list (with --spec: which children of spec entries without a platform to take)";
    SOURCE_TEMPLATE: "source-template", "MULTIARCH_SOURCE_TEMPLATE", Value("TEMPLATE"), "{image}:{tag}-{arch}{variant}", PUBLISH,
        "Per-architecture source reference; placeholders {image} {tag} {os} {arch} {variant}";
    TIMEOUT: "timeout", "MULTIARCH_TIMEOUT", Value("DURATION"), "15m", PUBLISH,
        "How long to wait for missing or stale sources, e.g. 90s, 15m (at most 24h); 0 = do not wait";
    ALLOW_MISSING: "allow-missing", "MULTIARCH_ALLOW_MISSING", Switch, "false", PUBLISH,
        "Publish the sources that are ready even if some are missing or stale at the deadline";
    IF_COMPLETE: "if-complete", "MULTIARCH_IF_COMPLETE", Switch, "false", INDEX,
        "Never wait: publish only if every platform of this revision is there now (from the build job that completes the set), else publish nothing and exit 0 naming the platforms awaited (dotenv: MULTIARCH_AWAITING; MULTIARCH_PUBLISHED=true only where it published)";
    FORMAT: "format", "MULTIARCH_FORMAT", Value("FORMAT"), "auto", INDEX,
        "auto (a Docker list when every child is Docker v2, no annotation was asked for and no GitLab pipeline id is recorded; else an OCI index), oci or docker";
    ANNOTATION: "annotation", "MULTIARCH_ANNOTATIONS", Repeated("KEY=VALUE"), "source, revision, version, created and com.gitlab.multiarch.project.id, com.gitlab.multiarch.pipeline.id from CI variables", INDEX,
        "Index annotation key=value, repeatable (the variable: one per line, or comma-separated); an empty value removes a default";
    APPEND: "append", "MULTIARCH_APPEND", Switch, "false", INDEX,
        "Merge into the index the first target tag holds: the platforms given replace theirs, the others are kept";
    REVISION: "revision", "MULTIARCH_REVISION", Value("REVISION"), "$CI_COMMIT_SHA", PUBLISH,
        "Revision the per-architecture images must be labelled with (org.opencontainers.image.revision); sources labelled with another one are stale and waited past; none = no check";
    REQUIRE_REVISION: "require-revision", "MULTIARCH_REQUIRE_REVISION", Switch, "false", PUBLISH,
        "Treat sources without a revision label as stale instead of accepting them with a warning";
    CONTENT_CHECK: "content-check", "MULTIARCH_CONTENT_CHECK", Value("MODE"), "entrypoint", CONTENT,
        "entrypoint: hold the machine code of each image's entrypoint (else cmd; through PATH, symbolic links, layers and a script's interpreter) against its platform, a mismatch fails; off: skip";
    CONTENT_BUDGET: "content-budget", "MULTIARCH_CONTENT_BUDGET", Value("SIZE"), "256MiB", CONTENT,
        "Layer bytes the content check may download per image, e.g. 256MiB, 1GiB; past it the image is not checked (a warning)";
    ROLLBACK: "rollback", "MULTIARCH_ROLLBACK", Value("MODE"), "refuse", INDEX,
        "Whether a target tag holding a newer pipeline's index of this project, or a higher version, moves back: refuse (keep it: exit 0, said on stderr, stdout and in the dotenv) or allow";
    DOTENV: "dotenv", "MULTIARCH_DOTENV", Value("FILE"), "multiarch.env when GITLAB_CI=true", PUSH,
        "Write MULTIARCH_DIGEST, MULTIARCH_REF and per-platform digests to this dotenv file (a regular file); none = no report";
    DOTENV_PREFIX: "dotenv-prefix", "MULTIARCH_DOTENV_PREFIX", Value("PREFIX"), "none", PUSH,
        "Prefix of every dotenv variable (API_ gives API_MULTIARCH_DIGEST), so two manifest jobs can feed one later job";
    OUTPUT: "output", "MULTIARCH_OUTPUT", Value("FORMAT"), "text", INDEX,
        "Result format on stdout: text (one image:tag@digest line per tag) or json";
    DRY_RUN: "dry-run", "MULTIARCH_DRY_RUN", Switch, "false", PUSH,
        "Resolve and build the index but push nothing (same as `multiarch plan`)";
    RAW: "raw", "MULTIARCH_RAW", Switch, "false", &[Cmd::Inspect],
        "Print the exact manifest bytes as the registry serves them";
    JSON: "json", "MULTIARCH_JSON", Switch, "false", &[Cmd::Inspect],
        "Print a JSON description instead of text";
    USERNAME: "username", "MULTIARCH_USERNAME", Value("USER"), "an ECR token for ECR hosts, else CI_REGISTRY_USER for $CI_REGISTRY, else docker config, else anonymous", NETWORK,
        "Registry user name (with --password)";
    PASSWORD: "password", "MULTIARCH_PASSWORD", Value("PASSWORD"), "none", NETWORK,
        "Registry password or token; prefer the variable, flags show in process lists";
    INSECURE_REGISTRY: "insecure-registry", "MULTIARCH_INSECURE_REGISTRIES", Repeated("HOST"), "none, TLS everywhere", NETWORK,
        "Registry or token-service host (host[:port]) to reach over plain HTTP, repeatable (the variable: comma-separated)";
    CA_FILE: "ca-file", "MULTIARCH_CA_FILE", Value("FILE"), "system roots and SSL_CERT_FILE", NETWORK,
        "PEM file of extra CA certificates to trust";
    AUTH: "auth", "MULTIARCH_AUTH", Value("MODE"), "auto", NETWORK,
        "Registry authentication: auto (ECR token for ECR hosts, else the credential order) or ecr (ECR token for every host: VPC endpoints, proxies); the ECR token comes from the AWS credential chain, with GitLab OIDC from AWS_ROLE_ARN and the id_token in GITLAB_OIDC_TOKEN (or the variable MULTIARCH_OIDC_TOKEN_VAR names)";
    RETRIES: "retries", "MULTIARCH_RETRIES", Value("N"), "5", NETWORK,
        "Retries of a registry request that failed transiently (429, 5xx, connection, timeout), 0 to 20";
    REQUEST_TIMEOUT: "request-timeout", "MULTIARCH_REQUEST_TIMEOUT", Value("DURATION"), "30s", NETWORK,
        "Time limit of one registry request, e.g. 30s";
    AUTH_FILE: "auth-file", "MULTIARCH_AUTH_FILE", Value("FILE"), "$REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json", &[Cmd::Login],
        "login: the docker/containers auth file to write the credential into (mode 0600; other entries kept)";
    PASSWORD_STDOUT: "password-stdout", "MULTIARCH_PASSWORD_STDOUT", Switch, "false", &[Cmd::Login],
        "login: print only the password on stdout (for `… login --password-stdin`) instead of writing a file";
    LOG: "log", "MULTIARCH_LOG", Value("LEVEL"), "info", ALL,
        "Log level on stderr: error, warn, info, debug or trace; RUST_LOG, when set, takes over (colours on a terminal or in GitLab, never with NO_COLOR)";
}

/// Variables multiarch reads or writes that are not settings: no warning for these.
pub(crate) const OTHER_VARIABLES: &[&str] = &[
    "MULTIARCH_OIDC_TOKEN_VAR",
    // The dotenv report of an earlier manifest job, seen by later jobs.
    "MULTIARCH_DIGEST",
    "MULTIARCH_REF",
    "MULTIARCH_REFS",
    "MULTIARCH_TAGGED",
    "MULTIARCH_KEPT",
    "MULTIARCH_PUBLISHED",
    "MULTIARCH_AWAITING",
];

/// Prefixes of variable families: build jobs' hand-offs, and per-platform digests of a dotenv.
pub(crate) const OTHER_PREFIXES: &[&str] = &["MULTIARCH_SOURCE_", "MULTIARCH_DIGEST_"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_variables_are_unique_and_named_alike() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert_ne!(a.flag, b.flag);
                assert_ne!(a.variable, b.variable);
            }
            assert!(a.variable.starts_with("MULTIARCH_"), "{}", a.variable);
            let stem = a
                .variable
                .trim_start_matches("MULTIARCH_")
                .to_ascii_lowercase();
            let flag = a.flag.replace('-', "_");
            assert!(
                strsim::levenshtein(&stem, &flag) <= 3,
                "--{} and {} should name the same thing",
                a.flag,
                a.variable
            );
        }
    }
}
