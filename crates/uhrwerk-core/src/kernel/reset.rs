//! ResetWorkflowExecution: a new run of the workflow that starts from a prefix of a base run's
//! history, as Temporal's workflow resetter does.
//!
//! The new run's history is the base history up to the reset point's WorkflowTaskStarted,
//! then a WorkflowTaskFailed with cause RESET_WORKFLOW (naming base and new run, which is what
//! the SDKs reseed their randomness from), the signals the base run received after the point,
//! and a new workflow task. Its state is rebuilt by replaying that prefix. The base run, if
//! still open, is terminated by "history-resetter".

use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::failure::v1 as failure_pb;
use crate::pb::history::v1 as history_pb;
use crate::state::{
    ActivityInfo, ActivityState, ChildInfo, RunState, UpdateInfo, UpdateState, UserTimerInfo, WorkflowTaskInfo,
};
use crate::time;

use super::activity::dispatch_attempt;
use super::{Ctx, Error, Result, Successor, TimerKind, schedule_workflow_task};
use enums_pb::EventType;
use history_pb::history_event::Attributes;

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct ResetRequest {
    /// The WorkflowTaskCompleted (or -Failed, -TimedOut, -Started) event to reset to.
    pub workflow_task_finish_event_id: i64,
    pub reason: String,
    pub request_id: String,
    /// Carry the signals the base run received after the reset point into the new run.
    pub reapply_signals: bool,
}

/// The identity Temporal's resetter terminates the base run with.
pub const RESETTER_IDENTITY: &str = "history-resetter";

/// Creates the reset run from `base` and its whole `history` (handed to the engine through
/// `ctx.successor`), terminating `base` if it is open; returns the new run's id.
pub fn reset_run(
    ctx: &mut Ctx<'_>,
    base: &mut RunState,
    history: &[history_pb::HistoryEvent],
    request: &ResetRequest,
) -> Result<String> {
    let finish = request.workflow_task_finish_event_id;
    if finish <= 1 || finish >= base.next_event_id {
        return Err(Error::InvalidArgument("Workflow task finish ID must be > 1 && <= workflow last event ID.".into()));
    }
    let last = finish - 1;
    let prefix: Vec<history_pb::HistoryEvent> = history.iter().filter(|e| e.event_id <= last).cloned().collect();
    if prefix.len() as i64 != last {
        return Err(Error::FailedPrecondition(format!(
            "history of run {} is missing events before {finish}",
            base.run_id
        )));
    }
    let run_id = ctx.successor_run_id.clone();
    let mut st = replay(base, &prefix, &run_id)?;
    st.start_request_id = request.request_id.clone();
    let Some(wt) = st.workflow_task.clone() else {
        return Err(Error::InvalidArgument(format!(
            "Can only reset workflow to event ID in range [WorkflowTaskScheduled +1, WorkflowTaskStarted + 1]: {finish}"
        )));
    };

    let mut sub = Ctx::new(ctx.now, ctx.limits);
    sub.events = prefix;
    let started_event_id = if wt.started_event_id > 0 {
        wt.started_event_id
    } else {
        sub.append(
            &mut st,
            EventType::WorkflowTaskStarted,
            Attributes::WorkflowTaskStartedEventAttributes(history_pb::WorkflowTaskStartedEventAttributes {
                scheduled_event_id: wt.scheduled_event_id,
                identity: "history-service".into(),
                request_id: wt.request_id.clone(),
                ..Default::default()
            }),
        )
    };
    st.workflow_task = None;
    sub.append(
        &mut st,
        EventType::WorkflowTaskFailed,
        Attributes::WorkflowTaskFailedEventAttributes(history_pb::WorkflowTaskFailedEventAttributes {
            scheduled_event_id: wt.scheduled_event_id,
            started_event_id,
            cause: enums_pb::WorkflowTaskFailedCause::ResetWorkflow as i32,
            failure: Some(failure_pb::Failure {
                message: request.reason.clone(),
                failure_info: Some(failure_pb::failure::FailureInfo::ResetWorkflowFailureInfo(
                    failure_pb::ResetWorkflowFailureInfo::default(),
                )),
                ..Default::default()
            }),
            identity: "history-service".into(),
            base_run_id: base.run_id.clone(),
            new_run_id: run_id.clone(),
            ..Default::default()
        }),
    );
    if request.reapply_signals {
        for event in history.iter().filter(|e| e.event_id > last) {
            if let Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) = &event.attributes {
                st.signal_count += 1;
                sub.append(
                    &mut st,
                    EventType::WorkflowExecutionSignaled,
                    Attributes::WorkflowExecutionSignaledEventAttributes(a.clone()),
                );
            }
        }
    }
    // Work pending at the reset point starts over: activities are queued again (none of them
    // had started, as a started attempt's events are written with its outcome), timers keep
    // their deadlines.
    let activities: Vec<ActivityInfo> = st.activities.values().cloned().collect();
    for ai in &activities {
        if ai.schedule_to_close_ms > 0 {
            sub.arm(
                TimerKind::ActivityScheduleToClose,
                ai.scheduled_time_ms + ai.schedule_to_close_ms,
                ai.scheduled_event_id,
                0,
            );
        }
        dispatch_attempt(&mut sub, ai);
    }
    let timers: Vec<UserTimerInfo> = st.timers.values().cloned().collect();
    for timer in timers {
        sub.arm(TimerKind::UserTimer, timer.fire_at_ms, timer.started_event_id, 0);
    }
    // As the base run: its run timeout counts from its start, the chain's deadline stays.
    let run_deadline = if st.run_timeout_ms > 0 { st.execution_time_ms + st.run_timeout_ms } else { 0 };
    let deadline = match (run_deadline, st.execution_expiration_ms) {
        (0, e) => e,
        (r, 0) => r,
        (r, e) => r.min(e),
    };
    if deadline > 0 {
        sub.arm(TimerKind::WorkflowTimeout, deadline, 0, 0);
    }
    st.next_workflow_task_attempt = 1;
    schedule_workflow_task(&mut sub, &mut st);

    if base.is_open() {
        super::terminate_run(ctx, base, &request.reason, None, RESETTER_IDENTITY)?;
    }
    ctx.state_changed = true;
    ctx.successor = Some(Successor { state: st, events: sub.events, effects: sub.effects });
    Ok(run_id)
}

/// The state of a run whose history is `prefix`: the base run's fixed attributes with what the
/// events did to them replayed.
fn replay(base: &RunState, prefix: &[history_pb::HistoryEvent], run_id: &str) -> Result<RunState> {
    let mut st = RunState {
        namespace: base.namespace.clone(),
        workflow_id: base.workflow_id.clone(),
        run_id: run_id.to_string(),
        first_execution_run_id: base.first_execution_run_id.clone(),
        workflow_type: base.workflow_type.clone(),
        task_queue: base.task_queue.clone(),
        status: enums_pb::WorkflowExecutionStatus::Running as i32,
        start_time_ms: base.start_time_ms,
        execution_time_ms: base.execution_time_ms,
        workflow_task_timeout_ms: base.workflow_task_timeout_ms,
        run_timeout_ms: base.run_timeout_ms,
        execution_timeout_ms: base.execution_timeout_ms,
        execution_expiration_ms: base.execution_expiration_ms,
        retry_policy: base.retry_policy.clone(),
        attempt: base.attempt,
        cron_schedule: base.cron_schedule.clone(),
        header: base.header.clone(),
        priority: base.priority.clone(),
        input: base.input.clone(),
        parent: base.parent.clone(),
        root: base.root.clone(),
        user_metadata: base.user_metadata.clone(),
        next_event_id: 1,
        ..Default::default()
    };
    let mut pending_externals = 0usize;
    for event in prefix {
        let at = event.event_time.as_ref().map(time::timestamp_ms).unwrap_or_default();
        st.next_event_id = event.event_id + 1;
        st.history_size_bytes += prost::Message::encoded_len(event) as i64;
        let Some(attributes) = &event.attributes else { continue };
        match attributes {
            Attributes::WorkflowExecutionStartedEventAttributes(a) => {
                st.memo = a.memo.clone();
                st.search_attributes = a.search_attributes.clone();
            }
            Attributes::WorkflowTaskScheduledEventAttributes(a) => {
                st.workflow_task = Some(WorkflowTaskInfo {
                    scheduled_event_id: event.event_id,
                    attempt: a.attempt.max(1),
                    scheduled_time_ms: at,
                    task_queue: st.task_queue.clone(),
                    start_to_close_ms: time::duration_ms(&a.start_to_close_timeout),
                    ..Default::default()
                });
            }
            Attributes::WorkflowTaskStartedEventAttributes(a) => {
                if let Some(wt) = st.workflow_task.as_mut().filter(|wt| wt.scheduled_event_id == a.scheduled_event_id) {
                    wt.started_event_id = event.event_id;
                    wt.started_time_ms = at;
                    wt.request_id = a.request_id.clone();
                }
            }
            Attributes::WorkflowTaskCompletedEventAttributes(a) => {
                st.workflow_task = None;
                st.previous_started_event_id = a.started_event_id;
            }
            Attributes::WorkflowTaskFailedEventAttributes(_) | Attributes::WorkflowTaskTimedOutEventAttributes(_) => {
                st.workflow_task = None;
            }
            Attributes::ActivityTaskScheduledEventAttributes(a) => {
                st.activity_count += 1;
                st.activities.insert(
                    event.event_id,
                    ActivityInfo {
                        scheduled_event_id: event.event_id,
                        activity_id: a.activity_id.clone(),
                        activity_type: a.activity_type.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
                        task_queue: a.task_queue.as_ref().map(|q| q.name.clone()).unwrap_or_default(),
                        header: a.header.clone(),
                        input: a.input.clone(),
                        schedule_to_close_ms: time::duration_ms(&a.schedule_to_close_timeout),
                        schedule_to_start_ms: time::duration_ms(&a.schedule_to_start_timeout),
                        start_to_close_ms: time::duration_ms(&a.start_to_close_timeout),
                        heartbeat_ms: time::duration_ms(&a.heartbeat_timeout),
                        retry_policy: a.retry_policy.clone(),
                        attempt: 1,
                        state: ActivityState::Scheduled as i32,
                        scheduled_time_ms: at,
                        attempt_scheduled_time_ms: at,
                        priority: a.priority.clone(),
                        ..Default::default()
                    },
                );
            }
            Attributes::ActivityTaskCancelRequestedEventAttributes(a) => {
                if let Some(ai) = st.activities.get_mut(&a.scheduled_event_id) {
                    ai.cancel_requested = true;
                    ai.cancel_requested_event_id = event.event_id;
                }
            }
            Attributes::ActivityTaskCompletedEventAttributes(a) => drop(st.activities.remove(&a.scheduled_event_id)),
            Attributes::ActivityTaskFailedEventAttributes(a) => drop(st.activities.remove(&a.scheduled_event_id)),
            Attributes::ActivityTaskTimedOutEventAttributes(a) => drop(st.activities.remove(&a.scheduled_event_id)),
            Attributes::ActivityTaskCanceledEventAttributes(a) => drop(st.activities.remove(&a.scheduled_event_id)),
            Attributes::TimerStartedEventAttributes(a) => {
                let fire_at_ms = at + time::duration_ms(&a.start_to_fire_timeout);
                st.timers.insert(
                    a.timer_id.clone(),
                    UserTimerInfo { timer_id: a.timer_id.clone(), started_event_id: event.event_id, fire_at_ms },
                );
            }
            Attributes::TimerFiredEventAttributes(a) => drop(st.timers.remove(&a.timer_id)),
            Attributes::TimerCanceledEventAttributes(a) => drop(st.timers.remove(&a.timer_id)),
            Attributes::WorkflowExecutionSignaledEventAttributes(_) => st.signal_count += 1,
            Attributes::WorkflowExecutionCancelRequestedEventAttributes(_) => st.cancel_requested = true,
            Attributes::UpsertWorkflowSearchAttributesEventAttributes(a) => {
                let merged = st.search_attributes.get_or_insert_with(Default::default);
                for (k, v) in a.search_attributes.iter().flat_map(|s| s.indexed_fields.iter()) {
                    if super::is_nil_payload(v) {
                        merged.indexed_fields.remove(k);
                    } else {
                        merged.indexed_fields.insert(k.clone(), v.clone());
                    }
                }
            }
            Attributes::WorkflowPropertiesModifiedEventAttributes(a) => {
                let memo = st.memo.get_or_insert_with(common_pb::Memo::default);
                for (key, value) in a.upserted_memo.iter().flat_map(|m| m.fields.iter()) {
                    let null = value.metadata.get("encoding").is_some_and(|e| e.as_slice() == b"binary/null");
                    if null || (value.data.is_empty() && value.metadata.is_empty()) {
                        memo.fields.remove(key);
                    } else {
                        memo.fields.insert(key.clone(), value.clone());
                    }
                }
            }
            Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
                let update_id = a.accepted_request.as_ref().and_then(|r| r.meta.as_ref()).map(|m| m.update_id.clone());
                let update_id = update_id.unwrap_or_else(|| a.protocol_instance_id.clone());
                st.updates.insert(
                    update_id.clone(),
                    UpdateInfo {
                        update_id,
                        state: UpdateState::Accepted as i32,
                        request: a.accepted_request.clone(),
                        accepted_event_id: event.event_id,
                        outcome: None,
                    },
                );
            }
            Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a) => {
                let update_id = a.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default();
                if let Some(update) = st.updates.get_mut(&update_id) {
                    update.state = UpdateState::Completed as i32;
                    update.outcome = a.outcome.clone();
                }
            }
            Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a) => {
                st.children.insert(
                    event.event_id,
                    ChildInfo {
                        initiated_event_id: event.event_id,
                        namespace: a.namespace.clone(),
                        workflow_id: a.workflow_id.clone(),
                        ..Default::default()
                    },
                );
            }
            Attributes::StartChildWorkflowExecutionFailedEventAttributes(a) => {
                drop(st.children.remove(&a.initiated_event_id))
            }
            Attributes::ChildWorkflowExecutionCompletedEventAttributes(a) => {
                drop(st.children.remove(&a.initiated_event_id))
            }
            Attributes::ChildWorkflowExecutionFailedEventAttributes(a) => {
                drop(st.children.remove(&a.initiated_event_id))
            }
            Attributes::ChildWorkflowExecutionCanceledEventAttributes(a) => {
                drop(st.children.remove(&a.initiated_event_id))
            }
            Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
                drop(st.children.remove(&a.initiated_event_id))
            }
            Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
                drop(st.children.remove(&a.initiated_event_id))
            }
            Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(_)
            | Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(_) => pending_externals += 1,
            Attributes::ExternalWorkflowExecutionSignaledEventAttributes(_)
            | Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(_)
            | Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(_)
            | Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(_) => {
                pending_externals = pending_externals.saturating_sub(1)
            }
            _ => {}
        }
    }
    if !st.children.is_empty() || pending_externals > 0 {
        return Err(Error::FailedPrecondition(
            "Uhrwerk cannot reset to a point where child workflows or signals and cancel requests to other workflows are still pending".into(),
        ));
    }
    Ok(st)
}
