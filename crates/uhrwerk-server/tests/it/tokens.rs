//! Task tokens: stale tokens are NOT_FOUND, garbage and empty tokens are INVALID_ARGUMENT.

use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;
use tonic::Code;

use crate::common::{self, NAMESPACE, TestServer, assert_code, failure_name, unique};

#[tokio::test]
async fn completing_a_workflow_task_twice_is_not_found() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    common::start_workflow(&server.client, &unique("wf"), "Twice", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity("a", &queue)])
        .await
        .expect("first completion");
    let status = assert_code(poller.complete_workflow_task(&task.task_token, vec![]).await, Code::NotFound);
    assert_eq!(failure_name(&status), "NotFoundFailure");
    // A failure report with the stale token is stale too.
    let status = assert_code(poller.fail_workflow_task(&task.task_token, "late").await, Code::NotFound);
    assert_eq!(failure_name(&status), "NotFoundFailure");
    server.stop().await;
}

#[tokio::test]
async fn completing_an_activity_twice_is_not_found() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    common::start_workflow(&server.client, &unique("wf"), "ActTwice", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller
        .complete_workflow_task(&task.task_token, vec![common::schedule_activity("a", &queue)])
        .await
        .expect("schedule");
    let activity = poller.expect_activity_task().await;
    poller.complete_activity_task(&activity.task_token, b"r").await.expect("first completion");
    let status = assert_code(poller.complete_activity_task(&activity.task_token, b"r").await, Code::NotFound);
    assert_eq!(failure_name(&status), "NotFoundFailure");
    let status = assert_code(poller.heartbeat(&activity.task_token, None).await, Code::NotFound);
    assert_eq!(failure_name(&status), "NotFoundFailure");
    let status = assert_code(
        poller.fail_activity_task(&activity.task_token, common::application_failure("late", false), None).await,
        Code::NotFound,
    );
    assert_eq!(failure_name(&status), "NotFoundFailure");
    server.stop().await;
}

#[tokio::test]
async fn garbage_token_is_invalid_argument() {
    let server = TestServer::ephemeral().await;
    let poller = server.poller(&unique("tq"));
    let garbage = b"\x01\x02 definitely not a task token".to_vec();
    for result in [
        poller.complete_workflow_task(&garbage, vec![]).await,
        poller.fail_workflow_task(&garbage, "x").await,
        poller.complete_activity_task(&garbage, b"r").await,
        poller.fail_activity_task(&garbage, common::application_failure("x", false), None).await,
        poller.heartbeat(&garbage, None).await.map(|_| ()),
    ] {
        let status = assert_code(result, Code::InvalidArgument);
        assert_eq!(status.message(), "Error deserializing task token.");
    }
    server.stop().await;
}

#[tokio::test]
async fn empty_token_is_invalid_argument() {
    let server = TestServer::ephemeral().await;
    let poller = server.poller(&unique("tq"));
    for result in [
        poller.complete_workflow_task(&[], vec![]).await,
        poller.fail_workflow_task(&[], "x").await,
        poller.complete_activity_task(&[], b"r").await,
        poller.heartbeat(&[], None).await.map(|_| ()),
    ] {
        assert_code(result, Code::InvalidArgument);
    }
    server.stop().await;
}

#[tokio::test]
async fn token_from_another_namespace_is_rejected() {
    let server = TestServer::ephemeral().await;
    let queue = unique("tq");
    common::start_workflow(&server.client, &unique("wf"), "Ns", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    let other = unique("ns");
    server
        .client
        .clone()
        .register_namespace(workflowservice_pb::RegisterNamespaceRequest {
            namespace: other.clone(),
            ..Default::default()
        })
        .await
        .expect("register");
    let mut foreign = server.poller(&queue);
    foreign.namespace = other;
    assert_code(foreign.complete_workflow_task(&task.task_token, vec![]).await, Code::InvalidArgument);
    // The right namespace still works: the rejected call changed nothing.
    let mut own = server.poller(&queue);
    own.namespace = NAMESPACE.into();
    own.complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"r")])
        .await
        .expect("complete in own namespace");
    server.stop().await;
}
