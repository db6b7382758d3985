//! The visibility store: list and count queries over runs, and the runs past their retention.

use async_trait::async_trait;
use uhrwerk_core::state::RunState;
use uhrwerk_visibility::{Expr, Query};

use crate::{Result, RunKey};

/// Where the next page of a list starts.
#[derive(Clone, Debug, PartialEq)]
pub enum PageCursor {
    /// After the last row of the default order: its (close_order, start_time, run_id).
    After { close_order: i64, start_time_ms: i64, run_id: String },
    /// After this many rows, for queries with their own ORDER BY.
    Offset(u64),
}

/// List queries over the runs that [`crate::ExecutionStore::commit`] writes: a run's system
/// attributes come from its state, its custom search attributes from [`crate::RunWrite::attrs`].
/// The backend translates the parsed query (`uhrwerk_visibility::Query`) into its own language.
///
/// Invariant: a run whose commit has returned is listed, counted and found expired.
#[async_trait]
pub trait VisibilityStore: Send + Sync {
    /// A page of runs matching the query, in its order (Temporal's by default: open runs first,
    /// then latest close, latest start), with the cursor of the next page when this one is full.
    async fn list_runs(
        &self,
        namespace: &str,
        query: &Query,
        after: Option<&PageCursor>,
        limit: usize,
    ) -> Result<(Vec<RunState>, Option<PageCursor>)>;
    async fn count_runs(&self, namespace: &str, filter: Option<&Expr>) -> Result<i64>;
    /// Counts per `WorkflowExecutionStatus` value, for `GROUP BY ExecutionStatus`.
    async fn count_runs_by_status(&self, namespace: &str, filter: Option<&Expr>) -> Result<Vec<(i32, i64)>>;
    /// Closed runs of a namespace that closed before `closed_before_ms`, oldest first.
    async fn expired_runs(&self, namespace: &str, closed_before_ms: i64, limit: usize) -> Result<Vec<RunKey>>;
}
