//! Run lifecycle edges: terminate, stale tasks of closed runs, TERMINATE_EXISTING, rejected
//! commands, pending activity state, sticky attributes, activity timeouts.

use std::time::Duration;

use temporalio_protos::temporal::api::command::v1 as command_pb;
use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::history::v1 as history_pb;
use temporalio_protos::temporal::api::taskqueue::v1 as taskqueue_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;
use tonic::Code;

use crate::common::{self, NAMESPACE, TestServer, assert_code, event_types, failure_name, millis, secs, unique};

use enums_pb::EventType as E;

async fn terminate(server: &TestServer, workflow_id: &str, run_id: &str) -> Result<(), tonic::Status> {
    server
        .client
        .clone()
        .terminate_workflow_execution(workflowservice_pb::TerminateWorkflowExecutionRequest {
            namespace: NAMESPACE.into(),
            workflow_execution: Some(common_pb::WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: run_id.into(),
            }),
            reason: "it".into(),
            identity: "it-client".into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn terminate_closes_the_run_and_stales_its_tasks() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "Doomed", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity("a", &queue)])
        .await
        .expect("schedule");
    let activity = poller.expect_activity_task().await;
    terminate(&server, &workflow_id, &run_id).await.expect("terminate");

    let info = common::describe(&server, &workflow_id).await.workflow_execution_info.expect("info");
    assert_eq!(info.status, enums_pb::WorkflowExecutionStatus::Terminated as i32);
    let history = common::full_history(&server.client, &workflow_id, &run_id).await;
    assert_eq!(event_types(&history).last(), Some(&E::WorkflowExecutionTerminated));

    // The running activity learns about it through NOT_FOUND.
    let status = assert_code(poller.heartbeat(&activity.task_token, None).await, Code::NotFound);
    assert_eq!(failure_name(&status), "NotFoundFailure");
    assert_code(poller.complete_activity_task(&activity.task_token, b"r").await, Code::NotFound);
    // A second terminate: the run is already closed.
    let status = assert_code(terminate(&server, &workflow_id, &run_id).await, Code::NotFound);
    assert_eq!(failure_name(&status), "NotFoundFailure");
    server.stop().await;
}

#[tokio::test]
async fn queued_tasks_of_a_terminated_run_are_not_delivered() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "Doomed", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity("never", &queue)])
        .await
        .expect("schedule");
    terminate(&server, &workflow_id, &run_id).await.expect("terminate");
    let polled = poller.poll_activity_task(Duration::from_secs(2)).await.expect("activity poll");
    assert_eq!(polled, Default::default(), "the activity of a terminated run must not be handed out");

    // The same for a workflow task queued when the run was terminated.
    let other = unique("wf");
    let other_run = common::start_workflow(&server.client, &other, "Doomed", &queue).await;
    terminate(&server, &other, &other_run).await.expect("terminate");
    let polled = poller.poll_workflow_task(Duration::from_secs(2)).await.expect("workflow poll");
    assert_eq!(polled, Default::default(), "the workflow task of a terminated run must not be handed out");
    server.stop().await;
}

#[tokio::test]
async fn terminate_existing_replaces_the_running_run() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let first_run = common::start_workflow(&server.client, &workflow_id, "Replace", &queue).await;
    let poller = server.poller(&queue);
    let stale = poller.expect_workflow_task().await;

    let mut request = common::start_request(&workflow_id, "Replace", &queue);
    request.workflow_id_conflict_policy = enums_pb::WorkflowIdConflictPolicy::TerminateExisting as i32;
    let second =
        server.client.clone().start_workflow_execution(request).await.expect("terminate existing").into_inner();
    assert!(second.started);
    assert_ne!(second.run_id, first_run);

    let history = common::full_history(&server.client, &workflow_id, &first_run).await;
    assert_eq!(event_types(&history).last(), Some(&E::WorkflowExecutionTerminated));
    assert_code(poller.complete_workflow_task(&stale.task_token, vec![]).await, Code::NotFound);
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.workflow_execution.map(|e| e.run_id), Some(second.run_id.clone()));
    let info = common::describe(&server, &workflow_id).await.workflow_execution_info.expect("info");
    assert_eq!(info.execution.map(|e| e.run_id), Some(second.run_id));
    assert_eq!(info.status, enums_pb::WorkflowExecutionStatus::Running as i32);
    server.stop().await;
}

#[tokio::test]
async fn invalid_schedule_activity_fails_the_workflow_task() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "BadActivity", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    let mut command = common::schedule_activity("no-timeouts", &queue);
    if let Some(command_pb::command::Attributes::ScheduleActivityTaskCommandAttributes(a)) = command.attributes.as_mut()
    {
        a.start_to_close_timeout = None;
        a.schedule_to_close_timeout = None;
    }
    let status =
        assert_code(poller.complete_workflow_task(&task.task_token, vec![command]).await, Code::InvalidArgument);
    assert!(status.message().starts_with("BadScheduleActivityAttributes"), "{}", status.message());

    let retry = poller.expect_workflow_task().await;
    assert_eq!(retry.attempt, 2);
    let history = common::full_history(&server.client, &workflow_id, &run_id).await;
    let failed = history.iter().find(|e| e.event_type == E::WorkflowTaskFailed as i32).expect("WorkflowTaskFailed");
    match failed.attributes.as_ref() {
        Some(history_pb::history_event::Attributes::WorkflowTaskFailedEventAttributes(a)) => {
            assert_eq!(a.cause, enums_pb::WorkflowTaskFailedCause::BadScheduleActivityAttributes as i32);
        }
        other => panic!("not WorkflowTaskFailed attributes: {other:?}"),
    }
    assert!(!event_types(&history).contains(&E::ActivityTaskScheduled), "the rejected completion left no trace");
    server.stop().await;
}

#[tokio::test]
async fn describe_shows_pending_activity_through_its_attempts() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    common::start_workflow(&server.client, &workflow_id, "Pending", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    let policy = common_pb::RetryPolicy {
        initial_interval: Some(millis(100)),
        backoff_coefficient: 1.0,
        maximum_attempts: 3,
        ..Default::default()
    };
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity_with("p", &queue, Some(policy))])
        .await
        .expect("schedule");

    let pending = common::describe(&server, &workflow_id).await.pending_activities;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].activity_id, "p");
    assert_eq!(pending[0].state, enums_pb::PendingActivityState::Scheduled as i32);
    assert_eq!(pending[0].attempt, 1);

    let activity = poller.expect_activity_task().await;
    let pending = common::describe(&server, &workflow_id).await.pending_activities;
    assert_eq!(pending[0].state, enums_pb::PendingActivityState::Started as i32);
    poller.heartbeat(&activity.task_token, Some(common::payloads(b"hb"))).await.expect("heartbeat");
    let pending = common::describe(&server, &workflow_id).await.pending_activities;
    assert_eq!(pending[0].heartbeat_details.as_ref().map(|p| p.payloads[0].data.clone()), Some(b"hb".to_vec()));
    assert!(pending[0].last_heartbeat_time.is_some());

    poller
        .fail_activity_task(&activity.task_token, common::application_failure("boom", false), None)
        .await
        .expect("fail");
    let pending = common::describe(&server, &workflow_id).await.pending_activities;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempt, 2);
    assert_eq!(pending[0].last_failure.as_ref().map(|f| f.message.as_str()), Some("boom"));
    assert_eq!(pending[0].maximum_attempts, 3);
    server.stop().await;
}

#[tokio::test]
async fn next_workflow_task_goes_to_the_normal_queue_despite_sticky_attributes() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    common::start_workflow(&server.client, &unique("wf"), "Sticky", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    let request = workflowservice_pb::RespondWorkflowTaskCompletedRequest {
        namespace: NAMESPACE.into(),
        task_token: task.task_token.clone(),
        commands: vec![common::schedule_activity("a", &queue)],
        identity: "it-worker".into(),
        sticky_attributes: Some(taskqueue_pb::StickyExecutionAttributes {
            worker_task_queue: Some(taskqueue_pb::TaskQueue {
                name: unique("sticky"),
                kind: enums_pb::TaskQueueKind::Sticky as i32,
                normal_name: queue.clone(),
            }),
            schedule_to_start_timeout: Some(secs(10)),
        }),
        ..Default::default()
    };
    server.client.clone().respond_workflow_task_completed(request).await.expect("complete with sticky attributes");
    let activity = poller.expect_activity_task().await;
    poller.complete_activity_task(&activity.task_token, b"r").await.expect("complete activity");
    // Uhrwerk dispatches with full history on the normal queue.
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.previous_started_event_id, 3);
    assert_eq!(task.history.expect("history").events.first().map(|e| e.event_id), Some(1), "full history");
    server.stop().await;
}

#[tokio::test]
async fn activity_start_to_close_timeout_is_retried() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "SlowActivity", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    let policy = common_pb::RetryPolicy {
        initial_interval: Some(millis(100)),
        backoff_coefficient: 1.0,
        maximum_attempts: 2,
        ..Default::default()
    };
    let mut command = common::schedule_activity_with("slow", &queue, Some(policy));
    if let Some(command_pb::command::Attributes::ScheduleActivityTaskCommandAttributes(a)) = command.attributes.as_mut()
    {
        a.start_to_close_timeout = Some(secs(1));
    }
    poller.complete_workflow_task(&task.task_token, vec![command]).await.expect("schedule");
    let first = poller.expect_activity_task().await;
    assert_eq!(first.attempt, 1);
    // Never answered: the start-to-close timer retries it.
    let second = poller.poll_activity_task(Duration::from_secs(10)).await.expect("poll");
    assert!(!second.task_token.is_empty(), "attempt 2 was not dispatched within the poll");
    assert_eq!(second.attempt, 2);
    // Attempt 2 times out too; maximum_attempts is reached and the workflow hears about it.
    let task = poller.poll_workflow_task(Duration::from_secs(10)).await.expect("poll");
    assert!(!task.task_token.is_empty(), "no workflow task after the final timeout");
    let history = common::full_history(&server.client, &workflow_id, &run_id).await;
    let timed_out =
        history.iter().find(|e| e.event_type == E::ActivityTaskTimedOut as i32).expect("ActivityTaskTimedOut");
    match timed_out.attributes.as_ref() {
        Some(history_pb::history_event::Attributes::ActivityTaskTimedOutEventAttributes(a)) => {
            assert_eq!(a.retry_state, enums_pb::RetryState::MaximumAttemptsReached as i32);
        }
        other => panic!("not ActivityTaskTimedOut attributes: {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn list_and_history_in_unknown_namespace_are_not_found() {
    let server = TestServer::ephemeral().await;
    let mut client = server.client.clone();
    let status = assert_code(
        client
            .list_workflow_executions(workflowservice_pb::ListWorkflowExecutionsRequest {
                namespace: "no-such-ns".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(failure_name(&status), "NamespaceNotFoundFailure");
    let status = assert_code(
        client
            .get_workflow_execution_history(workflowservice_pb::GetWorkflowExecutionHistoryRequest {
                namespace: "no-such-ns".into(),
                execution: Some(common_pb::WorkflowExecution { workflow_id: "wf".into(), run_id: String::new() }),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(failure_name(&status), "NamespaceNotFoundFailure");
    server.stop().await;
}
