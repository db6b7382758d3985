//! Workflow updates: UpdateWorkflowExecution (admit, then wait for the requested stage),
//! PollWorkflowExecutionUpdate, and update-with-start through ExecuteMultiOperation.

use std::time::Duration;

use prost::Message;
use tonic::Code;
use uhrwerk_core::kernel;
use uhrwerk_core::state::{RunState, UpdateState};
use uhrwerk_proto::google::rpc as rpc_pb;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::errordetails::v1 as errordetails_pb;
use uhrwerk_proto::temporal::api::update::v1 as update_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::{Frontend, validate};
use crate::error::{Error, Result};

use enums_pb::UpdateWorkflowExecutionLifecycleStage as Stage;

fn stage_of(state: i32) -> Stage {
    match UpdateState::try_from(state) {
        Ok(UpdateState::Accepted) => Stage::Accepted,
        Ok(UpdateState::Completed) => Stage::Completed,
        _ => Stage::Admitted,
    }
}

impl Frontend {
    /// Waits until update `update_id` of the run reaches `wanted`, the run closes, or `wait` ends.
    async fn await_update(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        update_id: &str,
        wanted: Stage,
        wait: Duration,
    ) -> Result<pb::UpdateWorkflowExecutionResponse> {
        let deadline = crate::clock::deadline(wait);
        loop {
            let mut watcher = self.engine.watch_history(run_id);
            let st: RunState = self.engine.run_state(namespace, workflow_id, run_id).await?;
            let Some(update) = st.updates.get(update_id) else {
                return Err(Error::NotFound(format!("update {update_id} not found")));
            };
            let stage = stage_of(update.state);
            let update_ref = update_pb::UpdateRef {
                workflow_execution: Some(common_pb::WorkflowExecution {
                    workflow_id: workflow_id.to_string(),
                    run_id: st.run_id.clone(),
                }),
                update_id: update_id.to_string(),
            };
            if stage >= wanted || stage == Stage::Completed {
                return Ok(pb::UpdateWorkflowExecutionResponse {
                    update_ref: Some(update_ref),
                    outcome: if stage == Stage::Completed { update.outcome.clone() } else { None },
                    stage: stage as i32,
                    ..Default::default()
                });
            }
            if !st.is_open() {
                return Err(if st.status == enums_pb::WorkflowExecutionStatus::ContinuedAsNew as i32 {
                    // The client retries; the update then goes to the new run.
                    Error::Unavailable("workflow continued as new before the update finished; retry".into())
                } else {
                    Error::NotFound("workflow execution already completed".into())
                });
            }
            let mut shutdown = self.shutdown.clone();
            let woke = tokio::select! {
                changed = watcher.changed() => changed.is_ok(),
                _ = crate::clock::sleep_until(deadline) => false,
                _ = shutdown.wait_for(|stop| *stop) => false,
            };
            drop(watcher);
            self.engine.unwatch_history(run_id);
            if !woke {
                return Ok(pb::UpdateWorkflowExecutionResponse {
                    update_ref: Some(update_ref),
                    outcome: None,
                    stage: stage as i32,
                    ..Default::default()
                });
            }
        }
    }

    pub(super) async fn update(
        &self,
        req: pb::UpdateWorkflowExecutionRequest,
        wait: Duration,
    ) -> Result<pb::UpdateWorkflowExecutionResponse> {
        self.namespaces.check(&req.namespace)?;
        let execution = req.workflow_execution.unwrap_or_default();
        validate::workflow_id(self.engine.limits(), &execution.workflow_id)?;
        let request = req.request.unwrap_or_default();
        let update_id = request.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default();
        if update_id.is_empty() {
            return Err(Error::InvalidArgument("Update ID is not set on request.".into()));
        }
        if request.input.as_ref().is_none_or(|i| i.name.is_empty()) {
            return Err(Error::InvalidArgument("Update name is not set on request.".into()));
        }
        validate::blob(self.engine.limits(), request.input.as_ref().and_then(|i| i.args.as_ref()))?;
        let wanted =
            Stage::try_from(req.wait_policy.as_ref().map_or(0, |w| w.lifecycle_stage)).unwrap_or(Stage::Unspecified);
        let wanted = if wanted == Stage::Unspecified { Stage::Admitted } else { wanted };
        let first_run = req.first_execution_run_id;
        let run_id = self
            .engine
            .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
                if !first_run.is_empty() && st.first_execution_run_id != first_run {
                    return Err(kernel::Error::NotFound("workflow execution not found".into()));
                }
                kernel::admit_update(ctx, st, request)?;
                Ok(st.run_id.clone())
            })
            .await?;
        self.await_update(&req.namespace, &execution.workflow_id, &run_id, &update_id, wanted, wait).await
    }

    pub(super) async fn poll_update(
        &self,
        req: pb::PollWorkflowExecutionUpdateRequest,
        wait: Duration,
    ) -> Result<pb::PollWorkflowExecutionUpdateResponse> {
        self.namespaces.check(&req.namespace)?;
        let update_ref = req.update_ref.unwrap_or_default();
        let execution = update_ref.workflow_execution.unwrap_or_default();
        validate::workflow_id(self.engine.limits(), &execution.workflow_id)?;
        let st = self.engine.run_state(&req.namespace, &execution.workflow_id, &execution.run_id).await?;
        let wanted =
            Stage::try_from(req.wait_policy.as_ref().map_or(0, |w| w.lifecycle_stage)).unwrap_or(Stage::Unspecified);
        // Without a wait policy the poll does not block: it reports the stage reached.
        let wanted = if wanted == Stage::Unspecified { Stage::Admitted } else { wanted };
        let r = self
            .await_update(&req.namespace, &execution.workflow_id, &st.run_id, &update_ref.update_id, wanted, wait)
            .await?;
        Ok(pb::PollWorkflowExecutionUpdateResponse { outcome: r.outcome, stage: r.stage, update_ref: r.update_ref })
    }

    /// Update-with-start: the start (usually with USE_EXISTING), then the update on that run.
    pub(super) async fn multi_operation(
        &self,
        req: pb::ExecuteMultiOperationRequest,
        wait: Duration,
    ) -> Result<pb::ExecuteMultiOperationResponse> {
        use pb::execute_multi_operation_request::operation::Operation as Op;
        use pb::execute_multi_operation_response::{Response as OpResponse, response::Response as OpResult};
        let mut ops = req.operations.into_iter().map(|o| o.operation);
        let (Some(Some(Op::StartWorkflow(start))), Some(Some(Op::UpdateWorkflow(mut update))), None) =
            (ops.next(), ops.next(), ops.next())
        else {
            return Err(Error::InvalidArgument("Operations have to be exactly [Start, Update].".into()));
        };
        let update_request = update.request.as_ref();
        if update_request.and_then(|r| r.meta.as_ref()).is_none_or(|m| m.update_id.is_empty()) {
            return Err(multi_failure(Error::InvalidArgument("Update ID is not set on request.".into()), 1));
        }
        if update_request.and_then(|r| r.input.as_ref()).is_none_or(|i| i.name.is_empty()) {
            return Err(multi_failure(Error::InvalidArgument("Update name is not set on request.".into()), 1));
        }
        let started = match self.start_for_update(start.clone(), update.request.clone().unwrap_or_default()).await {
            Ok(r) => r,
            Err(e) => return Err(multi_failure(e, 0)),
        };
        let execution = update.workflow_execution.get_or_insert_with(Default::default);
        execution.workflow_id = start.workflow_id.clone();
        execution.run_id = started.run_id.clone();
        let updated = match self.update(update, wait).await {
            Ok(r) => r,
            Err(e) => return Err(multi_failure(e, 1)),
        };
        Ok(pb::ExecuteMultiOperationResponse {
            responses: vec![
                OpResponse { response: Some(OpResult::StartWorkflow(started)) },
                OpResponse { response: Some(OpResult::UpdateWorkflow(updated)) },
            ],
        })
    }
}

/// Wraps the error of operation `failed` as Temporal's MultiOperationExecutionFailure.
fn multi_failure(error: Error, failed: usize) -> Error {
    let status = tonic::Status::from(error);
    let inner = rpc_pb::Status::decode(status.details()).unwrap_or_default();
    let aborted = errordetails_pb::multi_operation_execution_failure::OperationStatus {
        code: Code::Aborted as i32,
        message: "Operation was aborted.".into(),
        details: vec![uhrwerk_proto::wkt::Any {
            type_url: "type.googleapis.com/temporal.api.failure.v1.MultiOperationExecutionAborted".into(),
            value: uhrwerk_proto::temporal::api::failure::v1::MultiOperationExecutionAborted::default().encode_to_vec(),
        }],
    };
    let own = errordetails_pb::multi_operation_execution_failure::OperationStatus {
        code: status.code() as i32,
        message: status.message().to_string(),
        details: inner.details,
    };
    let statuses = if failed == 0 { vec![own, aborted] } else { vec![aborted, own] };
    Error::MultiOperation {
        code: status.code() as i32,
        message: format!("MultiOperation could not be executed: {}", status.message()),
        statuses,
    }
}
