//! Rendering: rustc/ruff-style text with carets, JSON, SARIF 2.1.0, and the per-rule summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Severity};
use crate::rules::{self, RULES};

/// One diagnostic as text, with the source line and a caret underline.
pub fn render_text(diagnostic: &Diagnostic) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}:{}:{}: {}[{}] {}",
        diagnostic.path,
        diagnostic.line,
        diagnostic.column,
        diagnostic.severity.as_str(),
        diagnostic.code,
        diagnostic.message
    );
    if diagnostic.source_line.is_empty() {
        return out;
    }
    let gutter = diagnostic.line.to_string();
    let pad = " ".repeat(gutter.len());
    let line_chars = diagnostic.source_line.chars().count();
    let start = diagnostic.column.saturating_sub(1).min(line_chars);
    let end = if diagnostic.end_line == diagnostic.line { diagnostic.end_column.saturating_sub(1) } else { line_chars };
    let width = end.saturating_sub(start).max(1);
    // Keep tabs in the underline prefix so the caret lines up under tab-indented code.
    let prefix: String =
        diagnostic.source_line.chars().take(start).map(|ch| if ch == '\t' { '\t' } else { ' ' }).collect();
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{gutter} | {}", diagnostic.source_line);
    let _ = writeln!(out, "{pad} | {prefix}{}", "^".repeat(width));
    out
}

/// Counts per rule, in code order.
pub fn counts(diagnostics: &[Diagnostic]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for diagnostic in diagnostics {
        *counts.entry(diagnostic.code).or_insert(0) += 1;
    }
    counts
}

/// The summary block printed after text output.
pub fn render_summary(diagnostics: &[Diagnostic], files_checked: usize) -> String {
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diagnostics.len() - errors;
    let mut out = String::new();
    if diagnostics.is_empty() {
        let _ = writeln!(out, "All checks passed ({files_checked} files).");
        return out;
    }
    let _ = writeln!(
        out,
        "Found {} findings ({errors} errors, {warnings} warnings) in {files_checked} files checked.",
        diagnostics.len()
    );
    for (code, count) in counts(diagnostics) {
        let name = rules::by_code(code).map_or("", |rule| rule.name);
        let _ = writeln!(out, "{count:>6}  {code}  {name}");
    }
    out
}

/// JSON document: `{"version", "files_checked", "diagnostics": [...], "summary": {code: count}}`.
pub fn render_json(diagnostics: &[Diagnostic], files_checked: usize) -> String {
    let summary: BTreeMap<_, _> = counts(diagnostics);
    let document = json!({
        "version": 1,
        "files_checked": files_checked,
        "diagnostics": diagnostics,
        "summary": summary,
    });
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".to_string())
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// SARIF 2.1.0 log with one run; every known rule is listed in `tool.driver.rules`.
pub fn render_sarif(diagnostics: &[Diagnostic]) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|rule| {
            json!({
                "id": rule.code,
                "name": rule.name,
                "shortDescription": { "text": rule.summary },
                "fullDescription": { "text": format!("{} (chapter 13, section {})", rule.summary, rule.section) },
                "help": { "text": rule.doc, "markdown": rule.doc },
                "defaultConfiguration": { "level": sarif_level(rule.default_severity), "enabled": rule.enabled_by_default },
                "properties": { "section": rule.section },
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|diagnostic| {
            let rule_index = RULES.iter().position(|rule| rule.code == diagnostic.code);
            json!({
                "ruleId": diagnostic.code,
                "ruleIndex": rule_index,
                "level": sarif_level(diagnostic.severity),
                "message": { "text": diagnostic.message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": diagnostic.path.replace('\\', "/") },
                        "region": {
                            "startLine": diagnostic.line,
                            "startColumn": diagnostic.column,
                            "endLine": diagnostic.end_line,
                            "endColumn": diagnostic.end_column,
                            "snippet": { "text": diagnostic.source_line },
                        }
                    }
                }],
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "uhrwerk-lint",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&log).unwrap_or_else(|_| "{}".to_string())
}
