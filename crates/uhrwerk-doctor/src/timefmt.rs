//! Durations and times for the doctor: `--since 24h` parsing, human-readable durations, RFC 3339
//! timestamps for visibility queries, and protobuf timestamp/duration conversion to milliseconds.

use std::time::Duration;

use prost_wkt_types as wkt;

/// Parses `90s`, `15m`, `24h`, `7d`, `1h30m`, `500ms`: Go's duration syntax with Temporal's `d`
/// unit ([`uhrwerk_schedule::duration::parse_duration`]); a bare number is seconds. Negative
/// durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let nanos = uhrwerk_schedule::duration::parse_duration(s)?;
    u64::try_from(nanos).map(Duration::from_nanos).map_err(|_| format!("invalid duration {s:?}: negative"))
}

/// `850 ms`, `4.2 s`, `12 min`, `5.5 h`, `3.0 d`.
pub fn human(ms: i64) -> String {
    let ms = ms.max(0) as f64;
    if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1_000.0)
    } else if ms < 3_600_000.0 {
        format!("{:.0} min", ms / 60_000.0)
    } else if ms < 86_400_000.0 {
        format!("{:.1} h", ms / 3_600_000.0)
    } else {
        format!("{:.1} d", ms / 86_400_000.0)
    }
}

/// `12.3 KiB`-style sizes.
pub fn bytes(n: i64) -> String {
    let f = n.max(0) as f64;
    if f < 1024.0 {
        format!("{n} B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{:.1} MiB", f / (1024.0 * 1024.0))
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn ts_ms(t: Option<&wkt::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos) / 1_000_000))
}

pub fn dur_ms(d: Option<&wkt::Duration>) -> i64 {
    d.map_or(0, |d| d.seconds.saturating_mul(1000).saturating_add(i64::from(d.nanos) / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("-5m").is_err());
        assert_eq!(parse_duration("2d12h"), Ok(Duration::from_secs(60 * 3_600)));
    }

    #[test]
    fn formats() {
        assert_eq!(human(850), "850 ms");
        assert_eq!(human(4_200), "4.2 s");
        assert_eq!(human(720_000), "12 min");
        assert_eq!(human(3 * 86_400_000), "3.0 d");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
