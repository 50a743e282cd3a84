//! Pipelines run for real by gitlab-ci-local on the host shell, in throwaway git repositories that
//! hold this checkout's components (included by `component:` as users include them, pointed at the
//! repository itself) and the built `multiarch` on PATH in place of the job image. gitlab-ci-local
//! ignores `id_tokens`, `resource_group`, `retry` and `timeout`.

use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;
use serde_norway::{Mapping, Value};

use super::require;
use super::template::root;

/// A documented pipeline, `docs/pipelines/<name>`.
pub fn example(name: &str) -> String {
    std::fs::read_to_string(root().join("docs/pipelines").join(name)).unwrap()
}

/// Points the docs' `component:` references (published project, version) at this checkout.
pub fn local_components(pipeline: &str) -> String {
    pipeline
        .replace(
            "$CI_SERVER_FQDN/multiarch/multiarch/",
            "$CI_SERVER_FQDN/$CI_PROJECT_PATH/",
        )
        .replace("@1.0.0", "@$CI_COMMIT_SHA")
}

/// The pipeline with `inputs` added to the includes whose component path contains the key, and
/// extra top-level entries (jobs, variables: mappings are merged into what is there).
pub fn adapt(text: &str, inputs: &[(&str, &[(&str, Value)])], extra: &[(&str, &str)]) -> String {
    let mut doc: Value = serde_norway::from_str(&local_components(text)).unwrap();
    for include in doc["include"].as_sequence_mut().unwrap() {
        let component = include["component"].as_str().unwrap().to_string();
        let map = include
            .as_mapping_mut()
            .unwrap()
            .entry("inputs".into())
            .or_insert(Value::Mapping(Mapping::new()))
            .as_mapping_mut()
            .unwrap();
        for (which, given) in inputs {
            if component.contains(&format!("/{which}@")) {
                for (k, v) in *given {
                    map.insert(Value::from(*k), v.clone());
                }
            }
        }
    }
    for (key, yaml) in extra {
        let value: Value = serde_norway::from_str(yaml).unwrap();
        let top = doc.as_mapping_mut().unwrap();
        match (top.get_mut(*key), value) {
            (Some(Value::Mapping(have)), Value::Mapping(add)) => have.extend(add),
            (_, value) => {
                top.insert(Value::from(*key), value);
            }
        }
    }
    serde_norway::to_string(&doc).unwrap()
}

/// A throwaway git project (remote `group/app`, branch `main`) holding this checkout's templates,
/// a tiny `FROM scratch` app to build in `app/` (and, at the root, a Dockerfile that must not be
/// the one built), and `pipeline` as its `.gitlab-ci.yml`.
pub fn project(pipeline: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    assert!(Command::new("cp")
        .arg("-r")
        .arg(root().join("templates"))
        .arg(repo.path())
        .status()
        .unwrap()
        .success());
    write(
        repo.path(),
        "app/Dockerfile",
        "FROM scratch AS base\nCOPY platform.txt /platform.txt\nFROM base AS final\nARG NOTE\nLABEL note=\"$NOTE\"\n",
    );
    write(repo.path(), "app/platform.txt", "built by a component\n");
    write(
        repo.path(),
        "Dockerfile",
        "FROM scratch\nLABEL built.from=the-project-root\n",
    );
    write(repo.path(), ".gitlab-ci.yml", pipeline);
    git(repo.path(), &["init", "-q", "-b", "main"]);
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "origin",
            "https://gitlab.example.com/group/app.git",
        ],
    );
    commit(repo.path(), "pipeline");
    repo
}

/// Writes `text` to `path` in the project (directories created).
pub fn write(repo: &Path, path: &str, text: &str) {
    let file = repo.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

/// Commits everything (a new commit even when nothing changed); returns its SHA.
pub fn commit(repo: &Path, message: &str) -> String {
    git(repo, &["add", "-A"]);
    git(
        repo,
        &[
            "-c",
            "user.email=ci@example.com",
            "-c",
            "user.name=ci",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        ],
    );
    head(repo)
}

pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `multiarch` the pipelines run: the one cargo built for the integration tests, or in the
/// benchmark (which shares this module) the one `MULTIARCH_BIN` names.
fn binary() -> String {
    option_env!("CARGO_BIN_EXE_multiarch")
        .map(String::from)
        .or_else(|| std::env::var("MULTIARCH_BIN").ok())
        .expect("the integration tests get the built binary from cargo, the benchmark from MULTIARCH_BIN")
}

/// gitlab-ci-local with the built `multiarch` first on PATH (it stands in for the job image).
pub fn command(repo: &Path, args: &[&str]) -> Command {
    let glci = require(
        "gitlab-ci-local",
        "npm install gitlab-ci-local and node@22 into .ci-tools/node",
    );
    require("rsync", "apt-get install rsync");
    let binary = binary();
    let binary_dir = Path::new(&binary).parent().unwrap();
    let path = format!(
        "{}:{}",
        binary_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(glci);
    cmd.args(args)
        .current_dir(repo)
        .env("PATH", path)
        .env("HOME", repo);
    cmd
}

/// gitlab-ci-local's arguments for a whole pipeline on the host shell with `variables` (as project
/// CI/CD variables).
pub fn arguments(variables: &[(&str, String)]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--force-shell-executor".into(),
        "--shell-isolation".into(),
        "--no-color".into(),
    ];
    for (k, v) in variables {
        args.push("--variable".into());
        args.push(format!("{k}={v}"));
    }
    args
}

/// Runs the project's pipeline with `variables`; returns whether it passed and the whole log.
pub fn run(repo: &Path, variables: &[(&str, String)]) -> (bool, String) {
    run_in(repo, variables, None)
}

/// The same, with an /etc/hosts of its own when given (a mount namespace of the run's own).
pub fn run_in(repo: &Path, variables: &[(&str, String)], hosts: Option<&Path>) -> (bool, String) {
    require("buildah", "apt-get install buildah");
    let args = arguments(variables);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = command(repo, &args);
    if let Some(hosts) = hosts {
        cmd = super::names::within(&cmd, hosts);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), log_of(&out))
}

/// Lists the jobs the project's pipeline would have with `variables` (gitlab-ci-local --list):
/// whether it could, and the listing (with the log when it could not).
pub fn list(repo: &Path, variables: &[(&str, String)]) -> (bool, String) {
    let mut args = vec!["--list".to_string(), "--no-color".to_string()];
    for (k, v) in variables {
        args.push("--variable".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = command(repo, &args).output().unwrap();
    if out.status.success() {
        (true, String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        (false, log_of(&out))
    }
}

/// The job names of a `--list` listing.
pub fn jobs_listed(listing: &str) -> Vec<String> {
    let mut lines = listing.lines().skip_while(|l| !l.starts_with("name "));
    lines.next();
    lines
        .map(|l| l.split("  ").next().unwrap_or("").trim().to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

pub fn log_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that each of `jobs` passed, and prints the pipeline's summary.
pub fn assert_passed(log: &str, jobs: &[&str]) {
    for job in jobs {
        assert!(
            log.lines()
                .any(|l| l.trim_start().starts_with("PASS") && l.contains(job)),
            "{job} did not pass:\n{log}"
        );
    }
    println!("{}", summary(log));
}

/// The PASS/FAIL lines and the closing line of a pipeline's log.
pub fn summary(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("PASS") || l.contains("FAIL") || l.contains("pipeline finished"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `job` ran at all in the pipeline whose log this is.
pub fn ran(log: &str, job: &str) -> bool {
    log.lines()
        .any(|l| l.starts_with(job) && l[job.len()..].trim_start().starts_with("starting"))
}

/// The entries of the index `raw` (architecture, digest), checked to be amd64 then arm64, each
/// the image its per-arch tag `group/app:latest-<arch>` in `reg` holds: this pipeline's builds.
pub fn builds_of(reg: &super::Registry, raw: &[u8]) -> Vec<(String, String)> {
    let kids = children(raw);
    assert_eq!(
        kids.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["amd64", "arm64"]
    );
    for (arch, digest) in &kids {
        let built = super::sha256(&reg.raw(&format!("group/app:latest-{arch}")).unwrap());
        assert_eq!(
            &built, digest,
            "{arch}: the index holds this pipeline's build"
        );
    }
    kids
}

/// (architecture, digest) of each entry of an index.
pub fn children(raw: &[u8]) -> Vec<(String, String)> {
    let index: Json = serde_json::from_slice(raw).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// No kaniko binary runs here: a stand-in that takes kaniko's executor flags (and finds the
/// Dockerfile as kaniko does: the path as given if it exists, else in the context), builds with
/// buildah and pushes over plain HTTP. Written to `dir`; returns its path.
pub fn kaniko_shim(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let shim = dir.join("kaniko-executor");
    std::fs::write(&shim, KANIKO_SHIM).unwrap();
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    shim
}

const KANIKO_SHIM: &str = r#"#!/usr/bin/env python3
import argparse, os, subprocess, sys
os.environ["STORAGE_DRIVER"] = "vfs"
os.environ.pop("DOCKER_CONFIG", None)  # kaniko's own; buildah would insist on its config.json
p = argparse.ArgumentParser()
p.add_argument("--context"); p.add_argument("--dockerfile"); p.add_argument("--destination")
p.add_argument("--custom-platform"); p.add_argument("--digest-file"); p.add_argument("--target")
p.add_argument("--label", action="append", default=[]); p.add_argument("--build-arg", action="append", default=[])
a = p.parse_args()
# kaniko's resolution: the path as given if it exists, else in the context.
dockerfile = a.dockerfile if os.path.exists(a.dockerfile) else os.path.join(a.context, a.dockerfile)
cmd = ["buildah", "build", "--platform", a.custom_platform, "-f", dockerfile, "-t", a.destination]
for l in a.label: cmd += ["--label", l]
for b in a.build_arg: cmd += ["--build-arg", b]
if a.target: cmd += ["--target", a.target]
subprocess.run(cmd + [a.context], check=True)
push = ["buildah", "push", "--tls-verify=false"] + (["--digestfile", a.digest_file] if a.digest_file else [])
subprocess.run(push + [a.destination], check=True)
"#;

/// The multiarch image build jobs take the binary from (`tool-image`): this build's binary,
/// stripped to an image's size, as `/usr/local/bin/multiarch` in an image pushed to `reg`;
/// returns its reference.
pub fn tool_image(reg: &super::Registry) -> String {
    let built = binary();
    let image = reg.repo("multiarch:test");
    let stripped = tempfile::tempdir().unwrap();
    let binary = stripped.path().join("multiarch");
    let strip = Command::new("strip")
        .arg("-o")
        .arg(&binary)
        .arg(&built)
        .status()
        .unwrap();
    assert!(
        strip.success(),
        "strip (binutils) makes the test binary image-sized"
    );
    let ctr = buildah(&["from", "scratch"]);
    buildah(&[
        "copy",
        &ctr,
        binary.to_str().unwrap(),
        "/usr/local/bin/multiarch",
    ]);
    buildah(&["commit", "--quiet", &ctr, "localhost/multiarch-tool:test"]);
    buildah(&["rm", &ctr]);
    buildah(&[
        "push",
        "--tls-verify=false",
        "localhost/multiarch-tool:test",
        &format!("docker://{image}"),
    ]);
    image
}

/// Runs buildah (vfs storage, as the jobs here do); its stdout.
pub fn buildah(args: &[&str]) -> String {
    let out = Command::new("buildah")
        .env("STORAGE_DRIVER", "vfs")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
