//! Socket and HTTP/2 settings of every listener the server accepts connections on (the gRPC
//! frontend and the HTTP endpoints), chosen here once so that no listener is forgotten.
//!
//! Invariant: every accepted connection has `TCP_NODELAY` set. Task hand-offs are small
//! request/response pairs; with Nagle's algorithm on, each one waits for the peer's delayed ACK
//! (about 40 ms on Linux), which made one workflow at a time cost over 100 ms.

use std::time::Duration;

use tonic::transport::server::TcpIncoming;

/// TCP keepalive probes on idle connections, so that the kernel notices a peer that vanished
/// without closing (a worker host that lost power) and its long polls end.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// HTTP/2 pings on gRPC connections: a client that stops answering for `HTTP2_KEEPALIVE_TIMEOUT`
/// is dropped, so that a task handed to its long poll goes back to the queue. The SDKs ping
/// every 30 s themselves; the server's own interval is longer so it rarely adds traffic.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Accepted gRPC connections with the options above.
pub fn grpc_incoming(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(TCP_KEEPALIVE))
}

/// The gRPC server's HTTP/2 settings. Histories and payloads reach megabytes, so flow-control
/// windows grow with the measured bandwidth-delay product instead of staying at 64 KiB.
pub fn grpc_server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .http2_adaptive_window(Some(true))
}

/// An HTTP listener (metrics, the HTTP API and the UI), with TLS when the frontend has it, and
/// `TCP_NODELAY` on every accepted connection.
pub fn http_listener(listener: tokio::net::TcpListener, tls: Option<crate::tls::Tls>) -> crate::tls::HttpListener {
    match crate::tls::HttpListener::new(listener, tls) {
        Ok(listener) => listener,
        Err(e) => panic!("a bound listener has a local address: {e}"),
    }
}
