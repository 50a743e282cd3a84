//! The one error type of multiarch and the exit code each variant maps to.
//!
//! Variants are named for what the user sees and carry typed fields; messages are lowercase, say
//! what was being done and to what, then what to do. Foreign errors (oci-client, io) are converted
//! only in the module that imports the foreign crate, never through a blanket `#[from]`.
//! `exit_code` has no `_` arm on purpose: every new variant must pick one of the documented exit codes.

use std::path::PathBuf;

mod aws;
mod cancelled;
mod credential;
mod machine;
mod not_ready;
mod repository;

pub(crate) use aws::{IdTokenVar, Missing, Refused};
use cancelled::cancelled;
pub(crate) use cancelled::{Progress, Signal};
pub(crate) use credential::Origin;
pub(crate) use machine::Mismatched;
pub(crate) use not_ready::{reason as not_ready_reason, Later, NotReady, SemverTag, Stale};
pub(crate) use repository::Creator;

/// How to publish past an immutable tag that holds another image.
const IMMUTABLE_FIX: &str =
    "publish under a new tag (e.g. the version or $CI_COMMIT_SHORT_SHA), or make the tag mutable";

/// The documented exit codes; users' pipelines match on these numbers.
pub(crate) mod exit {
    pub(crate) const OTHER: i32 = 1;
    pub(crate) const USAGE: i32 = 2;
    pub(crate) const MISSING: i32 = 3;
    pub(crate) const VALIDATION: i32 = 4;
    pub(crate) const AUTH: i32 = 5;
    pub(crate) const TRANSIENT: i32 = 75;
    /// Cancelled by SIGINT (Ctrl-C): 128 + 2, as shells report it.
    pub(crate) const INTERRUPTED: i32 = 130;
    /// Cancelled by SIGTERM (GitLab's cancel and job timeout): 128 + 15.
    pub(crate) const TERMINATED: i32 = 143;
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A flag, variable or spec value the user gave cannot be used.
    #[error("{setting} = {value:?} is invalid: {reason}\n  hint: {hint}")]
    InvalidSetting {
        setting: String,
        value: String,
        reason: String,
        hint: String,
    },

    /// A variable multiarch reads holds bytes that are not UTF-8 (its value is never shown: it
    /// may be a secret).
    #[error("the environment variable {variable} is not valid UTF-8 (at byte {at} of its value), so it cannot be used\n  hint: set it to UTF-8 text, or unset it (its value is not shown: it may be a secret)")]
    NotUnicode { variable: String, at: usize },

    /// Something the run needs was not given and has no default here.
    #[error("{setting} is not set and has no default here\n  hint: {hint}")]
    MissingSetting { setting: String, hint: String },

    /// A file named by a setting cannot be read.
    #[error("reading {setting} file {}", path.display())]
    UnreadableFile {
        setting: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A registry (or token service) that cannot be reached the way it is configured: a host that
    /// does not exist, TLS spoken to plain HTTP or the reverse, an unusable URL. Waiting or
    /// retrying cannot fix it.
    #[error("cannot reach {host}: {problem}\n  hint: {hint}")]
    Unreachable {
        host: String,
        problem: String,
        hint: String,
    },

    /// TLS verification of a registry failed (unknown CA, wrong host name).
    #[error("TLS connection to {registry} refused: the certificate is not trusted ({detail})\n  hint: pass the registry's CA with --ca-file / MULTIARCH_CA_FILE, or list the host in MULTIARCH_INSECURE_REGISTRIES if it serves plain HTTP")]
    UntrustedCertificate { registry: String, detail: String },

    /// Per-architecture sources that do not exist (yet), or hold an earlier pipeline's build.
    #[error("{}", not_ready::describe(sources, expected.as_deref()))]
    SourcesNotReady {
        sources: Vec<(String, NotReady)>,
        /// The revision this pipeline expects, when checked.
        expected: Option<String>,
    },

    /// The repository a push goes to does not exist and the registry does not create it on push
    /// (`NAME_UNKNOWN` answering an upload or a manifest PUT; ECR's RepositoryNotFoundException).
    /// No wait or retry creates it: a configuration error, found at the start by the push-access
    /// check where one is made.
    #[error(
        "{action} {at}: the repository {path} does not exist ({reason})\n  hint: {}",
        repository::hint(creator, path)
    )]
    RepositoryMissing {
        action: &'static str,
        at: String,
        /// The repository's path in the registry (`group/app`).
        path: String,
        reason: String,
        creator: Creator,
    },

    /// A reference the user asked about does not exist.
    #[error("{reference} does not exist in the registry\n  hint: check the repository and tag (multiarch inspect needs the full reference)")]
    ManifestNotFound { reference: String },

    /// The image config (or an index entry) says another platform than the tag promises.
    #[error("{reference} was expected to be {expected} but {said_by} says {actual}\n  hint: the per-architecture build pushed the wrong image under this tag; rebuild it on a {expected} runner (or with --platform {expected})")]
    PlatformMismatch {
        reference: String,
        expected: String,
        actual: String,
        /// `its image config`, or `its index entry`.
        said_by: &'static str,
    },

    /// The programs images start are machine code of other platforms than their configs say:
    /// every such image of the run, so that one fix covers them all.
    #[error("{}", machine::describe(images))]
    MachineMismatch { images: Vec<Mismatched> },

    /// Two sources claim the same platform.
    #[error("platform {platform} is provided by both {first} and {second}\n  hint: each platform may appear once; drop one of them from MULTIARCH_PLATFORMS or the spec")]
    DuplicatePlatform {
        platform: String,
        first: String,
        second: String,
    },

    /// One source index lists two different images for one platform: which one was meant cannot
    /// be told.
    #[error("the {what} {index} lists two different images for {platform}: {first} and {second}\n  hint: an index may hold one image per platform (repeats of one digest are read as one); push that tag again from a single build")]
    AmbiguousIndex {
        /// `source index`, or `index to append to`.
        what: &'static str,
        index: String,
        platform: String,
        first: String,
        second: String,
    },

    /// A Docker manifest list (`--format docker`) cannot point at OCI manifests.
    #[error("a Docker manifest list (format docker) cannot reference {reference}: it is {media_type}, not a Docker v2 image manifest\n  hint: publish these images with MULTIARCH_FORMAT=oci (--format oci) or auto, which makes an OCI index of them; for a Docker list, build Docker v2 images (e.g. buildah build --format docker, or docker buildx build --output type=image,push=true,oci-mediatypes=false)")]
    MixedFormat {
        reference: String,
        media_type: String,
    },

    /// A manifest or config that is not what a registry should serve.
    #[error("{reference} is not a usable {what}: {reason}")]
    InvalidManifest {
        reference: String,
        what: &'static str,
        reason: String,
    },

    /// What the registry served does not hash to the digest it claimed.
    #[error("{reference}: content digest {actual} does not match {expected}\n  hint: a proxy or the registry altered the content; retry, and report it if it persists")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },

    /// The registry refused our credentials or the action.
    #[error("{action} {reference}: the registry refused access ({reason}; credentials from {credential})\n  hint: {}", credential::hint(credential, registry, *push))]
    AccessDenied {
        action: &'static str,
        /// Pushing (else pulling) was refused.
        push: bool,
        reference: String,
        registry: String,
        /// Where the credential presented came from (never its value): it picks the hint.
        credential: Origin,
        reason: String,
    },

    /// `login`'s check was refused: it names no repository, so the credentials themselves are
    /// what the registry (or its token service) does not take.
    #[error("logging in to {registry}: {refused_by} refused the credentials ({reason}; credentials from {credential})\n  hint: {}", credential::login_hint(credential, registry))]
    LoginRefused {
        registry: String,
        /// `the registry`, or `its token service <host>`.
        refused_by: String,
        /// Where the credential presented came from (never its value): it picks the hint.
        credential: Origin,
        reason: String,
    },

    /// The token service refused to grant what the operation needs.
    #[error("the token service {service} of {registry} refused {scope} ({reason}; credentials from {credential})\n  hint: check the credentials for {registry} and that they may pull (and, to publish, push) these repositories")]
    TokenRefused {
        service: String,
        registry: String,
        scope: String,
        credential: Origin,
        reason: String,
    },

    /// `login` found nothing to log in with.
    #[error("no credentials for {host}; tried {tried}\n  hint: in GitLab, CI_REGISTRY_USER/CI_REGISTRY_PASSWORD cover $CI_REGISTRY; for ECR set AWS_ROLE_ARN with an id_tokens variable GITLAB_OIDC_TOKEN, or AWS keys; else MULTIARCH_USERNAME/MULTIARCH_PASSWORD")]
    NoCredentials { host: String, tried: String },

    /// A registry asked for credentials to be sent to a token service over plain HTTP.
    #[error("{registry} sends clients to a token service on plain HTTP ({realm_host}); credentials are not sent there\n  hint: if that is intended (a test registry), list {realm_host} in MULTIARCH_INSECURE_REGISTRIES")]
    InsecureRealm {
        registry: String,
        realm_host: String,
    },

    /// AWS refused an action: the IAM permission (or, assuming a role, its trust policy) is
    /// missing.
    #[error(
        "{action} on {resource} was denied ({reason})\n  hint: {}",
        aws::denied_hint(action)
    )]
    EcrDenied {
        action: &'static str,
        resource: String,
        reason: String,
    },

    /// AWS refused the credentials themselves (an unknown or mistyped key, an expired session,
    /// an id_token the role does not trust): no permission would help.
    #[error("{action} was refused: {} ({reason})\n  hint: {}", refused.problem(), refused.hint())]
    AwsCredentialRefused {
        action: &'static str,
        refused: Refused,
        reason: String,
    },

    /// The AWS SDK's default chain gave no credentials: what the job set that is missing or
    /// broken.
    #[error("no AWS credentials for {action}: {}\n  hint: {}", missing.problem(), missing.hint())]
    NoAwsCredentials {
        action: &'static str,
        missing: Missing,
    },

    /// A failure worth retrying the job for: 429, 5xx, connection or timeout. `reason` says
    /// what failed where (`r.example answered HTTP 503 Service Unavailable`); `gave_up`, how the
    /// retries ended — said once, however many retry loops the failure passed through.
    #[error("{action} {reference}: {reason}{gave_up}\n  hint: this is usually temporary; retry the job (exit code 75)")]
    Transient {
        action: &'static str,
        reference: String,
        reason: String,
        gave_up: GaveUp,
    },

    /// A registry answer we cannot classify as anything above, or one that makes no sense (a
    /// broken redirect, an unusable upload Location). `reason` is a whole clause saying who did
    /// what (`the registry answered HTTP 418 …`, `the token service … answered without a token`).
    #[error("{action} {reference}: {reason}")]
    Registry {
        action: &'static str,
        reference: String,
        reason: String,
    },

    /// The registry refused a manifest we pushed as invalid (HTTP 400: `MANIFEST_INVALID`,
    /// `MANIFEST_BLOB_UNKNOWN`, or a bare 400 from a host that had answered before).
    #[error("pushing to {reference}: the registry refused the manifest ({reason})\n  hint: the registry does not take this index or manifest as it is: MANIFEST_BLOB_UNKNOWN means a child it references is missing there; a registry that does not accept OCI indexes takes MULTIARCH_FORMAT=docker when every child is a Docker image")]
    ManifestRefused { reference: String, reason: String },

    /// The registry refused to overwrite a tag (ECR immutable tags answer `TAG_INVALID`).
    #[error("{reference}: the registry refused to move this tag ({reason})\n  hint: the repository has immutable tags and the tag already holds a different image; {}", IMMUTABLE_FIX)]
    TagImmutable { reference: String, reason: String },

    /// multiarch's own look before any push (the repository's tag mutability, from ECR) found the
    /// tag immutable and holding another index: the registry was never asked to move it.
    /// Every such tag of every destination, `(reference, what it holds)`, so one fix covers all.
    #[error("{}\n  hint: {}", immutable_holds(tags), IMMUTABLE_FIX)]
    ImmutableTagHolds { tags: Vec<(String, String)> },

    /// Some target tags did not move (stdout and the dotenv name the ones that did, and only
    /// the destinations that hold the index).
    #[error("{}", partial(digest, moved, untagged, absent, failed))]
    PartialPush {
        digest: String,
        /// The tags that hold the index.
        moved: Vec<String>,
        /// Destinations with a refused tag that hold the index under its digest only.
        untagged: Vec<String>,
        /// Destinations with a refused tag that do not hold the index at all: no tag there moved
        /// and it was never PUT there by digest.
        absent: Vec<String>,
        failed: Vec<(String, Box<Error>)>,
    },

    /// `--append` read the tag back after each push and found another writer's index there,
    /// lacking this run's platforms, every time.
    #[error("appending to {reference}: another writer pushed this tag after each of {rounds} pushes of the merged index, and what it holds now lacks {}\n  hint: several --append runs keep pushing this tag at once; give the jobs that append to it one resource_group, or retry the job (exit code 75): it merges into what the tag holds then", missing.join(", "))]
    AppendContended {
        reference: String,
        rounds: u32,
        /// This run's platforms the tag does not hold.
        missing: Vec<String>,
    },

    /// The push is done but its dotenv report could not be written: later jobs will not see the
    /// variables, so the run fails, saying what holds the index.
    #[error(
        "the index was pushed ({}) but the dotenv {} could not be written; later jobs will not get its MULTIARCH_* variables",
        if holding.is_empty() { "no tag moved".to_string() } else { format!("these hold it: {}", holding.join(", ")) },
        path.display()
    )]
    ReportNotWritten {
        path: PathBuf,
        holding: Vec<String>,
        #[source]
        source: std::io::Error,
    },

    /// The run was cancelled by a signal; the message says what it leaves behind.
    #[error("{}", cancelled(*signal, progress))]
    Cancelled { signal: Signal, progress: Progress },

    /// A request not sent, or cut off in flight, because the run is being cancelled.
    #[error("{action} {reference}: {}", if *in_flight { "cut off in flight by the cancellation: the registry may or may not have done it" } else { "not sent: the run is being cancelled" })]
    RequestCancelled {
        signal: Signal,
        action: &'static str,
        reference: String,
        in_flight: bool,
    },

    /// Another process holds the lock of a file we must change (a login's auth file).
    #[error("another process has held the lock {} on {} for {} s; nothing was written\n  hint: another multiarch login into this file is still running, or was stopped; run again once it has ended (a lock is released by the system when its holder ends: the lock file needs no removing)", lock.display(), path.display(), waited.as_secs())]
    FileLocked {
        path: PathBuf,
        lock: PathBuf,
        waited: std::time::Duration,
    },

    /// Writing an output file (dotenv) failed.
    #[error("writing {}", path.display())]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error, as the README lists them.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::InvalidSetting { .. }
            | Error::NotUnicode { .. }
            | Error::MissingSetting { .. }
            | Error::UnreadableFile { .. }
            | Error::Unreachable { .. }
            | Error::UntrustedCertificate { .. }
            | Error::RepositoryMissing { .. } => exit::USAGE,
            Error::SourcesNotReady { .. } | Error::ManifestNotFound { .. } => exit::MISSING,
            Error::PlatformMismatch { .. }
            | Error::MachineMismatch { .. }
            | Error::DuplicatePlatform { .. }
            | Error::AmbiguousIndex { .. }
            | Error::MixedFormat { .. }
            | Error::InvalidManifest { .. }
            | Error::DigestMismatch { .. }
            | Error::ManifestRefused { .. }
            | Error::TagImmutable { .. }
            | Error::ImmutableTagHolds { .. } => exit::VALIDATION,
            Error::AccessDenied { .. }
            | Error::LoginRefused { .. }
            | Error::TokenRefused { .. }
            | Error::NoCredentials { .. }
            | Error::InsecureRealm { .. }
            | Error::EcrDenied { .. }
            | Error::AwsCredentialRefused { .. }
            | Error::NoAwsCredentials { .. } => exit::AUTH,
            Error::Transient { .. } | Error::AppendContended { .. } => exit::TRANSIENT,
            Error::Registry { .. }
            | Error::WriteFile { .. }
            | Error::ReportNotWritten { .. }
            | Error::FileLocked { .. } => exit::OTHER,
            Error::Cancelled { signal, .. } | Error::RequestCancelled { signal, .. } => {
                signal.exit_code()
            }
            // The first refusal decides: 5 for a protected tag, 4 for an immutable one, 75 …
            Error::PartialPush { failed, .. } => {
                failed.first().map_or(exit::OTHER, |(_, e)| e.exit_code())
            }
        }
    }

    /// Shorthand for the common "this value is wrong, here is an accepted one" error.
    pub(crate) fn invalid(
        setting: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::InvalidSetting {
            setting: setting.into(),
            value: value.into(),
            reason: reason.into(),
            hint: hint.into(),
        }
    }
}

/// The immutable tags found holding another index: one line for one tag, a list for several.
fn immutable_holds(tags: &[(String, String)]) -> String {
    const WHAT: &str = "(its tag mutability, read before any push)";
    match tags {
        [(reference, held)] => format!("{reference}: this tag is immutable in its repository {WHAT} and already holds {held}, not this run's index; nothing was pushed"),
        many => {
            let mut out = format!("{} target tags are immutable in their repository {WHAT} and already hold another index than this run's; nothing was pushed:", many.len());
            for (reference, held) in many {
                out.push_str(&format!("\n  - {reference} holds {held}"));
            }
            out
        }
    }
}

fn partial(
    digest: &str,
    moved: &[String],
    untagged: &[String],
    absent: &[String],
    failed: &[(String, Box<Error>)],
) -> String {
    let mut out = format!(
        "{} of {} target tag(s) did not move; ",
        failed.len(),
        failed.len() + moved.len()
    );
    if !moved.is_empty() {
        out.push_str(&format!(
            "the index {digest} is in the registry and these hold it: {}",
            moved.join(", ")
        ));
    } else if !untagged.is_empty() {
        out.push_str(&format!(
            "the index {digest} is in {} under its digest, but no tag holds it",
            untagged.join(", ")
        ));
    } else {
        out.push_str(&format!(
            "this run stored no index {digest}: no tag moved and it was not pushed under its digest (with one tag to move in a destination, that tag's PUT is the only push; an earlier run may have stored the same bytes)"
        ));
    }
    if !moved.is_empty() && !untagged.is_empty() {
        out.push_str(&format!(
            "; {} hold(s) it under its digest only",
            untagged.join(", ")
        ));
    }
    if !absent.is_empty() && (!moved.is_empty() || !untagged.is_empty()) {
        out.push_str(&format!(
            "; {} do(es) not hold it: no tag moved there and it was never pushed there under its digest",
            absent.join(", ")
        ));
    }
    for (tag, e) in failed {
        let text = e.to_string().replace('\n', "\n    ");
        if names_tag(&text, tag) {
            out.push_str(&format!("\n  - {text}"));
        } else {
            out.push_str(&format!("\n  - {tag}: {text}"));
        }
    }
    out
}

/// Whether an error's first line names `tag` as its subject: most refusals open with it
/// (`r/app:1: the registry refused …`, `pushing to r/app:1: …`), and then it is said once, by them.
pub(crate) fn names_tag(text: &str, tag: &str) -> bool {
    let first = text.lines().next().unwrap_or_default();
    let subject = format!("{tag}: ");
    first.starts_with(&subject) || first.contains(&format!(" {subject}"))
}

/// How retrying a transient failure ended, for its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GaveUp {
    /// Not retried (yet).
    Not,
    /// Every retry was spent: `attempts` in all.
    Spent { attempts: u32 },
    /// The next attempt would have started past `deadline` (what set it); `asked` is the
    /// registry's `Retry-After` in seconds, when that was the reason.
    Deadline {
        attempts: u32,
        deadline: &'static str,
        asked: Option<u64>,
    },
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tries = |n: &u32| match n {
            1 => "after 1 attempt".to_string(),
            n => format!("after {n} attempts"),
        };
        match self {
            GaveUp::Not => Ok(()),
            GaveUp::Spent { attempts } => write!(f, ", {}", tries(attempts)),
            GaveUp::Deadline {
                attempts,
                deadline,
                asked: Some(secs),
            } => write!(
                f,
                ", {}: it asks to be retried in {secs} s (Retry-After), past {deadline}",
                tries(attempts)
            ),
            GaveUp::Deadline {
                attempts,
                deadline,
                asked: None,
            } => write!(f, ", {}, at {deadline}", tries(attempts)),
        }
    }
}

#[cfg(test)]
mod tests;
