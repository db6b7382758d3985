//! One file end to end: parse, build the module model, run every check, apply inline suppressions.

use ruff_python_parser::parse_module;
use ruff_text_size::{Ranged, TextRange, TextSize};

use crate::checks;
use crate::config::Config;
use crate::diagnostic::{Diagnostic, LineIndex};
use crate::rules;
use crate::semantic::Module;
use crate::suppress;

/// Collects diagnostics for one file, honouring the rule selection and severity overrides.
pub struct Reporter<'a> {
    pub path: &'a str,
    pub config: &'a Config,
    pub index: LineIndex<'a>,
    pub out: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub fn new(path: &'a str, source: &'a str, config: &'a Config) -> Self {
        Reporter { path, config, index: LineIndex::new(source), out: Vec::new() }
    }

    pub fn enabled(&self, code: &str) -> bool {
        self.config.severity_of(code).is_some()
    }

    /// Records a finding at `range` unless the rule is disabled.
    pub fn report(&mut self, code: &'static str, range: TextRange, message: impl Into<String>) {
        let Some(severity) = self.config.severity_of(code) else {
            return;
        };
        let name = rules::by_code(code).map_or("", |rule| rule.name);
        let start = usize::from(range.start());
        let end = usize::from(range.end()).max(start);
        let (line, column) = self.index.position(start);
        let (end_line, end_column) = self.index.position(end);
        self.out.push(Diagnostic {
            code,
            name,
            severity,
            message: message.into(),
            path: self.path.to_string(),
            line,
            column,
            end_line,
            end_column,
            source_line: self.index.line_text(line - 1).to_string(),
        });
    }

    /// Line (1-based) of an offset, for messages that point at other code.
    pub fn line_of(&self, offset: TextSize) -> usize {
        self.index.line_of(usize::from(offset)) + 1
    }
}

/// Lints one Python source text. `path` is only used for display.
pub fn lint_source(path: &str, source: &str, config: &Config) -> Vec<Diagnostic> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut reporter = Reporter::new(path, source, config);
    let parsed = match parse_module(source) {
        Ok(parsed) => parsed,
        Err(error) => {
            reporter.report("UW000", error.location, format!("syntax error: {}", error.error));
            return reporter.out;
        }
    };
    let module = Module::new(parsed.suite());
    checks::run_all(&module, &mut reporter);

    let comments = parsed
        .tokens()
        .iter()
        .filter(|token| token.kind() == ruff_python_ast::token::TokenKind::Comment)
        .map(|token| token.range());
    let suppressions = suppress::collect(source, comments, &mut reporter);
    let mut diagnostics = suppress::apply(reporter.out, &suppressions);
    diagnostics.sort_by(|a, b| (a.line, a.column, a.code).cmp(&(b.line, b.column, b.code)));
    diagnostics.dedup_by(|a, b| a.line == b.line && a.column == b.column && a.code == b.code && a.message == b.message);
    diagnostics
}
