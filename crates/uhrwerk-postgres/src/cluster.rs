//! `ClusterStore` on PostgreSQL: the shard count, the shard leases and the members' heartbeats
//! (schema v2). Lease expiry and heartbeats use the database's clock (`clock_timestamp()`).

use async_trait::async_trait;
use uhrwerk_storage::{ClusterStore, Result as StorageResult, ShardLease};

use crate::PostgresStore;
use crate::error::{self, Result};

#[async_trait]
impl ClusterStore for PostgresStore {
    async fn init_cluster(&self, shards: i32) -> StorageResult<i32> {
        let mut client = self.pool.get().await.map_err(error::pool)?;
        let run = async {
            let tx = client.transaction().await?;
            let created = tx
                .execute("INSERT INTO uhrwerk_cluster (shards) VALUES ($1) ON CONFLICT DO NOTHING", &[&shards])
                .await?;
            if created == 1 {
                tx.execute("INSERT INTO uhrwerk_shards (shard_id) SELECT generate_series(0, $1 - 1)", &[&shards])
                    .await?;
            }
            let stored: i32 = tx.query_one("SELECT shards FROM uhrwerk_cluster", &[]).await?.get(0);
            tx.commit().await?;
            Result::<i32>::Ok(stored)
        };
        Ok(run.await?)
    }

    async fn heartbeat(&self, node: &str) -> StorageResult<()> {
        let client = self.pool.get().await.map_err(error::pool)?;
        client
            .execute(
                "INSERT INTO uhrwerk_members (node) VALUES ($1) \
                 ON CONFLICT (node) DO UPDATE SET heartbeat_at = clock_timestamp()",
                &[&node],
            )
            .await
            .map_err(error::Error::from)?;
        Ok(())
    }

    async fn live_members(&self, ttl_ms: i64) -> StorageResult<Vec<String>> {
        let client = self.pool.get().await.map_err(error::pool)?;
        let rows = client
            .query(
                "SELECT node FROM uhrwerk_members \
                 WHERE heartbeat_at >= clock_timestamp() - make_interval(secs => $1::float8 / 1000) ORDER BY node",
                &[&(ttl_ms as f64)],
            )
            .await
            .map_err(error::Error::from)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn leave(&self, node: &str) -> StorageResult<()> {
        let client = self.pool.get().await.map_err(error::pool)?;
        client.execute("DELETE FROM uhrwerk_members WHERE node = $1", &[&node]).await.map_err(error::Error::from)?;
        Ok(())
    }

    async fn leases(&self) -> StorageResult<Vec<ShardLease>> {
        let client = self.pool.get().await.map_err(error::pool)?;
        let rows = client
            .query(
                "SELECT shard_id, owner, epoch, expires_at < clock_timestamp() FROM uhrwerk_shards ORDER BY shard_id",
                &[],
            )
            .await
            .map_err(error::Error::from)?;
        Ok(rows
            .iter()
            .map(|r| ShardLease { shard: r.get(0), owner: r.get(1), epoch: r.get(2), expired: r.get(3) })
            .collect())
    }

    async fn acquire(&self, shard: i32, node: &str, seen_epoch: i64, lease_ms: i64) -> StorageResult<Option<i64>> {
        let client = self.pool.get().await.map_err(error::pool)?;
        let row = client
            .query_opt(
                // FOR UPDATE waits for the commits that checked the old epoch (FOR KEY SHARE)
                // and makes later ones wait for the new epoch.
                "WITH locked AS (SELECT shard_id FROM uhrwerk_shards WHERE shard_id = $1 AND epoch = $3 FOR UPDATE) \
                 UPDATE uhrwerk_shards s SET owner = $2, epoch = s.epoch + 1, \
                 expires_at = clock_timestamp() + make_interval(secs => $4::float8 / 1000) \
                 FROM locked WHERE s.shard_id = locked.shard_id RETURNING s.epoch",
                &[&shard, &node, &seen_epoch, &(lease_ms as f64)],
            )
            .await
            .map_err(error::Error::from)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn renew(&self, node: &str, held: &[(i32, i64)], lease_ms: i64) -> StorageResult<Vec<i32>> {
        let client = self.pool.get().await.map_err(error::pool)?;
        let shards: Vec<i32> = held.iter().map(|(s, _)| *s).collect();
        let epochs: Vec<i64> = held.iter().map(|(_, e)| *e).collect();
        let rows = client
            .query(
                "UPDATE uhrwerk_shards SET expires_at = clock_timestamp() + make_interval(secs => $4::float8 / 1000) \
                 FROM unnest($2::int4[], $3::int8[]) AS held(shard_id, epoch) \
                 WHERE uhrwerk_shards.shard_id = held.shard_id AND uhrwerk_shards.epoch = held.epoch \
                 AND uhrwerk_shards.owner = $1 RETURNING uhrwerk_shards.shard_id",
                &[&node, &shards, &epochs, &(lease_ms as f64)],
            )
            .await
            .map_err(error::Error::from)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn release(&self, shard: i32, node: &str, epoch: i64) -> StorageResult<()> {
        let client = self.pool.get().await.map_err(error::pool)?;
        client
            .execute(
                "UPDATE uhrwerk_shards SET expires_at = '-infinity' WHERE shard_id = $1 AND owner = $2 AND epoch = $3",
                &[&shard, &node, &epoch],
            )
            .await
            .map_err(error::Error::from)?;
        Ok(())
    }
}
