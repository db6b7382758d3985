//! Matching: per task queue, a FIFO of tasks and a FIFO of waiting polls. A task offered while a
//! poll waits is handed over in memory; otherwise it waits in the queue. The committed outbox in
//! the store is what brings queued tasks back after a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};
use uhrwerk_store::{OutboxTask, TaskKind};

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

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Dispatch>,
    waiters: VecDeque<oneshot::Sender<Dispatch>>,
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
            self.matching.offer_dispatch(task);
        }
    }
}

/// Handle to the matching service; cheap to clone.
#[derive(Clone)]
pub struct Matching {
    inner: Arc<Inner>,
}

struct Inner {
    queues: Mutex<HashMap<QueueKey, Queue>>,
    /// Parked polls on sticky queues, woken at ShutdownWorker.
    sticky: Mutex<HashMap<String, Arc<Notify>>>,
    shutdown: watch::Receiver<bool>,
}

impl Matching {
    pub fn new(shutdown: watch::Receiver<bool>) -> Self {
        Self { inner: Arc::new(Inner { queues: Mutex::default(), sticky: Mutex::default(), shutdown }) }
    }

    /// Offers a task: to the oldest waiting poll, or to the back of its queue.
    pub fn offer(&self, task: OutboxTask) {
        self.offer_dispatch(Dispatch::Task(task));
    }

    /// Offers a legacy query task to the workflow task queue.
    pub fn offer_query(&self, query: QueryTask) {
        self.offer_dispatch(Dispatch::Query(query));
    }

    fn offer_dispatch(&self, mut task: Dispatch) {
        let key = task.key();
        let mut queues = self.inner.queues.lock().expect("matching lock");
        let queue = queues.entry(key).or_default();
        while let Some(waiter) = queue.waiters.pop_front() {
            match waiter.send(task) {
                Ok(()) => return,
                Err(returned) => task = returned,
            }
        }
        queue.tasks.push_back(task);
    }

    /// Waits up to `wait` for a task of `kind` on `namespace`/`task_queue`.
    /// Returns `None` on timeout or server shutdown.
    pub async fn poll(&self, namespace: &str, task_queue: &str, kind: TaskKind, wait: Duration) -> Option<Dispatch> {
        let mut shutdown = self.inner.shutdown.clone();
        if *shutdown.borrow() {
            return None;
        }
        let rx = {
            let mut queues = self.inner.queues.lock().expect("matching lock");
            let queue = queues.entry((namespace.to_string(), task_queue.to_string(), kind)).or_default();
            if let Some(task) = queue.tasks.pop_front() {
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
        task.or_else(|| waiter.take_back())
    }

    /// Parks a poll on a sticky queue. Uhrwerk always dispatches to the normal queue with full
    /// history, so sticky polls only ever end empty: at the deadline, at ShutdownWorker, or at exit.
    pub async fn park_sticky(&self, sticky_queue: &str, wait: Duration) {
        let notify = self.inner.sticky.lock().expect("sticky lock").entry(sticky_queue.to_string()).or_default().clone();
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
}
