//! StartWorkflowExecution: a new run under the workflow id's reuse and conflict policies (see
//! `engine::start`), answered with the run and, for an eager start, its first workflow task.

use std::sync::Arc;

use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::update::v1 as update_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::tasks::workflow_task_response;
use crate::engine::{Engine, StartOutcome};
use crate::error::Result;

/// `req` has been validated and completed with defaults by the frontend.
pub async fn invoke(
    engine: &Arc<Engine>,
    req: pb::StartWorkflowExecutionRequest,
) -> Result<pb::StartWorkflowExecutionResponse> {
    let workflow_id = req.workflow_id.clone();
    let outcome = engine.start_workflow(req).await?;
    Ok(response(workflow_id, outcome))
}

/// The start half of update-with-start: a new run gets the update admitted with it.
pub async fn with_update(
    engine: &Arc<Engine>,
    req: pb::StartWorkflowExecutionRequest,
    update: update_pb::Request,
) -> Result<pb::StartWorkflowExecutionResponse> {
    let workflow_id = req.workflow_id.clone();
    let outcome = engine.start_with_update(req, update).await?;
    Ok(response(workflow_id, outcome))
}

fn response(workflow_id: String, outcome: StartOutcome) -> pb::StartWorkflowExecutionResponse {
    let eager_workflow_task = outcome.eager_task.map(|eager| {
        let execution = common_pb::WorkflowExecution { workflow_id, run_id: outcome.run_id.clone() };
        workflow_task_response(execution, eager.workflow_type, &eager.task_queue, eager.started, eager.events)
    });
    pb::StartWorkflowExecutionResponse {
        run_id: outcome.run_id,
        started: outcome.started,
        status: outcome.status,
        first_execution_run_id: outcome.first_execution_run_id,
        eager_workflow_task,
        ..Default::default()
    }
}
