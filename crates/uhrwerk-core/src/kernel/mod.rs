//! The workflow state machine. Each entry point takes a run's mutable state, a [`Ctx`] that
//! collects new history events and effects, and the request; it mutates the state in place.
//!
//! Contract with the engine: an entry point that returns `Err` has changed nothing, except
//! where documented (a rejected workflow task completion writes WorkflowTaskFailed and still
//! returns the error the caller must see). The engine commits whatever the `Ctx` holds.

mod activity;
mod activity_ops;
mod child;
mod close;
mod external;
pub mod limits;
mod reset;
mod signal;
mod start;
mod timer;
mod update;
mod workflow_task;

use prost::Message;

use crate::config::Limits;
use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::history::v1 as history_pb;
use crate::pb::taskqueue::v1 as taskqueue_pb;
use crate::state::{RunState, WorkflowTaskInfo};
use crate::time::{self, Millis};
use crate::transfer::{TransferKind, TransferTask};

pub use activity::{
    ActivityStarted, HeartbeatAnswer, activity_token_by_id, cancel_activity, complete_activity, fail_activity,
    record_activity_heartbeat, record_activity_started,
};
pub use activity_ops::{
    ActivitySelector, OptionsUpdate, PauseRequest, ResetOptions, UnpauseOptions, activity_options, pause_activities,
    reset_activities, unpause_activities, update_activity_options,
};
pub use child::{
    ChildOutcome, child_closed, child_start_failed, child_started, outcome_of as child_outcome_of, parent_of_child,
    start_request as child_start_request,
};
pub use external::{ExternalDelivery, ExternalRequest, external_delivery, external_outcome, external_pending};
pub use reset::{RESETTER_IDENTITY, ResetRequest, reset_run};
pub use signal::{CLOSED as SIGNAL_TO_CLOSED_RUN, is_duplicate as is_duplicate_signal};
pub use signal::{SignalInput, signal_run};
pub use start::{StartOptions, start_run};
pub use timer::{TimerKind, TimerTask, fire_timer};
pub use update::admit_update;
pub use workflow_task::{
    Completion, WorkflowTaskStarted, complete_workflow_task, fail_workflow_task, record_workflow_task_started,
    reset_sticky_task_queue, start_workflow_task_eagerly, started_task, transient_events, worker_version_stamp,
};

use history_pb::history_event::Attributes;

/// What the engine must do once the transition is committed.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Queue the run's workflow task for a poller: on `sticky_queue` when it is set and its
    /// worker polls, else on the normal `task_queue` (which the outbox row always names, so
    /// that a restart sends it there).
    DispatchWorkflowTask { task_queue: String, sticky_queue: String, scheduled_event_id: i64, attempt: i32 },
    /// Queue an activity attempt for a poller.
    DispatchActivityTask { task_queue: String, scheduled_event_id: i64, attempt: i32 },
    /// A task was taken by a poller: drop it from the outbox.
    TaskStarted { scheduled_event_id: i64 },
    /// Arm a durable timer.
    ArmTimer(TimerTask),
    /// The timer fired and was handled: drop it from the store.
    TimerDone(TimerTask),
    /// The run reached a closed status.
    RunClosed,
    /// Work on another run, written as a transfer task row with the transition and carried out
    /// after its commit.
    Transfer(TransferTask),
}

/// Errors the kernel reports to the caller; the frontend maps each to a gRPC status.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The unit of work of one transition.
pub struct Ctx<'a> {
    pub now: Millis,
    pub limits: &'a Limits,
    /// Newly persisted events, in id order.
    pub events: Vec<history_pb::HistoryEvent>,
    pub effects: Vec<Effect>,
    /// Set when the state changed without new events (e.g. an activity retry).
    pub state_changed: bool,
    /// A command outcome needs the worker: schedule a workflow task after the completion.
    needs_workflow_task: bool,
    /// Run id for a successor run (continue-as-new, retry, cron), chosen by the engine.
    pub successor_run_id: String,
    /// A run created by this transition, committed together with it.
    pub successor: Option<Successor>,
    /// The server's check of search attributes that commands set (registered names, types,
    /// sizes); the message becomes the workflow task failure. None accepts everything.
    pub search_attribute_check: Option<&'a SearchAttributeCheck>,
    /// Warn-level limits crossed by payloads of this transition (`limits::WARN_*` bits); the
    /// engine records them on the run.
    pub warned_limits: u32,
    /// Activities scheduled by this completion that its worker asked to run eagerly.
    eager_activities: Vec<i64>,
}

/// Validates search attributes; `Err` carries the server's message.
pub type SearchAttributeCheck = dyn Fn(&common_pb::SearchAttributes) -> Result<(), String> + Send + Sync;

/// A run started by closing another one; the engine commits both in one batch.
#[derive(Debug)]
pub struct Successor {
    pub state: RunState,
    pub events: Vec<history_pb::HistoryEvent>,
    pub effects: Vec<Effect>,
}

impl<'a> Ctx<'a> {
    pub fn new(now: Millis, limits: &'a Limits) -> Self {
        Self {
            now,
            limits,
            events: Vec::new(),
            effects: Vec::new(),
            state_changed: false,
            needs_workflow_task: false,
            successor_run_id: String::new(),
            successor: None,
            search_attribute_check: None,
            warned_limits: 0,
            eager_activities: Vec::new(),
        }
    }

    /// Whether the transition has anything to commit.
    pub fn has_changes(&self) -> bool {
        self.state_changed || !self.events.is_empty() || !self.effects.is_empty()
    }

    fn snapshot(&self) -> (usize, usize, bool) {
        (self.events.len(), self.effects.len(), self.state_changed)
    }

    fn restore(&mut self, snapshot: (usize, usize, bool)) {
        self.events.truncate(snapshot.0);
        self.effects.truncate(snapshot.1);
        self.state_changed = snapshot.2;
        self.needs_workflow_task = false;
        self.successor = None;
        self.eager_activities.clear();
    }

    /// Appends a persisted event and returns its id.
    fn append(&mut self, st: &mut RunState, event_type: enums_pb::EventType, attributes: Attributes) -> i64 {
        let event = new_event(0, self.now, event_type, attributes);
        self.push_persisted(st, event)
    }

    fn push_persisted(&mut self, st: &mut RunState, mut event: history_pb::HistoryEvent) -> i64 {
        let id = st.next_event_id;
        event.event_id = id;
        st.next_event_id += 1;
        st.history_size_bytes += event.encoded_len() as i64;
        self.events.push(event);
        self.state_changed = true;
        id
    }

    /// Puts user metadata and event group markers on the last appended event (the one a command
    /// or a start produced), as Temporal copies them from commands and start requests.
    fn annotate_last_event(
        &mut self,
        st: &mut RunState,
        user_metadata: Option<crate::pb::sdk::v1::UserMetadata>,
        markers: Vec<crate::pb::sdk::v1::EventGroupMarker>,
    ) {
        let Some(event) = self.events.last_mut() else { return };
        let before = event.encoded_len() as i64;
        if user_metadata.is_some() {
            event.user_metadata = user_metadata;
        }
        if !markers.is_empty() {
            event.event_group_markers = markers;
        }
        st.history_size_bytes += event.encoded_len() as i64 - before;
    }

    /// Appends an event that comes from outside a workflow task completion: buffered while a
    /// workflow task is started, appended otherwise. Schedules a workflow task if none exists.
    fn append_external(&mut self, st: &mut RunState, event_type: enums_pb::EventType, attributes: Attributes) {
        let event = new_event(0, self.now, event_type, attributes);
        if st.started_workflow_task().is_some() {
            st.buffered_events.push(event);
            self.state_changed = true;
        } else {
            self.push_persisted(st, event);
            schedule_workflow_task(self, st);
        }
    }

    /// Writes the buffered events, fixing references to started events that were buffered too.
    fn flush_buffered(&mut self, st: &mut RunState) {
        let buffered = std::mem::take(&mut st.buffered_events);
        let mut started_ids: Vec<(i64, i64)> = Vec::new();
        for mut event in buffered {
            let next_id = st.next_event_id;
            match event.attributes.as_mut() {
                Some(Attributes::ActivityTaskStartedEventAttributes(a)) => {
                    started_ids.push((a.scheduled_event_id, next_id))
                }
                Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
                    fix_started(&started_ids, a.scheduled_event_id, &mut a.started_event_id)
                }
                Some(Attributes::ActivityTaskFailedEventAttributes(a)) => {
                    fix_started(&started_ids, a.scheduled_event_id, &mut a.started_event_id)
                }
                Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => {
                    fix_started(&started_ids, a.scheduled_event_id, &mut a.started_event_id)
                }
                Some(Attributes::ChildWorkflowExecutionStartedEventAttributes(a)) => {
                    started_ids.push((a.initiated_event_id, next_id));
                    if let Some(child) = st.children.get_mut(&a.initiated_event_id) {
                        child.started_event_id = next_id;
                    }
                }
                Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(a)) => {
                    fix_started(&started_ids, a.initiated_event_id, &mut a.started_event_id)
                }
                Some(Attributes::ChildWorkflowExecutionFailedEventAttributes(a)) => {
                    fix_started(&started_ids, a.initiated_event_id, &mut a.started_event_id)
                }
                Some(Attributes::ChildWorkflowExecutionCanceledEventAttributes(a)) => {
                    fix_started(&started_ids, a.initiated_event_id, &mut a.started_event_id)
                }
                Some(Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a)) => {
                    fix_started(&started_ids, a.initiated_event_id, &mut a.started_event_id)
                }
                Some(Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a)) => {
                    fix_started(&started_ids, a.initiated_event_id, &mut a.started_event_id)
                }
                _ => {}
            }
            self.push_persisted(st, event);
        }
    }

    fn arm(&mut self, kind: TimerKind, fire_at_ms: Millis, id: i64, attempt: i32) {
        self.effects.push(Effect::ArmTimer(TimerTask { fire_at_ms, kind: kind as i32, id, attempt }));
    }
}

/// Marker for "the started event of this activity is in the same buffer"; replaced on flush.
const BUFFERED_STARTED_ID: i64 = -1;

fn fix_started(started_ids: &[(i64, i64)], scheduled_event_id: i64, started_event_id: &mut i64) {
    if *started_event_id == BUFFERED_STARTED_ID
        && let Some((_, id)) = started_ids.iter().rev().find(|(s, _)| *s == scheduled_event_id)
    {
        *started_event_id = *id;
    }
}

/// A search attribute value that stands for no value (Temporal's `isNilPayload`): no data,
/// `null` or `[]`. Upserting one removes the attribute; a start or continue-as-new drops it.
pub fn is_nil_payload(p: &common_pb::Payload) -> bool {
    p.data.is_empty() || p.data == b"null" || p.data == b"[]"
}

/// `attrs` without nil values, or None when nothing is left (Temporal's `FilterNilSearchAttributes`).
pub fn without_nil_search_attributes(
    attrs: Option<common_pb::SearchAttributes>,
) -> Option<common_pb::SearchAttributes> {
    let mut attrs = attrs?;
    attrs.indexed_fields.retain(|_, v| !is_nil_payload(v));
    (!attrs.indexed_fields.is_empty()).then_some(attrs)
}

pub fn new_event(
    id: i64,
    now: Millis,
    event_type: enums_pb::EventType,
    attributes: Attributes,
) -> history_pb::HistoryEvent {
    history_pb::HistoryEvent {
        event_id: id,
        event_time: Some(time::timestamp(now)),
        event_type: event_type as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}

pub fn normal_task_queue(name: &str) -> taskqueue_pb::TaskQueue {
    taskqueue_pb::TaskQueue {
        name: name.to_string(),
        kind: enums_pb::TaskQueueKind::Normal as i32,
        ..Default::default()
    }
}

/// Schedules a workflow task unless one exists or the run is closed.
///
/// With a sticky queue set, the task names that queue (as Temporal's WorkflowTaskScheduled
/// does) and a schedule-to-start timer sends it back to the normal queue if the sticky worker
/// does not take it in time. An attempt after the first is transient: no event is written now
/// (see `workflow_task`).
fn schedule_workflow_task(ctx: &mut Ctx<'_>, st: &mut RunState) {
    if st.workflow_task.is_some() || !st.is_open() {
        return;
    }
    // During a start delay, cron wait or retry backoff the first task waits for its timer
    // (WorkflowBackoff); signals and updates that arrive meanwhile are in the history by then.
    if ctx.now < st.execution_time_ms {
        return;
    }
    let attempt = st.next_workflow_task_attempt.max(1);
    let start_to_close_ms = workflow_task_timeout_for_attempt(
        st.workflow_task_timeout_ms,
        attempt,
        ctx.limits.workflow_task_retry_max_interval_ms,
    );
    let sticky = !st.sticky_task_queue.is_empty();
    let task_queue = current_task_queue(st);
    let scheduled_event_id = if attempt > 1 {
        st.next_event_id
    } else {
        ctx.append(
            st,
            enums_pb::EventType::WorkflowTaskScheduled,
            Attributes::WorkflowTaskScheduledEventAttributes(history_pb::WorkflowTaskScheduledEventAttributes {
                task_queue: Some(task_queue.clone()),
                start_to_close_timeout: time::opt_duration(start_to_close_ms),
                attempt,
            }),
        )
    };
    st.workflow_task = Some(WorkflowTaskInfo {
        scheduled_event_id,
        started_event_id: 0,
        attempt,
        scheduled_time_ms: ctx.now,
        started_time_ms: 0,
        task_queue: task_queue.name.clone(),
        request_id: String::new(),
        identity: String::new(),
        start_to_close_ms,
        sticky,
        transient_events: Vec::new(),
    });
    ctx.state_changed = true;
    if sticky && st.sticky_schedule_to_start_ms > 0 {
        ctx.arm(
            TimerKind::WorkflowTaskScheduleToStart,
            ctx.now + st.sticky_schedule_to_start_ms,
            scheduled_event_id,
            attempt,
        );
    }
    ctx.effects.push(Effect::DispatchWorkflowTask {
        task_queue: st.task_queue.clone(),
        sticky_queue: if sticky { st.sticky_task_queue.clone() } else { String::new() },
        scheduled_event_id,
        attempt,
    });
}

/// The queue the run's workflow tasks go to: the sticky one while it is set (Temporal's
/// `CurrentTaskQueue`).
fn current_task_queue(st: &RunState) -> taskqueue_pb::TaskQueue {
    if st.sticky_task_queue.is_empty() {
        return normal_task_queue(&st.task_queue);
    }
    taskqueue_pb::TaskQueue {
        name: st.sticky_task_queue.clone(),
        kind: enums_pb::TaskQueueKind::Sticky as i32,
        normal_name: st.task_queue.clone(),
    }
}

/// Start-to-close timeout of a workflow task attempt. As in Temporal, from the fourth attempt on
/// the run's timeout is lengthened by 5 s, doubling with each attempt, by at most
/// `max_extra_ms` (`history.workflowTaskRetryMaxInterval`, 10 min), so that a task failing on
/// every attempt is retried ever more slowly. Temporal adds up to 20 % jitter to the extra time;
/// the kernel, which has no randomness, uses the full value.
pub fn workflow_task_timeout_for_attempt(base_ms: Millis, attempt: i32, max_extra_ms: Millis) -> Millis {
    const MIN_ATTEMPT: i32 = 3;
    const INITIAL_MS: Millis = 5_000;
    if attempt <= MIN_ATTEMPT {
        return base_ms;
    }
    let doublings = (attempt - MIN_ATTEMPT - 1).min(40) as u32;
    let extra = INITIAL_MS.saturating_mul(1_i64 << doublings).min(max_extra_ms.max(0));
    base_ms.saturating_add(extra)
}

/// Marks the run closed with `status`; pending work is abandoned.
fn close_run(ctx: &mut Ctx<'_>, st: &mut RunState, status: enums_pb::WorkflowExecutionStatus, close_event_id: i64) {
    if st.parent.is_some() && ctx.successor.is_none() && ctx.events.last().and_then(child::outcome_of).is_some() {
        ctx.effects.push(Effect::Transfer(TransferTask::new(TransferKind::NotifyParent, close_event_id)));
    }
    // Children that never started are not started any more (as in Temporal); started ones get
    // their parent close policy unless it is ABANDON.
    let abandon = enums_pb::ParentClosePolicy::Abandon as i32;
    let children: Vec<_> = std::mem::take(&mut st.children)
        .into_values()
        .filter(|c| c.parent_close_policy != abandon && !c.run_id.is_empty())
        .collect();
    if !children.is_empty() {
        let mut task = TransferTask::new(TransferKind::ParentClosePolicy, close_event_id);
        task.children = children;
        ctx.effects.push(Effect::Transfer(task));
    }
    st.status = status as i32;
    st.close_time_ms = ctx.now;
    st.close_event_id = close_event_id;
    st.workflow_task = None;
    st.activities.clear();
    st.timers.clear();
    st.buffered_events.clear();
    ctx.effects.push(Effect::RunClosed);
}

#[cfg(test)]
mod tests;

/// Terminates an open run immediately, even while a workflow task is in flight.
pub fn terminate_run(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    reason: &str,
    details: Option<crate::pb::common::v1::Payloads>,
    identity: &str,
) -> Result<()> {
    if !st.is_open() {
        return Err(Error::NotFound("workflow execution already completed".into()));
    }
    end_task_before_forced_close(ctx, st, identity);
    let id = ctx.append(
        st,
        enums_pb::EventType::WorkflowExecutionTerminated,
        Attributes::WorkflowExecutionTerminatedEventAttributes(
            history_pb::WorkflowExecutionTerminatedEventAttributes {
                reason: reason.to_string(),
                details,
                identity: identity.to_string(),
            },
        ),
    );
    close_run(ctx, st, enums_pb::WorkflowExecutionStatus::Terminated, id);
    Ok(())
}

/// Records a request to cancel the run; the workflow decides what to do with it.
pub fn request_cancel_run(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    reason: &str,
    identity: &str,
    request_id: &str,
) -> Result<()> {
    request_cancel_run_from(ctx, st, reason, identity, request_id, None)
}

/// Like `request_cancel_run`, for a request from another workflow (`external`: its execution and
/// the id of its RequestCancelExternalWorkflowExecutionInitiated event).
pub fn request_cancel_run_from(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    reason: &str,
    identity: &str,
    request_id: &str,
    external: Option<(crate::pb::common::v1::WorkflowExecution, i64)>,
) -> Result<()> {
    if !st.is_open() {
        // As Temporal: asking a workflow that already finished to cancel succeeds and changes
        // nothing (for a client and for another workflow alike).
        return Ok(());
    }
    if st.cancel_requested {
        // Asking again (or retrying the call) changes nothing, as in Temporal.
        return Ok(());
    }
    st.cancel_requested = true;
    signal::remember_request_id(st, request_id);
    ctx.append_external(
        st,
        enums_pb::EventType::WorkflowExecutionCancelRequested,
        Attributes::WorkflowExecutionCancelRequestedEventAttributes(
            history_pb::WorkflowExecutionCancelRequestedEventAttributes {
                cause: reason.to_string(),
                identity: identity.to_string(),
                external_initiated_event_id: external.as_ref().map_or(0, |(_, id)| *id),
                external_workflow_execution: external.map(|(execution, _)| execution),
            },
        ),
    );
    Ok(())
}

/// Before a close that does not come from the worker (terminate, timeout): a started workflow
/// task must be followed by its outcome or by the close event, so with events buffered behind it
/// the task is failed first (as Temporal does) and the buffer written.
fn end_task_before_forced_close(ctx: &mut Ctx<'_>, st: &mut RunState, identity: &str) {
    if let Some(wt) = st.started_workflow_task().cloned()
        && !st.buffered_events.is_empty()
    {
        st.workflow_task = None;
        if wt.is_transient() {
            // The attempt's events were never written: only the buffer is.
            ctx.flush_buffered(st);
            return;
        }
        ctx.append(
            st,
            enums_pb::EventType::WorkflowTaskFailed,
            Attributes::WorkflowTaskFailedEventAttributes(history_pb::WorkflowTaskFailedEventAttributes {
                scheduled_event_id: wt.scheduled_event_id,
                started_event_id: wt.started_event_id,
                cause: enums_pb::WorkflowTaskFailedCause::ForceCloseCommand as i32,
                identity: identity.to_string(),
                ..Default::default()
            }),
        );
        ctx.flush_buffered(st);
    }
}
