//! The membership and lease loop: every quarter of the lease time a node records its heartbeat,
//! reads the live members and every shard's lease, and for each shard that rendezvous hashing
//! gives to it takes the lease once it is free (bumping the epoch), renews the leases it holds,
//! and gives back the ones that now belong to another live node. A lease found taken by another
//! node is a loss: the shard's work stops here (and any late commit of it is refused by the
//! fence). A taken shard is recovered like a restart recovers everything: its queued tasks,
//! timers, transfer tasks and schedules are loaded again.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::{Cluster, rendezvous};
use crate::engine::Engine;
use crate::schedules::Scheduler;

/// The engine and scheduler the loop hands shards to.
pub struct Hosts {
    pub engine: Arc<Engine>,
    pub scheduler: Arc<Scheduler>,
    /// Registries every node keeps in memory, read again each round.
    pub namespaces: crate::namespaces::Namespaces,
}

/// Runs the loop until shutdown, then gives every held shard back and leaves the members.
pub async fn run(cluster: Arc<Cluster>, hosts: Hosts, mut shutdown: watch::Receiver<bool>) {
    let tick = (cluster.lease / 4).max(std::time::Duration::from_millis(50));
    loop {
        if let Err(e) = step(&cluster, &hosts).await {
            tracing::warn!("cluster: membership and lease update failed: {e}");
        }
        // Namespaces and search attributes other nodes registered or changed.
        if let Err(e) = hosts.namespaces.refresh().await {
            tracing::debug!("cluster: failed to read the namespaces again: {e}");
        }
        if let Err(e) = hosts.engine.search_attributes().refresh().await {
            tracing::debug!("cluster: failed to read the search attributes again: {e}");
        }
        tokio::select! {
            _ = crate::clock::sleep(tick) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    leave(&cluster, &hosts).await;
}

/// One round: heartbeat, members, leases.
pub(crate) async fn step(cluster: &Arc<Cluster>, hosts: &Hosts) -> crate::error::Result<()> {
    let node = cluster.node.clone();
    let lease_ms = cluster.lease.as_millis() as i64;
    // Leases renewed in this round last from before its first statement.
    let started = crate::clock::Stopwatch::start();
    cluster.store.heartbeat(&node).await?;
    let mut members = cluster.store.live_members(lease_ms).await?;
    if !members.contains(&node) {
        members.push(node.clone());
        members.sort();
    }
    let leases = cluster.store.leases().await?;
    let held: BTreeMap<i32, i64> = cluster.view.read().expect("cluster view lock").held.clone();

    let (mut lost, mut give_back, mut renew, mut take) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for lease in &leases {
        let desired = rendezvous(&members, &[&lease.shard.to_string()]) == Some(node.as_str());
        match held.get(&lease.shard) {
            Some(&epoch) if lease.owner != node || lease.epoch != epoch => lost.push((lease.shard, epoch)),
            Some(&epoch) if !desired => give_back.push((lease.shard, epoch)),
            Some(&epoch) => renew.push((lease.shard, epoch)),
            // Free, or held by an earlier life of this node (a restart with the same address).
            None if desired && (lease.expired || lease.owner.is_empty() || lease.owner == node) => {
                take.push((lease.shard, lease.epoch))
            }
            None => {}
        }
    }
    if !renew.is_empty() {
        match cluster.store.renew(&node, &renew, lease_ms).await {
            Ok(renewed) => {
                cluster.metrics.renewals.inc_by(renewed.len() as u64);
                lost.extend(renew.iter().filter(|(shard, _)| !renewed.contains(shard)));
            }
            Err(e) => tracing::warn!("cluster: failed to renew the shard leases: {e}"),
        }
    }
    if !lost.is_empty() {
        let shards: Vec<i32> = lost.iter().map(|(s, _)| *s).collect();
        tracing::warn!(?shards, "cluster: shard leases were taken by another node; their work stops here");
        cluster.metrics.losses.inc_by(lost.len() as u64);
        stop(cluster, hosts, &lost, false);
    }
    if !give_back.is_empty() {
        let shards: Vec<i32> = give_back.iter().map(|(s, _)| *s).collect();
        tracing::info!(?shards, "cluster: giving shards back to the nodes they now belong to");
        stop(cluster, hosts, &give_back, true);
        for (shard, epoch) in &give_back {
            if let Err(e) = cluster.store.release(*shard, &node, *epoch).await {
                tracing::warn!(shard, "cluster: failed to release a shard lease (it expires by itself): {e}");
            }
        }
        cluster.metrics.releases.inc_by(give_back.len() as u64);
    }
    let mut taken = Vec::new();
    for (shard, seen_epoch) in take {
        match cluster.store.acquire(shard, &node, seen_epoch, lease_ms).await {
            Ok(Some(epoch)) => taken.push((shard, epoch)),
            Ok(None) => {}
            Err(e) => tracing::warn!(shard, "cluster: failed to take a shard lease: {e}"),
        }
    }
    let members_changed = {
        let mut view = cluster.view.write().expect("cluster view lock");
        for (shard, epoch) in &taken {
            view.held.insert(*shard, *epoch);
            view.last.insert(*shard, *epoch);
        }
        for lease in &leases {
            view.owners[lease.shard as usize] = if lease.expired { String::new() } else { lease.owner.clone() };
        }
        for (shard, _) in lost.iter().chain(&give_back) {
            view.owners[*shard as usize] = String::new();
        }
        for (shard, _) in &taken {
            view.owners[*shard as usize] = node.clone();
        }
        let changed = view.members != members;
        view.members = members.clone();
        cluster.metrics.shards_owned.set(view.held.len() as i64);
        changed
    };
    cluster.metrics.members.set(members.len() as i64);
    cluster.confirm(started);
    if members_changed {
        tracing::info!(?members, "cluster: members changed");
    }
    if !taken.is_empty() {
        cluster.metrics.acquisitions.inc_by(taken.len() as u64);
        let shards: Vec<i32> = taken.iter().map(|(s, _)| *s).collect();
        tracing::info!(?shards, "cluster: took shards");
        let (engine, scheduler) = (hosts.engine.clone(), hosts.scheduler.clone());
        // Recovery reads the store; the loop goes on renewing meanwhile.
        tokio::spawn(async move {
            match engine.take_shards(&shards).await {
                Ok((tasks, timers, transfers)) => {
                    tracing::info!(?shards, tasks, timers, transfers, "cluster: recovered the shards' work")
                }
                Err(e) => tracing::error!(?shards, "cluster: failed to recover taken shards: {e}"),
            }
            if let Err(e) = scheduler.take_shards(&shards).await {
                tracing::error!(?shards, "cluster: failed to resume the shards' schedules: {e}");
            }
        });
    }
    if members_changed {
        // Task queues may have moved: hand queued tasks to their new owners, and offer the
        // held shards' queued tasks again (a node that left took its queues' tasks with it).
        let engine = hosts.engine.clone();
        tokio::spawn(async move { engine.rebalance_queues().await });
    }
    Ok(())
}

/// Stops the work of shards this node no longer holds. `purge` also forgets their armed timers
/// (a clean hand-over); after a loss they stay, and when they come due their commits are
/// refused by the fence.
fn stop(cluster: &Cluster, hosts: &Hosts, shards: &[(i32, i64)], purge: bool) {
    {
        let mut view = cluster.view.write().expect("cluster view lock");
        for (shard, epoch) in shards {
            view.held.remove(shard);
            view.last.insert(*shard, *epoch);
        }
        cluster.metrics.shards_owned.set(view.held.len() as i64);
    }
    let ids: Vec<i32> = shards.iter().map(|(s, _)| *s).collect();
    hosts.engine.drop_shards(&ids, purge);
    hosts.scheduler.drop_shards(&ids);
}

/// A clean shutdown: every held shard goes back at once, so the others need not wait for the
/// leases to run out.
async fn leave(cluster: &Arc<Cluster>, hosts: &Hosts) {
    let held: Vec<(i32, i64)> =
        cluster.view.read().expect("cluster view lock").held.iter().map(|(s, e)| (*s, *e)).collect();
    stop(cluster, hosts, &held, true);
    for (shard, epoch) in &held {
        if let Err(e) = cluster.store.release(*shard, &cluster.node, *epoch).await {
            tracing::warn!(shard, "cluster: failed to release a shard lease at shutdown (it expires by itself): {e}");
        }
    }
    if let Err(e) = cluster.store.leave(&cluster.node).await {
        tracing::warn!("cluster: failed to leave the members at shutdown: {e}");
    }
    tracing::info!(shards = held.len(), "cluster: left, shards given back");
}
