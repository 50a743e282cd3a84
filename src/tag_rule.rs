//! Whether a repository lets a tag move: ECR's image tag mutability, including the
//! `*_WITH_EXCLUSION` modes whose wildcard filters name the tags that behave the other way.
//! Other registries have no such rule (`Mutable`). Pure: the rule is read by `ecr`.
//! See <https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html>.

/// A repository's tag mutability.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TagRule {
    #[default]
    Mutable,
    Immutable,
    /// Immutable, except tags matching one of these wildcard filters.
    ImmutableExcept(Vec<String>),
    /// Mutable, except tags matching one of these wildcard filters (those are immutable).
    MutableExcept(Vec<String>),
}

impl TagRule {
    /// True when `tag`, once set, may not be pointed at anything else.
    pub fn is_immutable(&self, tag: &str) -> bool {
        match self {
            TagRule::Mutable => false,
            TagRule::Immutable => true,
            TagRule::ImmutableExcept(filters) => !filters.iter().any(|f| wildcard(f, tag)),
            TagRule::MutableExcept(filters) => filters.iter().any(|f| wildcard(f, tag)),
        }
    }
}

/// ECR's WILDCARD filter: `*` matches any run of characters, everything else itself.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_filters_flip_the_rule_for_matching_tags() {
        let cases = [
            (TagRule::Mutable, "latest", false),
            (TagRule::Immutable, "latest", true),
            (
                TagRule::ImmutableExcept(vec!["latest".into(), "dev-*".into()]),
                "latest",
                false,
            ),
            (
                TagRule::ImmutableExcept(vec!["latest".into(), "dev-*".into()]),
                "dev-42",
                false,
            ),
            (
                TagRule::ImmutableExcept(vec!["latest".into(), "dev-*".into()]),
                "1.4.2",
                true,
            ),
            (
                TagRule::MutableExcept(vec!["v*.*.*".into()]),
                "v1.4.2",
                true,
            ),
            (
                TagRule::MutableExcept(vec!["v*.*.*".into()]),
                "latest",
                false,
            ),
        ];
        for (rule, tag, want) in cases {
            assert_eq!(rule.is_immutable(tag), want, "{rule:?} {tag}");
        }
    }

    #[test]
    fn wildcard_matches_like_ecr() {
        for (p, t, want) in [
            ("*", "", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxc", false),
            ("ab*ba", "aba", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(wildcard(p, t), want, "{p} {t}");
        }
    }
}
