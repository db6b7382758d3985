//! GetWorkflowExecutionHistory long polls (`wait_new_event`) and the CLOSE_EVENT filter on a
//! running workflow.

use std::time::Duration;

use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;

use crate::common::{self, NAMESPACE, TestServer, event_ids, event_types, unique, with_deadline};

use enums_pb::EventType as E;

fn history_request(
    workflow_id: &str,
    filter: enums_pb::HistoryEventFilterType,
    wait_new_event: bool,
    next_page_token: Vec<u8>,
) -> workflowservice_pb::GetWorkflowExecutionHistoryRequest {
    workflowservice_pb::GetWorkflowExecutionHistoryRequest {
        namespace: NAMESPACE.into(),
        execution: Some(common_pb::WorkflowExecution { workflow_id: workflow_id.into(), run_id: String::new() }),
        wait_new_event,
        history_event_filter_type: filter as i32,
        next_page_token,
        ..Default::default()
    }
}

#[tokio::test]
async fn close_event_wait_on_running_workflow_times_out_with_token() {
    let server = TestServer::ephemeral().await;
    let workflow_id = unique("wf");
    common::start_workflow(&server.client, &workflow_id, "Running", &unique("tq")).await;
    let request = history_request(&workflow_id, enums_pb::HistoryEventFilterType::CloseEvent, true, Vec::new());
    let response = server
        .client
        .clone()
        .get_workflow_execution_history(with_deadline(request, Duration::from_secs(2)))
        .await
        .expect("a timed-out history long poll is a response, not an error")
        .into_inner();
    assert!(response.history.unwrap_or_default().events.is_empty());
    assert!(!response.next_page_token.is_empty(), "sdk-go requires a token when a long poll returns no events");

    // Without wait_new_event: no events and no token.
    let request = history_request(&workflow_id, enums_pb::HistoryEventFilterType::CloseEvent, false, Vec::new());
    let response =
        server.client.clone().get_workflow_execution_history(request).await.expect("close event, no wait").into_inner();
    assert!(response.history.unwrap_or_default().events.is_empty());
    assert!(response.next_page_token.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn close_event_wait_returns_the_close_event_when_the_run_completes() {
    let server = TestServer::ephemeral().await;
    let workflow_id = unique("wf");
    let queue = unique("tq");
    common::start_workflow(&server.client, &workflow_id, "Closing", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;

    let mut client = server.client.clone();
    let request = history_request(&workflow_id, enums_pb::HistoryEventFilterType::CloseEvent, true, Vec::new());
    let waiting = tokio::spawn(async move {
        client.get_workflow_execution_history(with_deadline(request, Duration::from_secs(15))).await
    });
    poller.complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"r")]).await.expect("complete");
    let response = waiting.await.expect("history task").expect("close-event long poll").into_inner();
    let events = response.history.unwrap_or_default().events;
    assert_eq!(event_types(&events), vec![E::WorkflowExecutionCompleted]);
    assert_eq!(event_ids(&events), vec![5]);
    assert!(response.next_page_token.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn all_event_wait_returns_current_events_then_blocks_for_new_ones() {
    let server = TestServer::ephemeral().await;
    let workflow_id = unique("wf");
    let queue = unique("tq");
    common::start_workflow(&server.client, &workflow_id, "Waiting", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;

    // Without a token: what exists, at once, with a token to continue.
    let request = history_request(&workflow_id, enums_pb::HistoryEventFilterType::AllEvent, true, Vec::new());
    let first = server
        .client
        .clone()
        .get_workflow_execution_history(with_deadline(request, Duration::from_secs(15)))
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(event_ids(&first.history.unwrap_or_default().events), vec![1, 2, 3]);
    assert!(!first.next_page_token.is_empty(), "a running workflow's long poll returns a token");
    let token = first.next_page_token;

    // With the token and nothing new: no events and a token, when the deadline nears.
    let request = history_request(&workflow_id, enums_pb::HistoryEventFilterType::AllEvent, true, token.clone());
    let idle = server
        .client
        .clone()
        .get_workflow_execution_history(with_deadline(request, Duration::from_secs(2)))
        .await
        .expect("an idle long poll is a response, not an error")
        .into_inner();
    assert!(idle.history.unwrap_or_default().events.is_empty());
    assert!(!idle.next_page_token.is_empty());

    // With the token: blocks until the workflow task completes, then returns the new events.
    let mut client = server.client.clone();
    let request = history_request(&workflow_id, enums_pb::HistoryEventFilterType::AllEvent, true, token);
    let waiting = tokio::spawn(async move {
        client.get_workflow_execution_history(with_deadline(request, Duration::from_secs(15))).await
    });
    poller.complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"r")]).await.expect("complete");
    let response = waiting.await.expect("history task").expect("long poll").into_inner();
    let events = response.history.unwrap_or_default().events;
    assert_eq!(event_ids(&events), vec![4, 5]);
    assert_eq!(event_types(&events), vec![E::WorkflowTaskCompleted, E::WorkflowExecutionCompleted]);
    assert!(response.next_page_token.is_empty(), "the run is closed and fully read");
    server.stop().await;
}

#[tokio::test]
async fn garbage_history_token_is_invalid_argument() {
    let server = TestServer::ephemeral().await;
    let workflow_id = unique("wf");
    common::start_workflow(&server.client, &workflow_id, "T", &unique("tq")).await;
    let request = history_request(&workflow_id, enums_pb::HistoryEventFilterType::AllEvent, false, b"garbage".to_vec());
    let status = common::assert_code(
        server.client.clone().get_workflow_execution_history(request).await,
        tonic::Code::InvalidArgument,
    );
    assert!(!status.message().is_empty());

    let status = common::assert_code(
        server
            .client
            .clone()
            .get_workflow_execution_history(history_request(
                "no-such-workflow",
                enums_pb::HistoryEventFilterType::AllEvent,
                false,
                Vec::new(),
            ))
            .await,
        tonic::Code::NotFound,
    );
    assert_eq!(common::failure_name(&status), "NotFoundFailure");
    server.stop().await;
}
