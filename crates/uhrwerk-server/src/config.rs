//! Server configuration, including Temporal-style dynamic config (`KEY=JSON` pairs).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use uhrwerk_core::config::Limits;

/// Where the data lives.
#[derive(Clone, Debug, PartialEq)]
pub enum Persistence {
    /// A SQLite file; every acknowledged change is fsynced.
    Sqlite(PathBuf),
    /// A throwaway database, deleted at exit.
    Ephemeral,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub persistence: Persistence,
    /// Namespaces that must exist (besides `default`).
    pub namespaces: Vec<String>,
    pub dynamic_config: DynamicConfig,
    /// Custom search attributes registered in every namespace above at start-up.
    pub search_attributes: Vec<(String, uhrwerk_visibility::ValueType)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("dynamic config value {0:?} must look like KEY=JSON")]
    Malformed(String),
    #[error("dynamic config value for {key} is not valid JSON: {detail}")]
    BadJson { key: String, detail: String },
    #[error("dynamic config value for {key} must be {expected}")]
    WrongType { key: String, expected: &'static str },
}

/// Parsed `--dynamic-config-value` settings, keyed by Temporal's names.
#[derive(Clone, Debug, Default)]
pub struct DynamicConfig {
    values: BTreeMap<String, serde_json::Value>,
}

/// Keys that Uhrwerk reads; others are accepted (so existing dev-server command lines work) and logged.
pub const KNOWN_KEYS: &[&str] = &[
    "limit.historyCount.suggestContinueAsNew",
    "limit.historySize.suggestContinueAsNew",
    "limit.blobSize.error",
    "limit.blobSize.warn",
    "limit.maxIDLength",
];

impl DynamicConfig {
    pub fn parse<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        for pair in pairs {
            let (key, json) = pair.split_once('=').ok_or_else(|| ConfigError::Malformed(pair.to_string()))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::Malformed(pair.to_string()));
            }
            let value: serde_json::Value = serde_json::from_str(json)
                .map_err(|e| ConfigError::BadJson { key: key.to_string(), detail: e.to_string() })?;
            values.insert(key.to_string(), value);
        }
        Ok(Self { values })
    }

    pub fn unknown_keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str).filter(|k| !KNOWN_KEYS.contains(k))
    }

    fn int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or(ConfigError::WrongType { key: key.to_string(), expected: "a non-negative integer" }),
        }
    }

    /// The kernel limits with these overrides applied.
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let mut limits = Limits::default();
        if let Some(v) = self.int("limit.historyCount.suggestContinueAsNew")? {
            limits.history_count_suggest_continue_as_new = v;
        }
        if let Some(v) = self.int("limit.historySize.suggestContinueAsNew")? {
            limits.history_size_suggest_continue_as_new = v;
        }
        if let Some(v) = self.int("limit.blobSize.error")? {
            limits.blob_size_error = v as usize;
        }
        if let Some(v) = self.int("limit.blobSize.warn")? {
            limits.blob_size_warn = v as usize;
        }
        if let Some(v) = self.int("limit.maxIDLength")? {
            limits.max_id_length = v as usize;
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_temporal_style_values() {
        let dc = DynamicConfig::parse(["limit.historyCount.suggestContinueAsNew=10", "frontend.enableUpdateWorkflowExecution=true"])
            .expect("valid");
        assert_eq!(dc.limits().expect("valid").history_count_suggest_continue_as_new, 10);
        assert_eq!(dc.unknown_keys().collect::<Vec<_>>(), vec!["frontend.enableUpdateWorkflowExecution"]);
    }

    #[test]
    fn rejects_malformed_values() {
        assert!(matches!(DynamicConfig::parse(["novalue"]), Err(ConfigError::Malformed(_))));
        assert!(matches!(DynamicConfig::parse(["k={"]), Err(ConfigError::BadJson { .. })));
        let dc = DynamicConfig::parse(["limit.blobSize.error=\"big\""]).expect("valid json");
        assert!(matches!(dc.limits(), Err(ConfigError::WrongType { .. })));
    }
}
