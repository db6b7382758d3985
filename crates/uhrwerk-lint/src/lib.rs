//! `uhrwerk-lint`: a static checker for Python Temporal workflow code, built on ruff's Python parser.
//!
//! The binary calls [`run`] with parsed [`LintArgs`]; tests call [`lint_source`].

mod checks;
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod files;
mod lint;
pub mod output;
pub mod rules;
mod semantic;
pub mod suppress;

pub use cli::{FailOn, Format, LintArgs, lint_paths, run};
pub use config::Config;
pub use diagnostic::{Diagnostic, Severity};
pub use lint::lint_source;
