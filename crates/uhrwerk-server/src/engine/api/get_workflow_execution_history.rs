//! GetWorkflowExecutionHistory: pages, long polls for new events, and the close-event filter.
//!
//! Token rules (as the real server behaves): a running workflow's long poll returns what exists
//! plus a token to continue; on timeout it returns no events and a non-empty token; once the run
//! is closed and fully read the token is empty.

use std::time::Duration;

use prost::Message;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::history::v1 as history_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// Largest page returned (Temporal's `limit.historyMaxPageSize` default is 256; more saves round trips).
const MAX_PAGE: usize = 1000;
const TOKEN_MAGIC: &[u8] = b"uwh1";

#[derive(Clone, PartialEq, prost::Message)]
struct PageToken {
    #[prost(string, tag = "1")]
    run_id: String,
    #[prost(int64, tag = "2")]
    next_event_id: i64,
}

fn encode_token(run_id: &str, next_event_id: i64) -> Vec<u8> {
    let mut out = TOKEN_MAGIC.to_vec();
    PageToken { run_id: run_id.to_string(), next_event_id }.encode_raw(&mut out);
    out
}

fn decode_token(bytes: &[u8]) -> Result<PageToken> {
    bytes
        .strip_prefix(TOKEN_MAGIC)
        .and_then(|b| PageToken::decode(b).ok())
        .filter(|t| t.next_event_id >= 1 && !t.run_id.is_empty())
        .ok_or_else(|| Error::InvalidArgument("Invalid NextPageToken.".into()))
}

/// `sdk_client`: the caller is an SDK, which also gets a transient workflow task attempt's
/// events at the end of the last page (as Temporal gives them to all but its CLI and UI).
pub async fn invoke(
    engine: &Arc<Engine>,
    req: workflowservice_pb::GetWorkflowExecutionHistoryRequest,
    wait: Duration,
    sdk_client: bool,
) -> Result<workflowservice_pb::GetWorkflowExecutionHistoryResponse> {
    let execution = req.execution.clone().unwrap_or_default();
    let token = if req.next_page_token.is_empty() { None } else { Some(decode_token(&req.next_page_token)?) };
    let run_id = token.as_ref().map(|t| t.run_id.as_str()).unwrap_or(&execution.run_id);
    let mut state = engine.run_state(&req.namespace, &execution.workflow_id, run_id).await?;
    let run_id = state.run_id.clone();
    let close_only = req.history_event_filter_type == enums_pb::HistoryEventFilterType::CloseEvent as i32;
    let page = match usize::try_from(req.maximum_page_size) {
        Ok(n) if n > 0 => n.min(MAX_PAGE),
        _ => MAX_PAGE,
    };
    let mut from = token.as_ref().map_or(1, |t| t.next_event_id);

    let deadline = crate::clock::deadline(wait);
    loop {
        if close_only {
            if !state.is_open() {
                let id = state.close_event_id.max(1);
                let events =
                    read_events(engine, &run_id, id, 1).await?.into_iter().map(close_event_for_callers).collect();
                return Ok(response(events, Vec::new()));
            }
            if !req.wait_new_event {
                return Ok(response(Vec::new(), Vec::new()));
            }
        } else {
            let have_new = state.next_event_id > from;
            // Without a token, a long poll answers at once with what exists.
            if have_new || !req.wait_new_event || !state.is_open() {
                let mut events = read_events(engine, &run_id, from, page).await?;
                let next = events.last().map_or(from, |e| e.event_id + 1);
                let more = next < state.next_event_id || (state.is_open() && req.wait_new_event);
                let token = if more { encode_token(&run_id, next) } else { Vec::new() };
                if sdk_client && next == state.next_event_id {
                    events.extend(uhrwerk_core::kernel::transient_events(&state));
                }
                return Ok(response(events, token));
            }
        }
        // Wait for the history to grow, or time out with an empty page and a token.
        let watcher = engine.watch_history(&run_id);
        let fresh = engine.run_state(&req.namespace, &execution.workflow_id, &run_id).await?;
        let grew = fresh.next_event_id != state.next_event_id || fresh.is_open() != state.is_open();
        state = fresh;
        if !grew {
            if !engine.wait_for_change(watcher, &run_id, deadline).await {
                let next = if close_only { state.next_event_id } else { from };
                return Ok(response(Vec::new(), encode_token(&run_id, next)));
            }
            state = engine.run_state(&req.namespace, &execution.workflow_id, &run_id).await?;
        }
        if close_only {
            from = state.next_event_id;
        }
    }
}

async fn read_events(engine: &Engine, run_id: &str, from: i64, limit: usize) -> Result<Vec<history_pb::HistoryEvent>> {
    Ok(engine.executions().events(run_id, from, limit).await?)
}

fn response(
    events: Vec<history_pb::HistoryEvent>,
    next_page_token: Vec<u8>,
) -> workflowservice_pb::GetWorkflowExecutionHistoryResponse {
    workflowservice_pb::GetWorkflowExecutionHistoryResponse {
        history: Some(history_pb::History { events }),
        next_page_token,
        ..Default::default()
    }
}

/// The close event as the CLOSE_EVENT filter shows it: a cron run's completion (which starts the
/// next run) reads as WorkflowExecutionContinuedAsNew, as on Temporal, so clients follow the chain.
fn close_event_for_callers(event: history_pb::HistoryEvent) -> history_pb::HistoryEvent {
    use history_pb::history_event::Attributes;
    match &event.attributes {
        Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) if !a.new_execution_run_id.is_empty() => {
            history_pb::HistoryEvent {
                event_id: event.event_id,
                event_time: event.event_time,
                event_type: enums_pb::EventType::WorkflowExecutionContinuedAsNew as i32,
                attributes: Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(
                    history_pb::WorkflowExecutionContinuedAsNewEventAttributes {
                        new_execution_run_id: a.new_execution_run_id.clone(),
                        last_completion_result: a.result.clone(),
                        workflow_task_completed_event_id: a.workflow_task_completed_event_id,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }
        }
        _ => event,
    }
}
