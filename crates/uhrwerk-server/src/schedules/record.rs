//! The durable record of a schedule and the pure operations on it: patches (trigger, backfill,
//! pause), future action times and the attributes a schedule shows.

use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::schedule::v1 as schedule_pb;
use uhrwerk_proto::wkt::Timestamp;
use uhrwerk_schedule::CompiledSpec;
use uhrwerk_visibility::{Literal, ValueType, payload};

use crate::error::{Error, Result};

/// A schedule as stored: Temporal's schedule and info plus what the scheduler needs to resume.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScheduleRecord {
    #[prost(message, optional, tag = "1")]
    pub schedule: Option<schedule_pb::Schedule>,
    #[prost(message, optional, tag = "2")]
    pub info: Option<schedule_pb::ScheduleInfo>,
    #[prost(message, optional, tag = "3")]
    pub memo: Option<common_pb::Memo>,
    #[prost(message, optional, tag = "4")]
    pub search_attributes: Option<common_pb::SearchAttributes>,
    /// Grows with every change; clients send it back to update without losing a change.
    #[prost(int64, tag = "5")]
    pub conflict_token: i64,
    /// Nominal times up to this one (unix ms) have been taken from the spec.
    #[prost(int64, tag = "6")]
    pub last_processed_ms: i64,
    /// Starts waiting for their turn (overlap policies, triggers, backfills), oldest first.
    #[prost(message, repeated, tag = "7")]
    pub buffer: Vec<BufferedStart>,
    /// The result of the last scheduled run that completed, given to the next start (as
    /// Temporal's scheduler: `workflow.get_last_completion_result()`).
    #[prost(message, optional, tag = "8")]
    pub last_completion_result: Option<common_pb::Payloads>,
    /// The failure of the last scheduled run if it failed after that, given to the next start.
    #[prost(message, optional, tag = "9")]
    pub continued_failure: Option<uhrwerk_proto::temporal::api::failure::v1::Failure>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BufferedStart {
    #[prost(int64, tag = "1")]
    pub nominal_ms: i64,
    #[prost(int64, tag = "2")]
    pub actual_ms: i64,
    /// `ScheduleOverlapPolicy`; unspecified means the schedule's own.
    #[prost(int32, tag = "3")]
    pub overlap_policy: i32,
    /// Triggered or backfilled: runs even when paused and does not use up remaining actions.
    #[prost(bool, tag = "4")]
    pub manual: bool,
}

pub fn compiled_spec(record: &ScheduleRecord) -> Result<CompiledSpec> {
    let spec = record.schedule.as_ref().and_then(|s| s.spec.clone()).unwrap_or_default();
    CompiledSpec::compile(&spec).map_err(|e| Error::Internal(format!("stored schedule spec does not compile: {e}")))
}

fn ms(ts: &Option<Timestamp>) -> Option<i64> {
    ts.as_ref().map(time::timestamp_ms)
}

/// Applies a patch: an immediate trigger, backfills, pause or unpause.
pub fn apply_patch(record: &mut ScheduleRecord, patch: schedule_pb::SchedulePatch, now: i64) -> Result<()> {
    if let Some(trigger) = patch.trigger_immediately {
        let at = ms(&trigger.scheduled_time).unwrap_or(now);
        record.buffer.push(BufferedStart {
            nominal_ms: at,
            actual_ms: at,
            overlap_policy: trigger.overlap_policy,
            manual: true,
        });
    }
    if !patch.backfill_request.is_empty() {
        let spec = compiled_spec(record)?;
        for backfill in patch.backfill_request {
            let (Some(start), Some(end)) = (ms(&backfill.start_time), ms(&backfill.end_time)) else {
                return Err(Error::InvalidArgument("Backfill start and end time must be set.".into()));
            };
            if end < start {
                return Err(Error::InvalidArgument("Backfill end time is before its start time.".into()));
            }
            // Both ends of the range are included, as in Temporal.
            for t in spec.between(start - 1, end, super::MAX_TIMES) {
                record.buffer.push(BufferedStart {
                    nominal_ms: t.nominal_ms,
                    actual_ms: t.actual_ms,
                    overlap_policy: backfill.overlap_policy,
                    manual: true,
                });
            }
        }
    }
    let state = record.schedule.get_or_insert_with(Default::default).state.get_or_insert_with(Default::default);
    if !patch.pause.is_empty() {
        state.paused = true;
        state.notes = patch.pause;
    }
    if !patch.unpause.is_empty() {
        state.paused = false;
        state.notes = patch.unpause;
    }
    Ok(())
}

/// The next action times after `now`, as many as the schedule will still take.
pub fn future_times(record: &ScheduleRecord, now: i64, limit: usize) -> Vec<Timestamp> {
    let Ok(spec) = compiled_spec(record) else { return Vec::new() };
    let state = record.schedule.as_ref().and_then(|s| s.state.clone()).unwrap_or_default();
    let limit = if state.limited_actions { limit.min(state.remaining_actions.max(0) as usize) } else { limit };
    let mut out = Vec::new();
    let mut after = now.max(record.last_processed_ms);
    while out.len() < limit {
        let Some(next) = spec.next(after) else { break };
        out.push(time::timestamp(next.actual_ms));
        after = next.nominal_ms;
    }
    out
}

/// The schedule's own search attributes plus `TemporalSchedulePaused`, for list filters.
pub fn visible_attributes(record: &ScheduleRecord) -> common_pb::SearchAttributes {
    let mut attrs = record.search_attributes.clone().unwrap_or_default();
    let paused = record.schedule.as_ref().and_then(|s| s.state.as_ref()).is_some_and(|s| s.paused);
    attrs
        .indexed_fields
        .insert("TemporalSchedulePaused".into(), payload::encode(ValueType::Bool, &[Literal::Bool(paused)]));
    attrs
}

/// The overlap policy a buffered start runs under.
pub fn overlap_policy(record: &ScheduleRecord, start: &BufferedStart) -> enums_pb::ScheduleOverlapPolicy {
    use enums_pb::ScheduleOverlapPolicy as P;
    let own = record.schedule.as_ref().and_then(|s| s.policies.as_ref()).map_or(0, |p| p.overlap_policy);
    let chosen = if start.overlap_policy != 0 { start.overlap_policy } else { own };
    match P::try_from(chosen).unwrap_or(P::Unspecified) {
        P::Unspecified => P::Skip,
        other => other,
    }
}
