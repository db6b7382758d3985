//! Workflow updates over the message protocol. No speculative workflow tasks: an admitted update
//! waits for a normal workflow task, which carries it as a `<id>/request` message; the worker's
//! acceptance and response (each referenced by a PROTOCOL_MESSAGE command) write
//! WorkflowExecutionUpdateAccepted/Completed, a rejection writes nothing.

use prost::Message;

use crate::pb::enums::v1 as enums_pb;
use crate::pb::history::v1 as history_pb;
use crate::pb::protocol::v1 as protocol_pb;
use crate::pb::update::v1 as update_pb;
use crate::state::{RunState, UpdateInfo, UpdateState};

use super::{Ctx, Error, Result, schedule_workflow_task};
use enums_pb::{EventType, WorkflowTaskFailedCause as Cause};
use history_pb::history_event::Attributes;

const TYPE_PREFIX: &str = "type.googleapis.com/temporal.api.update.v1.";

/// Registers an update; a retried call with the same id changes nothing.
pub fn admit_update(ctx: &mut Ctx<'_>, st: &mut RunState, request: update_pb::Request) -> Result<()> {
    let update_id = request.meta.as_ref().map(|m| m.update_id.clone()).unwrap_or_default();
    if st.updates.contains_key(&update_id) {
        return Ok(());
    }
    if !st.is_open() {
        return Err(Error::NotFound("workflow execution already completed".into()));
    }
    st.updates.insert(
        update_id.clone(),
        UpdateInfo { update_id, state: UpdateState::Admitted as i32, request: Some(request), ..Default::default() },
    );
    ctx.state_changed = true;
    schedule_workflow_task(ctx, st);
    Ok(())
}

/// Whether admitted updates wait for a workflow task (they force a new task, like buffered events).
pub(super) fn has_admitted(st: &RunState) -> bool {
    st.updates.values().any(|u| u.state == UpdateState::Admitted as i32)
}

/// The request messages for a workflow task that just started (scheduled at `scheduled_event_id`).
pub(super) fn deliver(st: &mut RunState, scheduled_event_id: i64) -> Vec<protocol_pb::Message> {
    let mut messages = Vec::new();
    for update in st.updates.values_mut() {
        if update.state == UpdateState::Admitted as i32 || update.state == UpdateState::Requested as i32 {
            update.state = UpdateState::Requested as i32;
            let request = update.request.clone().unwrap_or_default();
            messages.push(protocol_pb::Message {
                id: format!("{}/request", update.update_id),
                protocol_instance_id: update.update_id.clone(),
                body: Some(prost_wkt_types::Any {
                    type_url: format!("{TYPE_PREFIX}Request"),
                    value: request.encode_to_vec(),
                }),
                sequencing_id: Some(protocol_pb::message::SequencingId::EventId(scheduled_event_id)),
            });
        }
    }
    messages
}

/// Why a message was refused; fails the workflow task.
pub(super) struct BadMessage(pub String);

fn decode<M: Message + Default>(body: &prost_wkt_types::Any) -> std::result::Result<M, BadMessage> {
    M::decode(body.value.as_slice()).map_err(|e| BadMessage(format!("cannot decode {}: {e}", body.type_url)))
}

/// Applies one protocol message from a workflow task completion.
pub(super) fn apply_message(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    message: protocol_pb::Message,
) -> std::result::Result<(), BadMessage> {
    let body = message.body.ok_or_else(|| BadMessage(format!("message {} has no body", message.id)))?;
    let kind = body.type_url.strip_prefix(TYPE_PREFIX).unwrap_or(&body.type_url).to_string();
    let update_id = message.protocol_instance_id;
    let state = st.updates.get(&update_id).map(|u| u.state);
    match kind.as_str() {
        "Acceptance" => {
            let acceptance: update_pb::Acceptance = decode(&body)?;
            if state != Some(UpdateState::Requested as i32) && state != Some(UpdateState::Admitted as i32) {
                return Err(BadMessage(format!("update {update_id} cannot be accepted now")));
            }
            let id = ctx.append(
                st,
                EventType::WorkflowExecutionUpdateAccepted,
                Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(
                    history_pb::WorkflowExecutionUpdateAcceptedEventAttributes {
                        protocol_instance_id: update_id.clone(),
                        accepted_request_message_id: acceptance.accepted_request_message_id,
                        accepted_request_sequencing_event_id: acceptance.accepted_request_sequencing_event_id,
                        accepted_request: acceptance.accepted_request,
                    },
                ),
            );
            let update = st.updates.get_mut(&update_id).expect("checked above");
            update.state = UpdateState::Accepted as i32;
            update.accepted_event_id = id;
        }
        "Response" => {
            let response: update_pb::Response = decode(&body)?;
            let Some(update) = st.updates.get(&update_id).filter(|u| u.state == UpdateState::Accepted as i32) else {
                return Err(BadMessage(format!("update {update_id} was not accepted")));
            };
            let accepted_event_id = update.accepted_event_id;
            ctx.append(
                st,
                EventType::WorkflowExecutionUpdateCompleted,
                Attributes::WorkflowExecutionUpdateCompletedEventAttributes(
                    history_pb::WorkflowExecutionUpdateCompletedEventAttributes {
                        meta: response.meta,
                        accepted_event_id,
                        outcome: response.outcome.clone(),
                    },
                ),
            );
            let update = st.updates.get_mut(&update_id).expect("checked above");
            update.state = UpdateState::Completed as i32;
            update.outcome = response.outcome;
        }
        "Rejection" => {
            let rejection: update_pb::Rejection = decode(&body)?;
            let Some(update) = st.updates.get_mut(&update_id).filter(|u| u.state != UpdateState::Completed as i32)
            else {
                return Err(BadMessage(format!("update {update_id} is not in flight")));
            };
            update.state = UpdateState::Completed as i32;
            update.outcome = Some(update_pb::Outcome {
                value: Some(update_pb::outcome::Value::Failure(rejection.failure.unwrap_or_default())),
            });
            ctx.state_changed = true;
        }
        other => return Err(BadMessage(format!("unknown message type {other}"))),
    }
    let _ = completed_event_id;
    Ok(())
}

/// Updates delivered in a task that ended without an answer are delivered again with the next.
pub(super) fn requeue_unanswered(st: &mut RunState) {
    for update in st.updates.values_mut() {
        if update.state == UpdateState::Requested as i32 {
            update.state = UpdateState::Admitted as i32;
        }
    }
}

pub(super) const BAD_MESSAGE: Cause = Cause::BadUpdateWorkflowExecutionMessage;
