//! `multiarch push` / `plan` end to end against the real registry, checked with skopeo.

use crate::support;

use std::collections::BTreeMap;

use crate::support::fixtures::{push as push_fixture, push_two_arches, Kind};
use crate::support::{exited, job, multiarch, sha256, stderr_of, Registry};
use serde_json::Value;

#[test]
fn publishes_an_index_that_skopeo_resolves_per_architecture() {
    let reg = Registry::start();
    let amd = push_fixture(&reg, "group/app:latest-amd64", "linux/amd64", Kind::Docker);
    let arm64 = push_fixture(&reg, "group/app:latest-arm64", "linux/arm64", Kind::Oci);
    let armv7 = push_fixture(&reg, "group/app:latest-armv7", "linux/arm/v7", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let env = job(
        &reg,
        &[(
            "MULTIARCH_PLATFORMS",
            "linux/amd64,linux/arm64,linux/arm/v7",
        )],
    );

    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let raw = reg.raw("group/app:latest").expect("the index exists");
    let digest = sha256(&raw);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}:latest@{digest}\n", reg.repo("group/app"))
    );

    // What skopeo sees: an OCI index (one child is OCI) with our three children and annotations.
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let children: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_string(),
                m["platform"]["architecture"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        children,
        [
            (amd.clone(), "amd64".into()),
            (arm64.clone(), "arm64".into()),
            (armv7.clone(), "arm".into())
        ]
    );
    assert_eq!(index["manifests"][2]["platform"]["variant"], "v7");
    assert_eq!(
        index["annotations"]["org.opencontainers.image.revision"],
        "3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
    );
    assert_eq!(
        index["annotations"]["org.opencontainers.image.created"],
        "2026-11-27T03:38:34+00:00"
    );

    // A real client picks the right child for each architecture.
    for (arch, variant, child) in [
        ("arm64", None, &arm64),
        ("amd64", None, &amd),
        ("arm", Some("v7"), &armv7),
    ] {
        let mut args = vec!["inspect", "--override-os=linux"];
        let a = format!("--override-arch={arch}");
        args.push(&a);
        let v = variant.map(|v| format!("--override-variant={v}"));
        if let Some(v) = &v {
            args.push(v);
        }
        let target = format!("docker://{}", reg.repo("group/app:latest"));
        args.push(&target);
        let seen: Value = serde_json::from_slice(&reg.skopeo(&args).stdout).unwrap();
        assert_eq!(seen["Architecture"], arch);
        assert_eq!(
            seen["Digest"],
            digest.as_str(),
            "skopeo resolved through our index"
        );
        // Each fixture has its own layer: the one skopeo reports says which child it picked.
        let child_manifest: Value =
            serde_json::from_slice(&reg.raw(&format!("group/app@{child}")).unwrap()).unwrap();
        assert_eq!(
            seen["Layers"][0], child_manifest["layers"][0]["digest"],
            "{arch} {variant:?}"
        );
    }

    // The whole graph is complete: copying every architecture succeeds.
    let copy = tempfile::tempdir().unwrap();
    reg.skopeo(&[
        "copy",
        "--all",
        &format!("docker://{}", reg.repo("group/app:latest")),
        &format!("dir:{}", copy.path().display()),
    ]);

    // dotenv for later jobs.
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    assert_eq!(
        dotenv,
        format!(
            "MULTIARCH_DIGEST={digest}\nMULTIARCH_REF={repo}@{digest}\nMULTIARCH_REFS={repo}@{digest}\nMULTIARCH_TAGGED={repo}:latest\nMULTIARCH_KEPT=\nMULTIARCH_DIGEST_LINUX_AMD64={amd}\nMULTIARCH_DIGEST_LINUX_ARM64={arm64}\nMULTIARCH_DIGEST_LINUX_ARM_V7={armv7}\n",
            repo = reg.repo("group/app")
        )
    );
    // GitLab sections on stderr.
    assert!(
        stderr_of(&out).contains("section_start:"),
        "{}",
        stderr_of(&out)
    );

    // Re-running is a no-op with the same digest.
    let again = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        format!("{}:latest@{digest}\n", reg.repo("group/app"))
    );
    assert!(
        stderr_of(&again).contains("unchanged"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(reg.raw("group/app:latest").unwrap(), raw);
}

#[test]
fn docker_children_make_a_docker_manifest_list_under_every_tag() {
    let reg = Registry::start();
    push_fixture(&reg, "group/app:1.4.2-amd64", "linux/amd64", Kind::Docker);
    push_fixture(&reg, "group/app:1.4.2-arm64", "linux/arm64", Kind::Docker);
    let work = tempfile::tempdir().unwrap();
    let env = job(&reg, &[("MULTIARCH_TAGS", "1.4.2,1.4,latest")]);
    let out = multiarch(&env, work.path())
        .args(["push", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let statuses: Vec<&str> = summary["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pushed", "pushed", "pushed"]);
    for tag in ["1.4.2", "1.4", "latest"] {
        let raw = reg.raw(&format!("group/app:{tag}")).unwrap();
        assert_eq!(sha256(&raw), summary["digest"].as_str().unwrap(), "{tag}");
    }
}

#[test]
fn buildx_per_arch_indexes_are_flattened_with_their_attestations() {
    let reg = Registry::start();
    push_two_arches(&reg, "group/app", Kind::Buildx);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&job(&reg, &[]), work.path())
        .arg("push")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let index: Value = serde_json::from_slice(&reg.raw("group/app:latest").unwrap()).unwrap();
    let platforms = reg.platforms("group/app:latest");
    assert_eq!(
        platforms,
        [
            "linux/amd64",
            "unknown/unknown",
            "linux/arm64",
            "unknown/unknown"
        ]
    );
    assert_eq!(
        index["manifests"][1]["annotations"]["vnd.docker.reference.digest"],
        index["manifests"][0]["digest"]
    );
    let seen: Value = serde_json::from_slice(
        &reg.skopeo(&[
            "inspect",
            "--override-os=linux",
            "--override-arch=arm64",
            &format!("docker://{}", reg.repo("group/app:latest")),
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(seen["Architecture"], "arm64");
    let copy = tempfile::tempdir().unwrap();
    reg.skopeo(&[
        "copy",
        "--all",
        &format!("docker://{}", reg.repo("group/app:latest")),
        &format!("dir:{}", copy.path().display()),
    ]);
}

#[test]
fn wrong_platform_behind_a_tag_fails_with_4_and_pushes_nothing() {
    let reg = Registry::start();
    push_fixture(&reg, "group/app:latest-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "group/app:latest-arm64", "linux/amd64", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&job(&reg, &[]), work.path())
        .arg("push")
        .output()
        .unwrap();
    exited(&out, 4);
    assert!(out.stdout.is_empty());
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "{}:latest-arm64 was expected to be linux/arm64 but its image config says linux/amd64",
            reg.repo("group/app")
        )),
        "{err}"
    );
    assert!(reg.raw("group/app:latest").is_none());
    assert!(!work.path().join("multiarch.env").exists());
}

#[test]
fn missing_sources_fail_with_3_naming_each_and_push_nothing() {
    let reg = Registry::start();
    push_fixture(&reg, "group/app:latest-amd64", "linux/amd64", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let env = job(
        &reg,
        &[
            ("MULTIARCH_TIMEOUT", "0"),
            ("MULTIARCH_PLATFORMS", "linux/amd64,linux/arm64,linux/s390x"),
        ],
    );
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    exited(&out, 3);
    assert!(out.stdout.is_empty());
    let err = stderr_of(&out);
    for missing in ["latest-arm64", "latest-s390x"] {
        assert!(
            err.contains(&format!("  - {}:{missing}", reg.repo("group/app"))),
            "{err}"
        );
    }
    assert!(reg.raw("group/app:latest").is_none());

    // --allow-missing publishes what exists.
    let out = multiarch(&env, work.path())
        .args(["push", "--allow-missing"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let index: Value = serde_json::from_slice(&reg.raw("group/app:latest").unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert!(stderr_of(&out).contains("latest-s390x"));
}

#[test]
fn docker_format_over_oci_children_is_refused_with_a_hint() {
    let reg = Registry::start();
    push_fixture(&reg, "group/app:latest-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "group/app:latest-arm64", "linux/arm64", Kind::Docker);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&job(&reg, &[("MULTIARCH_FORMAT", "docker")]), work.path())
        .arg("push")
        .output()
        .unwrap();
    let err = exited(&out, 4);
    assert!(
        err.contains(&format!(
            "error: a Docker manifest list (format docker) cannot reference {}:latest-amd64 (sha256:",
            reg.repo("group/app")
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "): it is application/vnd.oci.image.manifest.v1+json, not a Docker v2 image manifest\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("  hint: publish these images with MULTIARCH_FORMAT=oci (--format oci) or auto, which makes an OCI index of them; for a Docker list, build Docker v2 images (e.g. buildah build --format docker, or docker buildx build --output type=image,push=true,oci-mediatypes=false)\n"),
        "{err}"
    );
    assert!(reg.raw("group/app:latest").is_none());
}

/// Logs are coloured in a GitLab job, unless `NO_COLOR` says otherwise (https://no-color.org);
/// GitLab's section markers are not colours and stay.
#[test]
fn no_color_turns_colours_off_even_in_gitlab() {
    let reg = Registry::start();
    push_two_arches(&reg, "group/app", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let colour = "\x1b[32m INFO\x1b[0m";
    let out = multiarch(&job(&reg, &[]), work.path())
        .arg("plan")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(colour), "{}", stderr_of(&out));
    let out = multiarch(&job(&reg, &[("NO_COLOR", "1")]), work.path())
        .arg("plan")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(" INFO plan images="), "{err}");
    let escapes = err.replace("\x1b[0Ksection_", "").replace("\x1b[0K", "");
    assert!(!escapes.contains('\x1b'), "{err}");
    assert!(err.contains("\x1b[0Ksection_start:"), "{err}");
}

/// A `RUST_LOG` the filter grammar refuses is said once, and the run goes on at warn level.
#[test]
fn an_unusable_rust_log_is_said_and_the_run_goes_on() {
    let reg = Registry::start();
    push_two_arches(&reg, "group/app", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&job(&reg, &[("RUST_LOG", "multiarch=loud")]), work.path())
        .arg("plan")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.starts_with("RUST_LOG=\"multiarch=loud\" is not a filter multiarch can use ("),
        "{err}"
    );
    assert!(!err.contains(" INFO "), "at warn: {err}");
}

#[test]
fn plan_prints_the_index_and_pushes_nothing() {
    let reg = Registry::start();
    push_two_arches(&reg, "group/app", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    let env = job(&reg, &[]);
    let plan = multiarch(&env, work.path()).arg("plan").output().unwrap();
    assert!(plan.status.success(), "{}", stderr_of(&plan));
    let text = String::from_utf8(plan.stdout).unwrap();
    assert!(text.starts_with("sources:\n  linux/amd64 "), "{text}");
    assert!(
        text.contains(&format!(
            "targets:\n  {}:latest  moves to this index\n",
            reg.repo("group/app")
        )),
        "{text}"
    );
    assert!(reg.raw("group/app:latest").is_none());
    assert!(!work.path().join("multiarch.env").exists());

    // The JSON plan holds exactly the bytes push then publishes.
    let json_start = text.find("\n{").unwrap() + 1;
    let planned = text[json_start..].trim_end().as_bytes().to_vec();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.status.success());
    assert_eq!(reg.raw("group/app:latest").unwrap(), planned);
}

#[test]
fn a_manifest_tool_spec_publishes_under_every_tag_it_names() {
    let reg = Registry::start();
    push_fixture(&reg, "tools/app:2.0-ppc", "linux/ppc64le", Kind::Docker);
    push_fixture(&reg, "tools/app:2.0-armhf", "linux/arm/v7", Kind::Docker);
    let work = tempfile::tempdir().unwrap();
    let spec = format!(
        "image: {repo}:2.0\ntags: ['2', latest]\nmanifests:\n  - image: {repo}:2.0-ppc\n    platform:\n      architecture: ppc64le\n      os: linux\n  - image: {repo}:2.0-armhf\n    platform:\n      architecture: arm\n      os: linux\n      variant: v7\n",
        repo = reg.repo("tools/app")
    );
    std::fs::write(work.path().join("spec.yml"), spec).unwrap();
    let out = multiarch(&reg.access_env(), work.path())
        .args(["push", "--spec", "spec.yml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let raw = reg.raw("tools/app:latest").unwrap();
    let digest = sha256(&raw);
    let lines: String = ["2.0", "2", "latest"]
        .iter()
        .map(|t| format!("{}:{t}@{digest}\n", reg.repo("tools/app")))
        .collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), lines);
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );

    // The same through MULTIARCH_SPEC; flags beat the spec, its sources cannot be replaced.
    let mut env = reg.access_env();
    env.insert("MULTIARCH_SPEC".into(), "spec.yml".into());
    multiarch(&env, work.path()).arg("push").assert().success();
    let out = multiarch(&env, work.path())
        .args(["push", "--tags", "x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{}:x@{}\n",
            reg.repo("tools/app"),
            sha256(&reg.raw("tools/app:x").unwrap())
        )
    );
    let out = multiarch(&env, work.path())
        .args([
            "push",
            "--spec",
            "spec.yml",
            "--source-template",
            "{image}:{arch}",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("lists its own sources"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn an_insecure_registry_written_as_a_url_is_reached_over_plain_http() {
    let reg = Registry::start();
    push_two_arches(&reg, "group/app", Kind::Oci);
    let work = tempfile::tempdir().unwrap();
    for spelling in [format!("http://{}", reg.host), format!("{}/", reg.host)] {
        let env = job(
            &reg,
            &[
                ("MULTIARCH_INSECURE_REGISTRIES", &spelling),
                ("MULTIARCH_TIMEOUT", "5s"),
            ],
        );
        let out = multiarch(&env, work.path()).arg("push").output().unwrap();
        assert!(out.status.success(), "{spelling}: {}", stderr_of(&out));
    }
    assert!(reg.raw("group/app:latest").is_some());
}

/// `GET path` from the registry at `host` (`[::1]:PORT`) with basic auth, over a plain socket:
/// skopeo cannot name an IPv6 registry, so this checks what landed without our code.
fn get_over_ipv6(host: &str, path: &str, user: &str, password: &str) -> Vec<u8> {
    use base64::Engine as _;
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nAccept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    response[at + 4..].to_vec()
}

#[test]
fn publishes_to_a_registry_named_by_its_ipv6_address() {
    let port = std::net::TcpListener::bind("[::1]:0")
        .expect("IPv6 loopback ([::1]) is available")
        .local_addr()
        .unwrap()
        .port();
    let v6 = Registry::start_with(support::Options {
        user: Some(("builder".into(), "v6-password".into())),
        listen: Some((format!("[::1]:{port}"), "localhost".into())),
        ..Default::default()
    });
    assert_eq!(v6.host, format!("[::1]:{port}"));
    // The builds live on an IPv4 registry (skopeo cannot push to an IPv6 one); publishing copies
    // them over, so every request kind reaches [::1]: HEAD, GET, blob uploads, manifest PUTs.
    let source = Registry::start();
    push_two_arches(&source, "app", Kind::Oci);
    // The credential is found under the bracketed host in a docker config.
    let auth = format!(
        r#"{{"auths":{{"{}":{{"username":"builder","password":"v6-password"}}}}}}"#,
        v6.host
    );
    let mut env: BTreeMap<String, String> = [
        ("MULTIARCH_IMAGE", v6.repo("app")),
        ("MULTIARCH_TAGS", "latest".into()),
        (
            "MULTIARCH_SOURCE_TEMPLATE",
            format!("{}:{{tag}}-{{arch}}", source.repo("app")),
        ),
        ("MULTIARCH_TIMEOUT", "10s".into()),
        ("DOCKER_AUTH_CONFIG", auth),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // Not listed as insecure: TLS is tried, and the bracketed host is named.
    env.insert("MULTIARCH_INSECURE_REGISTRIES".into(), source.host.clone());
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    exited(&out, 2);
    assert!(
        stderr_of(&out).contains(&format!(
            "cannot reach {}: it answered the TLS handshake in plain HTTP",
            v6.host
        )),
        "{}",
        stderr_of(&out)
    );

    env.insert(
        "MULTIARCH_INSECURE_REGISTRIES".into(),
        format!("{},{}", source.host, v6.host),
    );
    let out = multiarch(&env, work.path()).arg("push").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let raw = get_over_ipv6(
        &v6.host,
        "/v2/app/manifests/latest",
        "builder",
        "v6-password",
    );
    let digest = sha256(&raw);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}:latest@{digest}\n", v6.repo("app"))
    );
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    for child in index["manifests"].as_array().unwrap() {
        let path = format!("/v2/app/manifests/{}", child["digest"].as_str().unwrap());
        let manifest = get_over_ipv6(&v6.host, &path, "builder", "v6-password");
        assert_eq!(sha256(&manifest), child["digest"].as_str().unwrap());
    }

    let out = multiarch(&env, work.path())
        .args(["inspect", &format!("{}:latest", v6.repo("app"))])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("linux/amd64") && shown.contains("linux/arm64"),
        "{shown}"
    );
}
