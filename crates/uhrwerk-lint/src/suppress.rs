//! Inline suppressions: `# uhrwerk: ignore[CODE, ...] reason`, on the offending line or alone on the line above.

use std::collections::HashSet;

use ruff_text_size::TextRange;

use crate::diagnostic::Diagnostic;
use crate::lint::Reporter;

/// A valid suppression: these codes are silenced on this 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub line: usize,
    pub codes: Vec<String>,
    pub reason: String,
}

/// Result of parsing one comment.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    NotASuppression,
    Valid { codes: Vec<String>, reason: String },
    Invalid(&'static str),
}

/// Parses the text of one comment (including the leading `#`).
pub fn parse_comment(comment: &str) -> Parsed {
    let body = comment.trim_start_matches('#').trim();
    let Some(rest) = body.strip_prefix("uhrwerk:") else {
        return Parsed::NotASuppression;
    };
    let Some(rest) = rest.trim_start().strip_prefix("ignore") else {
        return Parsed::NotASuppression;
    };
    let Some(rest) = rest.strip_prefix('[') else {
        return Parsed::Invalid("suppression must list codes, e.g. `# uhrwerk: ignore[UW101] reason`");
    };
    let Some((codes, reason)) = rest.split_once(']') else {
        return Parsed::Invalid("suppression is missing the closing `]`");
    };
    let codes: Vec<String> =
        codes.split(',').map(|code| code.trim().to_ascii_uppercase()).filter(|code| !code.is_empty()).collect();
    if codes.is_empty() {
        return Parsed::Invalid("suppression must list at least one code");
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Parsed::Invalid(
            "suppression needs a reason after the codes, e.g. `# uhrwerk: ignore[UW101] seeded in tests`",
        );
    }
    Parsed::Valid { codes, reason: reason.to_string() }
}

/// Finds suppressions among the comment tokens; malformed ones are reported as UW001.
pub fn collect(
    source: &str,
    comments: impl Iterator<Item = TextRange>,
    reporter: &mut Reporter<'_>,
) -> Vec<Suppression> {
    let mut suppressions = Vec::new();
    for range in comments {
        let Some(text) = source.get(usize::from(range.start())..usize::from(range.end())) else {
            continue;
        };
        match parse_comment(text) {
            Parsed::NotASuppression => {}
            Parsed::Invalid(why) => reporter.report("UW001", range, why),
            Parsed::Valid { codes, reason } => {
                let line = reporter.line_of(range.start());
                let own_line = reporter.index.line_text(line - 1).trim_start().starts_with('#');
                let target = if own_line { line + 1 } else { line };
                suppressions.push(Suppression { line: target, codes, reason });
            }
        }
    }
    suppressions
}

/// Drops diagnostics silenced by a suppression on their start line.
pub fn apply(diagnostics: Vec<Diagnostic>, suppressions: &[Suppression]) -> Vec<Diagnostic> {
    if suppressions.is_empty() {
        return diagnostics;
    }
    let silenced: HashSet<(usize, &str)> =
        suppressions.iter().flat_map(|s| s.codes.iter().map(move |code| (s.line, code.as_str()))).collect();
    diagnostics.into_iter().filter(|d| d.code == "UW001" || !silenced.contains(&(d.line, d.code))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_reason() {
        assert_eq!(
            parse_comment("# uhrwerk: ignore[UW101, uw102] seeded in tests"),
            Parsed::Valid { codes: vec!["UW101".into(), "UW102".into()], reason: "seeded in tests".into() }
        );
    }

    #[test]
    fn missing_reason_is_invalid() {
        assert!(matches!(parse_comment("# uhrwerk: ignore[UW101]"), Parsed::Invalid(_)));
        assert!(matches!(parse_comment("# uhrwerk: ignore"), Parsed::Invalid(_)));
    }

    #[test]
    fn ordinary_comments_are_ignored() {
        assert_eq!(parse_comment("# just a note about uhrwerk"), Parsed::NotASuppression);
    }
}
