//! The content check's settings: whether each image's entrypoint is held against its platform
//! (`--content-check` / `MULTIARCH_CONTENT_CHECK`: `entrypoint` or `off`), and how many layer
//! bytes one image may cost (`--content-budget` / `MULTIARCH_CONTENT_BUDGET`: `256MiB`, `1GiB`,
//! `500MB`, plain bytes). Pure.

use super::table::{CONTENT_BUDGET, CONTENT_CHECK};
use super::values::Inputs;
use crate::error::Error;

/// The default budget: layer bytes downloaded per image.
pub(crate) const DEFAULT_BUDGET: u64 = 256 << 20;

/// What the content check may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentCheck {
    pub(crate) enabled: bool,
    /// Layer bytes (as downloaded) read per image at most.
    pub(crate) budget: u64,
}

impl Default for ContentCheck {
    fn default() -> Self {
        ContentCheck {
            enabled: true,
            budget: DEFAULT_BUDGET,
        }
    }
}

/// `--content-check`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    #[value(help = "hold each image's entrypoint against its platform")]
    Entrypoint,
    #[value(help = "skip the check")]
    Off,
}

const SIZES: &str = "a size such as 256MiB, 1GiB, 500MB or 1048576 (bytes)";
const SKIP: &str = "to skip the check, set MULTIARCH_CONTENT_CHECK=off";

/// Resolves both settings.
pub(crate) fn resolve(inputs: &Inputs) -> Result<ContentCheck, Error> {
    let mut check = ContentCheck::default();
    if let Some(mode) = inputs.choice::<Mode>(&CONTENT_CHECK, "not a content check")? {
        check.enabled = mode == Mode::Entrypoint;
    }
    if let Some(f) = inputs.get(&CONTENT_BUDGET) {
        check.budget = parse_size(f.text).ok_or_else(|| {
            Error::invalid(
                f.origin.name(),
                f.text,
                "not a size",
                format!("{SIZES}; {SKIP}"),
            )
        })?;
        // 0 reads as "no check": that is what the other setting says.
        if check.budget == 0 {
            return Err(Error::invalid(
                f.origin.name(),
                f.text,
                "a budget of 0 bytes can read nothing",
                format!("{SKIP}; to check, give {SIZES}"),
            ));
        }
    }
    Ok(check)
}

/// `256MiB`, `1GiB`, `1.5GiB`, `500MB`, `512kB`, `1048576`, `100B` (case-insensitive, a space
/// allowed before the unit).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return None,
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(factor);
    }
    let value: f64 = number.parse().ok().filter(|v: &f64| v.is_finite())?;
    let bytes = value * factor as f64;
    (bytes < u64::MAX as f64 && factor > 1).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_the_units_people_write() {
        for (text, bytes) in [
            ("256MiB", Some(256 << 20)),
            ("1GiB", Some(1 << 30)),
            ("1.5 GiB", Some(3 << 29)),
            ("500MB", Some(500_000_000)),
            ("64kib", Some(64 << 10)),
            ("1048576", Some(1 << 20)),
            ("100B", Some(100)),
            ("0", Some(0)),
            ("1.5", None),
            ("lots", None),
            ("12 parsecs", None),
            ("-1MiB", None),
            ("99999999999TiB", None),
        ] {
            assert_eq!(parse_size(text), bytes, "{text}");
        }
    }
}
