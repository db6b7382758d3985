//! SignalWorkflowExecution: the signal is written to the run's history (buffered while a
//! workflow task is started) and a workflow task is scheduled; retried calls dedupe by request id.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;
use crate::error::Result;

pub async fn invoke(
    engine: &Arc<Engine>,
    req: pb::SignalWorkflowExecutionRequest,
) -> Result<pb::SignalWorkflowExecutionResponse> {
    let execution = req.workflow_execution.unwrap_or_default();
    let signal = kernel::SignalInput {
        signal_name: req.signal_name,
        input: req.input,
        identity: req.identity,
        header: req.header,
        request_id: req.request_id,
        external: None,
    };
    engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
            kernel::signal_run(ctx, st, signal)
        })
        .await?;
    Ok(pb::SignalWorkflowExecutionResponse::default())
}
