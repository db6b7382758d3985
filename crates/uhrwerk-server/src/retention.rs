//! Namespace retention: closed runs older than their namespace's retention period are deleted
//! in the background, oldest first, in small batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use uhrwerk_storage::VisibilityStore;

use crate::engine::Engine;
use crate::namespaces::Namespaces;

const BATCH: usize = 500;
const MAX_INTERVAL: Duration = Duration::from_secs(60);
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Retention periods of the namespaces that have one, in milliseconds.
fn retentions(namespaces: &Namespaces) -> Vec<(String, i64)> {
    namespaces
        .list()
        .into_iter()
        .filter_map(|ns| {
            let name = ns.namespace_info.as_ref()?.name.clone();
            let ttl = ns.config.as_ref()?.workflow_execution_retention_ttl.as_ref()?;
            let ms = ttl.seconds.saturating_mul(1000).saturating_add(i64::from(ttl.nanos / 1_000_000));
            (ms > 0).then_some((name, ms))
        })
        .collect()
}

/// How often to look: a quarter of the shortest retention, between 1 s and 1 min.
fn interval(retentions: &[(String, i64)]) -> Duration {
    let shortest = retentions.iter().map(|(_, ms)| *ms).min().unwrap_or(i64::MAX);
    Duration::from_millis((shortest / 4).clamp(0, MAX_INTERVAL.as_millis() as i64) as u64)
        .clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// Deletes every expired run once; returns how many went.
pub async fn sweep(engine: &Arc<Engine>, store: &dyn VisibilityStore, namespaces: &Namespaces) -> usize {
    let mut deleted = 0;
    for (namespace, retention_ms) in retentions(namespaces) {
        let cutoff = engine.now_ms().saturating_sub(retention_ms);
        loop {
            let keys = match store.expired_runs(&namespace, cutoff, BATCH).await {
                Ok(keys) => keys,
                Err(e) => {
                    tracing::warn!(namespace, "failed to find expired runs: {e}");
                    break;
                }
            };
            let n = keys.len();
            if let Err(e) = engine.delete_runs(keys).await {
                tracing::warn!(namespace, "failed to delete expired runs: {e}");
                break;
            }
            deleted += n;
            if n < BATCH {
                break;
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "deleted runs past their namespace's retention");
    }
    deleted
}

/// Sweeps until shutdown. The interval is looked at again every second, so that a namespace
/// registered with a short retention is served without waiting out a long interval.
pub async fn run(
    engine: Arc<Engine>,
    store: Arc<dyn VisibilityStore>,
    namespaces: Namespaces,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_sweep_ms = engine.now_ms();
    sweep(&engine, store.as_ref(), &namespaces).await;
    loop {
        tokio::select! {
            _ = engine.clock().idle_until(engine.now_ms() + MIN_INTERVAL.as_millis() as i64) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let due = interval(&retentions(&namespaces)).as_millis() as i64;
        if engine.now_ms() - last_sweep_ms >= due {
            last_sweep_ms = engine.now_ms();
            sweep(&engine, store.as_ref(), &namespaces).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_interval_follows_the_shortest_retention() {
        assert_eq!(interval(&[]), MAX_INTERVAL);
        assert_eq!(interval(&[("a".into(), 86_400_000)]), MAX_INTERVAL);
        assert_eq!(interval(&[("a".into(), 86_400_000), ("b".into(), 8_000)]), Duration::from_secs(2));
        assert_eq!(interval(&[("a".into(), 100)]), MIN_INTERVAL);
    }
}
