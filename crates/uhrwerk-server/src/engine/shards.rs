//! The engine in a cluster: which node serves a run, the shards this node takes over (loaded
//! again as a restart's recovery loads everything) or stops serving, and queued tasks offered
//! again when the members change.

use std::collections::HashSet;
use std::sync::Arc;

use uhrwerk_storage::Fence;

use super::Engine;
use crate::cluster::{Cluster, Owner};
use crate::error::Result;

impl Engine {
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// The node that serves a workflow's run.
    pub fn run_owner(&self, namespace: &str, workflow_id: &str) -> Owner {
        match &self.cluster {
            Some(cluster) => cluster.workflow_owner(namespace, workflow_id),
            None => Owner::Local,
        }
    }

    /// Whether this node serves a workflow's shard now (always, outside a cluster).
    pub fn serves(&self, namespace: &str, workflow_id: &str) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.holds(c.shard_of(namespace, workflow_id)))
    }

    /// `serves`, and the lease was confirmed within the last three quarters of its time: for
    /// work whose writes the fence does not cover (schedule turns).
    pub fn serves_fresh(&self, namespace: &str, workflow_id: &str) -> bool {
        self.serves(namespace, workflow_id) && self.cluster.as_ref().is_none_or(|c| c.lease_fresh())
    }

    /// The fence of a write to a workflow (none outside a cluster).
    pub(super) fn fence(&self, namespace: &str, workflow_id: &str) -> Option<Fence> {
        self.cluster.as_ref().map(|c| c.fence(namespace, workflow_id))
    }

    fn in_shards<'a>(&'a self, shards: &'a HashSet<i32>) -> impl Fn(&str, &str) -> bool + 'a {
        move |namespace, workflow_id| {
            self.cluster.as_ref().is_some_and(|c| shards.contains(&c.shard_of(namespace, workflow_id)))
        }
    }

    /// Takes idle runs of `shards` out of memory (runs in use are reloaded at their next lock,
    /// whose fence no longer matches).
    fn evict_shards(&self, shards: &HashSet<i32>) {
        let in_shards = self.in_shards(shards);
        let keys: Vec<_> =
            self.slots.lock().expect("slots lock").keys().filter(|(ns, wid)| in_shards(ns, wid)).cloned().collect();
        for key in keys {
            self.recent.lock().expect("recent runs lock").pop(&key);
            self.evict_idle(&key);
        }
    }

    /// Serves shards this node just took: forgets what it had of them in memory, then offers
    /// their queued tasks, arms their timers and hands over their transfer tasks, as start-up
    /// recovery does for everything. Returns (tasks, timers, transfer tasks).
    pub async fn take_shards(self: &Arc<Self>, shards: &[i32]) -> Result<(usize, usize, usize)> {
        let set: HashSet<i32> = shards.iter().copied().collect();
        self.evict_shards(&set);
        let (_, tasks, timers, transfers) = self.recover_where(self.in_shards(&set)).await?;
        Ok((tasks, timers, transfers))
    }

    /// Stops serving shards: their runs leave memory, and with `purge` their timers too (the new
    /// owner armed them from the store).
    pub fn drop_shards(&self, shards: &[i32], purge: bool) {
        let set: HashSet<i32> = shards.iter().copied().collect();
        self.evict_shards(&set);
        if purge {
            let in_shards = self.in_shards(&set);
            self.timers.retain(|ns, wid| !in_shards(ns, wid));
        }
    }

    /// After the members changed: queued tasks of queues another node owns now go there, and
    /// the queued tasks of the shards held here are offered again (those on a node that left
    /// are gone with it; a task offered twice is started once, the second start finds it
    /// started and is skipped).
    pub async fn rebalance_queues(self: Arc<Self>) {
        self.matching.rehome();
        let Some(cluster) = self.cluster.clone() else { return };
        match self.executions().recover().await {
            Ok(recovered) => {
                for task in recovered
                    .tasks
                    .into_iter()
                    .filter(|t| cluster.holds(cluster.shard_of(&t.namespace, &t.workflow_id)))
                {
                    self.matching.offer(task);
                }
            }
            Err(e) => tracing::warn!("cluster: failed to read queued tasks to offer again: {e}"),
        }
    }
}
