//! Text a registry supplied, made safe to show in logs, errors and reports. Pure.

/// Text a registry supplied (a revision label, a platform name) made safe to show: control
/// characters escaped (`\n`, `\u{1b}`) and at most 200 characters, so a label cannot forge log
/// lines, colour the terminal or close a GitLab log section. Ordinary text is left as it is.
pub(crate) fn printable(text: &str) -> String {
    if text.len() <= SHOWN_CHARS && !text.chars().any(unsafe_to_show) {
        return text.to_string();
    }
    bounded(escaped(text).chars())
}

/// Text an image supplied (a file name, an entrypoint, a `#!` line) with its control characters
/// escaped, whatever its length: composed texts whose parts are bounded elsewhere.
pub(crate) fn escaped(text: &str) -> String {
    if !text.chars().any(unsafe_to_show) {
        return text.to_string();
    }
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if unsafe_to_show(c) {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Control characters, and the bidirectional formatting characters that make a terminal show
/// text in another order than it is (a name that reads as another).
fn unsafe_to_show(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The most characters of registry-supplied text shown in one place.
pub(crate) const SHOWN_CHARS: usize = 200;

/// The first `SHOWN_CHARS` characters, and `…` when there were more.
pub(crate) fn bounded(chars: impl Iterator<Item = char>) -> String {
    let mut chars = chars.peekable();
    let mut out: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.peek().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_text_is_shown_printable_and_bounded() {
        assert_eq!(printable("3f2a1c0"), "3f2a1c0");
        assert_eq!(
            printable("dead\n\x1b[0Ksection_end:1:x\r"),
            "dead\\n\\u{1b}[0Ksection_end:1:x\\r"
        );
        assert_eq!(printable(&"a".repeat(500)).chars().count(), 201);
        assert_eq!(escaped(&"a".repeat(500)).len(), 500);
        assert_eq!(escaped("/bin/sh\r"), "/bin/sh\\r");
        assert_eq!(escaped("app\u{202e}gpj.exe"), "app\\u{202e}gpj.exe");
    }
}
