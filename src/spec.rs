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
    image: String,
    #[serde(default)]
    tags: Vec<String>,
    manifests: Vec<Entry>,
    /// Annotations of the index (manifest-tool writes them on the OCI index).
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    image: String,
    platform: EntryPlatform,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryPlatform {
    architecture: String,
    os: String,
    #[serde(default)]
    variant: Option<String>,
    /// Accepted for compatibility; the index takes these from each image's config.
    #[serde(default, rename = "osversion")]
    _os_version: Option<String>,
    #[serde(default, rename = "features")]
    _features: Option<Vec<String>>,
    #[serde(default, rename = "osfeatures")]
    _os_features: Option<Vec<String>>,
}

/// What a spec decides: the target repository, its tags (the image's own tag first), the sources
/// and the index annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    /// The file, as errors and logs name it.
    pub(crate) origin: String,
    pub(crate) image: Repository,
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
    let target = reference::parse(&format!("{setting}: image"), &file.image)?;
    let image = target.repository().clone();
    let tags = reference::tags(
        &format!("{setting}: tags"),
        target
            .tag()
            .into_iter()
            .chain(file.tags.iter().map(String::as_str)),
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
        let p = &entry.platform;
        let text = match &p.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
            _ => format!("{}/{}", p.os, p.architecture),
        };
        let platform = Platform::parse(&format!("{at}.platform"), &text)?;
        if let Some(first) = sources.iter().find(|s| s.platform.matches(&platform)) {
            return Err(Error::DuplicatePlatform {
                platform: platform.to_string(),
                first: first.reference.to_string(),
                second: entry.image.clone(),
            });
        }
        sources.push(Source {
            platform,
            reference: reference::parse(&format!("{at}.image"), &entry.image)?,
            origin: SourceOrigin::Spec,
        });
    }
    Ok(Spec {
        origin: origin.to_string(),
        image,
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
        assert_eq!(spec.image.to_string(), "registry.example.com/app");
        assert_eq!(spec.tags, ["1.4.2", "1.4", "latest"]);
        let got: Vec<(String, String)> = spec
            .sources
            .iter()
            .map(|s| (s.platform.to_string(), s.reference.to_string()))
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
}
