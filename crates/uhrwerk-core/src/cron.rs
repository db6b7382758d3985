//! Cron schedules of workflows (`cron_schedule`): standard five-field expressions and the
//! `@hourly`-style descriptors, plus `@every <duration>`, evaluated in UTC as Temporal does.

use chrono::{DateTime, Utc};

use crate::time::Millis;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid CronSchedule: {0}")]
pub struct InvalidCron(pub String);

/// Parses a Go duration such as `2s`, `1m30s` or `1h`.
fn go_duration_ms(text: &str) -> Option<Millis> {
    let mut total: f64 = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    (total >= 1.0).then_some(total as Millis)
}

/// Checks a schedule without evaluating it.
pub fn validate(schedule: &str) -> Result<(), InvalidCron> {
    next_after(schedule, 0).map(|_| ())
}

/// The first time after `now_ms` that `schedule` names.
pub fn next_after(schedule: &str, now_ms: Millis) -> Result<Millis, InvalidCron> {
    let schedule = schedule.trim();
    if let Some(every) = schedule.strip_prefix("@every ") {
        let delay = go_duration_ms(every).ok_or_else(|| InvalidCron(schedule.to_string()))?;
        // As robfig/cron: from the start of the current second.
        return Ok(now_ms - now_ms.rem_euclid(1000) + delay);
    }
    let cron: croner::Cron = schedule.parse().map_err(|e| InvalidCron(format!("{schedule}: {e}")))?;
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms).ok_or_else(|| InvalidCron(schedule.to_string()))?;
    let next = cron.find_next_occurrence(&now, false).map_err(|e| InvalidCron(format!("{schedule}: {e}")))?;
    Ok(next.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_and_standard_expressions() {
        assert_eq!(next_after("@every 2s", 10_500), Ok(12_000));
        assert_eq!(next_after("@every 1m30s", 0), Ok(90_000));
        // 2026-01-01T00:00:30Z: the next full minute.
        let t = 1_767_225_630_000;
        assert_eq!(next_after("* * * * *", t), Ok(1_767_225_660_000));
        assert_eq!(next_after("@hourly", t), Ok(1_767_229_200_000));
        assert!(validate("not a cron").is_err());
        assert!(validate("@every nonsense").is_err());
    }
}
