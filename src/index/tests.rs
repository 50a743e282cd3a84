//! Index assembly against golden files (bytes and digest), plus the refusal cases.

use super::*;

fn image(media_type: &str, layer: &str) -> Fetched {
    let config_type = if media_type == DOCKER_MANIFEST {
        "application/vnd.docker.container.image.v1+json"
    } else {
        "application/vnd.oci.image.config.v1+json"
    };
    let bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"{config_type}","digest":"sha256:{layer}","size":100}},"layers":[]}}"#
    )
    .into_bytes();
    let digest = Digest::of(&bytes);
    Fetched::parse("fixture", bytes, digest).unwrap()
}

/// A resolved source whose image (or each image child of an index) has a config saying `config`.
fn source(tag: &str, expected: &str, fetched: Fetched, config: Option<&str>) -> Resolved {
    let image = |digest: &Digest| SourceImage {
        digest: digest.clone(),
        config: ImageConfig {
            platform: Platform::parse("test", config.unwrap_or(expected)).unwrap(),
            revision: None,
        },
        revision: None,
    };
    let images = match &fetched.manifest {
        Manifest::Image { .. } => vec![image(&fetched.digest)],
        Manifest::Index { manifests } => manifests
            .iter()
            .filter(|d| !is_attestation(d))
            .map(|d| image(&d.digest))
            .collect(),
    };
    Resolved {
        reference: format!("registry.test/app:{tag}"),
        expected: Platform::parse("test", expected).unwrap(),
        fetched,
        images,
    }
}

/// A buildx-style per-arch index: one image and its provenance attestation.
fn buildx_index(image: &Fetched, arch: &str, variant: &str) -> Fetched {
    let bytes = format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {{"mediaType": "{}", "digest": "{}", "size": {}, "platform": {{"architecture": "{arch}", "os": "linux", "variant": "{variant}"}}}},
    {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:{}", "size": 566,
      "annotations": {{"vnd.docker.reference.digest": "{}", "vnd.docker.reference.type": "attestation-manifest"}},
      "platform": {{"architecture": "unknown", "os": "unknown"}}}}
  ]
}}"#,
        image.media_type,
        image.digest,
        image.bytes.len(),
        "ab".repeat(32),
        image.digest
    )
    .into_bytes();
    let digest = Digest::of(&bytes);
    Fetched::parse("fixture", bytes, digest).unwrap()
}

fn annotations() -> BTreeMap<String, String> {
    [
        ("org.opencontainers.image.revision", "3f2a1c0d"),
        (
            "org.opencontainers.image.source",
            "https://gitlab.example.com/g/app",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Compares with `tests/golden/<name>.json`; `UPDATE_GOLDEN=1` rewrites the file instead.
fn assert_golden(name: &str, index: &Index) {
    let path = format!("{}/tests/golden/{name}.json", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &index.bytes).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&index.bytes),
        String::from_utf8_lossy(&golden),
        "{name}"
    );
    assert_eq!(index.digest, Digest::of(&golden));
}

#[test]
fn docker_children_make_a_docker_list_in_auto() {
    let amd = source(
        "1-amd64",
        "linux/amd64",
        image(DOCKER_MANIFEST, &"11".repeat(32)),
        Some("linux/amd64"),
    );
    let arm = source(
        "1-arm64",
        "linux/arm64",
        image(DOCKER_MANIFEST, &"22".repeat(32)),
        Some("linux/arm64"),
    );
    let index = build(&[amd, arm], Format::Auto, &annotations()).unwrap();
    assert_eq!(index.media_type, DOCKER_LIST);
    assert_golden("docker-list", &index);
    assert_eq!(
        index.digest.to_string(),
        "sha256:b1aa23e8a7951c93c03449915593653c9ed925c0be57cd7ec48f07e6cc243fda"
    );
}

#[test]
fn oci_or_mixed_children_make_an_oci_index_with_annotations() {
    let amd = source(
        "1-amd64",
        "linux/amd64",
        image(DOCKER_MANIFEST, &"11".repeat(32)),
        Some("linux/amd64"),
    );
    let arm = source(
        "1-armv7",
        "linux/arm/v7",
        image(OCI_MANIFEST, &"33".repeat(32)),
        Some("linux/arm/v7"),
    );
    let index = build(&[amd, arm], Format::Auto, &annotations()).unwrap();
    assert_eq!(index.media_type, OCI_INDEX);
    assert_golden("oci-index", &index);
    assert_eq!(
        index.digest.to_string(),
        "sha256:f825c1a3efdd6248f3d79277b58a36db1f7e3aa2591073616b1830411e70961c"
    );
}

#[test]
fn flattens_buildx_indexes_keeping_attestations() {
    let amd = source(
        "1-amd64",
        "linux/amd64",
        image(OCI_MANIFEST, &"11".repeat(32)),
        Some("linux/amd64"),
    );
    let arm_img = image(OCI_MANIFEST, &"44".repeat(32));
    let arm = source(
        "1-arm64",
        "linux/arm64",
        buildx_index(&arm_img, "arm64", "v8"),
        Some("linux/arm64"),
    );
    let index = build(&[amd, arm], Format::Auto, &BTreeMap::new()).unwrap();
    let kinds: Vec<(String, bool)> = index
        .children
        .iter()
        .map(|c| (c.platform.to_string(), c.attestation))
        .collect();
    assert_eq!(
        kinds,
        [
            ("linux/amd64".to_string(), false),
            ("linux/arm64".to_string(), false),
            ("unknown/unknown".to_string(), true)
        ]
    );
    assert_eq!(index.children[1].digest, arm_img.digest);
    assert_golden("flattened", &index);
}

#[test]
fn same_inputs_give_the_same_bytes() {
    let make = || {
        let amd = source(
            "1-amd64",
            "linux/amd64",
            image(OCI_MANIFEST, &"11".repeat(32)),
            Some("linux/amd64"),
        );
        build(&[amd], Format::Oci, &annotations()).unwrap()
    };
    assert_eq!(make(), make());
}

#[test]
fn rejects_config_platform_that_differs_from_the_tag() {
    let wrong = source(
        "1-arm64",
        "linux/arm64",
        image(OCI_MANIFEST, &"11".repeat(32)),
        Some("linux/amd64"),
    );
    let e = build(&[wrong], Format::Auto, &BTreeMap::new()).unwrap_err();
    assert_eq!(e.exit_code(), 4);
    let text = e.to_string();
    assert!(text.contains("registry.test/app:1-arm64"), "{text}");
    assert!(text.contains("expected to be linux/arm64"), "{text}");
    assert!(text.contains("says linux/amd64"), "{text}");
}

#[test]
fn rejects_index_child_of_another_platform() {
    let img = image(OCI_MANIFEST, &"44".repeat(32));
    let s = source(
        "1-arm64",
        "linux/arm64",
        buildx_index(&img, "amd64", ""),
        Some("linux/amd64"),
    );
    let e = build(&[s], Format::Auto, &BTreeMap::new()).unwrap_err();
    assert!(matches!(e, Error::PlatformMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("its image config says linux/amd64"),
        "{e}"
    );
}

#[test]
fn an_index_entry_is_judged_by_its_childs_own_config() {
    // The entry claims arm64; the child's config says amd64: the config wins, and says so.
    let img = image(OCI_MANIFEST, &"44".repeat(32));
    let s = source(
        "1-arm64",
        "linux/arm64",
        buildx_index(&img, "arm64", ""),
        Some("linux/amd64"),
    );
    let e = build(&[s], Format::Auto, &BTreeMap::new()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("registry.test/app:1-arm64 ({})", img.digest)),
        "{text}"
    );
    assert!(text.contains("its image config says linux/amd64"), "{text}");
    // The entry lies the other way: the entry is named.
    let s = source(
        "1-arm64",
        "linux/arm64",
        buildx_index(&img, "amd64", ""),
        Some("linux/arm64"),
    );
    let e = build(&[s], Format::Auto, &BTreeMap::new()).unwrap_err();
    assert!(
        e.to_string().contains("its index entry says linux/amd64"),
        "{e}"
    );
}

#[test]
fn rejects_duplicate_platform() {
    let a = source(
        "1-amd64",
        "linux/amd64",
        image(OCI_MANIFEST, &"11".repeat(32)),
        Some("linux/amd64"),
    );
    let b = source(
        "1-x86",
        "linux/amd64",
        image(OCI_MANIFEST, &"55".repeat(32)),
        Some("linux/x86_64"),
    );
    let e = build(&[a, b], Format::Auto, &BTreeMap::new()).unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(
        e.to_string()
            .contains("both registry.test/app:1-amd64 and registry.test/app:1-x86"),
        "{e}"
    );
}

#[test]
fn refuses_docker_list_over_oci_children() {
    let a = source(
        "1-amd64",
        "linux/amd64",
        image(OCI_MANIFEST, &"11".repeat(32)),
        Some("linux/amd64"),
    );
    let e = build(&[a], Format::Docker, &BTreeMap::new()).unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains("--format oci"), "{e}");
}

#[test]
fn forced_oci_index_over_docker_children() {
    let a = source(
        "1-amd64",
        "linux/amd64",
        image(DOCKER_MANIFEST, &"11".repeat(32)),
        Some("linux/amd64"),
    );
    let index = build(&[a], Format::Oci, &BTreeMap::new()).unwrap();
    assert_eq!(index.media_type, OCI_INDEX);
    assert_eq!(index.children[0].media_type, DOCKER_MANIFEST);
}

#[test]
fn docker_list_drops_annotations() {
    let a = source(
        "1-amd64",
        "linux/amd64",
        image(DOCKER_MANIFEST, &"11".repeat(32)),
        Some("linux/amd64"),
    );
    let index = build(&[a], Format::Docker, &annotations()).unwrap();
    assert!(!String::from_utf8_lossy(&index.bytes).contains("annotations"));
}
