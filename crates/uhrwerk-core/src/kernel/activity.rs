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

/// An activity's timeouts as Temporal completes them, from `[schedule_to_close,
/// schedule_to_start, start_to_close, heartbeat]` in ms (0 = unset): each bounded by the one
/// above it and by the run's timeout. None when neither schedule-to-close nor start-to-close is
/// set.
pub(super) fn normalize_timeouts(
    [mut s2c, mut s2s, mut stc, heartbeat]: [i64; 4],
    run_timeout: i64,
) -> Option<(i64, i64, i64, i64)> {
    if s2c > 0 {
        s2s = if s2s > 0 { s2s.min(s2c) } else { s2c };
        stc = if stc > 0 { stc.min(s2c) } else { s2c };
    } else if stc > 0 {
        s2c = run_timeout;
        if s2s == 0 {
            s2s = run_timeout;
        }
    } else {
        return None;
    }
    if run_timeout > 0 {
        s2c = if s2c > 0 { s2c.min(run_timeout) } else { run_timeout };
        s2s = if s2s > 0 { s2s.min(run_timeout) } else { run_timeout };
        stc = stc.min(run_timeout);
    }
    Some((s2c, s2s, stc, heartbeat.min(stc)))
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
    // A paused activity's queued task is dropped; unpausing queues the attempt again.
    if ai.state != ActivityState::Scheduled as i32 || ai.attempt != attempt || ai.paused {
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

/// Ends the current attempt with `failure`: schedules a retry, or writes the final events. A
/// paused activity whose failure could be retried waits for its unpause instead, with its
/// attempt counted (as Temporal, even past the retry policy's maximum).
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
    let decision = if ai.paused && !ai.cancel_requested && retry::is_retryable(&failure, &policy) {
        Decision::Retry(0)
    } else {
        retry::decide(&failure, &policy, ai.attempt, ctx.now, expiration)
    };
    match decision {
        Decision::Retry(backoff) => {
            let ai = st.activities.get_mut(&scheduled_event_id).expect("checked above");
            for kind in [TimerKind::ActivityStartToClose, TimerKind::ActivityHeartbeat] {
                ctx.effects.push(Effect::TimerDone(TimerTask::key(kind, scheduled_event_id, ai.attempt)));
            }
            ai.attempt += 1;
            ai.last_failure = Some(failure);
            ai.last_worker_identity = std::mem::take(&mut ai.started_identity);
            ai.started_time_ms = 0;
            ai.request_id.clear();
            begin_next_attempt(ai);
            ctx.state_changed = true;
            if ai.paused {
                ai.state = ActivityState::Scheduled as i32;
                ai.attempt_scheduled_time_ms = ctx.now;
            } else {
                ai.state = ActivityState::Backoff as i32;
                ctx.arm(TimerKind::ActivityRetry, ctx.now + backoff, scheduled_event_id, ai.attempt);
            }
        }
        Decision::Stop(retry_state) => {
            finish(ctx, st, scheduled_event_id, |started_event_id| {
                outcome(failure, scheduled_event_id, started_event_id, retry_state)
            });
        }
    }
}

/// What a heartbeat answers: whether the running attempt should stop, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The workflow asked to cancel the activity.
    pub cancel_requested: bool,
    /// An operator paused it.
    pub paused: bool,
    /// An operator reset it.
    pub reset: bool,
}

/// Per-attempt operator marks end when an attempt ends: a reset applies to the attempt that ran
/// when it was asked for, and the heartbeat details go if the reset said so.
pub(super) fn begin_next_attempt(ai: &mut ActivityInfo) {
    if ai.reset_heartbeats {
        ai.heartbeat_details = None;
        ai.last_heartbeat_ms = 0;
    }
    ai.activity_reset = false;
    ai.reset_heartbeats = false;
}

pub fn record_activity_heartbeat(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    token: &TaskToken,
    details: Option<common_pb::Payloads>,
) -> Result<HeartbeatAnswer> {
    let ai = started_activity(st, token)?;
    let answer = HeartbeatAnswer { cancel_requested: ai.cancel_requested, paused: ai.paused, reset: ai.activity_reset };
    let ai = st.activities.get_mut(&token.scheduled_event_id).expect("checked above");
    if details.is_some() {
        ai.heartbeat_details = details;
    }
    ai.last_heartbeat_ms = ctx.now;
    ctx.state_changed = true;
    Ok(answer)
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
    ctx.state_changed = true;
    if !ai.paused {
        dispatch_attempt(ctx, ai);
    }
}

/// Queues the current attempt of a scheduled activity, with its schedule-to-start deadline.
pub(super) fn dispatch_attempt(ctx: &mut Ctx<'_>, ai: &ActivityInfo) {
    let (scheduled_event_id, attempt) = (ai.scheduled_event_id, ai.attempt);
    ctx.effects.push(Effect::DispatchActivityTask { task_queue: ai.task_queue.clone(), scheduled_event_id, attempt });
    if ai.schedule_to_start_ms > 0 {
        ctx.arm(TimerKind::ActivityScheduleToStart, ctx.now + ai.schedule_to_start_ms, scheduled_event_id, attempt);
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
        TimeoutType::ScheduleToClose
            if ai.state == ActivityState::Scheduled as i32 && !ai.paused && schedule_to_start_due =>
        {
            TimeoutType::ScheduleToStart
        }
        other => other,
    };
    let attempt = if timeout_type == TimeoutType::ScheduleToStart { ai.attempt } else { attempt };
    let applies = match timeout_type {
        TimeoutType::ScheduleToClose => true,
        // A paused activity is not waiting for a worker.
        TimeoutType::ScheduleToStart => {
            ai.state == ActivityState::Scheduled as i32 && ai.attempt == attempt && !ai.paused
        }
        TimeoutType::StartToClose | TimeoutType::Heartbeat => started && ai.attempt == attempt,
        TimeoutType::Unspecified => false,
    };
    if !applies {
        return;
    }
    // The deadline from the activity's current options (an operator may have changed them
    // since the timer was armed): none left, or a later one re-arms.
    let (timeout_ms, since) = match timeout_type {
        TimeoutType::Heartbeat => (ai.heartbeat_ms, ai.last_heartbeat_ms.max(ai.started_time_ms)),
        TimeoutType::StartToClose => (ai.start_to_close_ms, ai.started_time_ms),
        TimeoutType::ScheduleToClose => (ai.schedule_to_close_ms, ai.scheduled_time_ms),
        _ => (ai.schedule_to_start_ms, ai.attempt_scheduled_time_ms),
    };
    if timeout_ms <= 0 {
        return;
    }
    if since + timeout_ms > ctx.now {
        let kind = match timeout_type {
            TimeoutType::Heartbeat => TimerKind::ActivityHeartbeat,
            TimeoutType::StartToClose => TimerKind::ActivityStartToClose,
            TimeoutType::ScheduleToClose => TimerKind::ActivityScheduleToClose,
            _ => TimerKind::ActivityScheduleToStart,
        };
        let attempt = if kind == TimerKind::ActivityScheduleToClose { 0 } else { attempt };
        ctx.arm(kind, since + timeout_ms, scheduled_event_id, attempt);
        return;
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
