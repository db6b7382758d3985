//! The gRPC frontend: tonic services, request validation and defaulting, long-poll timing, and
//! the mapping of errors to statuses. Each RPC's work is done by its entry point in
//! `engine::api`; what the frontend answers itself comes from its registries (namespaces,
//! search attributes) and the scheduler.
//!
//! Invariant: only this module knows tonic (`Status`, metadata, transport).

pub mod cluster;
mod error;
mod gate;
mod multi_operation;
mod namespace;
mod operator;
mod schedule;
mod test_service;
mod validate;
mod workflow;

use std::sync::Arc;
use std::time::Duration;

use tonic::codec::CompressionEncoding;
use uhrwerk_proto::server::operatorservice::operator_service_server::OperatorServiceServer;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowServiceServer;

use crate::engine::Engine;
use crate::namespaces::Namespaces;
use crate::schedules::Scheduler;

pub use gate::Gate;

/// Largest request accepted: grpc-go's default, which Temporal's frontend keeps (a larger one is
/// refused at the transport with RESOURCE_EXHAUSTED, see `gate.rs`). Payloads are held to the
/// smaller blob limits before that.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;
/// Largest response sent (histories can be long); grpc-go's servers send without a limit.
pub const MAX_RESPONSE_BYTES: usize = 128 << 20;
/// Longest time a task poll is held open (Temporal's `matching.longPollExpirationInterval`).
const MAX_TASK_POLL: Duration = Duration::from_secs(60);
/// Longest time a history long poll is held open (`history.longPollExpirationInterval`).
const MAX_HISTORY_POLL: Duration = Duration::from_secs(20);

/// Shared state of all RPC handlers.
#[derive(Clone)]
pub struct Frontend {
    engine: Arc<Engine>,
    namespaces: Namespaces,
    schedules: Arc<Scheduler>,
    server_version: &'static str,
    /// Identifies this server's database in GetClusterInfo: the default namespace's id.
    cluster_id: String,
    /// API keys and their permissions, when authorization is on.
    auth: Option<Arc<crate::auth::Authorize>>,
}

impl Frontend {
    pub fn new(
        engine: Arc<Engine>,
        namespaces: Namespaces,
        schedules: Arc<Scheduler>,
        server_version: &'static str,
    ) -> Self {
        let cluster_id = namespaces
            .get(crate::namespaces::DEFAULT_NAMESPACE)
            .and_then(|ns| ns.namespace_info.map(|i| i.id))
            .unwrap_or_default();
        Self { engine, namespaces, schedules, server_version, cluster_id, auth: None }
    }

    /// Turns authorization on for in-process callers (the HTTP API) too.
    pub fn with_auth(mut self, auth: Option<Arc<crate::auth::Authorize>>) -> Self {
        self.auth = auth;
        self
    }

    /// The server's time (unix ms), for pages that show how long open work has run.
    pub fn now_ms(&self) -> i64 {
        self.engine.now_ms()
    }

    /// A task queue's last hour, minute by minute (backlog and schedule-to-start), from the
    /// matching that owns the queue (in a cluster, maybe another node's).
    pub async fn queue_last_hour(
        &self,
        namespace: &str,
        task_queue: &str,
        kind: uhrwerk_storage::TaskKind,
    ) -> Vec<crate::matching::Minute> {
        if let Some(cluster) = self.engine.cluster()
            && let crate::cluster::Owner::Node(node) = cluster.queue_owner(namespace, task_queue)
        {
            let req = uhrwerk_proto::cluster::QueueHourRequest {
                namespace: namespace.to_string(),
                task_queue: task_queue.to_string(),
                kind: kind as i32,
            };
            match cluster.peers.queue_hour(&node, req).await {
                Ok(hour) => return hour.minutes.into_iter().map(Into::into).collect(),
                Err(e) => tracing::debug!(%node, "cluster: no last hour from the queue's owner: {e}"),
            }
        }
        self.engine.matching().last_hour(namespace, task_queue, kind)
    }

    /// The limits in force.
    pub fn limits(&self) -> uhrwerk_core::config::Limits {
        self.engine.limits().clone()
    }

    pub fn workflow_service(&self) -> Gate<WorkflowServiceServer<Frontend>> {
        let server = WorkflowServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES);
        Gate::new(server, workflow::IMPLEMENTED, self.engine.metrics().clone())
    }

    /// In a cluster, after this node changed the namespaces or search attributes: every other
    /// node reads them again before the call is answered, so the next call through any node
    /// sees the change (a node that does not answer reads them at its next lease round).
    pub(crate) async fn registries_changed(&self) {
        let Some(cluster) = self.engine.cluster() else { return };
        let others: Vec<String> = cluster.members().into_iter().filter(|m| m != cluster.node()).collect();
        let calls = others.iter().map(|node| async move {
            if let Err(e) = cluster.peers.refresh(node).await {
                tracing::warn!(%node, "cluster: a node did not read the registries again: {e}");
            }
        });
        futures_util::future::join_all(calls).await;
    }

    /// The WorkflowService behind the cluster's routing (the same as `workflow_service` on a
    /// single server): for in-process callers (the HTTP API) whose calls must reach the node
    /// that serves them.
    pub fn routed_workflow_service(
        &self,
    ) -> crate::auth::layer::Auth<crate::cluster::route::Route<Gate<WorkflowServiceServer<Frontend>>>> {
        let layer =
            crate::cluster::route::RouteLayer::new(self.engine.cluster().cloned(), self.engine.shutdown_signal());
        let routed = tower_layer::Layer::layer(&layer, self.workflow_service());
        tower_layer::Layer::layer(&crate::auth::AuthLayer::new(self.auth.clone()), routed)
    }

    pub fn operator_service(&self) -> Gate<OperatorServiceServer<Frontend>> {
        let server = OperatorServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES);
        Gate::new(server, operator::IMPLEMENTED, self.engine.metrics().clone())
    }
}

impl Frontend {
    /// Temporal's TestService over `clock` (the test server only).
    pub fn test_service(
        &self,
        clock: crate::time_skipping::SkippingClock,
    ) -> Gate<uhrwerk_proto::server::testservice::test_service_server::TestServiceServer<test_service::TimeSkipping>>
    {
        Gate::new(test_service::TimeSkipping::server(clock), test_service::IMPLEMENTED, self.engine.metrics().clone())
    }
}

/// Checks and completes a start request as the StartWorkflowExecution RPC does; for starts
/// that other subsystems (schedules) make.
pub fn validate_start(
    limits: &uhrwerk_core::config::Limits,
    req: &mut uhrwerk_proto::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest,
) -> crate::error::Result<()> {
    validate::start(limits, req)
}

/// How long to hold a long poll: shortly before the client's deadline, at most `max`.
fn long_poll_wait<T>(request: &tonic::Request<T>, max: Duration) -> Duration {
    let client = request.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
    match client {
        Some(deadline) => {
            let margin = (deadline / 10).max(Duration::from_millis(500));
            deadline.saturating_sub(margin).min(max)
        }
        None => max,
    }
}

/// How long to hold an update call. With a long deadline, answer (with the stage reached)
/// shortly before it; with a short one (a caller's explicit RPC timeout), let the caller's own
/// deadline expire, as Temporal does, so that the SDK reports a timeout instead of re-polling.
fn update_wait<T>(request: &tonic::Request<T>) -> Duration {
    let client = request.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
    match client {
        Some(deadline) if deadline <= Duration::from_secs(10) => deadline + Duration::from_secs(1),
        _ => long_poll_wait(request, MAX_TASK_POLL),
    }
}

/// Parses the `grpc-timeout` header: an integer followed by a unit (H, M, S, m, u, n).
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header() {
        assert_eq!(parse_grpc_timeout("70S"), Some(Duration::from_secs(70)));
        assert_eq!(parse_grpc_timeout("69999m"), Some(Duration::from_millis(69999)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        let mut req = tonic::Request::new(());
        req.metadata_mut().insert("grpc-timeout", "70S".parse().expect("ascii"));
        assert_eq!(long_poll_wait(&req, MAX_TASK_POLL), MAX_TASK_POLL);
        let mut req = tonic::Request::new(());
        req.metadata_mut().insert("grpc-timeout", "10S".parse().expect("ascii"));
        assert_eq!(long_poll_wait(&req, MAX_TASK_POLL), Duration::from_secs(9));
    }
}
