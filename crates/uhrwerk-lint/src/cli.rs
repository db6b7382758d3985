//! The `uhrwerk lint` subcommand: arguments, configuration resolution, parallel linting and exit codes.

use std::io::Write as _;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::config::{self, Config};
use crate::diagnostic::{Diagnostic, Severity};
use crate::files::{self, Source};
use crate::lint::lint_source;
use crate::output;
use crate::rules;

/// Output format of `uhrwerk lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable diagnostics with source line and caret, then a per-rule summary.
    Text,
    /// One JSON document with all diagnostics and per-rule counts.
    Json,
    /// SARIF 2.1.0 for code-scanning UIs.
    Sarif,
}

/// Lowest severity that makes the run fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Exit 1 on any finding.
    Warning,
    /// Exit 1 only on error-level findings (default).
    Error,
}

/// Check Python Temporal workflow code for the anti-patterns of the best-practices chapter.
#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// Files or directories to check; directories are walked recursively, honouring .gitignore. Defaults to `.`.
    pub paths: Vec<PathBuf>,

    /// Output format: `text` (diagnostics with carets and a summary), `json`, or `sarif` (SARIF 2.1.0).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Print the documentation of one rule (e.g. `--explain UW101`) and exit.
    #[arg(long, value_name = "CODE")]
    pub explain: Option<String>,

    /// Print the table of all rules and exit.
    #[arg(long)]
    pub list_rules: bool,

    /// Check only these rules (codes, prefixes like `UW1`, or `ALL`); comma-separated; replaces the configured selection.
    #[arg(long, value_delimiter = ',', value_name = "CODES")]
    pub select: Vec<String>,

    /// Also check these rules on top of the selection (e.g. the opt-in `UW703`); comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "CODES")]
    pub extend_select: Vec<String>,

    /// Skip these rules (codes or prefixes); comma-separated; applied after the selection.
    #[arg(long, value_delimiter = ',', value_name = "CODES")]
    pub ignore: Vec<String>,

    /// Lowest severity that makes the exit code 1: `error` (default) or `warning`.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,

    /// Use this pyproject.toml instead of searching upwards from the first path for one with [tool.uhrwerk.lint].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Ignore every pyproject.toml and use the built-in defaults.
    #[arg(long, conflicts_with = "config")]
    pub isolated: bool,

    /// Do not print the per-rule summary after text output.
    #[arg(long)]
    pub no_summary: bool,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error(transparent)]
    Files(#[from] files::Error),
    #[error("unknown rule `{0}`; `--list-rules` shows all codes")]
    UnknownRule(String),
}

fn resolve_config(args: &LintArgs, paths: &[PathBuf]) -> Result<Config, Error> {
    let mut config = if args.isolated {
        Config::default()
    } else if let Some(path) = &args.config {
        Config::from_pyproject(path)?
    } else {
        let start = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
        match config::discover(&start)? {
            Some(path) => Config::from_pyproject(&path)?,
            None => Config::default(),
        }
    };
    if !args.select.is_empty() {
        config.select(&args.select)?;
    }
    config.extend_select(&args.extend_select)?;
    config.ignore(&args.ignore)?;
    Ok(config)
}

/// Lints every Python file under `paths` in parallel; returns the diagnostics and the number of files.
pub fn lint_paths(paths: &[PathBuf], config: &Config) -> Result<(Vec<Diagnostic>, usize), files::Error> {
    let files = files::discover(paths)?;
    let mut diagnostics: Vec<Diagnostic> = files
        .par_iter()
        .flat_map_iter(|path| {
            let display = path.display().to_string();
            match files::read(path, &display, config) {
                Source::Text(text) => lint_source(&display, &text, config),
                Source::Unreadable(diagnostic) => vec![diagnostic],
            }
        })
        .collect();
    diagnostics.sort_by(|a, b| (&a.path, a.line, a.column, a.code).cmp(&(&b.path, b.line, b.column, b.code)));
    Ok((diagnostics, files.len()))
}

fn list_rules() -> String {
    let mut out = String::from("code   severity  default  section     name\n");
    for rule in rules::RULES {
        out.push_str(&format!(
            "{}  {:<8}  {:<7}  {:<10}  {} — {}\n",
            rule.code,
            rule.default_severity.as_str(),
            if rule.enabled_by_default { "on" } else { "opt-in" },
            rule.section,
            rule.name,
            rule.summary
        ));
    }
    out
}

fn execute(args: &LintArgs) -> Result<i32, Error> {
    let mut stdout = std::io::stdout().lock();
    if let Some(code) = &args.explain {
        let rule = rules::by_code(code).ok_or_else(|| Error::UnknownRule(code.clone()))?;
        let _ = writeln!(stdout, "{}", rule.doc.trim_end());
        return Ok(0);
    }
    if args.list_rules {
        let _ = write!(stdout, "{}", list_rules());
        return Ok(0);
    }
    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let config = resolve_config(args, &paths)?;
    let (diagnostics, files_checked) = lint_paths(&paths, &config)?;
    match args.format {
        Format::Text => {
            for diagnostic in &diagnostics {
                let _ = writeln!(stdout, "{}", output::render_text(diagnostic));
            }
            if !args.no_summary {
                let _ = write!(stdout, "{}", output::render_summary(&diagnostics, files_checked));
            }
        }
        Format::Json => {
            let _ = writeln!(stdout, "{}", output::render_json(&diagnostics, files_checked));
        }
        Format::Sarif => {
            let _ = writeln!(stdout, "{}", output::render_sarif(&diagnostics));
        }
    }
    let threshold = match args.fail_on {
        FailOn::Warning => Severity::Warning,
        FailOn::Error => Severity::Error,
    };
    Ok(i32::from(diagnostics.iter().any(|d| d.severity >= threshold)))
}

/// Runs `uhrwerk lint`; returns the exit code: 0 clean, 1 findings at or above `--fail-on`, 2 usage or configuration errors.
pub fn run(args: &LintArgs) -> i32 {
    match execute(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("uhrwerk lint: {error}");
            2
        }
    }
}
