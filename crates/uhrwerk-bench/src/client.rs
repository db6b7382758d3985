//! A few gRPC connections to the server, handed out round-robin, and the retry rule for calls
//! that a busy server may refuse for a moment.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::transport::{Channel, Endpoint};

pub type Client = WorkflowServiceClient<Channel>;

/// Histories of long runs are large when a server sends them whole.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

pub struct Pool {
    clients: Vec<Client>,
    next: AtomicUsize,
}

impl Pool {
    /// Opens `connections` separate HTTP/2 connections to `address` (`host:port` or a URL; a
    /// comma-separated list spreads the connections over several servers, e.g. the nodes of a
    /// cluster, at least one each).
    pub async fn connect(address: &str, connections: usize) -> anyhow::Result<Pool> {
        let addresses: Vec<&str> = address.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
        let mut clients = Vec::new();
        for i in 0..connections.max(addresses.len()).max(1) {
            let address = addresses.get(i % addresses.len().max(1)).copied().unwrap_or(address);
            let uri = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
            let endpoint = Endpoint::from_shared(uri.clone())
                .with_context(|| format!("bad address {address}"))?
                .connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .http2_adaptive_window(true);
            let channel = endpoint.connect().await.with_context(|| format!("cannot connect to {address}"))?;
            clients.push(
                WorkflowServiceClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            );
        }
        Ok(Pool { clients, next: AtomicUsize::new(0) })
    }

    /// The next connection, round-robin.
    pub fn get(&self) -> Client {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        self.clients[i].clone()
    }
}

/// Whether a failed call is worth repeating: the server was busy or briefly unreachable.
pub fn transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::ResourceExhausted
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
    )
}

/// A request with a deadline.
pub fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}
