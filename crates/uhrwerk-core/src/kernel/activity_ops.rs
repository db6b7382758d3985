//! Operator actions on a run's pending activities: pause, unpause, reset and changed options
//! (the PauseActivity, UnpauseActivity, ResetActivity and UpdateActivityOptions RPCs).
//!
//! As in Temporal none of them writes an event. A running attempt is never interrupted: it
//! learns of a pause or reset from its heartbeat answer, and the outcome it reports is applied
//! with the activity's new state. A queued attempt is taken back and queued again.

use crate::pb::activity::v1 as activity_pb;
use crate::pb::common::v1 as common_pb;
use crate::pb::taskqueue::v1 as taskqueue_pb;
use crate::state::{ActivityInfo, ActivityPauseInfo, ActivityState, RunState};
use crate::time::{self, Millis};

use super::activity::{dispatch_attempt, normalize_timeouts};
use super::{Ctx, Effect, Error, Result, TimerKind, TimerTask};

/// Which pending activities an operator action names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivitySelector {
    Id(String),
    /// Every pending activity of this type.
    Type(String),
    All,
}

fn activity_not_found() -> Error {
    Error::NotFound("Can't find pending activity with such ID. Invalid activityID or activity already completed".into())
}

/// The scheduled event ids of the pending activities `selector` names; at least one.
fn selected(st: &RunState, selector: &ActivitySelector) -> Result<Vec<i64>> {
    if !st.is_open() {
        return Err(Error::NotFound("workflow execution already completed".into()));
    }
    let ids: Vec<i64> = st
        .activities
        .values()
        .filter(|ai| match selector {
            ActivitySelector::Id(id) => &ai.activity_id == id,
            ActivitySelector::Type(name) => &ai.activity_type == name,
            ActivitySelector::All => true,
        })
        .map(|ai| ai.scheduled_event_id)
        .collect();
    if ids.is_empty() {
        return Err(activity_not_found());
    }
    Ok(ids)
}

fn is_waiting(ai: &ActivityInfo) -> bool {
    ai.state == ActivityState::Scheduled as i32 || ai.state == ActivityState::Backoff as i32
}

/// Takes back whatever waits for the current attempt: its queued task, its schedule-to-start
/// deadline and its retry backoff.
fn withdraw_attempt(ctx: &mut Ctx<'_>, ai: &ActivityInfo) {
    let id = ai.scheduled_event_id;
    ctx.effects.push(Effect::TaskStarted { scheduled_event_id: id });
    for kind in [TimerKind::ActivityScheduleToStart, TimerKind::ActivityRetry] {
        ctx.effects.push(Effect::TimerDone(TimerTask::key(kind, id, ai.attempt)));
    }
}

/// Starts the current attempt of a waiting activity over (its old one already withdrawn by the
/// caller, before the attempt number changed): queued now, or after `delay_ms` (an operator's
/// jitter) as if it were a retry backoff.
fn schedule_again(ctx: &mut Ctx<'_>, ai: &mut ActivityInfo, delay_ms: Millis) {
    super::activity::begin_next_attempt(ai);
    if delay_ms > 0 {
        ai.state = ActivityState::Backoff as i32;
        ctx.arm(TimerKind::ActivityRetry, ctx.now + delay_ms, ai.scheduled_event_id, ai.attempt);
    } else {
        ai.state = ActivityState::Scheduled as i32;
        ai.attempt_scheduled_time_ms = ctx.now;
        dispatch_attempt(ctx, ai);
    }
}

/// Who asks for a pause, and why.
#[derive(Debug, Clone, Default)]
pub struct PauseRequest {
    pub identity: String,
    pub reason: String,
    pub request_id: String,
}

/// Pauses the named activities. A waiting attempt is taken back from its queue; a running one
/// goes on, and if it fails it waits for the unpause instead of retrying.
pub fn pause_activities(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    selector: &ActivitySelector,
    request: &PauseRequest,
) -> Result<()> {
    for id in selected(st, selector)? {
        let ai = st.activities.get_mut(&id).expect("selected");
        if ai.paused {
            // The same request again is not an error (Temporal compares the request ids).
            if ai.pause_info.as_ref().map(|p| p.request_id.as_str()).unwrap_or_default() == request.request_id {
                continue;
            }
            return Err(Error::FailedPrecondition("activity is already paused".into()));
        }
        ai.paused = true;
        ai.pause_info = Some(ActivityPauseInfo {
            pause_time_ms: ctx.now,
            identity: request.identity.clone(),
            reason: request.reason.clone(),
            request_id: request.request_id.clone(),
        });
        if ai.state == ActivityState::Scheduled as i32 {
            withdraw_attempt(ctx, ai);
        }
        ctx.state_changed = true;
    }
    Ok(())
}

/// Options of an unpause.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpauseOptions {
    /// Start counting attempts from 1 again.
    pub reset_attempts: bool,
    pub reset_heartbeat: bool,
    /// Queue the next attempt this much later (the request's jitter, drawn by the caller).
    pub delay_ms: Millis,
}

/// Unpauses the named activities (those not paused are left alone); a waiting one is queued
/// again at once.
pub fn unpause_activities(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    selector: &ActivitySelector,
    options: UnpauseOptions,
) -> Result<()> {
    for id in selected(st, selector)? {
        let ai = st.activities.get_mut(&id).expect("selected");
        if !ai.paused {
            continue;
        }
        ai.paused = false;
        ai.pause_info = None;
        if options.reset_heartbeat {
            ai.heartbeat_details = None;
            ai.last_heartbeat_ms = 0;
        }
        if is_waiting(ai) {
            withdraw_attempt(ctx, ai);
            if options.reset_attempts {
                ai.attempt = 1;
            }
            schedule_again(ctx, ai, options.delay_ms);
        } else if options.reset_attempts {
            ai.attempt = 1;
        }
        ctx.state_changed = true;
    }
    Ok(())
}

/// Options of a reset.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResetOptions {
    pub reset_heartbeat: bool,
    pub keep_paused: bool,
    pub delay_ms: Millis,
    /// Go back to the options the workflow scheduled the activity with.
    pub restore_original_options: bool,
}

/// Resets the named activities to their first attempt. A running attempt goes on and is told
/// by its heartbeats; a waiting one is queued again at once (unless it stays paused).
pub fn reset_activities(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    selector: &ActivitySelector,
    options: ResetOptions,
) -> Result<()> {
    let run_timeout = st.run_timeout_ms;
    for id in selected(st, selector)? {
        let ai = st.activities.get_mut(&id).expect("selected");
        if is_waiting(ai) {
            withdraw_attempt(ctx, ai);
        }
        ai.attempt = 1;
        ai.activity_reset = true;
        ai.reset_heartbeats |= options.reset_heartbeat;
        if options.restore_original_options
            && let Some(original) = ai.original_options.take()
        {
            apply_options(ai, &original, run_timeout)?;
        }
        if ai.paused && !options.keep_paused {
            ai.paused = false;
            ai.pause_info = None;
        }
        if is_waiting(ai) && !ai.paused {
            schedule_again(ctx, ai, options.delay_ms);
        }
        ctx.state_changed = true;
    }
    Ok(())
}

/// The options an activity runs with now, as the API shows them.
pub fn activity_options(ai: &ActivityInfo) -> activity_pb::ActivityOptions {
    let policy = ai.retry_policy.clone().unwrap_or_default();
    activity_pb::ActivityOptions {
        task_queue: Some(taskqueue_pb::TaskQueue {
            name: ai.task_queue.clone(),
            normal_name: ai.task_queue.clone(),
            ..Default::default()
        }),
        schedule_to_close_timeout: Some(time::duration(ai.schedule_to_close_ms)),
        schedule_to_start_timeout: Some(time::duration(ai.schedule_to_start_ms)),
        start_to_close_timeout: Some(time::duration(ai.start_to_close_ms)),
        heartbeat_timeout: Some(time::duration(ai.heartbeat_ms)),
        retry_policy: Some(common_pb::RetryPolicy {
            initial_interval: policy.initial_interval,
            backoff_coefficient: policy.backoff_coefficient,
            maximum_interval: policy.maximum_interval,
            maximum_attempts: policy.maximum_attempts,
            non_retryable_error_types: Vec::new(),
        }),
        priority: ai.priority.clone(),
        ..Default::default()
    }
}

/// Makes `options` the activity's, with Temporal's completion of the timeouts; the retry
/// policy's non-retryable error types stay.
fn apply_options(ai: &mut ActivityInfo, options: &activity_pb::ActivityOptions, run_timeout: Millis) -> Result<()> {
    let timeouts = [
        &options.schedule_to_close_timeout,
        &options.schedule_to_start_timeout,
        &options.start_to_close_timeout,
        &options.heartbeat_timeout,
    ];
    if timeouts.iter().any(|d| time::is_negative(d)) {
        return Err(Error::InvalidArgument("Invalid ActivityTaskTimeouts.".into()));
    }
    let (s2c, s2s, stc, heartbeat) =
        normalize_timeouts(timeouts.map(time::duration_ms), run_timeout).ok_or_else(|| {
            Error::InvalidArgument("A valid StartToClose or ScheduleToCloseTimeout is not set on command.".into())
        })?;
    let task_queue = options.task_queue.as_ref().map(|q| q.name.clone()).unwrap_or_default();
    if task_queue.is_empty() {
        return Err(Error::InvalidArgument("TaskQueue is not set on request.".into()));
    }
    let given = options.retry_policy.clone().unwrap_or_default();
    let mut policy = ai.retry_policy.clone().unwrap_or_default();
    policy.initial_interval = given.initial_interval;
    policy.backoff_coefficient = given.backoff_coefficient;
    policy.maximum_interval = given.maximum_interval;
    policy.maximum_attempts = given.maximum_attempts;
    let policy = crate::retry::normalize(Some(&policy)).map_err(|e| Error::InvalidArgument(e.0))?;
    ai.task_queue = task_queue;
    (ai.schedule_to_close_ms, ai.schedule_to_start_ms, ai.start_to_close_ms, ai.heartbeat_ms) =
        (s2c, s2s, stc, heartbeat);
    ai.retry_policy = Some(policy);
    ai.priority = options.priority.clone();
    Ok(())
}

/// Fields of `ActivityOptions` an update names, by their field-mask paths (either case).
fn merge_options(
    into: &mut activity_pb::ActivityOptions,
    from: &activity_pb::ActivityOptions,
    paths: &[String],
) -> Result<()> {
    let retry = |into: &mut activity_pb::ActivityOptions| -> Result<common_pb::RetryPolicy> {
        let given =
            from.retry_policy.clone().ok_or_else(|| Error::InvalidArgument("RetryPolicy is not provided".into()))?;
        into.retry_policy.get_or_insert_with(Default::default);
        Ok(given)
    };
    for path in paths {
        match camel_case(path).as_str() {
            "taskQueue.name" | "taskQueue" => {
                let queue = from
                    .task_queue
                    .clone()
                    .ok_or_else(|| Error::InvalidArgument("TaskQueue is not provided".into()))?;
                into.task_queue.get_or_insert_with(Default::default).name = queue.name;
            }
            "scheduleToCloseTimeout" => into.schedule_to_close_timeout = from.schedule_to_close_timeout,
            "scheduleToStartTimeout" => into.schedule_to_start_timeout = from.schedule_to_start_timeout,
            "startToCloseTimeout" => into.start_to_close_timeout = from.start_to_close_timeout,
            "heartbeatTimeout" => into.heartbeat_timeout = from.heartbeat_timeout,
            "priority" => into.priority = from.priority.clone(),
            "retryPolicy" => into.retry_policy = Some(retry(into)?),
            "retryPolicy.initialInterval" => {
                let given = retry(into)?;
                into.retry_policy.as_mut().expect("inserted").initial_interval = given.initial_interval;
            }
            "retryPolicy.backoffCoefficient" => {
                let given = retry(into)?;
                into.retry_policy.as_mut().expect("inserted").backoff_coefficient = given.backoff_coefficient;
            }
            "retryPolicy.maximumInterval" => {
                let given = retry(into)?;
                into.retry_policy.as_mut().expect("inserted").maximum_interval = given.maximum_interval;
            }
            "retryPolicy.maximumAttempts" => {
                let given = retry(into)?;
                into.retry_policy.as_mut().expect("inserted").maximum_attempts = given.maximum_attempts;
            }
            // Paths Temporal ignores stay ignored.
            _ => {}
        }
    }
    Ok(())
}

fn camel_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// What an options update changes.
#[derive(Debug, Clone)]
pub enum OptionsUpdate {
    /// The fields named by the mask paths, taken from the options.
    Merge { options: Box<activity_pb::ActivityOptions>, paths: Vec<String> },
    /// Back to the options the workflow scheduled the activity with.
    RestoreOriginal,
}

/// Changes the named activities' options; answers the last one's new options. A running
/// attempt keeps its task, with the new deadlines.
pub fn update_activity_options(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    selector: &ActivitySelector,
    update: &OptionsUpdate,
) -> Result<activity_pb::ActivityOptions> {
    let run_timeout = st.run_timeout_ms;
    let mut answer = activity_pb::ActivityOptions::default();
    for id in selected(st, selector)? {
        let ai = st.activities.get_mut(&id).expect("selected");
        let current = activity_options(ai);
        let next = match update {
            OptionsUpdate::Merge { options, paths } => {
                let mut next = current.clone();
                merge_options(&mut next, options, paths)?;
                next
            }
            OptionsUpdate::RestoreOriginal => ai.original_options.clone().unwrap_or_else(|| current.clone()),
        };
        // A queued attempt is queued again (its task queue may have changed); a retry waiting
        // out its backoff keeps its time and is queued with the new options when it is due.
        let queued = ai.state == ActivityState::Scheduled as i32 && !ai.paused;
        if queued {
            withdraw_attempt(ctx, ai);
        }
        apply_options(ai, &next, run_timeout)?;
        match update {
            OptionsUpdate::Merge { .. } => {
                ai.original_options.get_or_insert(current);
            }
            OptionsUpdate::RestoreOriginal => ai.original_options = None,
        }
        if queued {
            ai.attempt_scheduled_time_ms = ctx.now;
            dispatch_attempt(ctx, ai);
        }
        let id = ai.scheduled_event_id;
        let (s2c, stc, hb, started, attempt) =
            (ai.schedule_to_close_ms, ai.start_to_close_ms, ai.heartbeat_ms, ai.started_time_ms, ai.attempt);
        let scheduled = ai.scheduled_time_ms;
        // New deadlines: a timer that fires before its deadline re-arms itself at it.
        if s2c > 0 {
            ctx.arm(TimerKind::ActivityScheduleToClose, scheduled + s2c, id, 0);
        }
        if ai.state == ActivityState::Started as i32 {
            ctx.arm(TimerKind::ActivityStartToClose, started + stc, id, attempt);
            if hb > 0 {
                ctx.arm(TimerKind::ActivityHeartbeat, ai.last_heartbeat_ms.max(started) + hb, id, attempt);
            }
        }
        answer = activity_options(ai);
        ctx.state_changed = true;
    }
    Ok(answer)
}
