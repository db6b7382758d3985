//! Value conversions shared by the query parser and payload codec: datetimes, durations and workflow statuses.

use chrono::{DateTime, Datelike, Timelike};
use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus;

/// Parses an RFC3339 / RFC3339Nano timestamp ("2024-01-01T00:00:00Z",
/// "2024-01-01T00:00:00.123456789+02:00") into unix nanoseconds.
/// `None` when malformed or outside the range of `i64` nanoseconds (years 1677..2262).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let dt = DateTime::parse_from_rfc3339(s).ok()?;
    dt.timestamp_nanos_opt()
}

/// Formats unix nanoseconds the way Go's `time.RFC3339Nano` does in UTC:
/// "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.12Z" (trailing zeros of the fraction dropped).
pub fn format_datetime(unix_nanos: i64) -> String {
    let dt = DateTime::from_timestamp_nanos(unix_nanos);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = dt.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses an ExecutionDuration query value into nanoseconds, accepting what Temporal accepts:
/// an integer of nanoseconds ("1000"), a Go duration with Temporal's extra `d` unit
/// ("1h30m", "100ms", "1.5s", "-2h", "3d"), or "HH:MM:SS" ("01:30:00").
pub fn parse_duration(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    parse_go_duration(s).or_else(|| parse_hhmmss(s))
}

const NANOS_PER_UNIT: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Go's `time.ParseDuration` grammar plus `d` for days.
fn parse_go_duration(s: &str) -> Option<i64> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let limit: u128 = if negative { 1u128 << 63 } else { (1u128 << 63) - 1 };
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        let (frac_digits, after_num) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let unit_len = after_num.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after_num.len());
        let (unit, after_unit) = after_num.split_at(unit_len);
        let &(_, scale) = NANOS_PER_UNIT.iter().find(|(u, _)| *u == unit)?;

        let mut whole: u128 = 0;
        for d in int_digits.bytes() {
            whole = whole.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
            if whole > limit {
                return None;
            }
        }
        let mut part = whole.checked_mul(scale)?;
        // Fractional part: keep at most 18 digits, more cannot change the nanosecond result.
        let mut frac: u128 = 0;
        let mut denom: u128 = 1;
        for d in frac_digits.bytes().take(18) {
            frac = frac * 10 + u128::from(d - b'0');
            denom *= 10;
        }
        part = part.checked_add(frac * scale / denom)?;
        total = total.checked_add(part)?;
        if total > limit {
            return None;
        }
        rest = after_unit;
    }
    let total = i128::try_from(total).ok()?;
    i64::try_from(if negative { -total } else { total }).ok()
}

/// Temporal's "hours:minutes:seconds" form; minutes and seconds must be 0..=59.
fn parse_hhmmss(s: &str) -> Option<i64> {
    let mut parts = s.split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let num = |p: &str| -> Option<i64> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<i64>().ok()
    };
    let (h, m, sec) = (num(h)?, num(m)?, num(sec)?);
    if m > 59 || sec > 59 {
        return None;
    }
    h.checked_mul(3_600)?.checked_add(m * 60 + sec)?.checked_mul(1_000_000_000)
}

/// Short status names accepted in queries, with their `WorkflowExecutionStatus` values.
const STATUS_NAMES: &[(&str, WorkflowExecutionStatus)] = &[
    ("Unspecified", WorkflowExecutionStatus::Unspecified),
    ("Running", WorkflowExecutionStatus::Running),
    ("Completed", WorkflowExecutionStatus::Completed),
    ("Failed", WorkflowExecutionStatus::Failed),
    ("Canceled", WorkflowExecutionStatus::Canceled),
    ("Terminated", WorkflowExecutionStatus::Terminated),
    ("ContinuedAsNew", WorkflowExecutionStatus::ContinuedAsNew),
    ("TimedOut", WorkflowExecutionStatus::TimedOut),
    ("Paused", WorkflowExecutionStatus::Paused),
];

/// The `WorkflowExecutionStatus` value of a status name, spelled exactly: "Running" or the
/// proto spelling "WORKFLOW_EXECUTION_STATUS_RUNNING".
pub fn execution_status_from_name(s: &str) -> Option<i32> {
    // Exact names only, as Temporal: 'running' is not a status.
    if let Some((_, v)) = STATUS_NAMES.iter().find(|(n, _)| *n == s) {
        return Some(*v as i32);
    }
    WorkflowExecutionStatus::from_str_name(s).map(|v| v as i32)
}

/// The short name Temporal shows for a `WorkflowExecutionStatus` value ("Running", ...).
pub fn execution_status_name(value: i32) -> Option<&'static str> {
    STATUS_NAMES.iter().find(|(_, v)| *v as i32 == value).map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn datetimes_parse_and_format_like_go() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("2024-01-01T00:00:00Z"), Some(1_704_067_200 * S));
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00.123456789+02:00"),
            Some((1_704_067_200 - 7_200) * S + 123_456_789)
        );
        assert_eq!(parse_datetime("notatime"), None);
        assert_eq!(parse_datetime("2024-01-01"), None);
        assert_eq!(parse_datetime("9999-01-01T00:00:00Z"), None);
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_datetime(1_704_067_200 * S), "2024-01-01T00:00:00Z");
        assert_eq!(format_datetime(1_704_067_200 * S + 120_000_000), "2024-01-01T00:00:00.12Z");
        assert_eq!(format_datetime(-1), "1969-12-31T23:59:59.999999999Z");
        for ns in [i64::MIN, i64::MAX, 1, -S, 1_704_067_200 * S + 5] {
            assert_eq!(parse_datetime(&format_datetime(ns)), Some(ns));
        }
    }

    #[test]
    fn durations_in_every_form() {
        assert_eq!(parse_duration("1000"), Some(1000));
        assert_eq!(parse_duration("-5"), Some(-5));
        assert_eq!(parse_duration("1h"), Some(3600 * S));
        assert_eq!(parse_duration("30m"), Some(1800 * S));
        assert_eq!(parse_duration("1h30m"), Some(5400 * S));
        assert_eq!(parse_duration("10s"), Some(10 * S));
        assert_eq!(parse_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_duration("2us"), Some(2_000));
        assert_eq!(parse_duration("2\u{b5}s"), Some(2_000));
        assert_eq!(parse_duration("7ns"), Some(7));
        assert_eq!(parse_duration("1d"), Some(86_400 * S));
        assert_eq!(parse_duration("-1.5h"), Some(-5400 * S));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("01:30:00"), Some(5400 * S));
        assert_eq!(parse_duration("100:00:01"), Some(360_001 * S));
        assert_eq!(parse_duration("00:60:00"), None);
        assert_eq!(parse_duration("1:2"), None);
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("1"), Some(1));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("."), None);
        assert_eq!(parse_duration("-"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
        assert_eq!(parse_duration("2562047h47m16.854775807s"), Some(i64::MAX));
        assert_eq!(parse_duration("-2562047h47m16.854775808s"), Some(i64::MIN));
        assert_eq!(parse_duration("2562047h47m16.854775808s"), None);
    }

    #[test]
    fn execution_statuses() {
        assert_eq!(execution_status_from_name("Running"), Some(1));
        assert_eq!(execution_status_from_name("completed"), None);
        assert_eq!(execution_status_from_name("Failed"), Some(3));
        assert_eq!(execution_status_from_name("Canceled"), Some(4));
        assert_eq!(execution_status_from_name("Terminated"), Some(5));
        assert_eq!(execution_status_from_name("ContinuedAsNew"), Some(6));
        assert_eq!(execution_status_from_name("TimedOut"), Some(7));
        assert_eq!(execution_status_from_name("WORKFLOW_EXECUTION_STATUS_TIMED_OUT"), Some(7));
        assert_eq!(execution_status_from_name("Bogus"), None);
        assert_eq!(execution_status_name(6), Some("ContinuedAsNew"));
        assert_eq!(execution_status_name(99), None);
    }
}
