//! Task queues: the queues the namespace's recent runs use, and one queue's pollers and backlog
//! per task type, with the chapter's warnings (13.5): a backlog nobody polls, a single worker.

use std::collections::BTreeSet;

use axum::response::Response;
use maud::html;
use tonic::Request;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::taskqueue::v1 as taskqueue_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::layout::{self, encode, time};
use crate::frontend::Frontend;

/// Runs read to find the queues in use.
const RUNS_READ: i32 = 1000;

pub async fn index(frontend: &Frontend, namespace: &str) -> Response {
    let listed = frontend
        .list_workflow_executions(Request::new(pb::ListWorkflowExecutionsRequest {
            namespace: namespace.to_string(),
            page_size: RUNS_READ,
            next_page_token: Vec::new(),
            query: String::new(),
        }))
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return layout::failed("Task queues", namespace, &status),
    };
    let queues: BTreeSet<String> =
        listed.executions.iter().map(|e| e.task_queue.clone()).filter(|q| !q.is_empty()).collect();
    let body = html! {
        h1 { "Task queues" }
        p.muted { "The workflow task queues of the latest " (RUNS_READ) " runs; activity queues show on each queue's page when they share its name." }
        @if queues.is_empty() {
            p.muted { "No runs yet." }
        } @else {
            ul #task-queues {
                @for q in &queues {
                    li { a href={ "/namespaces/" (encode(namespace)) "/task-queues/" (encode(q)) } { (q) } }
                }
            }
        }
    };
    layout::page("Task queues", namespace, body)
}

pub async fn page(frontend: &Frontend, namespace: &str, name: &str) -> Response {
    let mut sections = Vec::new();
    for (label, kind) in
        [("Workflow tasks", enums_pb::TaskQueueType::Workflow), ("Activity tasks", enums_pb::TaskQueueType::Activity)]
    {
        let described = frontend
            .describe_task_queue(Request::new(pb::DescribeTaskQueueRequest {
                namespace: namespace.to_string(),
                task_queue: Some(taskqueue_pb::TaskQueue {
                    name: name.to_string(),
                    kind: enums_pb::TaskQueueKind::Normal as i32,
                    ..Default::default()
                }),
                task_queue_type: kind as i32,
                report_stats: true,
                ..Default::default()
            }))
            .await;
        match described {
            Ok(r) => sections.push((label, kind, r.into_inner())),
            Err(status) => return layout::failed("Task queue", namespace, &status),
        }
    }
    let body = html! {
        h1 { "Task queue " (name) }
        @for (label, kind, d) in &sections {
            @let stats = d.stats.unwrap_or_default();
            @let backlog = stats.approximate_backlog_count;
            @let age = stats.approximate_backlog_age.as_ref().map(|a| a.seconds as f64 + f64::from(a.nanos) / 1e9).unwrap_or(0.0);
            section id={ "queue-" (kind.as_str_name().trim_start_matches("TASK_QUEUE_TYPE_").to_lowercase()) } {
                h2 { (label) }
                @if d.pollers.is_empty() && backlog > 0 {
                    div.error.warning-no-pollers { "Backlog of " (backlog) " task(s) and no worker polls this queue (13.5): start workers, or check the task queue name they poll." }
                } @else if d.pollers.len() == 1 {
                    div.error.warning-single-worker { "A single worker polls this queue (13.5 asks for at least two): if it stops, the queue stops." }
                }
                dl.summary {
                    dt { "Backlog" } dd.backlog { (backlog) " task(s)" @if backlog > 0 { ", the oldest " (format!("{age:.1}")) " s old" } }
                    dt { "Add rate" } dd { (format!("{:.2}", stats.tasks_add_rate)) " /s" }
                    dt { "Dispatch rate" } dd { (format!("{:.2}", stats.tasks_dispatch_rate)) " /s" }
                }
                @if d.pollers.is_empty() {
                    p.muted { "No pollers." }
                } @else {
                    table.pollers {
                        thead { tr { th { "Identity" } th { "Last poll" } th { "Rate per second" } } }
                        tbody {
                            @for p in &d.pollers {
                                tr { td.id { (p.identity) } td.time { (time(p.last_access_time.as_ref())) } td.num { (format!("{:.1}", p.rate_per_second)) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&format!("Task queue {name}"), namespace, body)
}
