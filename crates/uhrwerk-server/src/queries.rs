//! Queries in flight. Queries are never persisted (as in Temporal): each waits in memory for a
//! worker's answer, either attached to the run's next workflow task or sent on its own as a
//! legacy query task when no workflow task is pending.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::failure::v1 as failure_pb;
use uhrwerk_proto::temporal::api::query::v1 as query_pb;

/// A worker's answer: the result, or (message, failure) of a failed query handler.
pub type Outcome = Result<Option<common_pb::Payloads>, (String, Option<failure_pb::Failure>)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// Registered, not yet placed.
    New,
    /// Waiting for the run's next workflow task.
    Buffered,
    /// Sent inside a started workflow task.
    Attached,
    /// Sent as a legacy query task.
    Legacy,
}

struct Pending {
    run_id: String,
    query: query_pb::WorkflowQuery,
    placement: Placement,
    /// A legacy query task's queue (the run's sticky queue first, then its normal one), and
    /// whether a poller took it.
    queue: String,
    taken: bool,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Clone, Default)]
pub struct Queries {
    inner: Arc<Mutex<HashMap<String, Pending>>>,
}

impl Queries {
    pub fn register(&self, run_id: &str, query: query_pb::WorkflowQuery) -> (String, oneshot::Receiver<Outcome>) {
        let id = uuid::Uuid::new_v4().to_string();
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            run_id: run_id.to_string(),
            query,
            placement: Placement::New,
            queue: String::new(),
            taken: false,
            reply,
        };
        self.inner.lock().expect("queries lock").insert(id.clone(), pending);
        (id, rx)
    }

    /// Waits for the run's next workflow task.
    pub fn buffer(&self, id: &str) {
        self.set(id, Placement::Buffered);
    }

    /// Goes out as a legacy query task on `queue`.
    pub fn mark_legacy(&self, id: &str, queue: &str) {
        if let Some(p) = self.inner.lock().expect("queries lock").get_mut(id) {
            p.placement = Placement::Legacy;
            p.queue = queue.to_string();
        }
    }

    /// Moves a legacy query task that no poller took yet to another queue (from a sticky queue
    /// whose worker did not take it in time). False once a poller took it.
    pub fn move_legacy(&self, id: &str, queue: &str) -> bool {
        match self.inner.lock().expect("queries lock").get_mut(id) {
            Some(p) if !p.taken => {
                p.queue = queue.to_string();
                true
            }
            _ => false,
        }
    }

    /// A poller of `queue` takes the legacy query task: the query, if its caller still waits
    /// and the task was not moved to another queue meanwhile.
    pub fn take_legacy(&self, id: &str, queue: &str) -> Option<(String, query_pb::WorkflowQuery)> {
        let mut inner = self.inner.lock().expect("queries lock");
        let p = inner.get_mut(id).filter(|p| p.queue == queue && !p.taken)?;
        p.taken = true;
        Some((p.run_id.clone(), p.query.clone()))
    }

    fn set(&self, id: &str, placement: Placement) {
        if let Some(p) = self.inner.lock().expect("queries lock").get_mut(id) {
            p.placement = placement;
        }
    }

    /// Attaches every waiting (buffered, or attached to a task that did not answer) query of a
    /// run to its workflow task that just started.
    pub fn attach(&self, run_id: &str) -> HashMap<String, query_pb::WorkflowQuery> {
        let mut inner = self.inner.lock().expect("queries lock");
        inner
            .iter_mut()
            .filter(|(_, p)| p.run_id == run_id && matches!(p.placement, Placement::Buffered | Placement::Attached))
            .map(|(id, p)| {
                p.placement = Placement::Attached;
                (id.clone(), p.query.clone())
            })
            .collect()
    }

    /// After a workflow task completion: unanswered queries wait for the next task if one is
    /// scheduled; otherwise they are returned to go out as legacy query tasks on `queue`.
    pub fn after_completion(&self, run_id: &str, task_scheduled: bool, queue: &str) -> Vec<String> {
        let mut inner = self.inner.lock().expect("queries lock");
        let mut legacy = Vec::new();
        for (id, p) in inner.iter_mut().filter(|(_, p)| p.run_id == run_id) {
            if matches!(p.placement, Placement::Buffered | Placement::Attached) {
                if task_scheduled {
                    p.placement = Placement::Buffered;
                } else {
                    p.placement = Placement::Legacy;
                    p.queue = queue.to_string();
                    p.taken = false;
                    legacy.push(id.clone());
                }
            }
        }
        legacy
    }

    pub fn answer(&self, id: &str, outcome: Outcome) -> bool {
        match self.inner.lock().expect("queries lock").remove(id) {
            Some(p) => {
                let _ = p.reply.send(outcome);
                true
            }
            None => false,
        }
    }

    /// The caller gave up.
    pub fn forget(&self, id: &str) {
        self.inner.lock().expect("queries lock").remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> query_pb::WorkflowQuery {
        query_pb::WorkflowQuery { query_type: name.into(), ..Default::default() }
    }

    #[test]
    fn buffered_queries_attach_then_go_legacy_when_no_task_follows() {
        let queries = Queries::default();
        let (a, mut rx_a) = queries.register("run", q("a"));
        let (b, _rx_b) = queries.register("run", q("b"));
        let (_other, _rx) = queries.register("other-run", q("c"));
        queries.buffer(&a);
        queries.buffer(&b);
        let attached = queries.attach("run");
        assert_eq!(attached.len(), 2);
        assert!(queries.answer(&a, Ok(None)));
        assert_eq!(rx_a.try_recv(), Ok(Ok(None)));
        assert_eq!(queries.after_completion("run", false, "normal"), vec![b.clone()]);
        assert!(queries.attach("run").is_empty(), "legacy queries are not attached again");
        queries.mark_legacy(&b, "sticky");
        assert!(queries.move_legacy(&b, "normal"), "not taken yet");
        assert_eq!(queries.take_legacy(&b, "sticky"), None, "the sticky queue's copy is stale");
        assert_eq!(
            queries.take_legacy(&b, "normal").map(|(run, query)| (run, query.query_type)),
            Some(("run".into(), "b".into()))
        );
        assert!(!queries.move_legacy(&b, "elsewhere"), "taken");
        queries.forget(&b);
        assert!(!queries.answer(&b, Ok(None)));
    }
}
