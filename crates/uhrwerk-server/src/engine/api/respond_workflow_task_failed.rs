//! RespondWorkflowTaskFailed: the worker could not process the task; the kernel writes the
//! failure (unless the attempt is transient) and schedules the next attempt.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_core::token::TaskToken;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;
use crate::error::Result;

pub async fn invoke(
    engine: &Arc<Engine>,
    token: TaskToken,
    req: pb::RespondWorkflowTaskFailedRequest,
) -> Result<pb::RespondWorkflowTaskFailedResponse> {
    let t = token.clone();
    engine
        .mutate(&token.namespace, &token.workflow_id, &token.run_id, move |ctx, st| {
            kernel::fail_workflow_task(ctx, st, &t, req)
        })
        .await?;
    Ok(pb::RespondWorkflowTaskFailedResponse::default())
}
