//! Matching's own metrics, under Temporal's names: polls and their outcome, schedule-to-start
//! latency and tasks nobody polls for as they happen, and the queue gauges (backlog, its age,
//! pollers) read from the queues whenever the registry is scraped.

use std::sync::Weak;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use uhrwerk_storage::TaskKind;

use super::Inner;

const QUEUE: &[&str] = &["namespace", "taskqueue", "task_type"];

/// The `task_type` label of a task kind, as Temporal writes it.
pub(super) fn task_type(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Workflow => "Workflow",
        TaskKind::Activity => "Activity",
    }
}

/// The counters matching moves itself.
pub(super) struct QueueMetrics {
    pub schedule_to_start: HistogramVec,
    pub poll_success: IntCounterVec,
    pub poll_success_sync: IntCounterVec,
    pub poll_timeouts: IntCounterVec,
    pub no_poller_tasks: IntCounterVec,
}

fn register<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry.register(Box::new(metric.clone())).expect("metric registered once");
    metric
}

impl QueueMetrics {
    pub(super) fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            register(registry, IntCounterVec::new(Opts::new(name, help), QUEUE).expect("valid metric definition"))
        };
        let buckets = vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
        Self {
            schedule_to_start: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "task_schedule_to_start_latency",
                        "Time tasks waited in their queue for a poller, in seconds.",
                    )
                    .buckets(buckets),
                    QUEUE,
                )
                .expect("valid metric definition"),
            ),
            poll_success: counter("poll_success", "Polls that received a task."),
            poll_success_sync: counter(
                "poll_success_sync",
                "Polls that received a task handed over while they waited.",
            ),
            poll_timeouts: counter("poll_timeouts", "Polls that ended without a task."),
            no_poller_tasks: counter(
                "no_poller_tasks",
                "Tasks added to a queue that no worker polled in the last five minutes.",
            ),
        }
    }

    /// Drops the series of a queue that matching forgot (idle for five minutes), so that the
    /// metrics do not grow with every task queue name ever used; a queue used again starts its
    /// counters at zero, which Prometheus reads as a counter reset.
    pub(super) fn forget(&self, namespace: &str, queue: &str, kind: TaskKind) {
        let labels = [namespace, queue, task_type(kind)];
        // Err: the queue never had that series.
        let _ = self.schedule_to_start.remove_label_values(&labels);
        for counter in [&self.poll_success, &self.poll_success_sync, &self.poll_timeouts, &self.no_poller_tasks] {
            let _ = counter.remove_label_values(&labels);
        }
    }

    pub(super) fn observe_schedule_to_start(&self, namespace: &str, queue: &str, kind: TaskKind, seconds: f64) {
        self.schedule_to_start.with_label_values(&[namespace, queue, task_type(kind)]).observe(seconds);
    }
}

/// The queue gauges, computed from the queues at each scrape.
pub(super) struct QueueGauges {
    pub(super) matching: Weak<Inner>,
    backlog: IntGaugeVec,
    backlog_age: GaugeVec,
    pollers: IntGaugeVec,
}

impl QueueGauges {
    pub(super) fn new(matching: Weak<Inner>) -> Self {
        let gauge =
            |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), QUEUE).expect("valid metric definition");
        Self {
            matching,
            backlog: gauge("approximate_backlog_count", "Tasks waiting in a queue."),
            backlog_age: GaugeVec::new(
                Opts::new("approximate_backlog_age_seconds", "Age of the oldest waiting task, in seconds."),
                QUEUE,
            )
            .expect("valid metric definition"),
            pollers: gauge(
                "uhrwerk_pollers",
                "Distinct worker identities that polled a queue in the last five minutes.",
            ),
        }
    }
}

impl Collector for QueueGauges {
    fn desc(&self) -> Vec<&Desc> {
        [self.backlog.desc(), self.backlog_age.desc(), self.pollers.desc()].concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.backlog.reset();
        self.backlog_age.reset();
        self.pollers.reset();
        if let Some(inner) = self.matching.upgrade() {
            let matching = super::Matching { inner };
            for (namespace, queue, kind) in matching.queues() {
                let info = matching.describe(&namespace, &queue, kind);
                let labels = [namespace.as_str(), queue.as_str(), task_type(kind)];
                self.backlog.with_label_values(&labels).set(info.backlog as i64);
                self.backlog_age.with_label_values(&labels).set(info.backlog_age_ms as f64 / 1000.0);
                self.pollers.with_label_values(&labels).set(info.pollers.len() as i64);
            }
        }
        [self.backlog.collect(), self.backlog_age.collect(), self.pollers.collect()].concat()
    }
}
