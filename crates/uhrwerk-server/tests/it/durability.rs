//! Durability: a workflow survives a server restart on the same SQLite file, and so do an
//! activity scheduled before the restart and follow-ups on other workflows that a crash cut off.

use temporalio_protos::temporal::api::command::v1 as command_pb;
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

fn start_child_command(workflow_id: &str, queue: &str) -> command_pb::Command {
    command_pb::Command {
        command_type: enums_pb::CommandType::StartChildWorkflowExecution as i32,
        attributes: Some(command_pb::command::Attributes::StartChildWorkflowExecutionCommandAttributes(
            command_pb::StartChildWorkflowExecutionCommandAttributes {
                workflow_id: workflow_id.into(),
                workflow_type: Some(common_pb::WorkflowType { name: "Child".into() }),
                task_queue: Some(common::task_queue(queue)),
                parent_close_policy: enums_pb::ParentClosePolicy::Terminate as i32,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn signal_external_command(workflow_id: &str) -> command_pb::Command {
    command_pb::Command {
        command_type: enums_pb::CommandType::SignalExternalWorkflowExecution as i32,
        attributes: Some(command_pb::command::Attributes::SignalExternalWorkflowExecutionCommandAttributes(
            command_pb::SignalExternalWorkflowExecutionCommandAttributes {
                execution: Some(common_pb::WorkflowExecution {
                    workflow_id: workflow_id.into(),
                    run_id: String::new(),
                }),
                signal_name: "wake".into(),
                input: Some(common::payloads(b"from sender")),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// Polls workflow tasks until one of `workflow_id` arrives; tasks of other workflows are
/// completed without commands.
async fn task_of(poller: &common::TaskPoller, workflow_id: &str) -> Vec<u8> {
    loop {
        let task = poller.expect_workflow_task().await;
        let id = task.workflow_execution.as_ref().map(|e| e.workflow_id.clone()).unwrap_or_default();
        if id == workflow_id {
            return task.task_token;
        }
        poller.complete_workflow_task(&task.task_token, Vec::new()).await.expect("complete another workflow's task");
    }
}

/// Waits (bounded) until `check` holds; recovery carries follow-ups out in the background.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn follow_ups_lost_in_a_crash_are_carried_out_at_recovery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("uhrwerk.db");
    let queue = unique("tq");
    let (parent_id, child_id, sender_id, target_id) =
        (unique("parent"), unique("child"), unique("sender"), unique("target"));

    let server = TestServer::with(Persistence::Sqlite(db.clone())).await;
    let poller = server.poller(&queue);
    common::start_workflow(&server.client, &parent_id, "Parent", &queue).await;
    let token = task_of(&poller, &parent_id).await;
    poller.complete_workflow_task(&token, vec![start_child_command(&child_id, &queue)]).await.expect("start the child");
    // The parent's next task carries ChildWorkflowExecutionStarted; the child's own first task is
    // completed without commands on the way.
    let parent_task = task_of(&poller, &parent_id).await;
    common::start_workflow(&server.client, &sender_id, "Sender", &queue).await;
    common::start_workflow(&server.client, &target_id, "Target", &queue).await;
    let sender_task = task_of(&poller, &sender_id).await;

    // The process "dies" right after these commits: their follow-ups never run.
    server.running.drop_follow_ups_for_testing(true);
    poller
        .complete_workflow_task(&sender_task, vec![signal_external_command(&target_id)])
        .await
        .expect("signal the target");
    poller
        .complete_workflow_task(&parent_task, vec![common::complete_workflow(b"parent done")])
        .await
        .expect("close the parent");
    assert_eq!(common::status(&server, &parent_id).await, enums_pb::WorkflowExecutionStatus::Completed as i32);
    assert_eq!(
        common::status(&server, &child_id).await,
        enums_pb::WorkflowExecutionStatus::Running as i32,
        "the close policy was dropped"
    );
    let target_run = common::describe(&server, &target_id)
        .await
        .workflow_execution_info
        .and_then(|i| i.execution)
        .map(|e| e.run_id)
        .unwrap_or_default();
    let signaled = |events: &[temporalio_protos::temporal::api::history::v1::HistoryEvent]| {
        event_types(events).contains(&E::WorkflowExecutionSignaled)
    };
    assert!(!signaled(&common::full_history(&server.client, &target_id, &target_run).await), "the signal was dropped");
    server.stop().await;

    let server = TestServer::with(Persistence::Sqlite(db)).await;
    until("the child terminated by its parent's close policy", || async {
        common::status(&server, &child_id).await == enums_pb::WorkflowExecutionStatus::Terminated as i32
    })
    .await;
    until("the target signaled", || async {
        signaled(&common::full_history(&server.client, &target_id, &target_run).await)
    })
    .await;
    let sender_run = common::describe(&server, &sender_id)
        .await
        .workflow_execution_info
        .and_then(|i| i.execution)
        .map(|e| e.run_id)
        .unwrap_or_default();
    until("the sender told", || async {
        event_types(&common::full_history(&server.client, &sender_id, &sender_run).await)
            .contains(&E::ExternalWorkflowExecutionSignaled)
    })
    .await;
    let target_events = common::full_history(&server.client, &target_id, &target_run).await;
    assert_eq!(
        event_types(&target_events).iter().filter(|t| **t == E::WorkflowExecutionSignaled).count(),
        1,
        "signaled exactly once"
    );
    server.stop().await;
}
