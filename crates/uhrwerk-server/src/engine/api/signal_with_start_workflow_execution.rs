//! SignalWithStartWorkflowExecution: signal the workflow id's open run, or start one with the
//! signal in its history (an unspecified conflict policy means USE_EXISTING here).

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;
use crate::error::Result;

/// `start` is the start half of the request, validated and completed with defaults.
pub async fn invoke(
    engine: &Arc<Engine>,
    start: pb::StartWorkflowExecutionRequest,
    signal: kernel::SignalInput,
) -> Result<pb::SignalWithStartWorkflowExecutionResponse> {
    let outcome = engine.signal_with_start(start, signal).await?;
    Ok(pb::SignalWithStartWorkflowExecutionResponse {
        run_id: outcome.run_id,
        started: outcome.started,
        ..Default::default()
    })
}
