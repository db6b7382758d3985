//! ListWorkflowExecutions and CountWorkflowExecutions: filters, paging, and random queries.

use std::collections::HashSet;

use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;

use crate::common::{self, NAMESPACE, TestServer, unique};

async fn count(server: &TestServer, query: &str) -> i64 {
    server
        .client
        .clone()
        .count_workflow_executions(workflowservice_pb::CountWorkflowExecutionsRequest {
            namespace: NAMESPACE.into(),
            query: query.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("count {query:?}: {e:?}"))
        .into_inner()
        .count
}

async fn list_page(
    server: &TestServer,
    query: &str,
    page_size: i32,
    token: Vec<u8>,
) -> workflowservice_pb::ListWorkflowExecutionsResponse {
    server
        .client
        .clone()
        .list_workflow_executions(workflowservice_pb::ListWorkflowExecutionsRequest {
            namespace: NAMESPACE.into(),
            page_size,
            next_page_token: token,
            query: query.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("list {query:?}: {e:?}"))
        .into_inner()
}

#[tokio::test]
async fn list_and_count_filter_by_type_and_status() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let poller = server.poller(&queue);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let workflow_id = unique("wf");
        let run_id = common::start_workflow(&server.client, &workflow_id, "X", &queue).await;
        runs.push((workflow_id, run_id));
    }
    common::start_workflow(&server.client, &unique("wf"), "Y", &queue).await;
    // Complete two of the X runs (the queue is FIFO, but do not rely on which ones).
    let mut completed = HashSet::new();
    while completed.len() < 2 {
        let task = poller.expect_workflow_task().await;
        if task.workflow_type.as_ref().map(|t| t.name.as_str()) == Some("X") {
            poller
                .complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"ok")])
                .await
                .expect("complete");
            completed.insert(task.workflow_execution.expect("execution").run_id);
        }
    }

    let query = "WorkflowType = 'X' AND ExecutionStatus = 'Completed'";
    assert_eq!(count(&server, query).await, 2);
    assert_eq!(count(&server, "WorkflowType = 'X'").await, 3);
    assert_eq!(count(&server, "WorkflowType = 'Y'").await, 1);
    assert_eq!(count(&server, "").await, 4);
    assert_eq!(count(&server, "ExecutionStatus = 'Running'").await, 2);

    let listed = list_page(&server, query, 0, Vec::new()).await;
    let got: HashSet<String> =
        listed.executions.iter().filter_map(|e| e.execution.as_ref().map(|x| x.run_id.clone())).collect();
    assert_eq!(got, completed);
    for info in &listed.executions {
        assert_eq!(info.status, enums_pb::WorkflowExecutionStatus::Completed as i32);
        assert_eq!(info.r#type.as_ref().map(|t| t.name.as_str()), Some("X"));
        assert!(info.close_time.is_some());
    }
    assert!(listed.next_page_token.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn paging_with_page_size_one_returns_every_run_once() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let mut expected = HashSet::new();
    for _ in 0..3 {
        let workflow_id = unique("wf");
        // Started back to back, so they likely share a start millisecond: paging must still
        // neither skip nor repeat.
        let run_id = common::start_workflow(&server.client, &workflow_id, "Paged", &queue).await;
        expected.insert(run_id);
    }
    let query = "WorkflowType = 'Paged'";
    let mut seen = Vec::new();
    let mut token = Vec::new();
    for _ in 0..10 {
        let page = list_page(&server, query, 1, token).await;
        assert!(page.executions.len() <= 1, "page_size 1 returned {}", page.executions.len());
        seen.extend(page.executions.iter().filter_map(|e| e.execution.as_ref().map(|x| x.run_id.clone())));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 3, "every run exactly once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), expected);
    server.stop().await;
}

/// A small deterministic generator (xorshift), so that a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Random token soups and random characters sent as list and count queries: every answer is
/// OK or INVALID_ARGUMENT, and the server keeps answering.
#[tokio::test]
async fn random_queries_get_answers_or_invalid_argument() {
    const TOKENS: &[&str] = &[
        "WorkflowId",
        "WorkflowType",
        "ExecutionStatus",
        "StartTime",
        "CloseTime",
        "HistoryLength",
        "ExecutionDuration",
        "CustomKeywordField",
        "`WorkflowId`",
        "Nope",
        "=",
        "!=",
        "<>",
        ">",
        ">=",
        "<",
        "<=",
        "AND",
        "OR",
        "NOT",
        "IN",
        "BETWEEN",
        "STARTS_WITH",
        "IS",
        "NULL",
        "ORDER",
        "BY",
        "GROUP",
        "ASC",
        "DESC",
        "LIKE",
        "LIMIT",
        "(",
        ")",
        ",",
        "'x'",
        "'Running'",
        "'2024-01-01T00:00:00Z'",
        "'1h'",
        "12",
        "-3",
        "1.5",
        "TRUE",
        "'",
        "\"",
        "`",
        "\\",
        "\u{0}",
        "é",
        "'\u{10FFFF}'",
    ];
    let server = TestServer::ephemeral().await;
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    for case in 0..400 {
        let query: String = if case % 4 == 3 {
            (0..rng.next() % 40).filter_map(|_| char::from_u32((rng.next() % 0x3000) as u32)).collect()
        } else {
            (0..rng.next() % 12).map(|_| rng.pick(TOKENS)).collect::<Vec<_>>().join(" ")
        };
        let listed = server
            .client
            .clone()
            .list_workflow_executions(workflowservice_pb::ListWorkflowExecutionsRequest {
                namespace: NAMESPACE.into(),
                page_size: 5,
                next_page_token: Vec::new(),
                query: query.clone(),
            })
            .await;
        if let Err(status) = &listed {
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "list {query:?}: {status:?}");
            assert!(status.message().starts_with("invalid query"), "list {query:?}: {}", status.message());
        }
        let counted = server
            .client
            .clone()
            .count_workflow_executions(workflowservice_pb::CountWorkflowExecutionsRequest {
                namespace: NAMESPACE.into(),
                query: query.clone(),
            })
            .await;
        assert_eq!(listed.is_ok(), counted.is_ok(), "list and count agree on {query:?}");
    }
    // Still serving.
    assert_eq!(count(&server, "").await, 0);
    server.stop().await;
}
