//! TLS on every listener (the gRPC frontend, the HTTP endpoints and a cluster node's internal
//! port), with rustls: the server's certificate chain and key from PEM files, and with a client
//! CA file, client certificates required and verified against it (mTLS).
//! The files are read again on SIGHUP and when they change on disk (checked every two seconds);
//! new connections get the new configuration, established ones keep theirs, and a reload that
//! fails (a half-written file, a key that does not match) keeps the old one and says why.
//!
//! Written here rather than with tonic's `ServerTlsConfig`, which cannot reload: the acceptor
//! (tokio-rustls) hands finished TLS streams to tonic's `serve_with_incoming`.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the frontend's TLS material is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate, then its chain.
    pub cert: PathBuf,
    /// PEM: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: the CAs that sign client certificates; set, every client must present one (mTLS).
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("{path} holds no {what}")]
    Empty { path: String, what: &'static str },
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read { path: path.display().to_string(), detail: e.to_string() }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_err(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty { path: path.display().to_string(), what: "PEM certificate" });
    }
    Ok(certs)
}

/// The rustls configuration `files` describe.
fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| read_err(&files.key, e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|e| read_err(ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(format!("{} and {}: {e}", files.cert.display(), files.key.display())))
}

/// The protocol a listener speaks, offered in ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// gRPC: HTTP/2 only.
    H2,
    /// The HTTP endpoints (HTTP API, web UI, metrics): HTTP/1.1.
    Http1,
}

/// The configurations of one set of files, one per protocol.
struct Configs {
    h2: Arc<rustls::ServerConfig>,
    http1: Arc<rustls::ServerConfig>,
}

fn configs(files: &TlsFiles) -> Result<Configs, TlsError> {
    let mut h2 = server_config(files)?;
    let mut http1 = h2.clone();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    http1.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Configs { h2: Arc::new(h2), http1: Arc::new(http1) })
}

/// What the files looked like when last read: (modified, length) of each.
type Stamp = Vec<crate::reload::Stamp>;

fn stamp(files: &TlsFiles) -> Stamp {
    std::iter::once(&files.cert)
        .chain(std::iter::once(&files.key))
        .chain(files.client_ca.as_ref())
        .map(|p| crate::reload::stamp(p))
        .collect()
}

/// The current TLS configuration, shared by the acceptor and the reloads; cheap to clone.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    current: Arc<RwLock<(Configs, Stamp)>>,
}

impl Tls {
    /// Reads the files; fails with what is wrong with them.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let before = stamp(&files);
        let configs = configs(&files)?;
        Ok(Self { files, current: Arc::new(RwLock::new((configs, before))) })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again; on failure the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let before = stamp(&self.files);
        let configs = configs(&self.files)?;
        *self.current.write().expect("tls config lock") = (configs, before);
        Ok(())
    }

    fn changed(&self) -> bool {
        self.current.read().expect("tls config lock").1 != stamp(&self.files)
    }

    fn acceptor(&self, alpn: Alpn) -> tokio_rustls::TlsAcceptor {
        let current = self.current.read().expect("tls config lock");
        tokio_rustls::TlsAcceptor::from(match alpn {
            Alpn::H2 => current.0.h2.clone(),
            Alpn::Http1 => current.0.http1.clone(),
        })
    }

    /// Reloads on SIGHUP and when a file changed, until shutdown.
    pub async fn watch(self, mut shutdown: watch::Receiver<bool>) {
        let mut reloads = crate::reload::Reloads::default();
        while let Some(why) = reloads.next(|| self.changed(), &mut shutdown).await {
            match self.reload() {
                Ok(()) => tracing::info!(cert = %self.files.cert.display(), "TLS: certificates reloaded ({why})"),
                // Keep serving with the old ones; a file being rewritten is tried again once it
                // changes again.
                Err(e) => {
                    tracing::warn!("TLS: certificates not reloaded ({why}), the previous ones stay in use: {e}");
                    self.current.write().expect("tls config lock").1 = stamp(&self.files);
                }
            }
        }
    }
}

/// The subject common name of a DER certificate.
pub fn common_name(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(name)
}

/// What the frontend knows about a TLS connection (a request extension).
#[derive(Clone, Debug)]
pub struct TlsConnectInfo {
    pub remote_addr: Option<std::net::SocketAddr>,
    /// The client's certificate chain, when it presented one (mTLS).
    pub peer_certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// An accepted connection after its TLS handshake.
pub struct TlsConn(TlsStream<TcpStream>);

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = TlsConnectInfo;

    fn connect_info(&self) -> TlsConnectInfo {
        let (tcp, session) = self.0.get_ref();
        TlsConnectInfo {
            remote_addr: tcp.peer_addr().ok(),
            peer_certificates: session
                .peer_certificates()
                .map(|certs| Arc::new(certs.iter().map(|c| c.clone().into_owned()).collect())),
        }
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Accepted connections of `listener` after their TLS handshake with the configuration current
/// when each arrived. A failed handshake (a wrong CA, no client certificate under mTLS) closes
/// that connection only.
pub fn incoming(
    listener: TcpListener,
    tls: Tls,
    alpn: Alpn,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!("failed to accept a connection: {e}");
                    crate::clock::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("failed to set TCP_NODELAY on an accepted connection: {e}");
            }
            if let Err(e) = socket2::SockRef::from(&stream).set_keepalive(true) {
                tracing::debug!("failed to set SO_KEEPALIVE on an accepted connection: {e}");
            }
            let (acceptor, tx) = (tls.acceptor(alpn), tx.clone());
            tokio::spawn(async move {
                match crate::clock::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Some(Ok(conn)) => {
                        let _ = tx.send(Ok(TlsConn(conn))).await;
                    }
                    Some(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    None => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// An HTTP endpoint's listener: plain, or TLS with the frontend's certificates.
pub enum HttpListener {
    Plain(TcpListener),
    Tls { incoming: mpsc::Receiver<io::Result<TlsConn>>, local: std::net::SocketAddr },
}

impl HttpListener {
    pub fn new(listener: TcpListener, tls: Option<Tls>) -> io::Result<Self> {
        Ok(match tls {
            None => Self::Plain(listener),
            Some(tls) => {
                let local = listener.local_addr()?;
                Self::Tls { incoming: incoming(listener, tls, Alpn::Http1).into_inner(), local }
            }
        })
    }
}

/// A connection of an [`HttpListener`].
pub enum HttpConn {
    Plain(TcpStream),
    Tls(Box<TlsConn>),
}

impl axum::serve::Listener for HttpListener {
    type Io = HttpConn;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (HttpConn, std::net::SocketAddr) {
        loop {
            match self {
                Self::Plain(listener) => {
                    // axum's accept for a TcpListener, which waits out accept errors itself.
                    let (stream, peer) = axum::serve::Listener::accept(listener).await;
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!("failed to set TCP_NODELAY on an accepted connection: {e}");
                    }
                    return (HttpConn::Plain(stream), peer);
                }
                Self::Tls { incoming, .. } => match incoming.recv().await {
                    Some(Ok(conn)) => {
                        let peer = conn.0.get_ref().0.peer_addr().unwrap_or(([0, 0, 0, 0], 0).into());
                        return (HttpConn::Tls(Box::new(conn)), peer);
                    }
                    Some(Err(_)) => {}
                    // The acceptor ended: nothing more will come.
                    None => std::future::pending::<()>().await,
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Self::Plain(listener) => listener.local_addr(),
            Self::Tls { local, .. } => Ok(*local),
        }
    }
}

impl AsyncRead for HttpConn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for HttpConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What a cluster node presents to, and trusts in, the other nodes: its own certificate and
/// key, and the CA that signs the nodes' certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl NodeTls {
    /// The internal port's server side: the node's certificate, client certificates signed by
    /// the nodes' CA required.
    pub fn server(&self) -> TlsFiles {
        TlsFiles { cert: self.cert.clone(), key: self.key.clone(), client_ca: Some(self.ca.clone()) }
    }

    /// The client side, for connections to `host`: the other node's certificate verified
    /// against the nodes' CA and `host`, this node's certificate presented.
    pub fn client(&self, host: &str) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
        let read = |path: &Path| std::fs::read(path).map_err(|e| read_err(path, e));
        Ok(tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(&self.ca)?))
            .identity(tonic::transport::Identity::from_pem(read(&self.cert)?, read(&self.key)?))
            .domain_name(host.trim_start_matches('[').trim_end_matches(']')))
    }
}
