//! The test harness: a server on 127.0.0.1:0, a connected WorkflowService client, request
//! builders, and `TaskPoller`, a raw worker that polls and answers tasks by hand.

use std::net::SocketAddr;
use std::time::Duration;

use prost::Message;
use temporalio_protos::google::rpc as rpc_pb;
use temporalio_protos::temporal::api::command::v1 as command_pb;
use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::failure::v1 as failure_pb;
use temporalio_protos::temporal::api::history::v1 as history_pb;
use temporalio_protos::temporal::api::taskqueue::v1 as taskqueue_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use uhrwerk_proto::wkt;
use uhrwerk_server::Running;
use uhrwerk_server::clock::ManualClock;
use uhrwerk_server::config::{DynamicConfig, Persistence, ServerConfig};
use workflowservice_pb::workflow_service_client::WorkflowServiceClient;

pub type Client = WorkflowServiceClient<Channel>;

pub const NAMESPACE: &str = "default";
/// Deadline of polls that expect a task to be there (or to arrive soon).
pub const TASK_DEADLINE: Duration = Duration::from_secs(10);

/// Starts a server on a free port.
pub async fn start_server(persistence: Persistence) -> Running {
    let persistence = on_the_test_store(persistence).await;
    uhrwerk_server::start(test_config(persistence, &[])).await.expect("server starts")
}

/// With `UHRWERK_IT_DATABASE_URL` (a PostgreSQL server, as `./scripts/test` sets it for its
/// second run of these tests), the server runs on PostgreSQL instead: a throwaway database
/// becomes a fresh database there, and a SQLite file the database named after it, so that a
/// test that restarts its server on the same file finds its data again.
pub async fn on_the_test_store(persistence: Persistence) -> Persistence {
    let Ok(url) = std::env::var("UHRWERK_IT_DATABASE_URL") else { return persistence };
    let admin = uhrwerk_postgres::DatabaseUrl::parse(&url).expect("UHRWERK_IT_DATABASE_URL parses");
    let name = match &persistence {
        Persistence::Sqlite(path) => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            path.hash(&mut h);
            format!("uw_it_{:016x}", h.finish())
        }
        _ => format!("uw_it_{}", uuid::Uuid::new_v4().simple()),
    };
    let (client, connection) =
        admin.config().connect(tokio_postgres::NoTls).await.expect("connect to UHRWERK_IT_DATABASE_URL");
    tokio::spawn(connection);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.expect("query");
    if exists.is_none() {
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
    }
    Persistence::Postgres(Box::new(uhrwerk_postgres::PostgresOptions {
        url: admin.for_database(&name),
        pool_size: 4,
        migrate: true,
    }))
}

/// The configuration of a test server, with `KEY=JSON` dynamic config values.
pub fn test_config(persistence: Persistence, dynamic_config: &[&str]) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        persistence,
        namespaces: Vec::new(),
        dynamic_config: DynamicConfig::parse(dynamic_config.iter().copied()).expect("valid dynamic config"),
        search_attributes: Vec::new(),
        metrics_listen: Some("127.0.0.1:0".parse().expect("valid address")),
        metrics_best_effort: false,
        http_listen: None,
        ui_listen: None,
        cluster: None,
        tls: None,
        jwt: None,
        api_keys: None,
        time_skipping: None,
    }
}

pub async fn connect(addr: SocketAddr) -> Client {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("connect to the server");
    WorkflowServiceClient::new(channel).max_decoding_message_size(128 << 20).max_encoding_message_size(128 << 20)
}

pub async fn connect_channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).expect("valid uri").connect().await.expect("connect to the server")
}

/// A running server plus a client connected to it.
pub struct TestServer {
    pub running: Running,
    pub client: Client,
}

impl TestServer {
    pub async fn ephemeral() -> Self {
        Self::with(Persistence::Ephemeral).await
    }

    pub async fn with(persistence: Persistence) -> Self {
        let running = start_server(persistence).await;
        let client = connect(running.addr).await;
        Self { running, client }
    }

    /// A server whose workflow time is `clock` and with `dynamic_config` values.
    pub async fn with_clock(clock: std::sync::Arc<ManualClock>, dynamic_config: &[&str]) -> Self {
        let config = test_config(on_the_test_store(Persistence::Ephemeral).await, dynamic_config);
        let running = uhrwerk_server::start_with_clock(config, clock).await.expect("server starts");
        let client = connect(running.addr).await;
        Self { running, client }
    }

    pub fn poller(&self, task_queue: &str) -> TaskPoller {
        TaskPoller::new(&self.client, task_queue)
    }

    pub async fn stop(self) {
        drop(self.client);
        self.running.shutdown().await.expect("clean shutdown");
    }
}

/// A unique name, so that tests never share workflow ids or task queues.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

pub fn secs(seconds: i64) -> wkt::Duration {
    wkt::Duration { seconds, nanos: 0 }
}

pub fn millis(ms: i64) -> wkt::Duration {
    wkt::Duration { seconds: ms / 1000, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

pub fn task_queue(name: &str) -> taskqueue_pb::TaskQueue {
    taskqueue_pb::TaskQueue {
        name: name.to_string(),
        kind: enums_pb::TaskQueueKind::Normal as i32,
        ..Default::default()
    }
}

pub fn payloads(data: &[u8]) -> common_pb::Payloads {
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("encoding".to_string(), b"binary/plain".to_vec());
    common_pb::Payloads { payloads: vec![common_pb::Payload { metadata, data: data.to_vec(), ..Default::default() }] }
}

pub fn with_deadline<T>(message: T, deadline: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(deadline);
    request
}

pub fn start_request(
    workflow_id: &str,
    workflow_type: &str,
    queue: &str,
) -> workflowservice_pb::StartWorkflowExecutionRequest {
    workflowservice_pb::StartWorkflowExecutionRequest {
        namespace: NAMESPACE.into(),
        workflow_id: workflow_id.into(),
        workflow_type: Some(common_pb::WorkflowType { name: workflow_type.into() }),
        task_queue: Some(task_queue(queue)),
        input: Some(payloads(b"input")),
        identity: "it-client".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

/// Starts a workflow and returns its run id.
pub async fn start_workflow(client: &Client, workflow_id: &str, workflow_type: &str, queue: &str) -> String {
    let response = client
        .clone()
        .start_workflow_execution(start_request(workflow_id, workflow_type, queue))
        .await
        .expect("start workflow");
    assert!(response.get_ref().started);
    response.into_inner().run_id
}

pub fn schedule_activity(activity_id: &str, queue: &str) -> command_pb::Command {
    schedule_activity_with(activity_id, queue, None)
}

pub fn schedule_activity_with(
    activity_id: &str,
    queue: &str,
    retry_policy: Option<common_pb::RetryPolicy>,
) -> command_pb::Command {
    command_pb::Command {
        command_type: enums_pb::CommandType::ScheduleActivityTask as i32,
        attributes: Some(command_pb::command::Attributes::ScheduleActivityTaskCommandAttributes(
            command_pb::ScheduleActivityTaskCommandAttributes {
                activity_id: activity_id.into(),
                activity_type: Some(common_pb::ActivityType { name: "Act".into() }),
                task_queue: Some(task_queue(queue)),
                input: Some(payloads(b"activity-input")),
                start_to_close_timeout: Some(secs(30)),
                retry_policy,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

pub fn complete_workflow(result: &[u8]) -> command_pb::Command {
    command_pb::Command {
        command_type: enums_pb::CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(command_pb::command::Attributes::CompleteWorkflowExecutionCommandAttributes(
            command_pb::CompleteWorkflowExecutionCommandAttributes { result: Some(payloads(result)) },
        )),
        ..Default::default()
    }
}

pub fn application_failure(message: &str, non_retryable: bool) -> failure_pb::Failure {
    failure_pb::Failure {
        message: message.into(),
        source: "it".into(),
        failure_info: Some(failure_pb::failure::FailureInfo::ApplicationFailureInfo(
            failure_pb::ApplicationFailureInfo { r#type: "ItError".into(), non_retryable, ..Default::default() },
        )),
        ..Default::default()
    }
}

/// The short name of the Temporal failure in `details[0]` of a status, e.g. `NotFoundFailure`.
pub fn failure_name(status: &Status) -> String {
    let decoded =
        rpc_pb::Status::decode(status.details()).expect("grpc-status-details-bin decodes as google.rpc.Status");
    assert_eq!(decoded.code, status.code() as i32, "details code matches grpc-status");
    assert_eq!(decoded.message, status.message(), "details message matches grpc-message");
    let first = decoded.details.first().expect("details[0] is present");
    assert!(first.type_url.starts_with("type.googleapis.com/temporal.api.errordetails.v1."), "{}", first.type_url);
    first.type_url.rsplit('.').next().unwrap_or_default().to_string()
}

/// The Temporal failure in `details[0]`, decoded as `T`.
pub fn failure_detail<T: Message + Default>(status: &Status) -> T {
    let decoded = rpc_pb::Status::decode(status.details()).expect("details decode");
    T::decode(decoded.details[0].value.as_slice()).expect("failure detail decodes")
}

pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
        Ok(value) => panic!("expected {code:?}, got a response: {value:?}"),
    }
}

pub fn event_types(events: &[history_pb::HistoryEvent]) -> Vec<enums_pb::EventType> {
    events.iter().map(|e| enums_pb::EventType::try_from(e.event_type).expect("known event type")).collect()
}

pub fn event_ids(events: &[history_pb::HistoryEvent]) -> Vec<i64> {
    events.iter().map(|e| e.event_id).collect()
}

/// Reads the whole history of a run (following page tokens).
pub async fn full_history(client: &Client, workflow_id: &str, run_id: &str) -> Vec<history_pb::HistoryEvent> {
    let mut events = Vec::new();
    let mut token = Vec::new();
    loop {
        let response = client
            .clone()
            .get_workflow_execution_history(workflowservice_pb::GetWorkflowExecutionHistoryRequest {
                namespace: NAMESPACE.into(),
                execution: Some(common_pb::WorkflowExecution {
                    workflow_id: workflow_id.into(),
                    run_id: run_id.into(),
                }),
                next_page_token: token,
                ..Default::default()
            })
            .await
            .expect("get history")
            .into_inner();
        events.extend(response.history.unwrap_or_default().events);
        if response.next_page_token.is_empty() {
            return events;
        }
        token = response.next_page_token;
    }
}

/// Plays the worker role with raw RPCs.
pub struct TaskPoller {
    client: Client,
    pub namespace: String,
    pub task_queue: String,
    pub identity: String,
}

impl TaskPoller {
    pub fn new(client: &Client, task_queue: &str) -> Self {
        Self {
            client: client.clone(),
            namespace: NAMESPACE.into(),
            task_queue: task_queue.into(),
            identity: "it-worker".into(),
        }
    }

    pub async fn poll_workflow_task(
        &self,
        deadline: Duration,
    ) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse, Status> {
        let request = workflowservice_pb::PollWorkflowTaskQueueRequest {
            namespace: self.namespace.clone(),
            task_queue: Some(task_queue(&self.task_queue)),
            identity: self.identity.clone(),
            ..Default::default()
        };
        self.client
            .clone()
            .poll_workflow_task_queue(with_deadline(request, deadline))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Polls a workflow task that must be there (or arrive within the poll).
    pub async fn expect_workflow_task(&self) -> workflowservice_pb::PollWorkflowTaskQueueResponse {
        let task = self.poll_workflow_task(TASK_DEADLINE).await.expect("workflow task poll succeeds");
        assert!(
            !task.task_token.is_empty(),
            "expected a workflow task on {}, the poll came back empty",
            self.task_queue
        );
        task
    }

    pub async fn poll_activity_task(
        &self,
        deadline: Duration,
    ) -> Result<workflowservice_pb::PollActivityTaskQueueResponse, Status> {
        let request = workflowservice_pb::PollActivityTaskQueueRequest {
            namespace: self.namespace.clone(),
            task_queue: Some(task_queue(&self.task_queue)),
            identity: self.identity.clone(),
            ..Default::default()
        };
        self.client
            .clone()
            .poll_activity_task_queue(with_deadline(request, deadline))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn expect_activity_task(&self) -> workflowservice_pb::PollActivityTaskQueueResponse {
        let task = self.poll_activity_task(TASK_DEADLINE).await.expect("activity task poll succeeds");
        assert!(
            !task.task_token.is_empty(),
            "expected an activity task on {}, the poll came back empty",
            self.task_queue
        );
        task
    }

    pub async fn complete_workflow_task(
        &self,
        task_token: &[u8],
        commands: Vec<command_pb::Command>,
    ) -> Result<(), Status> {
        let request = workflowservice_pb::RespondWorkflowTaskCompletedRequest {
            namespace: self.namespace.clone(),
            task_token: task_token.to_vec(),
            commands,
            identity: self.identity.clone(),
            ..Default::default()
        };
        self.client.clone().respond_workflow_task_completed(request).await.map(|_| ())
    }

    pub async fn fail_workflow_task(&self, task_token: &[u8], message: &str) -> Result<(), Status> {
        let request = workflowservice_pb::RespondWorkflowTaskFailedRequest {
            namespace: self.namespace.clone(),
            task_token: task_token.to_vec(),
            cause: enums_pb::WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure as i32,
            failure: Some(application_failure(message, false)),
            identity: self.identity.clone(),
            ..Default::default()
        };
        self.client.clone().respond_workflow_task_failed(request).await.map(|_| ())
    }

    pub async fn complete_activity_task(&self, task_token: &[u8], result: &[u8]) -> Result<(), Status> {
        let request = workflowservice_pb::RespondActivityTaskCompletedRequest {
            namespace: self.namespace.clone(),
            task_token: task_token.to_vec(),
            result: Some(payloads(result)),
            identity: self.identity.clone(),
            ..Default::default()
        };
        self.client.clone().respond_activity_task_completed(request).await.map(|_| ())
    }

    pub async fn fail_activity_task(
        &self,
        task_token: &[u8],
        failure: failure_pb::Failure,
        last_heartbeat_details: Option<common_pb::Payloads>,
    ) -> Result<(), Status> {
        let request = workflowservice_pb::RespondActivityTaskFailedRequest {
            namespace: self.namespace.clone(),
            task_token: task_token.to_vec(),
            failure: Some(failure),
            identity: self.identity.clone(),
            last_heartbeat_details,
            ..Default::default()
        };
        self.client.clone().respond_activity_task_failed(request).await.map(|_| ())
    }

    pub async fn heartbeat(
        &self,
        task_token: &[u8],
        details: Option<common_pb::Payloads>,
    ) -> Result<workflowservice_pb::RecordActivityTaskHeartbeatResponse, Status> {
        let request = workflowservice_pb::RecordActivityTaskHeartbeatRequest {
            namespace: self.namespace.clone(),
            task_token: task_token.to_vec(),
            details,
            identity: self.identity.clone(),
            ..Default::default()
        };
        self.client.clone().record_activity_task_heartbeat(request).await.map(tonic::Response::into_inner)
    }
}

/// DescribeWorkflowExecution of the workflow id's current run.
pub async fn describe(server: &TestServer, workflow_id: &str) -> workflowservice_pb::DescribeWorkflowExecutionResponse {
    server
        .client
        .clone()
        .describe_workflow_execution(workflowservice_pb::DescribeWorkflowExecutionRequest {
            namespace: NAMESPACE.into(),
            execution: Some(common_pb::WorkflowExecution { workflow_id: workflow_id.into(), run_id: String::new() }),
        })
        .await
        .expect("describe")
        .into_inner()
}

/// The `WorkflowExecutionStatus` of the workflow id's current run.
pub async fn status(server: &TestServer, workflow_id: &str) -> i32 {
    describe(server, workflow_id).await.workflow_execution_info.expect("info").status
}
