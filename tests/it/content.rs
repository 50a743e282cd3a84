//! The content check end to end: images whose layers hold ELF and PE headers (written here, no
//! binaries checked in), pushed with skopeo to the real registry, published or refused by the
//! built binary.

use std::collections::BTreeMap;

use crate::support::fixtures::{
    amd64, arm64, elf, pe, push as push_fixture, push_content, put_manifest, Compression, Item,
    Kind,
};
use crate::support::{multiarch, plain, stderr_of, Registry};
use serde_json::{json, Value};

mod outcomes;

/// A job that looks once (no wait), plus `extra`.
fn job(registry: &Registry, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    crate::support::job(registry, &[&[("MULTIARCH_TIMEOUT", "0")], extra].concat())
}

/// Runs the binary: exit code, stdout, stderr without colours.
fn run(env: &BTreeMap<String, String>, args: &[&str]) -> (i32, String, String) {
    let work = tempfile::tempdir().unwrap();
    let out = multiarch(env, work.path()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        plain(&stderr_of(&out)),
    )
}

/// An amd64 image that is right: its entrypoint is amd64 code.
fn good_amd64(reg: &Registry) -> String {
    push_content(
        reg,
        "group/app:latest-amd64",
        "linux/amd64",
        json!({"Entrypoint": ["/usr/local/bin/app"]}),
        &[vec![Item::File("usr/local/bin/app", 0o755, amd64())]],
        Compression::Gzip,
    )
}

fn base_layer() -> Vec<Item> {
    vec![
        Item::Symlink("bin", "usr/bin"),
        Item::Dir("usr/bin/"),
        Item::File("usr/bin/dash", 0o755, amd64()),
        Item::Symlink("usr/bin/sh", "dash"),
    ]
}

#[test]
fn an_amd64_program_in_an_arm64_image_fails_the_job_and_nothing_is_pushed() {
    let reg = Registry::start();
    good_amd64(&reg);
    let digest = push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/usr/local/bin/app"], "Cmd": ["serve"]}),
        &[
            base_layer(),
            vec![Item::File("usr/local/bin/app", 0o755, amd64())],
        ],
        Compression::Gzip,
    );
    let (code, stdout, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(stdout, "");
    let image = format!("{}:latest-arm64@{digest}", reg.repo("group/app"));
    assert!(
        stderr.contains(&format!("{image} is linux/arm64, but the program it starts is not: /usr/local/bin/app is ELF 64-bit LSB x86-64 (machine code for linux/amd64)")),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "found: entrypoint \"/usr/local/bin/app\" → /usr/local/bin/app in layer 2/2 (sha256:"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("TARGETARCH"), "{stderr}");
    assert!(stderr.contains("MULTIARCH_CONTENT_CHECK=off"), "{stderr}");
    assert_eq!(reg.raw("group/app:latest"), None, "nothing was pushed");

    // Switched off, the same images are published.
    let (code, stdout, stderr) = run(&job(&reg, &[("MULTIARCH_CONTENT_CHECK", "off")]), &["push"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(":latest@sha256:"), "{stdout}");
    assert!(
        stderr.contains("machine code not checked (MULTIARCH_CONTENT_CHECK=off)"),
        "{stderr}"
    );
}

#[test]
fn through_path_and_a_symlink_into_a_lower_layer_the_file_is_found_and_matches() {
    let reg = Registry::start();
    good_amd64(&reg);
    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["app"], "Env": ["PATH=/usr/local/bin:/usr/bin"]}),
        &[
            vec![Item::File("opt/app/bin/app", 0o755, arm64())],
            vec![Item::Symlink(
                "usr/local/bin/app",
                "../../../opt/app/bin/app",
            )],
        ],
        Compression::Gzip,
    );
    let (code, stdout, stderr) = run(&job(&reg, &[]), &["plan"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("entrypoint /opt/app/bin/app: ELF 64-bit LSB ARM aarch64, matches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("entrypoint /usr/local/bin/app: ELF 64-bit LSB x86-64, matches"),
        "{stdout}"
    );
    assert!(
        stderr.contains("entrypoint machine code checked images=2 matched=2 not_checked=0 warnings=0 layers_read=3"),
        "{stderr}"
    );
}

#[test]
fn a_hard_link_entrypoint_is_judged_by_the_file_it_links_to_in_its_layer_or_below() {
    let reg = Registry::start();
    good_amd64(&reg);
    // The link in the top layer, the file it names in the layer below (extraction links to
    // what the file system holds when the layer is applied).
    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/usr/local/bin/app"]}),
        &[
            base_layer(),
            vec![Item::File("opt/app", 0o755, amd64())],
            vec![Item::Hardlink("usr/local/bin/app", "opt/app")],
        ],
        Compression::Gzip,
    );
    let (code, stdout, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("/opt/app is ELF 64-bit LSB x86-64 (machine code for linux/amd64)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hard link /usr/local/bin/app to /opt/app → /opt/app in layer 2/3"),
        "{stderr}"
    );
    assert_eq!(reg.raw("group/app:latest"), None, "nothing was pushed");
}

#[test]
fn an_upper_layer_overrides_a_lower_one_and_whiteouts_hide_it() {
    let reg = Registry::start();
    good_amd64(&reg);
    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Cmd": ["app"]}),
        &[
            vec![
                Item::File("usr/local/bin/app", 0o755, amd64()),
                Item::File("usr/bin/app", 0o755, arm64()),
            ],
            vec![Item::File("usr/local/bin/.wh.app", 0o644, Vec::new())],
        ],
        Compression::Gzip,
    );
    let (code, stdout, stderr) = run(&job(&reg, &[]), &["plan"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("entrypoint /usr/bin/app: ELF 64-bit LSB ARM aarch64, matches"),
        "{stdout}"
    );

    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/usr/local/bin/app"]}),
        &[
            vec![Item::File("usr/local/bin/app", 0o755, amd64())],
            vec![Item::File("usr/local/bin/app", 0o755, arm64())],
        ],
        Compression::Gzip,
    );
    let (code, _, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_script_is_judged_by_its_interpreter() {
    let reg = Registry::start();
    good_amd64(&reg);
    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["app"]}),
        &[
            base_layer(),
            vec![Item::File(
                "docker-entrypoint.sh",
                0o755,
                b"#!/bin/sh\nexec \"$@\"\n".to_vec(),
            )],
        ],
        Compression::Gzip,
    );
    let (code, _, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("/usr/bin/dash is ELF 64-bit LSB x86-64"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("script /docker-entrypoint.sh #!/bin/sh → symlink /bin to usr/bin in layer 1/2 (sha256:"),
        "{stderr}"
    );

    // `#!/usr/bin/env NAME`: the kernel loads env first, so a wrong-machine env is named; an
    // image without env is not found (a warning), never matched.
    let python = || Item::File("usr/bin/python3", 0o755, arm64());
    for (env, code, said) in [
        (Some(amd64()), 4, "/usr/bin/env is ELF 64-bit LSB x86-64 (machine code for linux/amd64)"),
        (None, 0, "machine code not checked: the program was not found: /usr/bin/env does not exist (looked for: entrypoint \"/run\" → script /run #!/usr/bin/env python3)"),
    ] {
        let mut layer = vec![Item::File("run", 0o755, b"#!/usr/bin/env python3\n".to_vec()), python()];
        layer.extend(env.map(|e| Item::File("usr/bin/env", 0o755, e)));
        push_content(
            &reg,
            "group/app:latest-arm64",
            "linux/arm64",
            json!({"Entrypoint": ["/run"]}),
            &[layer],
            Compression::Gzip,
        );
        let (exit, _, stderr) = run(&job(&reg, &[]), &["push"]);
        assert_eq!(exit, code, "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
    }
}

#[test]
fn cmd_alone_in_zstd_layers_of_a_buildx_style_index_is_checked() {
    let reg = Registry::start();
    good_amd64(&reg);
    let child = push_content(
        &reg,
        "group/app:child-arm64",
        "linux/arm64",
        json!({"Cmd": ["/bin/server", "--port", "80"]}),
        &[vec![Item::File("bin/server", 0o755, amd64())]],
        Compression::Zstd,
    );
    let manifest: Value =
        serde_json::from_slice(&reg.raw("group/app:child-arm64").unwrap()).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let size = reg.raw("group/app:child-arm64").unwrap().len();
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child,
            "size": size, "platform": {"architecture": "arm64", "os": "linux"}}]});
    put_manifest(
        &reg,
        "group/app:latest-arm64",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    let (code, _, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&format!("@{child} is linux/arm64")),
        "{stderr}"
    );
    assert!(stderr.contains("found: cmd \"/bin/server\""), "{stderr}");
}

#[test]
fn big_endian_ppc64_under_ppc64le_fails_and_arm_v7_passes_with_its_variant() {
    let reg = Registry::start();
    let platforms = [
        ("linux/ppc64le", "ppc64le", elf(true, false, 21)),
        ("linux/arm/v7", "armv7", elf(false, true, 40)),
    ];
    for (platform, tag, program) in &platforms {
        push_content(
            &reg,
            &format!("group/app:latest-{tag}"),
            platform,
            json!({"Entrypoint": ["/app"]}),
            &[vec![Item::File("app", 0o755, program.clone())]],
            Compression::Gzip,
        );
    }
    let env = job(
        &reg,
        &[("MULTIARCH_PLATFORMS", "linux/ppc64le,linux/arm/v7")],
    );
    let (code, _, stderr) = run(&env, &["push"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("/app is ELF 64-bit MSB 64-bit PowerPC (machine code for linux/ppc64)"),
        "{stderr}"
    );
    let env = job(&reg, &[("MULTIARCH_PLATFORMS", "linux/arm/v7")]);
    let (code, _, stderr) = run(&env, &["push"]);
    assert_eq!(code, 0, "{stderr}");
    let index: Value = serde_json::from_slice(&reg.raw("group/app:latest").unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["platform"]["variant"], "v7");
}

#[test]
fn a_windows_image_is_judged_by_its_pe_header() {
    let reg = Registry::start();
    // A windows/amd64 image whose program is arm64 code, started by `config`: exit 4, stderr.
    let judged = |config: serde_json::Value| {
        push_content(
            &reg,
            "group/app:latest-amd64",
            "windows/amd64",
            config,
            &[vec![
                Item::Dir("Files/"),
                Item::File("Files/app/app.exe", 0o644, pe(0xaa64)),
            ]],
            Compression::Gzip,
        );
        let (code, _, stderr) = run(
            &job(&reg, &[("MULTIARCH_PLATFORMS", "windows/amd64")]),
            &["push"],
        );
        assert_eq!(code, 4, "{stderr}");
        stderr
    };
    // Paths as Windows users write them.
    let stderr = judged(json!({"Entrypoint": ["C:\\app\\app.exe"]}));
    assert!(
        stderr.contains("C:\\app\\app.exe is PE ARM64 (machine code for windows/arm64)"),
        "{stderr}"
    );
    // A bare name is looked for in the working directory first, and said so.
    let stderr = judged(json!({"Entrypoint": ["app"], "WorkingDir": "C:\\app"}));
    assert!(
        stderr.contains("working directory C:\\app\\app.exe → C:\\app\\app.exe in layer 1/1"),
        "{stderr}"
    );
}

#[test]
fn inspect_shows_the_entrypoint_machine_per_platform() {
    let reg = Registry::start();
    good_amd64(&reg);
    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/usr/local/bin/app"]}),
        &[vec![Item::File("usr/local/bin/app", 0o755, arm64())]],
        Compression::Gzip,
    );
    let (code, _, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 0, "{stderr}");
    let env = reg.access_env();
    let at = reg.repo("group/app:latest");
    let (code, stdout, stderr) = run(&env, &["inspect", &at]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("entrypoint /usr/local/bin/app: ELF 64-bit LSB ARM aarch64, matches"),
        "{stdout}"
    );
    assert!(
        stdout.contains("entrypoint /usr/local/bin/app: ELF 64-bit LSB x86-64, matches"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&env, &["inspect", "--json", &at]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let arm = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"] == "linux/arm64")
        .unwrap();
    assert_eq!(arm["entrypoint"]["result"], "matched");
    assert_eq!(arm["entrypoint"]["machine"], "ELF 64-bit LSB ARM aarch64");
    assert_eq!(arm["entrypoint"]["layersRead"], 1);
}

#[test]
fn an_arm64_config_saying_v8_keeps_it_in_the_index_and_images_without_an_entrypoint_pass() {
    let reg = Registry::start();
    push_fixture(&reg, "group/app:latest-amd64", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "group/app:latest-arm64", "linux/arm64/v8", Kind::Oci);
    let (code, _, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 0, "{stderr}");
    let index: Value = serde_json::from_slice(&reg.raw("group/app:latest").unwrap()).unwrap();
    assert_eq!(index["manifests"][1]["platform"]["variant"], "v8");
    assert_eq!(index["manifests"][0]["platform"].get("variant"), None);
    assert!(
        stderr.contains("images=2 matched=0 not_checked=2 warnings=0 layers_read=0"),
        "{stderr}"
    );
    // skopeo (like crane --platform linux/arm64/v8) finds the arm64 child.
    let out = reg.skopeo(&[
        "inspect",
        "--override-arch=arm64",
        "--override-variant=v8",
        &format!("docker://{}", reg.repo("group/app:latest")),
    ]);
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["Architecture"], "arm64");
    // inspect shows the entries as the index writes them: the variant kept is seen kept.
    let env = reg.access_env();
    let (code, stdout, stderr) = run(&env, &["inspect", &reg.repo("group/app:latest")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("  linux/arm64/v8 "), "{stdout}");
    let (code, stdout, _) = run(
        &env,
        &["inspect", "--json", &reg.repo("group/app:latest-arm64")],
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["manifests"][0]["platform"], "linux/arm64/v8");
}

#[test]
fn an_earlier_pipelines_broken_image_is_waited_past_not_failed() {
    let reg = Registry::start();
    good_amd64(&reg);
    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/app"], "Labels": {"org.opencontainers.image.revision": "1a2b3c4d5e6f"}}),
        &[vec![Item::File("app", 0o755, amd64())]],
        Compression::Gzip,
    );
    // This pipeline's arm64 build has not landed: the old image is stale (exit 3 at the
    // deadline), not a content failure of this pipeline.
    let (code, _, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(!stderr.contains("the program it starts"), "{stderr}");
}

#[test]
fn the_top_layer_is_requested_alongside_the_config_and_the_base_below_it_never() {
    use crate::support::proxy::{Fault, Proxy};
    let reg = Registry::start();
    let mut digests = Vec::new();
    for (tag, platform, code) in [
        ("amd64", "linux/amd64", amd64()),
        ("arm64", "linux/arm64", arm64()),
    ] {
        digests.push(push_content(
            &reg,
            &format!("group/app:latest-{tag}"),
            platform,
            json!({"Entrypoint": ["/usr/local/bin/app"]}),
            &[
                base_layer(),
                vec![Item::File("usr/local/bin/app", 0o755, code)],
            ],
            Compression::Gzip,
        ));
    }
    let proxy = Proxy::start(&reg.host, std::time::Duration::ZERO, |_, _| Fault::Pass);
    let mut env = job(&reg, &[]);
    env.insert(
        "CI_REGISTRY_IMAGE".into(),
        format!("{}/group/app", proxy.host),
    );
    env.insert("MULTIARCH_INSECURE_REGISTRIES".into(), proxy.host.clone());
    let (code, _, stderr) = run(&env, &["push"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("images=2 matched=2"), "{stderr}");

    let log = proxy.log();
    let gets = |digest: &str| {
        log.iter()
            .filter(|l| l.starts_with(&format!("GET /v2/group/app/blobs/{digest} ")))
            .count()
    };
    for d in &digests {
        let manifest: Value =
            serde_json::from_slice(&reg.raw(&format!("group/app@{d}")).unwrap()).unwrap();
        let layer = |i: usize| {
            manifest["layers"][i]["digest"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let config = manifest["config"]["digest"].as_str().unwrap();
        assert_eq!(gets(config), 1, "{log:#?}");
        assert_eq!(gets(&layer(1)), 1, "the top layer, once: {log:#?}");
        assert_eq!(gets(&layer(0)), 0, "the base is never requested: {log:#?}");
    }
    // Per image a manifest, a config and its top layer; per tag a look and a PUT; the
    // destination's push-access check.
    assert_eq!(proxy.requests(), 3 * 2 + 2 + 2, "{log:#?}");
}
