//! The GitLab CI/CD components as GitLab reads them: each `templates/<name>/template.yml` split into
//! its `spec` header and body, and the body rendered with inputs (defaults plus given ones) the way
//! GitLab interpolates `$[[ inputs.x ]]`: a whole value keeps its type (an array input becomes an
//! array, nested where it stands in a list), inside text it becomes text.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `templates/<name>/template.yml`
pub fn component(name: &str) -> PathBuf {
    root().join("templates").join(name).join("template.yml")
}

/// Every component, sorted.
pub fn components() -> Vec<PathBuf> {
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
pub fn documents(path: &Path) -> (Value, String) {
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
    for (name, _) in given {
        assert!(
            inputs.contains_key(*name),
            "{}: no input {name}",
            path.display()
        );
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

/// The rules of a rendered job as GitLab evaluates them: nested lists (an array input placed in
/// the list, or `!reference`) flattened.
pub fn flat_rules(job: &Value) -> Vec<Value> {
    fn flatten(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Sequence(items) => items.iter().for_each(|i| flatten(i, out)),
            other => out.push(other.clone()),
        }
    }
    let mut out = Vec::new();
    flatten(&job["rules"], &mut out);
    out
}

/// The shell of a build component that works out where the image goes (from `set -euf` to the line
/// announcing the push), rendered with `given` inputs: what the destination tests run.
pub fn destination_block(path: &Path, given: &[(&str, Value)]) -> String {
    let body = render(path, given);
    let script = body["multiarch-build"]["script"][0]
        .as_str()
        .unwrap()
        .to_string();
    let start = script
        .find("set -euf")
        .expect("the block starts with set -euf");
    let end = script
        .find("echo \"pushing ")
        .expect("the block ends announcing the push");
    script[start..end].to_string()
}
