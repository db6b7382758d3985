//! PollActivityTaskQueue: wait in matching for an activity task, record the attempt started,
//! and answer with what the worker needs to run it.

use std::sync::Arc;
use std::time::Duration;

use uhrwerk_core::kernel::{self, ActivityStarted};
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_storage::{OutboxTask, TaskKind};

use super::tasks::{PollQueue, activity_task_response, poll, start_elsewhere};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::matching::Dispatch;

pub async fn invoke(
    engine: &Arc<Engine>,
    req: workflowservice_pb::PollActivityTaskQueueRequest,
    wait: Duration,
) -> Result<workflowservice_pb::PollActivityTaskQueueResponse> {
    let queue = req.task_queue.clone().unwrap_or_default();
    let target = PollQueue {
        namespace: &req.namespace,
        name: &queue.name,
        kind: TaskKind::Activity,
        sticky: None,
        identity: &req.identity,
    };
    let response = poll(engine, target, wait, |dispatch| start(engine, &req, dispatch)).await?;
    Ok(response.unwrap_or_default())
}

/// Records a matched task started: here when this node serves its run, else on the node that
/// does.
async fn start(
    engine: &Arc<Engine>,
    req: &workflowservice_pb::PollActivityTaskQueueRequest,
    dispatch: Dispatch,
) -> Result<workflowservice_pb::PollActivityTaskQueueResponse> {
    if let Some(response) = start_elsewhere(engine, &dispatch, req).await {
        return response;
    }
    start_here(engine, req, dispatch).await
}

/// Records a matched activity task started on this node, which serves its run (the internal
/// service's StartTask lands here too).
pub async fn start_here(
    engine: &Arc<Engine>,
    req: &workflowservice_pb::PollActivityTaskQueueRequest,
    dispatch: Dispatch,
) -> Result<workflowservice_pb::PollActivityTaskQueueResponse> {
    match dispatch {
        Dispatch::Task(task, _) => start_activity_task(engine, task, req.identity.clone()).await,
        Dispatch::Query(_) => Err(Error::NotFound("query tasks go to workflow task queues".into())),
    }
}

async fn start_activity_task(
    engine: &Arc<Engine>,
    task: OutboxTask,
    identity: String,
) -> Result<workflowservice_pb::PollActivityTaskQueueResponse> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (scheduled_event_id, attempt) = (task.scheduled_event_id, task.attempt);
    let (started, workflow_type): (ActivityStarted, String) = engine
        .mutate(&task.namespace, &task.workflow_id, &task.run_id, move |ctx, st| {
            let started =
                kernel::record_activity_started(ctx, st, scheduled_event_id, attempt, &identity, &request_id)?;
            Ok((started, st.workflow_type.clone()))
        })
        .await?;
    let execution = common_pb::WorkflowExecution { workflow_id: task.workflow_id, run_id: task.run_id };
    Ok(activity_task_response(task.namespace, execution, workflow_type, started))
}
