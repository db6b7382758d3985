//! Behaviour of `CompiledSpec` against Temporal's scheduler: canonical forms, validation messages,
//! calendar/interval/cron times, exclusions, bounds, time zones with DST, and jitter (the expected
//! values are those of Temporal's own `spec_test.go` / `calendar_test.go`).

#![allow(deprecated)] // exclude_calendar

use std::time::Instant;

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use prost_wkt_types::{Duration, Timestamp};
use temporalio_protos::temporal::api::schedule::v1::{
    CalendarSpec, IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec,
};
use uhrwerk_schedule::{CompiledSpec, NextTime, SpecError, clean_spec};

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap().timestamp_millis()
}

/// A wall-clock time in `zone` (the earlier instant if repeated).
fn local(zone: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    let tz: Tz = zone.parse().unwrap();
    tz.with_ymd_and_hms(y, mo, d, h, mi, s).earliest().unwrap().timestamp_millis()
}

fn dur(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

fn ts(ms: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 })
}

fn r(start: i32, end: i32, step: i32) -> Range {
    Range { start, end, step }
}

fn interval(every: i64, phase: i64) -> IntervalSpec {
    IntervalSpec { interval: dur(every), phase: if phase == 0 { None } else { dur(phase) } }
}

fn hm(hour: &str, minute: &str) -> CalendarSpec {
    CalendarSpec { hour: hour.into(), minute: minute.into(), ..Default::default() }
}

fn cron(s: &[&str]) -> ScheduleSpec {
    ScheduleSpec { cron_string: s.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

fn compile(spec: &ScheduleSpec) -> CompiledSpec {
    CompiledSpec::compile(spec).unwrap_or_else(|e| panic!("{e}"))
}

fn error(spec: &ScheduleSpec) -> String {
    match CompiledSpec::compile(spec) {
        Ok(_) => panic!("spec compiled: {spec:?}"),
        Err(SpecError::Invalid(msg)) => msg,
    }
}

/// Successive nominal times, each search starting at the previous nominal time.
fn nominals(spec: &ScheduleSpec, mut after: i64, n: usize) -> Vec<i64> {
    let c = compile(spec);
    let mut out = Vec::new();
    for _ in 0..n {
        let Some(t) = c.next(after) else { break };
        out.push(t.nominal_ms);
        after = t.nominal_ms;
    }
    out
}

/// Successive actual times, each search starting at the previous actual time (Temporal's loop).
fn actuals(spec: &ScheduleSpec, mut after: i64, n: usize) -> Vec<i64> {
    let c = compile(spec);
    let mut out = Vec::new();
    for _ in 0..n {
        let Some(t) = c.next(after) else { break };
        out.push(t.actual_ms);
        after = t.actual_ms;
    }
    out
}

// ---------------------------------------------------------------- canonical form

#[test]
fn canonical_of_empty_spec_is_empty() {
    let c = compile(&ScheduleSpec::default());
    assert_eq!(c.canonical(), ScheduleSpec::default());
    assert_eq!(c.next(0), None);
    assert_eq!(c.timezone(), "UTC");
}

#[test]
fn canonical_of_every_is_an_interval() {
    let c = compile(&cron(&["@every 43h"]));
    assert_eq!(
        c.canonical(),
        ScheduleSpec { interval: vec![IntervalSpec { interval: dur(43 * 3600), phase: None }], ..Default::default() }
    );
    let c = compile(&cron(&["@every 5h/45m"]));
    assert_eq!(c.canonical().interval, [IntervalSpec { interval: dur(5 * 3600), phase: dur(45 * 60) }]);
}

fn structured_5_7_23() -> StructuredCalendarSpec {
    StructuredCalendarSpec {
        second: vec![r(0, 0, 0)],
        minute: vec![r(23, 0, 0)],
        hour: vec![r(5, 0, 0), r(7, 0, 0)],
        day_of_month: vec![r(1, 31, 0)],
        month: vec![r(1, 12, 0)],
        day_of_week: vec![r(0, 6, 0)],
        ..Default::default()
    }
}

#[test]
fn canonical_of_calendar_string() {
    let spec = ScheduleSpec { calendar: vec![hm("5,7", "23")], ..Default::default() };
    assert_eq!(
        compile(&spec).canonical(),
        ScheduleSpec { structured_calendar: vec![structured_5_7_23()], ..Default::default() }
    );
}

#[test]
fn canonical_of_cron_string_keeps_other_fields() {
    let mut spec = cron(&["23 5,7 * * *"]);
    spec.jitter = dur(300);
    spec.start_time = ts(utc(2022, 3, 23, 0, 0, 0));
    spec.timezone_name = "Europe/London".into();
    assert_eq!(
        compile(&spec).canonical(),
        ScheduleSpec {
            structured_calendar: vec![structured_5_7_23()],
            jitter: dur(300),
            start_time: ts(utc(2022, 3, 23, 0, 0, 0)),
            timezone_name: "Europe/London".into(),
            ..Default::default()
        }
    );
}

#[test]
fn canonical_takes_cron_tz_and_comment() {
    let c = compile(&cron(&["CRON_TZ=Europe/London 23 5,7 * * *"]));
    assert_eq!(c.canonical().timezone_name, "Europe/London");
    assert_eq!(c.timezone(), "Europe/London");
    let mut spec = cron(&["TZ=Europe/London 23 5,7 * * * # twice a day"]);
    spec.timezone_name = "Europe/London".into();
    let canonical = compile(&spec).canonical();
    assert_eq!(canonical.structured_calendar[0].comment, "twice a day");
    assert_eq!(canonical.timezone_name, "Europe/London");
    assert!(canonical.cron_string.is_empty());
}

#[test]
fn canonical_of_exclude_calendar_and_described_cleans_ranges() {
    let spec = ScheduleSpec {
        cron_string: vec!["0 12 * * mon-fri".into()],
        exclude_calendar: vec![CalendarSpec { month: "dec".into(), day_of_month: "25".into(), ..Default::default() }],
        ..Default::default()
    };
    let c = compile(&spec);
    let canonical = c.canonical();
    assert!(canonical.exclude_calendar.is_empty());
    assert_eq!(canonical.exclude_structured_calendar[0].month, [r(12, 0, 0)]);
    assert_eq!(canonical.structured_calendar[0].day_of_week, [r(1, 5, 0)]);
    let described = c.described();
    assert_eq!(described.structured_calendar[0].minute, [r(0, 0, 1)]);
    assert_eq!(described.structured_calendar[0].day_of_week, [r(1, 5, 1)]);
    assert_eq!(described.exclude_structured_calendar[0].day_of_month, [r(25, 25, 1)]);
    let mut again = canonical.clone();
    clean_spec(&mut again);
    assert_eq!(again, described);
    // Canonicalisation is idempotent.
    assert_eq!(compile(&canonical).canonical(), canonical);
}

#[test]
fn cron_time_zones_must_agree() {
    let mut spec = cron(&["CRON_TZ=America/New_York 23 5,7 * * *"]);
    spec.timezone_name = "Europe/London".into();
    assert_eq!(error(&spec), "Invalid schedule spec: conflicting timezone names");
    for strings in [
        ["CRON_TZ=Europe/London 23 5,7 * * *", "CRON_TZ=America/New_York 23 5,7 * * *"],
        ["CRON_TZ=Europe/London 23 5,7 * * *", "23 5,7 * * *"],
        ["23 5,7 * * *", "CRON_TZ=Europe/London 23 5,7 * * *"],
    ] {
        assert_eq!(error(&cron(&strings)), "Invalid schedule spec: conflicting timezone names");
    }
}

// ---------------------------------------------------------------- validation

#[test]
fn invalid_specs_and_their_messages() {
    let cases: Vec<(ScheduleSpec, &str)> = vec![
        (cron(&["1 2 3"]), "CronString does not have 5-7 fields"),
        (cron(&["* * * * * * * *"]), "CronString does not have 5-7 fields"),
        (cron(&["60 * * * *"]), "Minute is not in range [0-59]"),
        (cron(&["0 1 2 3 4 1999"]), "Year is not in range [2000-2100]"),
        (cron(&["0 0 * foo *"]), "Month is not in range [1-12]"),
        (cron(&["0 0 * * 1-9"]), "DayOfWeek End is before Start or not in range [0-7]"),
        (cron(&["*/0 * * * *"]), "Minute has invalid Step"),
        (cron(&["@every"]), "CronString does not have interval after @every"),
        (cron(&["@every 0s"]), "interval is too small"),
        (cron(&["@every 1x"]), "time: unknown unit \"x\" in duration \"1x\""),
        (cron(&["@every 1h/2h"]), "phase cannot be greater than Interval"),
        (cron(&["CRON_TZ=Mars/Olympus 0 * * * *"]), "unknown time zone Mars/Olympus"),
        (ScheduleSpec { interval: vec![interval(0, 0)], ..Default::default() }, "interval is too small"),
        (
            ScheduleSpec { interval: vec![IntervalSpec { interval: None, phase: None }], ..Default::default() },
            "interval is too small",
        ),
        (ScheduleSpec { interval: vec![interval(-43 * 3600, 0)], ..Default::default() }, "interval is too small"),
        (
            ScheduleSpec { interval: vec![interval(3 * 3600, 4 * 3600)], ..Default::default() },
            "phase cannot be greater than Interval",
        ),
        (
            ScheduleSpec {
                interval: vec![IntervalSpec { interval: dur(60), phase: Some(Duration { seconds: -1, nanos: 0 }) }],
                ..Default::default()
            },
            "phase is negative",
        ),
        (
            ScheduleSpec {
                interval: vec![IntervalSpec { interval: Some(Duration { seconds: 5, nanos: -1 }), phase: None }],
                ..Default::default()
            },
            "interval is not a valid duration: proto: duration (seconds:5 nanos:-1) has seconds and nanos with different signs",
        ),
        (
            ScheduleSpec { timezone_name: "Nowhere/Special".into(), ..Default::default() },
            "unknown time zone Nowhere/Special",
        ),
        (
            ScheduleSpec { calendar: vec![hm("25", "61")], ..Default::default() },
            "Minute is not in range [0-59], Hour is not in range [0-23]",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(error(&spec), format!("Invalid schedule spec: {want}"), "{spec:?}");
    }
}

#[test]
fn invalid_structured_ranges() {
    let bad: Vec<(StructuredCalendarSpec, &str)> = vec![
        (
            StructuredCalendarSpec { second: vec![r(100, 0, 0)], ..Default::default() },
            "Second Start is not in range [0-59]",
        ),
        (
            StructuredCalendarSpec { second: vec![r(-3, 0, 0)], ..Default::default() },
            "Second Start is not in range [0-59]",
        ),
        (
            StructuredCalendarSpec { second: vec![r(30, 60, 0)], ..Default::default() },
            "Second End is before Start or not in range [0-59]",
        ),
        (StructuredCalendarSpec { second: vec![r(30, 40, -3)], ..Default::default() }, "Second has invalid Step"),
        (
            StructuredCalendarSpec { minute: vec![r(60, 0, 0)], ..Default::default() },
            "Minute Start is not in range [0-59]",
        ),
        (
            StructuredCalendarSpec { hour: vec![r(0, 24, 0)], ..Default::default() },
            "Hour End is before Start or not in range [0-23]",
        ),
        (
            StructuredCalendarSpec { hour: vec![r(16, 12, 0)], ..Default::default() },
            "Hour End is before Start or not in range [0-23]",
        ),
        (
            StructuredCalendarSpec { day_of_month: vec![r(0, 0, 0)], ..Default::default() },
            "DayOfMonth Start is not in range [1-31]",
        ),
        (
            StructuredCalendarSpec { month: vec![r(0, 13, 0)], ..Default::default() },
            "Month Start is not in range [1-12], Month End is before Start or not in range [1-12]",
        ),
        (
            StructuredCalendarSpec { day_of_week: vec![r(7, 0, 0)], ..Default::default() },
            "DayOfWeek Start is not in range [0-6]",
        ),
        (
            StructuredCalendarSpec { day_of_week: vec![r(6, 7, 0)], ..Default::default() },
            "DayOfWeek End is before Start or not in range [0-6]",
        ),
        (
            StructuredCalendarSpec { year: vec![r(1999, 0, 0)], ..Default::default() },
            "Year Start is not in range [2000-2100]",
        ),
        (
            StructuredCalendarSpec { year: vec![r(2112, 0, 0)], ..Default::default() },
            "Year Start is not in range [2000-2100]",
        ),
        (StructuredCalendarSpec { comment: "x".repeat(201), ..Default::default() }, "comment is too long"),
    ];
    for (cal, want) in bad {
        let spec = ScheduleSpec { structured_calendar: vec![cal], ..Default::default() };
        assert_eq!(error(&spec), format!("Invalid schedule spec: invalid calendar spec: {want}"));
    }
}

#[test]
fn error_is_a_std_error_with_the_message() {
    let e: Box<dyn std::error::Error> = Box::new(CompiledSpec::compile(&cron(&["x"])).unwrap_err());
    assert_eq!(e.to_string(), "Invalid schedule spec: CronString does not have 5-7 fields");
}

// ---------------------------------------------------------------- intervals

#[test]
fn interval_basic() {
    let spec = ScheduleSpec { interval: vec![interval(90 * 60, 0)], ..Default::default() };
    assert_eq!(
        nominals(&spec, utc(2022, 3, 23, 12, 53, 2), 4),
        [
            utc(2022, 3, 23, 13, 30, 0),
            utc(2022, 3, 23, 15, 0, 0),
            utc(2022, 3, 23, 16, 30, 0),
            utc(2022, 3, 23, 18, 0, 0),
        ]
    );
}

#[test]
fn interval_with_phase() {
    let spec = ScheduleSpec { interval: vec![interval(90 * 60, 5 * 60 + 44)], ..Default::default() };
    assert_eq!(
        nominals(&spec, utc(2022, 3, 23, 12, 53, 2), 4),
        [
            utc(2022, 3, 23, 13, 35, 44),
            utc(2022, 3, 23, 15, 5, 44),
            utc(2022, 3, 23, 16, 35, 44),
            utc(2022, 3, 23, 18, 5, 44),
        ]
    );
}

#[test]
fn intervals_union() {
    let spec = ScheduleSpec {
        interval: vec![interval(90 * 60, 5 * 60 + 44), interval(157 * 60, 22 * 60 + 11)],
        ..Default::default()
    };
    assert_eq!(
        nominals(&spec, utc(2022, 3, 23, 12, 53, 2), 7),
        [
            utc(2022, 3, 23, 13, 35, 44),
            utc(2022, 3, 23, 15, 5, 44),
            utc(2022, 3, 23, 15, 26, 11),
            utc(2022, 3, 23, 16, 35, 44),
            utc(2022, 3, 23, 18, 3, 11),
            utc(2022, 3, 23, 18, 5, 44),
            utc(2022, 3, 23, 19, 35, 44),
        ]
    );
}

#[test]
fn every_with_offset() {
    // 5h intervals since the epoch, shifted by 45m: 1970-01-01T00:45Z + k*5h.
    let times = nominals(&cron(&["@every 5h/45m"]), utc(2022, 3, 23, 0, 0, 0), 3);
    assert_eq!(times.len(), 3);
    for t in &times {
        assert_eq!((t - 45 * MIN).rem_euclid(5 * HOUR), 0);
    }
    assert_eq!(times[1] - times[0], 5 * HOUR);
    let days = nominals(&cron(&["@every 1d"]), utc(2022, 3, 23, 5, 0, 0), 2);
    assert_eq!(days, [utc(2022, 3, 24, 0, 0, 0), utc(2022, 3, 25, 0, 0, 0)]);
}

// ---------------------------------------------------------------- calendars

#[test]
fn calendar_basic_and_union() {
    let spec = ScheduleSpec { calendar: vec![hm("5,7", "23")], ..Default::default() };
    assert_eq!(
        nominals(&spec, utc(2022, 3, 23, 3, 0, 0), 4),
        [
            utc(2022, 3, 23, 5, 23, 0),
            utc(2022, 3, 23, 7, 23, 0),
            utc(2022, 3, 24, 5, 23, 0),
            utc(2022, 3, 24, 7, 23, 0),
        ]
    );
    let expected = [
        utc(2022, 3, 23, 5, 23, 0),
        utc(2022, 3, 23, 7, 23, 0),
        utc(2022, 3, 23, 11, 55, 0),
        utc(2022, 3, 23, 13, 55, 0),
        utc(2022, 3, 24, 5, 23, 0),
        utc(2022, 3, 24, 7, 23, 0),
        utc(2022, 3, 24, 11, 55, 0),
        utc(2022, 3, 24, 13, 55, 0),
    ];
    let two_calendars = ScheduleSpec { calendar: vec![hm("5,7", "23"), hm("11,13", "55")], ..Default::default() };
    assert_eq!(nominals(&two_calendars, utc(2022, 3, 23, 3, 0, 0), 8), expected);
    let calendar_and_cron = ScheduleSpec {
        calendar: vec![hm("5,7", "23")],
        cron_string: vec!["55 11,13 * * *".into()],
        ..Default::default()
    };
    assert_eq!(nominals(&calendar_and_cron, utc(2022, 3, 23, 3, 0, 0), 8), expected);
}

#[test]
fn calendar_and_interval_union() {
    let spec = ScheduleSpec {
        calendar: vec![hm("11,13", "55")],
        interval: vec![interval(90 * 60, 7 * 60)],
        ..Default::default()
    };
    assert_eq!(
        nominals(&spec, utc(2022, 3, 23, 10, 0, 0), 6),
        [
            utc(2022, 3, 23, 10, 37, 0),
            utc(2022, 3, 23, 11, 55, 0),
            utc(2022, 3, 23, 12, 7, 0),
            utc(2022, 3, 23, 13, 37, 0),
            utc(2022, 3, 23, 13, 55, 0),
            utc(2022, 3, 23, 15, 7, 0),
        ]
    );
}

#[test]
fn calendar_string_defaults() {
    // All defaults: midnight every day.
    let spec = ScheduleSpec { calendar: vec![CalendarSpec::default()], ..Default::default() };
    assert_eq!(nominals(&spec, utc(2022, 3, 17, 0, 0, 0), 2), [utc(2022, 3, 18, 0, 0, 0), utc(2022, 3, 19, 0, 0, 0)]);
    let canonical = compile(&spec).canonical().structured_calendar.remove(0);
    assert_eq!(canonical.second, [r(0, 0, 0)]);
    assert_eq!(canonical.minute, [r(0, 0, 0)]);
    assert_eq!(canonical.hour, [r(0, 0, 0)]);
    assert_eq!(canonical.day_of_month, [r(1, 31, 0)]);
    assert_eq!(canonical.month, [r(1, 12, 0)]);
    assert_eq!(canonical.year, []);
    assert_eq!(canonical.day_of_week, [r(0, 6, 0)]);
    // Only the second given: minute and hour still default to 0.
    let spec = ScheduleSpec {
        calendar: vec![CalendarSpec { second: "30".into(), ..Default::default() }],
        ..Default::default()
    };
    assert_eq!(nominals(&spec, utc(2022, 3, 17, 0, 0, 0), 1), [utc(2022, 3, 17, 0, 0, 30)]);
    // Only the minute: every day at 00:MM:00.
    let spec = ScheduleSpec { calendar: vec![hm("", "15")], ..Default::default() };
    assert_eq!(nominals(&spec, utc(2022, 3, 17, 1, 0, 0), 1), [utc(2022, 3, 18, 0, 15, 0)]);
    // Year restricts; nothing after it.
    let spec = ScheduleSpec {
        calendar: vec![CalendarSpec {
            hour: "13".into(),
            minute: "55".into(),
            day_of_month: "7".into(),
            month: "4".into(),
            year: "2022".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(nominals(&spec, utc(2022, 3, 23, 11, 0, 0), 3), [utc(2022, 4, 7, 13, 55, 0)]);
}

#[test]
fn structured_empty_fields_follow_temporal() {
    // An empty list matches nothing (except year, where it matches every year).
    let no_seconds = StructuredCalendarSpec {
        minute: vec![r(0, 0, 0)],
        hour: vec![r(0, 23, 0)],
        day_of_month: vec![r(1, 31, 0)],
        month: vec![r(1, 12, 0)],
        day_of_week: vec![r(0, 6, 0)],
        ..Default::default()
    };
    let spec = ScheduleSpec { structured_calendar: vec![no_seconds.clone()], ..Default::default() };
    assert_eq!(compile(&spec).next(utc(2022, 1, 1, 0, 0, 0)), None);
    let hourly = StructuredCalendarSpec { second: vec![r(0, 0, 0)], ..no_seconds };
    let spec = ScheduleSpec { structured_calendar: vec![hourly], ..Default::default() };
    assert_eq!(nominals(&spec, utc(2022, 1, 1, 0, 30, 0), 2), [utc(2022, 1, 1, 1, 0, 0), utc(2022, 1, 1, 2, 0, 0)]);
    // end < start reads as end = start; step 0 as 1.
    let structured = StructuredCalendarSpec {
        second: vec![r(0, 0, 0)],
        minute: vec![r(10, 0, 0), r(40, 50, 5)],
        hour: vec![r(9, 0, 0)],
        day_of_month: vec![r(1, 31, 0)],
        month: vec![r(1, 12, 0)],
        day_of_week: vec![r(0, 6, 0)],
        ..Default::default()
    };
    let spec = ScheduleSpec { structured_calendar: vec![structured], ..Default::default() };
    assert_eq!(
        nominals(&spec, utc(2022, 1, 1, 0, 0, 0), 5),
        [
            utc(2022, 1, 1, 9, 10, 0),
            utc(2022, 1, 1, 9, 40, 0),
            utc(2022, 1, 1, 9, 45, 0),
            utc(2022, 1, 1, 9, 50, 0),
            utc(2022, 1, 2, 9, 10, 0),
        ]
    );
}

#[test]
fn ranges_and_steps() {
    let c = compile(&cron(&["*/20 8-10/2 * * *"]));
    let times: Vec<i64> =
        c.between(utc(2022, 5, 1, 0, 0, 0), utc(2022, 5, 1, 23, 59, 59), 100).iter().map(|t| t.nominal_ms).collect();
    assert_eq!(
        times,
        [
            utc(2022, 5, 1, 8, 0, 0),
            utc(2022, 5, 1, 8, 20, 0),
            utc(2022, 5, 1, 8, 40, 0),
            utc(2022, 5, 1, 10, 0, 0),
            utc(2022, 5, 1, 10, 20, 0),
            utc(2022, 5, 1, 10, 40, 0),
        ]
    );
    // x/y runs from x to the field maximum.
    let c = compile(&cron(&["0 0 25/3 * *"]));
    let days: Vec<i64> =
        c.between(utc(2022, 1, 1, 0, 0, 0), utc(2022, 1, 31, 23, 0, 0), 10).iter().map(|t| t.nominal_ms).collect();
    assert_eq!(days, [utc(2022, 1, 25, 0, 0, 0), utc(2022, 1, 28, 0, 0, 0), utc(2022, 1, 31, 0, 0, 0)]);
}

#[test]
fn month_and_weekday_names() {
    let c = compile(&cron(&["0 9 1 jan,JULY *"]));
    assert_eq!(
        nominals(&cron(&["0 9 1 jan,JULY *"]), utc(2022, 2, 1, 0, 0, 0), 2),
        [utc(2022, 7, 1, 9, 0, 0), utc(2023, 1, 1, 9, 0, 0)]
    );
    assert_eq!(c.canonical().structured_calendar[0].month, [r(1, 0, 0), r(7, 0, 0)]);
    // 2022-03-04 is a Friday.
    let weekdays = nominals(&cron(&["0 9 * * mon-fri"]), utc(2022, 3, 4, 10, 0, 0), 2);
    assert_eq!(weekdays, [utc(2022, 3, 7, 9, 0, 0), utc(2022, 3, 8, 9, 0, 0)]);
    let weekend = nominals(&cron(&["0 9 * * sat,sun"]), utc(2022, 3, 4, 10, 0, 0), 3);
    assert_eq!(weekend, [utc(2022, 3, 5, 9, 0, 0), utc(2022, 3, 6, 9, 0, 0), utc(2022, 3, 12, 9, 0, 0)]);
}

#[test]
fn sunday_spellings() {
    // From 2022-03-05 (Saturday) 00:00: Sunday-including specs fire at Sunday 00:00.
    for dow in ["0", "7", "sun", "*", "0-3", "5-7", "5-7/2", "6-7", "2-7/5", "0-7/7", "0/7"] {
        let spec = ScheduleSpec {
            calendar: vec![CalendarSpec { day_of_week: dow.into(), ..Default::default() }],
            ..Default::default()
        };
        let next = compile(&spec).next(utc(2022, 3, 5, 12, 0, 0)).unwrap();
        assert_eq!(next.nominal_ms, utc(2022, 3, 6, 0, 0, 0), "{dow}");
    }
    // Specs without Monday skip 2022-03-07.
    for dow in ["0", "7", "sun", "5-7", "5-7/2", "6-7", "2-7/5", "0-7/7", "0/7"] {
        let spec = ScheduleSpec {
            calendar: vec![CalendarSpec { day_of_week: dow.into(), ..Default::default() }],
            ..Default::default()
        };
        let next = compile(&spec).next(utc(2022, 3, 6, 0, 0, 0)).unwrap();
        assert_ne!(next.nominal_ms, utc(2022, 3, 7, 0, 0, 0), "{dow}");
    }
}

#[test]
fn day_of_month_and_day_of_week_must_both_match() {
    // Friday the 13th (not "or" as in some crons).
    let times = nominals(&cron(&["0 0 13 * fri"]), utc(2022, 1, 1, 0, 0, 0), 3);
    assert_eq!(times, [utc(2022, 5, 13, 0, 0, 0), utc(2023, 1, 13, 0, 0, 0), utc(2023, 10, 13, 0, 0, 0)]);
    // Pacific calendar from Temporal's tests: 05:55:55 on even days that are Wed or Thu.
    let spec = ScheduleSpec {
        calendar: vec![CalendarSpec {
            second: "55".into(),
            minute: "55".into(),
            hour: "5".into(),
            day_of_week: "wed-thurs".into(),
            day_of_month: "2/2".into(),
            ..Default::default()
        }],
        timezone_name: "US/Pacific".into(),
        ..Default::default()
    };
    let p = |d, h, m, s| local("US/Pacific", 2022, 3, d, h, m, s);
    let c = compile(&spec);
    assert_eq!(c.next(p(2, 5, 55, 33)).unwrap().nominal_ms, p(2, 5, 55, 55));
    assert_eq!(c.next(p(2, 5, 33, 33)).unwrap().nominal_ms, p(2, 5, 55, 55));
    assert_eq!(c.next(p(2, 3, 33, 33)).unwrap().nominal_ms, p(2, 5, 55, 55));
    assert_eq!(c.next(local("US/Pacific", 2022, 3, 1, 1, 11, 11)).unwrap().nominal_ms, p(2, 5, 55, 55));
    assert_eq!(c.next(p(2, 5, 55, 55)).unwrap().nominal_ms, p(10, 5, 55, 55));
    // Crossing the DST change (March 13) without being near it.
    assert_eq!(c.next(p(10, 5, 55, 55)).unwrap().nominal_ms, p(16, 5, 55, 55));
}

// ---------------------------------------------------------------- cron strings

#[test]
fn cron_five_six_and_seven_fields() {
    assert_eq!(
        nominals(&cron(&["30 4 * * *"]), utc(2022, 6, 1, 5, 0, 0), 2),
        [utc(2022, 6, 2, 4, 30, 0), utc(2022, 6, 3, 4, 30, 0)]
    );
    // Six fields: the sixth is the year.
    assert_eq!(nominals(&cron(&["30 4 1 1 * 2024"]), utc(2022, 6, 1, 0, 0, 0), 2), [utc(2024, 1, 1, 4, 30, 0)]);
    // Seven fields: seconds first, year last.
    assert_eq!(nominals(&cron(&["15 30 4 * * * *"]), utc(2022, 6, 1, 5, 0, 0), 1), [utc(2022, 6, 2, 4, 30, 15)]);
    let canonical = compile(&cron(&["15 30 4 * * * 2030-2035"])).canonical();
    assert_eq!(canonical.structured_calendar[0].second, [r(15, 0, 0)]);
    assert_eq!(canonical.structured_calendar[0].year, [r(2030, 2035, 0)]);
}

#[test]
fn cron_descriptors() {
    let from = utc(2022, 3, 15, 10, 30, 0); // a Tuesday
    let first = |s: &str| compile(&cron(&[s])).next(from).unwrap().nominal_ms;
    assert_eq!(first("@yearly"), utc(2023, 1, 1, 0, 0, 0));
    assert_eq!(first("@annually"), utc(2023, 1, 1, 0, 0, 0));
    assert_eq!(first("@monthly"), utc(2022, 4, 1, 0, 0, 0));
    assert_eq!(first("@weekly"), utc(2022, 3, 20, 0, 0, 0));
    assert_eq!(first("@daily"), utc(2022, 3, 16, 0, 0, 0));
    assert_eq!(first("@midnight"), utc(2022, 3, 16, 0, 0, 0));
    assert_eq!(first("@hourly"), utc(2022, 3, 15, 11, 0, 0));
    assert_eq!(first("  @hourly  # with a comment "), utc(2022, 3, 15, 11, 0, 0));
    let monthly = compile(&cron(&["@monthly"])).canonical().structured_calendar.remove(0);
    assert_eq!(
        monthly,
        StructuredCalendarSpec {
            second: vec![r(0, 0, 0)],
            minute: vec![r(0, 0, 0)],
            hour: vec![r(0, 0, 0)],
            day_of_month: vec![r(1, 0, 0)],
            month: vec![r(1, 12, 0)],
            day_of_week: vec![r(0, 6, 0)],
            ..Default::default()
        }
    );
}

// ---------------------------------------------------------------- exclusions and bounds

#[test]
fn exclusion_with_jitter_matches_temporal() {
    let spec = ScheduleSpec {
        interval: vec![interval(90 * 60, 0)],
        exclude_calendar: vec![CalendarSpec {
            hour: "12-14".into(),
            minute: "*".into(),
            second: "*".into(),
            ..Default::default()
        }],
        jitter: dur(1),
        ..Default::default()
    };
    assert_eq!(
        actuals(&spec, utc(2022, 3, 23, 8, 0, 0), 4),
        [
            utc(2022, 3, 23, 9, 0, 0) + 235,
            utc(2022, 3, 23, 10, 30, 0) + 139,
            utc(2022, 3, 23, 15, 0, 0) + 89,
            utc(2022, 3, 23, 16, 30, 0) + 687,
        ]
    );
}

#[test]
fn exclusion_of_everything_yields_nothing() {
    let spec = ScheduleSpec {
        interval: vec![interval(7 * 86400, 0)],
        exclude_calendar: vec![CalendarSpec {
            second: "*".into(),
            minute: "*".into(),
            hour: "*".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(compile(&spec).next(utc(2022, 3, 23, 12, 53, 2)), None);
    // Every second, excluded every second, in a DST zone: still terminates quickly.
    let spec = ScheduleSpec {
        calendar: vec![CalendarSpec { second: "*".into(), minute: "*".into(), hour: "*".into(), ..Default::default() }],
        exclude_calendar: vec![CalendarSpec {
            second: "*".into(),
            minute: "*".into(),
            hour: "*".into(),
            ..Default::default()
        }],
        timezone_name: "Europe/Berlin".into(),
        ..Default::default()
    };
    let started = Instant::now();
    assert_eq!(compile(&spec).next(utc(2022, 3, 23, 12, 0, 0)), None);
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn exclusion_skips_whole_runs() {
    // Every second except seconds 0-58: only :59 remains.
    let spec = ScheduleSpec {
        calendar: vec![CalendarSpec { second: "*".into(), minute: "*".into(), hour: "*".into(), ..Default::default() }],
        exclude_calendar: vec![CalendarSpec {
            second: "0-58".into(),
            minute: "*".into(),
            hour: "*".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        nominals(&spec, utc(2022, 3, 23, 12, 0, 0), 2),
        [utc(2022, 3, 23, 12, 0, 59), utc(2022, 3, 23, 12, 1, 59)]
    );
    // Every minute on weekdays only, via an exclusion of weekends: Friday 23:59 -> Monday 00:00.
    let spec = ScheduleSpec {
        cron_string: vec!["* * * * *".into()],
        exclude_structured_calendar: vec![StructuredCalendarSpec {
            second: vec![r(0, 59, 0)],
            minute: vec![r(0, 59, 0)],
            hour: vec![r(0, 23, 0)],
            day_of_month: vec![r(1, 31, 0)],
            month: vec![r(1, 12, 0)],
            day_of_week: vec![r(0, 0, 0), r(6, 0, 0)],
            ..Default::default()
        }],
        timezone_name: "America/New_York".into(),
        ..Default::default()
    };
    let ny = |d, h, m| local("America/New_York", 2022, 3, d, h, m, 0);
    assert_eq!(nominals(&spec, ny(11, 23, 58), 2), [ny(11, 23, 59), ny(14, 0, 0)]);
    // Christmas excluded from a daily schedule.
    let spec = ScheduleSpec {
        cron_string: vec!["0 9 * * *".into()],
        exclude_calendar: vec![CalendarSpec {
            second: "*".into(),
            minute: "*".into(),
            hour: "*".into(),
            day_of_month: "25".into(),
            month: "dec".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(nominals(&spec, utc(2022, 12, 24, 10, 0, 0), 1), [utc(2022, 12, 26, 9, 0, 0)]);
}

#[test]
fn start_time_bounds() {
    let spec = ScheduleSpec {
        interval: vec![interval(90 * 60, 0)],
        start_time: ts(utc(2022, 3, 23, 12, 0, 0)),
        jitter: dur(1),
        ..Default::default()
    };
    assert_eq!(
        actuals(&spec, utc(2022, 3, 23, 8, 0, 0), 3),
        [utc(2022, 3, 23, 12, 0, 0) + 162, utc(2022, 3, 23, 13, 30, 0) + 587, utc(2022, 3, 23, 15, 0, 0) + 89,]
    );
    // Start time with a fraction: the whole second before it is not a candidate.
    let spec = ScheduleSpec {
        interval: vec![interval(3600, 0)],
        start_time: ts(utc(2022, 3, 23, 12, 0, 0) + 456),
        ..Default::default()
    };
    assert_eq!(actuals(&spec, utc(2022, 3, 23, 12, 0, 0) + 123, 1), [utc(2022, 3, 23, 13, 0, 0)]);
}

#[test]
fn end_time_bounds() {
    let spec = ScheduleSpec {
        interval: vec![interval(90 * 60, 0)],
        end_time: ts(utc(2022, 3, 23, 14, 0, 0)),
        jitter: dur(1),
        ..Default::default()
    };
    assert_eq!(
        actuals(&spec, utc(2022, 3, 23, 11, 0, 0), 5),
        [utc(2022, 3, 23, 12, 0, 0) + 162, utc(2022, 3, 23, 13, 30, 0) + 587,]
    );
    // An end time exactly on a nominal time includes it.
    let spec = ScheduleSpec {
        interval: vec![interval(3600, 0)],
        end_time: ts(utc(2022, 1, 1, 2, 0, 0)),
        ..Default::default()
    };
    assert_eq!(nominals(&spec, utc(2022, 1, 1, 0, 0, 0), 5), [utc(2022, 1, 1, 1, 0, 0), utc(2022, 1, 1, 2, 0, 0)]);
}

#[test]
fn nothing_after_2100() {
    let c = compile(&cron(&["@yearly"]));
    assert_eq!(c.next(utc(2100, 6, 1, 0, 0, 0)), None);
    assert_eq!(c.next(utc(2099, 6, 1, 0, 0, 0)).unwrap().nominal_ms, utc(2100, 1, 1, 0, 0, 0));
    let c = compile(&ScheduleSpec { interval: vec![interval(3600, 0)], ..Default::default() });
    assert_eq!(c.next(utc(2100, 12, 31, 23, 0, 0)), None);
    assert_eq!(c.next(i64::MAX), None);
    assert!(c.next(i64::MIN).is_some());
}

// ---------------------------------------------------------------- jitter

#[test]
fn jitter_values_match_temporal() {
    // Jitter larger than the gap is capped by the gap to the following time.
    let spec = ScheduleSpec { interval: vec![interval(90 * 60, 0)], jitter: dur(86400), ..Default::default() };
    assert_eq!(
        actuals(&spec, utc(2022, 3, 23, 11, 0, 0), 3),
        [utc(2022, 3, 23, 12, 14, 36) + 524, utc(2022, 3, 23, 14, 22, 54) + 562, utc(2022, 3, 23, 15, 8, 3) + 724,]
    );
    // A single run (no following time) gets the full jitter window.
    let one = CalendarSpec {
        hour: "13".into(),
        minute: "55".into(),
        day_of_month: "7".into(),
        month: "4".into(),
        year: "2022".into(),
        ..Default::default()
    };
    let spec = ScheduleSpec { calendar: vec![one.clone()], ..Default::default() };
    assert_eq!(actuals(&spec, utc(2022, 3, 23, 11, 0, 0), 1), [utc(2022, 4, 7, 13, 55, 0)]);
    let spec = ScheduleSpec { calendar: vec![one], jitter: dur(3600), ..Default::default() };
    assert_eq!(actuals(&spec, utc(2022, 3, 23, 11, 0, 0), 1), [utc(2022, 4, 7, 13, 57, 26) + 927]);
}

#[test]
fn jitter_seed_matches_temporal() {
    let spec = ScheduleSpec { interval: vec![interval(86400, 0)], jitter: dur(3600), ..Default::default() };
    let from = utc(2022, 3, 23, 11, 0, 0);
    let c = compile(&spec);
    assert_eq!(c.next(from).unwrap().actual_ms, utc(2022, 3, 24, 0, 35, 24) + 276);
    let c = compile(&spec).with_jitter_seed("seed-1");
    assert_eq!(c.next(from).unwrap().actual_ms, utc(2022, 3, 24, 0, 6, 12) + 519);
    let c = compile(&spec).with_jitter_seed("seed-2");
    assert_eq!(c.next(from).unwrap().actual_ms, utc(2022, 3, 24, 0, 39, 16) + 922);
}

#[test]
fn jitter_is_deterministic_and_bounded() {
    let spec = ScheduleSpec { cron_string: vec!["*/5 * * * *".into()], jitter: dur(120), ..Default::default() };
    let a = compile(&spec);
    let b = compile(&spec); // "after a restart"
    let times = a.between(utc(2022, 1, 1, 0, 0, 0), utc(2022, 1, 2, 0, 0, 0), 1000);
    assert_eq!(times.len(), 287); // the 288th's actual time is after the end
    let mut distinct = std::collections::HashSet::new();
    for t in &times {
        assert!(t.actual_ms >= t.nominal_ms && t.actual_ms < t.nominal_ms + 120 * SEC, "{t:?}");
        assert_eq!(b.next(t.nominal_ms - 1), Some(*t));
        distinct.insert(t.actual_ms - t.nominal_ms);
    }
    assert!(distinct.len() > 100);
    // Jitter larger than the gap: every actual time stays before the next nominal time.
    let spec = ScheduleSpec { cron_string: vec!["* * * * *".into()], jitter: dur(3600), ..Default::default() };
    let times = compile(&spec).between(utc(2022, 1, 1, 0, 0, 0), utc(2022, 1, 1, 3, 0, 0), 1000);
    assert_eq!(times.len(), 179); // 03:00 itself would act after the end
    for w in times.windows(2) {
        assert!(w[0].actual_ms < w[1].nominal_ms);
        assert!(w[0].actual_ms - w[0].nominal_ms < MIN);
    }
    // No jitter: actual = nominal.
    let t = compile(&cron(&["@hourly"])).next(0).unwrap();
    assert_eq!(t, NextTime { nominal_ms: HOUR, actual_ms: HOUR });
}

// ---------------------------------------------------------------- time zones and DST

/// Like Temporal's checkSequence: the sequence of times, and every (sampled) second between two
/// consecutive times leads to the later one.
fn check_sequence(spec: &ScheduleSpec, start: i64, seq: &[i64]) {
    let c = compile(spec);
    let mut from = start;
    for &want in seq {
        let got = c.next(from).map(|t| t.nominal_ms);
        assert_eq!(got, Some(want), "after {from}");
        let mut t = from;
        while t < want {
            assert_eq!(c.next(t).map(|t| t.nominal_ms), Some(want), "after {t}");
            t += 37 * SEC;
        }
        from = want;
    }
}

#[test]
fn pacific_spring_forward_skips_missing_time() {
    let p = |mo, d, h, m, s| local("US/Pacific", 2022, mo, d, h, m, s);
    check_sequence(
        &cron(&["CRON_TZ=US/Pacific 33 33 2 * * * *"]),
        p(3, 11, 20, 0, 0),
        &[
            p(3, 12, 2, 33, 33),
            // March 13 has no 2:33:33.
            p(3, 14, 2, 33, 33),
        ],
    );
}

#[test]
fn pacific_fall_back_fires_twice() {
    let p = |d, h, m, s| local("US/Pacific", 2021, 11, d, h, m, s);
    check_sequence(
        &cron(&["CRON_TZ=US/Pacific 33 33,44 1 * * * *"]),
        p(7, 0, 15, 15),
        &[
            p(7, 1, 33, 33),
            p(7, 1, 44, 33),
            // November 7 has two 1:33:33s and 1:44:33s.
            p(7, 1, 33, 33) + HOUR,
            p(7, 1, 44, 33) + HOUR,
            p(8, 1, 33, 33),
        ],
    );
}

#[test]
fn new_york_hourly_across_both_switches() {
    let spec = ScheduleSpec {
        cron_string: vec!["0 * * * *".into()],
        timezone_name: "America/New_York".into(),
        ..Default::default()
    };
    // March 13 2022: 01:00 EST (06:00Z), then 03:00 EDT (07:00Z); 02:00 does not exist.
    assert_eq!(
        nominals(&spec, utc(2022, 3, 13, 5, 30, 0), 3),
        [utc(2022, 3, 13, 6, 0, 0), utc(2022, 3, 13, 7, 0, 0), utc(2022, 3, 13, 8, 0, 0)]
    );
    // November 6 2022: 01:00 EDT (05:00Z) and 01:00 EST (06:00Z) both fire, then 02:00 EST.
    assert_eq!(
        nominals(&spec, utc(2022, 11, 6, 3, 30, 0), 4),
        [utc(2022, 11, 6, 4, 0, 0), utc(2022, 11, 6, 5, 0, 0), utc(2022, 11, 6, 6, 0, 0), utc(2022, 11, 6, 7, 0, 0),]
    );
    // Daily at 02:30 local: the spring-forward day has none; 09:00 stays at 09:00 local.
    let spec = ScheduleSpec {
        cron_string: vec!["30 2 * * *".into()],
        timezone_name: "America/New_York".into(),
        ..Default::default()
    };
    assert_eq!(nominals(&spec, utc(2022, 3, 12, 12, 0, 0), 1), [local("America/New_York", 2022, 3, 14, 2, 30, 0)]);
    let spec = ScheduleSpec {
        cron_string: vec!["0 9 * * *".into()],
        timezone_name: "America/New_York".into(),
        ..Default::default()
    };
    assert_eq!(nominals(&spec, utc(2022, 3, 12, 0, 0, 0), 2), [utc(2022, 3, 12, 14, 0, 0), utc(2022, 3, 13, 13, 0, 0)]);
    assert_eq!(nominals(&spec, utc(2022, 11, 5, 0, 0, 0), 2), [utc(2022, 11, 5, 13, 0, 0), utc(2022, 11, 6, 14, 0, 0)]);
}

#[test]
fn new_york_every_fifteen_minutes_through_repeated_hour() {
    let spec = ScheduleSpec { cron_string: vec!["CRON_TZ=America/New_York */15 * * * *".into()], ..Default::default() };
    let times = compile(&spec).between(utc(2022, 11, 6, 4, 50, 0), utc(2022, 11, 6, 7, 10, 0), 100);
    let expected: Vec<i64> = (0..9).map(|i| utc(2022, 11, 6, 5, 0, 0) + i * 15 * MIN).collect();
    assert_eq!(times.iter().map(|t| t.nominal_ms).collect::<Vec<_>>(), expected);
}

#[test]
fn london_repeated_hour_edge() {
    let spec = ScheduleSpec {
        calendar: vec![CalendarSpec {
            second: "0".into(),
            minute: "1".into(),
            hour: "0".into(),
            day_of_month: "2".into(),
            month: "Jan".into(),
            day_of_week: "Sun".into(),
            ..Default::default()
        }],
        timezone_name: "Europe/London".into(),
        ..Default::default()
    };
    let c = compile(&spec);
    let want = local("Europe/London", 2005, 1, 2, 0, 1, 0);
    assert_eq!(c.next(local("Europe/London", 2004, 1, 1, 0, 0, 5)).unwrap().nominal_ms, want);
    assert_eq!(c.next(local("Europe/London", 2004, 10, 31, 1, 7, 3)).unwrap().nominal_ms, want);
}

#[test]
fn zone_with_midnight_transition() {
    // America/Asuncion moved clocks forward at 00:00 on 2022-10-02: that midnight never happened.
    let spec = ScheduleSpec {
        cron_string: vec!["@daily".into()],
        timezone_name: "America/Asuncion".into(),
        ..Default::default()
    };
    let times = nominals(&spec, local("America/Asuncion", 2022, 9, 30, 12, 0, 0), 3);
    assert_eq!(
        times,
        [
            local("America/Asuncion", 2022, 10, 1, 0, 0, 0),
            local("America/Asuncion", 2022, 10, 3, 0, 0, 0),
            local("America/Asuncion", 2022, 10, 4, 0, 0, 0),
        ]
    );
}

// ---------------------------------------------------------------- between and performance

#[test]
fn between_respects_bounds_and_limit() {
    let c = compile(&cron(&["@hourly"]));
    let all = c.between(utc(2022, 1, 1, 0, 0, 0), utc(2022, 1, 1, 5, 0, 0), 100);
    assert_eq!(
        all.iter().map(|t| t.nominal_ms).collect::<Vec<_>>(),
        (1..=5).map(|h| utc(2022, 1, 1, h, 0, 0)).collect::<Vec<_>>()
    );
    assert_eq!(c.between(utc(2022, 1, 1, 0, 0, 0), utc(2022, 1, 1, 5, 0, 0), 2).len(), 2);
    assert!(c.between(utc(2022, 1, 1, 0, 0, 0), utc(2022, 1, 1, 0, 59, 59), 10).is_empty());
    assert!(c.between(utc(2022, 1, 1, 0, 0, 0), utc(2022, 1, 1, 5, 0, 0), 0).is_empty());
}

#[test]
fn sparse_specs_are_fast() {
    for (spec, zone) in [
        ("@yearly", "America/New_York"),
        ("0 0 29 2 *", "Europe/Berlin"),
        ("0 0 13 * fri", "Australia/Lord_Howe"),
        ("0 30 2 1 1 * 2100", "UTC"),
    ] {
        let spec = ScheduleSpec { cron_string: vec![spec.into()], timezone_name: zone.into(), ..Default::default() };
        let c = compile(&spec);
        let started = Instant::now();
        let mut t = utc(2001, 1, 1, 0, 0, 0);
        for _ in 0..1000 {
            match c.next(t) {
                Some(n) => {
                    assert!(n.nominal_ms > t);
                    t = n.nominal_ms;
                }
                None => t = utc(2001, 1, 1, 0, 0, 0),
            }
        }
        assert!(started.elapsed().as_millis() < 2000, "{spec:?} took {:?}", started.elapsed());
    }
    // Dense: a per-second spec over a day in a DST zone.
    let c = compile(&ScheduleSpec {
        calendar: vec![CalendarSpec { second: "*".into(), minute: "*".into(), hour: "*".into(), ..Default::default() }],
        timezone_name: "America/New_York".into(),
        ..Default::default()
    });
    let started = Instant::now();
    let times = c.between(utc(2022, 11, 6, 4, 0, 0), utc(2022, 11, 6, 8, 0, 0), 20_000);
    assert_eq!(times.len(), 4 * 3600);
    assert!(times.windows(2).all(|w| w[1].nominal_ms - w[0].nominal_ms == SEC));
    assert!(started.elapsed().as_millis() < 5000, "took {:?}", started.elapsed());
    let _ = DAY;
}

#[test]
fn exclusion_covering_a_calendar_skips_whole_units() {
    let every_other = CalendarSpec { second: "*/2".into(), minute: "*".into(), hour: "*".into(), ..Default::default() };
    let spec = ScheduleSpec {
        calendar: vec![every_other.clone()],
        exclude_calendar: vec![every_other.clone()],
        timezone_name: "America/New_York".into(),
        ..Default::default()
    };
    let started = Instant::now();
    assert_eq!(compile(&spec).next(utc(2022, 3, 23, 12, 0, 0)), None);
    // Excluded for the rest of March (in New York): the first survivor is April 1st, 00:00:00.
    let spec = ScheduleSpec {
        calendar: vec![every_other.clone()],
        exclude_calendar: vec![CalendarSpec { month: "3".into(), ..every_other }],
        timezone_name: "America/New_York".into(),
        ..Default::default()
    };
    assert_eq!(
        nominals(&spec, utc(2022, 3, 13, 5, 0, 0), 2),
        [local("America/New_York", 2022, 4, 1, 0, 0, 0), local("America/New_York", 2022, 4, 1, 0, 0, 2),]
    );
    assert!(started.elapsed().as_secs() < 2, "took {:?}", started.elapsed());
}

#[test]
fn extreme_inputs_do_not_panic() {
    for zone in ["", "America/New_York"] {
        for (start, end) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (-10_000_000_000_000, 0), (0, -1)] {
            for jitter in [i64::MIN, -1, 0, i64::MAX] {
                let spec = ScheduleSpec {
                    cron_string: vec!["* * * * *".into(), "@every 1s".into()],
                    start_time: Some(Timestamp { seconds: start, nanos: 999_999_999 }),
                    end_time: Some(Timestamp { seconds: end, nanos: -1 }),
                    jitter: Some(Duration { seconds: jitter, nanos: 0 }),
                    timezone_name: zone.into(),
                    ..Default::default()
                };
                let c = compile(&spec);
                for after in [i64::MIN, -1, 0, i64::MAX] {
                    if let Some(t) = c.next(after) {
                        assert!(t.nominal_ms > after && t.actual_ms >= t.nominal_ms);
                    }
                    let _ = c.between(after, i64::MAX, 3);
                }
            }
        }
    }
}
