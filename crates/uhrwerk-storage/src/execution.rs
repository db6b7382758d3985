//! The execution store: the group commit of run transitions, the reads of one run, and what
//! the server reloads at start-up.

use async_trait::async_trait;
use temporalio_protos::temporal::api::history::v1 as history_pb;
use uhrwerk_core::state::RunState;

use crate::{OutboxTask, Result, TimerCursor, TimerRow, TransferRow, WriteBatch};

/// Everything the server reloads at start-up.
#[derive(Debug, Default)]
pub struct Recovered {
    /// How many runs are open. Their states stay in the store until something touches them.
    pub open_runs: usize,
    /// Transfer tasks not carried out yet.
    pub transfers: Vec<TransferRow>,
    pub tasks: Vec<OutboxTask>,
}

/// Runs, histories, current-run pointers, outbox tasks, timers and transfer tasks.
///
/// Invariant: `commit` reports success only after the batch is durable, and a batch is
/// committed whole or not at all. Reads see every batch whose commit has returned.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Commits a batch atomically and returns once it is durable. Concurrent batches may share
    /// one transaction (group commit), but each succeeds or fails on its own: a batch that
    /// breaks a constraint fails with [`crate::Error::Rejected`] and does not fail the others.
    async fn commit(&self, batch: WriteBatch) -> Result<()>;
    /// The run the workflow id's current-run pointer names.
    async fn current_run_id(&self, namespace: &str, workflow_id: &str) -> Result<Option<String>>;
    /// A run's state as last committed (open or closed).
    async fn run(&self, run_id: &str) -> Result<Option<RunState>>;
    /// Events with `event_id >= from`, at most `limit`, in order.
    async fn events(&self, run_id: &str, from: i64, limit: usize) -> Result<Vec<history_pb::HistoryEvent>>;
    /// The outbox tasks, the transfer tasks not carried out yet and the number of open runs.
    async fn recover(&self) -> Result<Recovered>;
    /// Armed timers in key order, the `limit` after `after` (from the first with `None`). Start-up
    /// reads them page by page, so that a million timers are never all in memory twice.
    async fn timers(&self, after: Option<TimerCursor>, limit: usize) -> Result<Vec<TimerRow>>;
}

/// Every armed timer, by due time (for tests and tools; the server pages through them).
pub async fn all_timers(store: &dyn ExecutionStore) -> Result<Vec<TimerRow>> {
    const PAGE: usize = 1000;
    let mut out: Vec<TimerRow> = Vec::new();
    loop {
        let page = store.timers(out.last().map(TimerRow::cursor), PAGE).await?;
        let done = page.len() < PAGE;
        out.extend(page);
        if done {
            break;
        }
    }
    out.sort_by_key(|t| t.timer.fire_at_ms);
    Ok(out)
}
