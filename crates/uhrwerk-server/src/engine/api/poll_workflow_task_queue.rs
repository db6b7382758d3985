//! PollWorkflowTaskQueue: wait in matching for a workflow task or a legacy query task, record
//! the task started, and answer with the history the worker needs: everything, or only the new
//! events for the run's sticky worker, which has the run cached.

use std::sync::Arc;
use std::time::Duration;

use uhrwerk_core::kernel::{self, WorkflowTaskStarted};
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::history::v1 as history_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_storage::{OutboxTask, TaskKind};

use super::tasks::{PollQueue, poll, start_elsewhere, workflow_task_response};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::matching::{Dispatch, QueryTask};

/// `wait`: how long the poll may be held (shortly before the client's deadline).
pub async fn invoke(
    engine: &Arc<Engine>,
    req: workflowservice_pb::PollWorkflowTaskQueueRequest,
    wait: Duration,
) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse> {
    let queue = req.task_queue.clone().unwrap_or_default();
    let sticky = queue.kind == enums_pb::TaskQueueKind::Sticky as i32;
    let target = PollQueue {
        namespace: &req.namespace,
        name: &queue.name,
        kind: TaskKind::Workflow,
        sticky: sticky.then_some(queue.normal_name.as_str()),
        identity: &req.identity,
    };
    let response = poll(engine, target, wait, |dispatch| start(engine, &req, dispatch)).await?;
    Ok(response.unwrap_or_default())
}

/// Records a matched task started: here when this node serves its run, else on the node that
/// does.
async fn start(
    engine: &Arc<Engine>,
    req: &workflowservice_pb::PollWorkflowTaskQueueRequest,
    dispatch: Dispatch,
) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse> {
    if let Some(response) = start_elsewhere(engine, &dispatch, req).await {
        return response;
    }
    start_here(engine, req, dispatch).await
}

/// Records a matched task started on this node, which serves its run (the internal service's
/// StartTask lands here too), and answers the poll `req`.
pub async fn start_here(
    engine: &Arc<Engine>,
    req: &workflowservice_pb::PollWorkflowTaskQueueRequest,
    dispatch: Dispatch,
) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse> {
    let sticky = req.task_queue.as_ref().is_some_and(|q| q.kind == enums_pb::TaskQueueKind::Sticky as i32);
    match dispatch {
        Dispatch::Task(task, queue) => {
            let stamp =
                kernel::worker_version_stamp(req.worker_version_capabilities.as_ref(), req.deployment_options.as_ref());
            start_workflow_task(engine, task, queue, req.identity.clone(), stamp).await
        }
        Dispatch::Query(query) => legacy_query_task(engine, query, sticky).await,
    }
}

async fn start_workflow_task(
    engine: &Arc<Engine>,
    task: OutboxTask,
    poll_queue: String,
    identity: String,
    worker_version: Option<uhrwerk_proto::temporal::api::common::v1::WorkerVersionStamp>,
) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let scheduled_event_id = task.scheduled_event_id;
    let queries = engine.queries.clone();
    let (started, workflow_type, task_queue, attached): (WorkflowTaskStarted, String, String, _) = engine
        .mutate(&task.namespace, &task.workflow_id, &task.run_id, move |ctx, st| {
            let started = kernel::record_workflow_task_started(
                ctx,
                st,
                scheduled_event_id,
                &poll_queue,
                &identity,
                &request_id,
                worker_version,
            )?;
            // Queries that arrived while the task was pending ride along with it.
            let attached = queries.attach(&st.run_id);
            Ok((started, st.workflow_type.clone(), st.task_queue.clone(), attached))
        })
        .await?;
    // A worker polling the run's sticky queue has it cached: it gets the new events only.
    let first = if started.sticky { started.previous_started_event_id + 1 } else { 1 };
    let n_events = (started.started_event_id - first + 1) as usize - started.transient_events.len();
    let mut events: Vec<history_pb::HistoryEvent> = engine.executions().events(&task.run_id, first, n_events).await?;
    // A transient attempt's events end the history the worker gets.
    events.extend(started.transient_events.iter().cloned());
    let mut response = workflow_task_response(
        common_pb::WorkflowExecution { workflow_id: task.workflow_id, run_id: task.run_id },
        workflow_type,
        &task_queue,
        started,
        events,
    );
    response.backlog_count_hint = engine.matching.backlog(&task.namespace, &task.task_queue, TaskKind::Workflow) as i64;
    response.queries = attached;
    Ok(response)
}

/// A legacy query task: the query and the full history, or no history for the run's sticky
/// worker, which has it cached; answered by RespondQueryTaskCompleted.
async fn legacy_query_task(
    engine: &Arc<Engine>,
    task: QueryTask,
    sticky: bool,
) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse> {
    let Some((_, query)) = engine.queries.take_legacy(&task.query_id, &task.task_queue) else {
        return Err(Error::NotFound("the query's caller is gone".into()));
    };
    let st = engine.run_state(&task.namespace, &task.workflow_id, &task.run_id).await?;
    let n_events = (st.next_event_id - 1).max(0) as usize;
    let events: Vec<history_pb::HistoryEvent> = if sticky && st.sticky_task_queue == task.task_queue {
        Vec::new()
    } else {
        engine.executions().events(&st.run_id, 1, n_events).await?
    };
    Ok(workflowservice_pb::PollWorkflowTaskQueueResponse {
        task_token: super::query_workflow::query_token(&task.query_id, &task.namespace, &task.workflow_id),
        workflow_execution: Some(common_pb::WorkflowExecution {
            workflow_id: st.workflow_id.clone(),
            run_id: st.run_id.clone(),
        }),
        workflow_type: Some(common_pb::WorkflowType { name: st.workflow_type.clone() }),
        previous_started_event_id: st.previous_started_event_id,
        started_event_id: 0,
        attempt: 1,
        history: Some(history_pb::History { events }),
        query: Some(query),
        workflow_execution_task_queue: Some(kernel::normal_task_queue(&st.task_queue)),
        ..Default::default()
    })
}
