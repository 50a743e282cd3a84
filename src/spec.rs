//! manifest-tool's YAML spec (`manifest-tool push from-spec`), so its users can switch with the
//! file they have:
//!
//! ```yaml
//! image: registry.example.com/app:1.4.2
//! tags: ['1.4', 'latest']
//! manifests:
//!   - image: registry.example.com/app:1.4.2-amd64
//!     platform: {architecture: amd64, os: linux}
//!   - image: registry.example.com/app:1.4.2-armv7
//!     platform: {architecture: arm, os: linux, variant: v7}
//! ```
//!
//! Everything manifest-tool's own files use works: top-level `annotations` (the index's), sources
//! in other repositories or registries, entries without `platform` (the image's config says it),
//! `platform.osversion`/`osfeatures` (several `windows/amd64` entries told apart by `os.version`),
//! numbers where YAML reads them (`architecture: 386`), per-entry `annotations` (on the entry in
//! the index), and `image:` naming several destinations (a list, or comma-separated).
//!
//! Pure: takes the file's text. Unknown fields are refused (a typo must not silently drop a
//! platform); every problem is an exit-2 error naming the file and the entry.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::Error;
use crate::model::{Source, SourceOrigin};
use crate::platform::Platform;
use crate::reference::{self, Repository};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    image: OneOrMany,
    #[serde(default)]
    tags: Vec<Scalar>,
    manifests: Vec<Entry>,
    /// Annotations of the index (manifest-tool writes them on the OCI index).
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// One string, or a list of them (`image:` of several destinations).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A YAML scalar read as text: `architecture: 386` and `tags: [1.4]` are numbers to YAML.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    image: String,
    #[serde(default)]
    platform: Option<EntryPlatform>,
    /// Annotations of this image's entry in the index.
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryPlatform {
    architecture: Scalar,
    os: Scalar,
    #[serde(default)]
    variant: Option<Scalar>,
    /// The Windows build the image must have (`10.0.17763.1234`), checked against its config.
    #[serde(default, rename = "osversion", alias = "os.version")]
    os_version: Option<Scalar>,
    /// Accepted for compatibility (manifest-tool ignores it too).
    #[serde(default, rename = "features")]
    _features: Option<Vec<String>>,
    #[serde(default, rename = "osfeatures", alias = "os.features")]
    os_features: Option<Vec<String>>,
}

/// What a spec decides: the target repository, its tags (the image's own tag first), the sources
/// and the index annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    /// The file, as errors and logs name it.
    pub(crate) origin: String,
    /// Destinations: one index, pushed to each.
    pub(crate) images: Vec<Repository>,
    pub(crate) tags: Vec<String>,
    pub(crate) sources: Vec<Source>,
    pub(crate) annotations: BTreeMap<String, String>,
}

/// Largest spec file read: real ones are a few KiB.
pub(crate) const MAX_SPEC_BYTES: usize = 1024 * 1024;

/// Parses a spec; `origin` names the file in errors.
pub(crate) fn parse(origin: &str, text: &str) -> Result<Spec, Error> {
    let setting = format!("--spec {origin}");
    if text.len() > MAX_SPEC_BYTES {
        return Err(Error::invalid(
            &setting,
            "<file>",
            format!(
                "it is {} bytes, more than the {MAX_SPEC_BYTES} accepted",
                text.len()
            ),
            "a spec lists an image, tags and one entry per platform: a few KiB",
        ));
    }
    if let Some(depth) = too_deep(text) {
        return Err(Error::invalid(
            &setting,
            "<file>",
            format!("it nests {depth} levels deep"),
            "a spec is three levels deep (manifests → entry → platform)",
        ));
    }
    let file: File = serde_norway::from_str(text).map_err(|e| {
        Error::invalid(
            &setting,
            "<file>",
            format!("not a manifest-tool spec ({e})"),
            "write image:, tags: and manifests: with image: and platform: {architecture, os[, variant]} each",
        )
    })?;
    let named: Vec<String> = match &file.image {
        OneOrMany::One(s) => s.split(',').map(|i| i.trim().to_string()).collect(),
        OneOrMany::Many(list) => list.clone(),
    };
    let mut images: Vec<Repository> = Vec::new();
    let mut tags_given: Vec<String> = Vec::new();
    for text in named.iter().filter(|t| !t.is_empty()) {
        let target = reference::parse(&format!("{setting}: image"), text)?;
        if !images.contains(target.repository()) {
            images.push(target.repository().clone());
        }
        tags_given.extend(target.tag().map(str::to_string));
    }
    if images.is_empty() {
        return Err(Error::invalid(
            &setting,
            "image:",
            "no image to publish",
            "name the target, e.g. image: registry.example.com/app:1.4.2",
        ));
    }
    let listed: Vec<String> = file.tags.iter().map(Scalar::text).collect();
    let tags = reference::tags(
        &format!("{setting}: tags"),
        tags_given.iter().chain(&listed).map(String::as_str),
    )?;
    if file.manifests.is_empty() {
        return Err(Error::invalid(
            &setting,
            "manifests: []",
            "no manifests",
            "list one entry per platform",
        ));
    }
    let mut sources: Vec<Source> = Vec::new();
    for (i, entry) in file.manifests.iter().enumerate() {
        let at = format!("{setting}: manifests[{i}]");
        let platform = match &entry.platform {
            None => None,
            Some(p) => {
                let (os, arch) = (p.os.text(), p.architecture.text());
                let text = match p.variant.as_ref().map(Scalar::text) {
                    Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
                    _ => format!("{os}/{arch}"),
                };
                let mut platform = Platform::parse(&format!("{at}.platform"), &text)?;
                platform.os_version = p.os_version.as_ref().map(Scalar::text);
                Some(platform)
            }
        };
        // Windows entries of one os/arch are told apart by their configs' os.version, which
        // only the registry knows: those are judged once the images are read.
        if let Some(p) = platform.as_ref().filter(|p| p.os != "windows") {
            let same = |s: &&Source| {
                s.platform
                    .as_ref()
                    .is_some_and(|q| q.matches(p) && q.os_version == p.os_version)
            };
            if let Some(first) = sources.iter().find(same) {
                return Err(Error::DuplicatePlatform {
                    platform: p.to_string(),
                    first: first.reference.to_string(),
                    second: entry.image.clone(),
                });
            }
        }
        let entry_variant = platform.as_ref().and_then(|p| {
            let written = entry.platform.as_ref()?.variant.as_ref()?.text();
            crate::manifest::entry_variant(p, None, Some(&written))
        });
        sources.push(Source {
            platform,
            reference: reference::parse(&format!("{at}.image"), &entry.image)?,
            origin: SourceOrigin::Spec,
            annotations: entry.annotations.clone(),
            os_features: entry.platform.as_ref().and_then(|p| p.os_features.clone()),
            entry_variant,
        });
    }
    Ok(Spec {
        origin: origin.to_string(),
        images,
        tags,
        sources,
        annotations: file.annotations,
    })
}

/// Flow collections nested past any real spec (`[[[[…]]]]`): the YAML parser's time grows with
/// the square of the depth, so they are refused before parsing. Returns the depth reached.
fn too_deep(text: &str) -> Option<usize> {
    const LIMIT: usize = 32;
    let mut depth = 0usize;
    let mut max = 0usize;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    (max > LIMIT).then_some(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
image: registry.example.com/app:1.4.2
tags: ['1.4', 'latest', '1.4.2']
manifests:
  - image: registry.example.com/app:1.4.2-amd64
    platform:
      architecture: amd64
      os: linux
  - image: registry.example.com/app:1.4.2-armv7
    platform:
      architecture: arm
      os: linux
      variant: v7
  - image: registry.example.com/app:1.4.2-arm64
    platform: {architecture: arm64, os: linux, variant: v8, features: [sse4]}
"#;

    #[test]
    fn reads_manifest_tool_specs() {
        let spec = parse("spec.yml", SPEC).unwrap();
        assert_eq!(spec.images[0].to_string(), "registry.example.com/app");
        assert_eq!(spec.tags, ["1.4.2", "1.4", "latest"]);
        let got: Vec<(String, String)> = spec
            .sources
            .iter()
            .map(|s| (s.platform_text(), s.reference.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "linux/amd64".into(),
                    "registry.example.com/app:1.4.2-amd64".into()
                ),
                (
                    "linux/arm/v7".into(),
                    "registry.example.com/app:1.4.2-armv7".into()
                ),
                (
                    "linux/arm64".into(),
                    "registry.example.com/app:1.4.2-arm64".into()
                ),
            ]
        );
    }

    #[test]
    fn refuses_broken_specs_naming_the_entry() {
        for (text, hint, code) in [
            ("image: r.example/app\nmanifests: []\n", "no manifests", 2),
            ("image: r.example/app\nmanifest: []\n", "unknown field", 2),
            ("image: r.example/app\nmanifests:\n  - image: r.example/app:a\n    platform: {architecture: sparc, os: linux}\n", "manifests[0].platform", 2),
            ("image: r.example/App\nmanifests: []\n", "image", 2),
            ("image: r.example/app\ntags: ['-x']\nmanifests: []\n", "tags", 2),
            (
                "image: r.example/app\nmanifests:\n  - {image: r.example/app:a, platform: {architecture: amd64, os: linux}}\n  - {image: r.example/app:b, platform: {architecture: x86_64, os: linux}}\n",
                "both r.example/app:a and r.example/app:b",
                4,
            ),
        ] {
            let e = parse("spec.yml", text).unwrap_err();
            assert_eq!(e.exit_code(), code, "{text}");
            assert!(e.to_string().contains(hint), "{text}: {e}");
        }
    }

    /// The shape of manifest-tool's own integration spec and release spec (written here in our
    /// words): index annotations, sources in four repositories, a variant on arm64, numeric
    /// architectures, two Windows images told apart by os.version, entries without a platform.
    #[test]
    fn reads_what_manifest_tools_own_files_use() {
        let text = r#"
image: r.example/alpine:latest
annotations:
  org.opencontainers.image.title: My Image Title
  org.opencontainers.image.licenses: Apache-2.0
manifests:
  - image: r.example/ppc64le_alpine:latest
    platform: {architecture: ppc64le, os: linux}
  - image: r.example/aarch64_alpine:latest
    platform: {architecture: arm64, os: linux, variant: v8}
  - image: r.example/tool:linux_i386
    platform: {architecture: 386, os: linux}
  - image: r.example/tool:win2019
    platform: {architecture: amd64, os: windows, osversion: 10.0.17763.1234}
  - image: r.example/tool:win2016
    platform: {architecture: amd64, os: windows, osversion: 10.0.14393.5678, osfeatures: [win32k]}
  - image: r.example/tool:from-config
    annotations: {org.example.note: "picked by config"}
"#;
        let spec = parse("spec.yml", text).unwrap();
        assert_eq!(spec.tags, ["latest"]);
        assert_eq!(
            spec.annotations["org.opencontainers.image.title"],
            "My Image Title"
        );
        let platforms: Vec<String> = spec.sources.iter().map(Source::platform_text).collect();
        assert_eq!(
            platforms,
            [
                "linux/ppc64le",
                "linux/arm64",
                "linux/386",
                "windows/amd64",
                "windows/amd64",
                "(config)"
            ]
        );
        assert_eq!(
            spec.sources[4]
                .platform
                .as_ref()
                .unwrap()
                .os_version
                .as_deref(),
            Some("10.0.14393.5678")
        );
        assert_eq!(
            spec.sources[4].os_features.as_deref(),
            Some(&["win32k".to_string()][..])
        );
        assert_eq!(
            spec.sources[5].annotations["org.example.note"],
            "picked by config"
        );
        // Two destinations, as a list or comma-separated.
        for image in [
            "[r.example/a:1, other.example/b:1]",
            "r.example/a:1,other.example/b:1",
        ] {
            let spec = parse(
                "spec.yml",
                &format!(
                    "image: {image}
manifests:
  - image: r.example/x:1
"
                ),
            )
            .unwrap();
            let images: Vec<String> = spec.images.iter().map(ToString::to_string).collect();
            assert_eq!(images, ["r.example/a", "other.example/b"]);
        }
    }

    #[test]
    fn refuses_deep_nesting_before_parsing() {
        let deep = format!(
            "image: r.example/a
manifests: {}{}
",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        let start = std::time::Instant::now();
        let e = parse("spec.yml", &deep).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("nests 5000 levels"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
