//! The server limits the doctor compares against: Temporal's defaults, the server's values read
//! from its Prometheus endpoint (`uhrwerk_limit{name="..."}` gauges) and `--dynamic-config-value`
//! overrides, in that order of precedence (last wins).

use std::collections::BTreeMap;

use crate::error::DoctorError;

/// Temporal's dynamic-config keys the doctor reads, with Temporal's defaults.
pub const DEFAULTS: &[(&str, i64)] = &[
    ("limit.historyCount.error", 51_200),
    ("limit.historyCount.warn", 10_240),
    ("limit.historyCount.suggestContinueAsNew", 4_096),
    ("limit.historySize.error", 50 * 1024 * 1024),
    ("limit.historySize.warn", 10 * 1024 * 1024),
    ("limit.historySize.suggestContinueAsNew", 4 * 1024 * 1024),
    ("limit.blobSize.error", 2 * 1024 * 1024),
    ("limit.blobSize.warn", 512 * 1024),
];

/// Where a limit's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    Metrics,
    Override,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "Temporal default",
            Source::Metrics => "server metrics",
            Source::Override => "--dynamic-config-value",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Limits {
    values: BTreeMap<&'static str, (i64, Source)>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { values: DEFAULTS.iter().map(|(k, v)| (*k, (*v, Source::Default))).collect() }
    }
}

impl Limits {
    /// The value of a known key; unknown keys read as 0 (callers only pass keys from [`DEFAULTS`]).
    pub fn get(&self, key: &str) -> i64 {
        self.values.get(key).map_or(0, |(v, _)| *v)
    }

    pub fn source(&self, key: &str) -> Option<Source> {
        self.values.get(key).map(|(_, s)| *s)
    }

    pub fn history_count_error(&self) -> i64 {
        self.get("limit.historyCount.error")
    }
    pub fn history_count_warn(&self) -> i64 {
        self.get("limit.historyCount.warn")
    }
    pub fn history_count_suggest(&self) -> i64 {
        self.get("limit.historyCount.suggestContinueAsNew")
    }
    pub fn history_size_error(&self) -> i64 {
        self.get("limit.historySize.error")
    }
    pub fn history_size_warn(&self) -> i64 {
        self.get("limit.historySize.warn")
    }
    pub fn history_size_suggest(&self) -> i64 {
        self.get("limit.historySize.suggestContinueAsNew")
    }
    pub fn blob_size_warn(&self) -> i64 {
        self.get("limit.blobSize.warn")
    }

    /// Sets a known key; unknown keys are ignored (returns false).
    pub fn set(&mut self, key: &str, value: i64, source: Source) -> bool {
        match self.values.get_mut(key) {
            Some(slot) => {
                *slot = (value, source);
                true
            }
            None => false,
        }
    }

    /// Applies the limits a Prometheus text exposition publishes; returns how many were applied.
    pub fn apply_metrics(&mut self, text: &str) -> usize {
        parse_limit_gauges(text).into_iter().filter(|(k, v)| self.set(k, *v, Source::Metrics)).count()
    }

    /// Applies `KEY=JSON` overrides (Temporal's `--dynamic-config-value` syntax). Keys the doctor
    /// does not read are accepted and returned, so a server's command line can be reused.
    pub fn apply_overrides<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>, DoctorError> {
        let mut unused = Vec::new();
        for pair in pairs {
            let (key, json) = pair
                .split_once('=')
                .ok_or_else(|| DoctorError::Usage(format!("dynamic config value {pair:?} must look like KEY=JSON")))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(DoctorError::Usage(format!("dynamic config value {pair:?} must look like KEY=JSON")));
            }
            let value: serde_json::Value = serde_json::from_str(json)
                .map_err(|e| DoctorError::Usage(format!("dynamic config value for {key} is not valid JSON: {e}")))?;
            if self.source(key).is_none() {
                unused.push(key.to_string());
                continue;
            }
            let n = value.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                DoctorError::Usage(format!("dynamic config value for {key} must be a non-negative integer"))
            })?;
            self.set(key, n, Source::Override);
        }
        Ok(unused)
    }

    /// `key=value (source)` for every limit, for the report's header.
    pub fn describe(&self) -> Vec<String> {
        self.values.iter().map(|(k, (v, s))| format!("{k}={v} ({})", s.as_str())).collect()
    }
}

/// `uhrwerk_limit{name="limit.historyCount.warn"} 10240` lines of a Prometheus text exposition.
pub fn parse_limit_gauges(text: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("uhrwerk_limit{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        let Some(name) = label_value(labels, "name") else {
            continue;
        };
        // The value may be followed by a timestamp.
        let Some(value) = value.split_whitespace().next() else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if value.is_finite() && value >= 0.0 {
            out.push((name, value as i64));
        }
    }
    out
}

/// The value of label `key` in `a="x",b="y"` (with `\"` and `\\` escapes).
fn label_value(labels: &str, key: &str) -> Option<String> {
    let mut rest = labels;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.is_empty() {
            return None;
        }
        let (k, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        if k.trim() == key {
            return Some(value);
        }
        rest = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_temporals() {
        let l = Limits::default();
        assert_eq!(l.history_count_error(), 51_200);
        assert_eq!(l.history_count_warn(), 10_240);
        assert_eq!(l.history_size_error(), 52_428_800);
        assert_eq!(l.history_size_suggest(), 4_194_304);
        assert_eq!(l.source("limit.historyCount.warn"), Some(Source::Default));
    }

    #[test]
    fn reads_gauges_from_metrics() {
        let text = "# HELP uhrwerk_limit A limit\n# TYPE uhrwerk_limit gauge\n\
                    uhrwerk_limit{name=\"limit.historyCount.warn\"} 50\n\
                    uhrwerk_limit{kind=\"x\",name=\"limit.historySize.error\"} 1e6 1700000000\n\
                    uhrwerk_limit{name=\"limit.unknown\"} 3\n\
                    uhrwerk_other{name=\"limit.historyCount.error\"} 1\n\
                    uhrwerk_limit{name=\"limit.historyCount.error\"} NaN\n";
        let mut l = Limits::default();
        assert_eq!(l.apply_metrics(text), 2);
        assert_eq!(l.history_count_warn(), 50);
        assert_eq!(l.history_size_error(), 1_000_000);
        assert_eq!(l.history_count_error(), 51_200);
        assert_eq!(l.source("limit.historyCount.warn"), Some(Source::Metrics));
    }

    #[test]
    fn overrides_win_and_unknown_keys_are_returned() {
        let mut l = Limits::default();
        l.apply_metrics("uhrwerk_limit{name=\"limit.historyCount.warn\"} 50\n");
        let unused = l
            .apply_overrides(["limit.historyCount.warn=70", "frontend.enableUpdateWorkflowExecution=true"])
            .expect("valid");
        assert_eq!(l.history_count_warn(), 70);
        assert_eq!(l.source("limit.historyCount.warn"), Some(Source::Override));
        assert_eq!(unused, ["frontend.enableUpdateWorkflowExecution"]);
        assert!(l.apply_overrides(["novalue"]).is_err());
        assert!(l.apply_overrides(["limit.historyCount.warn={"]).is_err());
        assert!(l.apply_overrides(["limit.historyCount.warn=\"x\""]).is_err());
        assert!(l.apply_overrides(["limit.historyCount.warn=-1"]).is_err());
    }

    #[test]
    fn label_values_with_escapes() {
        assert_eq!(label_value(r#"a="x\"y",name="n""#, "name").as_deref(), Some("n"));
        assert_eq!(label_value(r#"a="x\"y",name="n""#, "a").as_deref(), Some("x\"y"));
        assert_eq!(label_value(r#"a="x"#, "a"), None);
    }
}
