//! The cluster: several nodes on one PostgreSQL database. Every workflow belongs to a shard
//! (`shard_of`: a stable hash of namespace and workflow id, modulo the shard count fixed when the
//! cluster's database was first used); each shard is served by the node holding its lease
//! (`lease.rs`), and every commit of a shard carries the lease's epoch, which the database checks
//! in the same transaction (the fence), so a node that lost a shard can never commit over its
//! successor. Task queues are owned by the live node that rendezvous hashing picks for them;
//! nothing about a queue is durable (its tasks' outbox rows are), so no lease is needed.
//!
//! Calls reach the right node through `route.rs` (client calls) and the internal service
//! (`peers.rs` is its client; `frontend::cluster` serves it): tasks to a queue's owner, polls'
//! matched tasks to their run's owner, transfer tasks' work to the other run's owner.

pub mod lease;
mod peers;
pub mod route;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use uhrwerk_storage::{ClusterStore, Fence};

pub use peers::Peers;

/// How a node takes part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `HOST:PORT` where the other nodes reach this one's internal service; also its id.
    pub advertise: String,
    /// The shard count for a cluster that does not exist yet (an existing one keeps its own).
    pub shards: i32,
    /// How long a shard lease lasts without renewal; renewed every quarter of it.
    pub lease: Duration,
    /// TLS both ways between the nodes; None: the internal port is plaintext.
    pub tls: Option<crate::tls::NodeTls>,
}

/// This node's view of the cluster; cheap to share.
pub struct Cluster {
    node: String,
    shards: i32,
    lease: Duration,
    store: Arc<dyn ClusterStore>,
    view: RwLock<View>,
    pub(crate) metrics: ClusterMetrics,
    pub(crate) peers: Peers,
    /// When the last lease round succeeded (tokio's clock).
    confirmed: std::sync::Mutex<Option<crate::clock::Stopwatch>>,
}

#[derive(Default)]
struct View {
    /// Live members (this node included), sorted.
    members: Vec<String>,
    /// Each shard's owner as last read ("" while nobody holds it).
    owners: Vec<String>,
    /// Shards this node holds, with the epoch it took each at.
    held: BTreeMap<i32, i64>,
    /// The last epoch this node held each shard at: the fence of late writes after a loss, which
    /// the database refuses.
    last: HashMap<i32, i64>,
}

/// Where a call goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// This node.
    Local,
    /// Another node, by its advertise address.
    Node(String),
}

pub(crate) struct ClusterMetrics {
    pub members: prometheus::IntGauge,
    pub shards_owned: prometheus::IntGauge,
    pub acquisitions: prometheus::IntCounter,
    pub releases: prometheus::IntCounter,
    pub losses: prometheus::IntCounter,
    pub renewals: prometheus::IntCounter,
    pub fenced_commits: prometheus::IntCounter,
    pub forwarded_calls: prometheus::IntCounterVec,
    pub internal_calls: prometheus::IntCounterVec,
}

impl ClusterMetrics {
    fn new(registry: &prometheus::Registry) -> Self {
        use crate::metrics::{counter, gauge};
        let one = |name: &str, help: &str| counter(registry, name, help, &[]).with_label_values::<&str>(&[]);
        Self {
            members: gauge(registry, "uhrwerk_cluster_members", "Live nodes this node sees (itself included).", &[])
                .with_label_values::<&str>(&[]),
            shards_owned: gauge(registry, "uhrwerk_cluster_shards_owned", "Shards whose lease this node holds.", &[])
                .with_label_values::<&str>(&[]),
            acquisitions: one(
                "uhrwerk_cluster_shard_acquisitions_total",
                "Shard leases this node took (each bumps the epoch).",
            ),
            releases: one(
                "uhrwerk_cluster_shard_releases_total",
                "Shard leases this node gave back (rebalancing, shutdown).",
            ),
            losses: one("uhrwerk_cluster_shard_losses_total", "Shard leases this node found taken by another node."),
            renewals: one("uhrwerk_cluster_lease_renewals_total", "Shard lease renewals."),
            fenced_commits: one(
                "uhrwerk_cluster_fenced_commits_total",
                "Commits the database refused because the shard's epoch moved on (another node took it).",
            ),
            forwarded_calls: counter(
                registry,
                "uhrwerk_cluster_forwarded_calls_total",
                "Client calls forwarded to the node that owns their shard or task queue.",
                &["method"],
            ),
            internal_calls: counter(
                registry,
                "uhrwerk_cluster_internal_calls_total",
                "Calls of the internal service this node made (AddTask, StartTask, CarryOut).",
                &["method"],
            ),
        }
    }
}

/// FNV-1a, 64 bits: a hash that every node and every version computes the same (the shard of a
/// workflow must never change), unlike std's randomly seeded one. Parts are separated by a 0
/// byte, which no id contains at a boundary ambiguously.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A 0 byte between parts (xor with 0, then the multiply).
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // FNV's low bits mix poorly for short keys: finish with a 64-bit avalanche (splitmix64's).
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The member rendezvous hashing picks for `key`: the one with the highest hash of (member,
/// key). A member joining or leaving moves only the keys it wins or held.
pub fn rendezvous<'a>(members: &'a [String], key: &[&str]) -> Option<&'a str> {
    members
        .iter()
        .max_by_key(|m| {
            let mut parts = vec![m.as_str()];
            parts.extend_from_slice(key);
            stable_hash(&parts)
        })
        .map(String::as_str)
}

impl Cluster {
    /// Joins (or creates) the cluster in `store`: the stored shard count wins over
    /// `config.shards`.
    pub async fn join(
        config: &ClusterConfig,
        store: Arc<dyn ClusterStore>,
        registry: &prometheus::Registry,
    ) -> uhrwerk_storage::Result<Arc<Self>> {
        let shards = store.init_cluster(config.shards).await?;
        if shards != config.shards {
            tracing::warn!(
                stored = shards,
                asked = config.shards,
                "the cluster's shard count was fixed when it was created; --cluster-shards is ignored"
            );
        }
        store.heartbeat(&config.advertise).await?;
        let cluster = Arc::new(Self {
            node: config.advertise.clone(),
            shards,
            lease: config.lease,
            store,
            view: RwLock::new(View { owners: vec![String::new(); shards as usize], ..Default::default() }),
            metrics: ClusterMetrics::new(registry),
            peers: Peers::new(config.tls.clone()),
            confirmed: std::sync::Mutex::new(None),
        });
        Ok(cluster)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn shard_count(&self) -> i32 {
        self.shards
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    pub fn members(&self) -> Vec<String> {
        self.view.read().expect("cluster view lock").members.clone()
    }

    /// The shards this node holds now.
    pub fn held(&self) -> Vec<i32> {
        self.view.read().expect("cluster view lock").held.keys().copied().collect()
    }

    pub fn shard_of(&self, namespace: &str, workflow_id: &str) -> i32 {
        (stable_hash(&[namespace, workflow_id]) % self.shards as u64) as i32
    }

    pub fn holds(&self, shard: i32) -> bool {
        self.view.read().expect("cluster view lock").held.contains_key(&shard)
    }

    /// The fence of a write to a workflow: its shard and the epoch this node holds it at (or held
    /// it at last, or 0), which the database checks.
    pub fn fence(&self, namespace: &str, workflow_id: &str) -> Fence {
        let shard = self.shard_of(namespace, workflow_id);
        let view = self.view.read().expect("cluster view lock");
        let epoch = view.held.get(&shard).or_else(|| view.last.get(&shard)).copied().unwrap_or(0);
        Fence { shard, epoch }
    }

    /// Who serves a workflow's shard: this node when it holds it, else the owner last read, else
    /// the member that should take it. With nobody known, this node (whose commit the fence
    /// then refuses, and the client retries).
    pub fn workflow_owner(&self, namespace: &str, workflow_id: &str) -> Owner {
        self.shard_owner(self.shard_of(namespace, workflow_id))
    }

    pub fn shard_owner(&self, shard: i32) -> Owner {
        let view = self.view.read().expect("cluster view lock");
        if view.held.contains_key(&shard) {
            return Owner::Local;
        }
        let owner = match view.owners.get(shard as usize).filter(|o| !o.is_empty()) {
            Some(owner) => Some(owner.as_str()),
            None => rendezvous(&view.members, &[&shard.to_string()]),
        };
        match owner {
            Some(node) if node != self.node => Owner::Node(node.to_string()),
            _ => Owner::Local,
        }
    }

    /// Who owns a task queue's matching (its workflow and activity tasks alike, so that one node
    /// describes both): rendezvous hashing over the live members.
    pub fn queue_owner(&self, namespace: &str, queue: &str) -> Owner {
        let view = self.view.read().expect("cluster view lock");
        match rendezvous(&view.members, &["queue", namespace, queue]) {
            Some(node) if node != self.node => Owner::Node(node.to_string()),
            _ => Owner::Local,
        }
    }

    /// Whether the last successful lease round is recent (within three quarters of the lease).
    pub fn lease_fresh(&self) -> bool {
        let confirmed = self.confirmed.lock().expect("lease confirmation lock");
        confirmed.as_ref().is_some_and(|since| since.elapsed() < self.lease * 3 / 4)
    }

    pub(crate) fn confirm(&self, since: crate::clock::Stopwatch) {
        *self.confirmed.lock().expect("lease confirmation lock") = Some(since);
    }

    /// Counts a commit the fence refused.
    pub fn fenced(&self) {
        self.metrics.fenced_commits.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_across_builds() {
        // A fixed value: a change here would move every workflow of a cluster to another shard.
        const PINNED: u64 = 10_946_803_774_015_393_062;
        assert_ne!(stable_hash(&["default", "wf-1"]), stable_hash(&["default", "wf-2"]));
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
        assert_eq!(stable_hash(&["default", "wf-1"]), PINNED);
    }

    #[test]
    fn shards_spread_over_members_and_few_move_when_one_joins() {
        let two: Vec<String> = vec!["a:1".into(), "b:1".into()];
        let three: Vec<String> = vec!["a:1".into(), "b:1".into(), "c:1".into()];
        let (mut moved, mut per_node) = (0, HashMap::<&str, usize>::new());
        for shard in 0..300 {
            let key = shard.to_string();
            let before = rendezvous(&two, &[&key]).unwrap();
            let after = rendezvous(&three, &[&key]).unwrap();
            *per_node.entry(after).or_default() += 1;
            if before != after {
                moved += 1;
                assert_eq!(after, "c:1", "a shard only moves to the node that joined");
            }
        }
        assert!((60..=140).contains(&moved), "about a third moves: {moved}");
        assert!(per_node.values().all(|n| (60..=140).contains(n)), "{per_node:?}");
    }
}
