//! `CronSchedule`: a workflow's `cron_schedule` read as Temporal's server reads it and evaluated with
//! the schedule specs' calendars.
//!
//! Temporal parses a workflow's `cron_schedule` with robfig/cron v3's `ParseStandard`
//! (`common/backoff/cron.go`), a narrower grammar than schedule specs' cron strings (`parse.rs`):
//! - exactly five fields `minute hour day-of-month month day-of-week`, or a descriptor (`@yearly`,
//!   `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`), optionally after a
//!   `CRON_TZ=<zone> `/`TZ=<zone> ` prefix; no seconds or years, no `#` comments;
//! - `?` means `*`; month and weekday names are the exact three-letter ones; weekdays are 0–6;
//! - when day-of-month and day-of-week are both restricted (neither starts with `*` or `?` without
//!   a step above 1) a day matching *either* fires (vixie cron); otherwise both must match;
//! - `@every <d>` takes Go's duration syntax (no `d` unit, no phase), truncated to whole seconds
//!   and at least one second, and fires `d` after the start of the current second (robfig's
//!   `ConstantDelaySchedule`), not on an epoch grid like a schedule's interval;
//! - times are UTC unless the prefix names a zone.
//!
//! Fields are parsed by the schedule specs' parser and calendars evaluated by [`CompiledSpec`], so
//! the field syntax, DST handling and bounds are those of schedules. What the two grammars would
//! accept differently (robfig also takes `*-5` and empty list items; schedules also take longer
//! names and 7 for Sunday) is narrowed to robfig's where cheap: names and weekday 7 are refused.

use crate::duration::parse_go_duration;
use crate::parse::{calendar_to_structured, predefined};
use crate::pb::{CalendarSpec, ScheduleSpec};
use crate::spec::CompiledSpec;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Robfig's month and weekday names (matched case-insensitively, in full).
const MONTH_NAMES: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A `cron_schedule` that Temporal rejects. The message is the full text of Temporal's
/// `INVALID_ARGUMENT`; [`CronError::detail`] says what is wrong.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CronError {
    #[error("invalid CronSchedule.")]
    Invalid(String),
    #[error("invalid CronSchedule, no time can be found to satisfy the schedule")]
    Unsatisfiable,
}

impl CronError {
    /// What is wrong with the schedule, for logs.
    pub fn detail(&self) -> &str {
        match self {
            CronError::Invalid(detail) => detail,
            CronError::Unsatisfiable => "no time can be found to satisfy the schedule",
        }
    }
}

/// A parsed workflow cron schedule.
#[derive(Clone, Debug)]
pub struct CronSchedule(Kind);

#[derive(Clone, Debug)]
enum Kind {
    /// `@every`: whole seconds, at least one.
    Every {
        delay_ms: i64,
    },
    Calendar(Box<CompiledSpec>),
}

impl CronSchedule {
    /// Parses a schedule as Temporal's `ParseStandard` does (surrounding whitespace is ignored).
    pub fn parse(schedule: &str) -> Result<Self, CronError> {
        let invalid = |detail: String| CronError::Invalid(format!("{schedule:?}: {detail}"));
        let mut body = schedule.trim();
        let mut timezone = "";
        if body.starts_with("TZ=") || body.starts_with("CRON_TZ=") {
            let Some((tz, rest)) = body.split_once(' ') else {
                return Err(invalid("time zone but no fields".into()));
            };
            timezone = tz.split_once('=').map_or("", |(_, zone)| zone);
            body = rest.trim();
        }
        if let Some(every) = body.strip_prefix("@every ") {
            // The zone does not matter, but it must exist.
            let zone_only = ScheduleSpec { timezone_name: timezone.to_string(), ..Default::default() };
            CompiledSpec::compile(&zone_only).map_err(|e| invalid(e.to_string()))?;
            let nanos = parse_go_duration(every).map_err(invalid)?;
            let seconds = (nanos / NANOS_PER_SEC).max(1);
            return Ok(CronSchedule(Kind::Every { delay_ms: seconds * 1000 }));
        }
        let expanded = predefined(body);
        if expanded.starts_with('@') {
            return Err(invalid(format!("unrecognized descriptor {body}")));
        }
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(invalid(format!("expected exactly 5 fields, found {}", fields.len())));
        };
        check_names(month, "Month", &MONTH_NAMES, 12).map_err(invalid)?;
        check_names(day_of_week, "DayOfWeek", &WEEKDAY_NAMES, 6).map_err(invalid)?;
        let day_of_month = unquestion(day_of_month);
        let day_of_week = weekdays_to_saturday(&unquestion(day_of_week));
        let calendar = |day_of_month: &str, day_of_week: &str| {
            calendar_to_structured(&CalendarSpec {
                second: "0".into(),
                minute: unquestion(minute),
                hour: unquestion(hour),
                day_of_month: day_of_month.into(),
                month: unquestion(month),
                day_of_week: day_of_week.into(),
                year: "*".into(),
                comment: String::new(),
            })
            .map_err(invalid)
        };
        let structured_calendar = if has_star(&day_of_month) || has_star(&day_of_week) {
            vec![calendar(&day_of_month, &day_of_week)?]
        } else {
            // Both days restricted: a day that matches either.
            vec![calendar(&day_of_month, "*")?, calendar("*", &day_of_week)?]
        };
        let spec = ScheduleSpec { structured_calendar, timezone_name: timezone.to_string(), ..Default::default() };
        let compiled = CompiledSpec::compile(&spec).map_err(|e| invalid(e.to_string()))?;
        Ok(CronSchedule(Kind::Calendar(Box::new(compiled))))
    }

    /// Parses `schedule` and checks that it names some time, as Temporal's `ValidateSchedule`.
    pub fn validate(schedule: &str) -> Result<Self, CronError> {
        let cron = Self::parse(schedule)?;
        cron.next(0).ok_or(CronError::Unsatisfiable)?;
        Ok(cron)
    }

    /// The first time the schedule names strictly after `after_ms` (unix ms; always a whole
    /// second), or `None` when there is none (before 2101).
    pub fn next(&self, after_ms: i64) -> Option<i64> {
        match &self.0 {
            Kind::Every { delay_ms } => after_ms.checked_sub(after_ms.rem_euclid(1000))?.checked_add(*delay_ms),
            Kind::Calendar(spec) => spec.next(after_ms).map(|t| t.nominal_ms),
        }
    }
}

/// Robfig's `?` is `*`.
fn unquestion(field: &str) -> String {
    field.replace('?', "*")
}

/// Robfig reads `N/step` as `N-max/step` with 6 (Saturday) as the last weekday; the schedule
/// parser goes on to 7 (Sunday again), so `1/2` would also match Sundays.
fn weekdays_to_saturday(field: &str) -> String {
    let items = field.split(',').map(|item| match item.split_once('/') {
        Some((start, step)) if start != "*" && !start.contains('-') => format!("{start}-6/{step}"),
        _ => item.to_string(),
    });
    items.collect::<Vec<_>>().join(",")
}

/// Whether robfig sets the star bit for a day field: some list item starts with `*` (or `?`) and
/// has no step above 1.
fn has_star(field: &str) -> bool {
    field.split(',').any(|item| {
        let (range, step) = item.split_once('/').unwrap_or((item, "1"));
        matches!(range.split('-').next(), Some("*" | "?")) && step.parse::<i64>().is_ok_and(|s| s <= 1)
    })
}

/// Refuses what robfig refuses and the schedule parser takes: names other than the exact
/// three-letter ones, and numbers above `max` (weekday 7).
fn check_names(field: &str, name: &str, names: &[&str], max: i64) -> Result<(), String> {
    let values = field.split(',').flat_map(|item| item.split('/').next().unwrap_or("").split('-'));
    for value in values {
        if value.is_empty() || value == "*" || value == "?" {
            continue;
        }
        if value.bytes().all(|b| b.is_ascii_alphabetic()) {
            if !names.contains(&value.to_ascii_lowercase().as_str()) {
                return Err(format!("{name} has an unknown name {value:?}"));
            }
        } else if value.parse::<i64>().is_ok_and(|v| v > max) {
            return Err(format!("{name} is not in range [..-{max}]"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:30Z, a Thursday.
    const T: i64 = 1_767_225_630_000;
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    const NEW_YEAR: i64 = T - 30_000;

    fn next(schedule: &str, after: i64) -> Option<i64> {
        CronSchedule::parse(schedule).unwrap_or_else(|e| panic!("{schedule}: {e:?}")).next(after)
    }

    fn invalid(schedule: &str) -> String {
        match CronSchedule::validate(schedule) {
            Err(e) => e.detail().to_string(),
            Ok(_) => panic!("{schedule} is valid"),
        }
    }

    #[test]
    fn every_starts_at_the_current_second() {
        assert_eq!(next("@every 2s", 10_500), Some(12_000));
        assert_eq!(next("@every 2s", 11_500), Some(13_000));
        assert_eq!(next("@every 1m30s", 0), Some(90_000));
        // Below a second is a second; fractions of a second are dropped.
        assert_eq!(next("@every 500ms", 10_500), Some(11_000));
        assert_eq!(next("@every 0s", 10_000), Some(11_000));
        assert_eq!(next("@every 1.9s", 10_000), Some(11_000));
        assert_eq!(next("CRON_TZ=Europe/Berlin @every 1h", 0), Some(HOUR));
        // Go's durations: no days, no phase.
        assert!(invalid("@every 1d").contains("unknown unit"));
        assert!(invalid("@every 1h/5m").contains("unknown unit"));
        assert!(invalid("@every nonsense").contains("invalid duration"));
        assert!(invalid("@every").contains("unrecognized descriptor"));
    }

    #[test]
    fn five_fields_and_descriptors_in_utc() {
        assert_eq!(next("* * * * *", T), Some(NEW_YEAR + MIN));
        assert_eq!(next("* * * * *", NEW_YEAR), Some(NEW_YEAR + MIN));
        assert_eq!(next("@hourly", T), Some(NEW_YEAR + HOUR));
        assert_eq!(next("@daily", T), Some(NEW_YEAR + DAY));
        assert_eq!(next("@midnight", T), Some(NEW_YEAR + DAY));
        assert_eq!(next("@weekly", T), Some(NEW_YEAR + 3 * DAY)); // Sunday 2026-01-04
        assert_eq!(next("@monthly", T), Some(NEW_YEAR + 31 * DAY));
        assert_eq!(next("@yearly", T), Some(NEW_YEAR + 365 * DAY));
        assert_eq!(next("@annually", T), Some(NEW_YEAR + 365 * DAY));
        assert_eq!(next("  15 8 * * *  ", T), Some(NEW_YEAR + 8 * HOUR + 15 * MIN));
        assert_eq!(next("*/20 * * * *", NEW_YEAR + 25 * MIN), Some(NEW_YEAR + 40 * MIN));
        assert_eq!(next("0 9 * jan-mar mon-fri", T), Some(NEW_YEAR + 9 * HOUR));
        assert_eq!(next("0 9 ? * SAT", T), Some(NEW_YEAR + 2 * DAY + 9 * HOUR));
    }

    #[test]
    fn cron_tz_names_the_zone() {
        // 09:00 in Berlin is 08:00 UTC in winter.
        assert_eq!(next("CRON_TZ=Europe/Berlin 0 9 * * *", T), Some(NEW_YEAR + 8 * HOUR));
        assert_eq!(next("TZ=America/New_York 0 0 * * *", T), Some(NEW_YEAR + 5 * HOUR));
        assert!(invalid("CRON_TZ=Mars/Olympus 0 9 * * *").contains("unknown time zone"));
        assert!(invalid("CRON_TZ=UTC").contains("time zone but no fields"));
        assert!(invalid("CRON_TZ=Mars/Olympus @every 1h").contains("unknown time zone"));
    }

    #[test]
    fn restricted_days_of_month_and_week_match_either() {
        // The 15th or any Monday: Monday 2026-01-05 comes first.
        assert_eq!(next("0 0 15 * mon", T), Some(NEW_YEAR + 4 * DAY));
        assert_eq!(next("0 0 15 * mon", NEW_YEAR + 13 * DAY), Some(NEW_YEAR + 14 * DAY));
        // A star (or `?`) in either makes it "both".
        assert_eq!(next("0 0 * * mon", T), Some(NEW_YEAR + 4 * DAY));
        assert_eq!(next("0 0 15 * *", T), Some(NEW_YEAR + 14 * DAY));
        assert_eq!(next("0 0 15 * ?", T), Some(NEW_YEAR + 14 * DAY));
        assert_eq!(next("0 0 */1 * mon", T), Some(NEW_YEAR + 4 * DAY));
        // A star with a step is a restriction: odd days or Mondays; Saturday the 3rd comes first.
        assert_eq!(next("0 0 */2 * mon", T), Some(NEW_YEAR + 2 * DAY));
        // `N/step` ends on Saturday: Monday, Wednesday, Friday, never Sunday.
        assert_eq!(weekdays_to_saturday("1/2,*/3,2-4/2,5"), "1-6/2,*/3,2-4/2,5");
        assert_eq!(next("0 0 * * 1/2", NEW_YEAR + 2 * DAY), Some(NEW_YEAR + 4 * DAY));
        assert!(has_star("*") && has_star("?") && has_star("*/1") && has_star("1,*"));
        assert!(!has_star("*/2") && !has_star("1-5") && !has_star("mon"));
    }

    #[test]
    fn temporal_rejects_what_robfig_rejects() {
        assert_eq!(CronSchedule::validate("not a cron").unwrap_err().to_string(), "invalid CronSchedule.");
        assert!(invalid("0 * * * * *").contains("expected exactly 5 fields, found 6"));
        assert!(invalid("0 0 0 * * * 2030").contains("found 7"));
        assert!(invalid("0 0 * * * # nightly").contains("found 7"));
        assert!(invalid("@often").contains("unrecognized descriptor"));
        assert!(invalid("60 * * * *").contains("Minute is not in range"));
        assert!(invalid("0 0 * * 7").contains("DayOfWeek is not in range"));
        assert!(invalid("0 0 * * monday").contains("unknown name"));
        assert!(invalid("0 0 * sept *").contains("unknown name"));
        assert!(invalid("0 0 L * *").contains("DayOfMonth is not in range"));
        assert!(invalid("").contains("found 0"));
        assert_eq!(
            CronSchedule::validate("0 0 30 2 *").unwrap_err().to_string(),
            "invalid CronSchedule, no time can be found to satisfy the schedule"
        );
    }
}
