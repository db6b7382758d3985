//! Creating runs: a fresh start, or a successor of a closed run (continue-as-new, workflow retry,
//! cron). Every run begins with WorkflowExecutionStarted; its first workflow task is scheduled
//! at once or after `first_workflow_task_backoff`.

use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::failure::v1 as failure_pb;
use crate::pb::history::v1 as history_pb;
use crate::pb::workflowservice::v1 as workflowservice_pb;
use crate::state::{ParentInfo, RunState};
use crate::time::{self, Millis};

use super::signal::{SignalInput, remember_request_id, signaled_event};
use super::{Ctx, TimerKind, normal_task_queue, schedule_workflow_task};
use history_pb::history_event::Attributes;

/// Server-chosen facts of a new run.
pub struct StartOptions {
    pub run_id: String,
    /// The request after validation and defaulting by the frontend (task queue name set,
    /// retry policy normalized).
    pub request: workflowservice_pb::StartWorkflowExecutionRequest,
    /// Signal-with-start: delivered right after WorkflowExecutionStarted, before the first task.
    pub signal: Option<SignalInput>,
    /// Set when a parent workflow starts this run as its child.
    pub parent: Option<ParentInfo>,
}

/// Everything a new run is made of.
#[derive(Default)]
pub(super) struct RunSpec {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    /// Empty for the first run of a chain.
    pub first_execution_run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub input: Option<common_pb::Payloads>,
    pub header: Option<common_pb::Header>,
    pub memo: Option<common_pb::Memo>,
    pub search_attributes: Option<common_pb::SearchAttributes>,
    pub execution_timeout_ms: Millis,
    pub run_timeout_ms: Millis,
    pub task_timeout_ms: Millis,
    pub retry_policy: Option<common_pb::RetryPolicy>,
    pub cron_schedule: String,
    pub identity: String,
    pub request_id: String,
    pub attempt: i32,
    pub initiator: enums_pb::ContinueAsNewInitiator,
    pub continued_execution_run_id: String,
    pub continued_failure: Option<failure_pb::Failure>,
    pub last_completion_result: Option<common_pb::Payloads>,
    pub backoff_ms: Millis,
    /// Inherited deadline of the chain; 0 computes it from `execution_timeout_ms`.
    pub execution_expiration_ms: Millis,
    pub priority: Option<common_pb::Priority>,
    pub signal: Option<SignalInput>,
    pub parent: Option<ParentInfo>,
    /// The starter asked for the first workflow task in its response (eager start).
    pub eager: bool,
    /// The starter's summary and details, on the Started event and in the run.
    pub user_metadata: Option<crate::pb::sdk::v1::UserMetadata>,
}

/// Builds a new run from a validated start request.
pub fn start_run(ctx: &mut Ctx<'_>, options: StartOptions) -> RunState {
    let StartOptions { run_id, request: req, signal, parent } = options;
    let spec = RunSpec {
        namespace: req.namespace,
        workflow_id: req.workflow_id,
        run_id,
        workflow_type: req.workflow_type.map(|t| t.name).unwrap_or_default(),
        task_queue: req.task_queue.map(|q| q.name).unwrap_or_default(),
        input: req.input,
        header: req.header,
        memo: req.memo,
        search_attributes: req.search_attributes,
        execution_timeout_ms: time::duration_ms(&req.workflow_execution_timeout),
        run_timeout_ms: time::duration_ms(&req.workflow_run_timeout),
        task_timeout_ms: time::duration_ms(&req.workflow_task_timeout),
        retry_policy: req.retry_policy,
        cron_schedule: req.cron_schedule,
        identity: req.identity,
        request_id: req.request_id,
        attempt: 1,
        backoff_ms: time::duration_ms(&req.workflow_start_delay),
        priority: req.priority,
        signal,
        parent,
        eager: req.request_eager_execution,
        user_metadata: req.user_metadata,
        last_completion_result: req.last_completion_result,
        continued_failure: req.continued_failure,
        ..Default::default()
    };
    create_run(ctx, spec)
}

pub(super) fn create_run(ctx: &mut Ctx<'_>, mut spec: RunSpec) -> RunState {
    if !spec.cron_schedule.is_empty() && spec.backoff_ms == 0 && spec.continued_execution_run_id.is_empty() {
        // The first run of a cron workflow waits for the schedule's first time.
        if let Ok(next) = crate::cron::next_after(&spec.cron_schedule, ctx.now) {
            spec.backoff_ms = next - ctx.now;
        }
    }
    let execution_timeout_ms = spec.execution_timeout_ms;
    let mut run_timeout_ms = spec.run_timeout_ms;
    if run_timeout_ms == 0 || (execution_timeout_ms > 0 && run_timeout_ms > execution_timeout_ms) {
        run_timeout_ms = execution_timeout_ms;
    }
    let mut task_timeout_ms = spec.task_timeout_ms;
    if task_timeout_ms == 0 {
        task_timeout_ms = ctx.limits.default_workflow_task_timeout_ms;
    }
    task_timeout_ms = task_timeout_ms.min(ctx.limits.max_workflow_task_timeout_ms);
    if run_timeout_ms > 0 {
        task_timeout_ms = task_timeout_ms.min(run_timeout_ms);
    }
    let expiration_ms = match (spec.execution_expiration_ms, execution_timeout_ms) {
        (inherited, _) if inherited > 0 => inherited,
        (_, timeout) if timeout > 0 => ctx.now + timeout,
        _ => 0,
    };
    let first_execution_run_id =
        if spec.first_execution_run_id.is_empty() { spec.run_id.clone() } else { spec.first_execution_run_id.clone() };
    let execution_time_ms = ctx.now + spec.backoff_ms.max(0);
    let mut st = RunState {
        namespace: spec.namespace.clone(),
        workflow_id: spec.workflow_id.clone(),
        run_id: spec.run_id.clone(),
        first_execution_run_id: first_execution_run_id.clone(),
        workflow_type: spec.workflow_type.clone(),
        task_queue: spec.task_queue.clone(),
        status: enums_pb::WorkflowExecutionStatus::Running as i32,
        start_time_ms: ctx.now,
        execution_time_ms,
        next_event_id: 1,
        workflow_task_timeout_ms: task_timeout_ms,
        start_request_id: spec.request_id.clone(),
        run_timeout_ms,
        execution_timeout_ms,
        memo: spec.memo.clone(),
        search_attributes: super::without_nil_search_attributes(spec.search_attributes.clone()),
        next_workflow_task_attempt: 1,
        retry_policy: spec.retry_policy.clone(),
        attempt: spec.attempt.max(1),
        execution_expiration_ms: expiration_ms,
        cron_schedule: spec.cron_schedule.clone(),
        header: spec.header.clone(),
        priority: spec.priority.clone(),
        input: spec.input.clone(),
        parent: spec.parent.clone(),
        warned_limits: {
            let mut warned = 0;
            if spec.memo.as_ref().map_or(0, prost::Message::encoded_len) > ctx.limits.memo_size_warn {
                warned |= super::limits::WARN_MEMO_SIZE;
            }
            if spec.input.as_ref().map_or(0, prost::Message::encoded_len) > ctx.limits.blob_size_warn {
                warned |= super::limits::WARN_BLOB_SIZE;
            }
            warned
        },
        root: Some(spec.parent.as_ref().and_then(|p| p.root.clone()).unwrap_or_else(|| common_pb::WorkflowExecution {
            workflow_id: spec.workflow_id.clone(),
            run_id: first_execution_run_id.clone(),
        })),
        ..Default::default()
    };
    let attempt = st.attempt;
    let root = st.root.clone();
    // As in Temporal: eager start only when it is on and the first task is due at once.
    let eager = spec.eager && ctx.limits.enable_eager_workflow_start && spec.backoff_ms <= 0;
    let initiator = match (spec.continued_execution_run_id.is_empty(), spec.cron_schedule.is_empty()) {
        (false, _) => spec.initiator,
        // Temporal marks even the first run of a cron workflow as started by the schedule.
        (true, false) => enums_pb::ContinueAsNewInitiator::CronSchedule,
        (true, true) => enums_pb::ContinueAsNewInitiator::Unspecified,
    };
    ctx.append(
        &mut st,
        enums_pb::EventType::WorkflowExecutionStarted,
        Attributes::WorkflowExecutionStartedEventAttributes(history_pb::WorkflowExecutionStartedEventAttributes {
            workflow_type: Some(common_pb::WorkflowType { name: spec.workflow_type }),
            task_queue: Some(normal_task_queue(&spec.task_queue)),
            input: spec.input,
            workflow_execution_timeout: (execution_timeout_ms > 0).then(|| time::duration(execution_timeout_ms)),
            workflow_run_timeout: (run_timeout_ms > 0).then(|| time::duration(run_timeout_ms)),
            workflow_task_timeout: time::opt_duration(task_timeout_ms),
            continued_execution_run_id: spec.continued_execution_run_id,
            initiator: initiator as i32,
            continued_failure: spec.continued_failure,
            last_completion_result: spec.last_completion_result,
            original_execution_run_id: spec.run_id,
            identity: spec.identity,
            first_execution_run_id,
            retry_policy: spec.retry_policy,
            attempt,
            workflow_execution_expiration_time: (expiration_ms > 0).then(|| time::timestamp(expiration_ms)),
            cron_schedule: spec.cron_schedule,
            first_workflow_task_backoff: Some(time::duration(spec.backoff_ms.max(0))),
            memo: spec.memo,
            search_attributes: super::without_nil_search_attributes(spec.search_attributes),
            header: spec.header,
            workflow_id: spec.workflow_id,
            priority: Some(spec.priority.unwrap_or_default()),
            parent_workflow_namespace: spec.parent.as_ref().map(|p| p.namespace.clone()).unwrap_or_default(),
            parent_workflow_execution: spec
                .parent
                .as_ref()
                .map(|p| common_pb::WorkflowExecution { workflow_id: p.workflow_id.clone(), run_id: p.run_id.clone() }),
            parent_initiated_event_id: spec.parent.as_ref().map_or(0, |p| p.initiated_event_id),
            // Temporal names the root only in children's start events.
            root_workflow_execution: if spec.parent.is_some() { root } else { None },
            eager_execution_accepted: eager,
            ..Default::default()
        }),
    );
    if spec.user_metadata.is_some() {
        st.user_metadata = spec.user_metadata.clone();
        ctx.annotate_last_event(&mut st, spec.user_metadata, Vec::new());
    }
    if let Some(signal) = spec.signal {
        remember_request_id(&mut st, &signal.request_id);
        st.signal_count += 1;
        let (event_type, attributes) = signaled_event(&signal);
        ctx.append(&mut st, event_type, attributes);
    }
    if spec.backoff_ms > 0 {
        ctx.arm(TimerKind::WorkflowBackoff, execution_time_ms, 0, 0);
    } else {
        schedule_workflow_task(ctx, &mut st);
    }
    let run_deadline = if run_timeout_ms > 0 { execution_time_ms + run_timeout_ms } else { 0 };
    let deadline = match (run_deadline, expiration_ms) {
        (0, e) => e,
        (r, 0) => r,
        (r, e) => r.min(e),
    };
    if deadline > 0 {
        ctx.arm(TimerKind::WorkflowTimeout, deadline, 0, 0);
    }
    st
}
