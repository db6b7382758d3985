//! Matching: per task queue, a FIFO of tasks and a FIFO of waiting polls. A task offered while a
//! poll waits is handed over in memory; otherwise it waits in the queue. The committed outbox in
//! the store is what brings queued tasks back after a restart. Each queue also remembers its
//! recent pollers and its add and dispatch rates, for DescribeTaskQueue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};
use uhrwerk_store::{OutboxTask, TaskKind};

use crate::clock::Clock;
use crate::metrics::{Metrics, task_type};

type QueueKey = (String, String, TaskKind);

/// What a poll can receive: a durable task from the outbox, or a legacy query task (workflow
/// task queues only), which lives in memory only.
#[derive(Clone, Debug, PartialEq)]
pub enum Dispatch {
    Task(OutboxTask),
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
            Dispatch::Task(t) => (t.namespace.clone(), t.task_queue.clone(), t.kind),
            Dispatch::Query(q) => (q.namespace.clone(), q.task_queue.clone(), TaskKind::Workflow),
        }
    }
}

/// How long a poller is listed after its last poll (Temporal's `matching.pollerHistoryTTL`).
const POLLER_TTL_MS: i64 = 5 * 60 * 1000;
/// The window over which add and dispatch rates are measured.
const RATE_WINDOW_MS: i64 = 30_000;
/// Most timestamps kept per rate window.
const RATE_SAMPLES: usize = 100_000;

#[derive(Default)]
struct Queue {
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

struct Inner {
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    queues: Mutex<HashMap<QueueKey, Queue>>,
    /// Parked polls on sticky queues, woken at ShutdownWorker.
    sticky: Mutex<HashMap<String, Arc<Notify>>>,
    shutdown: watch::Receiver<bool>,
}

impl Matching {
    pub fn new(clock: Arc<dyn Clock>, metrics: Arc<Metrics>, shutdown: watch::Receiver<bool>) -> Self {
        Self { inner: Arc::new(Inner { clock, metrics, queues: Mutex::default(), sticky: Mutex::default(), shutdown }) }
    }

    /// Offers a task: to the oldest waiting poll, or to the back of its queue.
    pub fn offer(&self, task: OutboxTask) {
        self.offer_dispatch(Dispatch::Task(task));
    }

    /// Offers a legacy query task to the workflow task queue.
    pub fn offer_query(&self, query: QueryTask) {
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
                self.inner.metrics.no_poller_tasks.with_label_values(&[&key.0, &key.1, task_type(key.2)]).inc();
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
    }

    /// Waits up to `wait` for a task of `kind` on `namespace`/`task_queue`.
    /// Returns `None` on timeout or server shutdown.
    pub async fn poll(
        &self,
        namespace: &str,
        task_queue: &str,
        kind: TaskKind,
        identity: &str,
        wait: Duration,
    ) -> Option<Dispatch> {
        let mut shutdown = self.inner.shutdown.clone();
        if *shutdown.borrow() {
            return None;
        }
        let rx = {
            let now = self.inner.clock.now_ms();
            let mut queues = self.inner.queues.lock().expect("matching lock");
            let queue = queues.entry((namespace.to_string(), task_queue.to_string(), kind)).or_default();
            queue.pollers.insert(identity.to_string(), now);
            if let Some((task, queued_at)) = queue.tasks.pop_front() {
                record(&mut queue.dispatched, now);
                self.inner.metrics.poll_success.with_label_values(&[namespace, task_queue, task_type(kind)]).inc();
                self.inner
                    .metrics
                    .schedule_to_start(namespace, task_queue, kind)
                    .observe((now - queued_at).max(0) as f64 / 1000.0);
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
            _ = tokio::time::sleep(wait) => None,
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        if task.is_some() {
            waiter.rx = None;
        }
        // Otherwise the waiter's drop closes the channel and takes back a task that was handed
        // over just as the wait ended.
        let task = task.or_else(|| waiter.take_back());
        let labels = [namespace, task_queue, task_type(kind)];
        if task.is_some() {
            self.inner.metrics.poll_success.with_label_values(&labels).inc();
            self.inner.metrics.poll_success_sync.with_label_values(&labels).inc();
            self.inner.metrics.schedule_to_start(namespace, task_queue, kind).observe(0.0);
        } else {
            self.inner.metrics.poll_timeouts.with_label_values(&labels).inc();
        }
        task
    }

    /// Parks a poll on a sticky queue. Uhrwerk always dispatches to the normal queue with full
    /// history, so sticky polls only ever end empty: at the deadline, at ShutdownWorker, or at exit.
    pub async fn park_sticky(&self, sticky_queue: &str, wait: Duration) {
        let notify =
            self.inner.sticky.lock().expect("sticky lock").entry(sticky_queue.to_string()).or_default().clone();
        let mut shutdown = self.inner.shutdown.clone();
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }

    /// Ends the parked polls of a worker's sticky queue.
    pub fn release_sticky(&self, sticky_queue: &str) {
        if let Some(notify) = self.inner.sticky.lock().expect("sticky lock").remove(sticky_queue) {
            notify.notify_waiters();
        }
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

    /// Every queue with its kind and info, for diagnostics (namespace, name, kind).
    pub fn queues(&self) -> Vec<(String, String, TaskKind)> {
        let queues = self.inner.queues.lock().expect("matching lock");
        let mut keys: Vec<_> = queues.keys().cloned().collect();
        keys.sort_by(|a, b| (&a.0, &a.1, a.2 as i32).cmp(&(&b.0, &b.1, b.2 as i32)));
        keys
    }
}
