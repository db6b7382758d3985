//! ResetWorkflowExecution: a new run from a prefix of the latest run's history; the latest run,
//! if open, is terminated (`kernel::reset_run`).

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;
use crate::error::Result;

pub async fn invoke(
    engine: &Arc<Engine>,
    req: pb::ResetWorkflowExecutionRequest,
) -> Result<pb::ResetWorkflowExecutionResponse> {
    let execution = req.workflow_execution.unwrap_or_default();
    let base = engine.run_state(&req.namespace, &execution.workflow_id, &execution.run_id).await?;
    // The prefix up to the reset point never changes; events after it only matter for the
    // signals to reapply, read here once.
    let history = engine.executions().events(&base.run_id, 1, usize::MAX).await?;
    // As Temporal: signals are reapplied unless the request excludes them (the deprecated
    // reapply type NONE, or SIGNAL in the exclude list).
    let excluded = req.reset_reapply_type == enums_pb::ResetReapplyType::None as i32
        || req.reset_reapply_exclude_types.contains(&(enums_pb::ResetReapplyExcludeType::Signal as i32));
    let request = kernel::ResetRequest {
        workflow_task_finish_event_id: req.workflow_task_finish_event_id,
        reason: req.reason,
        request_id: req.request_id,
        reapply_signals: !excluded,
    };
    let run_id = engine
        .mutate(&req.namespace, &execution.workflow_id, &base.run_id, move |ctx, st| {
            kernel::reset_run(ctx, st, &history, &request)
        })
        .await?;
    Ok(pb::ResetWorkflowExecutionResponse { run_id })
}
