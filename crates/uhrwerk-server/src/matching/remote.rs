//! Matching in a cluster: a task for a queue another node owns is handed to that node's
//! matching (AddTask), and a task handed here is offered on the queue it names. A hand-over
//! that fails is tried again on whoever owns the queue then; in the end the task's outbox row
//! brings it back (the rebalance after a membership change offers every queued task again).

use std::sync::Arc;
use std::time::Duration;

use uhrwerk_proto::cluster::{AddTaskRequest, WireTask};
use uhrwerk_storage::{OutboxTask, TaskKind};

use super::{Dispatch, Matching, QueryTask};
use crate::cluster::{Cluster, Owner};

/// Hand-over attempts before a task is left to its outbox row.
const ATTEMPTS: u32 = 20;

const QUERY_KIND: i32 = 3;

impl Matching {
    /// Makes this matching one node's part of a cluster's (once).
    pub fn join_cluster(&self, cluster: Arc<Cluster>) {
        let _ = self.inner.cluster.set(cluster);
    }

    /// The node that owns a queue, when it is not this one.
    pub(super) fn remote_owner(&self, namespace: &str, queue: &str) -> Option<String> {
        match self.inner.cluster.get()?.queue_owner(namespace, queue) {
            Owner::Local => None,
            Owner::Node(node) => Some(node),
        }
    }

    /// Hands a task to `node`'s matching, in the background.
    pub(super) fn hand_over(&self, node: String, task: Dispatch, sticky_queue: String) {
        let Some(cluster) = self.inner.cluster.get().cloned() else { return };
        let this = self.clone();
        tokio::spawn(async move {
            let mut node = node;
            let request = AddTaskRequest {
                task: Some(to_wire(&task)),
                sticky_queue: sticky_queue.clone(),
                only_if_polled: false,
            };
            for attempt in 0..ATTEMPTS {
                cluster.metrics.internal_calls.with_label_values(&["AddTask"]).inc();
                match cluster.peers.add_task(&node, request.clone()).await {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::debug!(%node, attempt, "cluster: failed to hand a task over: {e}");
                        crate::clock::sleep(Duration::from_millis(100 * u64::from(attempt + 1))).await;
                    }
                }
                let (namespace, queue) = queue_of(&task, &sticky_queue);
                match this.remote_owner(&namespace, &queue) {
                    Some(owner) => node = owner,
                    None => {
                        this.accept(task, &sticky_queue);
                        return;
                    }
                }
            }
            tracing::warn!(%node, "cluster: gave up handing a task over; its outbox row brings it back");
        });
    }

    /// A task another node handed over (AddTask): offered here, on the run's sticky queue while
    /// its worker polls here, else on its own queue (wherever that is).
    pub fn accept(&self, task: Dispatch, sticky_queue: &str) {
        match task {
            Dispatch::Task(task, _) if task.kind == TaskKind::Workflow && !sticky_queue.is_empty() => {
                if self.sticky_available(&task.namespace, sticky_queue) {
                    self.offer_dispatch(Dispatch::Task(task, sticky_queue.to_string()));
                } else {
                    self.offer(task);
                }
            }
            other => self.offer_dispatch(other),
        }
    }

    /// Offers a legacy query task on a run's sticky queue only while that queue's worker polls
    /// (here or on the node that owns the queue); false when nobody does.
    pub async fn offer_query_if_polled(&self, query: QueryTask) -> bool {
        let Some(node) = self.remote_owner(&query.namespace, &query.task_queue) else {
            return self.accept_if_polled(query);
        };
        let Some(cluster) = self.inner.cluster.get() else { return false };
        cluster.metrics.internal_calls.with_label_values(&["AddTask"]).inc();
        let request = AddTaskRequest {
            task: Some(to_wire(&Dispatch::Query(query))),
            sticky_queue: String::new(),
            only_if_polled: true,
        };
        cluster.peers.add_task(&node, request).await.unwrap_or(false)
    }

    /// A query task offered here while its (sticky) queue's worker polls; false otherwise.
    pub fn accept_if_polled(&self, query: QueryTask) -> bool {
        if !self.sticky_available(&query.namespace, &query.task_queue) {
            return false;
        }
        self.offer_dispatch(Dispatch::Query(query));
        true
    }

    /// Hands every queued task of a queue another node owns now to that node, and ends the polls
    /// waiting here on such a queue (empty, as at a deadline): their workers poll again, and
    /// the poll reaches the new owner, which gets the queue's tasks from now on.
    pub fn rehome(&self) {
        if self.inner.cluster.get().is_none() {
            return;
        }
        let (moved, ended): (Vec<(Dispatch, String)>, usize) = {
            let mut queues = self.inner.queues.lock().expect("matching lock");
            let (mut moved, mut ended) = (Vec::new(), 0);
            for ((namespace, name, _), queue) in queues.iter_mut() {
                if let Some(node) = self.remote_owner(namespace, name) {
                    moved.extend(queue.tasks.drain(..).map(|(task, _)| (task, node.clone())));
                    // Dropping a waiter's sender ends its poll.
                    ended += queue.waiters.drain(..).count();
                }
            }
            (moved, ended)
        };
        if !moved.is_empty() || ended > 0 {
            tracing::info!(tasks = moved.len(), polls = ended, "cluster: task queues moved to other nodes");
        }
        for (task, node) in moved {
            // A task on a sticky queue goes back as a sticky offer.
            let sticky = match &task {
                Dispatch::Task(t, queue) if *queue != t.task_queue => queue.clone(),
                _ => String::new(),
            };
            self.hand_over(node, task, sticky);
        }
    }
}

fn queue_of(task: &Dispatch, sticky_queue: &str) -> (String, String) {
    match task {
        Dispatch::Task(t, _) if !sticky_queue.is_empty() => (t.namespace.clone(), sticky_queue.to_string()),
        Dispatch::Task(t, _) => (t.namespace.clone(), t.task_queue.clone()),
        Dispatch::Query(q) => (q.namespace.clone(), q.task_queue.clone()),
    }
}

pub fn to_wire(task: &Dispatch) -> WireTask {
    match task {
        Dispatch::Task(t, matched) => WireTask {
            kind: t.kind as i32,
            namespace: t.namespace.clone(),
            workflow_id: t.workflow_id.clone(),
            run_id: t.run_id.clone(),
            task_queue: t.task_queue.clone(),
            scheduled_event_id: t.scheduled_event_id,
            attempt: t.attempt,
            query_id: String::new(),
            matched_queue: matched.clone(),
        },
        Dispatch::Query(q) => WireTask {
            kind: QUERY_KIND,
            namespace: q.namespace.clone(),
            workflow_id: q.workflow_id.clone(),
            run_id: q.run_id.clone(),
            task_queue: q.task_queue.clone(),
            query_id: q.query_id.clone(),
            ..Default::default()
        },
    }
}

/// The task a wire task stands for; `None` for an unknown kind.
pub fn from_wire(w: WireTask) -> Option<Dispatch> {
    if w.kind == QUERY_KIND {
        return Some(Dispatch::Query(QueryTask {
            namespace: w.namespace,
            workflow_id: w.workflow_id,
            run_id: w.run_id,
            task_queue: w.task_queue,
            query_id: w.query_id,
        }));
    }
    let kind = TaskKind::from_i64(i64::from(w.kind))?;
    let matched = if w.matched_queue.is_empty() { w.task_queue.clone() } else { w.matched_queue };
    Some(Dispatch::Task(
        OutboxTask {
            kind,
            namespace: w.namespace,
            workflow_id: w.workflow_id,
            run_id: w.run_id,
            task_queue: w.task_queue,
            scheduled_event_id: w.scheduled_event_id,
            attempt: w.attempt,
        },
        matched,
    ))
}

/// A queue's minute between nodes (QueueHour), both ways.
impl From<super::Minute> for uhrwerk_proto::cluster::QueueMinute {
    fn from(m: super::Minute) -> Self {
        Self {
            start_ms: m.start_ms,
            backlog_max: m.backlog_max as u64,
            dispatched: m.dispatched,
            wait_mean_ms: m.wait_mean_ms,
            wait_max_ms: m.wait_max_ms,
        }
    }
}

impl From<uhrwerk_proto::cluster::QueueMinute> for super::Minute {
    fn from(m: uhrwerk_proto::cluster::QueueMinute) -> Self {
        Self {
            start_ms: m.start_ms,
            backlog_max: m.backlog_max as usize,
            dispatched: m.dispatched,
            wait_mean_ms: m.wait_mean_ms,
            wait_max_ms: m.wait_max_ms,
        }
    }
}
