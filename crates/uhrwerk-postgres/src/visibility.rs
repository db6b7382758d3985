//! `VisibilityStore` for PostgreSQL: list and count queries translated by
//! `uhrwerk_visibility::sql` (PostgreSQL dialect), run on pooled connections.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{PageCursor, Result as StorageResult, RunKey, VisibilityStore};
use uhrwerk_visibility::sql::{Dialect, Sql, Where, order_by};
use uhrwerk_visibility::{Expr, Query};

use crate::PostgresStore;
use crate::error::Result;

fn params(values: &[Sql]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| match v {
            Sql::Text(s) => s as &(dyn ToSql + Sync),
            Sql::Integer(i) => i as &(dyn ToSql + Sync),
            Sql::Real(r) => r as &(dyn ToSql + Sync),
        })
        .collect()
}

impl PostgresStore {
    async fn list_inner(
        &self,
        namespace: &str,
        query: &Query,
        after: Option<&PageCursor>,
        limit: usize,
    ) -> Result<(Vec<RunState>, Option<PageCursor>)> {
        let limit = limit.max(1);
        let mut w = Where::new(Dialect::Postgres, namespace);
        w.filter(query.filter.as_ref());
        let mut offset = 0u64;
        match after {
            Some(PageCursor::After { close_order, start_time_ms, run_id }) if query.order_by.is_empty() => {
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
            "SELECT runs.state, runs.close_order FROM runs WHERE runs.namespace = $1{} ORDER BY {order} LIMIT {} OFFSET {offset}",
            w.sql,
            crate::sql_limit(limit)
        );
        let c = self.client().await?;
        let stmt = c.prepare_cached(&sql).await?;
        let rows = c.query(&stmt, &params(&w.params)).await?;
        let rows: Vec<(RunState, i64)> = rows
            .iter()
            .map(|r| Ok((crate::decode_state(r.get::<_, &[u8]>(0))?, r.get::<_, i64>(1))))
            .collect::<Result<_>>()?;
        let full = rows.len() == limit;
        let next = match (full, rows.last()) {
            (true, Some((last, close_order))) if query.order_by.is_empty() => Some(PageCursor::After {
                close_order: *close_order,
                start_time_ms: last.start_time_ms,
                run_id: last.run_id.clone(),
            }),
            (true, Some(_)) => Some(PageCursor::Offset(offset + limit as u64)),
            _ => None,
        };
        Ok((rows.into_iter().map(|(run, _)| run).collect(), next))
    }

    async fn count_inner(&self, namespace: &str, filter: Option<&Expr>, by_status: bool) -> Result<Vec<(i32, i64)>> {
        let mut w = Where::new(Dialect::Postgres, namespace);
        w.filter(filter);
        let sql = if by_status {
            format!(
                "SELECT runs.status, COUNT(*) FROM runs WHERE runs.namespace = $1{} GROUP BY runs.status ORDER BY runs.status",
                w.sql
            )
        } else {
            format!("SELECT 0::BIGINT, COUNT(*) FROM runs WHERE runs.namespace = $1{}", w.sql)
        };
        let c = self.client().await?;
        let stmt = c.prepare_cached(&sql).await?;
        let rows = c.query(&stmt, &params(&w.params)).await?;
        Ok(rows.iter().map(|r| (r.get::<_, i64>(0) as i32, r.get::<_, i64>(1))).collect())
    }

    async fn expired_inner(&self, namespace: &str, closed_before_ms: i64, limit: usize) -> Result<Vec<RunKey>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT workflow_id, run_id FROM runs WHERE namespace = $1 AND close_order < $2 ORDER BY close_order LIMIT $3",
            )
            .await?;
        let rows = c.query(&stmt, &[&namespace, &closed_before_ms, &crate::sql_limit(limit)]).await?;
        Ok(rows
            .iter()
            .map(|r| RunKey { namespace: namespace.to_string(), workflow_id: r.get(0), run_id: r.get(1) })
            .collect())
    }
}

#[async_trait]
impl VisibilityStore for PostgresStore {
    async fn list_runs(
        &self,
        namespace: &str,
        query: &Query,
        after: Option<&PageCursor>,
        limit: usize,
    ) -> StorageResult<(Vec<RunState>, Option<PageCursor>)> {
        Ok(self.list_inner(namespace, query, after, limit).await?)
    }

    async fn count_runs(&self, namespace: &str, filter: Option<&Expr>) -> StorageResult<i64> {
        Ok(self.count_inner(namespace, filter, false).await?.first().map_or(0, |(_, n)| *n))
    }

    async fn count_runs_by_status(&self, namespace: &str, filter: Option<&Expr>) -> StorageResult<Vec<(i32, i64)>> {
        Ok(self.count_inner(namespace, filter, true).await?)
    }

    async fn expired_runs(&self, namespace: &str, closed_before_ms: i64, limit: usize) -> StorageResult<Vec<RunKey>> {
        Ok(self.expired_inner(namespace, closed_before_ms, limit).await?)
    }
}
