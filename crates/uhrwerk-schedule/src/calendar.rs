//! A compiled structured calendar: one bit set per field, the "does this wall-clock time match"
//! test, the field-skipping search for the next matching wall-clock time, the next matching
//! instant in a time zone, and the end of a run of matching seconds (used to skip exclusions).

use crate::pb::{Range, StructuredCalendarSpec};
use crate::zone::{DAY, Fields, Local, Zone, days_from_civil, days_in_month, weekday};

/// Calendars never produce times after this (local) year, as in Temporal.
pub(crate) const MAX_CALENDAR_YEAR: i64 = 2100;
/// Calendar years are validated against this lower bound (only on input).
pub(crate) const MIN_CALENDAR_YEAR: i64 = 2000;

/// Years representable in the year bit set. Every instant a schedule can produce lies in
/// 1969..=2101 local time; ranges outside this window simply never match.
const YEAR_BASE: i64 = 1900;
const YEAR_WORDS: usize = 4; // 256 years: 1900..=2155

const FULL60: u64 = (1 << 60) - 1;
const FULL24: u64 = (1 << 24) - 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CompiledCalendar {
    second: u64,
    minute: u64,
    hour: u64,
    /// Bits 1..=31.
    day_of_month: u64,
    /// Bits 1..=12.
    month: u64,
    /// Bits 0..=6, 0 = Sunday.
    day_of_week: u64,
    /// `None` matches every year (an empty year list).
    year: Option<[u64; YEAR_WORDS]>,
}

/// Calls `f` for every value of `ranges` inside `lo..=hi`, with Temporal's range defaults
/// (end < start means end = start, step <= 0 means 1). Values outside are ignored.
fn for_each_value(ranges: &[Range], lo: i64, hi: i64, mut f: impl FnMut(i64)) {
    for r in ranges {
        let start = i64::from(r.start);
        let end = i64::from(r.end).max(start);
        let step = i64::from(r.step).max(1);
        let mut v = start;
        if v < lo {
            v += (lo - v + step - 1) / step * step;
        }
        while v <= end.min(hi) {
            f(v);
            v += step;
        }
    }
}

fn bits(ranges: &[Range], lo: i64, hi: i64) -> u64 {
    let mut b = 0u64;
    for_each_value(ranges, lo, hi, |v| b |= 1 << v);
    b
}

/// The lowest set bit of `mask` that is `>= from`, if any.
fn next_set(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let m = mask >> from;
    (m != 0).then(|| from + m.trailing_zeros())
}

/// The lowest value in `from..=max` whose bit is clear, if any.
fn next_clear(mask: u64, from: u32, max: u32) -> Option<u32> {
    (from <= max).then(|| next_set(!mask, from)).flatten().filter(|&v| v <= max)
}

fn has(mask: u64, v: u32) -> bool {
    v < 64 && mask & (1 << v) != 0
}

impl CompiledCalendar {
    pub(crate) fn new(spec: &StructuredCalendarSpec) -> Self {
        let year = if spec.year.is_empty() {
            None
        } else {
            let mut words = [0u64; YEAR_WORDS];
            let hi = YEAR_BASE + (YEAR_WORDS as i64) * 64 - 1;
            for_each_value(&spec.year, YEAR_BASE, hi, |y| {
                let i = (y - YEAR_BASE) as usize;
                words[i / 64] |= 1 << (i % 64);
            });
            Some(words)
        };
        CompiledCalendar {
            second: bits(&spec.second, 0, 59),
            minute: bits(&spec.minute, 0, 59),
            hour: bits(&spec.hour, 0, 23),
            day_of_month: bits(&spec.day_of_month, 1, 31),
            month: bits(&spec.month, 1, 12),
            day_of_week: bits(&spec.day_of_week, 0, 6),
            year,
        }
    }

    fn year_ok(&self, y: i64) -> bool {
        match &self.year {
            None => true,
            Some(words) => {
                let i = y - YEAR_BASE;
                (0..(YEAR_WORDS as i64) * 64).contains(&i) && words[i as usize / 64] & (1 << (i % 64)) != 0
            }
        }
    }

    /// The first matching year `>= y` (up to the calendar limit).
    fn next_year(&self, y: i64) -> Option<i64> {
        (y..=MAX_CALENDAR_YEAR).find(|&y| self.year_ok(y))
    }

    fn day_ok(&self, y: i64, m: u32, d: u32) -> bool {
        self.year_ok(y)
            && has(self.month, m)
            && has(self.day_of_month, d)
            && has(self.day_of_week, weekday(days_from_civil(y, m, d)))
    }

    /// Whether a wall-clock time (naive seconds) matches every field.
    pub(crate) fn matches_naive(&self, naive: i64) -> bool {
        let f = Fields::from_naive(naive);
        self.day_ok(f.year, f.month, f.day)
            && has(self.hour, f.hour)
            && has(self.minute, f.minute)
            && has(self.second, f.second)
    }

    /// Whether the instant's wall-clock time in `zone` matches.
    pub(crate) fn matches(&self, zone: &Zone, instant: i64) -> bool {
        self.matches_naive(zone.naive(instant))
    }

    /// The earliest matching wall-clock time `>= from` (naive seconds), skipping whole years,
    /// months, days, hours and minutes that cannot match. `None` past [`MAX_CALENDAR_YEAR`].
    pub(crate) fn next_naive(&self, from: i64) -> Option<i64> {
        let Fields { year: mut y, month: mut mo, day: mut d, hour: mut h, minute: mut mi, second: mut s } =
            Fields::from_naive(from);
        loop {
            // Normalise carries.
            if s > 59 {
                s = 0;
                mi += 1;
            }
            if mi > 59 {
                mi = 0;
                h += 1;
            }
            if h > 23 {
                h = 0;
                d += 1;
            }
            if d > days_in_month(y, mo) {
                d = 1;
                mo += 1;
            }
            if mo > 12 {
                mo = 1;
                y += 1;
            }
            if y > MAX_CALENDAR_YEAR {
                return None;
            }
            if !self.year_ok(y) {
                y = self.next_year(y + 1)?;
                (mo, d, h, mi, s) = (1, 1, 0, 0, 0);
                continue;
            }
            if !has(self.month, mo) {
                match next_set(self.month, mo + 1).filter(|&m| m <= 12) {
                    Some(m) => (mo, d, h, mi, s) = (m, 1, 0, 0, 0),
                    None => (y, mo, d, h, mi, s) = (y + 1, 1, 1, 0, 0, 0),
                }
                continue;
            }
            if !has(self.day_of_month, d) {
                match next_set(self.day_of_month, d + 1).filter(|&v| v <= days_in_month(y, mo)) {
                    Some(v) => (d, h, mi, s) = (v, 0, 0, 0),
                    None => (d, h, mi, s) = (32, 0, 0, 0), // carries into the next month
                }
                continue;
            }
            if !has(self.day_of_week, weekday(days_from_civil(y, mo, d))) {
                (d, h, mi, s) = (d + 1, 0, 0, 0);
                continue;
            }
            if !has(self.hour, h) {
                match next_set(self.hour, h + 1).filter(|&v| v <= 23) {
                    Some(v) => (h, mi, s) = (v, 0, 0),
                    None => (h, mi, s) = (24, 0, 0),
                }
                continue;
            }
            if !has(self.minute, mi) {
                match next_set(self.minute, mi + 1).filter(|&v| v <= 59) {
                    Some(v) => (mi, s) = (v, 0),
                    None => (mi, s) = (60, 0),
                }
                continue;
            }
            if !has(self.second, s) {
                match next_set(self.second, s + 1).filter(|&v| v <= 59) {
                    Some(v) => s = v,
                    None => s = 60,
                }
                continue;
            }
            return Some(Fields { year: y, month: mo, day: d, hour: h, minute: mi, second: s }.to_naive());
        }
    }

    /// The earliest instant strictly after `after` whose wall-clock time in `zone` matches.
    ///
    /// A wall-clock time skipped by a forward DST transition never matches; one repeated by a
    /// backward transition matches at both instants (Temporal's behaviour).
    ///
    /// Matching wall-clock times are visited in order; for each, its earlier and later instant
    /// (equal unless repeated) both grow with the wall-clock time. So the answer is the smaller of
    /// the first "later" instant `>= u` and the first "earlier" instant `>= u`.
    pub(crate) fn next_instant(&self, zone: &Zone, after: i64) -> Option<i64> {
        let u = after + 1;
        let mut p = zone.naive_lower_bound(u);
        // The first matching wall-clock time with an instant >= u.
        let (n, early, late) = loop {
            let n = self.next_naive(p)?;
            match zone.instants(n) {
                Local::Gap(end) => p = end.max(n + 1),
                Local::One(t) if t >= u => return Some(t),
                Local::Two(early, _) if early >= u => return Some(early),
                Local::Two(early, late) if late >= u => break (n, early, late),
                Local::One(_) | Local::Two(..) => p = n + 1,
            }
        };
        // `u` lies inside a repeated period, between the two instants of `n`: a later wall-clock
        // time may still occur before `late` through its earlier instant, which is >= u only
        // from wall-clock time `u + (n - early)` (u read with the earlier offset) on.
        let mut q = (n + 1).max(u + (n - early));
        loop {
            let Some(m) = self.next_naive(q) else {
                return Some(late);
            };
            match zone.instants(m) {
                Local::Gap(end) => q = end.max(m + 1),
                Local::One(t) | Local::Two(t, _) if t >= u => return Some(t.min(late)),
                Local::One(_) => q = m + 1,
                Local::Two(e, _) => q = (m + 1).max(u + (m - e)),
            }
            if q - n > 2 * DAY {
                return Some(late);
            }
        }
    }

    fn hour_level_ok(&self, naive: i64) -> bool {
        let f = Fields::from_naive(naive);
        self.day_ok(f.year, f.month, f.day) && has(self.hour, f.hour)
    }

    fn minute_level_ok(&self, naive: i64) -> bool {
        let f = Fields::from_naive(naive);
        self.day_ok(f.year, f.month, f.day) && has(self.hour, f.hour) && has(self.minute, f.minute)
    }

    fn days_cover(&self, other: &CompiledCalendar) -> bool {
        let years = match (&self.year, &other.year) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => mine.iter().zip(theirs).all(|(m, t)| t & !m == 0),
        };
        years
            && other.month & !self.month == 0
            && other.day_of_month & !self.day_of_month == 0
            && other.day_of_week & !self.day_of_week == 0
    }

    /// For a wall-clock time `n` matched by `self` (an exclusion), the end (naive, exclusive) of
    /// the largest minute, hour or day containing `n` in which every time matched by `other` is
    /// also matched by `self`, so none of `other`'s times there survive; `n + 1` when not even
    /// the minute qualifies, `None` when all of `other`'s times are always matched by `self`.
    pub(crate) fn covers_until(&self, other: &CompiledCalendar, n: i64) -> Option<i64> {
        let f = Fields::from_naive(n);
        let minute_end = n - i64::from(f.second) + 60;
        let hour_end = minute_end - 60 - i64::from(f.minute) * 60 + 3600;
        let day_end = hour_end - 3600 - i64::from(f.hour) * 3600 + DAY;
        if other.second & !self.second != 0 {
            Some(n + 1)
        } else if other.minute & !self.minute != 0 {
            Some(minute_end)
        } else if other.hour & !self.hour != 0 {
            Some(hour_end)
        } else if !self.days_cover(other) {
            Some(day_end)
        } else {
            None
        }
    }

    /// For a matching wall-clock time `n`, the first naive time after it that does not match,
    /// capped at `n + cap`: every second of `[n, result)` matches.
    pub(crate) fn run_end(&self, n: i64, cap: i64) -> i64 {
        let limit = n + cap;
        let f = Fields::from_naive(n);
        let minute_start = n - i64::from(f.second);
        let hour_start = minute_start - i64::from(f.minute) * 60;
        let day_start = hour_start - i64::from(f.hour) * 3600;

        // Within this minute.
        if let Some(v) = next_clear(self.second, f.second + 1, 59) {
            return minute_start + i64::from(v);
        }
        let next_minute = minute_start + 60;
        if self.second & FULL60 != FULL60 {
            if !self.minute_level_ok(next_minute) {
                return next_minute;
            }
            let v = next_clear(self.second, 0, 59).unwrap_or(0);
            return next_minute + i64::from(v);
        }
        // Every second matches: within this hour.
        if let Some(v) = next_clear(self.minute, f.minute + 1, 59) {
            return hour_start + i64::from(v) * 60;
        }
        let next_hour = hour_start + 3600;
        if self.minute & FULL60 != FULL60 {
            if !self.hour_level_ok(next_hour) {
                return next_hour;
            }
            let v = next_clear(self.minute, 0, 59).unwrap_or(0);
            return next_hour + i64::from(v) * 60;
        }
        // Every minute matches: within this day.
        if let Some(v) = next_clear(self.hour, f.hour + 1, 23) {
            return day_start + i64::from(v) * 3600;
        }
        let next_day = day_start + DAY;
        if self.hour & FULL24 != FULL24 {
            let g = Fields::from_naive(next_day);
            if !self.day_ok(g.year, g.month, g.day) {
                return next_day;
            }
            let v = next_clear(self.hour, 0, 23).unwrap_or(0);
            return next_day + i64::from(v) * 3600;
        }
        // Whole days match.
        let mut day = next_day;
        while day < limit {
            let g = Fields::from_naive(day);
            if !self.day_ok(g.year, g.month, g.day) {
                return day;
            }
            day += DAY;
        }
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: i32, end: i32, step: i32) -> Range {
        Range { start, end, step }
    }

    fn cal(second: &[Range], minute: &[Range], hour: &[Range]) -> CompiledCalendar {
        CompiledCalendar::new(&StructuredCalendarSpec {
            second: second.to_vec(),
            minute: minute.to_vec(),
            hour: hour.to_vec(),
            day_of_month: vec![r(1, 31, 0)],
            month: vec![r(1, 12, 0)],
            day_of_week: vec![r(0, 6, 0)],
            ..Default::default()
        })
    }

    fn naive(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Fields { year: y, month: mo, day: d, hour: h, minute: mi, second: s }.to_naive()
    }

    #[test]
    fn ranges_clamp_and_step() {
        assert_eq!(bits(&[r(1, 5, 2)], 0, 59), 0b101010);
        assert_eq!(bits(&[r(3, 0, 0)], 0, 59), 0b1000);
        assert_eq!(bits(&[r(-5, 2, 3)], 0, 59), 0b10); // -5, -2 dropped, 1 kept
        assert_eq!(bits(&[r(0, i32::MAX, i32::MAX)], 0, 59), 1);
        assert_eq!(bits(&[r(50, 100, 5)], 0, 59), (1 << 50) | (1 << 55));
    }

    #[test]
    fn run_end_levels() {
        let c = cal(&[r(0, 59, 0)], &[r(0, 59, 0)], &[r(12, 14, 0)]);
        assert_eq!(c.run_end(naive(2022, 3, 23, 12, 0, 0), 2 * DAY), naive(2022, 3, 23, 15, 0, 0));
        let c = cal(&[r(0, 58, 0)], &[r(0, 59, 0)], &[r(0, 23, 0)]);
        assert_eq!(c.run_end(naive(2022, 3, 23, 12, 0, 0), 2 * DAY), naive(2022, 3, 23, 12, 0, 59));
        let c = cal(&[r(1, 59, 0)], &[r(0, 59, 0)], &[r(0, 23, 0)]);
        assert_eq!(c.run_end(naive(2022, 3, 23, 12, 0, 30), 2 * DAY), naive(2022, 3, 23, 12, 1, 0));
        let c = cal(&[r(0, 59, 0)], &[r(0, 59, 0)], &[r(0, 23, 0)]);
        assert_eq!(c.run_end(naive(2022, 3, 23, 12, 0, 30), 2 * DAY), naive(2022, 3, 25, 12, 0, 30));
    }

    #[test]
    fn next_naive_skips_impossible_dates() {
        let c = CompiledCalendar::new(&StructuredCalendarSpec {
            second: vec![r(0, 0, 0)],
            minute: vec![r(0, 0, 0)],
            hour: vec![r(0, 0, 0)],
            day_of_month: vec![r(30, 0, 0)],
            month: vec![r(2, 0, 0)],
            day_of_week: vec![r(0, 6, 0)],
            ..Default::default()
        });
        assert_eq!(c.next_naive(naive(2022, 1, 1, 0, 0, 0)), None);
        // Feb 29 on a Monday: 2016 is the first after 2000.
        let c = CompiledCalendar::new(&StructuredCalendarSpec {
            second: vec![r(0, 0, 0)],
            minute: vec![r(0, 0, 0)],
            hour: vec![r(0, 0, 0)],
            day_of_month: vec![r(29, 0, 0)],
            month: vec![r(2, 0, 0)],
            day_of_week: vec![r(1, 0, 0)],
            ..Default::default()
        });
        assert_eq!(c.next_naive(naive(2000, 1, 1, 0, 0, 0)), Some(naive(2016, 2, 29, 0, 0, 0)));
    }
}
