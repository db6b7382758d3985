//! `CronSchedule` (a workflow's `cron_schedule`) against an independent model of robfig/cron v3,
//! the parser behind Temporal's `common/backoff/cron.go`: bit sets per field with robfig's star
//! bit, day-of-month OR day-of-week when both are restricted, and a scan of every minute.

use chrono::{Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use uhrwerk_schedule::CronSchedule;

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const STAR: u64 = 1 << 63;

/// Robfig's `getField`: the bits a field sets, plus the star bit.
fn robfig_field(field: &str, min: u32, max: u32, names: &[&str]) -> u64 {
    let value = |s: &str| -> u32 {
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map_or_else(|| s.parse().unwrap(), |i| i as u32 + if names.len() == 12 { 1 } else { 0 })
    };
    let mut bits = 0;
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s.parse::<u32>().unwrap())),
            None => (item, None),
        };
        let (mut start, mut end, mut extra) = (min, max, 0);
        if range == "*" || range == "?" {
            extra = STAR;
        } else if let Some((a, b)) = range.split_once('-') {
            (start, end) = (value(a), value(b));
        } else {
            start = value(range);
            end = if step.is_some() { max } else { start };
        }
        if step.is_some_and(|s| s > 1) {
            extra = 0;
        }
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
        bits |= extra;
    }
    bits
}

/// The first minute after `after` (unix s) that robfig's `SpecSchedule` matches, within `window`.
fn robfig_next(cron: &str, tz: Tz, after: i64, window: i64) -> Option<i64> {
    let f: Vec<&str> = cron.split(' ').collect();
    let (minute, hour) = (robfig_field(f[0], 0, 59, &[]), robfig_field(f[1], 0, 23, &[]));
    let (dom, month, dow) =
        (robfig_field(f[2], 1, 31, &[]), robfig_field(f[3], 1, 12, &MONTHS), robfig_field(f[4], 0, 6, &DAYS));
    let has = |bits: u64, v: u32| bits & (1 << v) != 0;
    let mut t = (after.div_euclid(60) + 1) * 60;
    while t <= after + window {
        let l = Utc.timestamp_opt(t, 0).unwrap().with_timezone(&tz);
        let (dom_ok, dow_ok) = (has(dom, l.day()), has(dow, l.weekday().num_days_from_sunday()));
        let day_ok = if dom & STAR != 0 || dow & STAR != 0 { dom_ok && dow_ok } else { dom_ok || dow_ok };
        if has(month, l.month()) && day_ok && has(hour, l.hour()) && has(minute, l.minute()) {
            return Some(t);
        }
        t += 60;
    }
    None
}

/// A field in robfig's syntax.
fn field(lo: u32, hi: u32, names: &'static [&'static str], question: bool) -> impl Strategy<Value = String> {
    let value = move || (lo..=hi).prop_map(|v| v.to_string());
    let named = prop::sample::select(if names.is_empty() { vec!["*"] } else { names.to_vec() });
    prop_oneof![
        3 => Just("*".to_string()),
        1 => Just(if question { "?" } else { "*" }.to_string()),
        2 => (1..=(hi - lo).max(1)).prop_map(|s| format!("*/{s}")),
        3 => value(),
        2 => (value(), value()).prop_map(|(a, b)| format!("{a},{b}")),
        2 => (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        1 => (lo..=hi, lo..=hi, 1..=5u32).prop_map(|(a, b, s)| format!("{}-{}/{s}", a.min(b), a.max(b))),
        1 => (lo..=hi, 1..=5u32).prop_map(|(a, s)| format!("{a}/{s}")),
        1 => named.prop_map(str::to_string),
    ]
}

fn cron() -> impl Strategy<Value = String> {
    (
        field(0, 59, &[], false),
        field(0, 23, &[], false),
        field(1, 31, &[], true),
        prop_oneof![3 => Just("*".to_string()), 1 => field(1, 12, &MONTHS, false)],
        field(0, 6, &DAYS, true),
    )
        .prop_map(|(mi, h, dom, mo, dow)| format!("{mi} {h} {dom} {mo} {dow}"))
}

/// The case count, overridable with `SCHEDULE_PROPTEST_CASES` for longer runs.
fn cases(default: u32) -> u32 {
    std::env::var("SCHEDULE_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn workflow_cron_agrees_with_robfig(
        cron in cron(),
        zone in prop::sample::select(vec!["UTC", "America/New_York"]),
        t in 946_684_800i64..4_000_000_000,
    ) {
        let tz: Tz = zone.parse().unwrap();
        let text = if zone == "UTC" { cron.clone() } else { format!("CRON_TZ={zone} {cron}") };
        let schedule = CronSchedule::parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let window = 8 * 86_400;
        let got = schedule.next(t * 1000 + 250).map(|ms| ms / 1000);
        match robfig_next(&cron, tz, t, window) {
            Some(want) => prop_assert_eq!(got, Some(want), "{} after {}", text, t),
            None => prop_assert!(got.is_none_or(|g| g > t + window), "{} after {}: {:?}", text, t, got),
        }
    }
}
