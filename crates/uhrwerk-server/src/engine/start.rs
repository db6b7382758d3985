//! Starting runs: workflow id reuse and conflict policies, request-id idempotency.

use std::sync::Arc;

use uhrwerk_core::kernel::{self, Ctx, StartOptions};
use uhrwerk_core::state::RunState;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;

use super::Engine;
use crate::error::{Error, Result};

use enums_pb::{WorkflowExecutionStatus as Status, WorkflowIdConflictPolicy as Conflict, WorkflowIdReusePolicy as Reuse};

#[derive(Debug, Clone, PartialEq)]
pub struct StartOutcome {
    pub run_id: String,
    pub started: bool,
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

fn decide(req: &workflowservice_pb::StartWorkflowExecutionRequest, current: Option<&RunState>) -> Result<Decision> {
    let Some(run) = current else { return Ok(Decision::Start) };
    if !req.request_id.is_empty() && run.start_request_id == req.request_id {
        // A retried request: answer as the first attempt was answered.
        return Ok(Decision::Existing { started: true });
    }
    let reuse = Reuse::try_from(req.workflow_id_reuse_policy).unwrap_or(Reuse::Unspecified);
    if run.is_open() {
        let mut conflict = Conflict::try_from(req.workflow_id_conflict_policy).unwrap_or(Conflict::Unspecified);
        if reuse == Reuse::TerminateIfRunning {
            conflict = Conflict::TerminateExisting;
        }
        return match conflict {
            Conflict::UseExisting => Ok(Decision::Existing { started: false }),
            Conflict::TerminateExisting => Ok(Decision::TerminateThenStart),
            Conflict::Fail | Conflict::Unspecified => Err(already_started(
                run,
                format!("Workflow execution is already running. WorkflowId: {}, RunId: {}.", run.workflow_id, run.run_id),
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
    pub async fn start_workflow(self: &Arc<Self>, req: workflowservice_pb::StartWorkflowExecutionRequest) -> Result<StartOutcome> {
        let this = self.clone();
        tokio::spawn(async move {
            let (slot, mut guard) = this.lock_slot(&req.namespace, &req.workflow_id).await?;
            match decide(&req, guard.run.as_ref())? {
                Decision::Existing { started } => {
                    let run_id = guard.run.as_ref().map(|r| r.run_id.clone()).unwrap_or_default();
                    return Ok(StartOutcome { run_id, started });
                }
                Decision::TerminateThenStart => {
                    let mut current = guard.run.clone().expect("decided on an existing run");
                    let mut ctx = Ctx::new(this.clock.now_ms(), &this.limits);
                    kernel::terminate_run(&mut ctx, &mut current, "TerminateIfRunning WorkflowIdReusePolicy", None, &req.identity)?;
                    let (events, effects) = (std::mem::take(&mut ctx.events), std::mem::take(&mut ctx.effects));
                    drop(ctx);
                    this.commit_without_evict(&slot, &mut guard, current, events, effects, false).await?;
                }
                Decision::Start => {}
            }
            let run_id = uuid::Uuid::now_v7().to_string();
            let mut ctx = Ctx::new(this.clock.now_ms(), &this.limits);
            let st = kernel::start_run(&mut ctx, StartOptions { run_id: run_id.clone(), request: req });
            let (events, effects) = (std::mem::take(&mut ctx.events), std::mem::take(&mut ctx.effects));
            drop(ctx);
            this.commit(&slot, &mut guard, st, events, effects, true).await?;
            Ok(StartOutcome { run_id, started: true })
        })
        .await
        .map_err(|e| Error::Internal(format!("start task failed: {e}")))?
    }
}
