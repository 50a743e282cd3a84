//! The newcomer's pipeline, run by gitlab-ci-local against a real registry: the project's OWN
//! per-architecture build jobs (kaniko-style: each pushes `$CI_REGISTRY_IMAGE:<tag>-<arch>`, no
//! digest hand-off, no revision label unless the test asks) and ONLY the manifest component, on
//! its defaults (the job image aside: the built binary stands in for it on the host shell).
//! Commit after commit, `latest` must hold the images of the pipeline that published it — never
//! an earlier pipeline's, never a mix — and a failed build must leave it where it was.

use std::collections::BTreeMap;

use crate::support::glci::{
    assert_passed, children, commit, example, kaniko_shim, local_components, project, ran, run,
    summary, write,
};
use crate::support::{sha256, Registry};
use serde_json::Value as Json;

/// Two build jobs as a project writes them (buildah stands in for kaniko here): the image holds
/// the commit, so every pipeline pushes new digests; `LABEL` adds the revision label; the arm64
/// build sleeps `ARM64_DELAY` seconds first; `FAIL_ARCH` makes that build fail before pushing;
/// `LATE_ARCH`'s image reaches its tag only after its job ended.
const OWN_BUILDS: &str = r#"
include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/manifest@$CI_COMMIT_SHA
    inputs:
      job-image: registry.example.com/multiarch/multiarch:1.0.0

.build:
  stage: build
  script:
    - |
      set -eu
      [ "$ARCH" != arm64 ] || sleep "${ARM64_DELAY:-0}"
      if [ "${FAIL_ARCH:-}" = "$ARCH" ]; then echo "the $ARCH build failed"; exit 1; fi
      if [ -n "${CI_COMMIT_TAG:-}" ]; then tag=$CI_COMMIT_TAG
      elif [ "$CI_COMMIT_BRANCH" = "$CI_DEFAULT_BRANCH" ]; then tag=latest
      else tag=$CI_COMMIT_REF_SLUG; fi
      export STORAGE_DRIVER=vfs
      ctr=$(buildah from scratch)
      printf 'built from %s for %s\n' "$CI_COMMIT_SHA" "$ARCH" > payload.txt
      buildah copy --quiet "$ctr" payload.txt /payload.txt
      buildah config --os linux --arch "$ARCH" "$ctr"
      [ -z "${LABEL:-}" ] || buildah config --label "org.opencontainers.image.revision=$CI_COMMIT_SHA" "$ctr"
      buildah commit --quiet --iidfile iid "$ctr" >/dev/null
      buildah rm "$ctr" >/dev/null
      to="docker://$CI_REGISTRY_IMAGE:$tag-$ARCH"
      if [ "${LATE_ARCH:-}" = "$ARCH" ]; then
        # The image reaches the tag 6 s after the job ends (a registry's replication lag).
        setsid sh -c "sleep 6; buildah push --quiet --tls-verify=false $(cat iid) $to" >/dev/null 2>&1 < /dev/null &
        echo "pushing $ARCH late"; exit 0
      fi
      buildah push --quiet --tls-verify=false --digestfile digest "$(cat iid)" "$to"
      echo "pushed $ARCH $(cat digest)"

build-amd64:
  extends: .build
  variables:
    ARCH: amd64

build-arm64:
  extends: .build
  variables:
    ARCH: arm64
"#;

/// The project's variables for a run: its registry image in the test registry, over plain HTTP,
/// a short wait bound (a stale source fails in seconds, not 15 minutes), plus `extra`.
fn variables(reg: &Registry, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut vars = vec![
        ("CI_REGISTRY_IMAGE", reg.repo("group/app")),
        ("MULTIARCH_INSECURE_REGISTRIES", reg.host.clone()),
        ("MULTIARCH_TIMEOUT", "20s".to_string()),
    ];
    for (k, v) in extra {
        vars.push((leak(k), v.to_string()));
    }
    vars
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// The digest each build job of this run pushed, by architecture, from its log.
fn pushed(log: &str) -> BTreeMap<String, String> {
    log.lines()
        .filter_map(|l| l.split("> pushed ").nth(1))
        .map(|rest| {
            let (arch, digest) = rest.trim().split_once(' ').unwrap();
            (arch.to_string(), digest.to_string())
        })
        .collect()
}

/// The (architecture, digest) entries `tag` holds, as skopeo reads the index.
fn held(reg: &Registry, tag: &str) -> (Vec<u8>, BTreeMap<String, String>) {
    let raw = reg
        .raw(&format!("group/app:{tag}"))
        .unwrap_or_else(|| panic!("nothing under {tag}"));
    let entries = children(&raw).into_iter().collect();
    (raw, entries)
}

/// Index of the first log line where `job` says `what` ("starting", "finished").
fn when(log: &str, job: &str, what: &str) -> usize {
    log.lines()
        .position(|l| l.starts_with(job) && l[job.len()..].trim_start().starts_with(what))
        .unwrap_or_else(|| panic!("{job} never {what}:\n{log}"))
}

#[test]
fn own_build_jobs_and_only_the_manifest_component_publish_each_pipelines_own_images() {
    let reg = Registry::start();
    let repo = project(OWN_BUILDS);
    let image = reg.repo("group/app");
    let every_job = ["build-amd64", "build-arm64", "manifest"];
    let mut previous: Option<BTreeMap<String, String>> = None;

    // A, then B whose arm64 build is slower: each publishes its own two images.
    for (name, delay) in [("A", "0"), ("B", "4")] {
        let sha = commit(repo.path(), &format!("pipeline {name}"));
        let (ok, log) = run(repo.path(), &variables(&reg, &[("ARM64_DELAY", delay)]));
        assert!(ok, "pipeline {name}:\n{log}");
        assert_passed(&log, &every_job);
        // The manifest job started only when the slow build had finished (stage order).
        assert!(
            when(&log, "manifest", "starting") > when(&log, "build-arm64", "finished"),
            "pipeline {name}: the manifest job started before the arm64 build finished:\n{log}"
        );
        let built = pushed(&log);
        assert_eq!(built.len(), 2, "{log}");
        let (raw, entries) = held(&reg, "latest");
        assert_eq!(
            entries, built,
            "pipeline {name}: latest holds exactly what this pipeline's builds pushed"
        );
        if let Some(before) = &previous {
            for (arch, digest) in before {
                assert_ne!(
                    &entries[arch], digest,
                    "pipeline {name}: {arch} of the last pipeline"
                );
            }
        }
        let index: Json = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            index["annotations"]["org.opencontainers.image.revision"],
            sha.as_str()
        );
        println!("pipeline {name}: {image}:latest = {}", sha256(&raw));
        previous = Some(built);
    }

    // C: the first pipeline whose builds label their images: the same.
    let sha = commit(repo.path(), "pipeline C: the builds add the revision label");
    let (ok, log) = run(
        repo.path(),
        &variables(&reg, &[("ARM64_DELAY", "2"), ("LABEL", "yes")]),
    );
    assert!(ok, "pipeline C:\n{log}");
    assert_passed(&log, &every_job);
    let built = pushed(&log);
    let (good, entries) = held(&reg, "latest");
    assert_eq!(entries, built, "pipeline C");
    for digest in built.values() {
        let config = reg.skopeo(&["inspect", "--config", &format!("docker://{image}@{digest}")]);
        let config: Json = serde_json::from_slice(&config.stdout).unwrap();
        assert_eq!(
            config["config"]["Labels"]["org.opencontainers.image.revision"],
            sha.as_str()
        );
    }

    // D: the arm64 build fails. The manifest job never starts; latest stays at C's index.
    commit(repo.path(), "pipeline D: the arm64 build fails");
    let (ok, log) = run(repo.path(), &variables(&reg, &[("FAIL_ARCH", "arm64")]));
    assert!(!ok, "pipeline D passed:\n{log}");
    println!("pipeline D:\n{}", summary(&log));
    assert!(!ran(&log, "manifest"), "the manifest job ran:\n{log}");
    assert_eq!(
        held(&reg, "latest").0,
        good,
        "latest moved after a failed build"
    );
}

/// The awkward cases: the project's own global variables (the image under a variable of its own,
/// MULTIARCH_IMAGE made of it), and a tag pipeline (the git tag names the images).
#[test]
fn own_build_jobs_with_the_projects_own_variables_and_on_a_tag() {
    let reg = Registry::start();
    let pipeline = format!(
        "{}\nvariables:\n  IMAGE: $CI_REGISTRY_IMAGE/server\n  MULTIARCH_IMAGE: $IMAGE\n  MULTIARCH_PLATFORMS: linux/amd64,linux/arm64\n",
        OWN_BUILDS.replace("docker://$CI_REGISTRY_IMAGE:", "docker://$IMAGE:")
    );
    let repo = project(&pipeline);
    let (ok, log) = run(
        repo.path(),
        &variables(&reg, &[("CI_COMMIT_TAG", "v2.0.0")]),
    );
    assert!(ok, "{log}");
    assert_passed(&log, &["build-amd64", "build-arm64", "manifest"]);
    let raw = reg
        .raw("group/app/server:v2.0.0")
        .expect("the git tag, in the project's repository");
    let entries: BTreeMap<String, String> = children(&raw).into_iter().collect();
    assert_eq!(entries, pushed(&log));
    assert!(reg.raw("group/app/server:latest").is_none());
}

/// On its defaults the manifest job runs after every build has pushed, so it waits only a short
/// while (2 minutes, not 15) for a source not there yet: a registry's lag, not a build.
#[test]
fn on_stage_order_the_manifest_job_waits_two_minutes_for_a_late_image_not_fifteen() {
    let reg = Registry::start();
    let repo = project(OWN_BUILDS);
    commit(repo.path(), "late arm64");
    let vars: Vec<(&'static str, String)> = variables(&reg, &[("LATE_ARCH", "arm64")])
        .into_iter()
        .filter(|(k, _)| *k != "MULTIARCH_TIMEOUT")
        .collect();
    let (ok, log) = run(repo.path(), &vars);
    assert!(ok, "{log}");
    assert_passed(&log, &["build-amd64", "build-arm64", "manifest"]);
    assert!(log.contains("pushing arm64 late"), "{log}");
    let waiting = log
        .lines()
        .find(|l| l.contains("waiting for sources"))
        .unwrap_or_else(|| panic!("the manifest job did not wait:\n{log}"));
    assert!(waiting.contains("remaining=1m"), "{waiting}");
    assert_eq!(held(&reg, "latest").1.len(), 2, "{log}");
}

/// A project with its own `stages:` list: with a deploy stage after its tests, the manifest job
/// waits for the tests too; without one, the pipeline is refused before anything runs (GitLab:
/// "manifest job: chosen stage deploy does not exist"), and the `stage` input names another.
#[test]
fn a_project_with_its_own_stages_gets_the_manifest_job_after_them_or_a_clear_error() {
    let reg = Registry::start();
    let tests = "\ntests:\n  stage: test\n  script: [sleep 2, echo tested]\n";

    let repo = project(&format!(
        "stages: [build, test, deploy]\n{OWN_BUILDS}{tests}"
    ));
    let (ok, log) = run(repo.path(), &variables(&reg, &[]));
    assert!(ok, "{log}");
    assert!(
        when(&log, "manifest", "starting") > when(&log, "tests", "finished"),
        "{log}"
    );
    assert_eq!(held(&reg, "latest").1, pushed(&log));

    let unpublished = Registry::start();
    let repo = project(&format!("stages: [build, test]\n{OWN_BUILDS}{tests}"));
    let (ok, log) = run(repo.path(), &variables(&unpublished, &[]));
    assert!(!ok, "{log}");
    assert!(log.contains("stage:deploy not found for manifest"), "{log}");
    assert!(!ran(&log, "build-amd64"), "{log}");
    assert!(unpublished.raw("group/app:latest").is_none());

    // The fix the README gives: name a stage of the list after the builds.
    let pipeline = format!("stages: [build, test]\n{OWN_BUILDS}{tests}").replace(
        "      job-image: registry.example.com/multiarch/multiarch:1.0.0\n",
        "      job-image: registry.example.com/multiarch/multiarch:1.0.0\n      stage: test\n",
    );
    let repo = project(&pipeline);
    let (ok, log) = run(repo.path(), &variables(&unpublished, &[]));
    assert!(ok, "{log}");
    assert_eq!(held(&unpublished, "latest").1, pushed(&log));
}

/// The README's "Your own build jobs" pipeline, kaniko replaced by a stand-in that builds with
/// buildah (and the test app's directory for the project's): its labelled builds are published.
#[test]
fn documented_own_builds_pipeline_publishes_its_builds() {
    let reg = Registry::start();
    let docker_config = tempfile::tempdir().unwrap();
    let repo = project("");
    let shim = kaniko_shim(repo.path());
    let pipeline = local_components(&example("own-builds.yml"))
        .replace("/kaniko/executor", &shim.display().to_string())
        .replace("/kaniko/.docker/", "$DOCKER_CONFIG/")
        // On the host shell the job runs in the project's directory, not in /builds.
        .replace("$CI_PROJECT_DIR", "$PWD/app");
    write(repo.path(), ".gitlab-ci.yml", &pipeline);
    let sha = commit(repo.path(), "the README's pipeline");
    let (ok, log) = run(
        repo.path(),
        &variables(
            &reg,
            &[
                ("DOCKER_CONFIG", &docker_config.path().display().to_string()),
                ("CI_REGISTRY", &reg.host),
            ],
        ),
    );
    assert!(ok, "{log}");
    assert_passed(&log, &["build-amd64", "build-arm64", "manifest"]);
    let (_, entries) = held(&reg, "latest");
    for arch in ["amd64", "arm64"] {
        let built = sha256(&reg.raw(&format!("group/app:latest-{arch}")).unwrap());
        assert_eq!(entries[arch], built, "{arch}");
        let config = reg.skopeo(&[
            "inspect",
            "--config",
            &format!("docker://{}@{built}", reg.repo("group/app")),
        ]);
        let config: Json = serde_json::from_slice(&config.stdout).unwrap();
        assert_eq!(
            config["config"]["Labels"]["org.opencontainers.image.revision"],
            sha.as_str()
        );
    }
}

/// The shortcut: `order: needs` with the project's build jobs starts the manifest job as soon as
/// they pass, before a slow job of a later stage, and still publishes their images.
#[test]
fn the_needs_shortcut_starts_the_manifest_job_right_after_the_named_builds() {
    let reg = Registry::start();
    let pipeline = format!(
        "stages: [build, test, deploy]\n{}\ntests:\n  stage: test\n  script: [sleep 6, echo tested]\n",
        OWN_BUILDS.replace(
            "      job-image: registry.example.com/multiarch/multiarch:1.0.0\n",
            "      job-image: registry.example.com/multiarch/multiarch:1.0.0\n      order: needs\n      needs: [build-amd64, build-arm64]\n",
        )
    );
    let repo = project(&pipeline);
    let (ok, log) = run(repo.path(), &variables(&reg, &[("ARM64_DELAY", "2")]));
    assert!(ok, "{log}");
    assert_passed(&log, &["build-amd64", "build-arm64", "tests", "manifest"]);
    let started = when(&log, "manifest", "starting");
    assert!(started > when(&log, "build-arm64", "finished"), "{log}");
    assert!(started < when(&log, "tests", "finished"), "{log}");
    assert_eq!(held(&reg, "latest").1, pushed(&log));
}
