//! Matching: per task queue, a FIFO of tasks and a FIFO of waiting polls. A task offered while a
//! poll waits is handed over in memory; otherwise it waits in the queue. The committed outbox in
//! the store is what brings queued tasks back after a restart (always to the normal queue).
//! Each queue also remembers its recent pollers and its add and dispatch rates, for
//! DescribeTaskQueue.
//!
//! Sticky queues (one per worker, for the runs it has cached) are queues like the others. A
//! workflow task goes to a run's sticky queue only while that queue's worker polls (a poll
//! waits now or came within the last 10 s, Temporal's `stickyPollerUnavailableWindow`);
//! otherwise to the normal queue at once. ShutdownWorker forgets a sticky queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use uhrwerk_storage::{OutboxTask, TaskKind};

use crate::clock::Clock;
use metrics::{QueueGauges, QueueMetrics, task_type};

mod metrics;
mod remote;
mod series;

pub use remote::{from_wire, to_wire};

pub use series::Minute;
use series::QueueSeries;

type QueueKey = (String, String, TaskKind);

/// What a poll can receive: a durable task from the outbox, or a legacy query task (workflow
/// task queues only), which lives in memory only.
#[derive(Clone, Debug, PartialEq)]
pub enum Dispatch {
    /// A task and the queue it was offered to (the run's sticky queue, or the task's own).
    Task(OutboxTask, String),
    Query(QueryTask),
}

#[derive(Clone, Debug, PartialEq)]
pub struct QueryTask {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    pub task_queue: String,
    pub query_id: String,
}

impl Dispatch {
    fn key(&self) -> QueueKey {
        match self {
            Dispatch::Task(t, queue) => (t.namespace.clone(), queue.clone(), t.kind),
            Dispatch::Query(q) => (q.namespace.clone(), q.task_queue.clone(), TaskKind::Workflow),
        }
    }
}

/// How long a poller is listed after its last poll (Temporal's `matching.pollerHistoryTTL`).
const POLLER_TTL_MS: i64 = 5 * 60 * 1000;
/// How long after its last poll a sticky queue still gets tasks (Temporal's
/// `stickyPollerUnavailableWindow`).
const STICKY_POLLER_WINDOW_MS: i64 = 10_000;
/// The `taskqueue` label of a sticky queue whose polls do not name their normal queue. Sticky
/// queues are counted under their normal queue's name (as Temporal's), so that the per-worker
/// queue names do not each make a series.
const STICKY_LABEL: &str = "__sticky__";
/// The window over which add and dispatch rates are measured.
const RATE_WINDOW_MS: i64 = 30_000;
/// Most timestamps kept per rate window.
const RATE_SAMPLES: usize = 100_000;

#[derive(Default)]
struct Queue {
    /// A worker's sticky queue (its polls say so).
    sticky: bool,
    /// The `taskqueue` label of a sticky queue's metrics: its normal queue.
    label: Option<String>,
    /// Queued tasks with the time they were queued.
    tasks: VecDeque<(Dispatch, i64)>,
    waiters: VecDeque<oneshot::Sender<Dispatch>>,
    /// Poller identity -> last poll time.
    pollers: HashMap<String, i64>,
    added: VecDeque<i64>,
    dispatched: VecDeque<i64>,
}

fn record(samples: &mut VecDeque<i64>, now: i64) {
    while samples.front().is_some_and(|t| *t < now - RATE_WINDOW_MS) || samples.len() >= RATE_SAMPLES {
        samples.pop_front();
    }
    samples.push_back(now);
}

fn rate(samples: &VecDeque<i64>, now: i64) -> f32 {
    let recent = samples.iter().filter(|t| **t >= now - RATE_WINDOW_MS).count();
    recent as f32 / (RATE_WINDOW_MS as f32 / 1000.0)
}

/// What DescribeTaskQueue reports about one queue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueInfo {
    /// (identity, last poll time in ms), most recent first.
    pub pollers: Vec<(String, i64)>,
    pub backlog: usize,
    /// Age of the oldest queued task in ms; 0 without backlog.
    pub backlog_age_ms: i64,
    pub add_rate: f32,
    pub dispatch_rate: f32,
}

/// A parked poll. Dropped with a task inside (the poll ended or its client went away just as the
/// task arrived), it offers the task again so nothing handed over is lost.
struct Waiter {
    rx: Option<oneshot::Receiver<Dispatch>>,
    matching: Matching,
}

impl Waiter {
    fn take_back(&mut self) -> Option<Dispatch> {
        let mut rx = self.rx.take()?;
        rx.close();
        rx.try_recv().ok()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(task) = self.take_back() {
            self.matching.offer_inner(task, false);
        }
    }
}

/// Handle to the matching service; cheap to clone.
#[derive(Clone)]
pub struct Matching {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    clock: Arc<dyn Clock>,
    metrics: QueueMetrics,
    queues: Mutex<HashMap<QueueKey, Queue>>,
    /// The last hour of each queue (taken after `queues` when both are held).
    series: Mutex<QueueSeries>,
    shutdown: watch::Receiver<bool>,
    /// The cluster this node is part of, if any: queues other nodes own are theirs.
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

impl Matching {
    /// Matching registers its metrics in `registry`: counters it moves, and the queue gauges
    /// read at each scrape.
    pub fn new(clock: Arc<dyn Clock>, registry: &prometheus::Registry, shutdown: watch::Receiver<bool>) -> Self {
        let metrics = QueueMetrics::new(registry);
        let inner = Arc::new(Inner {
            clock,
            metrics,
            queues: Mutex::default(),
            series: Mutex::default(),
            shutdown,
            cluster: std::sync::OnceLock::new(),
        });
        registry.register(Box::new(QueueGauges::new(Arc::downgrade(&inner)))).expect("queue gauges registered once");
        Self { inner }
    }

    /// Offers a task on its own queue: to the oldest waiting poll, or to the back of the queue
    /// (in a cluster, on the node that owns the queue).
    pub fn offer(&self, task: OutboxTask) {
        let queue = task.task_queue.clone();
        if let Some(node) = self.remote_owner(&task.namespace, &queue) {
            self.hand_over(node, Dispatch::Task(task, queue), String::new());
            return;
        }
        self.offer_dispatch(Dispatch::Task(task, queue));
    }

    /// Offers a workflow task on the run's sticky queue while that queue's worker polls, else
    /// on its normal queue.
    pub fn offer_workflow_task(&self, task: OutboxTask, sticky_queue: &str) {
        if !sticky_queue.is_empty()
            && let Some(node) = self.remote_owner(&task.namespace, sticky_queue)
        {
            let queue = task.task_queue.clone();
            self.hand_over(node, Dispatch::Task(task, queue), sticky_queue.to_string());
            return;
        }
        if !sticky_queue.is_empty() && self.sticky_available(&task.namespace, sticky_queue) {
            self.offer_dispatch(Dispatch::Task(task, sticky_queue.to_string()));
        } else {
            self.offer(task);
        }
    }

    /// Whether a sticky queue's worker is there: a poll waits now or came recently.
    pub fn sticky_available(&self, namespace: &str, sticky_queue: &str) -> bool {
        let now = self.inner.clock.now_ms();
        let queues = self.inner.queues.lock().expect("matching lock");
        queues.get(&(namespace.to_string(), sticky_queue.to_string(), TaskKind::Workflow)).is_some_and(|q| {
            !q.waiters.is_empty() || q.pollers.values().any(|last| *last >= now - STICKY_POLLER_WINDOW_MS)
        })
    }

    /// Offers a legacy query task to the workflow task queue.
    pub fn offer_query(&self, query: QueryTask) {
        if let Some(node) = self.remote_owner(&query.namespace, &query.task_queue) {
            self.hand_over(node, Dispatch::Query(query), String::new());
            return;
        }
        self.offer_dispatch(Dispatch::Query(query));
    }

    fn offer_dispatch(&self, task: Dispatch) {
        self.offer_inner(task, true);
    }

    /// Hands a task to a waiting poll or queues it; `new` counts it as added.
    fn offer_inner(&self, mut task: Dispatch, new: bool) {
        let key = task.key();
        let now = self.inner.clock.now_ms();
        let mut queues = self.inner.queues.lock().expect("matching lock");
        let queue = queues.entry(key.clone()).or_default();
        if new {
            record(&mut queue.added, now);
            if !queue.pollers.values().any(|last| *last >= now - POLLER_TTL_MS) {
                let label = queue.label.as_deref().unwrap_or(key.1.as_str());
                self.inner.metrics.no_poller_tasks.with_label_values(&[&key.0, label, task_type(key.2)]).inc();
            }
        }
        while let Some(waiter) = queue.waiters.pop_front() {
            match waiter.send(task) {
                Ok(()) => {
                    record(&mut queue.dispatched, now);
                    return;
                }
                Err(returned) => task = returned,
            }
        }
        queue.tasks.push_back((task, now));
        if !queue.sticky {
            self.series().backlog((&key.0, &key.1, key.2), queue.tasks.len(), now);
        }
    }

    fn series(&self) -> std::sync::MutexGuard<'_, QueueSeries> {
        self.inner.series.lock().expect("matching series lock")
    }

    /// Waits up to `wait` for a task of `kind` on `namespace`/`task_queue`, which is a worker's
    /// sticky queue when `sticky` names its normal queue. Returns `None` on timeout, server
    /// shutdown, or when the sticky queue is forgotten (ShutdownWorker).
    pub async fn poll(
        &self,
        namespace: &str,
        task_queue: &str,
        kind: TaskKind,
        sticky: Option<&str>,
        identity: &str,
        wait: Duration,
    ) -> Option<Dispatch> {
        let mut shutdown = self.inner.shutdown.clone();
        if *shutdown.borrow() {
            return None;
        }
        let label = match sticky {
            Some(normal) if !normal.is_empty() => normal,
            Some(_) => STICKY_LABEL,
            None => task_queue,
        };
        let rx = {
            let now = self.inner.clock.now_ms();
            let mut queues = self.inner.queues.lock().expect("matching lock");
            let queue = queues.entry((namespace.to_string(), task_queue.to_string(), kind)).or_default();
            if sticky.is_some() {
                queue.sticky = true;
                queue.label = Some(label.to_string());
            }
            queue.pollers.insert(identity.to_string(), now);
            if let Some((task, queued_at)) = queue.tasks.pop_front() {
                record(&mut queue.dispatched, now);
                self.inner.metrics.poll_success.with_label_values(&[namespace, label, task_type(kind)]).inc();
                let waited = (now - queued_at).max(0);
                self.inner.metrics.observe_schedule_to_start(namespace, label, kind, waited as f64 / 1000.0);
                let mut series = self.series();
                series.dispatched((namespace, label, kind), waited, now);
                if !queue.sticky {
                    series.backlog((namespace, task_queue, kind), queue.tasks.len(), now);
                }
                return Some(task);
            }
            let (tx, rx) = oneshot::channel();
            queue.waiters.push_back(tx);
            rx
        };
        let mut waiter = Waiter { rx: Some(rx), matching: self.clone() };
        let rx = waiter.rx.as_mut().expect("just set");
        let task = tokio::select! {
            task = rx => task.ok(),
            _ = crate::clock::sleep(wait) => None,
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        if task.is_some() {
            waiter.rx = None;
        }
        // Otherwise the waiter's drop closes the channel and takes back a task that was handed
        // over just as the wait ended.
        let task = task.or_else(|| waiter.take_back());
        let labels = [namespace, label, task_type(kind)];
        if task.is_some() {
            self.inner.metrics.poll_success.with_label_values(&labels).inc();
            self.inner.metrics.poll_success_sync.with_label_values(&labels).inc();
            self.inner.metrics.observe_schedule_to_start(namespace, label, kind, 0.0);
            self.series().dispatched((namespace, label, kind), 0, self.inner.clock.now_ms());
        } else {
            self.inner.metrics.poll_timeouts.with_label_values(&labels).inc();
        }
        task
    }

    /// Forgets a worker's sticky queue (ShutdownWorker): its waiting polls end empty, and its
    /// tasks are dropped. Each of those runs has a sticky schedule-to-start timer that moves its
    /// task to the normal queue; later tasks go there at once, since nobody polls the queue.
    pub fn forget_sticky(&self, namespace: &str, sticky_queue: &str) {
        let removed = self.inner.queues.lock().expect("matching lock").remove(&(
            namespace.to_string(),
            sticky_queue.to_string(),
            TaskKind::Workflow,
        ));
        // Dropping the waiters' senders ends their polls.
        drop(removed);
    }

    /// Number of queued (not yet polled) tasks; for tests and diagnostics.
    pub fn backlog(&self, namespace: &str, task_queue: &str, kind: TaskKind) -> usize {
        let queues = self.inner.queues.lock().expect("matching lock");
        queues.get(&(namespace.to_string(), task_queue.to_string(), kind)).map_or(0, |q| q.tasks.len())
    }

    /// Pollers seen in the last five minutes, backlog and rates of one queue.
    pub fn describe(&self, namespace: &str, task_queue: &str, kind: TaskKind) -> QueueInfo {
        let now = self.inner.clock.now_ms();
        let mut queues = self.inner.queues.lock().expect("matching lock");
        let Some(queue) = queues.get_mut(&(namespace.to_string(), task_queue.to_string(), kind)) else {
            return QueueInfo::default();
        };
        queue.pollers.retain(|_, last| *last >= now - POLLER_TTL_MS);
        let mut pollers: Vec<(String, i64)> = queue.pollers.iter().map(|(id, t)| (id.clone(), *t)).collect();
        pollers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        QueueInfo {
            pollers,
            backlog: queue.tasks.len(),
            backlog_age_ms: queue.tasks.front().map_or(0, |(_, at)| (now - at).max(0)),
            add_rate: rate(&queue.added, now),
            dispatch_rate: rate(&queue.dispatched, now),
        }
    }

    /// The last hour of a queue, minute by minute (sticky queues count under their normal queue).
    pub fn last_hour(&self, namespace: &str, task_queue: &str, kind: TaskKind) -> Vec<Minute> {
        self.series().hour(namespace, task_queue, kind, self.inner.clock.now_ms())
    }

    /// Every queue with its kind and info, for diagnostics (namespace, name, kind).
    pub fn queues(&self) -> Vec<(String, String, TaskKind)> {
        let queues = self.inner.queues.lock().expect("matching lock");
        // Sticky queues are per worker: they would make a metric series each.
        let mut keys: Vec<_> = queues.iter().filter(|(_, q)| !q.sticky).map(|(k, _)| k.clone()).collect();
        keys.sort_by(|a, b| (&a.0, &a.1, a.2 as i32).cmp(&(&b.0, &b.1, b.2 as i32)));
        keys
    }
}

impl Matching {
    /// Drops what idle queues remember, so that memory does not grow with every task queue name
    /// that was ever used: queues with no task, no waiting poll and no poller for five minutes
    /// go, and sticky queues nobody polled for five minutes go with their tasks (each of which
    /// already went to its normal queue when its sticky schedule-to-start timeout passed).
    pub fn prune(&self) {
        let now = self.inner.clock.now_ms();
        let mut queues = self.inner.queues.lock().expect("matching lock");
        let mut gone = Vec::new();
        queues.retain(|key, q| {
            q.pollers.retain(|_, last| *last >= now - POLLER_TTL_MS);
            let idle = q.waiters.iter().all(|w| w.is_closed()) && q.pollers.is_empty();
            let keep = !(idle && (q.sticky || q.tasks.is_empty()));
            if !keep {
                gone.push((key.0.clone(), q.label.clone().unwrap_or_else(|| key.1.clone()), key.2));
            }
            keep
        });
        // The metric series of a queue name go with its last queue (its sticky queues carry
        // the same name as their label).
        let remaining: std::collections::HashSet<(&str, &str, TaskKind)> = queues
            .iter()
            .map(|(key, q)| (key.0.as_str(), q.label.as_deref().unwrap_or(key.1.as_str()), key.2))
            .collect();
        gone.retain(|(namespace, label, kind)| !remaining.contains(&(namespace.as_str(), label.as_str(), *kind)));
        drop(remaining);
        drop(queues);
        for (namespace, label, kind) in &gone {
            self.inner.metrics.forget(namespace, label, *kind);
        }
        self.series().prune(now);
    }

    /// Prunes idle queues every minute until shutdown.
    pub async fn run_pruning(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = crate::clock::sleep(Duration::from_secs(60)) => self.prune(),
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn series_of(registry: &prometheus::Registry, queue: &str) -> usize {
        registry
            .gather()
            .iter()
            .flat_map(|family| family.get_metric())
            .filter(|m| m.get_label().iter().any(|l| l.name() == "taskqueue" && l.value() == queue))
            .count()
    }

    #[tokio::test]
    async fn queues_nobody_uses_leave_memory_and_the_metrics() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let registry = prometheus::Registry::new();
        let (_stop, shutdown) = watch::channel(false);
        let matching = Matching::new(clock.clone(), &registry, shutdown);
        for (i, queue) in ["short-lived", "kept"].into_iter().enumerate() {
            matching.offer(OutboxTask {
                kind: TaskKind::Activity,
                namespace: "default".into(),
                workflow_id: format!("wf-{i}"),
                run_id: format!("run-{i}"),
                task_queue: queue.into(),
                scheduled_event_id: 5,
                attempt: 1,
            });
            let got = matching.poll("default", queue, TaskKind::Activity, None, "w", Duration::from_millis(10)).await;
            assert!(got.is_some());
        }
        assert!(series_of(&registry, "short-lived") > 0, "a used queue has series");
        // "kept" gets a task nobody took: it stays.
        matching.offer(OutboxTask {
            kind: TaskKind::Activity,
            namespace: "default".into(),
            workflow_id: "wf-3".into(),
            run_id: "run-3".into(),
            task_queue: "kept".into(),
            scheduled_event_id: 5,
            attempt: 1,
        });
        matching.prune();
        assert_eq!(matching.queues().len(), 2, "pollers seen within five minutes keep their queues");
        clock.advance(POLLER_TTL_MS + 1);
        matching.prune();
        let left: Vec<String> = matching.queues().into_iter().map(|(_, q, _)| q).collect();
        assert_eq!(left, ["kept"], "the idle queue left, the one with a task stayed");
        assert_eq!(series_of(&registry, "short-lived"), 0, "its metric series left with it");
        assert!(series_of(&registry, "kept") > 0);
    }
}
