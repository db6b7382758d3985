//! `CompiledSpec`: Temporal's canonicalisation and validation of a `ScheduleSpec`, its time zone,
//! and `GetNextTime` (union of calendars and intervals, minus exclusions, within start/end, plus
//! deterministic jitter bounded by the gap to the following time).

use chrono_tz::Tz;

use crate::calendar::CompiledCalendar;
use crate::duration::{check_valid, duration_nanos};
use crate::farm;
use crate::parse::{calendar_to_structured, parse_cron};
use crate::pb::{IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec};
use crate::zone::{DAY, Zone};
use crate::{NextTime, SpecError};

/// Nothing is produced at or after 2101-01-01T00:00:00Z (Temporal: UTC year > 2100 is the end).
const END_OF_TIME: i64 = 4_133_980_800;
/// Searches start no earlier than this (1653), which keeps all arithmetic far from overflow.
const EARLIEST: i64 = -10_000_000_000;
/// Safety net for specs whose candidates keep being excluded; beyond it `next` gives up (None).
const MAX_ITERATIONS: usize = 100_000;
const MAX_COMMENT_LEN: usize = 200;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A validated, compiled schedule spec.
#[derive(Clone, Debug)]
pub struct CompiledSpec {
    /// The canonical form (what the server stores).
    spec: ScheduleSpec,
    zone: Zone,
    calendars: Vec<CompiledCalendar>,
    excludes: Vec<CompiledCalendar>,
    /// (interval, phase) in whole seconds.
    intervals: Vec<(i64, i64)>,
    /// No action before this (unix ms; the epoch when unset, as in Temporal).
    start_ms: i64,
    /// No action after this (unix ns).
    end_ns: Option<i128>,
    jitter_ns: i64,
    jitter_seed: String,
}

fn invalid(msg: impl std::fmt::Display) -> SpecError {
    SpecError::Invalid(format!("Invalid schedule spec: {msg}"))
}

/// Sets the defaults Temporal fills into ranges before returning a spec from DescribeSchedule
/// and ListSchedules: `end < start` becomes `end = start`, `step == 0` becomes 1.
pub fn clean_spec(spec: &mut ScheduleSpec) {
    fn clean(ranges: &mut [Range]) {
        for r in ranges {
            if r.end < r.start {
                r.end = r.start;
            }
            if r.step == 0 {
                r.step = 1;
            }
        }
    }
    for cal in spec.structured_calendar.iter_mut().chain(spec.exclude_structured_calendar.iter_mut()) {
        clean(&mut cal.second);
        clean(&mut cal.minute);
        clean(&mut cal.hour);
        clean(&mut cal.day_of_month);
        clean(&mut cal.month);
        clean(&mut cal.year);
        clean(&mut cal.day_of_week);
    }
}

fn validate_structured(cal: &StructuredCalendarSpec) -> Result<(), String> {
    let mut errs = Vec::new();
    let mut check = |ranges: &[Range], field: &str, min: i32, max: i32| {
        for r in ranges {
            if r.start < min || r.start > max {
                errs.push(format!("{field} Start is not in range [{min}-{max}]"));
            }
            if r.end != 0 && (r.end < r.start || r.end > max) {
                errs.push(format!("{field} End is before Start or not in range [{min}-{max}]"));
            }
            if r.step < 0 {
                errs.push(format!("{field} has invalid Step"));
            }
        }
    };
    check(&cal.second, "Second", 0, 59);
    check(&cal.minute, "Minute", 0, 59);
    check(&cal.hour, "Hour", 0, 23);
    check(&cal.day_of_month, "DayOfMonth", 1, 31);
    check(&cal.month, "Month", 1, 12);
    check(&cal.year, "Year", 2000, 2100);
    check(&cal.day_of_week, "DayOfWeek", 0, 6);
    if cal.comment.len() > MAX_COMMENT_LEN {
        errs.push("comment is too long".to_string());
    }
    if errs.is_empty() { Ok(()) } else { Err(format!("invalid calendar spec: {}", errs.join(", "))) }
}

fn validate_interval(iv: &IntervalSpec) -> Result<(), String> {
    let interval = duration_nanos(iv.interval.as_ref());
    let phase = duration_nanos(iv.phase.as_ref());
    if interval < NANOS_PER_SEC {
        Err("interval is too small".into())
    } else if phase < 0 {
        Err("phase is negative".into())
    } else if phase >= interval {
        Err("phase cannot be greater than Interval".into())
    } else {
        Ok(())
    }
}

/// Temporal's `canonicalizeSpec`: calendar strings, exclude calendar strings and cron strings
/// become structured calendars (and intervals, and the cron time zone), then validation.
fn canonicalize(input: &ScheduleSpec) -> Result<ScheduleSpec, String> {
    let mut spec = input.clone();
    for cal in &input.calendar {
        spec.structured_calendar.push(calendar_to_structured(cal)?);
    }
    spec.calendar.clear();
    for cal in &input.exclude_calendar {
        spec.exclude_structured_calendar.push(calendar_to_structured(cal)?);
    }
    spec.exclude_calendar.clear();

    let conflict = || "conflicting timezone names".to_string();
    let mut cron_tz: Option<String> = None;
    for cs in &input.cron_string {
        let cron = parse_cron(cs)?;
        // All cron strings must agree on the zone, whether they name one or not.
        if cron_tz.as_ref().is_some_and(|tz| *tz != cron.timezone) {
            return Err(conflict());
        }
        cron_tz = Some(cron.timezone);
        spec.structured_calendar.extend(cron.calendar);
        spec.interval.extend(cron.interval);
    }
    spec.cron_string.clear();
    if let Some(tz) = cron_tz.filter(|tz| !tz.is_empty()) {
        if (!spec.timezone_name.is_empty() && spec.timezone_name != tz) || !spec.timezone_data.is_empty() {
            return Err(conflict());
        }
        spec.timezone_name = tz;
    }

    for cal in &spec.structured_calendar {
        validate_structured(cal)?;
    }
    for iv in &spec.interval {
        validate_interval(iv)?;
    }
    Ok(spec)
}

/// Go's `time.LoadLocation` on the IANA database bundled with chrono-tz.
fn load_zone(spec: &ScheduleSpec) -> Result<Zone, String> {
    let name = spec.timezone_name.as_str();
    match name {
        // "Local" is the server's zone in Go; a server-independent answer is more useful.
        "" | "UTC" | "Local" => Ok(Zone(Tz::UTC)),
        _ => match name.parse::<Tz>() {
            Ok(tz) => Ok(Zone(tz)),
            Err(_) if !spec.timezone_data.is_empty() => {
                Err(format!("timezone_data is not supported (unknown time zone {name})"))
            }
            Err(_) => Err(format!("unknown time zone {name}")),
        },
    }
}

fn timestamp_ms(seconds: i64, nanos: i32) -> i64 {
    seconds.saturating_mul(1000).saturating_add(i64::from(nanos) / 1_000_000)
}

impl CompiledSpec {
    /// Validates and compiles `spec`, accepting every `ScheduleSpec` field as Temporal does.
    /// The error text is Temporal's `INVALID_ARGUMENT` message.
    pub fn compile(spec: &ScheduleSpec) -> Result<Self, SpecError> {
        // The frontend's check on the raw durations comes first.
        for iv in &spec.interval {
            if let Some(d) = &iv.interval {
                check_valid(d).map_err(|e| invalid(format!("interval is not a valid duration: {e}")))?;
            }
            if let Some(d) = &iv.phase {
                check_valid(d).map_err(|e| invalid(format!("phase is not a valid duration: {e}")))?;
            }
        }
        let canonical = canonicalize(spec).map_err(invalid)?;
        let zone = load_zone(&canonical).map_err(invalid)?;
        let calendars = canonical.structured_calendar.iter().map(CompiledCalendar::new).collect();
        let excludes = canonical.exclude_structured_calendar.iter().map(CompiledCalendar::new).collect();
        let intervals = canonical
            .interval
            .iter()
            .map(|iv| {
                let interval = (duration_nanos(iv.interval.as_ref()) / NANOS_PER_SEC).max(1);
                let phase = (duration_nanos(iv.phase.as_ref()) / NANOS_PER_SEC).max(0);
                (interval, phase)
            })
            .collect();
        let start_ms = canonical.start_time.as_ref().map_or(0, |t| timestamp_ms(t.seconds, t.nanos));
        let end_ns = canonical
            .end_time
            .as_ref()
            .map(|t| i128::from(t.seconds) * i128::from(NANOS_PER_SEC) + i128::from(t.nanos));
        let jitter_ns = duration_nanos(canonical.jitter.as_ref());
        Ok(CompiledSpec {
            spec: canonical,
            zone,
            calendars,
            excludes,
            intervals,
            start_ms,
            end_ns,
            jitter_ns,
            jitter_seed: String::new(),
        })
    }

    /// Sets the seed mixed into the jitter hash (Temporal uses `"<namespace id>-<schedule id>"`;
    /// the default is "", Temporal's pre-seed behaviour). Jitter stays a pure function of the
    /// nominal time and the seed.
    pub fn with_jitter_seed(mut self, seed: impl Into<String>) -> Self {
        self.jitter_seed = seed.into();
        self
    }

    /// The canonical spec the server stores: `calendar`, `exclude_calendar` and `cron_string` are
    /// converted into `structured_calendar`, `exclude_structured_calendar` and `interval` and
    /// cleared; a cron `CRON_TZ=` zone moves into `timezone_name`. Other fields are kept as given.
    pub fn canonical(&self) -> ScheduleSpec {
        self.spec.clone()
    }

    /// The spec as DescribeSchedule returns it: [`canonical`](Self::canonical) with range defaults
    /// filled in ([`clean_spec`]).
    pub fn described(&self) -> ScheduleSpec {
        let mut spec = self.spec.clone();
        clean_spec(&mut spec);
        spec
    }

    /// The IANA name of the zone calendars are evaluated in ("UTC" when none was given).
    pub fn timezone(&self) -> &'static str {
        self.zone.name()
    }

    /// The next action time strictly after `after_ms` (unix ms), or `None` when there is none
    /// (end time passed, year 2100 passed, empty spec, or everything excluded).
    pub fn next(&self, after_ms: i64) -> Option<NextTime> {
        // Never before the start time (the first second of the range may itself match).
        let after_ms = after_ms.max(self.start_ms.saturating_sub(1000));
        let mut after = after_ms.div_euclid(1000).max(EARLIEST);
        // Per calendar: no surviving time at or before this (learnt from exclusions).
        let mut calendar_after: Vec<i64> = Vec::new();
        let mut nominal = None;
        for _ in 0..MAX_ITERATIONS {
            let t = self.raw_next(after, &calendar_after)?;
            if self.past_end(t) {
                return None;
            }
            let Some(ex) = self.excludes.iter().find(|ex| ex.matches(&self.zone, t)) else {
                nominal = Some(t);
                break;
            };
            // Skip the rest of the excluded run, and whole minutes/hours/days in which a
            // calendar's times are all excluded.
            after = self.instant_bound(t, ex.run_end(self.zone.naive(t), DAY)) - 1;
            calendar_after.resize(self.calendars.len(), i64::MIN);
            for (cal, bound) in self.calendars.iter().zip(calendar_after.iter_mut()) {
                let until = match ex.covers_until(cal, self.zone.naive(t)) {
                    Some(n) => self.instant_bound(t, n) - 1,
                    None => END_OF_TIME,
                };
                *bound = (*bound).max(until);
            }
        }
        let nominal = nominal?;
        // The jitter must not push the action past the following nominal time.
        let mut max_jitter_ns = i128::from(self.jitter_ns);
        if let Some(following) = self.raw_next(nominal, &[]) {
            max_jitter_ns = max_jitter_ns.min(i128::from(following - nominal) * i128::from(NANOS_PER_SEC));
        }
        let max_jitter_ms = (max_jitter_ns / 1_000_000).clamp(0, i128::from(i64::MAX)) as i64;
        let jitter = farm::jitter_ms(&self.jitter_seed, nominal, max_jitter_ms);
        Some(NextTime { nominal_ms: nominal * 1000, actual_ms: nominal * 1000 + jitter })
    }

    /// Successive action times after `start_ms` whose actual (jittered) time is at most `end_ms`,
    /// at most `limit` of them (Temporal's ListScheduleMatchingTimes loop).
    pub fn between(&self, start_ms: i64, end_ms: i64, limit: usize) -> Vec<NextTime> {
        let mut out = Vec::new();
        let mut t = start_ms;
        while out.len() < limit {
            let Some(next) = self.next(t) else { break };
            if next.actual_ms > end_ms || next.actual_ms <= t {
                break;
            }
            out.push(next);
            t = next.actual_ms;
        }
        out
    }

    /// The earliest calendar or interval time strictly after `after` (unix seconds), ignoring
    /// exclusions and start/end; calendar `i` only contributes times after `calendar_after[i]`.
    fn raw_next(&self, after: i64, calendar_after: &[i64]) -> Option<i64> {
        if after >= END_OF_TIME {
            return None;
        }
        let calendars = self.calendars.iter().enumerate().filter_map(|(i, c)| {
            let from = calendar_after.get(i).map_or(after, |&b| b.max(after));
            if from >= END_OF_TIME { None } else { c.next_instant(&self.zone, from) }
        });
        let intervals = self
            .intervals
            .iter()
            .map(|&(interval, phase)| ((after - phase).div_euclid(interval) + 1) * interval + phase);
        calendars.chain(intervals).min()
    }

    fn past_end(&self, t: i64) -> bool {
        t >= END_OF_TIME || self.end_ns.is_some_and(|end| i128::from(t) * i128::from(NANOS_PER_SEC) > end)
    }

    /// For an instant `t` reading wall-clock time `n0` and a later wall-clock time `n`, the instant
    /// `u > t` such that `[t, u)` reads exactly `[n0, n0 + (u - t))` with `u - t <= n - n0`: the
    /// instant reading `n`, or the next offset change if that comes first.
    fn instant_bound(&self, t: i64, n: i64) -> i64 {
        let n0 = self.zone.naive(t);
        let u = t + (n - n0).clamp(1, DAY);
        if self.zone.constant_over(t, u) { u } else { self.zone.first_change(t, u - 1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::days_from_civil;

    #[test]
    fn end_of_time_is_2101() {
        assert_eq!(days_from_civil(2101, 1, 1) * DAY, END_OF_TIME);
    }
}
