//! Reads the server's Prometheus endpoint (http, or https with the connection's CA and client
//! certificate), bounded in time and size.

use std::time::Duration;

use crate::connection::ConnectionArgs;
use crate::error::DoctorError;

const MAX_BODY: usize = 8 * 1024 * 1024;

/// The HTTP client for `url` with the TLS settings of `connection`.
fn http_client(connection: &ConnectionArgs, timeout: Duration) -> Result<reqwest::Client, String> {
    let read = |path: &std::path::Path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    let mut builder = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).use_rustls_tls();
    if let Some(ca) = &connection.tls_ca_path {
        for cert in reqwest::Certificate::from_pem_bundle(&read(ca)?).map_err(|e| e.to_string())? {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&connection.tls_cert_path, &connection.tls_key_path) {
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend(read(key)?);
        builder = builder.identity(reqwest::Identity::from_pem(&pem).map_err(|e| e.to_string())?);
    }
    builder.build().map_err(|e| e.to_string())
}

/// GETs `url` and returns the body of a 200 answer.
pub async fn fetch(url: &str, connection: &ConnectionArgs, timeout: Duration) -> Result<String, DoctorError> {
    let client = http_client(connection, timeout).map_err(|e| DoctorError::metrics(url, e))?;
    let mut response = client
        .get(url)
        .header(http::header::ACCEPT, "text/plain")
        .send()
        .await
        .map_err(|e| DoctorError::metrics(url, crate::connection::source_chain(&e)))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(DoctorError::metrics(url, format!("HTTP status {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| DoctorError::metrics(url, e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(DoctorError::metrics(url, "metrics body too large"));
        }
    }
    String::from_utf8(body).map_err(|_| DoctorError::metrics(url, "the body is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn serve_once(response: &'static [u8]) -> (u16, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).expect("read");
            conn.write_all(response).expect("write");
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        (port, server)
    }

    #[tokio::test]
    async fn fetches_from_a_local_server() {
        let (port, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
        let url = format!("http://127.0.0.1:{port}/metrics");
        let body = fetch(&url, &ConnectionArgs::default(), Duration::from_secs(5)).await.expect("fetch");
        assert_eq!(body, "abc");
        let request = server.join().expect("server thread");
        assert!(request.starts_with("GET /metrics HTTP/1.1\r\n"), "{request}");
    }

    #[tokio::test]
    async fn a_status_other_than_200_is_an_error() {
        let (port, _server) = serve_once(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        let url = format!("http://127.0.0.1:{port}/metrics");
        let err = fetch(&url, &ConnectionArgs::default(), Duration::from_secs(5)).await.expect_err("404");
        assert!(err.to_string().contains("404"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_an_error() {
        // A port that was free a moment ago: connection refused, reported as an error.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/metrics");
        assert!(fetch(&url, &ConnectionArgs::default(), Duration::from_millis(500)).await.is_err());
    }
}
