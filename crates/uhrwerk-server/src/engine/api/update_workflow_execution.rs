//! Workflow updates: UpdateWorkflowExecution (admit, then wait for the requested stage) and
//! PollWorkflowExecutionUpdate. Update-with-start is the frontend's ExecuteMultiOperation, which
//! combines `start_workflow_execution::with_update` with `invoke`.

use std::time::Duration;

use uhrwerk_core::kernel;
use uhrwerk_core::state::{RunState, UpdateState};
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::update::v1 as update_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};

use enums_pb::UpdateWorkflowExecutionLifecycleStage as Stage;

fn stage_of(state: i32) -> Stage {
    match UpdateState::try_from(state) {
        Ok(UpdateState::Accepted) => Stage::Accepted,
        Ok(UpdateState::Completed) => Stage::Completed,
        _ => Stage::Admitted,
    }
}

/// The outcome of an accepted update whose run closed before the update completed (Temporal's
/// `AcceptedUpdateCompletedWorkflowFailure`).
fn accepted_update_completed_workflow() -> update_pb::Outcome {
    use uhrwerk_proto::temporal::api::failure::v1 as failure_pb;
    update_pb::Outcome {
        value: Some(update_pb::outcome::Value::Failure(failure_pb::Failure {
            message: "Workflow Update failed because the Workflow completed before the Update completed.".into(),
            source: "Server".into(),
            failure_info: Some(failure_pb::failure::FailureInfo::ApplicationFailureInfo(
                failure_pb::ApplicationFailureInfo {
                    r#type: "AcceptedUpdateCompletedWorkflow".into(),
                    non_retryable: true,
                    ..Default::default()
                },
            )),
            ..Default::default()
        })),
    }
}

/// Temporal's answer to an update whose run continued as new before accepting it.
const WORKFLOW_CLOSING: &str = "workflow operation can not be applied because workflow is closing";

/// Waits until update `update_id` of the run reaches `wanted`, the run closes, or `wait` ends.
async fn await_update(
    engine: &Engine,
    namespace: &str,
    workflow_id: &str,
    run_id: &str,
    update_id: &str,
    wanted: Stage,
    wait: Duration,
) -> Result<pb::UpdateWorkflowExecutionResponse> {
    let deadline = crate::clock::deadline(wait);
    loop {
        let watcher = engine.watch_history(run_id);
        let st: RunState = engine.run_state(namespace, workflow_id, run_id).await?;
        let Some(update) = st.updates.get(update_id) else {
            return Err(Error::NotFound(format!("update {update_id} not found")));
        };
        let stage = stage_of(update.state);
        let update_ref = update_pb::UpdateRef {
            workflow_execution: Some(common_pb::WorkflowExecution {
                workflow_id: workflow_id.to_string(),
                run_id: st.run_id.clone(),
            }),
            update_id: update_id.to_string(),
        };
        if stage >= wanted || stage == Stage::Completed {
            return Ok(pb::UpdateWorkflowExecutionResponse {
                update_ref: Some(update_ref),
                outcome: if stage == Stage::Completed { update.outcome.clone() } else { None },
                stage: stage as i32,
                ..Default::default()
            });
        }
        if !st.is_open() {
            if stage == Stage::Accepted {
                // As Temporal: a client that knows the update was accepted gets an outcome, not
                // an error, when the run closes (or continues as new) before the update completes.
                return Ok(pb::UpdateWorkflowExecutionResponse {
                    update_ref: Some(update_ref),
                    outcome: Some(accepted_update_completed_workflow()),
                    stage: Stage::Completed as i32,
                    ..Default::default()
                });
            }
            return Err(if st.status == enums_pb::WorkflowExecutionStatus::ContinuedAsNew as i32 {
                // As Temporal (ErrWorkflowClosing), also to a call that comes after: the client
                // retries; an update sent to the workflow's latest run then goes to the new run.
                Error::WorkflowClosing(WORKFLOW_CLOSING.into())
            } else {
                Error::NotFound("workflow update was aborted by closing workflow".into())
            });
        }
        if !engine.wait_for_change(watcher, run_id, deadline).await {
            return Ok(pb::UpdateWorkflowExecutionResponse {
                update_ref: Some(update_ref),
                outcome: None,
                stage: stage as i32,
                ..Default::default()
            });
        }
    }
}

/// `wait`: how long to wait for the stage the request asks for.
pub async fn invoke(
    engine: &Arc<Engine>,
    req: pb::UpdateWorkflowExecutionRequest,
    wait: Duration,
) -> Result<pb::UpdateWorkflowExecutionResponse> {
    let execution = req.workflow_execution.unwrap_or_default();
    let request = req.request.unwrap_or_default();
    let update_id = request.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default();
    let wanted =
        Stage::try_from(req.wait_policy.as_ref().map_or(0, |w| w.lifecycle_stage)).unwrap_or(Stage::Unspecified);
    let wanted = if wanted == Stage::Unspecified { Stage::Admitted } else { wanted };
    let first_run = req.first_execution_run_id;
    let admitted = engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
            if !first_run.is_empty() && st.first_execution_run_id != first_run {
                return Err(kernel::Error::NotFound("workflow execution not found".into()));
            }
            kernel::admit_update(ctx, st, request)?;
            Ok(st.run_id.clone())
        })
        .await;
    let run_id = match admitted {
        // A run that is no longer the workflow's latest (it continued as new): a retry of an
        // update it has gets that update's outcome, anything else finds it closed, as in
        // Temporal.
        Err(Error::NotFound(message)) if !execution.run_id.is_empty() => {
            match engine.run_state(&req.namespace, &execution.workflow_id, &execution.run_id).await {
                Ok(st) if st.updates.contains_key(&update_id) => st.run_id,
                Ok(st) if !st.is_open() => return Err(Error::NotFound(kernel::SIGNAL_TO_CLOSED_RUN.into())),
                _ => return Err(Error::NotFound(message)),
            }
        }
        other => other?,
    };
    await_update(engine, &req.namespace, &execution.workflow_id, &run_id, &update_id, wanted, wait).await
}

/// PollWorkflowExecutionUpdate.
pub async fn poll(
    engine: &Arc<Engine>,
    req: pb::PollWorkflowExecutionUpdateRequest,
    wait: Duration,
) -> Result<pb::PollWorkflowExecutionUpdateResponse> {
    let update_ref = req.update_ref.unwrap_or_default();
    let execution = update_ref.workflow_execution.unwrap_or_default();
    let st = engine.run_state(&req.namespace, &execution.workflow_id, &execution.run_id).await?;
    let wanted =
        Stage::try_from(req.wait_policy.as_ref().map_or(0, |w| w.lifecycle_stage)).unwrap_or(Stage::Unspecified);
    // Without a wait policy the poll does not block: it reports the stage reached.
    let wanted = if wanted == Stage::Unspecified { Stage::Admitted } else { wanted };
    let r =
        await_update(engine, &req.namespace, &execution.workflow_id, &st.run_id, &update_ref.update_id, wanted, wait)
            .await?;
    Ok(pb::PollWorkflowExecutionUpdateResponse { outcome: r.outcome, stage: r.stage, update_ref: r.update_ref })
}
