//! Text search attribute matching: the tokenizer and the match rule a store should use for `Text = 'value'`.

/// Splits `s` into lowercase tokens at every character that is not a letter or digit.
pub fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_lowercase).collect()
}

/// Whether the stored Text value `field` matches the query value `query`: every token of
/// `query` occurs among the tokens of `field` (case-insensitive, any order), as a full-text
/// `MATCH` does. A query without tokens matches nothing. `Text != 'v'` is the negation.
pub fn text_matches(field: &str, query: &str) -> bool {
    let wanted = tokens(query);
    if wanted.is_empty() {
        return false;
    }
    let have = tokens(field);
    wanted.iter().all(|w| have.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_on_non_alphanumerics() {
        assert_eq!(tokens("Hello, World! foo_bar 42"), vec!["hello", "world", "foo", "bar", "42"]);
        assert!(tokens("  ,, ").is_empty());
    }

    #[test]
    fn matches_all_tokens_in_any_order() {
        assert!(text_matches("The quick brown fox", "quick"));
        assert!(text_matches("The quick brown fox", "FOX quick"));
        assert!(!text_matches("The quick brown fox", "quick cat"));
        assert!(!text_matches("The quick brown fox", "qui"));
        assert!(!text_matches("anything", "   "));
    }
}
