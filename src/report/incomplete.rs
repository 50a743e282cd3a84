//! What a `--if-complete` run that published nothing tells users and later jobs: the platforms it
//! awaits and why (stderr, or `--output json`), and the dotenv variable that names them
//! (`MULTIARCH_AWAITING`). Pure: returns strings; the edge writes them.
//!
//! Only a run that published writes `MULTIARCH_PUBLISHED=true`; one that did not leaves it out
//! rather than writing `false`. A later job that needs every build job receives each one's
//! report, and GitLab keeps one value per name: with `true` from the job that published and
//! nothing from the others, `MULTIARCH_PUBLISHED` says the right thing whatever the order.

use serde_json::json;

use crate::error::{not_ready_reason, NotReady};
use crate::settings::Plan;

/// The dotenv variable a `--if-complete` run that published sets to `true` (unset: it published
/// nothing).
pub(crate) const PUBLISHED: &str = "MULTIARCH_PUBLISHED";
/// The dotenv variable naming, comma-separated, the platforms a `--if-complete` run awaits.
pub(crate) const AWAITING: &str = "MULTIARCH_AWAITING";

/// The platform each awaited source promises (its reference when a spec leaves it to the
/// config), in plan order.
pub(super) fn platforms<'a>(
    plan: &'a Plan,
    awaited: &'a [(String, NotReady)],
) -> Vec<(String, &'a str, &'a NotReady)> {
    awaited
        .iter()
        .map(|(reference, why)| {
            let platform = plan
                .sources
                .iter()
                .find(|s| s.reference.to_string() == *reference)
                .and_then(|s| s.platform.as_ref())
                .map_or_else(|| reference.clone(), ToString::to_string);
            (platform, reference.as_str(), why)
        })
        .collect()
}

/// The stderr text: nothing published, then one line per awaited platform with why.
pub(crate) fn text(plan: &Plan, awaited: &[(String, NotReady)]) -> String {
    let mut out = format!(
        "not every platform of this revision is there yet, nothing was published (--if-complete): the build job that completes the set publishes; awaiting {}:",
        awaited.len()
    );
    for (platform, reference, why) in platforms(plan, awaited) {
        let why = not_ready_reason(why, plan.revision.as_deref());
        out.push_str(&format!("\n  - {platform} {reference}: {why}"));
    }
    out
}

/// The `--output json` answer: `{"published": false, "awaiting": [{platform, reference, reason}]}`.
pub(crate) fn json(plan: &Plan, awaited: &[(String, NotReady)]) -> String {
    let v = json!({"published": false, "awaiting": awaiting(plan, awaited)});
    format!(
        "{}\n",
        serde_json::to_string_pretty(&v).expect("json values serialise")
    )
}

/// Each awaited platform for `--output json`: `{platform, reference, reason}`.
pub(crate) fn awaiting(plan: &Plan, awaited: &[(String, NotReady)]) -> serde_json::Value {
    let awaiting: Vec<_> = platforms(plan, awaited)
        .into_iter()
        .map(|(platform, reference, why)| {
            json!({
                "platform": platform,
                "reference": reference,
                "reason": not_ready_reason(why, plan.revision.as_deref()),
            })
        })
        .collect();
    json!(awaiting)
}

/// The dotenv of a run that published nothing: `MULTIARCH_AWAITING` (platforms,
/// comma-separated) and no `MULTIARCH_PUBLISHED`. Platforms and references hold no control
/// character by their grammar; a value that did would be left out, never split a line.
pub(crate) fn dotenv(plan: &Plan, prefix: &str, awaited: &[(String, NotReady)]) -> String {
    let list: Vec<String> = platforms(plan, awaited)
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    let list = list.join(",");
    if list.chars().any(char::is_control) {
        return String::new();
    }
    format!("{prefix}{AWAITING}={list}\n")
}

/// The line a `--if-complete` run that published adds to the dotenv `report::dotenv` writes.
pub(crate) fn published(prefix: &str) -> String {
    format!("{prefix}{PUBLISHED}=true\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Stale;
    use crate::testing::plan;

    fn awaited() -> Vec<(String, NotReady)> {
        vec![
            ("r.example/app:latest-arm64".into(), NotReady::Missing),
            (
                "r.example/app:latest-amd64".into(),
                NotReady::Stale {
                    why: Stale::Revision("1a2b3c4".into()),
                    builder: None,
                    hand_off: None,
                },
            ),
        ]
    }

    #[test]
    fn names_each_awaited_platform_and_why() {
        let p = plan(&[
            ("MULTIARCH_IF_COMPLETE", "true"),
            ("MULTIARCH_REVISION", "3f2a1c0"),
        ]);
        assert_eq!(
            text(&p, &awaited()),
            "not every platform of this revision is there yet, nothing was published (--if-complete): the build job that completes the set publishes; awaiting 2:\n  - linux/arm64 r.example/app:latest-arm64: missing\n  - linux/amd64 r.example/app:latest-amd64: stale: built from revision 1a2b3c4, this pipeline is 3f2a1c0"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&p, &awaited())).unwrap();
        assert_eq!(v["published"], false);
        assert_eq!(v["awaiting"][1]["platform"], "linux/amd64");
        assert_eq!(v["awaiting"][0]["reason"], "missing");
    }

    #[test]
    fn dotenv_names_what_is_awaited_and_only_a_publisher_says_published() {
        let p = plan(&[("MULTIARCH_IF_COMPLETE", "true")]);
        assert_eq!(
            dotenv(&p, "API_", &awaited()),
            "API_MULTIARCH_AWAITING=linux/arm64,linux/amd64\n"
        );
        assert_eq!(published("API_"), "API_MULTIARCH_PUBLISHED=true\n");
    }
}
