//! The doctor's errors: usage mistakes, connection and RPC failures (all exit 2), and metrics
//! endpoint trouble (never fatal: the doctor falls back to Temporal's default limits).

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot connect to {address}: {detail}")]
    Connect { address: String, detail: String },
    #[error("{rpc} failed: {code:?}: {message}")]
    Rpc { rpc: &'static str, code: tonic::Code, message: String },
    #[error("cannot read metrics from {url}: {detail}")]
    Metrics { url: String, detail: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl DoctorError {
    pub fn rpc(rpc: &'static str, status: tonic::Status) -> Self {
        DoctorError::Rpc { rpc, code: status.code(), message: status.message().to_string() }
    }

    pub fn metrics(url: &str, detail: impl std::fmt::Display) -> Self {
        DoctorError::Metrics { url: url.to_string(), detail: detail.to_string() }
    }
}
