//! How `uhrwerk doctor` and `uhrwerk workflow export` reach a server: the `temporal` CLI's
//! connection flags (`--tls`, `--tls-cert-path`, `--tls-key-path`, `--tls-ca-path`,
//! `--tls-server-name`, `--api-key`, with the same environment variables), and the client they
//! give. The client is a boxed transport, so that the web UI's health page can run the same
//! checks in process, without a connection to its own port.

use std::time::Duration;

use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::body::Body;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// A WorkflowService transport: a channel, or a service in process.
pub type Transport = tower::util::BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// A transport's error. A named type rather than a boxed error: the generated client's bound
/// (`Into<StdError>`) on a boxed one trips the compiler inside spawned tasks.
#[derive(Debug)]
pub struct TransportError(tonic::codegen::StdError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
pub type Client = WorkflowServiceClient<Transport>;

/// How to connect, as the `temporal` CLI takes it.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConnectionArgs {
    /// Connect with TLS (implied by the other --tls-* flags); the server is verified against the
    /// system's roots unless --tls-ca-path names a CA.
    #[arg(long, env = "TEMPORAL_TLS")]
    pub tls: bool,
    /// PEM client certificate for mutual TLS.
    #[arg(long, value_name = "PATH", env = "TEMPORAL_TLS_CLIENT_CERT_PATH", requires = "tls_key_path")]
    pub tls_cert_path: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert-path.
    #[arg(long, value_name = "PATH", env = "TEMPORAL_TLS_CLIENT_KEY_PATH", requires = "tls_cert_path")]
    pub tls_key_path: Option<std::path::PathBuf>,
    /// PEM CA certificate(s) that sign the server's certificate.
    #[arg(long, value_name = "PATH", env = "TEMPORAL_TLS_SERVER_CA_CERT_PATH")]
    pub tls_ca_path: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry [default: the host of --address].
    #[arg(long, value_name = "NAME", env = "TEMPORAL_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// API key or JWT, sent as `Authorization: Bearer <key>`.
    #[arg(long, value_name = "KEY", env = "TEMPORAL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl ConnectionArgs {
    /// Whether TLS is on, asked for or implied.
    pub fn uses_tls(&self) -> bool {
        self.tls || self.tls_cert_path.is_some() || self.tls_ca_path.is_some() || self.tls_server_name.is_some()
    }

    /// The TLS configuration for a server at `host`, when TLS is on.
    pub fn client_tls(&self, host: &str) -> Result<Option<ClientTlsConfig>, String> {
        if !self.uses_tls() {
            return Ok(None);
        }
        let read =
            |path: &std::path::Path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
        let mut config = ClientTlsConfig::new()
            .domain_name(self.tls_server_name.clone().unwrap_or_else(|| host.trim_matches(['[', ']']).to_string()));
        config = match &self.tls_ca_path {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => config.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.tls_cert_path, &self.tls_key_path) {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(Some(config))
    }

    /// The `Authorization` header value, when an API key is given.
    pub fn authorization(&self) -> Result<Option<http::HeaderValue>, String> {
        self.api_key
            .as_ref()
            .map(|key| {
                let mut value = http::HeaderValue::from_str(&format!("Bearer {key}"))
                    .map_err(|_| "--api-key holds characters a header cannot carry".to_string())?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()
    }
}

/// `HOST:PORT` (or a URL) to the endpoint URI and the host.
fn target(address: &str, tls: bool) -> (String, String) {
    let hostport = address.split_once("://").map_or(address, |(_, rest)| rest).trim_end_matches('/');
    let host = hostport.rsplit_once(':').map_or(hostport, |(host, _)| host).to_string();
    (format!("{}://{hostport}", if tls { "https" } else { "http" }), host)
}

/// Connects to the server at `address`; errors say what failed (never the key).
pub async fn connect(
    address: &str,
    args: &ConnectionArgs,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Client, String> {
    let tls = args.uses_tls() || address.starts_with("https://");
    let (uri, host) = target(address, tls);
    let mut endpoint = Endpoint::from_shared(uri)
        .map_err(|e| format!("invalid address {address:?} ({e}): expected HOST:PORT"))?
        .connect_timeout(connect_timeout)
        .timeout(timeout);
    if let Some(config) = args.client_tls(&host)? {
        endpoint = endpoint.tls_config(config).map_err(|e| source_chain(&e))?;
    } else if tls {
        endpoint = endpoint.tls_config(ClientTlsConfig::new().with_native_roots()).map_err(|e| source_chain(&e))?;
    }
    let channel = endpoint.connect().await.map_err(|e| source_chain(&e))?;
    Ok(client(channel, args.authorization()?))
}

/// A client over `service` (a channel, or a WorkflowService in process), sending
/// `authorization` with every call.
pub fn client<S>(service: S, authorization: Option<http::HeaderValue>) -> Client
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + Sync + 'static,
    S::Error: Into<tonic::codegen::StdError>,
    S::Future: Send + 'static,
{
    let transport = tower::ServiceBuilder::new()
        .map_err(|e: S::Error| TransportError(e.into()))
        .map_request(move |mut request: http::Request<Body>| {
            if let Some(value) = &authorization {
                request.headers_mut().insert(http::header::AUTHORIZATION, value.clone());
            }
            request
        })
        .service(service);
    WorkflowServiceClient::new(Transport::new(transport))
}

pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_endpoints() {
        assert_eq!(target("127.0.0.1:7233", false), ("http://127.0.0.1:7233".into(), "127.0.0.1".into()));
        assert_eq!(
            target("temporal.internal:7233", true),
            ("https://temporal.internal:7233".into(), "temporal.internal".into())
        );
        assert_eq!(target("http://h:1", false).0, "http://h:1");
        assert_eq!(target("[::1]:7233", true).1, "[::1]");
    }

    #[test]
    fn tls_is_implied_by_its_flags_and_the_key_is_a_bearer_header() {
        assert!(!ConnectionArgs::default().uses_tls());
        let args = ConnectionArgs { tls_ca_path: Some("ca.pem".into()), ..Default::default() };
        assert!(args.uses_tls());
        assert!(args.client_tls("h").is_err(), "a CA file that does not exist is an error");
        let args = ConnectionArgs { api_key: Some("k1".into()), ..Default::default() };
        let value = args.authorization().unwrap().unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer k1");
        assert!(value.is_sensitive());
        let bad = ConnectionArgs { api_key: Some("a\nb".into()), ..Default::default() };
        let message = bad.authorization().unwrap_err();
        assert!(!message.contains("a\nb"), "the key is not repeated: {message}");
    }
}
