//! What a worker gets for a task, shared by the polls and by the calls that hand out tasks
//! directly (eager start, the inline next task, eager activities), and the poll loop.

use std::time::Duration;

use uhrwerk_core::kernel::{self, ActivityStarted, WorkflowTaskStarted};
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::history::v1 as history_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_storage::TaskKind;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::matching::Dispatch;

/// A started workflow task as a poll (or inline, or eager) response; `events` is the history the
/// worker gets, transient events included.
pub(super) fn workflow_task_response(
    execution: common_pb::WorkflowExecution,
    workflow_type: String,
    normal_queue: &str,
    started: WorkflowTaskStarted,
    events: Vec<history_pb::HistoryEvent>,
) -> workflowservice_pb::PollWorkflowTaskQueueResponse {
    workflowservice_pb::PollWorkflowTaskQueueResponse {
        task_token: started.token,
        workflow_execution: Some(execution),
        workflow_type: Some(common_pb::WorkflowType { name: workflow_type }),
        previous_started_event_id: started.previous_started_event_id,
        started_event_id: started.started_event_id,
        attempt: started.attempt,
        history: Some(history_pb::History { events }),
        workflow_execution_task_queue: Some(kernel::normal_task_queue(normal_queue)),
        scheduled_time: Some(time::timestamp(started.scheduled_time_ms)),
        started_time: Some(time::timestamp(started.started_time_ms)),
        messages: started.messages,
        ..Default::default()
    }
}

/// A started activity attempt as a poll (or eager) response.
pub(super) fn activity_task_response(
    namespace: String,
    execution: common_pb::WorkflowExecution,
    workflow_type: String,
    started: ActivityStarted,
) -> workflowservice_pb::PollActivityTaskQueueResponse {
    let ai = started.info;
    workflowservice_pb::PollActivityTaskQueueResponse {
        task_token: started.token,
        workflow_namespace: namespace,
        workflow_type: Some(common_pb::WorkflowType { name: workflow_type }),
        workflow_execution: Some(execution),
        activity_type: Some(common_pb::ActivityType { name: ai.activity_type }),
        activity_id: ai.activity_id,
        header: ai.header,
        input: ai.input,
        heartbeat_details: ai.heartbeat_details,
        scheduled_time: Some(time::timestamp(ai.scheduled_time_ms)),
        current_attempt_scheduled_time: Some(time::timestamp(ai.attempt_scheduled_time_ms)),
        started_time: Some(time::timestamp(ai.started_time_ms)),
        attempt: ai.attempt,
        schedule_to_close_timeout: Some(time::duration(ai.schedule_to_close_ms)),
        start_to_close_timeout: Some(time::duration(ai.start_to_close_ms)),
        heartbeat_timeout: Some(time::duration(ai.heartbeat_ms)),
        retry_policy: ai.retry_policy,
        priority: ai.priority,
        ..Default::default()
    }
}

/// Records a matched task started on the node that serves its run, when that is another node:
/// `None` when this node serves it.
pub(super) async fn start_elsewhere<Req, Resp>(engine: &Engine, dispatch: &Dispatch, poll: &Req) -> Option<Result<Resp>>
where
    Req: prost::Message,
    Resp: prost::Message + Default,
{
    let (namespace, workflow_id) = match dispatch {
        Dispatch::Task(t, _) => (&t.namespace, &t.workflow_id),
        Dispatch::Query(q) => (&q.namespace, &q.workflow_id),
    };
    let crate::cluster::Owner::Node(node) = engine.run_owner(namespace, workflow_id) else { return None };
    let cluster = engine.cluster()?;
    cluster.metrics.internal_calls.with_label_values(&["StartTask"]).inc();
    let request = uhrwerk_proto::cluster::StartTaskRequest {
        task: Some(crate::matching::to_wire(dispatch)),
        poll: poll.encode_to_vec(),
    };
    Some(match cluster.peers.start_task(&node, request).await {
        Ok(answer) => Resp::decode(answer.response.as_slice())
            .map_err(|e| Error::Internal(format!("another node's poll response does not decode: {e}"))),
        Err(e) => Err(e),
    })
}

/// Which queue a poll waits on.
pub(super) struct PollQueue<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub kind: TaskKind,
    /// A worker's sticky queue: the normal queue it stands for.
    pub sticky: Option<&'a str>,
    pub identity: &'a str,
}

/// Waits up to `wait` for a task on `queue` and records it started with `start`. A task whose
/// run moved on meanwhile (NOT_FOUND) is skipped and the wait goes on.
pub(super) async fn poll<T, F, Fut>(
    engine: &Engine,
    queue: PollQueue<'_>,
    wait: Duration,
    start: F,
) -> Result<Option<T>>
where
    F: Fn(Dispatch) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    // A cluster node that does not own the queue (a poll forwarded here under an older view of
    // the members) holds the poll only briefly: tasks go to the owner, so the worker is better
    // off polling again through a node whose view is current.
    let wait = match engine.cluster() {
        Some(cluster) if cluster.queue_owner(queue.namespace, queue.name) != crate::cluster::Owner::Local => {
            wait.min(cluster.lease() / 4)
        }
        _ => wait,
    };
    let deadline = crate::clock::deadline(wait);
    loop {
        let remaining = crate::clock::remaining(deadline);
        if remaining.is_zero() {
            return Ok(None);
        }
        let Some(task) = engine
            .matching
            .poll(queue.namespace, queue.name, queue.kind, queue.sticky, queue.identity, remaining)
            .await
        else {
            return Ok(None);
        };
        let again = task.clone();
        match start(task).await {
            Ok(response) => return Ok(Some(response)),
            Err(Error::NotFound(_)) => continue,
            Err(e) => {
                // Recording the start failed (the store was unavailable): the task's outbox row
                // is still there, so it goes back to matching for the next poll instead of
                // waiting for a restart's recovery.
                if let (Error::Unavailable(_), crate::matching::Dispatch::Task(task, _)) = (&e, again) {
                    engine.matching.offer(task);
                }
                return Err(e);
            }
        }
    }
}
