//! What a cluster of nodes needs from its shared database: the shard count, shard leases with
//! epochs, and the members' heartbeats. Times are the database's, so the nodes' clocks do not
//! have to agree.

use async_trait::async_trait;

use crate::Result;

/// One shard's lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardLease {
    pub shard: i32,
    /// The node holding (or last holding) the lease; empty before anyone took it.
    pub owner: String,
    /// Bumped by every takeover.
    pub epoch: i64,
    /// The lease ran out (on the database's clock).
    pub expired: bool,
}

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// The cluster's shard count: `shards` when this call creates the cluster (one lease row
    /// per shard), the stored count otherwise.
    async fn init_cluster(&self, shards: i32) -> Result<i32>;

    /// Records that `node` is alive now.
    async fn heartbeat(&self, node: &str) -> Result<()>;

    /// The nodes whose last heartbeat is at most `ttl_ms` old, sorted.
    async fn live_members(&self, ttl_ms: i64) -> Result<Vec<String>>;

    /// Removes `node` from the members (a clean shutdown).
    async fn leave(&self, node: &str) -> Result<()>;

    /// Every shard's lease, by shard.
    async fn leases(&self) -> Result<Vec<ShardLease>>;

    /// Takes `shard` for `node` if its epoch is still `seen_epoch`: bumps the epoch and holds
    /// the lease for `lease_ms`. Returns the new epoch, or `None` if someone else moved first.
    async fn acquire(&self, shard: i32, node: &str, seen_epoch: i64, lease_ms: i64) -> Result<Option<i64>>;

    /// Extends `node`'s leases of `held` (shard, epoch) by `lease_ms`, in one statement; returns
    /// the shards renewed (the others moved on).
    async fn renew(&self, node: &str, held: &[(i32, i64)], lease_ms: i64) -> Result<Vec<i32>>;

    /// Ends `node`'s lease of `shard` at `epoch` now, so that another node can take it at once.
    async fn release(&self, shard: i32, node: &str, epoch: i64) -> Result<()>;
}
