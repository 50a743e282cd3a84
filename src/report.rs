//! What users and later jobs read: stdout results (one `image:tag@digest` line per tag, or JSON),
//! the dotenv file for GitLab's `artifacts:reports:dotenv`, GitLab log-section markers, and the
//! `plan` / `inspect` views. Pure: returns strings; the edge writes them.

use serde_json::json;

use crate::index::{Child, Index};
use crate::manifest::Fetched;
use crate::platform::Platform;
use crate::publish::Outcome;
use crate::reference::Repository;
use crate::settings::{Plan, SourceOrigin};

/// One `registry/app:tag@sha256:…` line per target tag.
pub fn text(outcome: &Outcome) -> String {
    outcome
        .targets
        .iter()
        .map(|(t, _)| format!("{t}@{}\n", outcome.index.digest))
        .collect()
}

/// The `--output json` summary.
pub fn json(plan: &Plan, outcome: &Outcome) -> String {
    let v = json!({
        "digest": outcome.index.digest,
        "mediaType": outcome.index.media_type,
        "ref": format!("{}@{}", plan.image, outcome.index.digest),
        "targets": outcome.targets.iter().map(|(t, s)| json!({"reference": t.to_string(), "status": s})).collect::<Vec<_>>(),
        "manifests": outcome.index.children.iter().map(child_json).collect::<Vec<_>>(),
        "missing": outcome.missing,
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&v).expect("json values serialise")
    )
}

fn child_json(c: &Child) -> serde_json::Value {
    json!({
        "platform": c.platform.to_string(),
        "digest": c.digest,
        "mediaType": c.media_type,
        "source": c.source,
        "attestation": c.attestation,
    })
}

/// The dotenv file: `MULTIARCH_DIGEST`, `MULTIARCH_REF` and one `MULTIARCH_DIGEST_<OS>_<ARCH>[_<VARIANT>]`
/// per image platform (attestations have none).
pub fn dotenv(image: &Repository, index: &Index) -> String {
    let mut out = format!(
        "MULTIARCH_DIGEST={}\nMULTIARCH_REF={image}@{}\n",
        index.digest, index.digest
    );
    for c in index.children.iter().filter(|c| !c.attestation) {
        out.push_str(&format!(
            "MULTIARCH_DIGEST_{}={}\n",
            c.platform.env_suffix(),
            c.digest
        ));
    }
    out
}

/// `plan`: sources (each with where it came from and the revision it holds), targets and the
/// exact index JSON.
pub fn plan(plan: &Plan, outcome: &Outcome) -> String {
    let mut out = String::from("sources:\n");
    for s in &plan.sources {
        let found = outcome
            .index
            .children
            .iter()
            .find(|c| c.source == s.reference.to_string() && !c.attestation);
        let from = match &s.origin {
            SourceOrigin::Template => "tag".to_string(),
            SourceOrigin::Spec => "spec".to_string(),
            SourceOrigin::HandOff(variable) => variable.clone(),
        };
        match found {
            Some(c) => out.push_str(&format!(
                "  {:<16} {} {} (from {from}, revision {})\n",
                s.platform.to_string(),
                s.reference,
                c.digest,
                c.revision.as_deref().unwrap_or("unlabelled")
            )),
            None => out.push_str(&format!(
                "  {:<16} {} (from {from}; missing)\n",
                s.platform.to_string(),
                s.reference
            )),
        }
    }
    out.push_str("targets:\n");
    for (t, _) in &outcome.targets {
        out.push_str(&format!("  {t}\n"));
    }
    out.push_str(&format!(
        "index: {} {}\n",
        outcome.index.media_type, outcome.index.digest
    ));
    out.push_str(&String::from_utf8_lossy(&outcome.index.bytes));
    out.push('\n');
    out
}

/// What `inspect` shows about one entry or image.
#[derive(Debug, Clone)]
pub struct Entry {
    pub platform: Platform,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub attestation: bool,
}

/// `inspect` as text: media type, digest, size, then one line per platform.
pub fn inspect_text(reference: &str, fetched: &Fetched, entries: &[Entry]) -> String {
    let mut out = format!(
        "reference:  {reference}\nmedia type: {}\ndigest:     {}\nsize:       {}\n",
        fetched.media_type,
        fetched.digest,
        fetched.bytes.len()
    );
    out.push_str("platforms:\n");
    for e in entries {
        let note = if e.attestation { "  (attestation)" } else { "" };
        out.push_str(&format!(
            "  {:<16} {}{note}\n",
            e.platform.to_string(),
            e.digest
        ));
    }
    out
}

/// `inspect --json`.
pub fn inspect_json(reference: &str, fetched: &Fetched, entries: &[Entry]) -> String {
    let v = json!({
        "reference": reference,
        "mediaType": fetched.media_type,
        "digest": fetched.digest,
        "size": fetched.bytes.len(),
        "manifests": entries.iter().map(|e| json!({
            "platform": e.platform.to_string(),
            "digest": e.digest,
            "mediaType": e.media_type,
            "size": e.size,
            "attestation": e.attestation,
        })).collect::<Vec<_>>(),
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&v).expect("json values serialise")
    )
}

/// GitLab's collapsible section start marker (<https://docs.gitlab.com/ci/jobs/job_logs/#custom-collapsible-sections>).
pub fn section_start(unix_secs: u64, name: &str, title: &str, collapsed: bool) -> String {
    format!("\x1b[0Ksection_start:{unix_secs}:{name}[collapsed={collapsed}]\r\x1b[0K{title}\n")
}

/// GitLab's section end marker.
pub fn section_end(unix_secs: u64, name: &str) -> String {
    format!("\x1b[0Ksection_end:{unix_secs}:{name}\r\x1b[0K\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let p = |s: &str| Platform::parse("t", s).unwrap();
        let child = |platform: Platform, digest: &str, attestation: bool| Child {
            platform,
            digest: digest.into(),
            media_type: crate::manifest::OCI_MANIFEST.into(),
            source: "r.example/app:1-x".into(),
            attestation,
            revision: None,
        };
        Index {
            bytes: b"{}".to_vec(),
            digest: "sha256:idx".into(),
            media_type: crate::manifest::OCI_INDEX,
            children: vec![
                child(p("linux/amd64"), "sha256:a", false),
                child(p("linux/arm/v7"), "sha256:b", false),
                child(
                    Platform::normalised("unknown", "unknown", None, None),
                    "sha256:c",
                    true,
                ),
            ],
        }
    }

    #[test]
    fn dotenv_has_digest_ref_and_one_line_per_platform() {
        let image = Repository::parse("t", "r.example/g/app").unwrap();
        assert_eq!(
            dotenv(&image, &index()),
            "MULTIARCH_DIGEST=sha256:idx\n\
             MULTIARCH_REF=r.example/g/app@sha256:idx\n\
             MULTIARCH_DIGEST_LINUX_AMD64=sha256:a\n\
             MULTIARCH_DIGEST_LINUX_ARM_V7=sha256:b\n"
        );
    }

    #[test]
    fn text_is_one_line_per_tag() {
        let image = Repository::parse("t", "r.example/app").unwrap();
        let outcome = Outcome {
            index: index(),
            targets: vec![
                (image.tag("latest"), crate::publish::Status::Pushed),
                (image.tag("1.0"), crate::publish::Status::Unchanged),
            ],
            missing: vec![],
        };
        assert_eq!(
            text(&outcome),
            "r.example/app:latest@sha256:idx\nr.example/app:1.0@sha256:idx\n"
        );
    }

    #[test]
    fn section_markers_follow_gitlab_syntax() {
        assert_eq!(
            section_start(1700000000, "multiarch_push", "Pushing", true),
            "\u{1b}[0Ksection_start:1700000000:multiarch_push[collapsed=true]\r\u{1b}[0KPushing\n"
        );
        assert_eq!(
            section_end(1700000001, "multiarch_push"),
            "\u{1b}[0Ksection_end:1700000001:multiarch_push\r\u{1b}[0K\n"
        );
    }
}
