//! Signals and cancellation requests from a workflow to another one: the Initiated event with
//! the command, then (delivered by a transfer task) ExternalWorkflowExecutionSignaled /
//! ExternalWorkflowExecutionCancelRequested, or the matching Failed event when the target is gone.

use crate::pb::command::v1 as command_pb;
use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::history::v1 as history_pb;
use crate::state::RunState;
use crate::transfer::{TransferKind, TransferTask};

use super::{Ctx, Effect, Result, SignalInput};
use enums_pb::EventType;
use history_pb::history_event::Attributes;

/// The external operation a workflow asked for; `source.initiated_event_id` names it.
#[derive(Clone, Debug, PartialEq)]
pub enum ExternalRequest {
    Signal(SignalInput),
    Cancel { reason: String },
}

pub(super) fn initiate_signal(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    a: command_pb::SignalExternalWorkflowExecutionCommandAttributes,
) {
    let namespace = if a.namespace.is_empty() { st.namespace.clone() } else { a.namespace.clone() };
    let target = a.execution.clone().unwrap_or_default();
    let initiated_event_id = ctx.append(
        st,
        EventType::SignalExternalWorkflowExecutionInitiated,
        Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(
            history_pb::SignalExternalWorkflowExecutionInitiatedEventAttributes {
                workflow_task_completed_event_id: completed_event_id,
                namespace: namespace.clone(),
                workflow_execution: Some(target.clone()),
                signal_name: a.signal_name.clone(),
                input: a.input.clone(),
                control: a.control.clone(),
                child_workflow_only: a.child_workflow_only,
                header: a.header.clone(),
                ..Default::default()
            },
        ),
    );
    st.pending_external_signals += 1;
    st.pending_externals.push(initiated_event_id);
    ctx.effects.push(Effect::Transfer(TransferTask::new(TransferKind::SignalExternal, initiated_event_id)));
}

pub(super) fn initiate_cancel(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    a: command_pb::RequestCancelExternalWorkflowExecutionCommandAttributes,
) {
    let namespace = if a.namespace.is_empty() { st.namespace.clone() } else { a.namespace.clone() };
    let target = common_pb::WorkflowExecution { workflow_id: a.workflow_id.clone(), run_id: a.run_id.clone() };
    let initiated_event_id = ctx.append(
        st,
        EventType::RequestCancelExternalWorkflowExecutionInitiated,
        Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
            history_pb::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
                workflow_task_completed_event_id: completed_event_id,
                namespace: namespace.clone(),
                workflow_execution: Some(target.clone()),
                control: a.control.clone(),
                child_workflow_only: a.child_workflow_only,
                reason: a.reason.clone(),
                ..Default::default()
            },
        ),
    );
    st.pending_external_cancels += 1;
    st.pending_externals.push(initiated_event_id);
    ctx.effects.push(Effect::Transfer(TransferTask::new(TransferKind::CancelExternal, initiated_event_id)));
}

/// A signal or cancellation request to deliver, read back from its Initiated event.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalDelivery {
    pub initiated_event_id: i64,
    pub namespace: String,
    pub target: common_pb::WorkflowExecution,
    pub control: String,
    pub request: ExternalRequest,
}

/// What the Initiated event `event` of run `st` asks to deliver; None for other events.
pub fn external_delivery(st: &RunState, event: &history_pb::HistoryEvent) -> Option<ExternalDelivery> {
    let initiated_event_id = event.event_id;
    match event.attributes.clone()? {
        Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(a) => {
            let signal = SignalInput {
                signal_name: a.signal_name,
                input: a.input,
                identity: String::new(),
                header: a.header,
                // Names the request, so that the target applies a repeated delivery once.
                request_id: format!("{}-signal-{initiated_event_id}", st.run_id),
                external: Some(common_pb::WorkflowExecution {
                    workflow_id: st.workflow_id.clone(),
                    run_id: st.run_id.clone(),
                }),
            };
            Some(ExternalDelivery {
                initiated_event_id,
                namespace: a.namespace,
                target: a.workflow_execution.unwrap_or_default(),
                control: a.control,
                request: ExternalRequest::Signal(signal),
            })
        }
        Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(a) => Some(ExternalDelivery {
            initiated_event_id,
            namespace: a.namespace,
            target: a.workflow_execution.unwrap_or_default(),
            control: a.control,
            request: ExternalRequest::Cancel { reason: a.reason },
        }),
        _ => None,
    }
}

/// Whether the request initiated by `initiated_event_id` still waits for its outcome.
pub fn external_pending(st: &RunState, initiated_event_id: i64) -> bool {
    st.is_open() && st.pending_externals.contains(&initiated_event_id)
}

/// The engine carried out (`done`) or could not find the target of an external request.
pub fn external_outcome(ctx: &mut Ctx<'_>, st: &mut RunState, delivery: ExternalDelivery, done: bool) -> Result<()> {
    let ExternalDelivery { initiated_event_id, namespace, target, control, request } = delivery;
    let signal = matches!(request, ExternalRequest::Signal(_));
    if !st.is_open() {
        return Ok(());
    }
    // Each request has one outcome: a repeated delivery (after recovery) records nothing.
    let Some(pos) = st.pending_externals.iter().position(|id| *id == initiated_event_id) else { return Ok(()) };
    st.pending_externals.remove(pos);
    if signal {
        st.pending_external_signals = (st.pending_external_signals - 1).max(0);
    } else {
        st.pending_external_cancels = (st.pending_external_cancels - 1).max(0);
    }
    let not_found = enums_pb::SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32;
    let (event_type, attributes) = match (signal, done) {
        (true, true) => (
            EventType::ExternalWorkflowExecutionSignaled,
            Attributes::ExternalWorkflowExecutionSignaledEventAttributes(
                history_pb::ExternalWorkflowExecutionSignaledEventAttributes {
                    initiated_event_id,
                    namespace,
                    workflow_execution: Some(target),
                    control,
                    ..Default::default()
                },
            ),
        ),
        (true, false) => (
            EventType::SignalExternalWorkflowExecutionFailed,
            Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(
                history_pb::SignalExternalWorkflowExecutionFailedEventAttributes {
                    cause: not_found,
                    namespace,
                    workflow_execution: Some(target),
                    initiated_event_id,
                    control,
                    ..Default::default()
                },
            ),
        ),
        (false, true) => (
            EventType::ExternalWorkflowExecutionCancelRequested,
            Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                history_pb::ExternalWorkflowExecutionCancelRequestedEventAttributes {
                    initiated_event_id,
                    namespace,
                    workflow_execution: Some(target),
                    ..Default::default()
                },
            ),
        ),
        (false, false) => (
            EventType::RequestCancelExternalWorkflowExecutionFailed,
            Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                history_pb::RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                    cause: enums_pb::CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
                        as i32,
                    namespace,
                    workflow_execution: Some(target),
                    initiated_event_id,
                    control,
                    ..Default::default()
                },
            ),
        ),
    };
    ctx.append_external(st, event_type, attributes);
    Ok(())
}
