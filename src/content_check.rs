//! What the content check found for one image, as data that crosses layers (into `SourceImage`,
//! the index entry, `plan`, `inspect`, the error). Its own file, below `content/` (which reads
//! layers through the registry): the pure core holds it without reaching up. Pure.

/// The check of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub(crate) verdict: Verdict,
    /// Layers opened, and their bytes downloaded.
    pub(crate) layers_read: usize,
    pub(crate) bytes_read: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `MULTIARCH_CONTENT_CHECK=off`.
    Off,
    /// The file is machine code of the image's platform.
    Matched {
        file: String,
        machine: String,
        trail: String,
    },
    /// The file is machine code of another platform.
    Mismatch {
        file: String,
        /// `ELF 64-bit LSB x86-64`.
        found: String,
        /// `linux/amd64`, when known.
        found_platform: Option<String>,
        trail: String,
    },
    /// Not judged: why, and whether the user should look (`warn`: not found, over budget,
    /// unreadable) or not (no entrypoint, a jar, a platform without known machine code).
    NotChecked { reason: String, warn: bool },
}

impl Checked {
    pub(crate) fn unread(verdict: Verdict) -> Checked {
        Checked {
            verdict,
            layers_read: 0,
            bytes_read: 0,
        }
    }

    /// One line for `plan` and `inspect`.
    pub(crate) fn summary(&self) -> String {
        match &self.verdict {
            Verdict::Off => "not checked (MULTIARCH_CONTENT_CHECK=off)".into(),
            Verdict::Matched { file, machine, .. } => format!("{file}: {machine}, matches"),
            Verdict::Mismatch {
                file,
                found,
                found_platform,
                ..
            } => format!(
                "{file}: {found}{}, DOES NOT MATCH",
                found_platform
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            ),
            Verdict::NotChecked { reason, .. } => format!("not checked: {reason}"),
        }
    }
}
