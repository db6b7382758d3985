//! A namespace's health, as the chapter asks people to watch it: the limits in force, the largest
//! open runs as bars against the history limits (continue-as-new suggested, warn, error), with
//! the runs that ignored a continue-as-new suggestion marked, and
//! the findings of `uhrwerk doctor`, computed by the doctor's own engine against this server.

use std::collections::HashMap;

use axum::response::Response;
use maud::{Markup, html};
use tonic::Request;
use uhrwerk_doctor::finding::Check;
use uhrwerk_doctor::{checks, limits as doctor_limits, scan};
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::workflow::v1 as workflow_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::layout::{self, bytes, encode};
use crate::frontend::Frontend;

/// Open runs shown per dimension.
const LARGEST: i32 = 15;

pub async fn page(frontend: &Frontend, namespace: &str) -> Response {
    let limits = frontend.limits();
    let mut doctor = doctor_limits::Limits::default();
    for key in crate::config::LIMIT_KEYS {
        doctor.set(key.key, (key.get)(&limits), doctor_limits::Source::Override);
    }
    let now_ms = frontend.now_ms();
    let settings = checks::Settings { limits: doctor.clone(), now_ms, ..Default::default() };
    let opts = scan::ScanOptions {
        namespace: namespace.to_string(),
        max_runs: 1000,
        now_ms,
        since_ms: settings.since_ms,
        concurrency: 8,
    };
    // In process, through the same routing as the UI's other calls: no connection to the
    // server's own port, which may be TLS with a CA this process does not hold.
    let client = uhrwerk_doctor::connection::client(frontend.routed_workflow_service(), None);
    let examined = uhrwerk_doctor::examine(&client, &opts, &settings, &[]).await;
    let by_length = largest(frontend, namespace, "HistoryLength").await;
    let by_size = largest(frontend, namespace, "HistorySizeBytes").await;
    // The doctor's DR103 findings, by run: continue-as-new suggested and ignored.
    let ignored: HashMap<String, (i64, i64)> = examined
        .as_ref()
        .map(|(findings, _)| {
            findings
                .iter()
                .filter(|f| f.check == Check::ContinueAsNewIgnored)
                .filter_map(|f| {
                    let tasks = f.data.get("workflow_tasks_since").and_then(|v| v.as_i64()).unwrap_or(0);
                    Some((f.run_id.clone()?, (f.event_id.unwrap_or(0), tasks)))
                })
                .collect()
        })
        .unwrap_or_default();
    let count = [doctor.history_count_suggest(), doctor.history_count_warn(), doctor.history_count_error()];
    let size = [doctor.history_size_suggest(), doctor.history_size_warn(), doctor.history_size_error()];
    let body = html! {
        h1 { "Health" }
        p.muted { "What the best-practices chapter asks you to watch, for namespace " (namespace) "." }
        h2 { "Findings of uhrwerk doctor" }
        @match &examined {
            Err(e) => div.error { "The doctor could not read this server: " (e) },
            Ok((findings, result)) => {
                p.muted {
                    (result.open_runs) " open runs and " (result.closed_runs) " closed in the last 24 h read, "
                    (result.snapshot.queues.len()) " task queues described."
                }
                @if findings.is_empty() {
                    p #no-findings { "No findings." }
                } @else {
                    table #findings {
                        thead { tr { th { "Severity" } th { "Code" } th { "Finding" } th { "Subject" } th { "Fix" } } }
                        tbody {
                            @for f in findings {
                                tr class={ "finding sev-" (f.severity.as_str()) } {
                                    td { span class={ "severity " (f.severity.as_str()) } { (f.severity.as_str()) } }
                                    td.mono { (f.code) }
                                    td { strong { (f.title) } div { (f.detail) } div.muted { "chapter section " (f.section) } }
                                    td.id {
                                        @match (&f.workflow_id, &f.run_id) {
                                            (Some(w), Some(r)) => a href={ "/namespaces/" (encode(namespace)) "/workflows/" (encode(w)) "/" (encode(r)) } { (w) },
                                            _ => (f.subject),
                                        }
                                    }
                                    td { (f.fix) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Largest open runs by history length" }
        (bars(namespace, &by_length, &ignored, count, |e| e.history_length, |v| format!("{v} events")))
        h2 { "Largest open runs by history size" }
        (bars(namespace, &by_size, &ignored, size, |e| e.history_size_bytes, bytes))
        h2 { "Limits in force" }
        table #limits {
            thead { tr { th { "Dynamic config key" } th { "Value" } } }
            tbody {
                @for key in crate::config::LIMIT_KEYS {
                    tr { td.mono { (key.key) } td.num { ((key.get)(&limits)) } }
                }
            }
        }
    };
    layout::page("Health", namespace, body)
}

async fn largest(frontend: &Frontend, namespace: &str, attribute: &str) -> Vec<workflow_pb::WorkflowExecutionInfo> {
    frontend
        .list_workflow_executions(Request::new(pb::ListWorkflowExecutionsRequest {
            namespace: namespace.to_string(),
            page_size: LARGEST,
            next_page_token: Vec::new(),
            query: format!("ExecutionStatus = 'Running' ORDER BY {attribute} DESC"),
        }))
        .await
        .map(|r| r.into_inner().executions)
        .unwrap_or_default()
}

/// One bar per run, its length the value against the error limit, with marks at the suggestion
/// and warn limits; the class says which limit the run is past.
fn bars(
    namespace: &str,
    runs: &[workflow_pb::WorkflowExecutionInfo],
    ignored: &HashMap<String, (i64, i64)>,
    [suggest, warn, error]: [i64; 3],
    value: impl Fn(&workflow_pb::WorkflowExecutionInfo) -> i64,
    show: impl Fn(i64) -> String,
) -> Markup {
    let scale = |v: i64| (v.max(0) as f64 / error.max(1) as f64 * 100.0).min(100.0);
    html! {
        @if runs.is_empty() {
            p.muted { "No open runs." }
        } @else {
            table.bars {
                thead { tr {
                    th { "Workflow ID" } th { "Value" }
                    th { "against suggest " (show(suggest)) ", warn " (show(warn)) ", error " (show(error)) }
                    th { "Continue-as-new" }
                } }
                tbody {
                    @for e in runs {
                        @let v = value(e);
                        @let level = if v >= error { "over-error" } else if v >= warn { "over-warn" } else if v >= suggest { "over-suggest" } else { "fine" };
                        @let execution = e.execution.clone().unwrap_or_default();
                        tr class={ "limit-bar " (level) } {
                            td.id { a href={ "/namespaces/" (encode(namespace)) "/workflows/" (encode(&execution.workflow_id)) "/" (encode(&execution.run_id)) } { (execution.workflow_id) } }
                            td.num { (show(v)) }
                            td.meter {
                                div.track {
                                    div class={ "fill " (level) } style={ "width: " (format!("{:.2}", scale(v))) "%" } {}
                                    div.mark style={ "left: " (format!("{:.2}", scale(suggest))) "%" } title="continue-as-new suggested" {}
                                    div.mark.warn style={ "left: " (format!("{:.2}", scale(warn))) "%" } title="warn limit" {}
                                }
                            }
                            td.can {
                                @if let Some((event, tasks)) = ignored.get(&execution.run_id) {
                                    span.can-ignored { "suggested at event " (event) ", ignored for " (tasks) " workflow task(s)" }
                                } @else if v >= suggest {
                                    span.can-suggested { "suggested" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
