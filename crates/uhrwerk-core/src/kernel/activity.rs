//! The activity cycle: dispatch, start, heartbeat, completion, failure with retries, timeouts.
//!
//! Between attempts no events are written; only the final attempt's ActivityTaskStarted
//! (with `attempt` and `last_failure`) and its outcome reach the history.

use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::failure::v1 as failure_pb;
use crate::pb::history::v1 as history_pb;
use crate::retry::{self, Decision};
use crate::state::{ActivityInfo, ActivityState, RunState};
use crate::token::{TaskKind, TaskToken};

use super::{BUFFERED_STARTED_ID, Ctx, Effect, Error, Result, TimerKind, TimerTask, new_event, schedule_workflow_task};
use enums_pb::{EventType, RetryState, TimeoutType};
use history_pb::history_event::Attributes;

/// What an activity poller needs to build its response.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityStarted {
    pub token: Vec<u8>,
    pub info: ActivityInfo,
}

fn not_found() -> Error {
    Error::NotFound("invalid activityID or activity already timed out or invoking workflow is completed".into())
}

/// Records that a poller took attempt `attempt` of the activity at `scheduled_event_id`.
pub fn record_activity_started(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    scheduled_event_id: i64,
    attempt: i32,
    identity: &str,
    request_id: &str,
) -> Result<ActivityStarted> {
    if !st.is_open() {
        return Err(not_found());
    }
    let Some(ai) = st.activities.get_mut(&scheduled_event_id) else { return Err(not_found()) };
    if ai.state != ActivityState::Scheduled as i32 || ai.attempt != attempt {
        return Err(not_found());
    }
    ai.state = ActivityState::Started as i32;
    ai.started_time_ms = ctx.now;
    ai.started_identity = identity.to_string();
    ai.request_id = request_id.to_string();
    ai.last_heartbeat_ms = 0;
    let info = ai.clone();
    ctx.state_changed = true;
    ctx.effects.push(Effect::TaskStarted { scheduled_event_id });
    ctx.effects.push(Effect::TimerDone(TimerTask::key(
        TimerKind::ActivityScheduleToStart,
        scheduled_event_id,
        attempt,
    )));
    if info.start_to_close_ms > 0 {
        ctx.arm(TimerKind::ActivityStartToClose, ctx.now + info.start_to_close_ms, scheduled_event_id, attempt);
    }
    if info.heartbeat_ms > 0 {
        ctx.arm(TimerKind::ActivityHeartbeat, ctx.now + info.heartbeat_ms, scheduled_event_id, attempt);
    }
    let token = TaskToken {
        kind: TaskKind::ActivityTask as i32,
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: st.run_id.clone(),
        scheduled_event_id,
        started_event_id: 0,
        attempt,
        activity_id: info.activity_id.clone(),
    };
    Ok(ActivityStarted { token: token.encode(), info })
}

/// Starts the first attempt of an activity that a workflow task completion just scheduled with
/// `request_eager_execution`, for the worker that completed the task (as Temporal's eager
/// activities): the task is not dispatched and has no schedule-to-start timeout. None when the
/// same completion already cancelled it or closed the run.
pub(super) fn start_eagerly(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    scheduled_event_id: i64,
    identity: &str,
) -> Option<ActivityStarted> {
    let pending = st.activities.get(&scheduled_event_id)?;
    if !st.is_open() || pending.state != ActivityState::Scheduled as i32 || pending.attempt != 1 {
        return None;
    }
    let schedule_to_start =
        |t: &TimerTask| t.timer_kind() == TimerKind::ActivityScheduleToStart && t.id == scheduled_event_id;
    ctx.effects.retain(|e| match e {
        Effect::DispatchActivityTask { scheduled_event_id: id, .. } => *id != scheduled_event_id,
        Effect::ArmTimer(t) => !schedule_to_start(t),
        _ => true,
    });
    let request_id = format!("eager-{}-{scheduled_event_id}", st.run_id);
    let started = record_activity_started(ctx, st, scheduled_event_id, 1, identity, &request_id).ok()?;
    // Nothing was queued or armed for it, so there is nothing to take back either.
    ctx.effects.retain(|e| match e {
        Effect::TaskStarted { scheduled_event_id: id } => *id != scheduled_event_id,
        Effect::TimerDone(t) => !schedule_to_start(t),
        _ => true,
    });
    Some(started)
}

/// The started activity attempt named by `token`.
fn started_activity<'s>(st: &'s RunState, token: &TaskToken) -> Result<&'s ActivityInfo> {
    if !st.is_open() {
        return Err(Error::NotFound("workflow execution already completed".into()));
    }
    if token.task_kind() != TaskKind::ActivityTask {
        return Err(not_found());
    }
    match st.activities.get(&token.scheduled_event_id) {
        Some(ai) if ai.state == ActivityState::Started as i32 && ai.attempt == token.attempt => Ok(ai),
        _ => Err(not_found()),
    }
}

/// Writes the final attempt's Started event and the outcome built by `outcome(started_event_id)`,
/// buffered if a workflow task is in flight, then removes the activity.
fn finish(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    scheduled_event_id: i64,
    outcome: impl FnOnce(i64) -> (EventType, Attributes),
) {
    let ai = st.activities.remove(&scheduled_event_id).expect("caller checked the activity");
    for kind in [TimerKind::ActivityStartToClose, TimerKind::ActivityHeartbeat, TimerKind::ActivityScheduleToStart] {
        ctx.effects.push(Effect::TimerDone(TimerTask::key(kind, scheduled_event_id, ai.attempt)));
    }
    ctx.effects.push(Effect::TimerDone(TimerTask::key(TimerKind::ActivityScheduleToClose, scheduled_event_id, 0)));
    let started = (ai.state == ActivityState::Started as i32).then(|| {
        new_event(
            0,
            ai.started_time_ms,
            EventType::ActivityTaskStarted,
            Attributes::ActivityTaskStartedEventAttributes(history_pb::ActivityTaskStartedEventAttributes {
                scheduled_event_id,
                identity: ai.started_identity.clone(),
                request_id: ai.request_id.clone(),
                attempt: ai.attempt,
                last_failure: ai.last_failure.clone(),
                ..Default::default()
            }),
        )
    });
    let buffering = st.started_workflow_task().is_some();
    let started_event_id = match (started, buffering) {
        (None, _) => 0,
        (Some(event), true) => {
            st.buffered_events.push(event);
            BUFFERED_STARTED_ID
        }
        (Some(event), false) => ctx.push_persisted(st, event),
    };
    let (event_type, attributes) = outcome(started_event_id);
    let event = new_event(0, ctx.now, event_type, attributes);
    if buffering {
        st.buffered_events.push(event);
        ctx.state_changed = true;
    } else {
        ctx.push_persisted(st, event);
        schedule_workflow_task(ctx, st);
    }
}

pub fn complete_activity(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    token: &TaskToken,
    result: Option<common_pb::Payloads>,
    identity: &str,
) -> Result<()> {
    started_activity(st, token)?;
    let scheduled_event_id = token.scheduled_event_id;
    let identity = identity.to_string();
    finish(ctx, st, scheduled_event_id, |started_event_id| {
        (
            EventType::ActivityTaskCompleted,
            Attributes::ActivityTaskCompletedEventAttributes(history_pb::ActivityTaskCompletedEventAttributes {
                result,
                scheduled_event_id,
                started_event_id,
                identity,
                ..Default::default()
            }),
        )
    });
    Ok(())
}

pub fn fail_activity(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    token: &TaskToken,
    failure: failure_pb::Failure,
    identity: &str,
    last_heartbeat_details: Option<common_pb::Payloads>,
) -> Result<()> {
    started_activity(st, token)?;
    let scheduled_event_id = token.scheduled_event_id;
    if let Some(details) = last_heartbeat_details
        && let Some(ai) = st.activities.get_mut(&scheduled_event_id)
    {
        ai.heartbeat_details = Some(details);
    }
    let identity = identity.to_string();
    end_attempt(
        ctx,
        st,
        scheduled_event_id,
        failure,
        move |failure, scheduled_event_id, started_event_id, retry_state| {
            (
                EventType::ActivityTaskFailed,
                Attributes::ActivityTaskFailedEventAttributes(history_pb::ActivityTaskFailedEventAttributes {
                    failure: Some(failure),
                    scheduled_event_id,
                    started_event_id,
                    identity,
                    retry_state: retry_state as i32,
                    ..Default::default()
                }),
            )
        },
    );
    Ok(())
}

/// Ends the current attempt with `failure`: schedules a retry, or writes the final events.
fn end_attempt(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    scheduled_event_id: i64,
    failure: failure_pb::Failure,
    outcome: impl FnOnce(failure_pb::Failure, i64, i64, RetryState) -> (EventType, Attributes),
) {
    let ai = st.activities.get(&scheduled_event_id).expect("caller checked the activity");
    let policy = ai.retry_policy.clone().unwrap_or_default();
    let expiration = if ai.schedule_to_close_ms > 0 { ai.scheduled_time_ms + ai.schedule_to_close_ms } else { 0 };
    match retry::decide(&failure, &policy, ai.attempt, ctx.now, expiration) {
        Decision::Retry(backoff) => {
            let ai = st.activities.get_mut(&scheduled_event_id).expect("checked above");
            for kind in [TimerKind::ActivityStartToClose, TimerKind::ActivityHeartbeat] {
                ctx.effects.push(Effect::TimerDone(TimerTask::key(kind, scheduled_event_id, ai.attempt)));
            }
            ai.attempt += 1;
            ai.state = ActivityState::Backoff as i32;
            ai.last_failure = Some(failure);
            ai.last_worker_identity = std::mem::take(&mut ai.started_identity);
            ai.started_time_ms = 0;
            ai.request_id.clear();
            ctx.state_changed = true;
            ctx.arm(TimerKind::ActivityRetry, ctx.now + backoff, scheduled_event_id, ai.attempt);
        }
        Decision::Stop(retry_state) => {
            finish(ctx, st, scheduled_event_id, |started_event_id| {
                outcome(failure, scheduled_event_id, started_event_id, retry_state)
            });
        }
    }
}

/// Returns whether the workflow asked to cancel the activity.
pub fn record_activity_heartbeat(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    token: &TaskToken,
    details: Option<common_pb::Payloads>,
) -> Result<bool> {
    let cancel_requested = started_activity(st, token)?.cancel_requested;
    let ai = st.activities.get_mut(&token.scheduled_event_id).expect("checked above");
    if details.is_some() {
        ai.heartbeat_details = details;
    }
    ai.last_heartbeat_ms = ctx.now;
    ctx.state_changed = true;
    Ok(cancel_requested)
}

/// The retry backoff of `attempt` elapsed: queue the attempt.
pub(super) fn retry_backoff_elapsed(ctx: &mut Ctx<'_>, st: &mut RunState, scheduled_event_id: i64, attempt: i32) {
    if !st.is_open() {
        return;
    }
    let Some(ai) = st.activities.get_mut(&scheduled_event_id) else { return };
    if ai.state != ActivityState::Backoff as i32 || ai.attempt != attempt {
        return;
    }
    ai.state = ActivityState::Scheduled as i32;
    ai.attempt_scheduled_time_ms = ctx.now;
    let (task_queue, s2s) = (ai.task_queue.clone(), ai.schedule_to_start_ms);
    ctx.state_changed = true;
    ctx.effects.push(Effect::DispatchActivityTask { task_queue, scheduled_event_id, attempt });
    if s2s > 0 {
        ctx.arm(TimerKind::ActivityScheduleToStart, ctx.now + s2s, scheduled_event_id, attempt);
    }
}

/// An activity timer of `timeout_type` fired for `attempt` (0 for the schedule-to-close timer).
pub(super) fn activity_timer_fired(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    scheduled_event_id: i64,
    attempt: i32,
    timeout_type: TimeoutType,
) {
    if !st.is_open() {
        return;
    }
    let Some(ai) = st.activities.get(&scheduled_event_id) else { return };
    let started = ai.state == ActivityState::Started as i32;
    // Timers that fall due together report the timeout Temporal reports: an expired
    // schedule-to-close deadline wins over start-to-close and heartbeat, and an activity never
    // started whose schedule-to-start deadline passed timed out schedule-to-start.
    let schedule_to_close_due =
        ai.schedule_to_close_ms > 0 && ai.scheduled_time_ms + ai.schedule_to_close_ms <= ctx.now;
    let schedule_to_start_due =
        ai.schedule_to_start_ms > 0 && ai.attempt_scheduled_time_ms + ai.schedule_to_start_ms <= ctx.now;
    let timeout_type = match timeout_type {
        TimeoutType::StartToClose | TimeoutType::Heartbeat
            if started && ai.attempt == attempt && schedule_to_close_due =>
        {
            TimeoutType::ScheduleToClose
        }
        TimeoutType::ScheduleToClose if ai.state == ActivityState::Scheduled as i32 && schedule_to_start_due => {
            TimeoutType::ScheduleToStart
        }
        other => other,
    };
    let attempt = if timeout_type == TimeoutType::ScheduleToStart { ai.attempt } else { attempt };
    let applies = match timeout_type {
        TimeoutType::ScheduleToClose => true,
        TimeoutType::ScheduleToStart => ai.state == ActivityState::Scheduled as i32 && ai.attempt == attempt,
        TimeoutType::StartToClose | TimeoutType::Heartbeat => started && ai.attempt == attempt,
        TimeoutType::Unspecified => false,
    };
    if !applies {
        return;
    }
    if timeout_type == TimeoutType::Heartbeat {
        let last = ai.last_heartbeat_ms.max(ai.started_time_ms);
        let due = last + ai.heartbeat_ms;
        if due > ctx.now {
            ctx.arm(TimerKind::ActivityHeartbeat, due, scheduled_event_id, attempt);
            return;
        }
    }
    let failure = timeout_failure(ai, timeout_type);
    let outcome = move |failure, scheduled_event_id, started_event_id, retry_state: RetryState| {
        (
            EventType::ActivityTaskTimedOut,
            Attributes::ActivityTaskTimedOutEventAttributes(history_pb::ActivityTaskTimedOutEventAttributes {
                failure: Some(failure),
                scheduled_event_id,
                started_event_id,
                retry_state: retry_state as i32,
            }),
        )
    };
    match timeout_type {
        TimeoutType::StartToClose | TimeoutType::Heartbeat => {
            end_attempt(ctx, st, scheduled_event_id, failure, outcome)
        }
        TimeoutType::ScheduleToStart => finish(ctx, st, scheduled_event_id, |started| {
            outcome(failure, scheduled_event_id, started, RetryState::NonRetryableFailure)
        }),
        _ => finish(ctx, st, scheduled_event_id, |started| {
            outcome(failure, scheduled_event_id, started, RetryState::Timeout)
        }),
    }
}

fn timeout_failure(ai: &ActivityInfo, timeout_type: TimeoutType) -> failure_pb::Failure {
    let name = match timeout_type {
        TimeoutType::StartToClose => "StartToClose",
        TimeoutType::ScheduleToStart => "ScheduleToStart",
        TimeoutType::ScheduleToClose => "ScheduleToClose",
        TimeoutType::Heartbeat => "Heartbeat",
        TimeoutType::Unspecified => "Unspecified",
    };
    let cause = if timeout_type == TimeoutType::ScheduleToClose { ai.last_failure.clone().map(Box::new) } else { None };
    failure_pb::Failure {
        message: format!("activity {name} timeout"),
        source: "Server".into(),
        cause,
        failure_info: Some(failure_pb::failure::FailureInfo::TimeoutFailureInfo(failure_pb::TimeoutFailureInfo {
            timeout_type: timeout_type as i32,
            last_heartbeat_details: ai.heartbeat_details.clone(),
        })),
        ..Default::default()
    }
}

/// The workflow asked to cancel an activity. One that has not started is canceled at once (and
/// the workflow gets a new task to see it); a started one learns it from its next heartbeat.
pub(super) fn request_cancel_activity(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    scheduled_event_id: i64,
    identity: &str,
) {
    let requested_id = ctx.append(
        st,
        EventType::ActivityTaskCancelRequested,
        Attributes::ActivityTaskCancelRequestedEventAttributes(
            history_pb::ActivityTaskCancelRequestedEventAttributes {
                scheduled_event_id,
                workflow_task_completed_event_id: completed_event_id,
            },
        ),
    );
    let ai = st.activities.get_mut(&scheduled_event_id).expect("caller checked the activity");
    ai.cancel_requested = true;
    ai.cancel_requested_event_id = requested_id;
    if ai.state == ActivityState::Started as i32 {
        ctx.state_changed = true;
        return;
    }
    let ai = st.activities.remove(&scheduled_event_id).expect("checked above");
    ctx.effects.push(Effect::TaskStarted { scheduled_event_id });
    for kind in [TimerKind::ActivityScheduleToStart, TimerKind::ActivityRetry] {
        ctx.effects.push(Effect::TimerDone(TimerTask::key(kind, scheduled_event_id, ai.attempt)));
    }
    ctx.effects.push(Effect::TimerDone(TimerTask::key(TimerKind::ActivityScheduleToClose, scheduled_event_id, 0)));
    ctx.append(
        st,
        EventType::ActivityTaskCanceled,
        Attributes::ActivityTaskCanceledEventAttributes(history_pb::ActivityTaskCanceledEventAttributes {
            // The same details as Temporal: a JSON string payload.
            details: Some(common_pb::Payloads {
                payloads: vec![common_pb::Payload {
                    metadata: [("encoding".to_string(), b"json/plain".to_vec())].into_iter().collect(),
                    data: b"\"ACTIVITY_ID_NOT_STARTED\"".to_vec(),
                    ..Default::default()
                }],
            }),
            latest_cancel_requested_event_id: requested_id,
            scheduled_event_id,
            started_event_id: 0,
            identity: identity.to_string(),
            ..Default::default()
        }),
    );
    ctx.needs_workflow_task = true;
}

/// The worker reports that a started activity honoured its cancellation.
pub fn cancel_activity(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    token: &TaskToken,
    details: Option<common_pb::Payloads>,
    identity: &str,
) -> Result<()> {
    let requested_id = started_activity(st, token)?.cancel_requested_event_id;
    let scheduled_event_id = token.scheduled_event_id;
    let identity = identity.to_string();
    finish(ctx, st, scheduled_event_id, |started_event_id| {
        (
            EventType::ActivityTaskCanceled,
            Attributes::ActivityTaskCanceledEventAttributes(history_pb::ActivityTaskCanceledEventAttributes {
                details,
                latest_cancel_requested_event_id: requested_id,
                scheduled_event_id,
                started_event_id,
                identity,
                ..Default::default()
            }),
        )
    });
    Ok(())
}

/// The token of the current attempt of the started activity `activity_id`, for the `*ById` RPCs.
pub fn activity_token_by_id(st: &RunState, activity_id: &str) -> Result<TaskToken> {
    if !st.is_open() {
        return Err(Error::NotFound("workflow execution already completed".into()));
    }
    let ai = st
        .activities
        .values()
        .find(|ai| ai.activity_id == activity_id && ai.state == ActivityState::Started as i32)
        .ok_or_else(not_found)?;
    Ok(TaskToken {
        kind: TaskKind::ActivityTask as i32,
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: st.run_id.clone(),
        scheduled_event_id: ai.scheduled_event_id,
        started_event_id: 0,
        attempt: ai.attempt,
        activity_id: ai.activity_id.clone(),
    })
}
