//! Text forms of schedule specs: `CalendarSpec` strings ("*", "1,5", "1-5/2", month and weekday
//! names) and cron strings (5–7 fields, `@daily`-style descriptors, `@every`, `CRON_TZ=`/`TZ=`,
//! `#` comments), turned into structured calendars and intervals the way Temporal does it.

use crate::calendar::{MAX_CALENDAR_YEAR, MIN_CALENDAR_YEAR};
use crate::duration::{duration_from_nanos, parse_duration, quote};
use crate::pb::{CalendarSpec, IntervalSpec, Range, StructuredCalendarSpec};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Int,
    /// Like `Int`, but "*" is the empty list (all years).
    Year,
    /// Also accepts month names, by a prefix of at least three letters.
    Month,
    /// Also accepts weekday names, by a prefix of at least two letters; 7 is Sunday.
    Dow,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

/// The result of parsing one cron string.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cron {
    pub calendar: Option<StructuredCalendarSpec>,
    pub interval: Option<IntervalSpec>,
    /// The `CRON_TZ=`/`TZ=` zone name ("" when absent; always "" for `@every`).
    pub timezone: String,
}

/// Go's `strconv.Atoi` (optional sign, ASCII digits, 64-bit range) with its error text.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", quote(s)));
    }
    s.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", quote(s)))
}

/// One value: an integer, or a month/weekday name in those modes; `Err` when unparsable or
/// outside `min..=max`.
fn parse_value(s: &str, min: i64, max: i64, mode: Mode) -> Result<i64, ()> {
    let named = match mode {
        Mode::Month if s.len() >= 3 => {
            let lower = s.to_lowercase();
            MONTHS.iter().position(|m| m.starts_with(&lower)).map(|i| i as i64 + 1)
        }
        Mode::Dow if s.len() >= 2 => {
            let lower = s.to_lowercase();
            WEEKDAYS.iter().position(|d| d.starts_with(&lower)).map(|i| i as i64)
        }
        _ => None,
    };
    let v = match named {
        Some(v) => v,
        None => atoi(s).map_err(|_| ())?,
    };
    if v < min || v > max { Err(()) } else { Ok(v) }
}

fn range(start: i64, end: i64, step: i64) -> Range {
    // Values are bounded by the field's max (<= 2100), so they fit in i32.
    Range { start: start as i32, end: end as i32, step: step as i32 }
}

/// Parses one field of a `CalendarSpec` into ranges, in Temporal's canonical shape (end 0 for a
/// single value, step 0 for step 1, weekday 7 folded into 0).
fn make_range(s: &str, field: &str, default: &str, min: i64, max: i64, mode: Mode) -> Result<Vec<Range>, String> {
    let mut s = s.trim();
    if s.is_empty() {
        s = default;
    }
    if s == "*" && mode == Mode::Year {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    for part in s.split(',') {
        let mut part = part;
        let mut step = 1;
        let mut has_step = false;
        match part.matches('/').count() {
            0 => {}
            1 => {
                let (value, step_str) = part.split_once('/').unwrap_or((part, ""));
                if step_str.is_empty() {
                    return Err(format!("{field} missing step value"));
                }
                step = atoi(step_str)?;
                if step < 1 {
                    return Err(format!("{field} has invalid Step"));
                }
                has_step = true;
                part = value;
            }
            _ => return Err(format!("{field} has too many slashes")),
        }
        let (mut start, mut end) = (min, max);
        if part != "*" {
            if part.contains('-') {
                let Some((a, b)) = part.split_once('-').filter(|(_, b)| !b.contains('-')) else {
                    return Err(format!("{field} has too many dashes"));
                };
                start = parse_value(a, min, max, mode)
                    .map_err(|()| format!("{field} Start is not in range [{min}-{max}]"))?;
                end = parse_value(b, start, max, mode)
                    .map_err(|()| format!("{field} End is before Start or not in range [{min}-{max}]"))?;
            } else {
                start =
                    parse_value(part, min, max, mode).map_err(|()| format!("{field} is not in range [{min}-{max}]"))?;
                if !has_step {
                    end = start;
                }
            }
        }
        // Sunday as 7: fold into 0, adding a separate {0} range when 7 itself is matched and
        // the range cannot simply be shortened to end at 6.
        if mode == Mode::Dow && end == 7 {
            if (7 - start) % step == 0 && (step > 1 || start > 1) {
                ranges.push(range(0, 0, 0));
                if start == 7 {
                    continue;
                }
            }
            end = 6;
        }
        if start == end {
            end = 0;
        }
        if step == 1 {
            step = 0;
        }
        ranges.push(range(start, end, step));
    }
    Ok(ranges)
}

/// A `CalendarSpec` (string fields) as a `StructuredCalendarSpec`; all field errors joined.
pub(crate) fn calendar_to_structured(cal: &CalendarSpec) -> Result<StructuredCalendarSpec, String> {
    let mut errs: Vec<String> = Vec::new();
    let mut field = |s: &str, name: &str, default: &str, min: i64, max: i64, mode: Mode| {
        make_range(s, name, default, min, max, mode).unwrap_or_else(|e| {
            errs.push(e);
            Vec::new()
        })
    };
    let second = field(&cal.second, "Second", "0", 0, 59, Mode::Int);
    let minute = field(&cal.minute, "Minute", "0", 0, 59, Mode::Int);
    let hour = field(&cal.hour, "Hour", "0", 0, 23, Mode::Int);
    let day_of_week = field(&cal.day_of_week, "DayOfWeek", "*", 0, 7, Mode::Dow);
    let day_of_month = field(&cal.day_of_month, "DayOfMonth", "*", 1, 31, Mode::Int);
    let month = field(&cal.month, "Month", "*", 1, 12, Mode::Month);
    let year = field(&cal.year, "Year", "*", MIN_CALENDAR_YEAR, MAX_CALENDAR_YEAR, Mode::Year);
    if !errs.is_empty() {
        return Err(errs.join(", "));
    }
    Ok(StructuredCalendarSpec {
        second,
        minute,
        hour,
        day_of_month,
        month,
        year,
        day_of_week,
        comment: cal.comment.clone(),
    })
}

pub(crate) fn predefined(c: &str) -> &str {
    match c {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => c,
    }
}

/// `@every <duration>[/<phase>]` as an interval (not yet validated).
fn parse_every(c: &str) -> Result<IntervalSpec, String> {
    let Some((_, rest)) = c.split_once(' ') else {
        return Err("CronString does not have interval after @every".into());
    };
    let (interval, phase) = rest.split_once('/').unwrap_or((rest, ""));
    let interval = duration_from_nanos(parse_duration(interval)?);
    if phase.is_empty() {
        return Ok(IntervalSpec { interval: Some(interval), phase: None });
    }
    let phase = duration_from_nanos(parse_duration(phase)?);
    Ok(IntervalSpec { interval: Some(interval), phase: Some(phase) })
}

/// Parses a cron string as Temporal does:
/// `[CRON_TZ=zone |TZ=zone ]<fields or @descriptor or @every d[/p]>[ # comment]` where fields are
/// `min hour dom month dow`, `min hour dom month dow year`, or `sec min hour dom month dow year`.
pub(crate) fn parse_cron(c: &str) -> Result<Cron, String> {
    let mut c = c.trim();
    let mut timezone = String::new();
    if c.starts_with("TZ=") || c.starts_with("CRON_TZ=") {
        let Some((tz, rest)) = c.split_once(' ') else {
            return Err("CronString has time zone but missing fields".into());
        };
        timezone = tz.split_once('=').map(|(_, z)| z).unwrap_or("").to_string();
        c = rest;
    }
    let (body, comment) = c.split_once('#').unwrap_or((c, ""));
    let body = body.trim();
    let comment = comment.trim();

    if body.starts_with("@every") {
        let interval = parse_every(body)?;
        return Ok(Cron { calendar: None, interval: Some(interval), timezone: String::new() });
    }

    let body = predefined(body);
    let fields: Vec<&str> = body.split_whitespace().take(8).collect();
    let mut cal = CalendarSpec { comment: comment.to_string(), ..Default::default() };
    let owned = |s: &&str| s.to_string();
    match fields.as_slice() {
        [mi, h, dom, mo, dow] => {
            (cal.minute, cal.hour, cal.day_of_month, cal.month, cal.day_of_week) =
                (owned(mi), owned(h), owned(dom), owned(mo), owned(dow));
        }
        [mi, h, dom, mo, dow, y] => {
            (cal.minute, cal.hour, cal.day_of_month, cal.month, cal.day_of_week, cal.year) =
                (owned(mi), owned(h), owned(dom), owned(mo), owned(dow), owned(y));
        }
        [s, mi, h, dom, mo, dow, y] => {
            (cal.second, cal.minute, cal.hour, cal.day_of_month, cal.month, cal.day_of_week, cal.year) =
                (owned(s), owned(mi), owned(h), owned(dom), owned(mo), owned(dow), owned(y));
        }
        _ => return Err("CronString does not have 5-7 fields".into()),
    }
    let calendar = calendar_to_structured(&cal)?;
    Ok(Cron { calendar: Some(calendar), interval: None, timezone })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::Duration;

    fn r(start: i32, end: i32, step: i32) -> Range {
        Range { start, end, step }
    }

    fn ok(s: &str, min: i64, max: i64, mode: Mode) -> Vec<Range> {
        make_range(s, "Test", "", min, max, mode).unwrap()
    }

    fn err(s: &str, min: i64, max: i64, mode: Mode) -> String {
        make_range(s, "Test", "", min, max, mode).unwrap_err()
    }

    #[test]
    fn ranges_like_temporal() {
        assert_eq!(ok("13", 0, 59, Mode::Int), [r(13, 0, 0)]);
        assert_eq!(err("133", 0, 59, Mode::Int), "Test is not in range [0-59]");
        assert_eq!(ok("Sept", 1, 12, Mode::Month), [r(9, 0, 0)]);
        assert_eq!(ok("13,18,44", 0, 59, Mode::Int), [r(13, 0, 0), r(18, 0, 0), r(44, 0, 0)]);
        assert_eq!(err("13,18,44,", 0, 59, Mode::Int), "Test is not in range [0-59]");
        assert_eq!(ok("13-18", 0, 59, Mode::Int), [r(13, 18, 0)]);
        assert_eq!(err("18-13", 0, 59, Mode::Int), "Test End is before Start or not in range [0-59]");
        assert_eq!(ok("2-5,7-9,11", 0, 59, Mode::Int), [r(2, 5, 0), r(7, 9, 0), r(11, 0, 0)]);
        assert_eq!(ok("*", 5, 9, Mode::Int), [r(5, 9, 0)]);
        assert_eq!(ok("*/3", 5, 9, Mode::Int), [r(5, 9, 3)]);
        assert_eq!(ok("2/3", 0, 10, Mode::Int), [r(2, 10, 3)]);
        assert_eq!(err("2/3/5", 0, 10, Mode::Int), "Test has too many slashes");
        assert_eq!(err("2/", 0, 10, Mode::Int), "Test missing step value");
        assert_eq!(err("2/0", 0, 10, Mode::Int), "Test has invalid Step");
        assert_eq!(err("2/x", 0, 10, Mode::Int), "strconv.Atoi: parsing \"x\": invalid syntax");
        assert_eq!(ok("2-6/4,7-8", 0, 10, Mode::Int), [r(2, 6, 4), r(7, 8, 0)]);
        assert_eq!(ok("mon-Friday", 0, 7, Mode::Dow), [r(1, 5, 0)]);
        assert_eq!(err("Fri-Tues", 0, 7, Mode::Dow), "Test End is before Start or not in range [0-7]");
        assert_eq!(err("1-5-7", 0, 7, Mode::Dow), "Test has too many dashes");
        assert_eq!(err("monday-", 0, 7, Mode::Dow), "Test End is before Start or not in range [0-7]");
        assert_eq!(err("-3", 0, 7, Mode::Dow), "Test Start is not in range [0-7]");
        assert_eq!(ok("*", 2000, 2100, Mode::Year), []);
        assert_eq!(
            ok("2020-2022,2024,2026/3", 2000, 2100, Mode::Year),
            [r(2020, 2022, 0), r(2024, 0, 0), r(2026, 2100, 3)]
        );
    }

    #[test]
    fn sunday_folding() {
        assert_eq!(ok("*", 0, 7, Mode::Dow), [r(0, 6, 0)]);
        assert_eq!(ok("7", 0, 7, Mode::Dow), [r(0, 0, 0)]);
        assert_eq!(ok("6,7", 0, 7, Mode::Dow), [r(6, 0, 0), r(0, 0, 0)]);
        assert_eq!(ok("0-7", 0, 7, Mode::Dow), [r(0, 6, 0)]);
        assert_eq!(ok("3-7", 0, 7, Mode::Dow), [r(0, 0, 0), r(3, 6, 0)]);
        assert_eq!(ok("3-7/3", 0, 7, Mode::Dow), [r(3, 6, 3)]);
        assert_eq!(ok("1-7/2", 0, 7, Mode::Dow), [r(0, 0, 0), r(1, 6, 2)]);
        assert_eq!(ok("0/7", 0, 7, Mode::Dow), [r(0, 0, 0), r(0, 6, 7)]);
        assert_eq!(ok("sun", 0, 7, Mode::Dow), [r(0, 0, 0)]);
        assert_eq!(ok("wed-thurs", 0, 7, Mode::Dow), [r(3, 4, 0)]);
    }

    #[test]
    fn cron_strings() {
        let c = parse_cron("5,9 */2 * * *").unwrap();
        assert_eq!(
            c.calendar,
            Some(StructuredCalendarSpec {
                second: vec![r(0, 0, 0)],
                minute: vec![r(5, 0, 0), r(9, 0, 0)],
                hour: vec![r(0, 23, 2)],
                day_of_month: vec![r(1, 31, 0)],
                month: vec![r(1, 12, 0)],
                day_of_week: vec![r(0, 6, 0)],
                ..Default::default()
            })
        );
        assert_eq!(c.timezone, "");

        assert!(parse_cron("0 1 2 3 4 1999").unwrap_err().contains("Year is not in range"));

        let c = parse_cron("CRON_TZ=US/Pacific 55 55,57 5 2/2 * wed-thurs *  # explanation").unwrap();
        assert_eq!(
            c.calendar,
            Some(StructuredCalendarSpec {
                second: vec![r(55, 0, 0)],
                minute: vec![r(55, 0, 0), r(57, 0, 0)],
                hour: vec![r(5, 0, 0)],
                day_of_month: vec![r(2, 31, 2)],
                month: vec![r(1, 12, 0)],
                day_of_week: vec![r(3, 4, 0)],
                year: vec![],
                comment: "explanation".into(),
            })
        );
        assert_eq!(c.timezone, "US/Pacific");

        let c = parse_cron("@monthly").unwrap();
        let cal = c.calendar.unwrap();
        assert_eq!(cal.day_of_month, [r(1, 0, 0)]);
        assert_eq!(cal.hour, [r(0, 0, 0)]);

        let c = parse_cron("@every 5h/45m").unwrap();
        assert_eq!(c.calendar, None);
        assert_eq!(
            c.interval,
            Some(IntervalSpec {
                interval: Some(Duration { seconds: 5 * 3600, nanos: 0 }),
                phase: Some(Duration { seconds: 45 * 60, nanos: 0 }),
            })
        );
        let c = parse_cron("@every 5d").unwrap();
        assert_eq!(c.interval.unwrap().interval, Some(Duration { seconds: 5 * 86400, nanos: 0 }));

        assert_eq!(parse_cron("@every").unwrap_err(), "CronString does not have interval after @every");
        assert_eq!(parse_cron("CRON_TZ=UTC").unwrap_err(), "CronString has time zone but missing fields");
        assert_eq!(parse_cron("1 2 3").unwrap_err(), "CronString does not have 5-7 fields");
        assert_eq!(parse_cron("1 2 3 4 5 6 7 8").unwrap_err(), "CronString does not have 5-7 fields");
        assert_eq!(parse_cron("@often").unwrap_err(), "CronString does not have 5-7 fields");
        assert_eq!(parse_cron("99 * * * *").unwrap_err(), "Minute is not in range [0-59]");
        assert_eq!(
            parse_cron("99 25 * * *").unwrap_err(),
            "Minute is not in range [0-59], Hour is not in range [0-23]"
        );
    }
}
