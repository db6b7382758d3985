//! The timer loop: fires due timers from the in-memory index (`crate::timers`) through the
//! kernel, which re-checks each against the run's state, and re-arms those whose transition
//! failed.

use std::sync::Arc;

use tokio::sync::watch;
use uhrwerk_core::kernel;
use uhrwerk_storage::TimerRow;

use super::Engine;
use crate::error::Error;

impl Engine {
    /// Handles a due timer.
    pub async fn fire_timer(self: &Arc<Self>, row: TimerRow) {
        let timer = row.timer.clone();
        let result = self.mutate(&row.namespace, &row.workflow_id, &row.run_id, move |ctx, st| {
            kernel::fire_timer(ctx, st, &timer);
            Ok(())
        });
        match result.await {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(run_id = %row.run_id, "failed to handle timer, retrying in 1s: {e}");
                let mut retry = row;
                retry.timer.fire_at_ms = self.clock.now_ms() + 1000;
                self.timers.arm(retry);
            }
        }
    }

    /// Fires due timers until `shutdown` turns true.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let now = self.clock.now_ms();
            let (due, next) = self.timers.take_due(now);
            for row in due {
                let engine = self.clone();
                tokio::spawn(async move { engine.fire_timer(row).await });
            }
            // Nothing due: look again in an hour of workflow time, or when a timer is armed.
            let wake_at = next.unwrap_or(now + 3_600_000);
            tokio::select! {
                _ = self.clock.sleep_until(wake_at) => {}
                _ = self.timers.changed() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }
}
