//! Task long polls: an empty queue answers with the all-default response before the client's
//! deadline (never an error), for normal, sticky and activity polls; a task that arrives during
//! the poll is handed to it.

use std::time::Duration;

use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::taskqueue::v1 as taskqueue_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;

use crate::common::{self, NAMESPACE, TestServer, unique, with_deadline};

const SHORT_DEADLINE: Duration = Duration::from_secs(2);

#[tokio::test]
async fn empty_workflow_task_poll_returns_default_before_deadline() {
    let server = TestServer::ephemeral().await;
    let response = server.poller(&unique("tq")).poll_workflow_task(SHORT_DEADLINE).await;
    // DEADLINE_EXCEEDED / CANCELLED here would mean the server held the poll past the deadline.
    let response = response.expect("an empty poll is a response, not an error");
    assert_eq!(response, workflowservice_pb::PollWorkflowTaskQueueResponse::default());
    server.stop().await;
}

#[tokio::test]
async fn empty_activity_task_poll_returns_default_before_deadline() {
    let server = TestServer::ephemeral().await;
    let response = server.poller(&unique("tq")).poll_activity_task(SHORT_DEADLINE).await;
    let response = response.expect("an empty poll is a response, not an error");
    assert_eq!(response, workflowservice_pb::PollActivityTaskQueueResponse::default());
    server.stop().await;
}

#[tokio::test]
async fn sticky_poll_returns_default_before_deadline() {
    let server = TestServer::ephemeral().await;
    let request = workflowservice_pb::PollWorkflowTaskQueueRequest {
        namespace: NAMESPACE.into(),
        task_queue: Some(taskqueue_pb::TaskQueue {
            name: unique("sticky"),
            kind: enums_pb::TaskQueueKind::Sticky as i32,
            normal_name: unique("tq"),
        }),
        identity: "it-worker".into(),
        ..Default::default()
    };
    let response = server.client.clone().poll_workflow_task_queue(with_deadline(request, SHORT_DEADLINE)).await;
    let response = response.expect("an empty sticky poll is a response, not an error").into_inner();
    assert_eq!(response, workflowservice_pb::PollWorkflowTaskQueueResponse::default());
    server.stop().await;
}

#[tokio::test]
async fn poll_waiting_on_empty_queue_receives_a_task_started_later() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let poller = server.poller(&queue);
    // The poll is in flight before the start: it must be the one that gets the task.
    let poll = tokio::spawn(async move { poller.poll_workflow_task(Duration::from_secs(20)).await });
    tokio::task::yield_now().await;
    let workflow_id = unique("wf");
    common::start_workflow(&server.client, &workflow_id, "Late", &queue).await;
    let task = poll.await.expect("poll task").expect("poll succeeds");
    // Whether the poll was parked or arrived after the start, it gets the task.
    assert!(!task.task_token.is_empty(), "the waiting poll got the workflow task");
    assert_eq!(task.workflow_execution.map(|e| e.workflow_id), Some(workflow_id));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_worker_releases_a_parked_sticky_poll() {
    let server = TestServer::ephemeral().await;
    let sticky = unique("sticky");
    let request = workflowservice_pb::PollWorkflowTaskQueueRequest {
        namespace: NAMESPACE.into(),
        task_queue: Some(taskqueue_pb::TaskQueue {
            name: sticky.clone(),
            kind: enums_pb::TaskQueueKind::Sticky as i32,
            normal_name: unique("tq"),
        }),
        identity: "it-worker".into(),
        ..Default::default()
    };
    let mut client = server.client.clone();
    let mut poll =
        tokio::spawn(
            async move { client.poll_workflow_task_queue(with_deadline(request, Duration::from_secs(30))).await },
        );
    let shutdown = workflowservice_pb::ShutdownWorkerRequest {
        namespace: NAMESPACE.into(),
        sticky_task_queue: sticky,
        identity: "it-worker".into(),
        reason: "test".into(),
        ..Default::default()
    };
    // The poll may not be parked yet when the first ShutdownWorker arrives (a worker only sends it
    // with its polls in flight), so repeat it until the poll ends. Released or timed out, the
    // poll must end with the default response, never an error.
    let mut control = server.client.clone();
    let response = loop {
        tokio::select! {
            done = &mut poll => break done.expect("poll task").expect("sticky poll succeeds").into_inner(),
            accepted = control.shutdown_worker(shutdown.clone()) => {
                accepted.expect("ShutdownWorker is accepted");
            }
        }
    };
    assert_eq!(response, workflowservice_pb::PollWorkflowTaskQueueResponse::default());
    server.stop().await;
}
