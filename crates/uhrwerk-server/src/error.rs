//! The server's error type. It knows nothing about gRPC; `frontend::error` maps it to statuses.

use uhrwerk_core::kernel;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("Namespace {0} is not found.")]
    NamespaceNotFound(String),
    #[error("Namespace \"{0}\" already exists")]
    NamespaceAlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{message}")]
    AlreadyStarted { message: String, start_request_id: String, run_id: String },
    /// A query handler failed in the worker.
    #[error("{message}")]
    QueryFailed { message: String, failure: Option<Box<uhrwerk_proto::temporal::api::failure::v1::Failure>> },
    /// The run cannot answer queries (it closed before its first workflow task).
    #[error("{0}")]
    WorkflowNotReady(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    /// An operation of ExecuteMultiOperation failed; `code` is that operation's gRPC code.
    #[error("{message}")]
    MultiOperation {
        code: i32,
        message: String,
        statuses:
            Vec<uhrwerk_proto::temporal::api::errordetails::v1::multi_operation_execution_failure::OperationStatus>,
    },
    /// The caller may not do this (Temporal's PERMISSION_DENIED with PermissionDeniedFailure).
    #[error("{0}")]
    PermissionDenied(String),
    /// The run is closing (it continued as new) with the call's update not accepted: Temporal's
    /// RESOURCE_EXHAUSTED (BUSY_WORKFLOW), which clients retry.
    #[error("{0}")]
    WorkflowClosing(String),
    /// Storage trouble: the client may retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<kernel::Error> for Error {
    fn from(e: kernel::Error) -> Self {
        match e {
            kernel::Error::NotFound(m) => Error::NotFound(m),
            kernel::Error::InvalidArgument(m) => Error::InvalidArgument(m),
            kernel::Error::FailedPrecondition(m) => Error::FailedPrecondition(m),
        }
    }
}

impl From<uhrwerk_storage::Error> for Error {
    fn from(e: uhrwerk_storage::Error) -> Self {
        if let uhrwerk_storage::Error::Stopped = e {
            // The server is shutting down; callers see UNAVAILABLE and retry elsewhere.
            return Error::Unavailable("the store stopped".into());
        }
        tracing::error!("failed to access the store: {e}");
        Error::Unavailable(format!("storage error: {e}"))
    }
}
