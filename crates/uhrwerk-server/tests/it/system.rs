//! Connection-level behaviour: GetSystemInfo, gzip, gRPC health, UNIMPLEMENTED naming the method.

use temporalio_protos::grpc::health::v1 as health_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use workflowservice_pb::workflow_service_client::WorkflowServiceClient;

use crate::common::{self, NAMESPACE, TestServer, assert_code, unique};

#[tokio::test]
async fn get_system_info_advertises_capabilities() {
    let server = TestServer::ephemeral().await;
    let info = server
        .client
        .clone()
        .get_system_info(workflowservice_pb::GetSystemInfoRequest {})
        .await
        .expect("GetSystemInfo")
        .into_inner();
    // A semantic version SDKs and user interfaces can compare: the Temporal release Uhrwerk matches.
    let parts: Vec<&str> = info.server_version.split('.').collect();
    assert_eq!(parts.len(), 3, "{}", info.server_version);
    assert!(parts.iter().all(|p| p.parse::<u32>().is_ok()), "{}", info.server_version);
    let caps = info.capabilities.expect("capabilities are set");
    assert!(caps.sdk_metadata, "sdk_metadata");
    assert!(caps.signal_and_query_header, "signal_and_query_header");
    assert!(caps.internal_error_differentiation, "internal_error_differentiation");
    assert!(caps.activity_failure_include_heartbeat, "activity_failure_include_heartbeat");
    // As the dev server, so that SDK workers send their build ids (recorded on workflow tasks).
    assert!(caps.build_id_based_versioning, "build_id_based_versioning");
    assert!(caps.supports_schedules, "supports_schedules");
    assert!(caps.count_group_by_execution_status, "count_group_by_execution_status");
    server.stop().await;
}

#[tokio::test]
async fn gzip_compressed_client_works() {
    let server = TestServer::ephemeral().await;
    let channel = common::connect_channel(server.running.addr).await;
    let mut gzip = WorkflowServiceClient::new(channel)
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let info = gzip
        .get_system_info(workflowservice_pb::GetSystemInfoRequest {})
        .await
        .expect("GetSystemInfo over gzip")
        .into_inner();
    assert!(info.capabilities.is_some_and(|c| c.sdk_metadata));

    // A request with a compressible payload round-trips too.
    let queue = unique("tq");
    let mut request = common::start_request(&unique("wf"), "Gzip", &queue);
    request.input = Some(common::payloads(&vec![b'a'; 64 * 1024]));
    let started = gzip.start_workflow_execution(request).await.expect("start over gzip").into_inner();
    assert!(started.started);
    let task = server.poller(&queue).expect_workflow_task().await;
    let history = task.history.expect("history");
    let input = match history.events[0].attributes.as_ref() {
        Some(temporalio_protos::temporal::api::history::v1::history_event::Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input.clone(),
        other => panic!("event 1 is not WorkflowExecutionStarted: {other:?}"),
    };
    assert_eq!(input.expect("input").payloads[0].data.len(), 64 * 1024);
    server.stop().await;
}

#[tokio::test]
async fn health_check_answers_serving() {
    let server = TestServer::ephemeral().await;
    let channel = common::connect_channel(server.running.addr).await;
    let mut health = health_pb::health_client::HealthClient::new(channel);
    for service in ["", "temporal.api.workflowservice.v1.WorkflowService"] {
        let response = health
            .check(health_pb::HealthCheckRequest { service: service.into() })
            .await
            .unwrap_or_else(|e| panic!("health check of {service:?} failed: {e:?}"))
            .into_inner();
        assert_eq!(
            response.status,
            health_pb::health_check_response::ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn unimplemented_rpc_names_the_method() {
    let server = TestServer::ephemeral().await;
    let mut client = server.client.clone();
    let status = assert_code(
        client
            .list_batch_operations(workflowservice_pb::ListBatchOperationsRequest {
                namespace: NAMESPACE.into(),
                ..Default::default()
            })
            .await,
        Code::Unimplemented,
    );
    assert!(status.message().contains("ListBatchOperations"), "message: {}", status.message());

    let status = assert_code(
        client
            .start_batch_operation(workflowservice_pb::StartBatchOperationRequest {
                namespace: NAMESPACE.into(),
                ..Default::default()
            })
            .await,
        Code::Unimplemented,
    );
    assert!(status.message().contains("StartBatchOperation"), "message: {}", status.message());

    // The server is still fine afterwards.
    client
        .get_system_info(workflowservice_pb::GetSystemInfoRequest {})
        .await
        .expect("GetSystemInfo after UNIMPLEMENTED");
    server.stop().await;
}
