//! Task queues: the queues the namespace's recent runs use, and one queue's pollers and backlog
//! per task type, with the chapter's warnings (13.5): a backlog nobody polls, a single worker.

use std::collections::BTreeSet;

use axum::response::Response;
use maud::{Markup, html};
use tonic::Request;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::taskqueue::v1 as taskqueue_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::layout::{self, encode, time};
use crate::frontend::Frontend;
use crate::matching::Minute;

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
        // Through the routing: in a cluster the queue's owner knows its pollers and backlog.
        let described = super::routed::<_, pb::DescribeTaskQueueResponse>(
            frontend,
            "DescribeTaskQueue",
            pb::DescribeTaskQueueRequest {
                namespace: namespace.to_string(),
                task_queue: Some(taskqueue_pb::TaskQueue {
                    name: name.to_string(),
                    kind: enums_pb::TaskQueueKind::Normal as i32,
                    ..Default::default()
                }),
                task_queue_type: kind as i32,
                report_stats: true,
                ..Default::default()
            },
        )
        .await;
        match described {
            Ok(r) => {
                let storage_kind = match kind {
                    enums_pb::TaskQueueType::Activity => uhrwerk_storage::TaskKind::Activity,
                    _ => uhrwerk_storage::TaskKind::Workflow,
                };
                let hour = frontend.queue_last_hour(namespace, name, storage_kind).await;
                sections.push((label, kind, r, hour))
            }
            Err(status) => return layout::failed("Task queue", namespace, &status),
        }
    }
    let body = html! {
        h1 { "Task queue " (name) }
        @for (label, kind, d, hour) in &sections {
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
                h3 { "The last hour" }
                div.charts {
                    (minute_chart("backlog", "largest backlog per minute, in tasks", hour, |m| m.backlog_max as f64, |v| format!("{v:.0}")))
                    (minute_chart("schedule-to-start", "schedule-to-start per minute: mean (bar) and largest (tick), in ms", hour, |m| m.wait_mean_ms as f64, |v| format!("{v:.0} ms")))
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

/// A bar per minute of the last hour, scaled to the largest value; the schedule-to-start chart
/// also ticks each minute's largest wait.
fn minute_chart(
    class: &str,
    caption: &str,
    hour: &[Minute],
    value: impl Fn(&Minute) -> f64,
    show: impl Fn(f64) -> String,
) -> Markup {
    const W: f64 = 480.0;
    const H: f64 = 120.0;
    const TOP: f64 = 14.0;
    let ticks = class == "schedule-to-start";
    let top = hour.iter().map(|m| if ticks { m.wait_max_ms as f64 } else { value(m) }).fold(0.0_f64, f64::max).max(1.0);
    let step = W / hour.len().max(1) as f64;
    let y = |v: f64| H - v / top * (H - TOP);
    html! {
        figure class={ "minute-chart " (class) } {
            svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(caption) {
                text.axis x="2" y="11" font-size="10" { "max " (show(top)) }
                text.axis x=(W - 2.0) y="11" font-size="10" text-anchor="end" { "60 min ago to now" }
                @for (i, m) in hour.iter().enumerate() {
                    @let v = value(m);
                    @if v > 0.0 {
                        rect.minute x=(format!("{:.1}", i as f64 * step + 1.0)) y=(format!("{:.1}", y(v))) width=(format!("{:.1}", (step - 2.0).max(1.0))) height=(format!("{:.1}", H - y(v))) {
                            title { (time_of(m.start_ms)) ": " (show(v)) @if ticks { ", largest " (show(m.wait_max_ms as f64)) ", " (m.dispatched) " dispatched" } }
                        }
                    }
                    @if ticks && m.dispatched > 0 {
                        line.tick x1=(format!("{:.1}", i as f64 * step)) x2=(format!("{:.1}", (i + 1) as f64 * step)) y1=(format!("{:.1}", y(m.wait_max_ms as f64))) y2=(format!("{:.1}", y(m.wait_max_ms as f64))) {}
                    }
                }
            }
            figcaption.muted { (caption) ", " (hour.first().map(|m| time_of(m.start_ms)).unwrap_or_default()) " to now" }
        }
    }
}

fn time_of(ms: i64) -> String {
    time(Some(&uhrwerk_proto::wkt::Timestamp { seconds: ms.div_euclid(1000), nanos: 0 }))
}
