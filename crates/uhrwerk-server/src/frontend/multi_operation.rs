//! ExecuteMultiOperation, which Temporal offers for update-with-start: the start (usually with
//! USE_EXISTING) and then the update on that run, each through its own engine entry point, with
//! each operation's error reported as Temporal's MultiOperationExecutionFailure.

use std::time::Duration;

use prost::Message;
use tonic::Code;
use uhrwerk_proto::google::rpc as rpc_pb;
use uhrwerk_proto::temporal::api::errordetails::v1 as errordetails_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::Frontend;
use crate::engine::api::{start_workflow_execution, update_workflow_execution};
use crate::error::{Error, Result};

impl Frontend {
    pub(super) async fn multi_operation(
        &self,
        req: pb::ExecuteMultiOperationRequest,
        wait: Duration,
    ) -> Result<pb::ExecuteMultiOperationResponse> {
        use pb::execute_multi_operation_request::operation::Operation as Op;
        use pb::execute_multi_operation_response::{Response as OpResponse, response::Response as OpResult};
        let mut ops = req.operations.into_iter().map(|o| o.operation);
        let (Some(Some(Op::StartWorkflow(mut start))), Some(Some(Op::UpdateWorkflow(mut update))), None) =
            (ops.next(), ops.next(), ops.next())
        else {
            return Err(Error::InvalidArgument("Operations have to be exactly [Start, Update].".into()));
        };
        if start.request_eager_execution {
            return Err(multi_failure(Error::InvalidArgument("RequestEagerExecution is not supported.".into()), 0));
        }
        update.workflow_execution.get_or_insert_with(Default::default).workflow_id = start.workflow_id.clone();
        self.check_update(&update).map_err(|e| multi_failure(e, 1))?;
        self.check_start(&mut start).map_err(|e| multi_failure(e, 0))?;
        if let Some(response) = self.attach_to_existing_update(&start, &mut update, wait).await? {
            return Ok(response);
        }
        let update_request = update.request.clone().unwrap_or_default();
        let started = start_workflow_execution::with_update(&self.engine, start, update_request)
            .await
            .map_err(|e| multi_failure(e, 0))?;
        update.workflow_execution.get_or_insert_with(Default::default).run_id = started.run_id.clone();
        let updated =
            update_workflow_execution::invoke(&self.engine, update, wait).await.map_err(|e| multi_failure(e, 1))?;
        Ok(pb::ExecuteMultiOperationResponse {
            responses: vec![
                OpResponse { response: Some(OpResult::StartWorkflow(started)) },
                OpResponse { response: Some(OpResult::UpdateWorkflow(updated)) },
            ],
        })
    }
}

impl Frontend {
    /// As Temporal, before the start's reuse and conflict policies: an update with the request's
    /// id that already completed in the workflow's latest run answers with its outcome, and one
    /// still in flight in a running latest run is attached to; neither starts anything.
    async fn attach_to_existing_update(
        &self,
        start: &pb::StartWorkflowExecutionRequest,
        update: &mut pb::UpdateWorkflowExecutionRequest,
        wait: Duration,
    ) -> Result<Option<pb::ExecuteMultiOperationResponse>> {
        use pb::execute_multi_operation_response::{Response as OpResponse, response::Response as OpResult};
        use uhrwerk_proto::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
        let update_id = update.request.as_ref().and_then(|r| r.meta.as_ref()).map(|m| m.update_id.clone());
        let Some(update_id) = update_id.filter(|id| !id.is_empty()) else { return Ok(None) };
        let latest = match self.engine.run_state(&start.namespace, &start.workflow_id, "").await {
            Ok(run) => run,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(multi_failure(e, 0)),
        };
        let Some(existing) = latest.updates.get(&update_id) else { return Ok(None) };
        let started = pb::StartWorkflowExecutionResponse {
            run_id: latest.run_id.clone(),
            started: false,
            status: latest.status,
            ..Default::default()
        };
        let updated = if let Some(outcome) = existing.outcome.clone() {
            pb::UpdateWorkflowExecutionResponse {
                update_ref: Some(uhrwerk_proto::temporal::api::update::v1::UpdateRef {
                    workflow_execution: Some(uhrwerk_proto::temporal::api::common::v1::WorkflowExecution {
                        workflow_id: start.workflow_id.clone(),
                        run_id: latest.run_id.clone(),
                    }),
                    update_id,
                }),
                outcome: Some(outcome),
                stage: Stage::Completed as i32,
                ..Default::default()
            }
        } else if latest.is_open() {
            update.workflow_execution.get_or_insert_with(Default::default).run_id = latest.run_id.clone();
            update_workflow_execution::invoke(&self.engine, update.clone(), wait)
                .await
                .map_err(|e| multi_failure(e, 1))?
        } else {
            return Ok(None);
        };
        Ok(Some(pb::ExecuteMultiOperationResponse {
            responses: vec![
                OpResponse { response: Some(OpResult::StartWorkflow(started)) },
                OpResponse { response: Some(OpResult::UpdateWorkflow(updated)) },
            ],
        }))
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
