//! Retries through the wire: workflow task failure and start-to-close timeout (attempt 2), and
//! an activity retried after RespondActivityTaskFailed with its heartbeat details.

use std::time::Duration;

use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::history::v1 as history_pb;

use crate::common::{self, TestServer, event_types, millis, secs, unique};

use enums_pb::EventType as E;

#[tokio::test]
async fn failed_workflow_task_is_retried_with_attempt_two() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "Flaky", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.attempt, 1);
    poller.fail_workflow_task(&task.task_token, "workflow code panicked").await.expect("RespondWorkflowTaskFailed");

    let retry = poller.expect_workflow_task().await;
    assert_eq!(retry.attempt, 2);
    assert_eq!(retry.previous_started_event_id, 0, "no workflow task has completed yet");
    let events = retry.history.clone().expect("history").events;
    assert!(event_types(&events).contains(&E::WorkflowTaskFailed), "{:?}", event_types(&events));
    assert_eq!(events.last().map(|e| e.event_id), Some(retry.started_event_id));
    poller
        .complete_workflow_task(&retry.task_token, vec![common::complete_workflow(b"ok")])
        .await
        .expect("complete attempt 2");

    let history = common::full_history(&server.client, &workflow_id, &run_id).await;
    let failed =
        history.iter().find(|e| e.event_type == E::WorkflowTaskFailed as i32).expect("WorkflowTaskFailed in history");
    match failed.attributes.as_ref() {
        Some(history_pb::history_event::Attributes::WorkflowTaskFailedEventAttributes(a)) => {
            assert_eq!((a.scheduled_event_id, a.started_event_id), (2, 3));
            assert_eq!(a.cause, enums_pb::WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure as i32);
            assert_eq!(a.failure.as_ref().map(|f| f.message.as_str()), Some("workflow code panicked"));
        }
        other => panic!("not WorkflowTaskFailed attributes: {other:?}"),
    }
    assert_eq!(event_types(&history).last(), Some(&E::WorkflowExecutionCompleted));
    server.stop().await;
}

#[tokio::test]
async fn timed_out_workflow_task_is_retried_with_attempt_two() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let mut request = common::start_request(&workflow_id, "Slow", &queue);
    request.workflow_task_timeout = Some(secs(1));
    let run_id = server.client.clone().start_workflow_execution(request).await.expect("start").into_inner().run_id;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.attempt, 1);
    // The worker never answers; the server's start-to-close timer reschedules the task.
    let retry = poller.poll_workflow_task(Duration::from_secs(10)).await.expect("poll after the timeout");
    assert!(!retry.task_token.is_empty(), "the timed-out workflow task was not rescheduled within the poll");
    assert_eq!(retry.attempt, 2);
    let events = retry.history.clone().expect("history").events;
    assert!(event_types(&events).contains(&E::WorkflowTaskTimedOut), "{:?}", event_types(&events));

    // The late answer from attempt 1 is stale.
    common::assert_code(poller.complete_workflow_task(&task.task_token, vec![]).await, tonic::Code::NotFound);
    poller
        .complete_workflow_task(&retry.task_token, vec![common::complete_workflow(b"ok")])
        .await
        .expect("complete attempt 2");
    let history = common::full_history(&server.client, &workflow_id, &run_id).await;
    let timed_out =
        history.iter().find(|e| e.event_type == E::WorkflowTaskTimedOut as i32).expect("WorkflowTaskTimedOut");
    match timed_out.attributes.as_ref() {
        Some(history_pb::history_event::Attributes::WorkflowTaskTimedOutEventAttributes(a)) => {
            assert_eq!((a.scheduled_event_id, a.started_event_id), (2, 3));
            assert_eq!(a.timeout_type, enums_pb::TimeoutType::StartToClose as i32);
        }
        other => panic!("not WorkflowTaskTimedOut attributes: {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn failed_activity_is_retried_with_heartbeat_details() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "Retrying", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    let policy = common_pb::RetryPolicy {
        initial_interval: Some(millis(100)),
        backoff_coefficient: 1.0,
        maximum_interval: Some(millis(100)),
        maximum_attempts: 5,
        non_retryable_error_types: Vec::new(),
    };
    poller
        .complete_workflow_task(
            &task.task_token,
            vec![common::schedule_activity_with("retry-me", &queue, Some(policy))],
        )
        .await
        .expect("schedule activity");

    let first = poller.expect_activity_task().await;
    assert_eq!(first.attempt, 1);
    assert!(first.heartbeat_details.is_none());
    let heartbeat =
        poller.heartbeat(&first.task_token, Some(common::payloads(b"progress-1"))).await.expect("heartbeat");
    assert!(!heartbeat.cancel_requested);
    poller
        .fail_activity_task(
            &first.task_token,
            common::application_failure("try again", false),
            Some(common::payloads(b"progress-2")),
        )
        .await
        .expect("RespondActivityTaskFailed");

    let second = poller.expect_activity_task().await;
    assert_eq!(second.attempt, 2);
    assert_eq!(second.activity_id, "retry-me");
    assert_eq!(
        second.heartbeat_details.as_ref().map(|p| p.payloads[0].data.clone()),
        Some(b"progress-2".to_vec()),
        "the failure's last_heartbeat_details reach the next attempt"
    );
    // The old attempt's token is stale now.
    common::assert_code(poller.complete_activity_task(&first.task_token, b"late").await, tonic::Code::NotFound);
    poller.complete_activity_task(&second.task_token, b"ok").await.expect("complete attempt 2");

    let task = poller.expect_workflow_task().await;
    poller.complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"done")]).await.expect("complete");
    let history = common::full_history(&server.client, &workflow_id, &run_id).await;
    // Retries write no events; the final attempt's Started carries attempt and last failure.
    let started = history.iter().find(|e| e.event_type == E::ActivityTaskStarted as i32).expect("ActivityTaskStarted");
    match started.attributes.as_ref() {
        Some(history_pb::history_event::Attributes::ActivityTaskStartedEventAttributes(a)) => {
            assert_eq!(a.attempt, 2);
            assert_eq!(a.last_failure.as_ref().map(|f| f.message.as_str()), Some("try again"));
        }
        other => panic!("not ActivityTaskStarted attributes: {other:?}"),
    }
    assert_eq!(history.iter().filter(|e| e.event_type == E::ActivityTaskStarted as i32).count(), 1);
    assert!(!event_types(&history).contains(&E::ActivityTaskFailed));
    server.stop().await;
}

#[tokio::test]
async fn non_retryable_activity_failure_reaches_the_workflow() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    common::start_workflow(&server.client, &unique("wf"), "Failing", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity("fatal", &queue)])
        .await
        .expect("schedule");
    let activity = poller.expect_activity_task().await;
    poller
        .fail_activity_task(&activity.task_token, common::application_failure("fatal", true), None)
        .await
        .expect("fail");
    let task = poller.expect_workflow_task().await;
    let events = task.history.expect("history").events;
    let types = event_types(&events);
    assert_eq!(
        &types[types.len() - 4..],
        &[E::ActivityTaskStarted, E::ActivityTaskFailed, E::WorkflowTaskScheduled, E::WorkflowTaskStarted]
    );
    match events[events.len() - 3].attributes.as_ref() {
        Some(history_pb::history_event::Attributes::ActivityTaskFailedEventAttributes(a)) => {
            assert_eq!(a.retry_state, enums_pb::RetryState::NonRetryableFailure as i32);
            assert_eq!(a.failure.as_ref().map(|f| f.message.as_str()), Some("fatal"));
        }
        other => panic!("not ActivityTaskFailed attributes: {other:?}"),
    }
    server.stop().await;
}
