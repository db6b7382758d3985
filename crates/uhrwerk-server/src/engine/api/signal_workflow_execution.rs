//! SignalWorkflowExecution: the signal is written to the run's history (buffered while a
//! workflow task is started) and a workflow task is scheduled; retried calls dedupe by request id.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;
use crate::error::{Error, Result};

pub async fn invoke(
    engine: &Arc<Engine>,
    req: pb::SignalWorkflowExecutionRequest,
) -> Result<pb::SignalWorkflowExecutionResponse> {
    let execution = req.workflow_execution.unwrap_or_default();
    let request_id = req.request_id.clone();
    let signal = kernel::SignalInput {
        signal_name: req.signal_name,
        input: req.input,
        identity: req.identity,
        header: req.header,
        request_id: req.request_id,
        external: None,
    };
    let signalled = engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
            kernel::signal_run(ctx, st, signal)
        })
        .await;
    match signalled {
        // A run that is no longer the workflow's latest (it continued as new): a retry of a
        // signal it has is acknowledged, anything else finds it closed, as in Temporal.
        Err(Error::NotFound(message)) if !execution.run_id.is_empty() => {
            let run = engine.run_state(&req.namespace, &execution.workflow_id, &execution.run_id).await;
            match run {
                Ok(st) if kernel::is_duplicate_signal(&st, &request_id) => {}
                Ok(st) if !st.is_open() => return Err(Error::NotFound(kernel::SIGNAL_TO_CLOSED_RUN.into())),
                _ => return Err(Error::NotFound(message)),
            }
        }
        other => other?,
    }
    Ok(pb::SignalWorkflowExecutionResponse::default())
}
