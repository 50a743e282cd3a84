//! Index assembly against golden files (bytes and digest), plus the refusal cases.

use super::*;
use crate::manifest::ImageConfig;
use crate::model::{Source, SourceOrigin};

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

fn config_of(platform: &str) -> ImageConfig {
    ImageConfig {
        platform: Platform::parse("test", platform).unwrap(),
        entry_variant: Platform::parse("test", platform).unwrap().variant,
        revision: None,
        created: None,
        builder: None,
        pipeline: None,
    }
}

fn src(tag: &str, expected: &str) -> Source {
    Source {
        platform: Some(Platform::parse("test", expected).unwrap()),
        reference: crate::reference::parse("test", &format!("registry.test/app:{tag}")).unwrap(),
        origin: SourceOrigin::Template,
        annotations: BTreeMap::new(),
        os_features: None,
        entry_variant: None,
    }
}

/// A resolved image source whose config says `config` (else what is expected).
fn source(tag: &str, expected: &str, fetched: Fetched, config: Option<&str>) -> Resolved {
    Resolved::Image {
        source: src(tag, expected),
        image: Box::new(SourceImage {
            fetched,
            config: config_of(config.unwrap_or(expected)),
            revision: None,
            entry: None,
            content: crate::content::Checked::unread(crate::content::Verdict::Off),
        }),
    }
}

/// A resolved buildx per-arch index source of `img` (entry platform `arch`/`variant`), whose
/// image's config says `config`.
fn indexed(
    tag: &str,
    expected: &str,
    img: &Fetched,
    arch: &str,
    variant: &str,
    config: &str,
) -> Resolved {
    let fetched = buildx_index(img, arch, variant);
    let Manifest::Index { manifests } = &fetched.manifest else {
        unreachable!()
    };
    let images = manifests
        .iter()
        .filter(|d| !is_attestation(d))
        .map(|d| SourceImage {
            fetched: img.clone(),
            config: config_of(config),
            revision: None,
            entry: Some(d.clone()),
            content: crate::content::Checked::unread(crate::content::Verdict::Off),
        })
        .collect();
    let attestations = manifests
        .iter()
        .filter(|d| is_attestation(d))
        .cloned()
        .collect();
    Resolved::Index {
        source: src(tag, expected),
        fetched,
        images,
        attestations,
    }
}

fn plain(values: BTreeMap<String, String>) -> Annotations {
    Annotations {
        values,
        asked: None,
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
    let index = build(&[amd, arm], Format::Auto, &plain(annotations()), None).unwrap();
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
    let index = build(&[amd, arm], Format::Auto, &plain(annotations()), None).unwrap();
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
    let arm = indexed(
        "1-arm64",
        "linux/arm64",
        &arm_img,
        "arm64",
        "v8",
        "linux/arm64",
    );
    let index = build(&[amd, arm], Format::Auto, &plain(BTreeMap::new()), None).unwrap();
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
        build(&[amd], Format::Oci, &plain(annotations()), None).unwrap()
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
    let e = build(&[wrong], Format::Auto, &plain(BTreeMap::new()), None).unwrap_err();
    assert_eq!(e.exit_code(), 4);
    let text = e.to_string();
    assert!(text.contains("registry.test/app:1-arm64"), "{text}");
    assert!(text.contains("expected to be linux/arm64"), "{text}");
    assert!(text.contains("says linux/amd64"), "{text}");
}

#[test]
fn rejects_index_child_of_another_platform() {
    let img = image(OCI_MANIFEST, &"44".repeat(32));
    let s = indexed("1-arm64", "linux/arm64", &img, "amd64", "", "linux/amd64");
    let e = build(&[s], Format::Auto, &plain(BTreeMap::new()), None).unwrap_err();
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
    let s = indexed("1-arm64", "linux/arm64", &img, "arm64", "", "linux/amd64");
    let e = build(&[s], Format::Auto, &plain(BTreeMap::new()), None).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("registry.test/app:1-arm64 ({})", img.digest)),
        "{text}"
    );
    assert!(text.contains("its image config says linux/amd64"), "{text}");
    // The entry lies the other way: the entry is named.
    let s = indexed("1-arm64", "linux/arm64", &img, "amd64", "", "linux/arm64");
    let e = build(&[s], Format::Auto, &plain(BTreeMap::new()), None).unwrap_err();
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
    let e = build(&[a, b], Format::Auto, &plain(BTreeMap::new()), None).unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(
        e.to_string()
            .contains("both registry.test/app:1-amd64 and registry.test/app:1-x86"),
        "{e}"
    );
}

#[test]
fn rejects_two_images_of_one_platform_in_one_source_index_naming_the_index() {
    // Entries that name no platform: only the children's configs tell, after reading.
    let (a, b) = (
        image(OCI_MANIFEST, &"11".repeat(32)),
        image(OCI_MANIFEST, &"55".repeat(32)),
    );
    let entry = |f: &Fetched| Descriptor {
        platform: None,
        ..f.descriptor()
    };
    let resolved = Resolved::Index {
        source: Source {
            platform: None,
            ..src("multi", "linux/amd64")
        },
        fetched: buildx_index(&a, "amd64", ""),
        images: [&a, &b]
            .into_iter()
            .map(|f| SourceImage {
                fetched: f.clone(),
                config: config_of("linux/amd64"),
                revision: None,
                entry: Some(entry(f)),
                content: crate::content::Checked::unread(crate::content::Verdict::Off),
            })
            .collect(),
        attestations: Vec::new(),
    };
    let e = check(&resolved).unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert_eq!(
        e.to_string().lines().next().unwrap(),
        format!(
            "the source index registry.test/app:multi lists two different images for linux/amd64: {} and {}",
            a.digest, b.digest
        )
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
    let e = build(&[a], Format::Docker, &plain(BTreeMap::new()), None).unwrap_err();
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
    let index = build(&[a], Format::Oci, &plain(BTreeMap::new()), None).unwrap();
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
    let index = build(&[a], Format::Docker, &plain(annotations()), None).unwrap();
    assert!(!String::from_utf8_lossy(&index.bytes).contains("annotations"));
}

#[test]
fn asked_for_annotations_make_an_oci_index_even_over_docker_children() {
    let amd = source(
        "1-amd64",
        "linux/amd64",
        image(DOCKER_MANIFEST, &"11".repeat(32)),
        None,
    );
    let asked = Annotations {
        values: annotations(),
        asked: Some("--annotation".into()),
    };
    let index = build(&[amd], Format::Auto, &asked, None).unwrap();
    assert_eq!(index.media_type, OCI_INDEX);
    assert!(String::from_utf8_lossy(&index.bytes).contains("org.opencontainers.image.source"));
}

fn windows(tag: &str, layer: &str, os_version: &str) -> Resolved {
    let mut r = source(tag, "windows/amd64", image(DOCKER_MANIFEST, layer), None);
    if let Resolved::Image { image, source } = &mut r {
        image.config.platform.os_version = Some(os_version.into());
        source.platform = None;
    }
    r
}

#[test]
fn windows_images_of_one_arch_are_told_apart_by_os_version() {
    let a = windows("ltsc2019", &"11".repeat(32), "10.0.17763.1234");
    let b = windows("ltsc2022", &"22".repeat(32), "10.0.20348.2000");
    let index = build(&[a.clone(), b], Format::Auto, &plain(BTreeMap::new()), None).unwrap();
    let text = String::from_utf8_lossy(&index.bytes);
    assert!(
        text.contains("\"os.version\": \"10.0.17763.1234\""),
        "{text}"
    );
    assert!(
        text.contains("\"os.version\": \"10.0.20348.2000\""),
        "{text}"
    );
    let same = windows("again", &"33".repeat(32), "10.0.17763.1234");
    let e = build(&[a, same], Format::Auto, &plain(BTreeMap::new()), None).unwrap_err();
    assert!(matches!(e, Error::DuplicatePlatform { .. }), "{e}");
}

#[test]
fn a_spec_entrys_annotations_and_features_go_on_its_entry() {
    let mut r = source(
        "1-amd64",
        "linux/amd64",
        image(OCI_MANIFEST, &"11".repeat(32)),
        None,
    );
    if let Resolved::Image { source, .. } = &mut r {
        source
            .annotations
            .insert("org.example.note".into(), "x".into());
        source.os_features = Some(vec!["sse4".into()]);
    }
    let index = build(&[r], Format::Auto, &plain(BTreeMap::new()), None).unwrap();
    assert_eq!(index.media_type, OCI_INDEX);
    let doc: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    assert_eq!(doc["manifests"][0]["annotations"]["org.example.note"], "x");
    assert_eq!(doc["manifests"][0]["platform"]["os.features"][0], "sse4");
}

#[test]
fn append_replaces_a_platform_in_place_and_keeps_the_others() {
    let amd_old = image(OCI_MANIFEST, &"11".repeat(32));
    let arm = image(OCI_MANIFEST, &"22".repeat(32));
    let before = build(
        &[
            source("1-amd64", "linux/amd64", amd_old.clone(), None),
            indexed("1-arm64", "linux/arm64", &arm, "arm64", "", "linux/arm64"),
        ],
        Format::Auto,
        &plain(BTreeMap::new()),
        None,
    )
    .unwrap();
    let base_fetched = Fetched::parse("base", before.bytes.clone(), before.digest.clone()).unwrap();
    let repo = crate::reference::Repository::parse("t", "registry.test/app").unwrap();
    let base = Base {
        fetched: &base_fetched,
        reference: "registry.test/app:1".into(),
        repository: &repo,
    };
    let amd_new = image(OCI_MANIFEST, &"33".repeat(32));
    let riscv = image(OCI_MANIFEST, &"44".repeat(32));
    let after = build(
        &[
            source("2-riscv64", "linux/riscv64", riscv.clone(), None),
            source("2-amd64", "linux/amd64", amd_new.clone(), None),
        ],
        Format::Auto,
        &plain(BTreeMap::new()),
        Some(&base),
    )
    .unwrap();
    let got: Vec<(String, Digest)> = after
        .children
        .iter()
        .map(|c| (c.platform.to_string(), c.digest.clone()))
        .collect();
    assert_eq!(
        got[0],
        ("linux/amd64".to_string(), amd_new.digest.clone()),
        "replaced in place"
    );
    assert_eq!(got[1].0, "linux/arm64", "kept");
    assert_eq!(got[2].0, "unknown/unknown", "its attestation kept");
    assert_eq!(
        got[3],
        ("linux/riscv64".to_string(), riscv.digest.clone()),
        "added"
    );
    assert_eq!(after.children[1].source, "registry.test/app:1");
    // Appending the same again changes nothing.
    let again_fetched = Fetched::parse("base", after.bytes.clone(), after.digest.clone()).unwrap();
    let again = build(
        &[
            source("2-riscv64", "linux/riscv64", riscv, None),
            source("2-amd64", "linux/amd64", amd_new, None),
        ],
        Format::Auto,
        &plain(BTreeMap::new()),
        Some(&Base {
            fetched: &again_fetched,
            ..base
        }),
    )
    .unwrap();
    assert_eq!(again.digest, after.digest);
}

/// One rule for every reader (index assembly, `inspect`): buildx's `unknown/unknown` entries and
/// entries that say what they refer to are attestations; an entry without a platform is an image
/// whose config will say what it is.
#[test]
fn attestations_are_told_by_one_rule() {
    let d = |json: &str| serde_json::from_str::<Descriptor>(json).unwrap();
    let digest = format!("sha256:{}", "a".repeat(64));
    let no_platform = format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1}}"#);
    let unknown = format!(
        r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1,"platform":{{"architecture":"unknown","os":"unknown"}}}}"#
    );
    let refers = format!(
        r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1,"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}"#
    );
    assert!(!is_attestation(&d(&no_platform)));
    assert!(is_attestation(&d(&unknown)));
    assert!(is_attestation(&d(&refers)));
}

/// A base within every entry limit whose merge would still be more than a manifest may be to be
/// read back (large entry annotations): refused, not pushed for `inspect` to refuse later.
#[test]
fn append_refuses_an_index_it_could_not_read_back() {
    let note = "n".repeat(3960);
    let manifests: Vec<serde_json::Value> = (0..990u32)
        .map(|i| {
            serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "digest": format!("sha256:{i:064x}"),
                "size": 500,
                "platform": {"os": "linux", "architecture": format!("arch{i}")},
                "annotations": {"org.example.note": note},
            })
        })
        .collect();
    let bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": crate::manifest::OCI_INDEX, "manifests": manifests,
    }))
    .unwrap();
    assert!(bytes.len() < crate::manifest::MAX_MANIFEST_BYTES);
    let digest = Digest::of(&bytes);
    let fetched = Fetched::parse("base", bytes, digest).unwrap();
    let repo = crate::reference::Repository::parse("t", "registry.test/app").unwrap();
    let base = Base {
        fetched: &fetched,
        reference: "registry.test/app:1".into(),
        repository: &repo,
    };
    let riscv = image(OCI_MANIFEST, &"44".repeat(32));
    let e = build(
        &[source("2-riscv64", "linux/riscv64", riscv, None)],
        Format::Auto,
        &plain(BTreeMap::new()),
        Some(&base),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 4);
    let text = e.to_string();
    assert!(
        text.starts_with("registry.test/app:1 is not a usable index to append to: merged with this run's images it would be 4"),
        "{text}"
    );
    assert!(
        text.contains("(991 entries), more than the 4194304 a manifest may have to be read back"),
        "{text}"
    );
}

/// A base entry that is not an image manifest (a nested index, a layer's media type) is named
/// with what it is: only images can be appended to.
#[test]
fn append_names_a_base_entry_that_is_not_an_image() {
    let repo = crate::reference::Repository::parse("t", "registry.test/app").unwrap();
    let riscv = image(OCI_MANIFEST, &"44".repeat(32));
    for (media_type, says) in [
        (crate::manifest::OCI_INDEX, "is a nested index"),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "is of media type \"application/vnd.oci.image.layer.v1.tar+gzip\", not an image manifest",
        ),
    ] {
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": crate::manifest::OCI_INDEX,
            "manifests": [{"mediaType": media_type, "digest": format!("sha256:{}", "5".repeat(64)),
                "size": 500, "platform": {"os": "linux", "architecture": "amd64"}}],
        }))
        .unwrap();
        let digest = Digest::of(&bytes);
        let fetched = Fetched::parse("base", bytes, digest).unwrap();
        let base = Base {
            fetched: &fetched,
            reference: "registry.test/app:1".into(),
            repository: &repo,
        };
        let e = build(
            &[source("2-riscv64", "linux/riscv64", riscv.clone(), None)],
            Format::Auto,
            &plain(BTreeMap::new()),
            Some(&base),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert_eq!(
            e.to_string(),
            format!("registry.test/app:1 is not a usable index to append to: its entry sha256:{} {says}: only image manifests can be appended to", "5".repeat(64))
        );
    }
}
