//! Prometheus metrics: Temporal's server metric names where they exist (service_*, task queue
//! and history metrics) plus Uhrwerk's own (`uhrwerk_*`), and the `/metrics` HTTP endpoint.

use std::sync::Arc;

use prometheus::exponential_buckets;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::sync::watch;
use uhrwerk_core::kernel::limits::{SUGGESTION_IGNORED_AFTER, WARN_LIMITS};
use uhrwerk_core::state::RunState;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::history::v1::HistoryEvent;
use uhrwerk_proto::temporal::api::history::v1::history_event::Attributes;

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub service_requests: IntCounterVec,
    pub service_errors: IntCounterVec,
    pub service_latency: HistogramVec,
    history_size: HistogramVec,
    history_count: HistogramVec,
    limit: IntGaugeVec,
    warn_limit_exceeded: IntCounterVec,
    history_limit_terminations: IntCounterVec,
    continue_as_new_ignored: IntCounterVec,
    continue_as_new: IntCounterVec,
    workflow_task_failures: IntCounterVec,
    nondeterminism_failures: IntCounterVec,
    /// Runs whose state is in memory now (at most `history.cacheMaxSize`).
    pub runs_in_memory: prometheus::IntGauge,
}

pub(crate) fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry.register(Box::new(metric.clone())).expect("metric registered once");
    metric
}

pub(crate) fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
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

const WORKFLOW: &[&str] = &["namespace", "workflow_type"];

fn latency_buckets() -> Vec<f64> {
    vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
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
            runs_in_memory: {
                let metric = prometheus::IntGauge::new(
                    "uhrwerk_runs_in_memory",
                    "Workflow ids whose latest run is held in memory (at most history.cacheMaxSize).",
                )
                .expect("valid metric definition");
                r.register(Box::new(metric.clone())).expect("metric registered once");
                metric
            },
            registry,
        };
        for (key, value) in limit_keys {
            metrics.limit.with_label_values(&[key]).set(*value);
        }
        Arc::new(metrics)
    }

    /// Counts what a committed transition of a run tells: warn-limit crossings, ignored
    /// continue-as-new suggestions, workflow task failures, and the close of the run.
    /// `limit_terminated`: the key of the history limit that terminated the run, if one did.
    pub fn transition(
        &self,
        before: Option<&RunState>,
        after: &RunState,
        events: &[HistoryEvent],
        limit_terminated: Option<&'static str>,
    ) {
        let labels = [after.namespace.as_str(), after.workflow_type.as_str()];
        if let Some(limit) = limit_terminated {
            self.history_limit_terminations.with_label_values(&[labels[0], labels[1], limit]).inc();
        }
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

    /// The registry other parts (matching) register their own metrics in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!("failed to encode metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Serves `GET /metrics` on `listener` until shutdown.
pub async fn serve(listener: crate::tls::HttpListener, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render()) }
        }),
    );
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::warn!("the metrics endpoint stopped: {e}");
    }
}
