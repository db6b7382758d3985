//! Reads the server's Prometheus endpoint with a minimal HTTP/1.1 GET (plain `http://` only,
//! `Content-Length`, chunked or close-delimited bodies), bounded in time and size.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::DoctorError;

const MAX_BODY: usize = 8 * 1024 * 1024;

/// `http://host:port/path` split into (host, port, path).
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| "only http:// URLs are supported".to_string())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err("missing host".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h.to_string(), p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?)
        }
        _ => (authority.to_string(), 80),
    };
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port, path.to_string()))
}

/// GETs `url` and returns the body of a 200 answer.
pub fn fetch(url: &str, timeout: Duration) -> Result<String, DoctorError> {
    let (host, port, path) = parse_url(url).map_err(|e| DoctorError::metrics(url, e))?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| DoctorError::metrics(url, e))?
        .next()
        .ok_or_else(|| DoctorError::metrics(url, "host has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| DoctorError::metrics(url, e))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| DoctorError::metrics(url, e))?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| DoctorError::metrics(url, e))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/plain\r\nConnection: close\r\nUser-Agent: uhrwerk-doctor\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(|e| DoctorError::metrics(url, e))?;
    let mut raw = Vec::new();
    stream.take(MAX_BODY as u64 + 64 * 1024).read_to_end(&mut raw).map_err(|e| DoctorError::metrics(url, e))?;
    parse_response(&raw).map_err(|e| DoctorError::metrics(url, e))
}

/// The body of a 200 response (status line, headers, then the body framing the headers name).
pub fn parse_response(raw: &[u8]) -> Result<String, String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("incomplete HTTP response")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "HTTP headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).ok_or("no HTTP status")?;
    if code != "200" {
        return Err(format!("HTTP status {status:?}"));
    }
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        } else if name == "content-length" {
            length = Some(value.parse().map_err(|_| "bad Content-Length")?);
        }
    }
    let body = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n).ok_or("body shorter than Content-Length")?.to_vec()
    } else {
        body.to_vec()
    };
    if body.len() > MAX_BODY {
        return Err("metrics body too large".into());
    }
    String::from_utf8(body).map_err(|_| "metrics body is not UTF-8".into())
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").ok_or("truncated chunk size")?;
        let size_str = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size")?;
        let size_str = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| format!("bad chunk size {size_str:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        if out.len() > MAX_BODY {
            return Err("metrics body too large".into());
        }
        body = body.get(size + 2..).ok_or("truncated chunk")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_from_a_local_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).expect("read");
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").expect("write");
            request
        });
        let body = fetch(&format!("http://127.0.0.1:{port}/metrics"), Duration::from_secs(5)).expect("fetch");
        assert_eq!(body, "abc");
        let request = server.join().expect("server thread");
        assert!(request.starts_with("GET /metrics HTTP/1.1\r\n"), "{request}");
    }

    #[test]
    fn urls() {
        assert_eq!(parse_url("http://127.0.0.1:9233/metrics"), Ok(("127.0.0.1".into(), 9233, "/metrics".into())));
        assert_eq!(parse_url("http://localhost"), Ok(("localhost".into(), 80, "/".into())));
        assert_eq!(parse_url("http://[::1]:9233/m"), Ok(("::1".into(), 9233, "/m".into())));
        assert!(parse_url("https://x/metrics").is_err());
        assert!(parse_url("http://h:port/").is_err());
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello--";
        assert_eq!(parse_response(ok).as_deref(), Ok("hello"));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).as_deref(), Ok("abcde"));
        let closed = b"HTTP/1.0 200 OK\r\n\r\nuntil close";
        assert_eq!(parse_response(closed).as_deref(), Ok("until close"));
        assert!(parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err());
    }

    #[test]
    fn unreachable_endpoint_is_an_error() {
        // A port that was free a moment ago: connection refused, reported as an error.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        assert!(fetch(&format!("http://127.0.0.1:{port}/metrics"), Duration::from_millis(500)).is_err());
    }
}
