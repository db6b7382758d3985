//! `VisibilityStore` for PostgreSQL: list and count queries translated by
//! `uhrwerk_visibility::sql` (PostgreSQL dialect), run on pooled connections.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{ListPage, PageCursor, Result as StorageResult, RunKey, VisibilityStore, count_sql};
use uhrwerk_visibility::sql::{Dialect, Sql};
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
        let page = ListPage::new(Dialect::Postgres, namespace, query, after, limit);
        let c = self.client().await?;
        let stmt = c.prepare_cached(&page.sql).await?;
        let rows = c.query(&stmt, &params(&page.params)).await?;
        let rows: Vec<(RunState, i64)> = rows
            .iter()
            .map(|r| Ok((crate::decode_state(r.get::<_, &[u8]>(0))?, r.get::<_, i64>(1))))
            .collect::<Result<_>>()?;
        Ok(page.finish(rows))
    }

    async fn count_inner(&self, namespace: &str, filter: Option<&Expr>, by_status: bool) -> Result<Vec<(i32, i64)>> {
        let (sql, values) = count_sql(Dialect::Postgres, namespace, filter, by_status);
        let c = self.client().await?;
        let stmt = c.prepare_cached(&sql).await?;
        let rows = c.query(&stmt, &params(&values)).await?;
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
