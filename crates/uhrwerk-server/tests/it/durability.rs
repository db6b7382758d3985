//! Durability: a workflow survives a server restart on the same SQLite file, and so do an
//! activity scheduled before the restart and follow-ups on other workflows that a crash cut off.

use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use uhrwerk_server::config::Persistence;

use crate::common::{self, TestServer, event_types, unique};

use enums_pb::EventType as E;

#[tokio::test]
async fn workflow_started_before_restart_runs_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("uhrwerk.db");
    let queue = unique("tq");
    let workflow_id = unique("wf");

    let server = TestServer::with(Persistence::Sqlite(db.clone())).await;
    let run_id = common::start_workflow(&server.client, &workflow_id, "Durable", &queue).await;
    server.stop().await;

    let server = TestServer::with(Persistence::Sqlite(db.clone())).await;
    assert_eq!(server.running.recovered.0, 1, "one open run recovered");
    assert_eq!(server.running.recovered.1, 1, "one queued workflow task recovered");
    assert_eq!(common::status(&server, &workflow_id).await, enums_pb::WorkflowExecutionStatus::Running as i32);
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.workflow_execution.as_ref().map(|e| e.run_id.clone()), Some(run_id.clone()));
    assert_eq!(task.started_event_id, 3);
    assert_eq!(task.attempt, 1);
    poller
        .complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"after restart")])
        .await
        .expect("complete");
    assert_eq!(common::status(&server, &workflow_id).await, enums_pb::WorkflowExecutionStatus::Completed as i32);
    server.stop().await;

    // And the completion itself is durable.
    let server = TestServer::with(Persistence::Sqlite(db)).await;
    assert_eq!(server.running.recovered.0, 0, "no open runs left");
    assert_eq!(common::status(&server, &workflow_id).await, enums_pb::WorkflowExecutionStatus::Completed as i32);
    let events = common::full_history(&server.client, &workflow_id, &run_id).await;
    assert_eq!(events.len(), 5);
    assert_eq!(event_types(&events).last(), Some(&E::WorkflowExecutionCompleted));
    server.stop().await;
}

#[tokio::test]
async fn activity_scheduled_before_restart_is_delivered_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("uhrwerk.db");
    let queue = unique("tq");
    let workflow_id = unique("wf");

    let server = TestServer::with(Persistence::Sqlite(db.clone())).await;
    let run_id = common::start_workflow(&server.client, &workflow_id, "DurableActivity", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity("survivor", &queue)])
        .await
        .expect("schedule");
    drop(poller);
    server.stop().await;

    let server = TestServer::with(Persistence::Sqlite(db)).await;
    let poller = server.poller(&queue);
    let activity = poller.expect_activity_task().await;
    assert_eq!(activity.activity_id, "survivor");
    assert_eq!(activity.attempt, 1);
    assert_eq!(activity.workflow_execution.as_ref().map(|e| e.run_id.clone()), Some(run_id.clone()));
    poller.complete_activity_task(&activity.task_token, b"r").await.expect("complete activity");
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.previous_started_event_id, 3);
    poller.complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"done")]).await.expect("complete");
    let events = common::full_history(&server.client, &workflow_id, &run_id).await;
    assert_eq!(events.len(), 11);
    assert_eq!(event_types(&events).last(), Some(&E::WorkflowExecutionCompleted));
    server.stop().await;
}

#[tokio::test]
async fn workflow_task_timeout_armed_before_restart_fires_after_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("uhrwerk.db");
    let queue = unique("tq");
    let workflow_id = unique("wf");

    let server = TestServer::with(Persistence::Sqlite(db.clone())).await;
    let mut request = common::start_request(&workflow_id, "LostWorker", &queue);
    request.workflow_task_timeout = Some(common::secs(1));
    server.client.clone().start_workflow_execution(request).await.expect("start");
    let task = server.poller(&queue).expect_workflow_task().await;
    assert_eq!(task.attempt, 1);
    server.stop().await;

    // The worker is gone with the old server; the recovered timer must reschedule the task.
    let server = TestServer::with(Persistence::Sqlite(db)).await;
    let poller = server.poller(&queue);
    let retry = poller.poll_workflow_task(std::time::Duration::from_secs(10)).await.expect("poll after restart");
    assert!(!retry.task_token.is_empty(), "the workflow task timeout was not recovered");
    assert_eq!(retry.attempt, 2);
    assert!(event_types(&retry.history.expect("history").events).contains(&E::WorkflowTaskTimedOut));
    server.stop().await;
}

#[tokio::test]
async fn activity_retry_backoff_survives_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("uhrwerk.db");
    let queue = unique("tq");
    let workflow_id = unique("wf");

    let server = TestServer::with(Persistence::Sqlite(db.clone())).await;
    common::start_workflow(&server.client, &workflow_id, "RetryAcrossRestart", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    let policy = common_pb::RetryPolicy {
        initial_interval: Some(common::millis(500)),
        backoff_coefficient: 1.0,
        maximum_attempts: 3,
        ..Default::default()
    };
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity_with("r", &queue, Some(policy))])
        .await
        .expect("schedule");
    let activity = poller.expect_activity_task().await;
    poller
        .fail_activity_task(
            &activity.task_token,
            common::application_failure("before restart", false),
            Some(common::payloads(b"hb")),
        )
        .await
        .expect("fail attempt 1");
    drop(poller);
    server.stop().await;

    let server = TestServer::with(Persistence::Sqlite(db)).await;
    let retry = server.poller(&queue).expect_activity_task().await;
    assert_eq!(retry.attempt, 2);
    assert_eq!(retry.heartbeat_details.map(|p| p.payloads[0].data.clone()), Some(b"hb".to_vec()));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_a_parked_poll_with_an_empty_response() {
    let server = TestServer::ephemeral().await;
    let poller = server.poller(&unique("tq"));
    let poll = tokio::spawn(async move { poller.poll_workflow_task(std::time::Duration::from_secs(30)).await });
    // The poll may or may not be parked when the shutdown begins; both outcomes are checked below.
    tokio::task::yield_now().await;
    server.stop().await;
    let response = poll.await.expect("poll task");
    // Parked: it ends with the default response. Not yet in: the connection refuses it.
    match response {
        Ok(r) => assert_eq!(r, Default::default()),
        Err(status) => {
            assert!(matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Cancelled), "{status:?}")
        }
    }
}
