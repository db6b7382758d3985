//! Child workflows, seen from the parent: StartChildWorkflowExecutionInitiated with the command,
//! then ChildWorkflowExecutionStarted (or StartChildWorkflowExecutionFailed) and one closing
//! Child* event, delivered by the engine through transfer tasks; the parent that a child's
//! start belongs to.

use crate::pb::command::v1 as command_pb;
use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::failure::v1 as failure_pb;
use crate::pb::history::v1 as history_pb;
use crate::pb::workflowservice::v1 as workflowservice_pb;
use crate::state::{ChildInfo, ParentInfo, RunState};
use crate::transfer::{TransferKind, TransferTask};

use super::{BUFFERED_STARTED_ID, Ctx, Effect, Result, new_event, schedule_workflow_task};
use enums_pb::EventType;
use history_pb::history_event::Attributes;

/// How a child's chain of runs ended, as the parent records it.
#[derive(Clone, Debug, PartialEq)]
pub enum ChildOutcome {
    Completed(Option<common_pb::Payloads>),
    Failed(Option<Box<failure_pb::Failure>>, i32),
    Canceled(Option<common_pb::Payloads>),
    Terminated,
    TimedOut(i32),
}

/// The start request of the child initiated by event `initiated_event_id` of run `parent_run_id`.
/// Its request id makes a repeated start (after a crash) idempotent.
pub fn start_request(
    parent_run_id: &str,
    initiated_event_id: i64,
    a: &history_pb::StartChildWorkflowExecutionInitiatedEventAttributes,
) -> workflowservice_pb::StartWorkflowExecutionRequest {
    workflowservice_pb::StartWorkflowExecutionRequest {
        namespace: a.namespace.clone(),
        workflow_id: a.workflow_id.clone(),
        workflow_type: a.workflow_type.clone(),
        task_queue: a.task_queue.clone(),
        input: a.input.clone(),
        workflow_execution_timeout: a.workflow_execution_timeout,
        workflow_run_timeout: a.workflow_run_timeout,
        workflow_task_timeout: a.workflow_task_timeout,
        request_id: format!("{parent_run_id}-child-{initiated_event_id}"),
        workflow_id_reuse_policy: a.workflow_id_reuse_policy,
        retry_policy: a.retry_policy.clone(),
        cron_schedule: a.cron_schedule.clone(),
        memo: a.memo.clone(),
        search_attributes: a.search_attributes.clone(),
        header: a.header.clone(),
        priority: a.priority.clone(),
        ..Default::default()
    }
}

/// Handles the StartChildWorkflowExecution command; a transfer task starts the child after the commit.
pub(super) fn initiate(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    a: command_pb::StartChildWorkflowExecutionCommandAttributes,
) -> i64 {
    let namespace = if a.namespace.is_empty() { st.namespace.clone() } else { a.namespace.clone() };
    let task_queue = match a.task_queue.as_ref().map(|q| q.name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => st.task_queue.clone(),
    };
    let initiated = history_pb::StartChildWorkflowExecutionInitiatedEventAttributes {
        namespace: namespace.clone(),
        workflow_id: a.workflow_id.clone(),
        workflow_type: a.workflow_type.clone(),
        task_queue: Some(super::normal_task_queue(&task_queue)),
        input: a.input,
        workflow_execution_timeout: a.workflow_execution_timeout,
        workflow_run_timeout: a.workflow_run_timeout,
        workflow_task_timeout: a.workflow_task_timeout,
        parent_close_policy: a.parent_close_policy,
        control: a.control,
        workflow_task_completed_event_id: completed_event_id,
        workflow_id_reuse_policy: a.workflow_id_reuse_policy,
        retry_policy: a.retry_policy,
        cron_schedule: a.cron_schedule,
        header: a.header,
        memo: a.memo,
        search_attributes: a.search_attributes,
        priority: a.priority,
        ..Default::default()
    };
    let initiated_event_id = ctx.append(
        st,
        EventType::StartChildWorkflowExecutionInitiated,
        Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(initiated),
    );
    let workflow_type = a.workflow_type.as_ref().map(|t| t.name.clone()).unwrap_or_default();
    st.children.insert(
        initiated_event_id,
        ChildInfo {
            initiated_event_id,
            namespace,
            workflow_id: a.workflow_id,
            workflow_type,
            parent_close_policy: a.parent_close_policy,
            ..Default::default()
        },
    );
    ctx.effects.push(Effect::Transfer(TransferTask::new(TransferKind::StartChild, initiated_event_id)));
    initiated_event_id
}

fn child_execution(child: &ChildInfo) -> common_pb::WorkflowExecution {
    common_pb::WorkflowExecution { workflow_id: child.workflow_id.clone(), run_id: child.run_id.clone() }
}

/// Appends an event from outside a task, noting the id of a ChildWorkflowExecutionStarted.
fn append_child_event(ctx: &mut Ctx<'_>, st: &mut RunState, event_type: EventType, attributes: Attributes) -> i64 {
    let event = new_event(0, ctx.now, event_type, attributes);
    if st.started_workflow_task().is_some() {
        st.buffered_events.push(event);
        ctx.state_changed = true;
        BUFFERED_STARTED_ID
    } else {
        let id = ctx.push_persisted(st, event);
        schedule_workflow_task(ctx, st);
        id
    }
}

/// The child started as run `run_id`.
pub fn child_started(ctx: &mut Ctx<'_>, st: &mut RunState, initiated_event_id: i64, run_id: &str) -> Result<()> {
    if !st.is_open() {
        return Ok(());
    }
    let Some(child) = st.children.get_mut(&initiated_event_id) else { return Ok(()) };
    if child.started_event_id != 0 {
        return Ok(());
    }
    child.run_id = run_id.to_string();
    let child = child.clone();
    let id = append_child_event(
        ctx,
        st,
        EventType::ChildWorkflowExecutionStarted,
        Attributes::ChildWorkflowExecutionStartedEventAttributes(
            history_pb::ChildWorkflowExecutionStartedEventAttributes {
                namespace: child.namespace.clone(),
                initiated_event_id,
                workflow_execution: Some(child_execution(&child)),
                workflow_type: Some(common_pb::WorkflowType { name: child.workflow_type.clone() }),
                ..Default::default()
            },
        ),
    );
    if let Some(c) = st.children.get_mut(&initiated_event_id) {
        c.started_event_id = id;
    }
    Ok(())
}

/// The child could not start because its workflow id is taken.
pub fn child_start_failed(ctx: &mut Ctx<'_>, st: &mut RunState, initiated_event_id: i64) -> Result<()> {
    if !st.is_open() {
        return Ok(());
    }
    let Some(child) = st.children.remove(&initiated_event_id) else { return Ok(()) };
    append_child_event(
        ctx,
        st,
        EventType::StartChildWorkflowExecutionFailed,
        Attributes::StartChildWorkflowExecutionFailedEventAttributes(
            history_pb::StartChildWorkflowExecutionFailedEventAttributes {
                namespace: child.namespace,
                workflow_id: child.workflow_id,
                workflow_type: Some(common_pb::WorkflowType { name: child.workflow_type }),
                cause: enums_pb::StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists as i32,
                initiated_event_id,
                ..Default::default()
            },
        ),
    );
    Ok(())
}

/// The child's chain of runs closed.
pub fn child_closed(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    initiated_event_id: i64,
    run_id: &str,
    outcome: ChildOutcome,
) -> Result<()> {
    if !st.is_open() || !st.children.contains_key(&initiated_event_id) {
        return Ok(());
    }
    if st.children[&initiated_event_id].started_event_id == 0 {
        // The close overtook the start notification: write the start first.
        child_started(ctx, st, initiated_event_id, run_id)?;
    }
    let child = st.children.remove(&initiated_event_id).expect("checked above");
    let (namespace, execution, workflow_type, started_event_id) = (
        child.namespace.clone(),
        Some(common_pb::WorkflowExecution { workflow_id: child.workflow_id.clone(), run_id: run_id.to_string() }),
        Some(common_pb::WorkflowType { name: child.workflow_type.clone() }),
        child.started_event_id,
    );
    let (event_type, attributes) = match outcome {
        ChildOutcome::Completed(result) => (
            EventType::ChildWorkflowExecutionCompleted,
            Attributes::ChildWorkflowExecutionCompletedEventAttributes(
                history_pb::ChildWorkflowExecutionCompletedEventAttributes {
                    result,
                    namespace,
                    workflow_execution: execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    ..Default::default()
                },
            ),
        ),
        ChildOutcome::Failed(failure, retry_state) => (
            EventType::ChildWorkflowExecutionFailed,
            Attributes::ChildWorkflowExecutionFailedEventAttributes(
                history_pb::ChildWorkflowExecutionFailedEventAttributes {
                    failure: failure.map(|f| *f),
                    namespace,
                    workflow_execution: execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    retry_state,
                    ..Default::default()
                },
            ),
        ),
        ChildOutcome::Canceled(details) => (
            EventType::ChildWorkflowExecutionCanceled,
            Attributes::ChildWorkflowExecutionCanceledEventAttributes(
                history_pb::ChildWorkflowExecutionCanceledEventAttributes {
                    details,
                    namespace,
                    workflow_execution: execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    ..Default::default()
                },
            ),
        ),
        ChildOutcome::Terminated => (
            EventType::ChildWorkflowExecutionTerminated,
            Attributes::ChildWorkflowExecutionTerminatedEventAttributes(
                history_pb::ChildWorkflowExecutionTerminatedEventAttributes {
                    namespace,
                    workflow_execution: execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    ..Default::default()
                },
            ),
        ),
        ChildOutcome::TimedOut(retry_state) => (
            EventType::ChildWorkflowExecutionTimedOut,
            Attributes::ChildWorkflowExecutionTimedOutEventAttributes(
                history_pb::ChildWorkflowExecutionTimedOutEventAttributes {
                    namespace,
                    workflow_execution: execution,
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    retry_state,
                    ..Default::default()
                },
            ),
        ),
    };
    append_child_event(ctx, st, event_type, attributes);
    Ok(())
}

/// The outcome a closing event means for the parent, or None for events that continue the chain.
pub fn outcome_of(event: &history_pb::HistoryEvent) -> Option<ChildOutcome> {
    match event.attributes.as_ref()? {
        Attributes::WorkflowExecutionCompletedEventAttributes(a) if a.new_execution_run_id.is_empty() => {
            Some(ChildOutcome::Completed(a.result.clone()))
        }
        Attributes::WorkflowExecutionFailedEventAttributes(a) if a.new_execution_run_id.is_empty() => {
            Some(ChildOutcome::Failed(a.failure.clone().map(Box::new), a.retry_state))
        }
        Attributes::WorkflowExecutionCanceledEventAttributes(a) => Some(ChildOutcome::Canceled(a.details.clone())),
        Attributes::WorkflowExecutionTerminatedEventAttributes(_) => Some(ChildOutcome::Terminated),
        Attributes::WorkflowExecutionTimedOutEventAttributes(a) if a.new_execution_run_id.is_empty() => {
            Some(ChildOutcome::TimedOut(a.retry_state))
        }
        _ => None,
    }
}

/// The parent of the child initiated by `initiated_event_id` of run `st`, as the child's run
/// records it.
pub fn parent_of_child(st: &RunState, initiated_event_id: i64) -> ParentInfo {
    let root = st.root.clone().or_else(|| {
        Some(common_pb::WorkflowExecution { workflow_id: st.workflow_id.clone(), run_id: st.run_id.clone() })
    });
    ParentInfo {
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: st.run_id.clone(),
        initiated_event_id,
        root,
    }
}
