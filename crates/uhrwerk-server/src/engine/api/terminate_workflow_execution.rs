//! TerminateWorkflowExecution: the run closes at once, even with a workflow task in flight.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;
use crate::error::Result;

pub async fn invoke(
    engine: &Arc<Engine>,
    req: pb::TerminateWorkflowExecutionRequest,
) -> Result<pb::TerminateWorkflowExecutionResponse> {
    let execution = req.workflow_execution.unwrap_or_default();
    let first_run = req.first_execution_run_id;
    let (reason, details, identity) = (req.reason, req.details, req.identity);
    engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
            if !first_run.is_empty() && st.first_execution_run_id != first_run {
                return Err(kernel::Error::NotFound("workflow execution not found".into()));
            }
            kernel::terminate_run(ctx, st, &reason, details, &identity)
        })
        .await?;
    Ok(pb::TerminateWorkflowExecutionResponse::default())
}
