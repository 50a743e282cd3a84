//! What users and later jobs read: stdout results (one `image:tag@digest` line per tag, or JSON),
//! the dotenv file for GitLab's `artifacts:reports:dotenv`, GitLab log-section markers, and the
//! `plan` / `inspect` views. Pure: returns strings; the edge writes them.

use serde_json::json;

pub(crate) mod incomplete;
pub(crate) mod superseded;

use crate::content::{Checked, Verdict};
use crate::digest::Digest;
use crate::index::Child;
use crate::manifest::Fetched;
use crate::model::SourceOrigin;
use crate::outcome::{Kept, Outcome, Status};
use crate::platform::Platform;
use crate::settings::Plan;

/// One `registry/app:tag@sha256:…` line per target tag that holds the index now, in plan order;
/// a tag kept because it holds something newer gets a line naming what it holds, followed by a
/// space and `kept` (the first field of every line is a reference to what the tag holds).
pub(crate) fn text(outcome: &Outcome) -> String {
    outcome
        .targets
        .iter()
        .filter_map(|(t, s)| match s {
            Status::Pushed | Status::Unchanged | Status::Planned => {
                Some(format!("{t}@{}\n", outcome.index_of(t.repository()).digest))
            }
            Status::Kept => outcome
                .kept
                .iter()
                .find(|k| k.reference == *t)
                .map(kept_line),
            Status::Failed | Status::Unknown => None,
        })
        .collect()
}

/// The stdout line of a tag kept because it holds something newer: what it holds, then `kept`.
pub(crate) fn kept_line(k: &Kept) -> String {
    format!("{}@{} kept\n", k.reference, k.holds)
}

/// The `--output json` entry of a kept tag.
fn kept_json(k: &Kept) -> serde_json::Value {
    json!({"reference": k.reference.to_string(), "status": Status::Kept, "holds": k.holds, "reason": k.why})
}

/// The `--output json` summary: `digest` and `ref` (the first destination's `image@digest`,
/// `null` when it does not hold the index) and `refs` (each destination that holds it), as in
/// the dotenv.
pub(crate) fn json(outcome: &Outcome, if_complete: bool) -> String {
    // As in the dotenv: the digest of an index some registry holds (a dry run's is the one it
    // would push), `null` when no tag moved and no copy was stored (every tag kept, or refused).
    let planned = outcome.targets.iter().all(|(_, s)| *s == Status::Planned);
    let digest = match outcome.stored().first().and_then(|r| r.digest()) {
        Some(d) => Some(d.clone()),
        None if planned => Some(outcome.index.digest.clone()),
        None => None,
    };
    let mut v = json!({
        "digest": digest,
        "mediaType": outcome.index.media_type,
        "ref": outcome.first_stored().map(|r| r.to_string()),
        "refs": outcome.stored().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "targets": outcome.targets.iter().map(|(t, s)| {
            if let Some(k) = outcome.kept.iter().find(|k| k.reference == *t) {
                return kept_json(k);
            }
            let mut v = json!({"reference": t.to_string(), "status": s});
            if matches!(s, Status::Pushed | Status::Unchanged) {
                v["digest"] = json!(outcome.index_of(t.repository()).digest);
            }
            v
        }).collect::<Vec<_>>(),
        "failures": outcome.failures.iter().map(|(t, e)| json!({"reference": t.to_string(), "error": e.to_string()})).collect::<Vec<_>>(),
        "manifests": outcome.index.children.iter().map(child_json).collect::<Vec<_>>(),
        "missing": outcome.missing,
    });
    // `--if-complete` says whether it published in both cases (`false` is the incomplete
    // answer's, and a run whose every tag was kept published nothing either).
    if if_complete {
        v["published"] = json!(outcome.holding().next().is_some());
    }
    format!(
        "{}\n",
        serde_json::to_string_pretty(&v).expect("json values serialise")
    )
}

fn child_json(c: &Child) -> serde_json::Value {
    let mut v = json!({
        "platform": c.platform.to_string(),
        "digest": c.digest,
        "mediaType": c.media_type,
        "source": c.source,
        "attestation": c.attestation,
    });
    if let Some(checked) = &c.content {
        v["entrypoint"] = content_json(checked);
    }
    v
}

/// The content check of one image: `result` (`matched`, `mismatch`, `not checked`, `off`), the
/// file and its machine, how it was found, or why it was not checked; layers and bytes read.
fn content_json(c: &Checked) -> serde_json::Value {
    let mut v = match &c.verdict {
        Verdict::Off => json!({"result": "off"}),
        Verdict::Matched {
            file,
            machine,
            trail,
        } => json!({"result": "matched", "file": file, "machine": machine, "found": trail}),
        Verdict::Mismatch {
            file,
            found,
            found_platform,
            trail,
        } => {
            json!({"result": "mismatch", "file": file, "machine": found, "machinePlatform": found_platform, "found": trail})
        }
        Verdict::NotChecked { reason, warn } => {
            json!({"result": "not checked", "reason": reason, "warning": warn})
        }
    };
    v["layersRead"] = json!(c.layers_read);
    v["bytesRead"] = json!(c.bytes_read);
    v
}

/// The dotenv file: `MULTIARCH_DIGEST`, `MULTIARCH_REF` (the first destination's
/// `image@digest`; empty when it does not hold the index), `MULTIARCH_REFS` (each destination's
/// that holds it: its index was stored there), `MULTIARCH_TAGGED` (the target tags
/// that hold the index, `image:tag` comma-separated), `MULTIARCH_KEPT` (those left holding a
/// newer index, the same way; empty when none) and one `MULTIARCH_DIGEST_<OS>_<ARCH>[_<VARIANT>]` per image platform
/// (attestations have none). Every value is a digest (checked grammar), a reference or a tag: no
/// value can carry a newline or a control character, so no line can be forged.
pub(crate) fn dotenv(outcome: &Outcome, prefix: &str) -> String {
    let index = &outcome.index;
    let tagged: Vec<String> = outcome.holding().map(ToString::to_string).collect();
    let stored = outcome.stored();
    let refs: Vec<String> = stored.iter().map(ToString::to_string).collect();
    let first = outcome.first_stored().map(|r| r.to_string());
    // The digest of an index that is in the registry (the first destination's that stores one):
    // nothing when no tag moved and no copy was stored (every tag kept, or refused).
    let digest = stored
        .first()
        .and_then(|r| r.digest())
        .map(ToString::to_string);
    let mut lines = summary_lines(digest, first, &refs, &tagged, &outcome.kept);
    // The images of what was published: none when nothing was.
    if !stored.is_empty() {
        for c in index.children.iter().filter(|c| !c.attestation) {
            lines.push((
                format!("MULTIARCH_DIGEST_{}", c.platform.env_suffix()),
                c.digest.to_string(),
            ));
        }
    }
    dotenv_text(prefix, lines)
}

/// The dotenv variables every `push` writes, in order: the digest and references of the index
/// stored (empty when none is), the tags that hold it and those kept.
pub(crate) fn summary_lines(
    digest: Option<String>,
    first: Option<String>,
    refs: &[String],
    tagged: &[String],
    kept: &[Kept],
) -> Vec<(String, String)> {
    let kept: Vec<String> = kept.iter().map(|k| k.reference.to_string()).collect();
    vec![
        ("MULTIARCH_DIGEST".to_string(), digest.unwrap_or_default()),
        ("MULTIARCH_REF".to_string(), first.unwrap_or_default()),
        ("MULTIARCH_REFS".to_string(), refs.join(",")),
        ("MULTIARCH_TAGGED".to_string(), tagged.join(",")),
        ("MULTIARCH_KEPT".to_string(), kept.join(",")),
    ]
}

/// `NAME=value` lines with `prefix`; a value holding a control character is left out, never
/// split a line.
pub(crate) fn dotenv_text(prefix: &str, lines: Vec<(String, String)>) -> String {
    lines
        .into_iter()
        .filter(|(_, v)| !v.chars().any(char::is_control))
        .map(|(k, v)| format!("{prefix}{k}={v}\n"))
        .collect()
}

/// The largest dotenv report GitLab accepts: 5 KiB (gitlab-org/gitlab#411139); a larger one
/// fails the job's report after the tags moved.
pub(crate) const DOTENV_LIMIT: usize = 5 * 1024;

/// The size of the largest dotenv `plan` can produce, known before any request: `dotenv` itself
/// (and the `--if-complete` line), composed for an outcome where every target tag moved, with one
/// sha256 child per platform the plan names (a spec entry that leaves its platform to the
/// registry counts as one, or as each `--platforms` entry that filters it). Platforms an
/// `--append` base brings are not known yet and not counted.
pub(crate) fn dotenv_worst_case(plan: &Plan, prefix: &str) -> usize {
    let digest = Digest::parse(&format!("sha256:{}", "0".repeat(64))).expect("a sha256 digest");
    let from = plan.images[0].clone();
    let unknown = [Platform::normalised("linux", "arm", Some("v7"), None)];
    let child = |platform: &Platform| Child {
        platform: platform.clone(),
        digest: digest.clone(),
        media_type: String::new(),
        source: String::new(),
        from: from.clone(),
        attestation: false,
        revision: None,
        size: 0,
        content: None,
    };
    let children = plan
        .sources
        .iter()
        .flat_map(|s| match (&s.platform, &plan.platform_filter) {
            (Some(p), _) => std::slice::from_ref(p).iter(),
            (None, Some(filter)) => filter.iter(),
            (None, None) => unknown.iter(),
        })
        .map(child)
        .collect();
    let index = crate::index::Index {
        bytes: Vec::new(),
        digest: digest.clone(),
        media_type: crate::manifest::OCI_INDEX,
        children,
    };
    let targets = plan
        .targets
        .iter()
        .map(|t| (t.clone(), Status::Pushed))
        .collect();
    let mut size = dotenv(&Outcome::new(index, targets), prefix).len();
    if plan.if_complete {
        size += incomplete::published(prefix).len();
    }
    size
}

/// `plan`: sources (each with where it came from and the revision it holds), targets and the
/// exact index JSON.
pub(crate) fn plan(plan: &Plan, outcome: &Outcome) -> String {
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
            Some(c) => {
                out.push_str(&format!(
                    "  {:<16} {} {} (from {from}, revision {})\n",
                    s.platform_text(),
                    s.reference,
                    c.digest,
                    c.revision.as_deref().unwrap_or("unlabelled")
                ));
                if let Some(checked) = &c.content {
                    out.push_str(&format!("  {:<16} entrypoint {}\n", "", checked.summary()));
                }
            }
            None => out.push_str(&format!(
                "  {:<16} {} (from {from}; missing)\n",
                s.platform_text(),
                s.reference
            )),
        }
    }
    out.push_str("targets:\n");
    for (t, status) in &outcome.targets {
        let would = match status {
            Status::Kept => outcome.kept.iter().find(|k| k.reference == *t).map_or_else(
                || "kept".to_string(),
                |k| format!("kept: holds {} ({})", k.holds, k.why),
            ),
            Status::Unchanged => "unchanged: holds this index already".to_string(),
            _ if outcome.unread.is_some() => "planned".to_string(),
            _ => "moves to this index".to_string(),
        };
        out.push_str(&format!("  {t}  {would}\n"));
    }
    if let Some(why) = &outcome.unread {
        out.push_str(&format!(
            "  (what the tags hold could not be read, so which would be kept is not known: {why})\n"
        ));
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
pub(crate) struct Entry {
    /// The platform as the index entry (or the image's config) writes it (`linux/arm64/v8`),
    /// shown: inspect shows what is there, not what matching takes it for.
    pub(crate) platform: String,
    pub(crate) digest: Digest,
    pub(crate) media_type: String,
    pub(crate) size: u64,
    pub(crate) attestation: bool,
    /// The content check of an image (`None`: an attestation, or not asked for).
    pub(crate) content: Option<Checked>,
}

/// `inspect` as text: media type, digest, size, then one line per platform.
pub(crate) fn inspect_text(reference: &str, fetched: &Fetched, entries: &[Entry]) -> String {
    let mut out = format!(
        "reference:  {reference}\nmedia type: {}\ndigest:     {}\nsize:       {}\n",
        fetched.media_type,
        fetched.digest,
        fetched.bytes.len()
    );
    out.push_str("platforms:\n");
    for e in entries {
        let note = if e.attestation { "  (attestation)" } else { "" };
        out.push_str(&format!("  {:<16} {}{note}\n", e.platform, e.digest));
        if let Some(checked) = &e.content {
            out.push_str(&format!("  {:<16} entrypoint {}\n", "", checked.summary()));
        }
    }
    out
}

/// `inspect --json`.
pub(crate) fn inspect_json(reference: &str, fetched: &Fetched, entries: &[Entry]) -> String {
    let v = json!({
        "reference": reference,
        "mediaType": fetched.media_type,
        "digest": fetched.digest,
        "size": fetched.bytes.len(),
        "manifests": entries.iter().map(|e| json!({
            "platform": e.platform,
            "digest": e.digest,
            "mediaType": e.media_type,
            "size": e.size,
            "attestation": e.attestation,
            "entrypoint": e.content.as_ref().map(content_json),
        })).collect::<Vec<_>>(),
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&v).expect("json values serialise")
    )
}

/// GitLab's collapsible section start marker (<https://docs.gitlab.com/ci/jobs/job_logs/#custom-collapsible-sections>).
pub(crate) fn section_start(unix_secs: u64, name: &str, title: &str, collapsed: bool) -> String {
    format!("\x1b[0Ksection_start:{unix_secs}:{name}[collapsed={collapsed}]\r\x1b[0K{title}\n")
}

/// GitLab's section end marker.
pub(crate) fn section_end(unix_secs: u64, name: &str) -> String {
    format!("\x1b[0Ksection_end:{unix_secs}:{name}\r\x1b[0K\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use crate::reference::{Reference, Repository};

    fn d(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn index() -> Index {
        let p = |s: &str| Platform::parse("t", s).unwrap();
        let child = |platform: Platform, digest: Digest, attestation: bool| Child {
            platform,
            digest,
            media_type: crate::manifest::OCI_MANIFEST.into(),
            source: "r.example/app:1-x".into(),
            from: Repository::parse("t", "r.example/app").unwrap(),
            attestation,
            revision: None,
            size: 2,
            content: None,
        };
        Index {
            bytes: b"{}".to_vec(),
            digest: d('0'),
            media_type: crate::manifest::OCI_INDEX,
            children: vec![
                child(p("linux/amd64"), d('a'), false),
                child(p("linux/arm/v7"), d('b'), false),
                child(
                    Platform::normalised("unknown", "unknown", None, None),
                    d('c'),
                    true,
                ),
            ],
        }
    }

    fn outcome(targets: Vec<(Reference, Status)>) -> Outcome {
        Outcome::new(index(), targets)
    }

    fn with_kept(mut o: Outcome, tag: &Reference, holds: Digest) -> Outcome {
        o.targets.push((tag.clone(), Status::Kept));
        o.kept.push(crate::outcome::Kept {
            reference: tag.clone(),
            holds,
            why: "it holds the index of a newer pipeline".into(),
        });
        o
    }

    #[test]
    fn dotenv_has_digest_ref_tags_and_one_line_per_platform() {
        let image = Repository::parse("t", "r.example/g/app").unwrap();
        let o = outcome(vec![
            (image.tag("latest"), Status::Pushed),
            (image.tag("1.0"), Status::Failed),
        ]);
        let (i, a, b) = (d('0'), d('a'), d('b'));
        assert_eq!(
            dotenv(&o, ""),
            format!(
                "MULTIARCH_DIGEST={i}\n\
                 MULTIARCH_REF=r.example/g/app@{i}\n\
                 MULTIARCH_REFS=r.example/g/app@{i}\n\
                 MULTIARCH_TAGGED=r.example/g/app:latest\n\
                 MULTIARCH_KEPT=\n\
                 MULTIARCH_DIGEST_LINUX_AMD64={a}\n\
                 MULTIARCH_DIGEST_LINUX_ARM_V7={b}\n"
            )
        );
    }

    #[test]
    fn kept_tags_are_named_on_stdout_with_what_they_hold_and_in_the_dotenv() {
        let image = Repository::parse("t", "r.example/g/app").unwrap();
        let o = outcome(vec![
            (image.tag("1.9.1"), Status::Pushed),
            (image.tag("1.9"), Status::Unchanged),
        ]);
        let o = with_kept(o, &image.tag("latest"), d('f'));
        let (i, f) = (d('0'), d('f'));
        assert_eq!(
            text(&o),
            format!(
                "r.example/g/app:1.9.1@{i}\nr.example/g/app:1.9@{i}\nr.example/g/app:latest@{f} kept\n"
            )
        );
        let env = dotenv(&o, "");
        assert!(
            env.contains("MULTIARCH_TAGGED=r.example/g/app:1.9.1,r.example/g/app:1.9\nMULTIARCH_KEPT=r.example/g/app:latest\n"),
            "{env}"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&o, false)).unwrap();
        assert_eq!(j["targets"][2]["status"], "kept");
        assert_eq!(j["targets"][2]["holds"], f.to_string());
        assert_eq!(j.get("published"), None, "only --if-complete says");
    }

    /// Every tag kept: this run's index is nowhere, so no variable names it, and an
    /// `--if-complete` run says it published nothing.
    #[test]
    fn every_tag_kept_names_no_index() {
        let image = Repository::parse("t", "r.example/g/app").unwrap();
        let o = outcome(vec![(image.tag("latest"), Status::Kept)]);
        let o = with_kept(o, &image.tag("latest"), d('f'));
        let env = dotenv(&o, "");
        // Nor the images of an index that was not published.
        assert_eq!(
            env,
            "MULTIARCH_DIGEST=\nMULTIARCH_REF=\nMULTIARCH_REFS=\nMULTIARCH_TAGGED=\nMULTIARCH_KEPT=r.example/g/app:latest\n"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&o, true)).unwrap();
        assert_eq!(j["published"], false);
        assert_eq!(j["ref"], serde_json::Value::Null);
        assert_eq!(j["digest"], serde_json::Value::Null, "as MULTIARCH_DIGEST");
        // A dry run names the index it would push.
        let planned = outcome(vec![(image.tag("latest"), Status::Planned)]);
        let j: serde_json::Value = serde_json::from_str(&json(&planned, false)).unwrap();
        assert_eq!(j["digest"], d('0').to_string());
    }

    #[test]
    fn a_prefix_names_every_variable() {
        let image = Repository::parse("t", "r.example/g/app").unwrap();
        let o = outcome(vec![(image.tag("latest"), Status::Pushed)]);
        let text = dotenv(&o, "API_");
        assert!(
            text.lines().all(|l| l.starts_with("API_MULTIARCH_")),
            "{text}"
        );
    }

    #[test]
    fn text_is_one_line_per_tag_that_holds_the_index() {
        let image = Repository::parse("t", "r.example/app").unwrap();
        let o = outcome(vec![
            (image.tag("latest"), Status::Pushed),
            (image.tag("1.0"), Status::Unchanged),
            (image.tag("1"), Status::Failed),
        ]);
        let i = d('0');
        assert_eq!(
            text(&o),
            format!("r.example/app:latest@{i}\nr.example/app:1.0@{i}\n")
        );
    }

    #[test]
    fn the_worst_case_dotenv_is_the_one_a_run_that_moved_every_tag_writes() {
        let plan = crate::testing::plan(&[
            ("MULTIARCH_TAGS", "latest,1.4.2"),
            ("MULTIARCH_PLATFORMS", "linux/amd64,linux/arm/v7"),
        ]);
        let targets = plan
            .targets
            .iter()
            .map(|t| (t.clone(), Status::Pushed))
            .collect();
        let written = dotenv(&Outcome::new(index(), targets), "API_");
        assert_eq!(dotenv_worst_case(&plan, "API_"), written.len(), "{written}");
        let complete = crate::testing::plan(&[
            ("MULTIARCH_TAGS", "latest,1.4.2"),
            ("MULTIARCH_PLATFORMS", "linux/amd64,linux/arm/v7"),
            ("MULTIARCH_IF_COMPLETE", "true"),
        ]);
        assert_eq!(
            dotenv_worst_case(&complete, "API_"),
            written.len() + "API_MULTIARCH_PUBLISHED=true\n".len()
        );
    }

    #[test]
    fn sixty_four_long_tags_exceed_gitlab_s_dotenv_limit() {
        let tags: Vec<String> = (0..64)
            .map(|i| format!("release-candidate-build-{i:02}"))
            .collect();
        let plan = crate::testing::plan(&[
            (
                "MULTIARCH_IMAGE",
                "r.example/group/subgroup/some-long-application-name",
            ),
            ("MULTIARCH_TAGS", &tags.join(",")),
        ]);
        assert!(dotenv_worst_case(&plan, "") > DOTENV_LIMIT);
        let few = crate::testing::plan(&[("MULTIARCH_TAGS", "1.4.2,1.4,1,latest")]);
        assert!(dotenv_worst_case(&few, "") < DOTENV_LIMIT / 4);
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
