//! Schedule specs and workflow cron schedules: validation, canonical form and matching times.
//!
//! [`CompiledSpec::compile`] validates a `ScheduleSpec` and converts it the way Temporal's
//! scheduler does (calendar strings and cron strings become structured calendars, `@every`
//! becomes an interval); [`CompiledSpec::next`] and [`CompiledSpec::between`] compute the nominal
//! and jittered action times. [`CronSchedule`] reads a workflow's `cron_schedule` as Temporal's
//! server does and evaluates it with the same calendars; [`duration`] parses duration strings.
//! Pure: no I/O and no clock; times are unix milliseconds.
//!
//! Semantics follow Temporal's `service/worker/scheduler` (`spec.go`, `calendar.go`):
//! - A structured calendar matches an instant when its wall-clock time in the spec's zone matches
//!   every field. An empty list matches nothing, except for `year`, where it matches every year
//!   (calendar strings fill in their defaults before that: second/minute/hour "0", others "*").
//! - Wall-clock times skipped by a DST change never fire; repeated ones fire at both instants.
//!   (Zones are assumed to change their UTC offset at most once in any 24 hours, true of the
//!   whole tz database since 1970.)
//! - Intervals fire at `epoch + phase + n * interval` (whole seconds).
//! - Calendars stop after local year 2100 and no action is produced after UTC year 2100.

#![allow(deprecated)] // `exclude_calendar` is deprecated on the wire but still accepted.

mod calendar;
mod cron;
pub mod duration;
mod farm;
mod parse;
mod spec;
mod zone;

pub use cron::{CronError, CronSchedule};
pub use spec::{CompiledSpec, clean_spec};

pub(crate) mod pb {
    pub use prost_wkt_types::Duration;
    pub use temporalio_protos::temporal::api::schedule::v1::{
        CalendarSpec, IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec,
    };
}

/// A spec that Temporal would reject with `INVALID_ARGUMENT`. The message is the full text the
/// server returns, e.g. `Invalid schedule spec: CronString does not have 5-7 fields`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    #[error("{0}")]
    Invalid(String),
}

/// One action time: the nominal time from the spec and the actual time after jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextTime {
    /// Unix milliseconds (always a whole second).
    pub nominal_ms: i64,
    /// `nominal_ms` plus the jitter, in `[nominal_ms, nominal_ms + jitter)`.
    pub actual_ms: i64,
}
