//! Platforms (`os/arch[/variant]`): parsing what users type, normalising what images say, and
//! deciding when two platforms are the same.
//!
//! Normalisation follows containerd's `platforms.Normalize`, which is what pulling clients apply
//! when they pick a child from an index: `aarch64`→`arm64`, `x86_64`→`amd64`, `arm64/v8` ≡
//! `arm64`, `arm` ≡ `arm/v7`, `amd64/v1` ≡ `amd64`. Pure: no I/O.

use std::fmt;

use serde::Serialize;

use crate::error::Error;
use crate::text::printable;

/// Every `os/arch` pair Go knows (`go tool dist list`), plus `linux/loong64` and the pairs images
/// are published for that Go has since dropped.
const KNOWN: &[(&str, &[&str])] = &[
    ("aix", &["ppc64"]),
    ("android", &["386", "amd64", "arm", "arm64"]),
    ("darwin", &["amd64", "arm64"]),
    ("dragonfly", &["amd64"]),
    ("freebsd", &["386", "amd64", "arm", "arm64", "riscv64"]),
    ("illumos", &["amd64"]),
    ("ios", &["amd64", "arm64"]),
    ("js", &["wasm"]),
    (
        "linux",
        &[
            "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle",
            "ppc64", "ppc64le", "riscv64", "s390x",
        ],
    ),
    ("netbsd", &["386", "amd64", "arm", "arm64"]),
    (
        "openbsd",
        &["386", "amd64", "arm", "arm64", "mips64", "ppc64", "riscv64"],
    ),
    ("plan9", &["386", "amd64", "arm"]),
    ("solaris", &["amd64"]),
    ("wasip1", &["wasm"]),
    ("windows", &["386", "amd64", "arm", "arm64"]),
];

/// Variants an architecture may carry (after normalisation).
fn variants_of(arch: &str) -> &'static [&'static str] {
    match arch {
        "arm" => &["v5", "v6", "v7", "v8"],
        "arm64" => &[
            "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.1",
            "v9.2", "v9.3", "v9.4", "v9.5",
        ],
        "amd64" => &["v2", "v3", "v4"],
        "riscv64" => &["rva20u64", "rva22u64", "rva23u64"],
        _ => &[],
    }
}

const EXAMPLE: &str = "linux/amd64, linux/arm64, linux/arm/v7 or linux/amd64/v3";

/// A normalised platform. `variant` is `None` for the architecture's default variant, so derived
/// equality is the match relation pulling clients use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Windows build (`10.0.17763.1234`), taken from the image config and kept in the index so
    /// Windows hosts can pick a compatible child; ignored when matching.
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl Platform {
    /// Parses a user-typed `os/arch[/variant]` (flag, variable or spec), strictly: unknown pairs
    /// are refused with an example of an accepted value.
    pub fn parse(setting: &str, text: &str) -> Result<Platform, Error> {
        let bad = |reason: String| {
            Error::invalid(
                setting,
                text,
                reason,
                format!("write os/arch[/variant], for example {EXAMPLE}"),
            )
        };
        let parts: Vec<&str> = text.trim().split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad("expected os/arch or os/arch/variant".into()));
        }
        let os = parts[0].to_ascii_lowercase();
        let p = Platform::normalised(&os, parts[1], parts.get(2).copied(), None);
        let Some((_, arches)) = KNOWN.iter().find(|(o, _)| *o == p.os) else {
            return Err(bad(format!("unknown operating system {:?}", parts[0])));
        };
        if !arches.contains(&p.architecture.as_str()) {
            return Err(bad(format!(
                "{:?} is not an architecture of {} (known: {})",
                parts[1],
                p.os,
                arches.join(", ")
            )));
        }
        if let Some(v) = &p.variant {
            if !variants_of(&p.architecture).contains(&v.as_str()) {
                return Err(bad(format!(
                    "{v:?} is not a variant of {}{}",
                    p.architecture,
                    match variants_of(&p.architecture) {
                        [] => " (it has none)".to_string(),
                        vs => format!(" (known: {})", vs.join(", ")),
                    }
                )));
            }
        }
        Ok(p)
    }

    /// Builds a platform from what an image config or index descriptor says, normalising names
    /// but accepting anything (registries hold images for platforms we have never heard of).
    pub fn normalised(
        os: &str,
        arch: &str,
        variant: Option<&str>,
        os_version: Option<&str>,
    ) -> Self {
        // Registry text: kept printable (a control character in an architecture must not reach
        // a log line or an index as it is).
        let os = printable(os).to_ascii_lowercase();
        let arch = printable(arch).to_ascii_lowercase();
        let variant = variant
            .filter(|v| !v.is_empty())
            .map(|v| printable(v).to_ascii_lowercase());
        let (architecture, variant) = match (arch.as_str(), variant.as_deref()) {
            ("aarch64" | "arm64", v) => (
                "arm64",
                match v {
                    None | Some("8" | "v8" | "v8.0") => None,
                    Some("9" | "9.0" | "v9.0") => Some("v9".to_string()),
                    Some(v) => Some(with_v(v)),
                },
            ),
            ("armhf", _) => ("arm", Some("v7".to_string())),
            ("armel", _) => ("arm", Some("v6".to_string())),
            ("arm", v) => (
                "arm",
                match v {
                    None | Some("7" | "v7") => Some("v7".to_string()),
                    Some(v) => Some(with_v(v)),
                },
            ),
            ("x86_64" | "x86-64" | "amd64", v) => (
                "amd64",
                match v {
                    None | Some("v1" | "1") => None,
                    Some(v) => Some(with_v(v)),
                },
            ),
            ("i386" | "i686" | "x86", v) => ("386", v.map(str::to_string)),
            (a, v) => (a, v.map(str::to_string)),
        };
        Platform {
            os,
            architecture: architecture.to_string(),
            variant,
            os_version: os_version.filter(|v| !v.is_empty()).map(printable),
        }
    }

    /// True when a puller asking for `self` would accept an image of `other` (OS version aside).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && self.variant == other.variant
    }

    /// `v7` for `linux/arm/v7`, empty when there is no variant: what `{variant}` expands to.
    pub fn variant_or_empty(&self) -> &str {
        self.variant.as_deref().unwrap_or("")
    }

    /// `LINUX_ARM_V7`: the suffix of the per-platform dotenv variable.
    pub fn env_suffix(&self) -> String {
        let mut s = format!("{}_{}", self.os, self.architecture);
        if let Some(v) = &self.variant {
            s.push('_');
            s.push_str(v);
        }
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The platform of attestation manifests in buildx indexes.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

fn with_v(v: &str) -> String {
    if v.starts_with(|c: char| c.is_ascii_digit()) {
        format!("v{v}")
    } else {
        v.to_string()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse("--platforms", s).unwrap()
    }

    #[test]
    fn normalises_user_input() {
        for (given, want) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64/8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("Linux/PPC64LE", "linux/ppc64le"),
            ("linux/s390x", "linux/s390x"),
            ("linux/riscv64", "linux/riscv64"),
            ("windows/amd64", "windows/amd64"),
            ("linux/386", "linux/386"),
            ("linux/loong64", "linux/loong64"),
            ("wasip1/wasm", "wasip1/wasm"),
        ] {
            assert_eq!(p(given).to_string(), want, "{given}");
        }
    }

    #[test]
    fn rejects_bad_platforms_with_an_example() {
        for bad in [
            "amd64",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v3/x",
            "plan10/amd64",
            "linux/sparc",
            "linux/amd64/v5",
            "linux/386/v2",
            "darwin/s390x",
        ] {
            let e = Platform::parse("--platforms", bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("linux/arm/v7"), "{bad}: {e}");
        }
    }

    #[test]
    fn arm64_matches_arm64_v8_from_a_config() {
        let from_config = Platform::normalised("linux", "arm64", Some("v8"), None);
        assert!(p("linux/arm64").matches(&from_config));
        let aarch64 = Platform::normalised("linux", "aarch64", None, None);
        assert!(p("linux/arm64").matches(&aarch64));
        assert!(!p("linux/arm/v7").matches(&from_config));
        assert!(!p("linux/arm/v6").matches(&Platform::normalised("linux", "arm", None, None)));
    }

    #[test]
    fn windows_os_version_is_kept_but_not_matched() {
        let c = Platform::normalised("windows", "amd64", None, Some("10.0.17763.1234"));
        assert!(p("windows/amd64").matches(&c));
        assert_eq!(c.os_version.as_deref(), Some("10.0.17763.1234"));
    }

    #[test]
    fn env_suffix_names_os_arch_and_variant() {
        assert_eq!(p("linux/arm/v7").env_suffix(), "LINUX_ARM_V7");
        assert_eq!(p("linux/amd64").env_suffix(), "LINUX_AMD64");
        assert_eq!(p("linux/arm64/v8.2").env_suffix(), "LINUX_ARM64_V8_2");
    }
}
