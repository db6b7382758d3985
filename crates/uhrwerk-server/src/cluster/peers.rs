//! Clients of the other nodes' internal service, one lazily connected channel per node, and
//! the three internal calls with their errors mapped back to the server's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use uhrwerk_proto::cluster::cluster_client::ClusterClient;
use uhrwerk_proto::cluster::{AddTaskRequest, CarryOutRequest, CarryOutResponse, StartTaskRequest, StartTaskResponse};

use crate::error::{Error, Result};

/// How long an internal call may take at most (a poll's start is a transition and a history
/// read; a child start waits for its workflow id's lock).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Peers {
    channels: Mutex<HashMap<String, tonic::transport::Channel>>,
}

impl Peers {
    /// A channel to `node` (`HOST:PORT`), connected on first use and reconnected by tonic.
    pub fn channel(&self, node: &str) -> Result<tonic::transport::Channel> {
        let mut channels = self.channels.lock().expect("peer channels lock");
        if let Some(channel) = channels.get(node) {
            return Ok(channel.clone());
        }
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{node}"))
            .map_err(|e| Error::Internal(format!("bad node address {node}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let channel = endpoint.connect_lazy();
        channels.insert(node.to_string(), channel.clone());
        Ok(channel)
    }

    fn client(&self, node: &str) -> Result<ClusterClient<tonic::transport::Channel>> {
        Ok(ClusterClient::new(self.channel(node)?)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX))
    }

    pub async fn add_task(&self, node: &str, req: AddTaskRequest) -> Result<()> {
        let mut client = self.client(node)?;
        client.add_task(request(req)).await.map_err(from_status)?;
        Ok(())
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

fn request<T>(message: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.set_timeout(CALL_TIMEOUT);
    req
}

/// The server error an internal call's status stands for: what the caller acts on is whether
/// the run or task is gone (NOT_FOUND: skip it) or the call may pass later (everything else).
fn from_status(status: tonic::Status) -> Error {
    match status.code() {
        tonic::Code::NotFound => Error::NotFound(status.message().to_string()),
        tonic::Code::InvalidArgument => Error::InvalidArgument(status.message().to_string()),
        tonic::Code::FailedPrecondition => Error::FailedPrecondition(status.message().to_string()),
        _ => Error::Unavailable(format!("another node: {}", status.message())),
    }
}
