//! Prometheus metrics: Temporal's server metric names where they exist (service_*, task queue
//! and history metrics) plus Uhrwerk's own (`uhrwerk_*`), and the `/metrics` HTTP endpoint.

use std::sync::Arc;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use prometheus::{GaugeVec, exponential_buckets};
use tokio::sync::watch;
use uhrwerk_core::kernel::limits::{
    HISTORY_COUNT_EXCEEDED, HISTORY_SIZE_EXCEEDED, SUGGESTION_IGNORED_AFTER, WARN_LIMITS,
};
use uhrwerk_core::state::RunState;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::history::v1::HistoryEvent;
use uhrwerk_proto::temporal::api::history::v1::history_event::Attributes;

use crate::matching::Matching;

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub service_requests: IntCounterVec,
    pub service_errors: IntCounterVec,
    pub service_latency: HistogramVec,
    pub task_schedule_to_start_latency: HistogramVec,
    pub poll_success: IntCounterVec,
    pub poll_success_sync: IntCounterVec,
    pub poll_timeouts: IntCounterVec,
    pub no_poller_tasks: IntCounterVec,
    approximate_backlog_count: IntGaugeVec,
    approximate_backlog_age_seconds: GaugeVec,
    pollers: IntGaugeVec,
    history_size: HistogramVec,
    history_count: HistogramVec,
    limit: IntGaugeVec,
    warn_limit_exceeded: IntCounterVec,
    history_limit_terminations: IntCounterVec,
    continue_as_new_ignored: IntCounterVec,
    continue_as_new: IntCounterVec,
    workflow_task_failures: IntCounterVec,
    nondeterminism_failures: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry.register(Box::new(metric.clone())).expect("metric registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry.register(Box::new(metric.clone())).expect("metric registered once");
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let metric =
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("valid metric definition");
    registry.register(Box::new(metric.clone())).expect("metric registered once");
    metric
}

const QUEUE: &[&str] = &["namespace", "taskqueue", "task_type"];
const WORKFLOW: &[&str] = &["namespace", "workflow_type"];

fn latency_buckets() -> Vec<f64> {
    vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
}

/// The `task_type` label of a task kind, as Temporal writes it.
pub fn task_type(kind: uhrwerk_storage::TaskKind) -> &'static str {
    match kind {
        uhrwerk_storage::TaskKind::Workflow => "Workflow",
        uhrwerk_storage::TaskKind::Activity => "Activity",
    }
}

impl Metrics {
    pub fn new(limit_keys: &[(&'static str, i64)]) -> Arc<Self> {
        let registry = Registry::new();
        let r = &registry;
        let metrics = Self {
            service_requests: counter(r, "service_requests", "Requests per gRPC operation.", &["operation"]),
            service_errors: counter(
                r,
                "service_errors",
                "Requests per gRPC operation that ended with an error, by gRPC status code.",
                &["operation", "status_code"],
            ),
            service_latency: histogram(
                r,
                "service_latency",
                "Time to answer a request, in seconds (long polls included).",
                &["operation"],
                latency_buckets(),
            ),
            task_schedule_to_start_latency: histogram(
                r,
                "task_schedule_to_start_latency",
                "Time tasks waited in their queue for a poller, in seconds.",
                QUEUE,
                latency_buckets(),
            ),
            poll_success: counter(r, "poll_success", "Polls that received a task.", QUEUE),
            poll_success_sync: counter(
                r,
                "poll_success_sync",
                "Polls that received a task handed over while they waited.",
                QUEUE,
            ),
            poll_timeouts: counter(r, "poll_timeouts", "Polls that ended without a task.", QUEUE),
            no_poller_tasks: counter(
                r,
                "no_poller_tasks",
                "Tasks added to a queue that no worker polled in the last five minutes.",
                QUEUE,
            ),
            approximate_backlog_count: gauge(r, "approximate_backlog_count", "Tasks waiting in a queue.", QUEUE),
            approximate_backlog_age_seconds: {
                let metric = GaugeVec::new(
                    Opts::new("approximate_backlog_age_seconds", "Age of the oldest waiting task, in seconds."),
                    QUEUE,
                )
                .expect("valid metric definition");
                r.register(Box::new(metric.clone())).expect("metric registered once");
                metric
            },
            pollers: gauge(
                r,
                "uhrwerk_pollers",
                "Distinct worker identities that polled a queue in the last five minutes.",
                QUEUE,
            ),
            history_size: histogram(
                r,
                "history_size",
                "History size in bytes of runs when they close.",
                WORKFLOW,
                exponential_buckets(1024.0, 4.0, 10).expect("valid buckets"),
            ),
            history_count: histogram(
                r,
                "history_count",
                "History length in events of runs when they close.",
                WORKFLOW,
                exponential_buckets(8.0, 4.0, 9).expect("valid buckets"),
            ),
            limit: gauge(r, "uhrwerk_limit", "Configured limits, by their Temporal dynamic-config name.", &["name"]),
            warn_limit_exceeded: counter(
                r,
                "uhrwerk_warn_limit_exceeded",
                "Runs that crossed a warn-level limit.",
                &["namespace", "workflow_type", "limit"],
            ),
            history_limit_terminations: counter(
                r,
                "uhrwerk_history_limit_terminations",
                "Runs terminated for crossing a history error limit.",
                &["namespace", "workflow_type", "limit"],
            ),
            continue_as_new_ignored: counter(
                r,
                "uhrwerk_continue_as_new_suggestion_ignored",
                "Runs still going 10 workflow tasks after continue-as-new was first suggested.",
                WORKFLOW,
            ),
            continue_as_new: counter(r, "uhrwerk_continue_as_new", "Runs that continued as new.", WORKFLOW),
            workflow_task_failures: counter(
                r,
                "uhrwerk_workflow_task_failures",
                "Workflow task failures, by cause.",
                &["namespace", "workflow_type", "cause"],
            ),
            nondeterminism_failures: counter(
                r,
                "uhrwerk_nondeterminism_failures",
                "Workflow task failures caused by non-determinism.",
                WORKFLOW,
            ),
            registry,
        };
        for (key, value) in limit_keys {
            metrics.limit.with_label_values(&[key]).set(*value);
        }
        Arc::new(metrics)
    }

    /// Counts what a committed transition of a run tells: warn-limit crossings, ignored
    /// continue-as-new suggestions, workflow task failures, and the close of the run.
    pub fn transition(&self, before: Option<&RunState>, after: &RunState, events: &[HistoryEvent]) {
        let labels = [after.namespace.as_str(), after.workflow_type.as_str()];
        let old_warned = before.map_or(0, |b| b.warned_limits);
        for (bit, name) in WARN_LIMITS {
            if after.warned_limits & bit != 0 && old_warned & bit == 0 {
                self.warn_limit_exceeded.with_label_values(&[labels[0], labels[1], name]).inc();
            }
        }
        let old_suggestions = before.map_or(0, |b| b.continue_as_new_suggestions);
        if old_suggestions < SUGGESTION_IGNORED_AFTER && after.continue_as_new_suggestions >= SUGGESTION_IGNORED_AFTER {
            self.continue_as_new_ignored.with_label_values(&labels).inc();
        }
        for event in events {
            match &event.attributes {
                Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => {
                    let cause =
                        enums_pb::WorkflowTaskFailedCause::try_from(a.cause).map_or("UNKNOWN", |c| c.as_str_name());
                    let cause = cause.trim_start_matches("WORKFLOW_TASK_FAILED_CAUSE_");
                    self.workflow_task_failures.with_label_values(&[labels[0], labels[1], cause]).inc();
                    if a.cause == enums_pb::WorkflowTaskFailedCause::NonDeterministicError as i32 {
                        self.nondeterminism_failures.with_label_values(&labels).inc();
                    }
                }
                Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => {
                    let limit = match a.reason.as_str() {
                        HISTORY_COUNT_EXCEEDED => Some("limit.historyCount.error"),
                        HISTORY_SIZE_EXCEEDED => Some("limit.historySize.error"),
                        _ => None,
                    };
                    if let Some(limit) = limit {
                        self.history_limit_terminations.with_label_values(&[labels[0], labels[1], limit]).inc();
                    }
                }
                Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(_)) => {
                    self.continue_as_new.with_label_values(&labels).inc()
                }
                _ => {}
            }
        }
        if !after.is_open() && events.iter().any(|e| e.event_id == after.close_event_id) {
            self.history_size.with_label_values(&labels).observe(after.history_size_bytes as f64);
            self.history_count.with_label_values(&labels).observe((after.next_event_id - 1) as f64);
        }
    }

    /// The text exposition, with the task queue gauges read from matching now.
    pub fn render(&self, matching: &Matching) -> String {
        self.approximate_backlog_count.reset();
        self.approximate_backlog_age_seconds.reset();
        self.pollers.reset();
        for (namespace, queue, kind) in matching.queues() {
            let info = matching.describe(&namespace, &queue, kind);
            let labels = [namespace.as_str(), queue.as_str(), task_type(kind)];
            self.approximate_backlog_count.with_label_values(&labels).set(info.backlog as i64);
            self.approximate_backlog_age_seconds.with_label_values(&labels).set(info.backlog_age_ms as f64 / 1000.0);
            self.pollers.with_label_values(&labels).set(info.pollers.len() as i64);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!("failed to encode metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// A latency timer of one queue's schedule-to-start.
    pub fn schedule_to_start(&self, namespace: &str, queue: &str, kind: uhrwerk_storage::TaskKind) -> Histogram {
        self.task_schedule_to_start_latency.with_label_values(&[namespace, queue, task_type(kind)])
    }
}

/// Serves `GET /metrics` on `listener` until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    matching: Matching,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (metrics, matching) = (metrics.clone(), matching.clone());
            async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render(&matching)) }
        }),
    );
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(crate::transport::http_listener(listener), app).with_graceful_shutdown(stop).await {
        tracing::warn!("the metrics endpoint stopped: {e}");
    }
}
