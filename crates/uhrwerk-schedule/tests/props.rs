//! Property tests: compiling arbitrary input never panics; `next` is strictly increasing,
//! monotonic and self-consistent; and `next` agrees with a brute-force scan of every minute (or
//! second) in zones with DST, half-hour DST and midnight transitions, with and without exclusions.

#![allow(deprecated)] // exclude_calendar

use chrono::{Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use prost_wkt_types::{Duration, Timestamp};
use temporalio_protos::temporal::api::schedule::v1::{
    CalendarSpec, IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec,
};
use uhrwerk_schedule::CompiledSpec;

const ZONES: [&str; 8] = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Asuncion",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Havana",
];

/// Instants (unix s) near DST transitions of the zones above, and a few ordinary ones.
const AROUND: [i64; 10] = [
    1_647_154_800, // 2022-03-13T07:00Z New York spring forward
    1_667_714_400, // 2022-11-06T06:00Z New York fall back
    1_648_342_800, // 2022-03-27T01:00Z London
    1_667_091_600, // 2022-10-30T01:00Z London
    1_648_911_600, // 2022-04-02T15:00Z Lord Howe (30 min)
    1_664_683_200, // 2022-10-02T04:00Z Asuncion (midnight)
    1_647_748_800, // 2022-03-20T04:00Z
    946_684_800,   // 2000-01-01
    4_102_444_800, // 2100-01-01
    1_700_000_000,
];

/// The case count, overridable with `SCHEDULE_PROPTEST_CASES` for longer runs.
fn cases(default: u32) -> u32 {
    std::env::var("SCHEDULE_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cronish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-zA-Z*/,\\- @#=_.]{0,40}",
        "\\PC{0,40}",
        "(CRON_TZ=|TZ=)?[A-Za-z/_]{0,20} ([0-9*/,\\-]{1,6} ){4,7}",
        "@every [0-9.]{0,4}(ns|us|ms|s|m|h|d|x)?(/[0-9.]{0,4}(s|m|h|d)?)?",
        Just("@hourly".to_string()),
    ]
}

fn any_range() -> impl Strategy<Value = Range> {
    (any::<i32>(), any::<i32>(), any::<i32>()).prop_map(|(start, end, step)| Range { start, end, step })
}

fn small_range(lo: i32, hi: i32) -> impl Strategy<Value = Range> {
    (lo..=hi, prop_oneof![Just(0), lo..=hi], 0..5i32).prop_map(|(start, end, step)| Range { start, end, step })
}

fn any_structured() -> impl Strategy<Value = StructuredCalendarSpec> {
    let ranges = || prop::collection::vec(prop_oneof![any_range(), small_range(-2, 70)], 0..3);
    (ranges(), ranges(), ranges(), ranges(), ranges(), ranges(), ranges()).prop_map(
        |(second, minute, hour, day_of_month, month, year, day_of_week)| StructuredCalendarSpec {
            second,
            minute,
            hour,
            day_of_month,
            month,
            year,
            day_of_week,
            comment: String::new(),
        },
    )
}

fn field(lo: u32, hi: u32, names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let value = move || (lo..=hi).prop_map(|v| v.to_string());
    let named = prop::sample::select(if names.is_empty() { vec!["*"] } else { names.to_vec() });
    prop_oneof![
        3 => Just("*".to_string()),
        2 => (1..=(hi - lo).max(1)).prop_map(|s| format!("*/{s}")),
        3 => value(),
        2 => (value(), value()).prop_map(|(a, b)| format!("{a},{b}")),
        2 => (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        1 => (lo..=hi, 1..=5u32).prop_map(|(a, s)| format!("{a}/{s}")),
        1 => named.prop_map(str::to_string),
    ]
}

const MONTHS: &[&str] = &["jan", "FEB", "march", "sep-dec"];
const DAYS: &[&str] = &["mon-fri", "sat,sun", "7", "tu", "thurs"];

/// A valid 5-field cron string and its zone.
fn valid_cron() -> impl Strategy<Value = (String, &'static str)> {
    (
        field(0, 59, &[]),
        field(0, 23, &[]),
        prop_oneof![3 => Just("*".to_string()), 1 => field(1, 31, &[])],
        prop_oneof![3 => Just("*".to_string()), 1 => field(1, 12, MONTHS)],
        prop_oneof![3 => Just("*".to_string()), 1 => field(0, 7, DAYS)],
        prop::sample::select(ZONES.to_vec()),
    )
        .prop_map(|(mi, h, dom, mo, dow, zone)| (format!("{mi} {h} {dom} {mo} {dow}"), zone))
}

fn start_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        946_684_800i64..4_102_444_800,
        (prop::sample::select(AROUND.to_vec()), -100_000i64..100_000).prop_map(|(a, d)| a + d),
    ]
}

/// The set of values a list of ranges allows (Temporal's defaults for end and step).
fn values(ranges: &[Range]) -> Vec<i32> {
    let mut out = Vec::new();
    for r in ranges {
        let end = r.end.max(r.start);
        let step = r.step.max(1);
        let mut v = r.start;
        while v <= end {
            out.push(v);
            v += step;
        }
    }
    out
}

fn reference_matches(cal: &StructuredCalendarSpec, tz: Tz, t: i64) -> bool {
    let l = Utc.timestamp_opt(t, 0).unwrap().with_timezone(&tz);
    let has = |ranges: &[Range], v: u32| values(ranges).contains(&(v as i32));
    (cal.year.is_empty() || has(&cal.year, l.year() as u32))
        && has(&cal.month, l.month())
        && has(&cal.day_of_month, l.day())
        && has(&cal.day_of_week, l.weekday().num_days_from_sunday())
        && has(&cal.hour, l.hour())
        && has(&cal.minute, l.minute())
        && has(&cal.second, l.second())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn compiling_cron_strings_never_panics(s in cronish(), after in any::<i64>()) {
        let spec = ScheduleSpec { cron_string: vec![s], ..Default::default() };
        if let Ok(c) = CompiledSpec::compile(&spec) {
            if let Some(n) = c.next(after) {
                prop_assert!(n.nominal_ms > after);
            }
            let _ = c.canonical();
        }
    }

    #[test]
    fn compiling_calendar_strings_never_panics(
        fields in prop::collection::vec("[0-9a-zA-Z*/,\\- ]{0,12}", 7),
        zone in prop::sample::select(ZONES.to_vec()),
        after in any::<i64>(),
    ) {
        let cal = CalendarSpec {
            second: fields[0].clone(),
            minute: fields[1].clone(),
            hour: fields[2].clone(),
            day_of_month: fields[3].clone(),
            month: fields[4].clone(),
            year: fields[5].clone(),
            day_of_week: fields[6].clone(),
            comment: String::new(),
        };
        let spec = ScheduleSpec { calendar: vec![cal.clone()], exclude_calendar: vec![cal], timezone_name: zone.into(), ..Default::default() };
        if let Ok(c) = CompiledSpec::compile(&spec) {
            prop_assert_eq!(c.next(after), None); // everything is excluded
        }
    }

    #[test]
    fn arbitrary_structured_and_intervals_never_panic(
        cal in any_structured(),
        exclude in any_structured(),
        every in any::<i64>(),
        phase in any::<i64>(),
        nanos in any::<i32>(),
        jitter in any::<i64>(),
        bounds in (any::<i64>(), any::<i64>()),
        after in prop_oneof![start_time(), any::<i64>().prop_map(|t| t / 1000)],
        zone in prop::sample::select(ZONES.to_vec()),
    ) {
        let spec = ScheduleSpec {
            structured_calendar: vec![cal],
            exclude_structured_calendar: vec![exclude],
            interval: vec![IntervalSpec {
                interval: Some(Duration { seconds: every % 10_000_000, nanos }),
                phase: Some(Duration { seconds: phase % 10_000, nanos: 0 }),
            }],
            jitter: Some(Duration { seconds: jitter, nanos: 0 }),
            start_time: Some(Timestamp { seconds: bounds.0, nanos: 0 }),
            end_time: Some(Timestamp { seconds: bounds.1, nanos: 0 }),
            timezone_name: zone.into(),
            ..Default::default()
        };
        if let Ok(c) = CompiledSpec::compile(&spec) {
            for t in c.between(after * 1000, (after * 1000).saturating_add(86_400_000), 5) {
                prop_assert!(t.nominal_ms > after * 1000);
                prop_assert!(t.actual_ms >= t.nominal_ms);
            }
        }
    }

    #[test]
    fn next_is_strictly_later_and_monotonic((cron, zone) in valid_cron(), t in start_time(), jitter in 0i64..7200) {
        let spec = ScheduleSpec {
            cron_string: vec![cron.clone()],
            timezone_name: zone.into(),
            jitter: Some(Duration { seconds: jitter, nanos: 0 }),
            ..Default::default()
        };
        let c = CompiledSpec::compile(&spec).unwrap();
        let after = t * 1000;
        let Some(first) = c.next(after) else { return Ok(()) };
        prop_assert!(first.nominal_ms > after, "{} {}: {:?} after {}", cron, zone, first, after);
        prop_assert!(first.actual_ms >= first.nominal_ms);
        let mut prev = first;
        for _ in 0..5 {
            let Some(n) = c.next(prev.nominal_ms) else { break };
            prop_assert!(n.nominal_ms > prev.nominal_ms);
            prop_assert!(prev.actual_ms < n.nominal_ms, "jitter reaches the next time");
            // Searching from the actual time finds the same following time.
            prop_assert_eq!(c.next(prev.actual_ms), Some(n));
            prev = n;
        }
        // Any start between `after` and the first time finds the first time.
        for k in 1..8 {
            let mid = after + (first.nominal_ms - after) * k / 8;
            prop_assert_eq!(c.next(mid), Some(first));
        }
        // Monotonic in the start.
        prop_assert!(c.next(first.nominal_ms + 1).is_none_or(|n| n.nominal_ms > first.nominal_ms));
    }
}

/// The first instant in `(t, t + window]`, stepping by `step` seconds from a multiple of `step`,
/// matching `cal` and not `exclude`, in zone `tz`.
fn brute_force(
    cal: &StructuredCalendarSpec,
    exclude: Option<&StructuredCalendarSpec>,
    tz: Tz,
    t: i64,
    window: i64,
    step: i64,
) -> Option<i64> {
    let mut m = (t.div_euclid(step) + 1) * step;
    while m <= t + window && m < 4_133_980_800 {
        if reference_matches(cal, tz, m) && !exclude.is_some_and(|e| reference_matches(e, tz, m)) {
            return Some(m);
        }
        m += step;
    }
    None
}

fn check_against_brute_force(spec: &ScheduleSpec, t: i64, window: i64, step: i64) -> Result<(), TestCaseError> {
    let c = CompiledSpec::compile(spec).unwrap();
    let canonical = c.canonical();
    let cal = &canonical.structured_calendar[0];
    let exclude = canonical.exclude_structured_calendar.first();
    let tz: Tz = if spec.timezone_name.is_empty() { Tz::UTC } else { spec.timezone_name.parse().unwrap() };
    let got = c.next(t * 1000).map(|n| n.nominal_ms / 1000);
    match brute_force(cal, exclude, tz, t, window, step) {
        Some(w) => prop_assert_eq!(got, Some(w), "{:?} after {}", spec, t),
        None => prop_assert!(got.is_none_or(|g| g > t + window), "{:?} after {}: {:?}", spec, t, got),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn next_agrees_with_brute_force((cron, zone) in valid_cron(), t in start_time()) {
        let spec = ScheduleSpec { cron_string: vec![cron], timezone_name: zone.into(), ..Default::default() };
        check_against_brute_force(&spec, t, 2 * 86_400, 60)?;
    }

    #[test]
    fn next_with_exclusion_agrees_with_brute_force(
        (cron, zone) in valid_cron(),
        (exclude, _) in valid_cron(),
        t in start_time(),
    ) {
        let spec = ScheduleSpec {
            cron_string: vec![cron],
            exclude_calendar: vec![CalendarSpec::default()], // placeholder, replaced below
            timezone_name: zone.into(),
            ..Default::default()
        };
        // The exclusion as a 7-field cron covering whole minutes (every second).
        let fields: Vec<&str> = exclude.split(' ').collect();
        let exclude = CalendarSpec {
            second: "*".into(),
            minute: fields[0].into(),
            hour: fields[1].into(),
            day_of_month: fields[2].into(),
            month: fields[3].into(),
            day_of_week: fields[4].into(),
            ..Default::default()
        };
        let spec = ScheduleSpec { exclude_calendar: vec![exclude], ..spec };
        check_against_brute_force(&spec, t, 2 * 86_400, 60)?;
    }

    #[test]
    fn seconds_agree_with_brute_force(
        second in field(0, 59, &[]),
        minute in field(0, 59, &[]),
        hour in prop_oneof![Just("*".to_string()), field(0, 23, &[])],
        zone in prop::sample::select(ZONES.to_vec()),
        exclude_second in prop::option::of(field(0, 59, &[])),
        t in (prop::sample::select(AROUND.to_vec()), -10_000i64..10_000).prop_map(|(a, d)| a + d),
    ) {
        let cal = CalendarSpec { second, minute, hour: hour.clone(), ..Default::default() };
        let exclude = exclude_second
            .map(|s| CalendarSpec { second: s, minute: "*".into(), hour: "*".into(), ..Default::default() });
        let spec = ScheduleSpec {
            calendar: vec![cal],
            exclude_calendar: exclude.into_iter().collect(),
            timezone_name: zone.into(),
            ..Default::default()
        };
        check_against_brute_force(&spec, t, 3 * 3600, 1)?;
    }
}
