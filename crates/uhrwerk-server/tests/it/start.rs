//! StartWorkflowExecution: request-id idempotency, the FAIL and USE_EXISTING conflict policies.

use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::errordetails::v1 as errordetails_pb;
use tonic::Code;

use crate::common::{self, TestServer, assert_code, failure_detail, failure_name, unique};

#[tokio::test]
async fn same_request_id_returns_the_same_run() {
    let server = TestServer::ephemeral().await;
    let mut client = server.client.clone();
    let request = common::start_request(&unique("wf"), "Idem", &unique("tq"));
    let first = client.start_workflow_execution(request.clone()).await.expect("first start").into_inner();
    let second = client.start_workflow_execution(request.clone()).await.expect("retried start").into_inner();
    assert!(first.started && second.started, "a retried start answers as the first attempt did");
    assert_eq!(first.run_id, second.run_id);
    assert!(!first.run_id.is_empty());
    // As the real server: the response names the run's status and its chain's first run.
    assert_eq!(first.status, enums_pb::WorkflowExecutionStatus::Running as i32);
    assert_eq!(first.first_execution_run_id, first.run_id);
    server.stop().await;
}

#[tokio::test]
async fn different_request_id_on_running_workflow_is_already_started() {
    let server = TestServer::ephemeral().await;
    let mut client = server.client.clone();
    let workflow_id = unique("wf");
    let queue = unique("tq");
    let first_request = common::start_request(&workflow_id, "Dup", &queue);
    let first = client.start_workflow_execution(first_request.clone()).await.expect("first start").into_inner();

    let second_request = common::start_request(&workflow_id, "Dup", &queue);
    let status = assert_code(client.start_workflow_execution(second_request.clone()).await, Code::AlreadyExists);
    assert_eq!(failure_name(&status), "WorkflowExecutionAlreadyStartedFailure");
    let detail: errordetails_pb::WorkflowExecutionAlreadyStartedFailure = failure_detail(&status);
    assert_eq!(detail.run_id, first.run_id);
    assert_eq!(detail.start_request_id, first_request.request_id);

    // An explicit FAIL policy behaves the same.
    let mut explicit = common::start_request(&workflow_id, "Dup", &queue);
    explicit.workflow_id_conflict_policy = enums_pb::WorkflowIdConflictPolicy::Fail as i32;
    let status = assert_code(client.start_workflow_execution(explicit).await, Code::AlreadyExists);
    assert_eq!(failure_name(&status), "WorkflowExecutionAlreadyStartedFailure");

    // USE_EXISTING: the running run, not started by this call.
    let mut use_existing = common::start_request(&workflow_id, "Dup", &queue);
    use_existing.workflow_id_conflict_policy = enums_pb::WorkflowIdConflictPolicy::UseExisting as i32;
    let existing = client.start_workflow_execution(use_existing).await.expect("use existing").into_inner();
    assert!(!existing.started);
    assert_eq!(existing.run_id, first.run_id);
    assert_eq!(existing.status, enums_pb::WorkflowExecutionStatus::Running as i32);

    // Only one workflow task was scheduled: the run was not restarted.
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    assert_eq!(task.workflow_execution.map(|e| e.run_id), Some(first.run_id.clone()));
    assert_eq!(task.started_event_id, 3);
    let again = poller.poll_workflow_task(std::time::Duration::from_secs(2)).await.expect("second poll");
    assert_eq!(again, Default::default(), "no second workflow task");
    server.stop().await;
}

#[tokio::test]
async fn reject_duplicate_after_completion_is_already_started() {
    let server = TestServer::ephemeral().await;
    let mut client = server.client.clone();
    let workflow_id = unique("wf");
    let queue = unique("tq");
    let run_id = common::start_workflow(&server.client, &workflow_id, "Once", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller.complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"ok")]).await.expect("complete");

    let mut reject = common::start_request(&workflow_id, "Once", &queue);
    reject.workflow_id_reuse_policy = enums_pb::WorkflowIdReusePolicy::RejectDuplicate as i32;
    let status = assert_code(client.start_workflow_execution(reject).await, Code::AlreadyExists);
    assert_eq!(failure_name(&status), "WorkflowExecutionAlreadyStartedFailure");
    let detail: errordetails_pb::WorkflowExecutionAlreadyStartedFailure = failure_detail(&status);
    assert_eq!(detail.run_id, run_id);

    // The default policy (ALLOW_DUPLICATE) starts a new run.
    let allowed = client
        .start_workflow_execution(common::start_request(&workflow_id, "Once", &queue))
        .await
        .expect("start again")
        .into_inner();
    assert!(allowed.started);
    assert_ne!(allowed.run_id, run_id);
    server.stop().await;
}
