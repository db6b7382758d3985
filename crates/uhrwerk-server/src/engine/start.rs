//! Starting runs: workflow id reuse and conflict policies, request-id idempotency.

use std::sync::Arc;

use uhrwerk_core::kernel::{self, Ctx, StartOptions};
use uhrwerk_core::state::{ParentInfo, RunState};
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::history::v1::history_event::Attributes;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;

use super::{Engine, Pending};
use crate::error::{Error, Result};

use enums_pb::{
    WorkflowExecutionStatus as Status, WorkflowIdConflictPolicy as Conflict, WorkflowIdReusePolicy as Reuse,
};

#[derive(Debug, Clone, PartialEq)]
pub struct StartOutcome {
    pub run_id: String,
    pub started: bool,
    /// `WorkflowExecutionStatus` of the run named.
    pub status: i32,
    pub first_execution_run_id: String,
    /// The first workflow task, started for the starter (eager start), with the history it gets.
    pub eager_task: Option<EagerTask>,
}

/// A run's first workflow task, started for the worker that started the run.
#[derive(Debug, Clone, PartialEq)]
pub struct EagerTask {
    pub started: kernel::WorkflowTaskStarted,
    pub events: Vec<uhrwerk_proto::temporal::api::history::v1::HistoryEvent>,
    pub workflow_type: String,
    pub task_queue: String,
}

fn already_started(run: &RunState, message: String) -> Error {
    Error::AlreadyStarted { message, start_request_id: run.start_request_id.clone(), run_id: run.run_id.clone() }
}

/// What to do about the workflow id's latest run.
enum Decision {
    Start,
    TerminateThenStart,
    Existing { started: bool },
}

fn decide(
    req: &workflowservice_pb::StartWorkflowExecutionRequest,
    current: Option<&RunState>,
    default_conflict: Conflict,
) -> Result<Decision> {
    let Some(run) = current else { return Ok(Decision::Start) };
    if !req.request_id.is_empty() && run.start_request_id == req.request_id {
        // A retried request: answer as the first attempt was answered.
        return Ok(Decision::Existing { started: true });
    }
    let reuse = Reuse::try_from(req.workflow_id_reuse_policy).unwrap_or(Reuse::Unspecified);
    if run.is_open() {
        let mut conflict = Conflict::try_from(req.workflow_id_conflict_policy).unwrap_or(Conflict::Unspecified);
        if conflict == Conflict::Unspecified {
            conflict = default_conflict;
        }
        if reuse == Reuse::TerminateIfRunning {
            conflict = Conflict::TerminateExisting;
        }
        return match conflict {
            Conflict::UseExisting => Ok(Decision::Existing { started: false }),
            Conflict::TerminateExisting => Ok(Decision::TerminateThenStart),
            Conflict::Fail | Conflict::Unspecified => Err(already_started(
                run,
                format!(
                    "Workflow execution is already running. WorkflowId: {}, RunId: {}.",
                    run.workflow_id, run.run_id
                ),
            )),
        };
    }
    let status = Status::try_from(run.status).unwrap_or(Status::Unspecified);
    match reuse {
        Reuse::AllowDuplicate | Reuse::Unspecified | Reuse::TerminateIfRunning => Ok(Decision::Start),
        Reuse::AllowDuplicateFailedOnly => {
            if status == Status::Completed {
                Err(already_started(
                    run,
                    format!(
                        "Workflow execution already finished successfully. WorkflowId: {}, RunId: {}. Workflow Id reuse policy: allow duplicate workflow Id if last run failed.",
                        run.workflow_id, run.run_id
                    ),
                ))
            } else {
                Ok(Decision::Start)
            }
        }
        Reuse::RejectDuplicate => Err(already_started(
            run,
            format!(
                "Workflow execution already finished. WorkflowId: {}, RunId: {}. Workflow Id reuse policy: reject duplicate workflow Id.",
                run.workflow_id, run.run_id
            ),
        )),
    }
}

impl Engine {
    /// Starts a run for a validated request, honouring reuse and conflict policies.
    pub async fn start_workflow(
        self: &Arc<Self>,
        req: workflowservice_pb::StartWorkflowExecutionRequest,
    ) -> Result<StartOutcome> {
        self.start_or_signal(req, None, None, None).await
    }

    /// Update-with-start: a new run is created with the update already admitted, so its first
    /// workflow task carries it; an existing run is left to the caller's normal update.
    pub async fn start_with_update(
        self: &Arc<Self>,
        req: workflowservice_pb::StartWorkflowExecutionRequest,
        update: uhrwerk_proto::temporal::api::update::v1::Request,
    ) -> Result<StartOutcome> {
        self.start_or_signal(req, None, None, Some(update)).await
    }

    /// Starts the child run of `parent`.
    pub(super) async fn start_child_run(
        self: &Arc<Self>,
        req: workflowservice_pb::StartWorkflowExecutionRequest,
        parent: ParentInfo,
    ) -> Result<StartOutcome> {
        self.start_or_signal(req, None, Some(parent), None).await
    }

    /// Signal-with-start: signals the open run of the workflow id, or starts one with the signal
    /// (an unspecified conflict policy means USE_EXISTING here).
    pub async fn signal_with_start(
        self: &Arc<Self>,
        req: workflowservice_pb::StartWorkflowExecutionRequest,
        signal: kernel::SignalInput,
    ) -> Result<StartOutcome> {
        self.start_or_signal(req, Some(signal), None, None).await
    }

    async fn start_or_signal(
        self: &Arc<Self>,
        req: workflowservice_pb::StartWorkflowExecutionRequest,
        signal: Option<kernel::SignalInput>,
        parent: Option<ParentInfo>,
        update: Option<uhrwerk_proto::temporal::api::update::v1::Request>,
    ) -> Result<StartOutcome> {
        let this = self.clone();
        tokio::spawn(async move {
            let (slot, mut guard) = this.lock_slot(&req.namespace, &req.workflow_id).await?;
            let default_conflict = if signal.is_some() { Conflict::UseExisting } else { Conflict::Fail };
            // A child start carried out again after a crash finds the chain it started before,
            // even when that chain has moved on to a later run (continue-as-new, retry).
            let started_by_this_initiation = parent.as_ref().is_some_and(|parent| {
                guard
                    .run
                    .as_ref()
                    .and_then(|run| run.parent.as_ref())
                    .is_some_and(|p| p.run_id == parent.run_id && p.initiated_event_id == parent.initiated_event_id)
            });
            let decision = if started_by_this_initiation {
                Decision::Existing { started: true }
            } else {
                decide(&req, guard.run.as_ref(), default_conflict)?
            };
            match decision {
                Decision::Existing { started } => {
                    let mut current = guard.run.clone().expect("decided on an existing run");
                    let run_id = current.run_id.clone();
                    let (status, first_execution_run_id) = (current.status, current.first_execution_run_id.clone());
                    // A retried eager start gets the first task again while it is still the
                    // started one, as in Temporal.
                    let eager_again = started
                        && req.request_eager_execution
                        && current.start_request_id == req.request_id
                        && current.workflow_task.as_ref().is_some_and(|wt| wt.started_event_id == 3 && wt.attempt == 1);
                    let eager_task = match eager_again.then(|| kernel::started_task(&current)).flatten() {
                        Some(task) => {
                            let events = this.executions().events(&run_id, 1, 3);
                            Some(EagerTask {
                                started: task,
                                events: events.await?,
                                workflow_type: current.workflow_type.clone(),
                                task_queue: current.task_queue.clone(),
                            })
                        }
                        None => None,
                    };
                    if let (Some(signal), true) = (signal, current.is_open()) {
                        let mut ctx = Ctx::new(this.clock.now_ms(), &this.limits);
                        kernel::signal_run(&mut ctx, &mut current, signal)?;
                        if ctx.has_changes() {
                            let pending = vec![Pending::from_ctx(current, &mut ctx, false)];
                            drop(ctx);
                            this.commit(&slot, &mut guard, pending, true).await?;
                        }
                    }
                    return Ok(StartOutcome { run_id, started, status, first_execution_run_id, eager_task });
                }
                Decision::TerminateThenStart => {
                    let mut current = guard.run.clone().expect("decided on an existing run");
                    let mut ctx = Ctx::new(this.clock.now_ms(), &this.limits);
                    kernel::terminate_run(
                        &mut ctx,
                        &mut current,
                        "TerminateIfRunning WorkflowIdReusePolicy",
                        None,
                        &req.identity,
                    )?;
                    let pending = vec![Pending::from_ctx(current, &mut ctx, false)];
                    drop(ctx);
                    this.commit(&slot, &mut guard, pending, false).await?;
                }
                Decision::Start => {}
            }
            let run_id = uuid::Uuid::now_v7().to_string();
            let (identity, request_id) = (req.identity.clone(), req.request_id.clone());
            let mut ctx = Ctx::new(this.clock.now_ms(), &this.limits);
            let mut st =
                kernel::start_run(&mut ctx, StartOptions { run_id: run_id.clone(), request: req, signal, parent });
            let eager_accepted = ctx.events.first().is_some_and(|e| {
                matches!(&e.attributes, Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) if a.eager_execution_accepted)
            });
            let mut eager_task = None;
            if let Some(update) = update {
                kernel::admit_update(&mut ctx, &mut st, update)?;
            } else if eager_accepted
                && let Some(started) = kernel::start_workflow_task_eagerly(&mut ctx, &mut st, &identity, &request_id)
            {
                eager_task = Some(EagerTask {
                    started,
                    events: ctx.events.clone(),
                    workflow_type: st.workflow_type.clone(),
                    task_queue: st.task_queue.clone(),
                });
            }
            let pending = vec![Pending::from_ctx(st, &mut ctx, true)];
            drop(ctx);
            this.commit(&slot, &mut guard, pending, true).await?;
            Ok(StartOutcome {
                first_execution_run_id: run_id.clone(),
                run_id,
                started: true,
                status: enums_pb::WorkflowExecutionStatus::Running as i32,
                eager_task,
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("start task failed: {e}")))?
    }
}
