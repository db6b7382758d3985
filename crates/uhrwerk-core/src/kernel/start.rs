//! Creating a run: WorkflowExecutionStarted followed by the first workflow task.

use crate::pb::enums::v1 as enums_pb;
use crate::pb::history::v1 as history_pb;
use crate::pb::workflowservice::v1 as workflowservice_pb;
use crate::state::RunState;
use crate::time;

use super::signal::{SignalInput, remember_request_id, signaled_event};
use super::{Ctx, normal_task_queue, schedule_workflow_task};
use history_pb::history_event::Attributes;

/// Server-chosen facts of a new run.
pub struct StartOptions {
    pub run_id: String,
    /// The request after validation and defaulting by the frontend (task queue name set,
    /// retry policy normalized).
    pub request: workflowservice_pb::StartWorkflowExecutionRequest,
    /// Signal-with-start: delivered right after WorkflowExecutionStarted, before the first task.
    pub signal: Option<SignalInput>,
}

/// Builds a new run from a validated start request.
pub fn start_run(ctx: &mut Ctx<'_>, options: StartOptions) -> RunState {
    let StartOptions { run_id, request: req, signal } = options;
    let execution_timeout_ms = time::duration_ms(&req.workflow_execution_timeout);
    let mut run_timeout_ms = time::duration_ms(&req.workflow_run_timeout);
    if run_timeout_ms == 0 || (execution_timeout_ms > 0 && run_timeout_ms > execution_timeout_ms) {
        run_timeout_ms = execution_timeout_ms;
    }
    let mut task_timeout_ms = time::duration_ms(&req.workflow_task_timeout);
    if task_timeout_ms == 0 {
        task_timeout_ms = ctx.limits.default_workflow_task_timeout_ms;
    }
    task_timeout_ms = task_timeout_ms.min(ctx.limits.max_workflow_task_timeout_ms);
    if run_timeout_ms > 0 {
        task_timeout_ms = task_timeout_ms.min(run_timeout_ms);
    }
    let task_queue = req.task_queue.as_ref().map(|q| q.name.clone()).unwrap_or_default();
    let mut st = RunState {
        namespace: req.namespace.clone(),
        workflow_id: req.workflow_id.clone(),
        run_id: run_id.clone(),
        first_execution_run_id: run_id.clone(),
        workflow_type: req.workflow_type.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
        task_queue: task_queue.clone(),
        status: enums_pb::WorkflowExecutionStatus::Running as i32,
        start_time_ms: ctx.now,
        execution_time_ms: ctx.now,
        next_event_id: 1,
        workflow_task_timeout_ms: task_timeout_ms,
        start_request_id: req.request_id.clone(),
        run_timeout_ms,
        execution_timeout_ms,
        memo: req.memo.clone(),
        search_attributes: req.search_attributes.clone(),
        next_workflow_task_attempt: 1,
        retry_policy: req.retry_policy.clone(),
        attempt: 1,
        ..Default::default()
    };
    let expiration = (execution_timeout_ms > 0).then(|| time::timestamp(ctx.now + execution_timeout_ms));
    ctx.append(
        &mut st,
        enums_pb::EventType::WorkflowExecutionStarted,
        Attributes::WorkflowExecutionStartedEventAttributes(history_pb::WorkflowExecutionStartedEventAttributes {
            workflow_type: req.workflow_type,
            task_queue: Some(normal_task_queue(&task_queue)),
            input: req.input,
            workflow_execution_timeout: req.workflow_execution_timeout,
            workflow_run_timeout: (run_timeout_ms > 0).then(|| time::duration(run_timeout_ms)),
            workflow_task_timeout: time::opt_duration(task_timeout_ms),
            original_execution_run_id: run_id.clone(),
            identity: req.identity,
            first_execution_run_id: run_id,
            retry_policy: req.retry_policy,
            attempt: 1,
            workflow_execution_expiration_time: expiration,
            cron_schedule: req.cron_schedule,
            first_workflow_task_backoff: Some(time::duration(0)),
            memo: req.memo,
            search_attributes: req.search_attributes,
            header: req.header,
            workflow_id: req.workflow_id,
            priority: Some(req.priority.unwrap_or_default()),
            ..Default::default()
        }),
    );
    if let Some(signal) = signal {
        remember_request_id(&mut st, &signal.request_id);
        st.signal_count += 1;
        let (event_type, attributes) = signaled_event(&signal);
        ctx.append(&mut st, event_type, attributes);
    }
    schedule_workflow_task(ctx, &mut st);
    st
}
