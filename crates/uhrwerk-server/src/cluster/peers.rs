//! Clients of the other nodes' internal service, one lazily connected channel per node, and
//! the three internal calls with their errors mapped back to the server's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use uhrwerk_proto::cluster::cluster_client::ClusterClient;
use uhrwerk_proto::cluster::{
    AddTaskRequest, CarryOutRequest, CarryOutResponse, RefreshRequest, StartTaskRequest, StartTaskResponse,
};

use crate::error::{Error, Result};

/// How long an internal call may take at most (a poll's start is a transition and a history
/// read; a child start waits for its workflow id's lock).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Peers {
    channels: Mutex<HashMap<String, tonic::transport::Channel>>,
    /// TLS both ways to the other nodes, when the cluster has it.
    tls: Option<crate::tls::NodeTls>,
}

impl Peers {
    pub fn new(tls: Option<crate::tls::NodeTls>) -> Self {
        Self { channels: Mutex::new(HashMap::new()), tls }
    }

    /// A channel to `node` (`HOST:PORT`), connected on first use and reconnected by tonic.
    pub fn channel(&self, node: &str) -> Result<tonic::transport::Channel> {
        let mut channels = self.channels.lock().expect("peer channels lock");
        if let Some(channel) = channels.get(node) {
            return Ok(channel.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{node}"))
            .map_err(|e| Error::Internal(format!("bad node address {node}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            // A node that stops answering (paused, cut off) fails its calls within seconds,
            // rather than at the callers' deadlines.
            .http2_keep_alive_interval(Duration::from_secs(2))
            .keep_alive_timeout(Duration::from_secs(3));
        if let Some(tls) = &self.tls {
            let host = node.rsplit_once(':').map_or(node, |(host, _)| host);
            let config = tls.client(host).map_err(|e| Error::Unavailable(format!("TLS to node {node}: {e}")))?;
            endpoint = endpoint.tls_config(config).map_err(|e| Error::Internal(format!("TLS to node {node}: {e}")))?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(node.to_string(), channel.clone());
        Ok(channel)
    }

    fn client(&self, node: &str) -> Result<ClusterClient<tonic::transport::Channel>> {
        Ok(ClusterClient::new(self.channel(node)?)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX))
    }

    /// Hands a task over; false when it was `only_if_polled` and nobody polls there.
    pub async fn add_task(&self, node: &str, req: AddTaskRequest) -> Result<bool> {
        let mut client = self.client(node)?;
        Ok(client.add_task(request(req)).await.map_err(from_status)?.into_inner().accepted)
    }

    pub async fn start_task(&self, node: &str, req: StartTaskRequest) -> Result<StartTaskResponse> {
        let mut client = self.client(node)?;
        Ok(client.start_task(request(req)).await.map_err(from_status)?.into_inner())
    }

    pub async fn carry_out(&self, node: &str, req: CarryOutRequest) -> Result<CarryOutResponse> {
        let mut client = self.client(node)?;
        Ok(client.carry_out(request(req)).await.map_err(from_status)?.into_inner())
    }
}

impl Peers {
    /// Tells `node` to read the namespaces and search attributes again.
    pub async fn refresh(&self, node: &str) -> Result<()> {
        let mut client = self.client(node)?;
        let mut req = tonic::Request::new(RefreshRequest {});
        req.set_timeout(Duration::from_secs(5));
        client.refresh(req).await.map_err(from_status)?;
        Ok(())
    }

    /// A task queue's last hour from `node`, which owns it.
    pub async fn queue_hour(
        &self,
        node: &str,
        req: uhrwerk_proto::cluster::QueueHourRequest,
    ) -> Result<uhrwerk_proto::cluster::QueueHourResponse> {
        let mut client = self.client(node)?;
        Ok(client.queue_hour(request(req)).await.map_err(from_status)?.into_inner())
    }

    /// Tells `node` that a run its schedule started closed.
    pub async fn wake_schedule(&self, node: &str, namespace: &str, schedule_id: &str) -> Result<()> {
        let mut client = self.client(node)?;
        let message = uhrwerk_proto::cluster::WakeScheduleRequest {
            namespace: namespace.to_string(),
            schedule_id: schedule_id.to_string(),
        };
        client.wake_schedule(request(message)).await.map_err(from_status)?;
        Ok(())
    }

    /// Calls a WorkflowService method on `node` (its internal port serves the frontend too),
    /// marked as forwarded so that it is served there: for work this node starts on a workflow
    /// another node serves (a schedule's actions).
    pub async fn workflow_call<Req, Resp>(&self, node: &str, from: &str, method: &str, message: Req) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let path =
            http::uri::PathAndQuery::try_from(format!("/temporal.api.workflowservice.v1.WorkflowService/{method}"))
                .map_err(|e| Error::Internal(format!("bad method {method}: {e}")))?;
        let mut grpc = tonic::client::Grpc::new(self.channel(node)?);
        grpc.ready().await.map_err(|e| Error::Unavailable(format!("another node ({node}): {e}")))?;
        let mut req = request(message);
        if let Ok(from) = tonic::metadata::MetadataValue::try_from(from) {
            req.metadata_mut().insert(super::route::FORWARDED, from);
        }
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        Ok(grpc.unary(req, path, codec).await.map_err(from_status)?.into_inner())
    }
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(CALL_TIMEOUT);
    req
}

/// The server error an internal call's status stands for: what the caller acts on is whether
/// the run or task is gone (NOT_FOUND: skip it) or the call may pass later (everything else).
fn from_status(status: tonic::Status) -> Error {
    use prost::Message;
    use uhrwerk_proto::temporal::api::errordetails::v1::WorkflowExecutionAlreadyStartedFailure;
    match status.code() {
        tonic::Code::AlreadyExists => {
            // The details say which run holds the workflow id.
            let detail = uhrwerk_proto::google::rpc::Status::decode(status.details())
                .ok()
                .and_then(|s| s.details.into_iter().next())
                .and_then(|any| WorkflowExecutionAlreadyStartedFailure::decode(any.value.as_slice()).ok())
                .unwrap_or_default();
            Error::AlreadyStarted {
                message: status.message().to_string(),
                start_request_id: detail.start_request_id,
                run_id: detail.run_id,
            }
        }
        tonic::Code::NotFound => Error::NotFound(status.message().to_string()),
        tonic::Code::InvalidArgument => Error::InvalidArgument(status.message().to_string()),
        tonic::Code::FailedPrecondition => Error::FailedPrecondition(status.message().to_string()),
        _ => Error::Unavailable(format!("another node: {}", status.message())),
    }
}
