//! Sources anywhere, destinations everywhere: per-arch images in other repositories (mounted)
//! and other registries (streamed), one index pushed to several destinations, manifest-tool
//! specs as its own project writes them, multi-platform indexes as sources and `--append`.
//! Two real registries (one with basic auth, one behind the bearer-token service); skopeo checks
//! that every destination holds a complete graph.

use std::time::Duration;

use crate::support::fixtures::{push as push_fixture, push_built, push_multi, Kind};
use crate::support::proxy::{Fault, Proxy};
use crate::support::token::TokenService;
use crate::support::{exited, multiarch, plain, sha256, stderr_of, vars, Options, Registry};
use serde_json::Value;

/// The index under `path` in `reg`, parsed.
fn index(reg: &Registry, path: &str) -> Value {
    serde_json::from_slice(&reg.raw(path).unwrap_or_else(|| panic!("{path} exists"))).unwrap()
}

fn children(index: &Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    m["platform"]["os"].as_str().unwrap_or(""),
                    m["platform"]["architecture"].as_str().unwrap_or("")
                ),
            )
        })
        .collect()
}

#[test]
fn sources_in_other_repositories_are_mounted_then_published() {
    let reg = Registry::start();
    let amd = push_fixture(&reg, "group/app/amd64:1", "linux/amd64", Kind::Oci);
    let arm = push_fixture(&reg, "group/app-arm64:1", "linux/arm64", Kind::Buildx);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |_, _| Fault::Pass);
    // Two layouts at once: `app/amd64` from the template, `app-arm64` handed over by digest.
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/group/app", proxy.host)),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_SOURCE_TEMPLATE", "{image}/{arch}:{tag}"),
        (
            "MULTIARCH_SOURCE_LINUX_ARM64",
            &format!("{}/group/app-arm64@{arm}", proxy.host),
        ),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
    ]);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = plain(&stderr_of(&out));
    assert!(out.status.success(), "{err}");
    let idx = index(&reg, "group/app:1");
    let kids = children(&idx);
    assert_eq!(kids[0], (amd.clone(), "linux/amd64".into()));
    assert_eq!(kids[1].1, "linux/arm64");
    assert_eq!(kids.len(), 3, "the arm64 image's attestation came along");
    reg.complete("group/app:1");
    // The blobs were mounted, not downloaded.
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("POST") && l.contains("mount=")),
        "{log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.starts_with("GET")
            && l.contains("/blobs/")
            && !l.contains("/group/app/amd64/")
            && !l.contains("/group/app-arm64/")),
        "{log:#?}"
    );
    assert!(err.contains("child copied"), "{err}");
    assert!(err.contains("mounted=2"), "{err}");

    // Again: every child is there already, nothing is copied or pushed; only the push-access
    // check opens (and gives back) an upload session.
    let before = proxy.requests();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let log = proxy.log();
    assert!(
        log[before..]
            .iter()
            .all(|l| !l.starts_with("PUT") && !l.contains("mount=")),
        "{:#?}",
        &log[before..]
    );
    assert_eq!(
        log[before..]
            .iter()
            .filter(|l| l.starts_with("POST /v2/group/app/blobs/uploads/ "))
            .count(),
        1,
        "{:#?}",
        &log[before..]
    );
}

/// A registry that will not mount (it opens an upload session instead, as registries without
/// cross-repository mounts do): blobs the destination has already are not sent again and their
/// sessions are given back; the others stream through the session it opened.
#[test]
fn a_registry_that_will_not_mount_gets_only_the_blobs_it_lacks() {
    let reg = Registry::start();
    push_fixture(&reg, "group/app/amd64:1", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "group/app/arm64:1", "linux/arm64", Kind::Oci);
    // The destination has the amd64 blobs already, under another manifest.
    push_fixture(&reg, "group/app:seed", "linux/amd64", Kind::Docker);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |req, _| {
        match req.path.split_once("?mount=") {
            Some((uploads, _)) if req.method == "POST" => Fault::Retarget(uploads.to_string()),
            _ => Fault::Pass,
        }
    });
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/group/app", proxy.host)),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_SOURCE_TEMPLATE", "{image}/{arch}:{tag}"),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
    ]);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env, work.path())
        .args(["push", "--log", "debug"])
        .output()
        .unwrap();
    let err = plain(&stderr_of(&out));
    assert!(out.status.success(), "{err}");
    reg.complete("group/app:1");
    let copied: Vec<&str> = err.lines().filter(|l| l.contains("child copied")).collect();
    assert_eq!(copied.len(), 2, "{err}");
    for line in copied {
        let expect = if line.contains("/group/app/amd64") {
            "mounted=0 streamed=0 present=2"
        } else {
            "mounted=0 streamed=2 present=0"
        };
        assert!(line.contains(expect), "{line}");
    }
    // After the configs read for the platforms, only the arm64 blobs travel.
    let log = proxy.log();
    let copying = log
        .iter()
        .position(|l| l.starts_with("POST") && l.contains("mount="))
        .unwrap();
    let count = |prefix: &str| {
        log[copying..]
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    assert_eq!(count("DELETE /v2/group/app/blobs/uploads/"), 2, "{log:#?}");
    assert_eq!(count("GET /v2/group/app/amd64/blobs/"), 0, "{log:#?}");
    assert_eq!(count("GET /v2/group/app/arm64/blobs/"), 2, "{log:#?}");
    assert_eq!(count("PUT /v2/group/app/blobs/uploads/"), 2, "{log:#?}");
}

#[test]
fn sources_on_another_registry_are_streamed_into_each_destination() {
    // The builds live in a token-protected registry (GitLab's kind); publish to a basic-auth one
    // (ECR's kind) and to the source registry itself, in one run.
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenService::start(dir.path(), "gitlab-ci-token", "job-token-2b4d");
    let source = Registry::start_with(Options {
        user: Some(("gitlab-ci-token".into(), "job-token-2b4d".into())),
        token: Some((tokens.realm.clone(), tokens.bundle.clone())),
        ..Default::default()
    });
    let dest = Registry::start_with(Options {
        user: Some(("AWS".into(), "ecr-like-password".into())),
        ..Default::default()
    });
    let amd = push_built(
        &source,
        "group/app:1-amd64",
        "linux/amd64",
        Kind::Oci,
        Some("c0ffee0"),
    );
    let arm = push_built(
        &source,
        "group/app:1-arm64",
        "linux/arm64",
        Kind::Docker,
        Some("c0ffee0"),
    );
    let token_host = tokens
        .realm
        .trim_start_matches("http://")
        .trim_end_matches("/token");
    let auth = format!(
        r#"{{"auths":{{"{}":{{"username":"AWS","password":"ecr-like-password"}}}}}}"#,
        dest.host
    );
    let env = vars(&[
        (
            "MULTIARCH_IMAGE",
            &format!("{},{}", dest.repo("team/app"), source.repo("group/app")),
        ),
        ("MULTIARCH_TAGS", "1"),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            &format!("{}:{{tag}}-{{arch}}", source.repo("group/app")),
        ),
        (
            "MULTIARCH_INSECURE_REGISTRIES",
            &format!("{},{},{token_host}", source.host, dest.host),
        ),
        ("MULTIARCH_REVISION", "c0ffee0"),
        ("MULTIARCH_DOTENV", "multiarch.env"),
        ("CI_REGISTRY", &source.host),
        ("CI_REGISTRY_USER", "gitlab-ci-token"),
        ("CI_REGISTRY_PASSWORD", "job-token-2b4d"),
        ("DOCKER_AUTH_CONFIG", &auth),
    ]);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env, work.path())
        .args(["push", "--log", "debug"])
        .output()
        .unwrap();
    let err = plain(&stderr_of(&out));
    assert!(out.status.success(), "{err}");
    for secret in ["job-token-2b4d", "ecr-like-password"] {
        assert!(!err.contains(secret), "a secret in the log");
    }
    let in_dest = index(&dest, "team/app:1");
    let in_source = index(&source, "group/app:1");
    assert_eq!(in_dest, in_source, "one index, pushed to each");
    assert_eq!(
        children(&in_dest),
        [(amd, "linux/amd64".into()), (arm, "linux/arm64".into())]
    );
    dest.complete("team/app:1");
    source.complete("group/app:1");
    assert!(err.contains("streamed=2"), "{err}");
    let digest = sha256(&dest.raw("team/app:1").unwrap());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        format!(
            "{}:1@{digest}\n{}:1@{digest}\n",
            dest.repo("team/app"),
            source.repo("group/app")
        )
    );
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    assert!(
        dotenv.contains(&format!(
            "MULTIARCH_REF={}@{digest}\n",
            dest.repo("team/app")
        )),
        "{dotenv}"
    );
    assert!(
        dotenv.contains(&format!(
            "MULTIARCH_REFS={}@{digest},{}@{digest}\n",
            dest.repo("team/app"),
            source.repo("group/app")
        )),
        "{dotenv}"
    );
}

#[test]
fn a_blob_that_hashes_wrong_on_the_way_is_refused_and_no_tag_moves() {
    let source = Registry::start();
    let dest = Registry::start();
    push_fixture(&source, "app:1-amd64", "linux/amd64", Kind::Oci);
    let manifest: Value = serde_json::from_slice(&source.raw("app:1-amd64").unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let size = manifest["layers"][0]["size"].as_u64().unwrap() as usize;
    let path = format!("/v2/app/blobs/{layer}");
    // Same size, other bytes: only the hash can tell.
    let proxy = Proxy::start(&source.host, Duration::ZERO, move |req, _| {
        if req.method == "GET" && req.path == path {
            Fault::Json {
                code: 200,
                body: "x".repeat(size),
            }
        } else {
            Fault::Pass
        }
    });
    let env = vars(&[
        ("MULTIARCH_IMAGE", &dest.repo("app")),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_PLATFORMS", "linux/amd64"),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            &format!("{}/app:{{tag}}-{{arch}}", proxy.host),
        ),
        (
            "MULTIARCH_INSECURE_REGISTRIES",
            &format!("{},{}", proxy.host, dest.host),
        ),
    ]);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    let err = exited(&out, 4);
    assert!(err.contains(&format!("does not match {layer}")), "{err}");
    assert!(dest.raw("app:1").is_none(), "no tag moved");
    let blob = dest.skopeo_unchecked(&[
        "inspect",
        "--raw",
        &format!("docker://{}/app@{layer}", dest.host),
    ]);
    assert!(!blob.status.success(), "the bad blob was not committed");
}

#[test]
fn manifest_tool_specs_as_its_own_project_writes_them() {
    let reg = Registry::start();
    // Its integration spec: four repositories, index annotations, arm64 with variant v8.
    for (repo, platform) in [
        ("ppc64le_alpine", "linux/ppc64le"),
        ("amd64_alpine", "linux/amd64"),
        ("s390x_alpine", "linux/s390x"),
        ("aarch64_alpine", "linux/arm64/v8"),
    ] {
        push_fixture(&reg, &format!("{repo}:latest"), platform, Kind::Docker);
    }
    let work = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"image: {r}/alpine:latest
annotations:
  org.opencontainers.image.title: My Image Title
  org.opencontainers.image.licenses: Apache-2.0
manifests:
  -
    image: {r}/ppc64le_alpine:latest
    platform:
      architecture: ppc64le
      os: linux
  -
    image: {r}/amd64_alpine:latest
    platform:
      architecture: amd64
      os: linux
  -
    image: {r}/s390x_alpine:latest
    platform:
      architecture: s390x
      os: linux
  -
    image: {r}/aarch64_alpine:latest
    platform:
      architecture: arm64
      os: linux
      variant: v8
"#,
        r = reg.host
    );
    std::fs::write(work.path().join("test-registry.yml"), spec).unwrap();
    let env = vars(&[("MULTIARCH_INSECURE_REGISTRIES", &reg.host)]);
    let out = multiarch(&env, work.path())
        .args(["push", "--spec", "test-registry.yml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let idx = index(&reg, "alpine:latest");
    // Annotations asked for: an OCI index, even over Docker v2 children.
    assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(
        idx["annotations"]["org.opencontainers.image.title"],
        "My Image Title"
    );
    assert_eq!(children(&idx).len(), 4);
    reg.complete("alpine:latest");

    // Its release spec: numeric architectures, two windows/amd64 told apart by os.version.
    for (tag, platform) in [
        ("linux_amd64_v1", "linux/amd64"),
        ("linux_i386_v1", "linux/386"),
        ("linux_arm_v7_v1", "linux/arm/v7"),
        ("win2019_v1", "windows/amd64@10.0.17763.1234"),
        ("win2016_v1", "windows/amd64@10.0.14393.5678"),
    ] {
        push_fixture(
            &reg,
            &format!("mplatform/manifest-tool:{tag}"),
            platform,
            Kind::Docker,
        );
    }
    let spec = format!(
        r#"image: {r}/mplatform/manifest-tool:v1
tags: [ "latest" ]
manifests:
  -
    image: {r}/mplatform/manifest-tool:linux_amd64_v1
    platform:
      architecture: amd64
      os: linux
  -
    image: {r}/mplatform/manifest-tool:linux_i386_v1
    platform:
      architecture: 386
      os: linux
  -
    image: {r}/mplatform/manifest-tool:linux_arm_v7_v1
    platform:
      architecture: arm
      os: linux
      variant: v7
  -
    image: {r}/mplatform/manifest-tool:win2019_v1
    platform:
      architecture: amd64
      os: windows
  -
    image: {r}/mplatform/manifest-tool:win2016_v1
    platform:
      architecture: amd64
      os: windows
"#,
        r = reg.host
    );
    std::fs::write(work.path().join("pushml.yaml"), spec).unwrap();
    let mut with_ci = env.clone();
    with_ci.insert(
        "CI_PROJECT_URL".into(),
        "https://gitlab.example.com/tools/manifest-tool".into(),
    );
    let out = multiarch(&with_ci, work.path())
        .args(["push", "--spec", "pushml.yaml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let idx = index(&reg, "mplatform/manifest-tool:latest");
    // Docker children, no annotations asked for: a Docker manifest list, as manifest-tool makes.
    assert_eq!(
        idx["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let versions: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["platform"]["os.version"].as_str())
        .collect();
    assert_eq!(versions, ["10.0.17763.1234", "10.0.14393.5678"]);
    // Only CI-derived annotations: kept out of the Docker list, and the log says so.
    assert!(
        stderr_of(&out).contains("the CI annotations are left out"),
        "{}",
        stderr_of(&out)
    );

    // An entry without a platform: the image's config says it (here: a multi-platform index
    // contributes its children, within --platforms).
    push_multi(
        &reg,
        "upstream/base:3",
        &["linux/amd64", "linux/arm64", "linux/s390x"],
    );
    let spec = format!(
        "image: {r}/mine:1\nmanifests:\n  - image: {r}/upstream/base:3\n",
        r = reg.host
    );
    // Saved by a Windows editor: a byte order mark and CRLF line ends.
    let windows = format!("\u{feff}{}", spec.replace('\n', "\r\n"));
    std::fs::write(work.path().join("base.yaml"), windows).unwrap();
    let out = multiarch(&env, work.path())
        .args([
            "push",
            "--spec",
            "base.yaml",
            "--platforms",
            "linux/amd64,linux/arm64",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let platforms: Vec<String> = children(&index(&reg, "mine:1"))
        .into_iter()
        .map(|c| c.1)
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    reg.complete("mine:1");
}

#[test]
fn a_late_platform_is_appended_to_a_published_index() {
    let reg = Registry::start();
    let amd = push_fixture(&reg, "app:1.4-amd64", "linux/amd64", Kind::Oci);
    let arm = push_fixture(&reg, "app:1.4-arm64", "linux/arm64", Kind::Oci);
    let env = vars(&[
        ("MULTIARCH_IMAGE", &reg.repo("app")),
        ("MULTIARCH_TAGS", "1.4"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
    ]);
    let work = tempfile::tempdir().unwrap();
    multiarch(&env, work.path()).arg("push").assert().success();
    // Weeks later a riscv64 runner builds 1.4 and adds it, leaving the others alone.
    let riscv = push_fixture(&reg, "app:1.4-riscv64", "linux/riscv64", Kind::Oci);
    let out = multiarch(&env, work.path())
        .args(["push", "--append", "--platforms", "linux/riscv64"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        children(&index(&reg, "app:1.4")),
        [
            (amd, "linux/amd64".into()),
            (arm, "linux/arm64".into()),
            (riscv.clone(), "linux/riscv64".into())
        ]
    );
    // A rebuilt amd64 replaces its old child in place.
    let amd2 = push_built(
        &reg,
        "app:1.4-amd64",
        "linux/amd64",
        Kind::Oci,
        Some("rebuilt"),
    );
    let out = multiarch(&env, work.path())
        .args(["push", "--append", "--platforms", "linux/amd64"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let kids = children(&index(&reg, "app:1.4"));
    assert_eq!(kids[0], (amd2, "linux/amd64".into()));
    assert_eq!(kids[2], (riscv, "linux/riscv64".into()));
    reg.complete("app:1.4");
}

#[test]
fn an_existing_multi_platform_index_contributes_the_children_of_the_listed_platforms() {
    let reg = Registry::start();
    push_multi(
        &reg,
        "mirror/base:2",
        &["linux/amd64", "linux/arm64", "linux/ppc64le"],
    );
    let env = vars(&[
        ("MULTIARCH_IMAGE", &reg.repo("app")),
        ("MULTIARCH_TAGS", "2"),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            &format!("{}/mirror/base:{{tag}}", reg.host),
        ),
        ("MULTIARCH_PLATFORMS", "linux/arm64,linux/amd64"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
    ]);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let platforms: Vec<String> = children(&index(&reg, "app:2"))
        .into_iter()
        .map(|c| c.1)
        .collect();
    assert_eq!(platforms, ["linux/arm64", "linux/amd64"]);
    reg.complete("app:2");
}
