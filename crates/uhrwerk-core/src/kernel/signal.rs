//! Signals: WorkflowExecutionSignaled, buffered while a workflow task is in flight, deduplicated
//! by request id so that a retried call does not deliver twice.

use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::history::v1 as history_pb;
use crate::state::RunState;

use super::{Ctx, Error, Result};
use history_pb::history_event::Attributes;

/// How many recent signal request ids a run remembers.
const REMEMBERED_REQUEST_IDS: usize = 1000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignalInput {
    pub signal_name: String,
    pub input: Option<common_pb::Payloads>,
    pub identity: String,
    pub header: Option<common_pb::Header>,
    pub request_id: String,
    /// The sending workflow, for signals from SignalExternalWorkflowExecution.
    pub external: Option<common_pb::WorkflowExecution>,
}

pub(super) fn signaled_event(signal: &SignalInput) -> (enums_pb::EventType, Attributes) {
    (
        enums_pb::EventType::WorkflowExecutionSignaled,
        Attributes::WorkflowExecutionSignaledEventAttributes(history_pb::WorkflowExecutionSignaledEventAttributes {
            signal_name: signal.signal_name.clone(),
            input: signal.input.clone(),
            identity: signal.identity.clone(),
            header: signal.header.clone(),
            external_workflow_execution: signal.external.clone(),
            ..Default::default()
        }),
    )
}

pub(super) fn remember_request_id(st: &mut RunState, request_id: &str) {
    if request_id.is_empty() {
        return;
    }
    st.signal_request_ids.push(request_id.to_string());
    if st.signal_request_ids.len() > REMEMBERED_REQUEST_IDS {
        st.signal_request_ids.remove(0);
    }
}

/// Temporal's answer to a signal for a run that closed.
pub const CLOSED: &str = "workflow execution already completed";

/// Whether the run already has the signal sent with `request_id`.
pub fn is_duplicate(st: &RunState, request_id: &str) -> bool {
    !request_id.is_empty() && st.signal_request_ids.iter().any(|id| id == request_id)
}

/// Delivers a signal to an open run.
pub fn signal_run(ctx: &mut Ctx<'_>, st: &mut RunState, signal: SignalInput) -> Result<()> {
    // A signal the run has (a retry of an acknowledged call) is acknowledged again, even when
    // the run closed since, as Temporal does.
    if is_duplicate(st, &signal.request_id) {
        return Ok(());
    }
    if !st.is_open() {
        return Err(Error::NotFound(CLOSED.into()));
    }
    super::limits::check_signal_count(ctx.limits, st)?;
    remember_request_id(st, &signal.request_id);
    st.signal_count += 1;
    let (event_type, attributes) = signaled_event(&signal);
    ctx.append_external(st, event_type, attributes);
    Ok(())
}
