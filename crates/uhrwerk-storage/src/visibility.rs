//! The visibility store: list and count queries over runs, and the runs past their retention.

use async_trait::async_trait;
use uhrwerk_core::state::RunState;
use uhrwerk_visibility::sql::{Dialect, Sql, Where, order_by};
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

/// The SQL of one list page for the SQL stores (their `runs` and `run_attrs` tables are the
/// same): selects `runs.state, runs.close_order` in the query's order, continuing after
/// `after`.
pub struct ListPage {
    pub sql: String,
    pub params: Vec<Sql>,
    offset: u64,
    limit: usize,
    ordered: bool,
}

impl ListPage {
    pub fn new(dialect: Dialect, namespace: &str, query: &Query, after: Option<&PageCursor>, limit: usize) -> Self {
        let limit = limit.max(1);
        let ordered = !query.order_by.is_empty();
        let mut w = Where::new(dialect, namespace);
        w.filter(query.filter.as_ref());
        let mut offset = 0u64;
        match after {
            Some(PageCursor::After { close_order, start_time_ms, run_id }) if !ordered => {
                let (c, s, r) = (
                    w.param(Sql::Integer(*close_order)),
                    w.param(Sql::Integer(*start_time_ms)),
                    w.param(Sql::Text(run_id.clone())),
                );
                w.push(&format!(
                    "(runs.close_order < {c} OR (runs.close_order = {c} AND (runs.start_time < {s} OR (runs.start_time = {s} AND runs.run_id > {r}))))"
                ));
            }
            Some(PageCursor::Offset(n)) => offset = *n,
            _ => {}
        }
        let order = order_by(&mut w, &query.order_by);
        let sql = format!(
            "SELECT runs.state, runs.close_order FROM runs WHERE runs.namespace = {}{} ORDER BY {order} LIMIT {} OFFSET {offset}",
            w.namespace(),
            w.sql,
            i64::try_from(limit).unwrap_or(i64::MAX),
        );
        Self { sql, params: w.params, offset, limit, ordered }
    }

    /// The page's runs from the rows `(state, close_order)` the SQL returned, with the cursor
    /// of the next page when this one is full.
    pub fn finish(&self, rows: Vec<(RunState, i64)>) -> (Vec<RunState>, Option<PageCursor>) {
        let next = match rows.last() {
            Some((last, close_order)) if rows.len() == self.limit && !self.ordered => Some(PageCursor::After {
                close_order: *close_order,
                start_time_ms: last.start_time_ms,
                run_id: last.run_id.clone(),
            }),
            Some(_) if rows.len() == self.limit => Some(PageCursor::Offset(self.offset + self.limit as u64)),
            _ => None,
        };
        (rows.into_iter().map(|(run, _)| run).collect(), next)
    }
}

/// The SQL of a count for the SQL stores: `(status, count)` rows per status with `by_status`,
/// else one `(0, count)` row.
pub fn count_sql(dialect: Dialect, namespace: &str, filter: Option<&Expr>, by_status: bool) -> (String, Vec<Sql>) {
    let mut w = Where::new(dialect, namespace);
    w.filter(filter);
    let ns = w.namespace();
    let sql = if by_status {
        format!(
            "SELECT runs.status, COUNT(*) FROM runs WHERE runs.namespace = {ns}{} GROUP BY runs.status ORDER BY runs.status",
            w.sql
        )
    } else {
        format!("SELECT CAST(0 AS BIGINT), COUNT(*) FROM runs WHERE runs.namespace = {ns}{}", w.sql)
    };
    (sql, w.params)
}
