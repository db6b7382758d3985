//! DeleteWorkflowExecution: a running run is terminated first, then the run goes with
//! everything it owns (see `engine::delete`).

use std::sync::Arc;

use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;

use crate::engine::Engine;
use crate::error::Result;

pub async fn invoke(
    engine: &Arc<Engine>,
    req: workflowservice_pb::DeleteWorkflowExecutionRequest,
) -> Result<workflowservice_pb::DeleteWorkflowExecutionResponse> {
    let execution = req.workflow_execution.unwrap_or_default();
    engine.delete_run(&req.namespace, &execution.workflow_id, &execution.run_id, "").await?;
    Ok(workflowservice_pb::DeleteWorkflowExecutionResponse::default())
}
