//! What the GitLab pipeline a run belongs to says about time and order: when it started
//! (`CI_PIPELINE_CREATED_AT`) and when its commit was made (`CI_COMMIT_TIMESTAMP`), to judge
//! unlabelled sources by their config's `created`; its project and pipeline ids (`CI_PROJECT_ID`,
//! `CI_PIPELINE_ID`), recorded in the index so tags never move backwards; and the override that
//! allows a deliberate rollback (`--rollback` / `MULTIARCH_ROLLBACK`).

use super::table::ROLLBACK;
use super::values::Inputs;
use crate::error::Error;
use crate::timestamp::Timestamp;

/// The pipeline's clocks and id, read only when sources are checked for this pipeline's revision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Times {
    /// When GitLab created the pipeline (GitLab's clock).
    pub(crate) started: Option<Timestamp>,
    /// The commit's time, which reproducible builds (`SOURCE_DATE_EPOCH`) write as `created`.
    pub(crate) commit: Option<Timestamp>,
    /// This pipeline's id (`CI_PIPELINE_ID`), to tell a later pipeline's build by its label.
    pub(crate) pipeline: Option<u64>,
}

/// The pipeline's start and commit time, each checked: GitLab writes ISO 8601 (RFC 3339), so
/// anything else is a setting to fix, exit 2, rather than a judgement made on a guess.
pub(super) fn times(inputs: &Inputs, checked: bool) -> Result<Times, Error> {
    if !checked {
        return Ok(Times::default());
    }
    let read = |name: &'static str| -> Result<Option<Timestamp>, Error> {
        let Some(f) = inputs.gitlab(name) else {
            return Ok(None);
        };
        Timestamp::parse(f.text).map(Some).map_err(|reason| {
            Error::invalid(
                name,
                f.text,
                reason,
                "GitLab sets it in ISO 8601 UTC, e.g. 2026-12-04T12:07:14Z; fix or unset it (it dates unlabelled sources; MULTIARCH_REVISION=none skips that check)",
            )
        })
    };
    Ok(Times {
        started: read("CI_PIPELINE_CREATED_AT")?,
        commit: read("CI_COMMIT_TIMESTAMP")?,
        pipeline: id(inputs, "CI_PIPELINE_ID")?.and_then(|id| id.parse().ok()),
    })
}

/// A GitLab id (`CI_PROJECT_ID`, `CI_PIPELINE_ID`) to record in the index: decimal digits.
pub(super) fn id(inputs: &Inputs, name: &'static str) -> Result<Option<String>, Error> {
    let Some(f) = inputs.gitlab(name) else {
        return Ok(None);
    };
    let text = f.text.trim();
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            name,
            f.text,
            "not a GitLab id (decimal digits)",
            "GitLab sets it; unset it outside a pipeline",
        ));
    }
    Ok(Some(text.trim_start_matches('0').to_string()).filter(|t| !t.is_empty()))
}

/// `--rollback`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Rollback {
    #[value(help = "keep tags that hold a newer pipeline's index or a higher version")]
    Refuse,
    #[value(help = "move them back deliberately")]
    Allow,
}

/// `--rollback` / `MULTIARCH_ROLLBACK`: `refuse` (the default) keeps a tag that holds a newer
/// pipeline's index or a higher version; `allow` moves it anyway.
pub(super) fn rollback(inputs: &Inputs) -> Result<bool, Error> {
    let mode = inputs.choice(&ROLLBACK, "unknown rollback mode")?;
    Ok(mode == Some(Rollback::Allow))
}

#[cfg(test)]
mod tests {
    use crate::labels::{PIPELINE, PROJECT};
    use crate::settings::Given;
    use crate::settings::{resolve, Env, Plan};
    use crate::timestamp::Timestamp;

    fn plan(extra: &[(&str, &str)]) -> Result<Plan, crate::error::Error> {
        let mut env: Env = [
            ("GITLAB_CI", "true"),
            ("CI_REGISTRY_IMAGE", "r.example/g/app"),
            ("CI_COMMIT_REF_SLUG", "main"),
            ("CI_COMMIT_SHA", "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"),
            ("CI_COMMIT_TIMESTAMP", "2026-11-27T03:38:34+00:00"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        resolve(&Given::default(), &env, None).map(|(plan, _)| plan)
    }

    #[test]
    fn the_pipeline_is_recorded_and_its_clocks_read_when_sources_are_checked() {
        let p = plan(&[
            ("CI_PROJECT_ID", "42"),
            ("CI_PIPELINE_ID", "0001234"),
            ("CI_PIPELINE_CREATED_AT", "2026-12-04T12:07:14Z"),
        ])
        .unwrap();
        let a = &p.annotations.values;
        assert_eq!((a[PROJECT].as_str(), a[PIPELINE].as_str()), ("42", "1234"));
        assert!(p.annotations.asked.is_none(), "recorded, not asked for");
        assert_eq!(
            p.times.started,
            Some(Timestamp::parse("2026-12-04T12:07:14Z").unwrap())
        );
        assert_eq!(p.times.commit.map(|t| t.unix()), Some(1_795_750_714));
        assert!(!p.rollback);
        // Without a revision to check, the clocks are not read (nor judged).
        let p = plan(&[
            ("MULTIARCH_REVISION", "none"),
            ("CI_PIPELINE_CREATED_AT", "garbage"),
        ])
        .unwrap();
        assert_eq!(p.times, super::Times::default());
        // Outside a pipeline nothing is recorded; `k=` removes a key like any annotation.
        let p = plan(&[
            ("CI_PIPELINE_ID", "9"),
            ("MULTIARCH_ANNOTATIONS", &format!("{PIPELINE}=")),
        ])
        .unwrap();
        assert!(!p.annotations.values.contains_key(PIPELINE));
    }

    #[test]
    fn bad_ids_clocks_and_rollback_modes_exit_2_naming_them() {
        for (extra, named) in [
            (
                &[("CI_PIPELINE_ID", "12a")][..],
                "CI_PIPELINE_ID = \"12a\" is invalid",
            ),
            (
                &[("CI_PROJECT_ID", "-4")],
                "CI_PROJECT_ID = \"-4\" is invalid",
            ),
            (
                &[("CI_PIPELINE_CREATED_AT", "2026-12-04 12:07")],
                "CI_PIPELINE_CREATED_AT = \"2026-12-04 12:07\" is invalid",
            ),
            (
                &[
                    ("CI_PIPELINE_CREATED_AT", "2026-12-04T12:07:14Z"),
                    ("CI_COMMIT_TIMESTAMP", "today"),
                ],
                "CI_COMMIT_TIMESTAMP = \"today\" is invalid",
            ),
            (
                &[("MULTIARCH_ROLLBACK", "yes")],
                "MULTIARCH_ROLLBACK = \"yes\" is invalid: unknown rollback mode",
            ),
        ] {
            let e = plan(extra).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(e.to_string().starts_with(named), "{e}");
        }
        for (mode, allow) in [("refuse", false), ("ALLOW", true)] {
            assert_eq!(
                plan(&[("MULTIARCH_ROLLBACK", mode)]).unwrap().rollback,
                allow
            );
        }
    }
}
