//! Bad input gets INVALID_ARGUMENT and never takes the server down.

use temporalio_protos::temporal::api::command::v1 as command_pb;
use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;
use tonic::Code;

use crate::common::{self, NAMESPACE, TestServer, assert_code, secs, unique};

async fn assert_alive(server: &TestServer) {
    server
        .client
        .clone()
        .get_system_info(workflowservice_pb::GetSystemInfoRequest {})
        .await
        .expect("the server still answers");
}

#[tokio::test]
async fn request_over_the_grpc_limit_is_refused_as_grpc_go_refuses_it() {
    let server = TestServer::ephemeral().await;
    let mut request = common::start_request(&unique("wf"), "Huge", &unique("tq"));
    request.input = Some(common::payloads(&vec![7u8; 5 << 20]));
    let status = assert_code(server.client.clone().start_workflow_execution(request).await, Code::ResourceExhausted);
    let message = status.message();
    assert!(message.starts_with("grpc: received message larger than max ("), "{message}");
    assert!(message.ends_with(" vs. 4194304)"), "{message}");
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_start_input_is_rejected() {
    let server = TestServer::ephemeral().await;
    let workflow_id = unique("wf");
    let mut request = common::start_request(&workflow_id, "Big", &unique("tq"));
    request.input = Some(common::payloads(&vec![7u8; 3 << 20]));
    let status = assert_code(server.client.clone().start_workflow_execution(request).await, Code::InvalidArgument);
    assert_eq!(status.message(), "Blob data size exceeds limit.");
    // Nothing was started.
    let status = assert_code(
        server
            .client
            .clone()
            .describe_workflow_execution(workflowservice_pb::DescribeWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                execution: Some(common_pb::WorkflowExecution { workflow_id, run_id: String::new() }),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(common::failure_name(&status), "NotFoundFailure");
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_start_requests_are_rejected() {
    let server = TestServer::ephemeral().await;
    let mut client = server.client.clone();
    let queue = unique("tq");
    let mut no_id = common::start_request("", "T", &queue);
    no_id.workflow_id.clear();
    assert_code(client.start_workflow_execution(no_id).await, Code::InvalidArgument);
    let long_id = common::start_request(&"x".repeat(1001), "T", &queue);
    assert_code(client.start_workflow_execution(long_id).await, Code::InvalidArgument);
    let mut no_type = common::start_request(&unique("wf"), "T", &queue);
    no_type.workflow_type = None;
    assert_code(client.start_workflow_execution(no_type).await, Code::InvalidArgument);
    let no_queue = common::start_request(&unique("wf"), "T", "");
    assert_code(client.start_workflow_execution(no_queue).await, Code::InvalidArgument);
    let mut negative = common::start_request(&unique("wf"), "T", &queue);
    negative.workflow_task_timeout = Some(secs(-1));
    assert_code(client.start_workflow_execution(negative).await, Code::InvalidArgument);
    let mut bad_retry = common::start_request(&unique("wf"), "T", &queue);
    bad_retry.retry_policy = Some(common_pb::RetryPolicy { backoff_coefficient: 0.5, ..Default::default() });
    assert_code(client.start_workflow_execution(bad_retry).await, Code::InvalidArgument);
    assert_code(server.poller("").poll_workflow_task(std::time::Duration::from_secs(2)).await, Code::InvalidArgument);
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_command_type_is_invalid_argument() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    common::start_workflow(&server.client, &workflow_id, "BadCommands", &queue).await;
    let poller = server.poller(&queue);

    for command_type in [9999, enums_pb::CommandType::Unspecified as i32] {
        let task = poller.expect_workflow_task().await;
        let command = command_pb::Command { command_type, attributes: None, ..Default::default() };
        let status =
            assert_code(poller.complete_workflow_task(&task.task_token, vec![command]).await, Code::InvalidArgument);
        assert!(!status.message().is_empty());
        assert_eq!(common::status(&server, &workflow_id).await, enums_pb::WorkflowExecutionStatus::Running as i32);
    }
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn command_type_must_match_its_attributes() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    common::start_workflow(&server.client, &workflow_id, "Mismatch", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    // A StartTimer command that carries CompleteWorkflowExecution attributes.
    let mut command = common::complete_workflow(b"sneaky");
    command.command_type = enums_pb::CommandType::StartTimer as i32;
    // Temporal dispatches on command_type and then finds the StartTimer attributes missing.
    // BUG: Uhrwerk dispatches on the attributes only (kernel::workflow_task::apply_command), so this
    // completes the workflow instead of failing the workflow task with INVALID_ARGUMENT.
    let result = poller.complete_workflow_task(&task.task_token, vec![command]).await;
    let running = common::status(&server, &workflow_id).await;
    assert_code(result, Code::InvalidArgument);
    assert_eq!(
        running,
        enums_pb::WorkflowExecutionStatus::Running as i32,
        "a mismatched command must not complete the run"
    );
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn garbage_list_queries_are_invalid_argument() {
    let server = TestServer::ephemeral().await;
    let mut client = server.client.clone();
    for query in [
        "WorkflowId = ",
        "((",
        "Foo = 'x'",
        "WorkflowId = 'a' AND",
        "ExecutionStatus = 'Sleeping'",
        "WorkflowId = 'unterminated",
    ] {
        let status = assert_code(
            client
                .list_workflow_executions(workflowservice_pb::ListWorkflowExecutionsRequest {
                    namespace: NAMESPACE.into(),
                    query: query.into(),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
        );
        assert!(status.message().starts_with("invalid query"), "{query:?}: {}", status.message());
        let status = assert_code(
            client
                .count_workflow_executions(workflowservice_pb::CountWorkflowExecutionsRequest {
                    namespace: NAMESPACE.into(),
                    query: query.into(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert!(status.message().starts_with("invalid query"), "{query:?}: {}", status.message());
    }
    let status = assert_code(
        client
            .list_workflow_executions(workflowservice_pb::ListWorkflowExecutionsRequest {
                namespace: NAMESPACE.into(),
                next_page_token: b"garbage".to_vec(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert!(!status.message().is_empty());
    assert_alive(&server).await;
    server.stop().await;
}
