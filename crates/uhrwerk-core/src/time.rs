//! Conversions between the wire's `Timestamp`/`Duration` and the kernel's unix milliseconds.

use prost_wkt_types::{Duration, Timestamp};

/// Milliseconds since the unix epoch.
pub type Millis = i64;

pub fn timestamp(ms: Millis) -> Timestamp {
    Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

pub fn timestamp_ms(ts: &Timestamp) -> Millis {
    ts.seconds.saturating_mul(1000).saturating_add(i64::from(ts.nanos) / 1_000_000)
}

pub fn duration(ms: Millis) -> Duration {
    Duration { seconds: ms / 1000, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

/// Milliseconds of an optional duration; absent, negative and zero all mean "not set" (0).
pub fn duration_ms(d: &Option<Duration>) -> Millis {
    match d {
        Some(d) => {
            let ms = d.seconds.saturating_mul(1000).saturating_add(i64::from(d.nanos) / 1_000_000);
            // Sub-millisecond positive durations round up so that they stay "set".
            if ms == 0 && (d.seconds > 0 || d.nanos > 0) { 1 } else { ms.max(0) }
        }
        None => 0,
    }
}

/// `Some(duration)` for a positive value, `None` otherwise.
pub fn opt_duration(ms: Millis) -> Option<Duration> {
    (ms > 0).then(|| duration(ms))
}

pub fn is_negative(d: &Option<Duration>) -> bool {
    d.as_ref().is_some_and(|d| d.seconds < 0 || d.nanos < 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_milliseconds() {
        for ms in [0, 1, 999, 1000, 1_700_000_000_123] {
            assert_eq!(timestamp_ms(&timestamp(ms)), ms);
            assert_eq!(duration_ms(&Some(duration(ms))), ms);
        }
        assert_eq!(duration_ms(&None), 0);
        assert_eq!(duration_ms(&Some(Duration { seconds: 0, nanos: 10 })), 1);
    }
}
