//! Command-line definitions (clap derive). Types only: every option is optional here, and
//! `settings` decides what an absent flag means (its `MULTIARCH_*` variable, then a GitLab
//! default). That keeps resolution a pure function of (flags, environment map) and testable.
//! Each help line names the variable and the default, so `--help` is the reference.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "multiarch",
    version,
    about = "Publish multi-architecture container images from per-architecture tags",
    long_about = "Publish multi-architecture container images from per-architecture tags.\n\n\
        A GitLab `manifest` job runs `multiarch push`: it finds the per-architecture tags \
        (app:latest-amd64, app:latest-arm64, ...) from CI variables, reads each image's real \
        platform, and pushes an OCI image index (or Docker manifest list) under the common tags.\n\n\
        Every option also reads MULTIARCH_<OPTION>; flags beat variables, variables beat GitLab defaults.\n\
        Exit codes: 0 done, 2 usage, 3 sources missing, 4 validation, 5 auth, 75 transient, 1 other."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log level on stderr: error, warn, info, debug or trace [env: MULTIARCH_LOG] [default: info]
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the index from the per-architecture tags and push it under every target tag
    #[command(after_help = HAND_OFF_HELP)]
    Push(PushArgs),
    /// Resolve and fetch everything, print sources, targets and the index JSON; push nothing
    Plan(PushArgs),
    /// Only wait until every per-architecture source exists (exit 0), or 3 at the deadline
    Wait(PushArgs),
    /// Show a manifest or index: media type, digest, size and platforms
    Inspect(InspectArgs),
}

/// Variables that are not flags.
const HAND_OFF_HELP: &str = "Build jobs may hand over the exact image they pushed: \
    MULTIARCH_SOURCE_<OS>_<ARCH>[_<VARIANT>]=<repository>@sha256:<digest> (e.g. \
    MULTIARCH_SOURCE_LINUX_ARM64, through a dotenv report) makes that digest the platform's source \
    instead of its tag; it is read once, never waited for, and still checked.";

#[derive(Debug, Default, Clone, Args)]
pub struct PushArgs {
    /// manifest-tool YAML spec (image, tags, manifests) instead of --image/--tags/--platforms/--source-template [env: MULTIARCH_SPEC] [default: none]
    #[arg(long, value_name = "FILE", conflicts_with_all = ["image", "tags", "platforms", "source_template"])]
    pub spec: Option<PathBuf>,

    /// Repository to publish, without tag [env: MULTIARCH_IMAGE] [default: $CI_REGISTRY_IMAGE]
    #[arg(long, value_name = "REPOSITORY")]
    pub image: Option<String>,

    /// Comma-separated target tags; the first fills {tag} in the source template [env: MULTIARCH_TAGS] [default: $CI_COMMIT_TAG, else latest on the default branch, else $CI_COMMIT_REF_SLUG]
    #[arg(long, value_name = "TAG,...")]
    pub tags: Option<String>,

    /// Comma-separated os/arch[/variant] list [env: MULTIARCH_PLATFORMS] [default: linux/amd64,linux/arm64]
    #[arg(long, value_name = "PLATFORM,...")]
    pub platforms: Option<String>,

    /// Per-architecture source reference; placeholders {image} {tag} {os} {arch} {variant} [env: MULTIARCH_SOURCE_TEMPLATE] [default: {image}:{tag}-{arch}{variant}]
    #[arg(long, value_name = "TEMPLATE")]
    pub source_template: Option<String>,

    /// How long to wait for missing sources, e.g. 90s, 15m; 0 = do not wait [env: MULTIARCH_TIMEOUT] [default: 15m]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Publish the sources that exist even if some are missing [env: MULTIARCH_ALLOW_MISSING] [default: false]
    #[arg(long)]
    pub allow_missing: bool,

    /// auto (Docker list when every child is Docker v2, else OCI index), oci or docker [env: MULTIARCH_FORMAT] [default: auto]
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Index annotation key=value, repeatable; an empty value removes a default [env: MULTIARCH_ANNOTATIONS, comma- or newline-separated] [default: source, revision, version, created from CI variables]
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Write MULTIARCH_DIGEST, MULTIARCH_REF and per-platform digests to this dotenv file [env: MULTIARCH_DOTENV] [default: multiarch.env when GITLAB_CI=true]
    #[arg(long, value_name = "FILE")]
    pub dotenv: Option<PathBuf>,

    /// Result format on stdout: text (one image:tag@digest line per tag) or json [env: MULTIARCH_OUTPUT] [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub output: Option<String>,

    /// Source revision the per-architecture images must be labelled with (org.opencontainers.image.revision); sources labelled with another one are stale and waited past; none = no check [env: MULTIARCH_REVISION] [default: $CI_COMMIT_SHA]
    #[arg(long, value_name = "REVISION")]
    pub revision: Option<String>,

    /// Treat sources without a revision label as stale instead of accepting them with a warning [env: MULTIARCH_REQUIRE_REVISION] [default: false]
    #[arg(long)]
    pub require_revision: bool,

    /// Resolve and build the index but push nothing (same as `multiarch plan`) [env: MULTIARCH_DRY_RUN] [default: false]
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub access: AccessArgs,
}

#[derive(Debug, Default, Clone, Args)]
pub struct InspectArgs {
    /// Image reference, e.g. registry.example.com/app:latest
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// Print the exact manifest bytes as the registry serves them [env: MULTIARCH_RAW] [default: false]
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// Print a JSON description instead of text [env: MULTIARCH_JSON] [default: false]
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub access: AccessArgs,
}

/// How to reach registries: shared by every command.
#[derive(Debug, Default, Clone, Args)]
pub struct AccessArgs {
    /// Registry user name (with --password) [env: MULTIARCH_USERNAME] [default: CI_REGISTRY_USER for $CI_REGISTRY, else docker config, else anonymous]
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    /// Registry password or token; prefer the variable, flags show in process lists [env: MULTIARCH_PASSWORD] [default: none]
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,

    /// Registry host (host[:port]) to reach over plain HTTP, repeatable [env: MULTIARCH_INSECURE_REGISTRIES, comma-separated] [default: none, TLS everywhere]
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// PEM file of extra CA certificates to trust [env: MULTIARCH_CA_FILE] [default: system roots and SSL_CERT_FILE]
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Registry authentication: auto (ECR token for ECR hosts, else the credential order) or ecr (ECR token for every host: VPC endpoints, proxies) [env: MULTIARCH_AUTH] [default: auto]
    #[arg(long, value_name = "MODE")]
    pub auth: Option<String>,

    /// Retries of a registry request that failed transiently (429, 5xx, connection, timeout) [env: MULTIARCH_RETRIES] [default: 5]
    #[arg(long, value_name = "N")]
    pub retries: Option<String>,

    /// Time limit of one registry request, e.g. 30s [env: MULTIARCH_REQUEST_TIMEOUT] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every option names its variable and its default in `--help`.
    #[test]
    fn every_option_documents_variable_and_default() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if long == "help" {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let var = format!(
                    "MULTIARCH_{}",
                    long.to_uppercase()
                        .replace('-', "_")
                        .replace("ANNOTATION", "ANNOTATIONS")
                );
                let var = var.replace("INSECURE_REGISTRY", "INSECURE_REGISTRIES");
                assert!(
                    help.contains(&format!("[env: {var}")),
                    "{} --{long}: {help}",
                    sub.get_name()
                );
                assert!(
                    help.contains("[default: "),
                    "{} --{long}: {help}",
                    sub.get_name()
                );
            }
        }
    }

    #[test]
    fn parses_push_flags() {
        let cli = Cli::try_parse_from([
            "multiarch",
            "push",
            "--image",
            "r.io/app",
            "--annotation",
            "a=b",
            "--annotation",
            "c=d",
            "--insecure-registry",
            "localhost:5000",
        ])
        .unwrap();
        let Command::Push(p) = cli.command else {
            panic!()
        };
        assert_eq!(p.image.as_deref(), Some("r.io/app"));
        assert_eq!(p.annotations, ["a=b", "c=d"]);
        assert_eq!(p.access.insecure_registries, ["localhost:5000"]);
    }
}
