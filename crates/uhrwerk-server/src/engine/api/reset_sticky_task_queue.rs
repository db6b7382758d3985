//! ResetStickyTaskQueue: the run forgets its worker's sticky queue; its next workflow task goes
//! to the normal queue with the full history.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;
use crate::error::Result;

pub async fn invoke(
    engine: &Arc<Engine>,
    req: pb::ResetStickyTaskQueueRequest,
) -> Result<pb::ResetStickyTaskQueueResponse> {
    let execution = req.execution.unwrap_or_default();
    engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, |ctx, st| {
            if !st.is_open() {
                return Err(kernel::Error::NotFound("workflow execution already completed".into()));
            }
            kernel::reset_sticky_task_queue(ctx, st);
            Ok(())
        })
        .await?;
    Ok(pb::ResetStickyTaskQueueResponse::default())
}
