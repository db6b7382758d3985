//! Input discovery and reading: walks paths with `.gitignore` support and turns unreadable input into diagnostics.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::diagnostic::{Diagnostic, Severity};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("path does not exist: {0}")]
    Missing(PathBuf),
    #[error("failed to walk {path}: {source}")]
    Walk { path: PathBuf, source: ignore::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Python files under `paths`: explicit files are always included, directories are walked recursively
/// honouring `.gitignore`, `.ignore` and hidden-file rules, keeping `*.py` and `*.pyi`.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        if !path.is_dir() {
            return Err(Error::Missing(path.clone()));
        }
        let walker = ignore::WalkBuilder::new(path).require_git(false).build();
        for entry in walker {
            let entry = entry.map_err(|source| Error::Walk { path: path.clone(), source })?;
            let is_file = entry.file_type().is_some_and(|kind| kind.is_file());
            let is_python = entry.path().extension().is_some_and(|ext| ext == "py" || ext == "pyi");
            if is_file && is_python {
                files.push(entry.into_path());
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// The outcome of reading one file.
pub enum Source {
    Text(String),
    Unreadable(Diagnostic),
}

/// Reads a file as UTF-8 text; binary, non-UTF-8 and unreadable files become a UW002 diagnostic.
pub fn read(path: &Path, display: &str, config: &Config) -> Source {
    let problem = match std::fs::read(path) {
        Ok(bytes) => {
            if bytes.iter().take(8192).any(|&byte| byte == 0) {
                "binary file (contains NUL bytes); not checked".to_string()
            } else {
                match String::from_utf8(bytes) {
                    Ok(text) => return Source::Text(text),
                    Err(error) => format!(
                        "not valid UTF-8 (invalid byte at offset {}); not checked",
                        error.utf8_error().valid_up_to()
                    ),
                }
            }
        }
        Err(error) => format!("failed to read file: {error}"),
    };
    Source::Unreadable(Diagnostic {
        code: "UW002",
        name: "unreadable-file",
        severity: config.severity_of("UW002").unwrap_or(Severity::Warning),
        message: problem,
        path: display.to_string(),
        line: 1,
        column: 1,
        end_line: 1,
        end_column: 1,
        source_line: String::new(),
    })
}
