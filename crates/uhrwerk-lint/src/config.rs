//! Configuration: `[tool.uhrwerk.lint]` in `pyproject.toml`, discovery by walking up, and rule selection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnostic::Severity;
use crate::rules::{RULES, Rule};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("failed to parse {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("unknown rule selector `{0}` (expected a code like UW101, a prefix like UW1, or ALL)")]
    UnknownSelector(String),
    #[error("invalid severity `{value}` for {code} (expected `error` or `warning`)")]
    Severity { code: String, value: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Default names that count as an idempotency key in local activity arguments.
pub const DEFAULT_IDEMPOTENCY_KEYS: &[&str] =
    &["idempotency_key", "idempotency_token", "request_id", "dedup_key", "deduplication_id"];

/// Effective configuration for one run.
#[derive(Debug, Clone)]
pub struct Config {
    enabled: HashMap<&'static str, Severity>,
    /// Extra fully qualified callables treated as non-deterministic (UW101), e.g. `mylib.clock.now`.
    pub extra_nondeterministic: Vec<String>,
    /// Identifier fragments that count as an idempotency key (UW302).
    pub idempotency_key_names: Vec<String>,
    /// UW401 fires when a definition has more positional parameters than this.
    pub max_positional_params: usize,
    /// UW702 fires when a Worker registers more workflows than this.
    pub max_workflows_per_worker: usize,
    /// UW702 fires when a Worker registers more activities than this.
    pub max_activities_per_worker: usize,
    /// UW601 fires for `range(N)` loops without awaits when N reaches this.
    pub heavy_loop_iterations: i64,
}

impl Default for Config {
    fn default() -> Self {
        let enabled = RULES
            .iter()
            .filter(|rule| rule.enabled_by_default)
            .map(|rule| (rule.code, rule.default_severity))
            .collect();
        Config {
            enabled,
            extra_nondeterministic: Vec::new(),
            idempotency_key_names: DEFAULT_IDEMPOTENCY_KEYS.iter().map(|s| s.to_string()).collect(),
            max_positional_params: 2,
            max_workflows_per_worker: 4,
            max_activities_per_worker: 20,
            heavy_loop_iterations: 10_000,
        }
    }
}

/// The raw `[tool.uhrwerk.lint]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    pub select: Option<Vec<String>>,
    #[serde(default)]
    pub extend_select: Vec<String>,
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub severity: HashMap<String, String>,
    #[serde(default)]
    pub extra_nondeterministic: Vec<String>,
    pub idempotency_key_names: Option<Vec<String>>,
    pub max_positional_params: Option<usize>,
    pub max_workflows_per_worker: Option<usize>,
    pub max_activities_per_worker: Option<usize>,
    pub heavy_loop_iterations: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct PyProject {
    tool: Option<Tool>,
}

#[derive(Debug, Default, Deserialize)]
struct Tool {
    uhrwerk: Option<Uhrwerk>,
}

#[derive(Debug, Default, Deserialize)]
struct Uhrwerk {
    lint: Option<FileConfig>,
}

fn matching_rules(selector: &str) -> Result<Vec<&'static Rule>> {
    let selector = selector.trim();
    if selector.eq_ignore_ascii_case("ALL") {
        return Ok(RULES.iter().collect());
    }
    let upper = selector.to_ascii_uppercase();
    let found: Vec<_> = RULES.iter().filter(|rule| rule.code.starts_with(&upper) || rule.name == selector).collect();
    if found.is_empty() || upper.len() < 2 {
        return Err(Error::UnknownSelector(selector.to_string()));
    }
    Ok(found)
}

impl Config {
    /// Whether the rule is on, and with which severity.
    pub fn severity_of(&self, code: &str) -> Option<Severity> {
        self.enabled.get(code).copied()
    }

    /// Replaces the enabled set with exactly the selected rules.
    pub fn select(&mut self, selectors: &[String]) -> Result<()> {
        let mut enabled = HashMap::new();
        for selector in selectors {
            for rule in matching_rules(selector)? {
                let severity = self.enabled.get(rule.code).copied().unwrap_or(rule.default_severity);
                enabled.insert(rule.code, severity);
            }
        }
        // Syntax errors and unreadable files are always reported: otherwise a file silently goes unchecked.
        for code in ["UW000", "UW002"] {
            if let Some(rule) = crate::rules::by_code(code) {
                enabled.entry(rule.code).or_insert(rule.default_severity);
            }
        }
        self.enabled = enabled;
        Ok(())
    }

    /// Adds rules to the enabled set.
    pub fn extend_select(&mut self, selectors: &[String]) -> Result<()> {
        for selector in selectors {
            for rule in matching_rules(selector)? {
                self.enabled.entry(rule.code).or_insert(rule.default_severity);
            }
        }
        Ok(())
    }

    /// Removes rules from the enabled set.
    pub fn ignore(&mut self, selectors: &[String]) -> Result<()> {
        for selector in selectors {
            for rule in matching_rules(selector)? {
                self.enabled.remove(rule.code);
            }
        }
        Ok(())
    }

    /// Overrides the severity of already-selected rules.
    pub fn set_severity(&mut self, selector: &str, value: &str) -> Result<()> {
        let severity = Severity::parse(value)
            .ok_or_else(|| Error::Severity { code: selector.to_string(), value: value.to_string() })?;
        for rule in matching_rules(selector)? {
            if let Some(slot) = self.enabled.get_mut(rule.code) {
                *slot = severity;
            }
        }
        Ok(())
    }

    /// Applies a parsed `[tool.uhrwerk.lint]` table on top of the defaults.
    pub fn apply(&mut self, file: &FileConfig) -> Result<()> {
        if let Some(select) = &file.select {
            self.select(select)?;
        }
        self.extend_select(&file.extend_select)?;
        self.ignore(&file.ignore)?;
        let mut severities: Vec<_> = file.severity.iter().collect();
        severities.sort();
        for (code, value) in severities {
            self.set_severity(code, value)?;
        }
        self.extra_nondeterministic.extend(file.extra_nondeterministic.iter().cloned());
        if let Some(names) = &file.idempotency_key_names {
            self.idempotency_key_names = names.clone();
        }
        if let Some(value) = file.max_positional_params {
            self.max_positional_params = value;
        }
        if let Some(value) = file.max_workflows_per_worker {
            self.max_workflows_per_worker = value;
        }
        if let Some(value) = file.max_activities_per_worker {
            self.max_activities_per_worker = value;
        }
        if let Some(value) = file.heavy_loop_iterations {
            self.heavy_loop_iterations = value;
        }
        Ok(())
    }

    /// Parses `pyproject.toml` text; `Ok(None)` when it has no `[tool.uhrwerk.lint]` table.
    pub fn parse_pyproject(text: &str, path: &Path) -> Result<Option<FileConfig>> {
        let project: PyProject =
            toml::from_str(text).map_err(|source| Error::Parse { path: path.to_path_buf(), source })?;
        Ok(project.tool.and_then(|tool| tool.uhrwerk).and_then(|uhrwerk| uhrwerk.lint))
    }

    /// Loads the defaults plus the table in `path` (a `pyproject.toml`).
    pub fn from_pyproject(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let mut config = Config::default();
        if let Some(file) = Config::parse_pyproject(&text, path)? {
            config.apply(&file)?;
        }
        Ok(config)
    }
}

/// Finds the nearest `pyproject.toml` with a `[tool.uhrwerk.lint]` table, starting at `start` and walking up.
pub fn discover(start: &Path) -> Result<Option<PathBuf>> {
    let absolute = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    let mut dir = if absolute.is_dir() { Some(absolute.as_path()) } else { absolute.parent() };
    while let Some(current) = dir {
        let candidate = current.join("pyproject.toml");
        if candidate.is_file() {
            let text = std::fs::read_to_string(&candidate)
                .map_err(|source| Error::Read { path: candidate.clone(), source })?;
            if Config::parse_pyproject(&text, &candidate)?.is_some() {
                return Ok(Some(candidate));
            }
        }
        dir = current.parent();
    }
    Ok(None)
}
