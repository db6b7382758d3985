//! The workflow task cycle: a poller takes the task (Started), the worker completes it with
//! commands or fails it; a start-to-close timer times it out.

use crate::pb::command::v1 as command_pb;
use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::failure::v1 as failure_pb;
use crate::pb::history::v1 as history_pb;
use crate::pb::taskqueue::v1 as taskqueue_pb;
use crate::pb::workflowservice::v1 as workflowservice_pb;
use crate::retry;
use crate::state::{ActivityInfo, ActivityState, RunState, UserTimerInfo, WorkflowTaskInfo};
use crate::time::{self, Millis};
use crate::token::{TaskKind, TaskToken};

use super::{Ctx, Effect, Error, Result, TimerKind, TimerTask, close_run, schedule_workflow_task};
use command_pb::command::Attributes as CommandAttributes;
use enums_pb::{EventType, WorkflowTaskFailedCause as Cause};
use history_pb::history_event::Attributes;

/// What a poller needs to build its response.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowTaskStarted {
    pub token: Vec<u8>,
    pub scheduled_event_id: i64,
    pub started_event_id: i64,
    pub previous_started_event_id: i64,
    pub attempt: i32,
    pub scheduled_time_ms: Millis,
    pub started_time_ms: Millis,
    /// Update requests delivered with this task.
    pub messages: Vec<crate::pb::protocol::v1::Message>,
    /// A transient attempt's Scheduled and Started events: they end the history the worker gets
    /// although the history in the store does not have them.
    pub transient_events: Vec<history_pb::HistoryEvent>,
    /// The worker has the run cached (it polled the run's sticky queue, or completed the
    /// previous task itself): the history it gets starts after `previous_started_event_id`.
    pub sticky: bool,
}

/// The outcome of an accepted workflow task completion, beyond the events it wrote.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Completion {
    /// The next workflow task, started at once for the completing worker because it asked with
    /// `return_new_workflow_task` (Temporal's inline workflow task).
    pub new_task: Option<WorkflowTaskStarted>,
    /// Activities the completion scheduled with `request_eager_execution`, started at once for
    /// the completing worker (eager activities).
    pub activity_tasks: Vec<super::ActivityStarted>,
}

fn not_found() -> Error {
    Error::NotFound("Workflow task not found.".into())
}

/// Request id of a workflow task started inline by its predecessor's completion (as Temporal).
const INLINE_REQUEST_ID: &str = "request-from-RespondWorkflowTaskCompleted";

/// Records that a poller of `poll_queue` took the workflow task scheduled at
/// `scheduled_event_id`.
///
/// A poll from the normal queue while the run is sticky clears the stickiness (the worker has
/// no cached copy of the run and gets the full history); a poll from the run's sticky queue
/// gets only new events. A transient attempt stays transient unless events arrived since it was
/// scheduled; then it becomes attempt 1 with real events, as in Temporal.
/// The stamp a workflow task's Started event carries for the polling worker, as Temporal's
/// `StampFromCapabilities`: its build id, unless it uses worker deployments (versioning 3).
pub fn worker_version_stamp(
    capabilities: Option<&common_pb::WorkerVersionCapabilities>,
    options: Option<&crate::pb::deployment::v1::WorkerDeploymentOptions>,
) -> Option<common_pb::WorkerVersionStamp> {
    let versioned = enums_pb::WorkerVersioningMode::Versioned as i32;
    if options.is_some_and(|o| o.worker_versioning_mode == versioned && !o.deployment_name.is_empty()) {
        return None;
    }
    let caps = capabilities?;
    if caps.use_versioning && !caps.deployment_series_name.is_empty() || caps.build_id.is_empty() {
        return None;
    }
    Some(common_pb::WorkerVersionStamp { build_id: caps.build_id.clone(), use_versioning: caps.use_versioning })
}

/// The completing worker's deployment name, as Temporal records it on WorkflowTaskCompleted.
fn deployment_name(request: &workflowservice_pb::RespondWorkflowTaskCompletedRequest) -> String {
    match request.deployment_options.as_ref().map(|o| o.deployment_name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => request.deployment.as_ref().map(|d| d.series_name.clone()).unwrap_or_default(),
    }
}

/// The completing worker's deployment version: from its options when it is versioned, else
/// from the deprecated deployment, and only when both name and build id are set.
fn deployment_version(
    request: &workflowservice_pb::RespondWorkflowTaskCompletedRequest,
) -> Option<crate::pb::deployment::v1::WorkerDeploymentVersion> {
    let versioned = enums_pb::WorkerVersioningMode::Versioned as i32;
    let (name, build_id) = match (&request.deployment_options, &request.deployment) {
        (Some(o), _) if o.worker_versioning_mode == versioned => (o.deployment_name.clone(), o.build_id.clone()),
        (_, Some(d)) => (d.series_name.clone(), d.build_id.clone()),
        _ => return None,
    };
    (!name.is_empty() && !build_id.is_empty())
        .then_some(crate::pb::deployment::v1::WorkerDeploymentVersion { build_id, deployment_name: name })
}

/// The versioning behavior the worker reports, ignored (as Temporal does) unless it is versioned.
fn versioning_behavior(request: &workflowservice_pb::RespondWorkflowTaskCompletedRequest) -> i32 {
    let versioned = enums_pb::WorkerVersioningMode::Versioned as i32;
    match &request.deployment_options {
        Some(o) if o.worker_versioning_mode != versioned => 0,
        _ => request.versioning_behavior,
    }
}

pub fn record_workflow_task_started(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    scheduled_event_id: i64,
    poll_queue: &str,
    identity: &str,
    request_id: &str,
    worker_version: Option<common_pb::WorkerVersionStamp>,
) -> Result<WorkflowTaskStarted> {
    if !st.is_open() {
        return Err(not_found());
    }
    let Some(wt) = st.workflow_task.as_ref() else { return Err(not_found()) };
    if wt.scheduled_event_id != scheduled_event_id || wt.started_event_id != 0 {
        return Err(not_found());
    }
    let sticky = !st.sticky_task_queue.is_empty() && st.sticky_task_queue == poll_queue;
    if !sticky && !st.sticky_task_queue.is_empty() {
        st.sticky_task_queue.clear();
        st.sticky_schedule_to_start_ms = 0;
    }
    ctx.effects.push(Effect::TaskStarted { scheduled_event_id });
    if wt.sticky {
        ctx.effects.push(Effect::TimerDone(TimerTask::key(
            TimerKind::WorkflowTaskScheduleToStart,
            scheduled_event_id,
            wt.attempt,
        )));
    }
    Ok(start_task(ctx, st, identity, request_id, sticky, worker_version))
}

/// Starts the run's scheduled workflow task (checked by the caller).
fn start_task(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    identity: &str,
    request_id: &str,
    sticky: bool,
    worker_version: Option<common_pb::WorkerVersionStamp>,
) -> WorkflowTaskStarted {
    let wt = st.workflow_task.as_mut().expect("the caller checked the scheduled task");
    let converted = wt.is_transient() && wt.scheduled_event_id != st.next_event_id;
    if converted {
        // Events arrived since the transient attempt was scheduled: it becomes a normal task.
        wt.attempt = 1;
    }
    let transient = wt.is_transient();
    let scheduled = history_pb::WorkflowTaskScheduledEventAttributes {
        task_queue: Some(if wt.sticky {
            taskqueue_pb::TaskQueue {
                name: wt.task_queue.clone(),
                kind: enums_pb::TaskQueueKind::Sticky as i32,
                normal_name: st.task_queue.clone(),
            }
        } else {
            super::normal_task_queue(&st.task_queue)
        }),
        start_to_close_timeout: time::opt_duration(wt.start_to_close_ms),
        attempt: wt.attempt,
    };
    let scheduled_time_ms = wt.scheduled_time_ms;
    if converted {
        // A transient attempt turned normal: its Scheduled event is written now.
        let id = ctx.append(
            st,
            EventType::WorkflowTaskScheduled,
            Attributes::WorkflowTaskScheduledEventAttributes(scheduled.clone()),
        );
        st.workflow_task.as_mut().expect("still scheduled").scheduled_event_id = id;
    }
    let wt = st.workflow_task.as_ref().expect("still scheduled");
    let scheduled_event_id = wt.scheduled_event_id;
    let size_before = st.history_size_bytes;
    let started_event_id = if transient { scheduled_event_id + 1 } else { st.next_event_id };
    let mut reasons = Vec::new();
    if started_event_id >= ctx.limits.history_count_suggest_continue_as_new {
        reasons.push(enums_pb::SuggestContinueAsNewReason::TooManyHistoryEvents as i32);
    }
    if size_before >= ctx.limits.history_size_suggest_continue_as_new {
        reasons.push(enums_pb::SuggestContinueAsNewReason::HistorySizeTooLarge as i32);
    }
    let suggested = !reasons.is_empty();
    if suggested {
        st.continue_as_new_suggestions += 1;
    }
    let started = Attributes::WorkflowTaskStartedEventAttributes(history_pb::WorkflowTaskStartedEventAttributes {
        scheduled_event_id,
        identity: identity.to_string(),
        request_id: request_id.to_string(),
        suggest_continue_as_new: suggested,
        suggest_continue_as_new_reasons: reasons,
        history_size_bytes: size_before,
        worker_version,
        ..Default::default()
    });
    let mut transient_events = Vec::new();
    if transient {
        transient_events.push(super::new_event(
            scheduled_event_id,
            scheduled_time_ms,
            EventType::WorkflowTaskScheduled,
            Attributes::WorkflowTaskScheduledEventAttributes(scheduled),
        ));
        transient_events.push(super::new_event(started_event_id, ctx.now, EventType::WorkflowTaskStarted, started));
        ctx.state_changed = true;
    } else {
        ctx.append(st, EventType::WorkflowTaskStarted, started);
    }
    let wt = st.workflow_task.as_mut().expect("still scheduled");
    wt.started_event_id = started_event_id;
    wt.started_time_ms = ctx.now;
    wt.identity = identity.to_string();
    wt.request_id = request_id.to_string();
    wt.transient_events = transient_events.clone();
    let attempt = wt.attempt;
    let timeout_ms = if wt.start_to_close_ms > 0 { wt.start_to_close_ms } else { st.workflow_task_timeout_ms };
    let messages = super::update::deliver(st, scheduled_event_id);
    ctx.arm(TimerKind::WorkflowTaskStartToClose, ctx.now + timeout_ms, scheduled_event_id, attempt);
    let token = TaskToken {
        kind: TaskKind::WorkflowTask as i32,
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: st.run_id.clone(),
        scheduled_event_id,
        started_event_id,
        attempt,
        activity_id: String::new(),
    };
    WorkflowTaskStarted {
        token: token.encode(),
        scheduled_event_id,
        started_event_id,
        previous_started_event_id: st.previous_started_event_id,
        attempt,
        scheduled_time_ms,
        started_time_ms: ctx.now,
        messages,
        transient_events,
        sticky,
    }
}

/// Checks that `token` names the run's started workflow task.
fn check_token(st: &RunState, token: &TaskToken) -> Result<()> {
    let Some(wt) = st.started_workflow_task() else { return Err(not_found()) };
    if !st.is_open()
        || token.task_kind() != TaskKind::WorkflowTask
        || wt.scheduled_event_id != token.scheduled_event_id
        || wt.started_event_id != token.started_event_id
        || wt.attempt != token.attempt
    {
        return Err(not_found());
    }
    Ok(())
}

/// A command the kernel refused; fails the workflow task with `cause`.
struct Rejection {
    cause: Cause,
    message: String,
}

fn reject(cause: Cause, message: impl Into<String>) -> Rejection {
    Rejection { cause, message: message.into() }
}

/// Applies a workflow task completion. On a rejected command, the whole completion is discarded,
/// WorkflowTaskFailed is written, a new task is scheduled, and the error the worker must see is
/// returned *with* those changes in `ctx`. As in Temporal, a rejected completion of a transient
/// attempt changes nothing: the attempt times out and the next one is tried then.
pub fn complete_workflow_task(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    token: &TaskToken,
    request: workflowservice_pb::RespondWorkflowTaskCompletedRequest,
) -> Result<Completion> {
    check_token(st, token)?;
    let closing = request.commands.iter().any(|c| is_closing(c.command_type));
    let identity = request.identity.clone();
    // Admitted updates do not block a close: their callers are told the run closed (and retry
    // on the next run after a continue-as-new), as in Temporal.
    if closing && !st.buffered_events.is_empty() {
        write_failed(ctx, st, Cause::UnhandledCommand, "UnhandledCommand".into(), &identity, "");
        return Err(Error::InvalidArgument("UnhandledCommand".into()));
    }
    let binary_checksum = request.binary_checksum.clone();
    let transient = st.workflow_task.as_ref().is_some_and(|wt| wt.is_transient());
    let before = st.clone();
    let snapshot = ctx.snapshot();
    match apply_completion(ctx, st, request) {
        Ok(completion) => Ok(completion),
        Err(rejection) => {
            *st = before;
            ctx.restore(snapshot);
            // As Temporal, the event and the caller both get "<Cause>: <message>".
            let cause_name =
                rejection.cause.as_str_name().trim_start_matches("WORKFLOW_TASK_FAILED_CAUSE_").to_string();
            let message = format!("{}: {}", pascal_case(&cause_name), rejection.message);
            if !transient {
                write_failed(ctx, st, rejection.cause, message.clone(), &identity, &binary_checksum);
            }
            Err(Error::InvalidArgument(message))
        }
    }
}

fn apply_completion(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    request: workflowservice_pb::RespondWorkflowTaskCompletedRequest,
) -> Result<Completion, Rejection> {
    let mut wt = st.workflow_task.take().expect("token checked");
    // A transient attempt that completes gets its Scheduled and Started events written first.
    for event in std::mem::take(&mut wt.transient_events) {
        debug_assert_eq!(event.event_id, st.next_event_id, "transient events continue the history");
        ctx.push_persisted(st, event);
    }
    match request.sticky_attributes.as_ref().and_then(|a| a.worker_task_queue.as_ref().map(|q| (q, a))) {
        Some((queue, attributes)) if !queue.name.is_empty() => {
            st.sticky_task_queue = queue.name.clone();
            st.sticky_schedule_to_start_ms = time::duration_ms(&attributes.schedule_to_start_timeout);
        }
        _ => {
            st.sticky_task_queue.clear();
            st.sticky_schedule_to_start_ms = 0;
        }
    }
    let completed_event_id = ctx.append(
        st,
        EventType::WorkflowTaskCompleted,
        Attributes::WorkflowTaskCompletedEventAttributes(history_pb::WorkflowTaskCompletedEventAttributes {
            scheduled_event_id: wt.scheduled_event_id,
            started_event_id: wt.started_event_id,
            identity: request.identity.clone(),
            binary_checksum: request.binary_checksum.clone(),
            sdk_metadata: request.sdk_metadata.clone(),
            metering_metadata: Some(request.metering_metadata.unwrap_or_default()),
            worker_version: request.worker_version_stamp.clone(),
            worker_deployment_name: deployment_name(&request),
            deployment_version: deployment_version(&request),
            versioning_behavior: versioning_behavior(&request),
            ..Default::default()
        }),
    );
    st.previous_started_event_id = wt.started_event_id;
    st.next_workflow_task_attempt = 1;
    ctx.effects.push(Effect::TimerDone(TimerTask::key(
        TimerKind::WorkflowTaskStartToClose,
        wt.scheduled_event_id,
        wt.attempt,
    )));

    let mut messages = request.messages;
    let n_commands = request.commands.len();
    for (idx, command) in request.commands.into_iter().enumerate() {
        if !st.is_open() {
            break;
        }
        let command_type = command.command_type;
        if is_closing(command_type) && idx + 1 != n_commands {
            return Err(reject(
                closing_cause(command_type),
                format!("invalid command sequence: {} must be the last command", command_name(command_type)),
            ));
        }
        if let Some(CommandAttributes::ProtocolMessageCommandAttributes(a)) = &command.attributes
            && command_type == enums_pb::CommandType::ProtocolMessage as i32
        {
            let Some(pos) = messages.iter().position(|m| m.id == a.message_id) else {
                return Err(reject(
                    super::update::BAD_MESSAGE,
                    format!("ProtocolMessageCommand references unknown message {}", a.message_id),
                ));
            };
            let message = messages.remove(pos);
            super::update::apply_message(ctx, st, completed_event_id, message)
                .map_err(|e| reject(super::update::BAD_MESSAGE, e.0))?;
            continue;
        }
        let (user_metadata, markers) = (command.user_metadata.clone(), command.event_group_markers.clone());
        let first_event = ctx.events.len();
        apply_command(ctx, st, completed_event_id, command, &request.identity)?;
        // As Temporal: the command's metadata goes on the event it produced.
        if (user_metadata.is_some() || !markers.is_empty()) && ctx.events.len() > first_event {
            let later = ctx.events.split_off(first_event + 1);
            ctx.annotate_last_event(st, user_metadata, markers);
            ctx.events.extend(later);
        }
    }
    // Messages no command referenced (rejections) come after all commands.
    for message in messages {
        super::update::apply_message(ctx, st, completed_event_id, message)
            .map_err(|e| reject(super::update::BAD_MESSAGE, e.0))?;
    }
    super::update::requeue_unanswered(st);
    let mut completion = Completion::default();
    if !st.is_open() {
        return Ok(completion);
    }
    let had_buffered = !st.buffered_events.is_empty();
    ctx.flush_buffered(st);
    if had_buffered
        || request.force_create_new_workflow_task
        || std::mem::take(&mut ctx.needs_workflow_task)
        || super::update::has_admitted(st)
    {
        schedule_workflow_task(ctx, st);
        if request.return_new_workflow_task {
            completion.new_task = start_undispatched(ctx, st, &request.identity, INLINE_REQUEST_ID, true);
        }
    }
    for scheduled_event_id in std::mem::take(&mut ctx.eager_activities) {
        if let Some(task) = super::activity::start_eagerly(ctx, st, scheduled_event_id, &request.identity) {
            completion.activity_tasks.push(task);
        }
    }
    Ok(completion)
}

/// The events of the run's transient workflow task attempt, which are not in the history: its
/// WorkflowTaskScheduled, and its WorkflowTaskStarted once started. Empty without one, or when
/// events arrived since it was scheduled (it then starts as a normal task).
pub fn transient_events(st: &RunState) -> Vec<history_pb::HistoryEvent> {
    let Some(wt) = st.workflow_task.as_ref().filter(|wt| wt.is_transient()) else { return Vec::new() };
    if wt.started_event_id > 0 {
        return wt.transient_events.clone();
    }
    if wt.scheduled_event_id != st.next_event_id {
        return Vec::new();
    }
    let task_queue = if wt.sticky {
        taskqueue_pb::TaskQueue {
            name: wt.task_queue.clone(),
            kind: enums_pb::TaskQueueKind::Sticky as i32,
            normal_name: st.task_queue.clone(),
        }
    } else {
        super::normal_task_queue(&st.task_queue)
    };
    vec![super::new_event(
        wt.scheduled_event_id,
        wt.scheduled_time_ms,
        EventType::WorkflowTaskScheduled,
        Attributes::WorkflowTaskScheduledEventAttributes(history_pb::WorkflowTaskScheduledEventAttributes {
            task_queue: Some(task_queue),
            start_to_close_timeout: time::opt_duration(wt.start_to_close_ms),
            attempt: wt.attempt,
        }),
    )]
}

/// The run's started workflow task as its poller got it (without delivered messages), for a
/// retried eager start that must answer as the first call did.
pub fn started_task(st: &RunState) -> Option<WorkflowTaskStarted> {
    let wt = st.started_workflow_task()?;
    let token = TaskToken {
        kind: TaskKind::WorkflowTask as i32,
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: st.run_id.clone(),
        scheduled_event_id: wt.scheduled_event_id,
        started_event_id: wt.started_event_id,
        attempt: wt.attempt,
        activity_id: String::new(),
    };
    Some(WorkflowTaskStarted {
        token: token.encode(),
        scheduled_event_id: wt.scheduled_event_id,
        started_event_id: wt.started_event_id,
        previous_started_event_id: st.previous_started_event_id,
        attempt: wt.attempt,
        scheduled_time_ms: wt.scheduled_time_ms,
        started_time_ms: wt.started_time_ms,
        messages: Vec::new(),
        transient_events: wt.transient_events.clone(),
        sticky: false,
    })
}

/// Starts a run's first workflow task at once for the worker that starts the run with
/// `request_eager_execution` (Temporal's eager workflow start): it is never dispatched.
pub fn start_workflow_task_eagerly(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    identity: &str,
    request_id: &str,
) -> Option<WorkflowTaskStarted> {
    start_undispatched(ctx, st, identity, request_id, false)
}

/// Starts the workflow task just scheduled in this transition without a trip through matching:
/// for the worker that completed its predecessor (`sticky`: it has the run cached and gets only
/// the new events), or for an eager start.
fn start_undispatched(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    identity: &str,
    request_id: &str,
    sticky: bool,
) -> Option<WorkflowTaskStarted> {
    let wt = st.workflow_task.as_ref()?;
    let scheduled_event_id = wt.scheduled_event_id;
    // Not dispatched, so no sticky schedule-to-start timeout either.
    ctx.effects.retain(|e| match e {
        Effect::DispatchWorkflowTask { scheduled_event_id: id, .. } => *id != scheduled_event_id,
        Effect::ArmTimer(t) => {
            !(t.timer_kind() == TimerKind::WorkflowTaskScheduleToStart && t.id == scheduled_event_id)
        }
        _ => true,
    });
    Some(start_task(ctx, st, identity, request_id, sticky, None))
}

fn apply_command(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    command: command_pb::Command,
    identity: &str,
) -> Result<(), Rejection> {
    let command_type = command.command_type;
    if !attributes_match(command_type, command.attributes.as_ref()) {
        let name = command_name(command_type);
        return Err(reject(unsupported_cause(command_type), format!("{name}CommandAttributes is not set on command.")));
    }
    match command.attributes {
        Some(CommandAttributes::ScheduleActivityTaskCommandAttributes(a)) => {
            schedule_activity(ctx, st, completed_event_id, a)
        }
        Some(CommandAttributes::CompleteWorkflowExecutionCommandAttributes(a)) => {
            check_blob(
                ctx,
                a.result.as_ref(),
                Cause::BadCompleteWorkflowExecutionAttributes,
                "CompleteWorkflowExecutionCommandAttributes.Result",
            )?;
            super::close::complete(ctx, st, completed_event_id, a.result);
            Ok(())
        }
        Some(CommandAttributes::FailWorkflowExecutionCommandAttributes(a)) => {
            super::close::fail(ctx, st, completed_event_id, a.failure);
            Ok(())
        }
        Some(CommandAttributes::ContinueAsNewWorkflowExecutionCommandAttributes(a)) => {
            check_blob(
                ctx,
                a.input.as_ref(),
                Cause::BadContinueAsNewAttributes,
                "ContinueAsNewWorkflowExecutionCommandAttributes.Input",
            )?;
            check_search_attributes(ctx, a.search_attributes.as_ref())?;
            if let Some(policy) = a.retry_policy.as_ref() {
                retry::normalize(Some(policy)).map_err(|e| reject(Cause::BadContinueAsNewAttributes, e.0))?;
            }
            for d in [&a.workflow_run_timeout, &a.workflow_task_timeout, &a.backoff_start_interval] {
                if time::is_negative(d) {
                    return Err(reject(Cause::BadContinueAsNewAttributes, "A negative timeout is set on command."));
                }
            }
            super::close::continue_as_new(ctx, st, completed_event_id, a);
            Ok(())
        }
        Some(CommandAttributes::RecordMarkerCommandAttributes(a)) => {
            if a.marker_name.is_empty() {
                return Err(reject(Cause::BadRecordMarkerAttributes, "MarkerName is not set on command."));
            }
            ctx.append(
                st,
                EventType::MarkerRecorded,
                Attributes::MarkerRecordedEventAttributes(history_pb::MarkerRecordedEventAttributes {
                    marker_name: a.marker_name,
                    details: a.details,
                    workflow_task_completed_event_id: completed_event_id,
                    header: a.header,
                    failure: a.failure,
                }),
            );
            Ok(())
        }
        Some(CommandAttributes::UpsertWorkflowSearchAttributesCommandAttributes(a)) => {
            let attrs = a.search_attributes.unwrap_or_default();
            check_search_attributes(ctx, Some(&attrs))?;
            let merged = st.search_attributes.get_or_insert_with(Default::default);
            for (k, v) in &attrs.indexed_fields {
                // As Temporal: a nil value (no data, `null`, `[]`) removes the attribute.
                if super::is_nil_payload(v) {
                    merged.indexed_fields.remove(k);
                } else {
                    merged.indexed_fields.insert(k.clone(), v.clone());
                }
            }
            ctx.append(
                st,
                EventType::UpsertWorkflowSearchAttributes,
                Attributes::UpsertWorkflowSearchAttributesEventAttributes(
                    history_pb::UpsertWorkflowSearchAttributesEventAttributes {
                        workflow_task_completed_event_id: completed_event_id,
                        search_attributes: Some(attrs),
                    },
                ),
            );
            Ok(())
        }
        Some(CommandAttributes::CancelWorkflowExecutionCommandAttributes(a)) => {
            let id = ctx.append(
                st,
                EventType::WorkflowExecutionCanceled,
                Attributes::WorkflowExecutionCanceledEventAttributes(
                    history_pb::WorkflowExecutionCanceledEventAttributes {
                        workflow_task_completed_event_id: completed_event_id,
                        details: a.details,
                    },
                ),
            );
            close_run(ctx, st, enums_pb::WorkflowExecutionStatus::Canceled, id);
            Ok(())
        }
        Some(CommandAttributes::RequestCancelActivityTaskCommandAttributes(a)) => {
            if !st.activities.contains_key(&a.scheduled_event_id) {
                return Err(reject(
                    Cause::BadRequestCancelActivityAttributes,
                    format!(
                        "invalid history builder state for action: request cancel activity, no pending activity with scheduled event id {}",
                        a.scheduled_event_id
                    ),
                ));
            }
            super::activity::request_cancel_activity(ctx, st, completed_event_id, a.scheduled_event_id, identity);
            Ok(())
        }
        Some(CommandAttributes::StartChildWorkflowExecutionCommandAttributes(a)) => {
            let bad = Cause::BadStartChildExecutionAttributes;
            if a.workflow_id.is_empty() {
                return Err(reject(bad, "Required field WorkflowId is not set on command."));
            }
            if a.workflow_type.as_ref().is_none_or(|t| t.name.is_empty()) {
                return Err(reject(bad, "Required field WorkflowType is not set on command."));
            }
            if a.workflow_id.len() > ctx.limits.max_id_length {
                return Err(reject(bad, "WorkflowId exceeds length limit."));
            }
            check_blob(ctx, a.input.as_ref(), bad, "StartChildWorkflowExecutionCommandAttributes.Input")?;
            check_search_attributes(ctx, a.search_attributes.as_ref())?;
            if let Some(policy) = a.retry_policy.as_ref() {
                retry::normalize(Some(policy)).map_err(|e| reject(bad, e.0))?;
            }
            if st.children.len() >= ctx.limits.num_pending_child_executions_error {
                let message = super::limits::pending_message(
                    "pending child workflows",
                    st.children.len() as i64,
                    ctx.limits.num_pending_child_executions_error as i64,
                );
                return Err(reject(Cause::PendingChildWorkflowsLimitExceeded, message));
            }
            super::child::initiate(ctx, st, completed_event_id, a);
            Ok(())
        }
        Some(CommandAttributes::SignalExternalWorkflowExecutionCommandAttributes(a)) => {
            let bad = Cause::BadSignalWorkflowExecutionAttributes;
            if a.execution.as_ref().is_none_or(|e| e.workflow_id.is_empty()) {
                return Err(reject(bad, "WorkflowId is not set on command."));
            }
            if a.signal_name.is_empty() {
                return Err(reject(bad, "SignalName is not set on command."));
            }
            check_blob(ctx, a.input.as_ref(), bad, "SignalExternalWorkflowExecutionCommandAttributes.Input")?;
            if st.pending_external_signals >= ctx.limits.num_pending_signals_error {
                let message = super::limits::pending_message(
                    "pending signals to external workflows",
                    st.pending_external_signals,
                    ctx.limits.num_pending_signals_error,
                );
                return Err(reject(Cause::PendingSignalsLimitExceeded, message));
            }
            super::external::initiate_signal(ctx, st, completed_event_id, a);
            Ok(())
        }
        Some(CommandAttributes::RequestCancelExternalWorkflowExecutionCommandAttributes(a)) => {
            if a.workflow_id.is_empty() {
                return Err(reject(
                    Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
                    "WorkflowId is not set on command.",
                ));
            }
            if st.pending_external_cancels >= ctx.limits.num_pending_cancel_requests_error {
                let message = super::limits::pending_message(
                    "pending requests to cancel external workflows",
                    st.pending_external_cancels,
                    ctx.limits.num_pending_cancel_requests_error,
                );
                return Err(reject(Cause::PendingRequestCancelLimitExceeded, message));
            }
            super::external::initiate_cancel(ctx, st, completed_event_id, a);
            Ok(())
        }
        Some(CommandAttributes::ModifyWorkflowPropertiesCommandAttributes(a)) => {
            let upserted = a.upserted_memo.unwrap_or_default();
            let memo_size = prost::Message::encoded_len(&upserted);
            if memo_size > ctx.limits.memo_size_warn {
                ctx.warned_limits |= super::limits::WARN_MEMO_SIZE;
            }
            if memo_size > ctx.limits.memo_size_error && memo_size > ctx.limits.memo_size_warn {
                return Err(reject(Cause::BadModifyWorkflowPropertiesAttributes, "Memo size exceeds limit."));
            }
            let memo = st.memo.get_or_insert_with(Default::default);
            for (key, value) in &upserted.fields {
                // An empty payload removes the key, as in Temporal.
                let null = value.metadata.get("encoding").is_some_and(|e| e.as_slice() == b"binary/null");
                if null || (value.data.is_empty() && value.metadata.is_empty()) {
                    memo.fields.remove(key);
                } else {
                    memo.fields.insert(key.clone(), value.clone());
                }
            }
            ctx.append(
                st,
                EventType::WorkflowPropertiesModified,
                Attributes::WorkflowPropertiesModifiedEventAttributes(
                    history_pb::WorkflowPropertiesModifiedEventAttributes {
                        workflow_task_completed_event_id: completed_event_id,
                        upserted_memo: Some(upserted),
                    },
                ),
            );
            Ok(())
        }
        Some(CommandAttributes::StartTimerCommandAttributes(a)) => start_timer(ctx, st, completed_event_id, a),
        Some(CommandAttributes::CancelTimerCommandAttributes(a)) => {
            cancel_timer(ctx, st, completed_event_id, a, identity)
        }
        _ => {
            let name = command_name(command_type);
            Err(reject(unsupported_cause(command_type), format!("{name} is not supported by this server")))
        }
    }
}

/// Whether a command's attributes are those its type announces (Temporal switches on the type).
fn attributes_match(command_type: i32, attributes: Option<&CommandAttributes>) -> bool {
    use enums_pb::CommandType as C;
    let Ok(kind) = C::try_from(command_type) else { return false };
    matches!(
        (kind, attributes),
        (C::ScheduleActivityTask, Some(CommandAttributes::ScheduleActivityTaskCommandAttributes(_)))
            | (C::RequestCancelActivityTask, Some(CommandAttributes::RequestCancelActivityTaskCommandAttributes(_)))
            | (C::StartTimer, Some(CommandAttributes::StartTimerCommandAttributes(_)))
            | (C::CompleteWorkflowExecution, Some(CommandAttributes::CompleteWorkflowExecutionCommandAttributes(_)))
            | (C::FailWorkflowExecution, Some(CommandAttributes::FailWorkflowExecutionCommandAttributes(_)))
            | (C::CancelTimer, Some(CommandAttributes::CancelTimerCommandAttributes(_)))
            | (C::CancelWorkflowExecution, Some(CommandAttributes::CancelWorkflowExecutionCommandAttributes(_)))
            | (
                C::RequestCancelExternalWorkflowExecution,
                Some(CommandAttributes::RequestCancelExternalWorkflowExecutionCommandAttributes(_))
            )
            | (C::RecordMarker, Some(CommandAttributes::RecordMarkerCommandAttributes(_)))
            | (
                C::ContinueAsNewWorkflowExecution,
                Some(CommandAttributes::ContinueAsNewWorkflowExecutionCommandAttributes(_))
            )
            | (
                C::StartChildWorkflowExecution,
                Some(CommandAttributes::StartChildWorkflowExecutionCommandAttributes(_))
            )
            | (
                C::SignalExternalWorkflowExecution,
                Some(CommandAttributes::SignalExternalWorkflowExecutionCommandAttributes(_))
            )
            | (
                C::UpsertWorkflowSearchAttributes,
                Some(CommandAttributes::UpsertWorkflowSearchAttributesCommandAttributes(_))
            )
            | (C::ProtocolMessage, Some(CommandAttributes::ProtocolMessageCommandAttributes(_)))
            | (C::ModifyWorkflowProperties, Some(CommandAttributes::ModifyWorkflowPropertiesCommandAttributes(_)))
            | (C::ScheduleNexusOperation, Some(CommandAttributes::ScheduleNexusOperationCommandAttributes(_)))
            | (
                C::RequestCancelNexusOperation,
                Some(CommandAttributes::RequestCancelNexusOperationCommandAttributes(_))
            )
    )
}

fn start_timer(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    a: command_pb::StartTimerCommandAttributes,
) -> Result<(), Rejection> {
    if a.timer_id.is_empty() {
        return Err(reject(Cause::BadStartTimerAttributes, "TimerId is not set on StartTimerCommand."));
    }
    if a.timer_id.len() > ctx.limits.max_id_length {
        return Err(reject(
            Cause::BadStartTimerAttributes,
            format!(
                "TimerId on StartTimerCommand exceeds length limit. TimerId={} Length={} Limit={}",
                a.timer_id,
                a.timer_id.len(),
                ctx.limits.max_id_length
            ),
        ));
    }
    // As Temporal: a missing or zero timeout is a timer that fires at once; only a negative one
    // (or one whose seconds and nanos disagree in sign) is refused.
    if let Some(d) = &a.start_to_fire_timeout {
        let problem = if (d.seconds > 0 && d.nanos < 0) || (d.seconds < 0 && d.nanos > 0) {
            Some("duration has seconds and nanos with different signs")
        } else if d.seconds < 0 || d.nanos < 0 {
            Some("negative duration")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(reject(
                Cause::BadStartTimerAttributes,
                format!("An invalid StartToFireTimeout is set on StartTimerCommand: {problem}. TimerId={}", a.timer_id),
            ));
        }
    }
    let fire_in = time::duration_ms(&a.start_to_fire_timeout).max(0);
    if st.timers.contains_key(&a.timer_id) {
        return Err(reject(
            Cause::StartTimerDuplicateId,
            format!(
                "invalid history builder state for action: add-timer-started-event, timer id {} already started",
                a.timer_id
            ),
        ));
    }
    let started_event_id = ctx.append(
        st,
        EventType::TimerStarted,
        Attributes::TimerStartedEventAttributes(history_pb::TimerStartedEventAttributes {
            timer_id: a.timer_id.clone(),
            start_to_fire_timeout: a.start_to_fire_timeout,
            workflow_task_completed_event_id: completed_event_id,
        }),
    );
    let fire_at_ms = ctx.now + fire_in;
    st.timers.insert(a.timer_id.clone(), UserTimerInfo { timer_id: a.timer_id, started_event_id, fire_at_ms });
    ctx.arm(TimerKind::UserTimer, fire_at_ms, started_event_id, 0);
    Ok(())
}

/// Cancels a pending timer; a TimerFired still in the buffer is withdrawn, as in Temporal.
fn cancel_timer(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    a: command_pb::CancelTimerCommandAttributes,
    identity: &str,
) -> Result<(), Rejection> {
    let started_event_id = if let Some(timer) = st.timers.remove(&a.timer_id) {
        ctx.effects.push(Effect::TimerDone(TimerTask::key(TimerKind::UserTimer, timer.started_event_id, 0)));
        timer.started_event_id
    } else {
        let fired = st.buffered_events.iter().position(
            |e| matches!(&e.attributes, Some(Attributes::TimerFiredEventAttributes(f)) if f.timer_id == a.timer_id),
        );
        match fired {
            Some(idx) => match st.buffered_events.remove(idx).attributes {
                Some(Attributes::TimerFiredEventAttributes(f)) => f.started_event_id,
                _ => unreachable!("position matched a TimerFired event"),
            },
            None => {
                return Err(reject(
                    Cause::BadCancelTimerAttributes,
                    format!(
                        "invalid history builder state for action: cancel timer, timer id {} is not pending",
                        a.timer_id
                    ),
                ));
            }
        }
    };
    ctx.append(
        st,
        EventType::TimerCanceled,
        Attributes::TimerCanceledEventAttributes(history_pb::TimerCanceledEventAttributes {
            timer_id: a.timer_id,
            started_event_id,
            workflow_task_completed_event_id: completed_event_id,
            identity: identity.to_string(),
        }),
    );
    Ok(())
}

/// Search attributes a command sets must be registered and typed right (the server's check).
fn check_search_attributes(ctx: &Ctx<'_>, attrs: Option<&common_pb::SearchAttributes>) -> Result<(), Rejection> {
    match (ctx.search_attribute_check, attrs) {
        (Some(check), Some(attrs)) => check(attrs).map_err(|message| reject(Cause::BadSearchAttributes, message)),
        _ => Ok(()),
    }
}

fn check_blob(
    ctx: &mut Ctx<'_>,
    payloads: Option<&common_pb::Payloads>,
    cause: Cause,
    field: &str,
) -> Result<(), Rejection> {
    let size: usize = payloads.map(|p| p.payloads.iter().map(prost::Message::encoded_len).sum()).unwrap_or(0);
    // As in Temporal, the error limit applies to payloads over the warn limit too.
    if size > ctx.limits.blob_size_error && size > ctx.limits.blob_size_warn {
        return Err(reject(cause, format!("{field} exceeds size limit.")));
    }
    if size > ctx.limits.blob_size_warn {
        ctx.warned_limits |= super::limits::WARN_BLOB_SIZE;
    }
    Ok(())
}

fn schedule_activity(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    a: command_pb::ScheduleActivityTaskCommandAttributes,
) -> Result<(), Rejection> {
    // Temporal's validation order and messages: the attributes first, then the pending limit,
    // then a duplicate id.
    let bad = Cause::BadScheduleActivityAttributes;
    let activity_type_name = a.activity_type.as_ref().map(|t| t.name.as_str()).unwrap_or_default();
    if a.activity_id.is_empty() {
        return Err(reject(bad, "activityId is not set"));
    }
    if activity_type_name.is_empty() {
        return Err(reject(bad, "activityType is not set"));
    }
    if a.activity_id.len() > ctx.limits.max_id_length {
        return Err(reject(
            bad,
            format!(
                "activityId exceeds length limit. Length={} Limit={}",
                a.activity_id.len(),
                ctx.limits.max_id_length
            ),
        ));
    }
    if activity_type_name.len() > ctx.limits.max_id_length {
        return Err(reject(
            bad,
            format!(
                "activityType exceeds length limit. Length={} Limit={}",
                activity_type_name.len(),
                ctx.limits.max_id_length
            ),
        ));
    }
    let no_timeout =
        time::duration_ms(&a.schedule_to_close_timeout) <= 0 && time::duration_ms(&a.start_to_close_timeout) <= 0;
    if no_timeout {
        return Err(reject(
            bad,
            format!(
                "a valid StartToCloseTimeout or ScheduleToCloseTimeout must be set on the activity. ActivityId={} ActivityType={}",
                a.activity_id, activity_type_name
            ),
        ));
    }
    if st.activities.len() >= ctx.limits.num_pending_activities_error {
        let message = super::limits::pending_message(
            "pending activities",
            st.activities.len() as i64,
            ctx.limits.num_pending_activities_error as i64,
        );
        return Err(reject(Cause::PendingActivitiesLimitExceeded, message));
    }
    if st.activities.values().any(|ai| ai.activity_id == a.activity_id) {
        return Err(reject(
            Cause::ScheduleActivityDuplicateId,
            format!("Activity with ID {} is already pending.", a.activity_id),
        ));
    }
    for d in
        [&a.schedule_to_close_timeout, &a.schedule_to_start_timeout, &a.start_to_close_timeout, &a.heartbeat_timeout]
    {
        if time::is_negative(d) {
            return Err(reject(bad, "Invalid ActivityTaskTimeouts."));
        }
    }
    check_blob(ctx, a.input.as_ref(), bad, "ScheduleActivityTaskCommandAttributes.Input")?;
    let retry_policy = retry::normalize(a.retry_policy.as_ref()).map_err(|e| reject(bad, e.0))?;
    let (s2c, s2s, stc, heartbeat) = super::activity::normalize_timeouts(
        [&a.schedule_to_close_timeout, &a.schedule_to_start_timeout, &a.start_to_close_timeout, &a.heartbeat_timeout]
            .map(time::duration_ms),
        st.run_timeout_ms,
    )
    .ok_or_else(|| reject(bad, "A valid StartToClose or ScheduleToCloseTimeout is not set on command."))?;
    let task_queue = match a.task_queue.as_ref().map(|q| q.name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => st.task_queue.clone(),
    };
    let activity_type = a.activity_type.clone().unwrap_or_default();
    let eager = a.request_eager_execution && ctx.limits.enable_activity_eager_execution;
    let scheduled_event_id = ctx.append(
        st,
        EventType::ActivityTaskScheduled,
        Attributes::ActivityTaskScheduledEventAttributes(history_pb::ActivityTaskScheduledEventAttributes {
            activity_id: a.activity_id.clone(),
            activity_type: Some(activity_type.clone()),
            task_queue: Some(super::normal_task_queue(&task_queue)),
            header: a.header.clone(),
            input: a.input.clone(),
            schedule_to_close_timeout: Some(time::duration(s2c)),
            schedule_to_start_timeout: Some(time::duration(s2s)),
            start_to_close_timeout: Some(time::duration(stc)),
            heartbeat_timeout: Some(time::duration(heartbeat)),
            workflow_task_completed_event_id: completed_event_id,
            retry_policy: Some(retry_policy.clone()),
            use_workflow_build_id: a.use_workflow_build_id,
            priority: a.priority.clone(),
        }),
    );
    st.activity_count += 1;
    st.activities.insert(
        scheduled_event_id,
        ActivityInfo {
            scheduled_event_id,
            activity_id: a.activity_id,
            activity_type: activity_type.name,
            task_queue: task_queue.clone(),
            header: a.header,
            input: a.input,
            schedule_to_close_ms: s2c,
            schedule_to_start_ms: s2s,
            start_to_close_ms: stc,
            heartbeat_ms: heartbeat,
            retry_policy: Some(retry_policy),
            attempt: 1,
            state: ActivityState::Scheduled as i32,
            scheduled_time_ms: ctx.now,
            attempt_scheduled_time_ms: ctx.now,
            priority: a.priority,
            ..Default::default()
        },
    );
    ctx.effects.push(Effect::DispatchActivityTask { task_queue, scheduled_event_id, attempt: 1 });
    if s2c > 0 {
        ctx.arm(TimerKind::ActivityScheduleToClose, ctx.now + s2c, scheduled_event_id, 0);
    }
    if s2s > 0 {
        ctx.arm(TimerKind::ActivityScheduleToStart, ctx.now + s2s, scheduled_event_id, 1);
    }
    if eager {
        ctx.eager_activities.push(scheduled_event_id);
    }
    Ok(())
}

/// Writes WorkflowTaskFailed for the started task, flushes the buffer and schedules the next attempt.
fn write_failed(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    cause: Cause,
    message: String,
    identity: &str,
    binary_checksum: &str,
) {
    let failure = failure_pb::Failure {
        message,
        failure_info: Some(failure_pb::failure::FailureInfo::ServerFailureInfo(failure_pb::ServerFailureInfo {
            non_retryable: false,
        })),
        source: String::new(),
        ..Default::default()
    };
    write_failed_with(ctx, st, cause as i32, Some(failure), identity, binary_checksum);
}

fn write_failed_with(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    cause: i32,
    failure: Option<failure_pb::Failure>,
    identity: &str,
    binary_checksum: &str,
) {
    let wt = st.workflow_task.take().expect("caller checked the started task");
    // A transient attempt leaves no trace: the first attempt's failure is already written.
    if !wt.is_transient() {
        ctx.append(
            st,
            EventType::WorkflowTaskFailed,
            Attributes::WorkflowTaskFailedEventAttributes(history_pb::WorkflowTaskFailedEventAttributes {
                scheduled_event_id: wt.scheduled_event_id,
                started_event_id: wt.started_event_id,
                cause,
                failure,
                identity: identity.to_string(),
                binary_checksum: binary_checksum.to_string(),
                ..Default::default()
            }),
        );
    }
    ctx.effects.push(Effect::TimerDone(TimerTask::key(
        TimerKind::WorkflowTaskStartToClose,
        wt.scheduled_event_id,
        wt.attempt,
    )));
    retry_workflow_task(ctx, st, &wt, true);
}

/// Schedules the next attempt after a failed or timed-out one, at once (as Temporal; it is the
/// lengthening start-to-close timeout of later attempts that slows a task failing again and
/// again, see `workflow_task_timeout_for_attempt`).
///
/// The attempt number grows only when the task failed on the normal queue: a failure on the
/// sticky queue clears the stickiness and tries attempt 1 again with the full history first.
/// Events that arrived meanwhile are written and make the next task a normal attempt 1.
fn retry_workflow_task(ctx: &mut Ctx<'_>, st: &mut RunState, wt: &WorkflowTaskInfo, increment: bool) {
    let increment = increment && st.sticky_task_queue.is_empty();
    st.sticky_task_queue.clear();
    st.sticky_schedule_to_start_ms = 0;
    st.next_workflow_task_attempt = if increment { wt.attempt + 1 } else { 1 };
    super::update::requeue_unanswered(st);
    if !st.buffered_events.is_empty() {
        ctx.flush_buffered(st);
        st.next_workflow_task_attempt = 1;
    }
    ctx.state_changed = true;
    schedule_workflow_task(ctx, st);
}

/// The worker reports that it could not process the workflow task.
pub fn fail_workflow_task(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    token: &TaskToken,
    request: workflowservice_pb::RespondWorkflowTaskFailedRequest,
) -> Result<()> {
    check_token(st, token)?;
    write_failed_with(ctx, st, request.cause, request.failure, &request.identity, &request.binary_checksum);
    Ok(())
}

/// The started workflow task exceeded its start-to-close timeout.
pub(super) fn time_out_workflow_task(ctx: &mut Ctx<'_>, st: &mut RunState, scheduled_event_id: i64, attempt: i32) {
    let Some(wt) = st.started_workflow_task() else { return };
    if !st.is_open() || wt.scheduled_event_id != scheduled_event_id || wt.attempt != attempt {
        return;
    }
    let wt = st.workflow_task.take().expect("checked above");
    if !wt.is_transient() {
        ctx.append(
            st,
            EventType::WorkflowTaskTimedOut,
            Attributes::WorkflowTaskTimedOutEventAttributes(history_pb::WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id: wt.scheduled_event_id,
                started_event_id: wt.started_event_id,
                timeout_type: enums_pb::TimeoutType::StartToClose as i32,
            }),
        );
    }
    retry_workflow_task(ctx, st, &wt, true);
}

/// A task on the sticky queue was not picked up in time: WorkflowTaskTimedOut with
/// SCHEDULE_TO_START, the stickiness is cleared and the task goes to the normal queue as a new
/// attempt 1 with the full history (Temporal's sticky timeout).
pub(super) fn sticky_schedule_to_start_timed_out(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    scheduled_event_id: i64,
    attempt: i32,
) {
    let Some(wt) = st.workflow_task.as_ref() else { return };
    if !st.is_open() || wt.scheduled_event_id != scheduled_event_id || wt.attempt != attempt || wt.started_event_id != 0
    {
        return;
    }
    let wt = st.workflow_task.take().expect("checked above");
    ctx.append(
        st,
        EventType::WorkflowTaskTimedOut,
        Attributes::WorkflowTaskTimedOutEventAttributes(history_pb::WorkflowTaskTimedOutEventAttributes {
            scheduled_event_id: wt.scheduled_event_id,
            started_event_id: 0,
            timeout_type: enums_pb::TimeoutType::ScheduleToStart as i32,
        }),
    );
    // The task leaves the outbox; a poller that still finds it in a queue is turned away.
    ctx.effects.push(Effect::TaskStarted { scheduled_event_id });
    retry_workflow_task(ctx, st, &wt, false);
}

/// Forgets the run's sticky queue (ResetStickyTaskQueue, or its worker shut down): the next
/// workflow task goes to the normal queue with the full history. Returns whether it was set.
pub fn reset_sticky_task_queue(ctx: &mut Ctx<'_>, st: &mut RunState) -> bool {
    if st.sticky_task_queue.is_empty() {
        return false;
    }
    st.sticky_task_queue.clear();
    st.sticky_schedule_to_start_ms = 0;
    ctx.state_changed = true;
    true
}

fn is_closing(command_type: i32) -> bool {
    use enums_pb::CommandType as C;
    matches!(
        C::try_from(command_type),
        Ok(C::CompleteWorkflowExecution
            | C::FailWorkflowExecution
            | C::CancelWorkflowExecution
            | C::ContinueAsNewWorkflowExecution)
    )
}

fn closing_cause(command_type: i32) -> Cause {
    use enums_pb::CommandType as C;
    match C::try_from(command_type) {
        Ok(C::FailWorkflowExecution) => Cause::BadFailWorkflowExecutionAttributes,
        Ok(C::CancelWorkflowExecution) => Cause::BadCancelWorkflowExecutionAttributes,
        Ok(C::ContinueAsNewWorkflowExecution) => Cause::BadContinueAsNewAttributes,
        _ => Cause::BadCompleteWorkflowExecutionAttributes,
    }
}

fn unsupported_cause(command_type: i32) -> Cause {
    use enums_pb::CommandType as C;
    match C::try_from(command_type) {
        Ok(C::RequestCancelActivityTask) => Cause::BadRequestCancelActivityAttributes,
        Ok(C::StartTimer) => Cause::BadStartTimerAttributes,
        Ok(C::CancelTimer) => Cause::BadCancelTimerAttributes,
        Ok(C::CancelWorkflowExecution) => Cause::BadCancelWorkflowExecutionAttributes,
        Ok(C::RequestCancelExternalWorkflowExecution) => Cause::BadRequestCancelExternalWorkflowExecutionAttributes,
        Ok(C::ContinueAsNewWorkflowExecution) => Cause::BadContinueAsNewAttributes,
        Ok(C::StartChildWorkflowExecution) => Cause::BadStartChildExecutionAttributes,
        Ok(C::SignalExternalWorkflowExecution) => Cause::BadSignalWorkflowExecutionAttributes,
        Ok(C::ProtocolMessage) => Cause::BadUpdateWorkflowExecutionMessage,
        Ok(C::ModifyWorkflowProperties) => Cause::BadModifyWorkflowPropertiesAttributes,
        Ok(C::ScheduleNexusOperation) => Cause::BadScheduleNexusOperationAttributes,
        Ok(C::RequestCancelNexusOperation) => Cause::BadRequestCancelNexusOperationAttributes,
        // Commands whose attributes do not match their type, or unknown types.
        _ => Cause::UnhandledCommand,
    }
}

fn command_name(command_type: i32) -> String {
    enums_pb::CommandType::try_from(command_type)
        .map(|c| pascal_case(c.as_str_name().trim_start_matches("COMMAND_TYPE_")))
        .unwrap_or_else(|_| format!("command type {command_type}"))
}

/// `BAD_START_TIMER_ATTRIBUTES` -> `BadStartTimerAttributes`, as Temporal prints enum values.
fn pascal_case(screaming: &str) -> String {
    screaming
        .split('_')
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}
