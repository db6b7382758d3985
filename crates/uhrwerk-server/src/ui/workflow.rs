//! One run: its summary, input and outcome, pending activities and children, and the history
//! page by page (a history of any length opens at once), each event's attributes as JSON with
//! payloads decoded.

use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use prost::Message;
use tonic::Request;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::history::v1 as history_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::layout::{self, bytes, encode, hex_decode, hex_encode, status_badge, time};
use crate::frontend::Frontend;
use crate::http_api;

/// Events per history page.
const EVENTS_PER_PAGE: i32 = 200;

#[derive(Debug, Default, serde::Deserialize)]
pub struct Params {
    /// The history page token, hex-encoded.
    #[serde(default)]
    next: String,
    /// Events shown on earlier pages.
    #[serde(default)]
    from: i64,
}

/// Events read for the timeline at most (the history table pages through any number).
const TIMELINE_EVENTS: usize = 10_000;

pub async fn page(
    frontend: &Frontend,
    namespace: &str,
    workflow_id: &str,
    run_id: &str,
    params: Params,
    csrf: &str,
) -> Response {
    let execution = common_pb::WorkflowExecution { workflow_id: workflow_id.to_string(), run_id: run_id.to_string() };
    let described = frontend
        .describe_workflow_execution(Request::new(pb::DescribeWorkflowExecutionRequest {
            namespace: namespace.to_string(),
            execution: Some(execution.clone()),
        }))
        .await;
    let described = match described {
        Ok(d) => d.into_inner(),
        Err(status) => return layout::failed("Workflow", namespace, &status),
    };
    let history = frontend
        .get_workflow_execution_history(Request::new(pb::GetWorkflowExecutionHistoryRequest {
            namespace: namespace.to_string(),
            execution: Some(execution.clone()),
            maximum_page_size: EVENTS_PER_PAGE,
            next_page_token: hex_decode(&params.next),
            ..Default::default()
        }))
        .await
        .map(tonic::Response::into_inner);
    let info = described.workflow_execution_info.clone().unwrap_or_default();
    let detail_link = |e: &common_pb::WorkflowExecution| {
        format!("/namespaces/{}/workflows/{}/{}", encode(namespace), encode(&e.workflow_id), encode(&e.run_id))
    };
    let events = history.as_ref().map(|h| h.history.clone().unwrap_or_default().events).unwrap_or_default();
    // The first and last events carry the input and the outcome; the first page has the
    // start, the close event is fetched on its own when the run is closed.
    let input = if params.from == 0 { events.first().and_then(start_input) } else { None };
    let open = info.status == enums_pb::WorkflowExecutionStatus::Running as i32;
    let timeline_events = timeline_events(frontend, namespace, &execution).await;
    let start_ms = info.start_time.as_ref().map(layout::millis).unwrap_or_default();
    let end_ms = match info.close_time.as_ref() {
        Some(t) => layout::millis(t),
        None => frontend.now_ms(),
    };
    let bars = super::timeline::bars(&timeline_events);
    let limits = frontend.limits();
    let growth_limits =
        [limits.history_count_suggest_continue_as_new, limits.history_count_warn, limits.history_count_error];
    let action = |name: &str| format!("{}/{name}", detail_link(&execution));
    let body = html! {
        h1 { (workflow_id) }
        dl.summary #summary {
            dt { "Status" } dd { (status_badge(info.status)) }
            dt { "Run ID" } dd.mono { (run_id) }
            dt { "Type" } dd { (info.r#type.as_ref().map(|t| t.name.as_str()).unwrap_or_default()) }
            dt { "Task queue" } dd { a href={ "/namespaces/" (encode(namespace)) "/task-queues/" (encode(&info.task_queue)) } { (info.task_queue) } }
            dt { "Start" } dd { (time(info.start_time.as_ref())) }
            dt { "Close" } dd { (time(info.close_time.as_ref())) }
            dt { "History" } dd { (info.history_length) " events, " (bytes(info.history_size_bytes)) }
            @if let Some(parent) = &info.parent_execution {
                dt { "Parent" } dd { a href=(detail_link(parent)) { (parent.workflow_id) } }
            }
            @if let Some(root) = info.root_execution.as_ref().filter(|r| r.run_id != run_id) {
                dt { "Root" } dd { a href=(detail_link(root)) { (root.workflow_id) } }
            }
            @if let Some(memo) = info.memo.as_ref().filter(|m| !m.fields.is_empty()) {
                dt { "Memo" } dd { (payload_map(&memo.fields)) }
            }
            @if let Some(attrs) = info.search_attributes.as_ref().filter(|s| !s.indexed_fields.is_empty()) {
                dt { "Search attributes" } dd { (payload_map(&attrs.indexed_fields)) }
            }
        }
        @if let Some(input) = &input {
            h2 { "Input" }
            pre #input { (input) }
        }
        div.actions {
            form #query-form method="post" action=(action("query")) {
                strong { "Query" }
                input type="hidden" name="csrf" value=(csrf);
                input type="text" name="name" value="__stack_trace" aria-label="query name";
                input type="text" name="input" placeholder="arguments as JSON (optional)" aria-label="query arguments";
                button type="submit" { "Run query" }
            }
            @if open {
                form #signal-form method="post" action=(action("signal")) {
                    strong { "Signal" }
                    input type="hidden" name="csrf" value=(csrf);
                    input type="text" name="name" placeholder="signal name" required aria-label="signal name";
                    input type="text" name="input" placeholder="arguments as JSON (optional)" aria-label="signal arguments";
                    button type="submit" { "Send signal" }
                }
                (confirmed_form("cancel-form", &action("cancel"), csrf, "Cancel", "cancel", "Request cancellation"))
                (confirmed_form("terminate-form", &action("terminate"), csrf, "Terminate", "terminate", "Terminate"))
            }
        }
        h2 { "Timeline" }
        (super::timeline::svg(&bars, start_ms, end_ms.max(start_ms)))
        h2 { "History growth" }
        @if timeline_events.len() < info.history_length as usize {
            p.muted { "The first " (timeline_events.len()) " events are drawn." }
        }
        (super::timeline::growth(&timeline_events, start_ms, end_ms.max(start_ms), growth_limits))
        @if !bars.is_empty() {
            details #compact-view {
                summary { "Compact view: one row per activity, timer and child" }
                (super::timeline::compact(&bars, start_ms, end_ms.max(start_ms)))
            }
        }
        @if !described.pending_activities.is_empty() {
            h2 { "Pending activities" }
            table #pending-activities {
                thead { tr { th { "Activity ID" } th { "Type" } th { "State" } th { "Attempt" } th { "Last failure" } th { "Heartbeat details" } } }
                tbody {
                    @for a in &described.pending_activities {
                        tr {
                            td.id { (a.activity_id) }
                            td { (a.activity_type.as_ref().map(|t| t.name.as_str()).unwrap_or_default()) }
                            td { (enums_pb::PendingActivityState::try_from(a.state).map(|s| s.as_str_name()).unwrap_or_default().trim_start_matches("PENDING_ACTIVITY_STATE_")) }
                            td.num { (a.attempt) }
                            td { (a.last_failure.as_ref().map(|f| f.message.as_str()).unwrap_or_default()) }
                            td { @if let Some(d) = &a.heartbeat_details { pre { (payloads_text(d)) } } }
                        }
                    }
                }
            }
        }
        @if !described.pending_children.is_empty() {
            h2 { "Pending children" }
            table #pending-children {
                thead { tr { th { "Workflow ID" } th { "Type" } } }
                tbody {
                    @for c in &described.pending_children {
                        tr {
                            td.id { a href=(detail_link(&common_pb::WorkflowExecution { workflow_id: c.workflow_id.clone(), run_id: c.run_id.clone() })) { (c.workflow_id) } }
                            td { (c.workflow_type_name) }
                        }
                    }
                }
            }
        }
        h2 { "History" }
        p { a #download-history href={ (detail_link(&execution)) "/history.json" } download { "Download the history" } " as "
            code { "temporal workflow show --output json" } " writes it (for replay tests)." }
        @match &history {
            Err(status) => div.error { (status.message()) },
            Ok(h) => {
                (history_table(&events))
                div.pager {
                    @if params.from > 0 {
                        a.button href=(detail_link(&execution)) { "First events" }
                    }
                    @if !h.next_page_token.is_empty() {
                        a.button href={ (detail_link(&execution)) "?from=" (params.from + events.len() as i64) "&next=" (hex_encode(&h.next_page_token)) } { "Next events" }
                    }
                }
            }
        }
    };
    layout::page(workflow_id, namespace, body)
}

/// A form for an action that needs a reason and a ticked confirmation (cancel, terminate).
fn confirmed_form(id: &str, action: &str, csrf: &str, title: &str, verb: &str, button: &str) -> Markup {
    html! {
        form id=(id) method="post" action=(action) {
            strong { (title) }
            input type="hidden" name="csrf" value=(csrf);
            input type="text" name="reason" placeholder="reason" aria-label={ (verb) " reason" };
            label { input type="checkbox" name="confirm" value="yes" required; " I want to " (verb) " this run" }
            button.danger type="submit" { (button) }
        }
    }
}

/// The run's whole history in the CLI's JSON, as a download.
pub async fn download(frontend: &Frontend, namespace: &str, workflow_id: &str, run_id: &str) -> Response {
    let execution = common_pb::WorkflowExecution { workflow_id: workflow_id.to_string(), run_id: run_id.to_string() };
    let events = match read_events(frontend, namespace, &execution, usize::MAX).await {
        Ok(events) => events,
        Err(status) => return layout::failed("History", namespace, &status),
    };
    let file =
        format!("{}_{}.json", workflow_id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"), run_id);
    let disposition = format!("attachment; filename=\"{file}\"");
    let mut response = crate::protojson::history_json(&events).into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    if let Ok(value) = disposition.parse() {
        headers.insert(http::header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The run's events from the start, up to [`TIMELINE_EVENTS`].
async fn timeline_events(
    frontend: &Frontend,
    namespace: &str,
    execution: &common_pb::WorkflowExecution,
) -> Vec<history_pb::HistoryEvent> {
    read_events(frontend, namespace, execution, TIMELINE_EVENTS).await.unwrap_or_default()
}

/// The run's events from the start, page by page, up to `limit` (or its first failure).
async fn read_events(
    frontend: &Frontend,
    namespace: &str,
    execution: &common_pb::WorkflowExecution,
    limit: usize,
) -> Result<Vec<history_pb::HistoryEvent>, tonic::Status> {
    let mut events = Vec::new();
    let mut token = Vec::new();
    while events.len() < limit {
        let page = frontend
            .get_workflow_execution_history(Request::new(pb::GetWorkflowExecutionHistoryRequest {
                namespace: namespace.to_string(),
                execution: Some(execution.clone()),
                maximum_page_size: 1_000,
                next_page_token: token,
                ..Default::default()
            }))
            .await;
        let page = page?.into_inner();
        events.extend(page.history.unwrap_or_default().events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    Ok(events)
}

/// A query's answer (or rejection), on its own page with the way back.
pub fn query_answer(
    namespace: &str,
    workflow_id: &str,
    back: &str,
    name: &str,
    answer: &pb::QueryWorkflowResponse,
) -> Response {
    let body = html! {
        h1 { "Query " (name) }
        p { "Workflow " a href=(back) { (workflow_id) } }
        @if let Some(rejected) = &answer.query_rejected {
            div.error #query-rejected { "Rejected: the workflow is "
                (enums_pb::WorkflowExecutionStatus::try_from(rejected.status).map(|s| s.as_str_name()).unwrap_or_default()) }
        }
        @if let Some(result) = &answer.query_result {
            pre #query-result { (payloads_text(result)) }
        }
    };
    layout::page(&format!("Query {name}"), namespace, body)
}

fn history_table(events: &[history_pb::HistoryEvent]) -> Markup {
    html! {
        table #history {
            thead { tr { th { "ID" } th { "Time" } th { "Type" } th { "Attributes" } } }
            tbody {
                @for e in events {
                    tr {
                        td.num { (e.event_id) }
                        td.time { (time(e.event_time.as_ref())) }
                        td { (enums_pb::EventType::try_from(e.event_type).map(|t| t.as_str_name()).unwrap_or_default().trim_start_matches("EVENT_TYPE_")) }
                        td { details { summary { "attributes" } pre { (event_attributes(e)) } } }
                    }
                }
            }
        }
    }
}

/// An event's attributes as JSON (the HTTP API's mapping: payloads decoded when they are JSON).
fn event_attributes(event: &history_pb::HistoryEvent) -> String {
    let routes = http_api::descriptors();
    let Some(desc) = routes.get_message_by_name("temporal.api.history.v1.HistoryEvent") else { return String::new() };
    let Ok(message) = prost_reflect::DynamicMessage::decode(desc, event.encode_to_vec().as_slice()) else {
        return String::new();
    };
    let json = http_api::to_json(&message, true);
    let attributes = json
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.ends_with("EventAttributes")).map(|(_, v)| v.clone()))
        .unwrap_or(serde_json::Value::Null);
    serde_json::to_string_pretty(&attributes).unwrap_or_default()
}

fn start_input(event: &history_pb::HistoryEvent) -> Option<String> {
    match &event.attributes {
        Some(history_pb::history_event::Attributes::WorkflowExecutionStartedEventAttributes(a)) => {
            a.input.as_ref().map(payloads_text)
        }
        _ => None,
    }
}

/// Payloads as text: JSON ones pretty-printed, others by encoding and size.
fn payloads_text(payloads: &common_pb::Payloads) -> String {
    payloads.payloads.iter().map(payload_text).collect::<Vec<_>>().join("\n")
}

fn payload_text(p: &common_pb::Payload) -> String {
    let encoding = p.metadata.get("encoding").map(|e| String::from_utf8_lossy(e).into_owned()).unwrap_or_default();
    match encoding.as_str() {
        "json/plain" | "json/protobuf" => serde_json::from_slice::<serde_json::Value>(&p.data)
            .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
            .unwrap_or_else(|_| format!("({encoding}, {} bytes, not JSON)", p.data.len())),
        "binary/null" => "null".to_string(),
        other => format!("({other}, {} bytes)", p.data.len()),
    }
}

fn payload_map(fields: &std::collections::HashMap<String, common_pb::Payload>) -> Markup {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    html! {
        @for k in keys {
            div { span.mono { (k) } ": " span.mono { (payload_text(&fields[k])) } }
        }
    }
}
