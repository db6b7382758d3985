//! The workflow list: a search box with Temporal's list query language (its errors shown in
//! place), status filters with their counts, the runs page by page.

use axum::response::Response;
use maud::html;
use tonic::Request;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::layout::{self, bytes, encode, hex_decode, hex_encode, status_badge, time};
use crate::frontend::Frontend;

const PAGE_SIZE: i32 = 50;
const STATUSES: &[&str] = &["Running", "Completed", "Failed", "Canceled", "Terminated", "ContinuedAsNew", "TimedOut"];

#[derive(Debug, Default, serde::Deserialize)]
pub struct Params {
    /// The list query as the user typed it.
    #[serde(default)]
    query: String,
    /// One execution status to filter on.
    #[serde(default)]
    status: String,
    /// The page token of the next page, hex-encoded.
    #[serde(default)]
    next: String,
}

/// The query sent to the server: the status filter and the user's query together.
fn combined(params: &Params) -> String {
    let status = STATUSES.iter().find(|s| **s == params.status).map(|s| format!("ExecutionStatus = '{s}'"));
    match (status, params.query.trim()) {
        (None, q) => q.to_string(),
        (Some(s), "") => s,
        (Some(s), q) if q.to_ascii_uppercase().starts_with("ORDER BY") => format!("{s} {q}"),
        (Some(s), q) => format!("{s} AND ({q})"),
    }
}

fn link(namespace: &str, query: &str, status: &str) -> String {
    format!("/namespaces/{}/workflows?query={}&status={}", encode(namespace), encode(query), encode(status))
}

pub async fn page(frontend: &Frontend, namespace: &str, params: Params) -> Response {
    let query = combined(&params);
    let listed = frontend
        .list_workflow_executions(Request::new(pb::ListWorkflowExecutionsRequest {
            namespace: namespace.to_string(),
            page_size: PAGE_SIZE,
            next_page_token: hex_decode(&params.next),
            query: query.clone(),
        }))
        .await
        .map(tonic::Response::into_inner);
    // Counts by status for the user's query (without the status filter).
    let counts = frontend
        .count_workflow_executions(Request::new(pb::CountWorkflowExecutionsRequest {
            namespace: namespace.to_string(),
            query: count_query(&params.query),
        }))
        .await
        .map(tonic::Response::into_inner)
        .ok();
    if let Err(status) = &listed
        && status.code() == tonic::Code::NotFound
    {
        return layout::failed("Workflows", namespace, status);
    }
    let count_of = |name: &str| -> Option<i64> {
        let counts = counts.as_ref()?;
        Some(
            counts
                .groups
                .iter()
                .filter(|g| {
                    g.group_values
                        .iter()
                        .any(|v| serde_json::from_slice::<String>(&v.data).ok().as_deref() == Some(name))
                })
                .map(|g| g.count)
                .sum(),
        )
    };
    let total = counts.as_ref().map(|c| c.count);
    let body = html! {
        h1 { "Workflows" }
        form.search method="get" action={ "/namespaces/" (encode(namespace)) "/workflows" } {
            input type="text" name="query" value=(params.query) placeholder="WorkflowType = 'OrderWorkflow' AND StartTime > '2026-01-01T00:00:00Z'" aria-label="list query";
            input type="hidden" name="status" value=(params.status);
            button type="submit" { "Search" }
            label.refresh { input type="checkbox" id="auto-refresh"; " auto-refresh" }
        }
        @if let Err(status) = &listed {
            div.error #query-error { (status.message()) }
        }
        nav.filters {
            a class=[params.status.is_empty().then_some("on")] href=(link(namespace, &params.query, "")) {
                "All" @if let Some(n) = total { " (" (n) ")" }
            }
            @for s in STATUSES {
                a class=[(params.status == *s).then_some("on")] href=(link(namespace, &params.query, s)) {
                    (s) @if let Some(n) = count_of(s) { " (" (n) ")" }
                }
            }
        }
        @if let Ok(listed) = &listed {
            @if listed.executions.is_empty() {
                p.muted #no-workflows { "No workflows match." }
            } @else {
                table #workflows {
                    thead { tr {
                        th { "Status" } th { "Workflow ID" } th { "Run ID" } th { "Type" } th { "Start" } th { "Close" }
                        th { "Task queue" } th { "History" } th { "Size" }
                    } }
                    tbody {
                        @for e in &listed.executions {
                            @let execution = e.execution.clone().unwrap_or_default();
                            tr {
                                td { (status_badge(e.status)) }
                                td.id { a href={ "/namespaces/" (encode(namespace)) "/workflows/" (encode(&execution.workflow_id)) "/" (encode(&execution.run_id)) } { (execution.workflow_id) } }
                                td.id { (execution.run_id) }
                                td { (e.r#type.as_ref().map(|t| t.name.as_str()).unwrap_or_default()) }
                                td.time { (time(e.start_time.as_ref())) }
                                td.time { (time(e.close_time.as_ref())) }
                                td { a href={ "/namespaces/" (encode(namespace)) "/task-queues/" (encode(&e.task_queue)) } { (e.task_queue) } }
                                td.num { (e.history_length) }
                                td.num { (bytes(e.history_size_bytes)) }
                            }
                        }
                    }
                }
                @if !listed.next_page_token.is_empty() {
                    div.pager {
                        a.button href={ (link(namespace, &params.query, &params.status)) "&next=" (hex_encode(&listed.next_page_token)) } { "Next page" }
                    }
                }
            }
        }
    };
    layout::page("Workflows", namespace, body)
}

/// The count query: the user's filter grouped by status (an ORDER BY is not counted).
fn count_query(query: &str) -> String {
    let q = query.trim();
    let upper = q.to_ascii_uppercase();
    let filter = match upper.find("ORDER BY") {
        Some(i) => q[..i].trim(),
        None => q,
    };
    if filter.is_empty() {
        "GROUP BY ExecutionStatus".to_string()
    } else {
        format!("{filter} GROUP BY ExecutionStatus")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filter_joins_the_users_query() {
        let p = |query: &str, status: &str| Params { query: query.into(), status: status.into(), next: String::new() };
        assert_eq!(combined(&p("", "")), "");
        assert_eq!(combined(&p("", "Running")), "ExecutionStatus = 'Running'");
        assert_eq!(
            combined(&p("WorkflowType = 'A' OR WorkflowType = 'B'", "Failed")),
            "ExecutionStatus = 'Failed' AND (WorkflowType = 'A' OR WorkflowType = 'B')"
        );
        assert_eq!(combined(&p("x", "Bogus")), "x");
        assert_eq!(count_query("WorkflowType = 'A' ORDER BY StartTime"), "WorkflowType = 'A' GROUP BY ExecutionStatus");
        assert_eq!(hex_decode(&hex_encode(&[0, 255, 16])), vec![0, 255, 16]);
    }
}
