//! Validation and defaulting of incoming requests, with the messages Temporal's frontend uses.

use prost::Message;
use uhrwerk_core::config::Limits;
use uhrwerk_core::{retry, time};
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;

use crate::error::{Error, Result};

fn invalid(message: &str) -> Error {
    Error::InvalidArgument(message.to_string())
}

pub fn payloads_size(payloads: Option<&common_pb::Payloads>) -> usize {
    payloads.map_or(0, |p| p.payloads.iter().map(Message::encoded_len).sum())
}

/// Rejects payloads over `limit.blobSize.error`. As in Temporal, the error limit applies only
/// to payloads that are over the warn limit as well.
pub fn blob(limits: &Limits, payloads: Option<&common_pb::Payloads>) -> Result<()> {
    let size = payloads_size(payloads);
    if size > limits.blob_size_error && size > limits.blob_size_warn {
        return Err(invalid("Blob data size exceeds limit."));
    }
    Ok(())
}

pub fn workflow_id(limits: &Limits, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(invalid("WorkflowId is not set on request."));
    }
    if id.len() > limits.max_id_length {
        return Err(Error::InvalidArgument(format!(
            "WorkflowId exceeds maximum allowed length ({}/{})",
            id.len(),
            limits.max_id_length
        )));
    }
    Ok(())
}

pub fn task_queue_name(limits: &Limits, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("taskQueue is not set"));
    }
    if name.len() > limits.max_id_length {
        return Err(Error::InvalidArgument(format!(
            "TaskQueue exceeds maximum allowed length ({}/{})",
            name.len(),
            limits.max_id_length
        )));
    }
    Ok(())
}

pub fn signal_name(limits: &Limits, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("SignalName is not set on request."));
    }
    if name.len() > limits.max_id_length {
        return Err(Error::InvalidArgument(format!(
            "SignalName exceeds maximum allowed length ({}/{})",
            name.len(),
            limits.max_id_length
        )));
    }
    Ok(())
}

/// Validates a start request and fills its defaults in place.
pub fn start(limits: &Limits, req: &mut workflowservice_pb::StartWorkflowExecutionRequest) -> Result<()> {
    workflow_id(limits, &req.workflow_id)?;
    let workflow_type = req.workflow_type.as_ref().map(|t| t.name.as_str()).unwrap_or_default();
    if workflow_type.is_empty() {
        return Err(invalid("WorkflowType is not set on request."));
    }
    if workflow_type.len() > limits.max_id_length {
        return Err(invalid("WorkflowType length exceeds limit."));
    }
    let queue = req.task_queue.get_or_insert_with(Default::default);
    task_queue_name(limits, &queue.name)?;
    if req.request_id.len() > limits.max_id_length {
        return Err(invalid("RequestId length exceeds limit."));
    }
    if time::is_negative(&req.workflow_execution_timeout) {
        return Err(invalid("An invalid WorkflowExecutionTimeoutSeconds is set on request. cause: negative duration"));
    }
    if time::is_negative(&req.workflow_run_timeout) {
        return Err(invalid("An invalid WorkflowRunTimeoutSeconds is set on request. cause: negative duration"));
    }
    if time::is_negative(&req.workflow_task_timeout) {
        return Err(invalid("An invalid WorkflowTaskTimeoutSeconds is set on request. cause: negative duration"));
    }
    if let Some(policy) = req.retry_policy.as_ref() {
        retry::normalize(Some(policy)).map_err(|e| Error::InvalidArgument(e.0))?;
    }
    if !req.cron_schedule.is_empty() {
        uhrwerk_core::cron::validate(&req.cron_schedule).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if time::duration_ms(&req.workflow_start_delay) > 0 {
            return Err(invalid("CronSchedule and WorkflowStartDelay may not be used together."));
        }
    }
    if time::is_negative(&req.workflow_start_delay) {
        return Err(invalid("An invalid WorkflowStartDelay is set on request. cause: negative duration"));
    }
    blob(limits, req.input.as_ref())?;
    let memo_size = req.memo.as_ref().map_or(0, Message::encoded_len);
    if memo_size > limits.memo_size_error && memo_size > limits.memo_size_warn {
        return Err(invalid("Memo size exceeds limit."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> workflowservice_pb::StartWorkflowExecutionRequest {
        workflowservice_pb::StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: "wf".into(),
            workflow_type: Some(common_pb::WorkflowType { name: "T".into() }),
            task_queue: Some(uhrwerk_proto::temporal::api::taskqueue::v1::TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn start_validation() {
        let limits = Limits::default();
        assert!(start(&limits, &mut valid()).is_ok());
        let mut r = valid();
        r.workflow_id.clear();
        assert_eq!(start(&limits, &mut r), Err(invalid("WorkflowId is not set on request.")));
        let mut r = valid();
        r.workflow_id = "x".repeat(1001);
        assert!(start(&limits, &mut r).is_err());
        let mut r = valid();
        r.workflow_type = None;
        assert_eq!(start(&limits, &mut r), Err(invalid("WorkflowType is not set on request.")));
        let mut r = valid();
        r.retry_policy = Some(common_pb::RetryPolicy { backoff_coefficient: 0.5, ..Default::default() });
        assert!(start(&limits, &mut r).is_err());
        let mut r = valid();
        r.input = Some(common_pb::Payloads {
            payloads: vec![common_pb::Payload { data: vec![0; 3 << 20], ..Default::default() }],
        });
        assert_eq!(start(&limits, &mut r), Err(invalid("Blob data size exceeds limit.")));
    }
}
