//! Images whose program is machine code of another platform than their config says: one block
//! per image (what it is, how the file was found, what to change), so one failed run names every
//! image to fix.

/// One image whose program is machine code of another platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatched {
    /// `reference@digest`.
    pub(crate) image: String,
    /// What its config says: `linux/arm64`.
    pub(crate) platform: String,
    /// `/usr/local/bin/app is ELF 64-bit LSB x86-64 (machine code for linux/amd64)`.
    pub(crate) found: String,
    /// The architecture of that machine code (`amd64`), when known: what a download named.
    pub(crate) found_arch: Option<String>,
    /// How the file was found: `entrypoint "app" → PATH … → … in layer 2/2 (…)`.
    pub(crate) trail: String,
}

/// Every image's block, and the switch that publishes without the check: in the hint of a lone
/// image, on a line of its own after several.
pub(crate) fn describe(images: &[Mismatched]) -> String {
    const OFF: &str = "MULTIARCH_CONTENT_CHECK=off publishes without this check";
    if let [one] = images {
        return format!("{}; {OFF}", block(one));
    }
    let blocks: Vec<String> = images.iter().map(block).collect();
    format!(
        "{} images start a program built for another machine than their platform:\n{}\n{OFF}",
        images.len(),
        blocks.join("\n")
    )
}

fn block(m: &Mismatched) -> String {
    let not = m
        .found_arch
        .as_ref()
        .map(|arch| format!(", not …-{arch}"))
        .unwrap_or_default();
    format!(
        "{image} is {platform}, but the program it starts is not: {found}\n  found: {trail}\n  hint: the {platform} build put a program built for another machine into the image: download or copy artifacts for the target platform (…-${{TARGETARCH}}{not}), and cross-compile in stages built FROM --platform=$BUILDPLATFORM (for $TARGETPLATFORM) or build them for the target",
        image = m.image,
        platform = m.platform,
        found = m.found,
        trail = m.trail,
    )
}
