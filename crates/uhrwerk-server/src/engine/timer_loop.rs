//! The timer loop: fires due timers from the in-memory index (`crate::timers`) through the
//! kernel, which re-checks each against the run's state, and re-arms those whose transition
//! failed.

use std::sync::Arc;

use tokio::sync::watch;
use uhrwerk_core::kernel;
use uhrwerk_storage::TimerRow;

use super::Engine;
use crate::clock::Hold;
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
            // A cluster node that lost the shard: its new owner armed the timer too.
            Err(_) if !self.serves(&row.namespace, &row.workflow_id) => {}
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
        // What the last wait returned: a time-skipping clock stays at that time until every
        // timer due then holds the clock itself, while its transition runs.
        let mut woke: Option<Hold> = None;
        loop {
            let now = self.clock.now_ms();
            let (due, next) = self.timers.take_due(now);
            for row in due {
                let engine = self.clone();
                let hold = self.clock.hold();
                tokio::spawn(async move {
                    engine.fire_timer(row).await;
                    drop(hold);
                });
            }
            drop(woke.take());
            // Nothing due: look again in an hour of workflow time, or when a timer is armed.
            let wait = match next {
                Some(at) => self.clock.sleep_until(at),
                None => self.clock.idle_until(now + 3_600_000),
            };
            tokio::select! {
                hold = wait => woke = Some(hold),
                _ = self.timers.changed() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }
}
