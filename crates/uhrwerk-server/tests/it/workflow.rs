//! A whole workflow driven by the raw poller: start, a workflow task that schedules an activity,
//! the activity, a second workflow task that completes the run, and the resulting history.

use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::history::v1 as history_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;

use crate::common::{self, NAMESPACE, TestServer, event_ids, event_types, unique};

use enums_pb::EventType as E;

#[tokio::test]
async fn workflow_with_one_activity_runs_to_completion() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "OneActivity", &queue).await;
    let poller = server.poller(&queue);

    // First workflow task: the full history up to WorkflowTaskStarted.
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.started_event_id, 3);
    assert_eq!(task.previous_started_event_id, 0);
    assert_eq!(task.attempt, 1);
    assert_eq!(task.workflow_type.as_ref().map(|t| t.name.as_str()), Some("OneActivity"));
    assert_eq!(
        task.workflow_execution,
        Some(common_pb::WorkflowExecution { workflow_id: workflow_id.clone(), run_id: run_id.clone() })
    );
    let events = task.history.clone().expect("history").events;
    assert_eq!(event_ids(&events), vec![1, 2, 3]);
    assert_eq!(
        event_types(&events),
        vec![E::WorkflowExecutionStarted, E::WorkflowTaskScheduled, E::WorkflowTaskStarted]
    );
    let execution_queue = task.workflow_execution_task_queue.clone().expect("workflow_execution_task_queue is set");
    assert_eq!(execution_queue.name, queue);
    assert_eq!(execution_queue.kind, enums_pb::TaskQueueKind::Normal as i32);
    match events[0].attributes.as_ref() {
        Some(history_pb::history_event::Attributes::WorkflowExecutionStartedEventAttributes(a)) => {
            assert_eq!(a.original_execution_run_id, run_id, "original_execution_run_id seeds the SDK's RNG");
            assert_eq!(a.first_execution_run_id, run_id);
            assert_eq!(a.attempt, 1);
        }
        other => panic!("event 1 is not WorkflowExecutionStarted: {other:?}"),
    }
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity("act-1", &queue)])
        .await
        .expect("complete WFT 1");

    // The activity.
    let activity = poller.expect_activity_task().await;
    assert_eq!(activity.activity_id, "act-1");
    assert_eq!(activity.attempt, 1);
    assert_eq!(activity.workflow_namespace, NAMESPACE);
    assert_eq!(activity.activity_type.as_ref().map(|t| t.name.as_str()), Some("Act"));
    assert_eq!(activity.input.as_ref().map(|p| p.payloads[0].data.clone()), Some(b"activity-input".to_vec()));
    poller.complete_activity_task(&activity.task_token, b"activity-result").await.expect("complete activity");

    // Second workflow task: sees the activity's outcome.
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.previous_started_event_id, 3);
    assert_eq!(task.started_event_id, 9);
    assert_eq!(task.attempt, 1);
    let events = task.history.clone().expect("history").events;
    assert_eq!(event_ids(&events), (1..=9).collect::<Vec<_>>(), "the poll carries the full history");
    poller
        .complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"done")])
        .await
        .expect("complete WFT 2");

    // The whole history.
    let events = common::full_history(&server.client, &workflow_id, &run_id).await;
    assert_eq!(event_ids(&events), (1..=11).collect::<Vec<_>>());
    assert_eq!(
        event_types(&events),
        vec![
            E::WorkflowExecutionStarted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::ActivityTaskScheduled,
            E::ActivityTaskStarted,
            E::ActivityTaskCompleted,
            E::WorkflowTaskScheduled,
            E::WorkflowTaskStarted,
            E::WorkflowTaskCompleted,
            E::WorkflowExecutionCompleted,
        ]
    );
    match events[6].attributes.as_ref() {
        Some(history_pb::history_event::Attributes::ActivityTaskCompletedEventAttributes(a)) => {
            assert_eq!((a.scheduled_event_id, a.started_event_id), (5, 6));
            assert_eq!(a.result.as_ref().map(|p| p.payloads[0].data.clone()), Some(b"activity-result".to_vec()));
        }
        other => panic!("event 7 is not ActivityTaskCompleted: {other:?}"),
    }
    assert!(events.iter().all(|e| e.event_time.is_some()), "every event has event_time");

    // CLOSE_EVENT: only the last event, and no token.
    let close = server
        .client
        .clone()
        .get_workflow_execution_history(workflowservice_pb::GetWorkflowExecutionHistoryRequest {
            namespace: NAMESPACE.into(),
            execution: Some(common_pb::WorkflowExecution { workflow_id: workflow_id.clone(), run_id: run_id.clone() }),
            history_event_filter_type: enums_pb::HistoryEventFilterType::CloseEvent as i32,
            ..Default::default()
        })
        .await
        .expect("close event")
        .into_inner();
    let close_events = close.history.expect("history").events;
    assert_eq!(event_ids(&close_events), vec![11]);
    assert_eq!(event_types(&close_events), vec![E::WorkflowExecutionCompleted]);
    assert!(close.next_page_token.is_empty());

    // ALL_EVENT on the closed run, in one page, ends with an empty token.
    let all = server
        .client
        .clone()
        .get_workflow_execution_history(workflowservice_pb::GetWorkflowExecutionHistoryRequest {
            namespace: NAMESPACE.into(),
            execution: Some(common_pb::WorkflowExecution { workflow_id: workflow_id.clone(), run_id: String::new() }),
            history_event_filter_type: enums_pb::HistoryEventFilterType::AllEvent as i32,
            ..Default::default()
        })
        .await
        .expect("all events")
        .into_inner();
    assert_eq!(all.history.expect("history").events.len(), 11);
    assert!(all.next_page_token.is_empty());

    let described = server
        .client
        .clone()
        .describe_workflow_execution(workflowservice_pb::DescribeWorkflowExecutionRequest {
            namespace: NAMESPACE.into(),
            execution: Some(common_pb::WorkflowExecution { workflow_id: workflow_id.clone(), run_id: String::new() }),
        })
        .await
        .expect("describe")
        .into_inner();
    let info = described.workflow_execution_info.expect("info");
    assert_eq!(info.status, enums_pb::WorkflowExecutionStatus::Completed as i32);
    assert_eq!(info.history_length, 11);
    server.stop().await;
}

#[tokio::test]
async fn history_pages_with_maximum_page_size() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "Paged", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller.complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"r")]).await.expect("complete");

    let mut ids = Vec::new();
    let mut token = Vec::new();
    let mut pages = 0;
    loop {
        let page = server
            .client
            .clone()
            .get_workflow_execution_history(workflowservice_pb::GetWorkflowExecutionHistoryRequest {
                namespace: NAMESPACE.into(),
                execution: Some(common_pb::WorkflowExecution {
                    workflow_id: workflow_id.clone(),
                    run_id: run_id.clone(),
                }),
                maximum_page_size: 2,
                next_page_token: token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        let events = page.history.expect("history").events;
        assert!(events.len() <= 2);
        ids.extend(event_ids(&events));
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(pages < 10, "paging does not terminate");
        token = page.next_page_token;
    }
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    server.stop().await;
}
