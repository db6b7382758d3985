//! Server configuration, including Temporal-style dynamic config (`KEY=JSON` pairs).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use uhrwerk_core::config::Limits;

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum Persistence {
    /// A SQLite file; every acknowledged change is fsynced.
    Sqlite(PathBuf),
    /// A throwaway database, deleted at exit.
    Ephemeral,
    /// A PostgreSQL database; every acknowledged change is committed synchronously.
    Postgres(Box<uhrwerk_postgres::PostgresOptions>),
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
    /// Where `/metrics` is served; None turns the endpoint off.
    pub metrics_listen: Option<SocketAddr>,
    /// When the metrics address is taken: true logs a warning and runs without the endpoint
    /// (the default port), false fails the start (a port the user asked for).
    pub metrics_best_effort: bool,
    /// Where Temporal's HTTP API is served; None turns it off.
    pub http_listen: Option<SocketAddr>,
    /// Where the web UI is served; None turns it off.
    pub ui_listen: Option<SocketAddr>,
    /// A YAML file of hashed API keys and certificate subjects with Temporal permissions:
    /// authorization on; None: no API keys.
    pub api_keys: Option<std::path::PathBuf>,
    /// JWT authentication against a JWKS: authorization on; None: no JWTs.
    pub jwt: Option<crate::auth::JwtConfig>,
    /// TLS on the gRPC frontend and the HTTP endpoints (and mTLS with a client CA); None:
    /// plaintext.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Take part in a cluster of nodes on the same PostgreSQL database; None: a single server.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Serve Temporal's TestService and run workflow time on this clock (`uhrwerk-test-server`);
    /// None: the wall clock, no TestService.
    pub time_skipping: Option<crate::time_skipping::SkippingClock>,
}

/// One value of a key in a dynamic-config file.
#[derive(serde::Deserialize)]
struct FileValue {
    value: serde_json::Value,
    #[serde(default)]
    constraints: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("failed to read the dynamic config file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("dynamic config value {0:?} must look like KEY=JSON")]
    Malformed(String),
    #[error("dynamic config value for {key} is not valid JSON: {detail}")]
    BadJson { key: String, detail: String },
    #[error("dynamic config value for {key} must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("{0}")]
    Invalid(String),
}

/// Parsed `--dynamic-config-value` settings, keyed by Temporal's names.
#[derive(Clone, Debug, Default)]
pub struct DynamicConfig {
    values: BTreeMap<String, serde_json::Value>,
}

/// Switches and durations Uhrwerk honours besides the limits (Temporal's names and defaults).
const ENABLE_EAGER_WORKFLOW_START: &str = "system.enableEagerWorkflowStart";
const ENABLE_ACTIVITY_EAGER_EXECUTION: &str = "system.enableActivityEagerExecution";
const WORKFLOW_TASK_RETRY_MAX_INTERVAL: &str = "history.workflowTaskRetryMaxInterval";
const CACHE_MAX_SIZE: &str = "history.cacheMaxSize";
const OTHER_KEYS: &[&str] =
    &[ENABLE_EAGER_WORKFLOW_START, ENABLE_ACTIVITY_EAGER_EXECUTION, WORKFLOW_TASK_RETRY_MAX_INTERVAL, CACHE_MAX_SIZE];
/// Keys that scripts and the SDKs' test environments pass to `temporal server start-dev` (the
/// Python SDK's `start_local` always sends the first three) for features that are always on in
/// Uhrwerk, or for tuning it has no use for: accepted without the unknown-key warning.
const BUILT_IN_KEYS: &[&str] = &[
    "frontend.enableServerVersionCheck",
    "frontend.enableUpdateWorkflowExecution",
    "frontend.enableUpdateWorkflowExecutionAsyncAccepted",
    "frontend.enableExecuteMultiOperation",
    "frontend.persistenceMaxQPS",
    "history.persistenceMaxQPS",
    "system.forceSearchAttributesCacheRefreshOnRead",
    "system.forceNexusEndpointRefreshOnRead",
];
/// Runs kept in memory unless `history.cacheMaxSize` says otherwise. Temporal's default is 512
/// per shard of its many; Uhrwerk has one. A cached run costs about 4 KiB, one read back from
/// the store a few tens of microseconds, and runs in flight stay cached: 1,000 covers far more
/// concurrent transitions than a node serves at once while keeping the cache under 5 MiB.
pub const DEFAULT_RUN_CACHE_SIZE: usize = 1_000;

/// A limit setting: its Temporal key, how to read it from and write it into `Limits`.
pub struct LimitKey {
    pub key: &'static str,
    pub get: fn(&Limits) -> i64,
    set: fn(&mut Limits, i64),
}

macro_rules! limit_keys {
    ($($key:literal => $field:ident),* $(,)?) => {
        /// Every limit Uhrwerk enforces, under Temporal's dynamic-config names.
        pub const LIMIT_KEYS: &[LimitKey] = &[
            $(LimitKey { key: $key, get: |l| l.$field as i64, set: |l, v| l.$field = v as _ },)*
        ];
    };
}

limit_keys! {
    "limit.historyCount.error" => history_count_error,
    "limit.historyCount.warn" => history_count_warn,
    "limit.historyCount.suggestContinueAsNew" => history_count_suggest_continue_as_new,
    "limit.historySize.error" => history_size_error,
    "limit.historySize.warn" => history_size_warn,
    "limit.historySize.suggestContinueAsNew" => history_size_suggest_continue_as_new,
    "limit.blobSize.error" => blob_size_error,
    "limit.blobSize.warn" => blob_size_warn,
    "limit.memoSize.error" => memo_size_error,
    "limit.memoSize.warn" => memo_size_warn,
    "limit.numPendingActivities.error" => num_pending_activities_error,
    "limit.numPendingChildExecutions.error" => num_pending_child_executions_error,
    "limit.numPendingSignals.error" => num_pending_signals_error,
    "limit.numPendingCancelRequests.error" => num_pending_cancel_requests_error,
    "history.maximumSignalsPerExecution" => maximum_signals_per_execution,
    "limit.maxIDLength" => max_id_length,
}

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

    /// Keys Uhrwerk neither reads nor knows (worth a warning: perhaps a typo).
    pub fn unknown_keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str).filter(|k| {
            !LIMIT_KEYS.iter().any(|l| l.key == *k) && !OTHER_KEYS.contains(k) && !BUILT_IN_KEYS.contains(k)
        })
    }

    /// Keys given for features that are always on in Uhrwerk, or for tuning it has no use for.
    pub fn built_in_keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str).filter(|k| BUILT_IN_KEYS.contains(k))
    }

    /// Reads a Temporal dynamic-config YAML file (`key: [{value: V, constraints: {}}]`); only
    /// values without constraints apply. Values given on the command line win over the file.
    pub fn merge_file(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.display().to_string(), detail: e.to_string() })?;
        let parsed: BTreeMap<String, Vec<FileValue>> = serde_yaml_ng::from_str(&text)
            .map_err(|e| ConfigError::File { path: path.display().to_string(), detail: e.to_string() })?;
        for (key, entries) in parsed {
            let unconstrained = entries.into_iter().find(|e| e.constraints.as_ref().is_none_or(|c| c.is_empty()));
            if let Some(entry) = unconstrained {
                self.values.entry(key).or_insert(entry.value);
            }
        }
        Ok(())
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

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(v) => {
                v.as_bool().map(Some).ok_or(ConfigError::WrongType { key: key.to_string(), expected: "true or false" })
            }
        }
    }

    /// A duration as Temporal's dynamic config takes it: a Go duration string ("10m", "1h30m")
    /// or a number of seconds. In milliseconds.
    fn duration_ms(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        let wrong =
            || ConfigError::WrongType { key: key.to_string(), expected: "a duration such as \"10m\" or seconds" };
        match self.values.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(text)) => {
                let nanos = uhrwerk_schedule::duration::parse_go_duration(text).map_err(|_| wrong())?;
                if nanos < 0 {
                    return Err(wrong());
                }
                Ok(Some(nanos / 1_000_000))
            }
            Some(v) => v.as_f64().filter(|s| *s >= 0.0).map(|s| Some((s * 1000.0) as i64)).ok_or_else(wrong),
        }
    }

    /// How many runs the engine keeps in memory (`history.cacheMaxSize`).
    pub fn run_cache_size(&self) -> Result<usize, ConfigError> {
        Ok(self.int(CACHE_MAX_SIZE)?.map_or(DEFAULT_RUN_CACHE_SIZE, |n| n.max(1) as usize))
    }

    /// The kernel limits with these overrides applied.
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let mut limits = Limits::default();
        for limit in LIMIT_KEYS {
            if let Some(v) = self.int(limit.key)? {
                (limit.set)(&mut limits, v);
            }
        }
        if let Some(on) = self.bool(ENABLE_EAGER_WORKFLOW_START)? {
            limits.enable_eager_workflow_start = on;
        }
        if let Some(on) = self.bool(ENABLE_ACTIVITY_EAGER_EXECUTION)? {
            limits.enable_activity_eager_execution = on;
        }
        if let Some(ms) = self.duration_ms(WORKFLOW_TASK_RETRY_MAX_INTERVAL)? {
            limits.workflow_task_retry_max_interval_ms = ms;
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_temporal_style_values() {
        let dc = DynamicConfig::parse([
            "limit.historyCount.suggestContinueAsNew=10",
            "frontend.enableUpdateWorkflowExecution=true",
            "frontend.enableFrobnication=true",
            "limit.historyCount.error=100",
            "history.maximumSignalsPerExecution=5",
        ])
        .expect("valid");
        let limits = dc.limits().expect("valid");
        assert_eq!(limits.history_count_suggest_continue_as_new, 10);
        assert_eq!(limits.history_count_error, 100);
        assert_eq!(limits.maximum_signals_per_execution, 5);
        assert_eq!(limits.history_size_warn, 10 * 1024 * 1024, "untouched limits keep Temporal's defaults");
        assert_eq!(dc.unknown_keys().collect::<Vec<_>>(), vec!["frontend.enableFrobnication"]);
        assert_eq!(
            dc.built_in_keys().collect::<Vec<_>>(),
            vec!["frontend.enableUpdateWorkflowExecution"],
            "keys for features always on in Uhrwerk are not unknown"
        );
    }

    #[test]
    fn reads_temporal_dynamic_config_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dynamic.yaml");
        std::fs::write(
            &path,
            "limit.historyCount.warn:\n  - value: 50\n    constraints: {}\nlimit.blobSize.warn:\n  - value: 1\n    constraints:\n      namespace: other\n  - value: 2000\n",
        )
        .expect("write");
        let mut dc = DynamicConfig::parse(["limit.blobSize.warn=3000"]).expect("valid");
        dc.merge_file(&path).expect("valid file");
        let limits = dc.limits().expect("valid");
        assert_eq!(limits.history_count_warn, 50);
        assert_eq!(limits.blob_size_warn, 3000, "the command line wins over the file");
        assert!(matches!(dc.merge_file(&dir.path().join("missing.yaml")), Err(ConfigError::File { .. })));
    }

    #[test]
    fn rejects_malformed_values() {
        assert!(matches!(DynamicConfig::parse(["novalue"]), Err(ConfigError::Malformed(_))));
        assert!(matches!(DynamicConfig::parse(["k={"]), Err(ConfigError::BadJson { .. })));
        let dc = DynamicConfig::parse(["limit.blobSize.error=\"big\""]).expect("valid json");
        assert!(matches!(dc.limits(), Err(ConfigError::WrongType { .. })));
        let dc = DynamicConfig::parse(["system.enableEagerWorkflowStart=1"]).expect("valid json");
        assert!(matches!(dc.limits(), Err(ConfigError::WrongType { .. })));
    }

    #[test]
    fn reads_switches_and_durations() {
        let dc = DynamicConfig::parse([
            "system.enableEagerWorkflowStart=false",
            "system.enableActivityEagerExecution=false",
            "history.workflowTaskRetryMaxInterval=\"1m30s\"",
        ])
        .expect("valid");
        let limits = dc.limits().expect("valid");
        assert!(!limits.enable_eager_workflow_start && !limits.enable_activity_eager_execution);
        assert_eq!(limits.workflow_task_retry_max_interval_ms, 90_000);
        assert_eq!(dc.unknown_keys().count(), 0);
        let seconds = DynamicConfig::parse(["history.workflowTaskRetryMaxInterval=30"]).expect("valid");
        assert_eq!(seconds.limits().expect("valid").workflow_task_retry_max_interval_ms, 30_000);
        let defaults = DynamicConfig::parse([]).expect("valid").limits().expect("valid");
        assert!(defaults.enable_eager_workflow_start && defaults.enable_activity_eager_execution);
    }
}
