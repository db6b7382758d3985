//! Transport settings seen from the operating system: every connection the server accepts, on
//! the gRPC port and on the metrics port, has `TCP_NODELAY` set.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use temporalio_protos::temporal::api::workflowservice::v1 as workflowservice_pb;

use crate::common::*;

/// The server's side of every TCP connection of this process whose local address is `addr`,
/// with its `TCP_NODELAY` setting. The server runs in this process, so its sockets are ours.
fn accepted_nodelay(addr: SocketAddr) -> Vec<(SocketAddr, bool)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("list open file descriptors") {
        let Ok(entry) = entry else { continue };
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>() else { continue };
        let is_socket =
            std::fs::read_link(entry.path()).is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is open (listed just now) and only borrowed for two getsockopt
        // calls; nothing closes it meanwhile except the server, which the test keeps busy.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let (Ok(local), Ok(peer)) = (socket.local_addr(), socket.peer_addr()) else { continue };
        let (Some(local), Some(peer)) = (local.as_socket(), peer.as_socket()) else { continue };
        if local == addr {
            found.push((peer, socket.tcp_nodelay().expect("read TCP_NODELAY")));
        }
    }
    found
}

#[tokio::test]
async fn accepted_connections_have_nodelay() {
    let mut server = TestServer::ephemeral().await;
    // Two gRPC connections, each used for a call so that the server surely accepted them.
    server.client.get_system_info(workflowservice_pb::GetSystemInfoRequest::default()).await.expect("system info");
    let mut second = connect(server.running.addr).await;
    second.get_system_info(workflowservice_pb::GetSystemInfoRequest::default()).await.expect("system info");
    let grpc = accepted_nodelay(server.running.addr);
    assert_eq!(grpc.len(), 2, "both gRPC connections are seen: {grpc:?}");
    assert!(grpc.iter().all(|(_, nodelay)| *nodelay), "every accepted gRPC socket has TCP_NODELAY: {grpc:?}");

    let metrics_addr = server.running.metrics_addr.expect("metrics endpoint");
    let mut http = tokio::net::TcpStream::connect(metrics_addr).await.expect("connect to metrics");
    http.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n").await.expect("send request");
    let mut head = [0u8; 12];
    http.read_exact(&mut head).await.expect("read response");
    assert_eq!(&head, b"HTTP/1.1 200");
    let metrics = accepted_nodelay(metrics_addr);
    assert_eq!(metrics.len(), 1, "the metrics connection is seen: {metrics:?}");
    assert!(metrics[0].1, "the accepted metrics socket has TCP_NODELAY");
    drop(http);
    drop(second);
    server.client = connect(server.running.addr).await;
    server.stop().await;
}
