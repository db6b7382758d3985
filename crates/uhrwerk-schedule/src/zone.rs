//! Time zones and civil-date arithmetic: UTC offsets of instants, local wall-clock times mapped back
//! to instants (gaps and repeated hours), and the proleptic Gregorian calendar on plain integers.
//!
//! Instants are unix seconds. A "naive" time is a wall-clock reading written as if it were UTC:
//! seconds since 1970-01-01T00:00:00 local, so `naive = instant + utc_offset`.

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::{GapInfo, Tz};

pub(crate) const DAY: i64 = 86_400;

/// Instants are clamped into this window before they reach chrono, so no input can overflow it.
/// It spans far more than the years a schedule can produce (1970..=2100).
const INSTANT_MIN: i64 = -10_000_000_000;
const INSTANT_MAX: i64 = 10_000_000_000;

/// The zone a calendar is evaluated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Zone(pub(crate) Tz);

/// The instants that show a given wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Local {
    /// Exactly one instant.
    One(i64),
    /// A repeated wall-clock time (clocks turned back): the earlier and the later instant.
    Two(i64, i64),
    /// The wall-clock time was skipped (clocks turned forward); the first naive time after the gap.
    Gap(i64),
}

impl Zone {
    pub(crate) fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The UTC offset in seconds in effect at `instant`.
    pub(crate) fn offset(&self, instant: i64) -> i64 {
        if self.0 == Tz::UTC {
            return 0;
        }
        let t = instant.clamp(INSTANT_MIN, INSTANT_MAX);
        match DateTime::from_timestamp(t, 0) {
            Some(dt) => i64::from(self.0.offset_from_utc_datetime(&dt.naive_utc()).fix().local_minus_utc()),
            None => 0,
        }
    }

    /// The wall-clock reading (naive seconds) at `instant`.
    pub(crate) fn naive(&self, instant: i64) -> i64 {
        instant + self.offset(instant)
    }

    /// The instants at which the wall clock shows `naive`.
    pub(crate) fn instants(&self, naive: i64) -> Local {
        if self.0 == Tz::UTC {
            return Local::One(naive);
        }
        let n = naive.clamp(INSTANT_MIN, INSTANT_MAX);
        let Some(ndt) = DateTime::from_timestamp(n, 0).map(|d| d.naive_utc()) else {
            return Local::One(naive);
        };
        match self.0.from_local_datetime(&ndt) {
            LocalResult::Single(t) => Local::One(t.timestamp()),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.timestamp(), b.timestamp());
                Local::Two(a.min(b), a.max(b))
            }
            LocalResult::None => Local::Gap(self.gap_end(&ndt, n)),
        }
    }

    /// The first naive time after the gap that contains `ndt`.
    fn gap_end(&self, ndt: &NaiveDateTime, naive: i64) -> i64 {
        GapInfo::new(ndt, &self.0)
            .and_then(|g| g.end)
            .map(|end| end.naive_local().and_utc().timestamp())
            .filter(|&end| end > naive)
            .unwrap_or(naive + 1)
    }

    /// The first instant in `(lo, hi]` whose offset differs from `offset(lo)`, assuming the offset
    /// changes at most once in that window and `offset(hi)` differs.
    pub(crate) fn first_change(&self, lo: i64, hi: i64) -> i64 {
        let base = self.offset(lo);
        let (mut lo, mut hi) = (lo, hi);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.offset(mid) == base {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    /// A naive time no later than the wall-clock reading of any instant `>= u`.
    ///
    /// Clocks only move back at a transition, by less than a day, so it is enough to look one day
    /// ahead: later instants read later than `u`'s wall clock whatever their offset. Assumes at
    /// most one transition in a day, which holds for every zone in the tz database since 1970.
    pub(crate) fn naive_lower_bound(&self, u: i64) -> i64 {
        let o1 = self.offset(u);
        let start = u + o1;
        let probe = u + DAY;
        let o2 = self.offset(probe);
        if o2 >= o1 {
            return start;
        }
        let t = self.first_change(u, probe);
        start.min(t + self.offset(t))
    }

    /// True if no instant in `[a, b)` reads a wall-clock time outside `[naive(a), naive(a) + b - a)`,
    /// i.e. the offset is constant over the window (at most a day long, so that it contains at
    /// most one offset change).
    pub(crate) fn constant_over(&self, a: i64, b: i64) -> bool {
        debug_assert!(b - a <= DAY);
        b <= a + 1 || self.offset(a) == self.offset(b - 1)
    }
}

// ---- civil calendar on integers (Howard Hinnant's algorithms) ----

/// Days since 1970-01-01 of the given proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of the given day number (days since 1970-01-01).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day of week of a day number: 0 = Sunday.
pub(crate) fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

pub(crate) fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A wall-clock time split into fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fields {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Fields {
    pub(crate) fn from_naive(naive: i64) -> Self {
        let days = naive.div_euclid(DAY);
        let sod = naive.rem_euclid(DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        Fields { year, month, day, hour: sod / 3600, minute: sod / 60 % 60, second: sod % 60 }
    }

    pub(crate) fn to_naive(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * DAY
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 365, 10_957, 11_016, 47_482, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(weekday(0), 4); // Thursday
        assert_eq!(weekday(days_from_civil(2022, 3, 6)), 0); // Sunday
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2022, 4), 30);
        assert_eq!(days_in_month(2022, 12), 31);
    }

    #[test]
    fn new_york_transitions() {
        let ny = Zone("America/New_York".parse().unwrap());
        // 2022-03-13 02:30 does not exist; 2022-11-06 01:30 happens twice.
        let gap = Fields { year: 2022, month: 3, day: 13, hour: 2, minute: 30, second: 0 };
        assert!(matches!(ny.instants(gap.to_naive()), Local::Gap(end)
            if end == Fields { hour: 3, minute: 0, ..gap }.to_naive()));
        let rep = Fields { year: 2022, month: 11, day: 6, hour: 1, minute: 30, second: 0 };
        let Local::Two(a, b) = ny.instants(rep.to_naive()) else { panic!("not repeated") };
        assert_eq!(b - a, 3600);
        assert_eq!(ny.offset(a), -4 * 3600);
        assert_eq!(ny.offset(b), -5 * 3600);
        // The tz data reaches the end of the calendar range.
        let july_2099 = Fields { year: 2099, month: 7, day: 1, hour: 12, minute: 0, second: 0 };
        assert_eq!(ny.offset(july_2099.to_naive()), -4 * 3600);
    }
}
