//! Duration strings, parsed in one place for the workspace: Go's `time.ParseDuration` grammar
//! (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns us µs μs ms s m h) with Go's error texts, which
//! workflow cron `@every` uses, and Temporal's variant with a `d` unit (24h), which schedule
//! `@every` and the doctor's `--since` use. Also Temporal's reading of protobuf `Duration`s.

use crate::pb::Duration;

const NS: u64 = 1;
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
const LIMIT: u64 = 1 << 63;

/// Go's `strconv.Quote`, close enough for error messages.
pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", s.escape_debug())
}

/// Parses like Temporal's `timestamp.ParseDuration`: `Nd` (days, possibly fractional) is first
/// rewritten to hours, then Go's `time.ParseDuration` applies. Returns nanoseconds; the error is
/// Go's message, e.g. `time: unknown unit "x" in duration "5x"`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    parse_go_duration(&replace_days(s))
}

/// Rewrites every match of `(\d+(\.\d*)?|(\.\d+))d` to `<24*value with 6 decimals>h`.
fn replace_days(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 16);
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if let Some(end) = day_token_end(b, i) {
            let number = &s[i..end - 1];
            out.push_str(&s[copied..i]);
            match number.parse::<f64>() {
                Ok(v) => out.push_str(&format!("{:.6}h", 24.0 * v)),
                Err(_) => out.push_str(&s[i..end]),
            }
            i = end;
            copied = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// If a `number d` token starts at `i`, the index just past the `d`.
fn day_token_end(b: &[u8], i: usize) -> Option<usize> {
    let digits = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let mut j = i;
    if b.get(j)?.is_ascii_digit() {
        j = digits(j);
        if b.get(j) == Some(&b'.') {
            j = digits(j + 1);
        }
    } else if b[j] == b'.' {
        let k = digits(j + 1);
        if k == j + 1 {
            return None;
        }
        j = k;
    } else {
        return None;
    }
    (b.get(j) == Some(&b'd')).then_some(j + 1)
}

fn unit_nanos(u: &str) -> Option<u64> {
    Some(match u {
        "ns" => NS,
        "us" | "\u{b5}s" | "\u{3bc}s" => US,
        "ms" => MS,
        "s" => SEC,
        "m" => 60 * SEC,
        "h" => 3600 * SEC,
        _ => return None,
    })
}

/// Go's `time.ParseDuration` (no `d` unit), returning nanoseconds; the error is Go's message.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next()
        && (c == '-' || c == '+')
    {
        neg = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let mut i = 0;
        let mut v: u64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(b[i] - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        // Fraction.
        let mut f: u64 = 0;
        let mut scale = 1.0f64;
        let mut post = false;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let start = i;
            let mut overflow = false;
            while i < b.len() && b[i].is_ascii_digit() {
                if !overflow {
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(b[i] - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            post = i > start;
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit: everything up to the next '.' or digit.
        let mut j = i;
        while j < b.len() && b[j] != b'.' && !b[j].is_ascii_digit() {
            j += 1;
        }
        if j == i {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let u = &s[i..j];
        let Some(unit) = unit_nanos(u) else {
            return Err(format!("time: unknown unit {} in duration {}", quote(u), quote(orig)));
        };
        s = &s[j..];
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((total as i64).wrapping_neg());
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// A protobuf Duration from nanoseconds, as Go's `durationpb.New`.
pub(crate) fn duration_from_nanos(ns: i64) -> Duration {
    Duration { seconds: ns / SEC as i64, nanos: (ns % SEC as i64) as i32 }
}

/// Go's `AsDuration`: nanoseconds, saturating on overflow; `None` reads as zero.
pub(crate) fn duration_nanos(d: Option<&Duration>) -> i64 {
    let Some(d) = d else { return 0 };
    let ns = i128::from(d.seconds) * i128::from(SEC) + i128::from(d.nanos);
    ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The protobuf validity rules (`CheckValid`) for a Duration, with Go's messages.
pub(crate) fn check_valid(d: &Duration) -> Result<(), String> {
    const MAX_SECS: i64 = 315_576_000_000;
    let shown = format!("seconds:{} nanos:{}", d.seconds, d.nanos);
    if d.seconds < -MAX_SECS {
        Err(format!("proto: duration ({shown}) exceeds -10000 years"))
    } else if d.seconds > MAX_SECS {
        Err(format!("proto: duration ({shown}) exceeds +10000 years"))
    } else if d.nanos <= -1_000_000_000 || d.nanos >= 1_000_000_000 {
        Err(format!("proto: duration ({shown}) has out-of-range nanos"))
    } else if (d.seconds > 0 && d.nanos < 0) || (d.seconds < 0 && d.nanos > 0) {
        Err(format!("proto: duration ({shown}) has seconds and nanos with different signs"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * SEC as i64;
    const M: i64 = 60 * SEC as i64;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1h"), Ok(H));
        assert_eq!(parse_duration("3m30s"), Ok(3 * M + 30 * SEC as i64));
        assert_eq!(parse_duration("1d"), Ok(24 * H));
        assert_eq!(parse_duration("5d6h15m"), Ok(5 * 24 * H + 6 * H + 15 * M));
        assert_eq!(parse_duration("5.25d15m"), Ok(5 * 24 * H + 6 * H + 15 * M));
        assert_eq!(parse_duration(".5d"), Ok(12 * H));
        assert_eq!(parse_duration("-10d12.25h"), Ok(-(10 * 24 * H + 12 * H + 15 * M)));
        assert_eq!(parse_duration("3m2h1d"), Ok(3 * M + 2 * H + 24 * H));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_duration("2µs"), Ok(2_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("7"), Err("time: missing unit in duration \"7\"".into()));
        assert_eq!(parse_duration(""), Err("time: invalid duration \"\"".into()));
        assert_eq!(parse_duration("10000000h"), Err("time: invalid duration \"10000000h\"".into()));
        assert_eq!(parse_duration("5x"), Err("time: unknown unit \"x\" in duration \"5x\"".into()));
        assert_eq!(parse_duration("."), Err("time: invalid duration \".\"".into()));
        // Go's own grammar has no days.
        assert_eq!(parse_go_duration("90m"), Ok(90 * M));
        assert_eq!(parse_go_duration("1d"), Err("time: unknown unit \"d\" in duration \"1d\"".into()));
    }

    #[test]
    fn proto_durations() {
        assert_eq!(duration_from_nanos(90 * M), Duration { seconds: 5400, nanos: 0 });
        assert_eq!(duration_from_nanos(-1_500_000_000), Duration { seconds: -1, nanos: -500_000_000 });
        assert_eq!(duration_nanos(Some(&Duration { seconds: i64::MAX, nanos: 0 })), i64::MAX);
        assert_eq!(duration_nanos(None), 0);
        assert!(check_valid(&Duration { seconds: 1, nanos: -1 }).is_err());
        assert!(check_valid(&Duration { seconds: 1, nanos: 1 }).is_ok());
    }
}
