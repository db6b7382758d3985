//! The one place where server errors become gRPC statuses with Temporal's error details.
//! Clients read only `details[0]` of the `google.rpc.Status` in `grpc-status-details-bin`.

use prost::Message;
use tonic::{Code, Status};
use uhrwerk_proto::google::rpc as rpc_pb;
use uhrwerk_proto::temporal::api::errordetails::v1 as errordetails_pb;

use crate::error::Error;

/// The longest message a status carries. Messages quote what the caller sent (an id, a query):
/// uncapped, a hostile request's answer would overflow the client's header limit (16 KiB in
/// the Rust and Python SDKs; the message travels twice, percent-encoded and in the details).
const MAX_MESSAGE_BYTES: usize = 2048;

fn cap(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let total = message.len();
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(&format!("… ({} bytes more)", total - end));
    message
}

fn with_detail(code: Code, message: String, type_name: &str, detail: Vec<u8>) -> Status {
    let message = cap(message);
    let status = rpc_pb::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![uhrwerk_proto::wkt::Any {
            type_url: format!("type.googleapis.com/temporal.api.errordetails.v1.{type_name}"),
            value: detail,
        }],
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(message) => with_detail(
                Code::NotFound,
                message,
                "NotFoundFailure",
                errordetails_pb::NotFoundFailure::default().encode_to_vec(),
            ),
            Error::NamespaceNotFound(namespace) => with_detail(
                Code::NotFound,
                format!("Namespace {namespace} is not found."),
                "NamespaceNotFoundFailure",
                errordetails_pb::NamespaceNotFoundFailure { namespace }.encode_to_vec(),
            ),
            Error::NamespaceAlreadyExists(name) => with_detail(
                Code::AlreadyExists,
                format!("Namespace \"{name}\" already exists"),
                "NamespaceAlreadyExistsFailure",
                errordetails_pb::NamespaceAlreadyExistsFailure::default().encode_to_vec(),
            ),
            Error::AlreadyStarted { message, start_request_id, run_id } => with_detail(
                Code::AlreadyExists,
                message,
                "WorkflowExecutionAlreadyStartedFailure",
                errordetails_pb::WorkflowExecutionAlreadyStartedFailure {
                    start_request_id,
                    run_id,
                    ..Default::default()
                }
                .encode_to_vec(),
            ),
            Error::QueryFailed { message, failure } => with_detail(
                Code::InvalidArgument,
                message,
                "QueryFailedFailure",
                errordetails_pb::QueryFailedFailure { failure: failure.map(|f| *f) }.encode_to_vec(),
            ),
            Error::WorkflowNotReady(message) => with_detail(
                Code::FailedPrecondition,
                message,
                "WorkflowNotReadyFailure",
                errordetails_pb::WorkflowNotReadyFailure::default().encode_to_vec(),
            ),
            Error::DeadlineExceeded(message) => Status::deadline_exceeded(cap(message)),
            Error::MultiOperation { code, message, statuses } => with_detail(
                Code::from_i32(code),
                message,
                "MultiOperationExecutionFailure",
                errordetails_pb::MultiOperationExecutionFailure { statuses }.encode_to_vec(),
            ),
            Error::PermissionDenied(message) => with_detail(
                Code::PermissionDenied,
                message,
                "PermissionDeniedFailure",
                errordetails_pb::PermissionDeniedFailure::default().encode_to_vec(),
            ),
            Error::WorkflowClosing(message) => with_detail(
                Code::ResourceExhausted,
                message,
                "ResourceExhaustedFailure",
                errordetails_pb::ResourceExhaustedFailure {
                    cause: uhrwerk_proto::temporal::api::enums::v1::ResourceExhaustedCause::BusyWorkflow as i32,
                    scope: uhrwerk_proto::temporal::api::enums::v1::ResourceExhaustedScope::Namespace as i32,
                }
                .encode_to_vec(),
            ),
            Error::InvalidArgument(message) => Status::invalid_argument(cap(message)),
            Error::FailedPrecondition(message) => Status::failed_precondition(cap(message)),
            Error::Unavailable(message) => Status::unavailable(cap(message)),
            Error::Internal(message) => {
                tracing::error!("internal error: {message}");
                Status::internal(cap(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail_type(status: &Status) -> String {
        let decoded = rpc_pb::Status::decode(status.details()).expect("details decode");
        assert_eq!(decoded.code, status.code() as i32);
        assert_eq!(decoded.message, status.message());
        decoded.details[0].type_url.rsplit('.').next().unwrap_or_default().to_string()
    }

    #[test]
    fn long_messages_are_capped_at_a_char_boundary() {
        let status = Status::from(Error::NotFound(format!("workflow not found for ID: {}", "ü".repeat(5000))));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES + 40, "{}", status.message().len());
        assert!(status.message().ends_with("bytes more)"));
        let decoded = rpc_pb::Status::decode(status.details()).expect("details decode");
        assert_eq!(decoded.message, status.message());
        assert_eq!(Status::from(Error::InvalidArgument("short".into())).message(), "short");
    }

    #[test]
    fn maps_errors_to_codes_and_details() {
        let s = Status::from(Error::NotFound("workflow not found for ID: x".into()));
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(detail_type(&s), "NotFoundFailure");
        let s = Status::from(Error::NamespaceNotFound("nope".into()));
        assert_eq!((s.code(), s.message()), (Code::NotFound, "Namespace nope is not found."));
        assert_eq!(detail_type(&s), "NamespaceNotFoundFailure");
        let s = Status::from(Error::AlreadyStarted {
            message: "m".into(),
            start_request_id: "r".into(),
            run_id: "id".into(),
        });
        assert_eq!(s.code(), Code::AlreadyExists);
        assert_eq!(detail_type(&s), "WorkflowExecutionAlreadyStartedFailure");
        assert_eq!(Status::from(Error::InvalidArgument("x".into())).code(), Code::InvalidArgument);
    }
}
