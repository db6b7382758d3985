//! Durable timers: what they are keyed by and what happens when one fires.
//!
//! Every firing is re-validated against the run's state; a timer whose task or attempt has
//! moved on is dropped without effect.

use crate::pb::enums::v1 as enums_pb;
use crate::state::RunState;
use crate::time::Millis;

use super::{Ctx, Effect, activity, workflow_task};
use crate::pb::history::v1 as history_pb;
use history_pb::history_event::Attributes;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum TimerKind {
    Unspecified = 0,
    WorkflowTaskStartToClose = 1,
    ActivityScheduleToStart = 2,
    ActivityStartToClose = 3,
    ActivityHeartbeat = 4,
    ActivityScheduleToClose = 5,
    ActivityRetry = 6,
    /// A user timer; `id` is its TimerStarted event id.
    UserTimer = 7,
    /// The first workflow task of a run with `first_workflow_task_backoff` is due.
    WorkflowBackoff = 8,
    /// The run's run timeout or the chain's execution timeout is reached.
    WorkflowTimeout = 9,
    /// A workflow task on the sticky queue was not picked up in time.
    WorkflowTaskScheduleToStart = 10,
}

/// A timer of one run; `(kind, id, attempt)` identifies it within the run.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct TimerTask {
    #[prost(int64, tag = "1")]
    pub fire_at_ms: Millis,
    #[prost(enumeration = "TimerKind", tag = "2")]
    pub kind: i32,
    /// Scheduled event id of the workflow task or activity.
    #[prost(int64, tag = "3")]
    pub id: i64,
    #[prost(int32, tag = "4")]
    pub attempt: i32,
}

impl TimerTask {
    /// A timer identity without a due time, for cancellation.
    pub fn key(kind: TimerKind, id: i64, attempt: i32) -> Self {
        Self { fire_at_ms: 0, kind: kind as i32, id, attempt }
    }

    pub fn timer_kind(&self) -> TimerKind {
        TimerKind::try_from(self.kind).unwrap_or(TimerKind::Unspecified)
    }
}

/// Handles a due timer.
pub fn fire_timer(ctx: &mut Ctx<'_>, st: &mut RunState, timer: &TimerTask) {
    use enums_pb::TimeoutType as T;
    ctx.effects.push(Effect::TimerDone(timer.clone()));
    match timer.timer_kind() {
        TimerKind::WorkflowTaskStartToClose => workflow_task::time_out_workflow_task(ctx, st, timer.id, timer.attempt),
        TimerKind::WorkflowTaskScheduleToStart => {
            workflow_task::sticky_schedule_to_start_timed_out(ctx, st, timer.id, timer.attempt)
        }
        TimerKind::ActivityScheduleToStart => {
            activity::activity_timer_fired(ctx, st, timer.id, timer.attempt, T::ScheduleToStart)
        }
        TimerKind::ActivityStartToClose => {
            activity::activity_timer_fired(ctx, st, timer.id, timer.attempt, T::StartToClose)
        }
        TimerKind::ActivityHeartbeat => activity::activity_timer_fired(ctx, st, timer.id, timer.attempt, T::Heartbeat),
        TimerKind::ActivityScheduleToClose => {
            activity::activity_timer_fired(ctx, st, timer.id, timer.attempt, T::ScheduleToClose)
        }
        TimerKind::ActivityRetry => activity::retry_backoff_elapsed(ctx, st, timer.id, timer.attempt),
        TimerKind::UserTimer => user_timer_fired(ctx, st, timer.id),
        TimerKind::WorkflowBackoff => super::schedule_workflow_task(ctx, st),
        TimerKind::WorkflowTimeout => super::close::time_out(ctx, st),
        TimerKind::Unspecified => {}
    }
}

/// A user timer is due: TimerFired, buffered while a workflow task is in flight.
fn user_timer_fired(ctx: &mut Ctx<'_>, st: &mut RunState, started_event_id: i64) {
    if !st.is_open() {
        return;
    }
    let Some(timer_id) =
        st.timers.values().find(|t| t.started_event_id == started_event_id).map(|t| t.timer_id.clone())
    else {
        return;
    };
    st.timers.remove(&timer_id);
    ctx.append_external(
        st,
        enums_pb::EventType::TimerFired,
        Attributes::TimerFiredEventAttributes(history_pb::TimerFiredEventAttributes { timer_id, started_event_id }),
    );
}
