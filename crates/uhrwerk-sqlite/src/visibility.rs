//! `VisibilityStore` for SQLite: list and count queries translated by `uhrwerk_visibility::sql`, run on the
//! reader pool.

use async_trait::async_trait;
use rusqlite::params;
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{ListPage, PageCursor, Result as StorageResult, RunKey, VisibilityStore, count_sql};
use uhrwerk_visibility::{Expr, Query};

use crate::SqliteStore;
use crate::error::Result;
use uhrwerk_visibility::sql::{Dialect, Sql};

#[async_trait]
impl VisibilityStore for SqliteStore {
    async fn list_runs(
        &self,
        namespace: &str,
        query: &Query,
        after: Option<&PageCursor>,
        limit: usize,
    ) -> StorageResult<(Vec<RunState>, Option<PageCursor>)> {
        let page = ListPage::new(Dialect::Sqlite, namespace, query, after, limit);
        let (sql, params) = (page.sql.clone(), sqlite_params(&page.params));
        let rows: Vec<(RunState, i64)> = self
            .read(move |c| {
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                })?;
                rows.map(|row| {
                    let (bytes, close_order) = row?;
                    Ok((crate::decode_state(&bytes)?, close_order))
                })
                .collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(page.finish(rows))
    }

    async fn count_runs(&self, namespace: &str, filter: Option<&Expr>) -> StorageResult<i64> {
        Ok(self.count(namespace, filter, false).await?.first().map_or(0, |(_, n)| *n))
    }

    async fn count_runs_by_status(&self, namespace: &str, filter: Option<&Expr>) -> StorageResult<Vec<(i32, i64)>> {
        self.count(namespace, filter, true).await
    }

    async fn expired_runs(&self, namespace: &str, closed_before_ms: i64, limit: usize) -> StorageResult<Vec<RunKey>> {
        let namespace = namespace.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT workflow_id, run_id FROM runs WHERE namespace = ?1 AND close_order < ?2 ORDER BY close_order LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![namespace, closed_before_ms, limit as i64], |r| {
                Ok(RunKey { namespace: namespace.clone(), workflow_id: r.get(0)?, run_id: r.get(1)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}

impl SqliteStore {
    async fn count(&self, namespace: &str, filter: Option<&Expr>, by_status: bool) -> StorageResult<Vec<(i32, i64)>> {
        let (sql, params) = count_sql(Dialect::Sqlite, namespace, filter, by_status);
        let params = sqlite_params(&params);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}

fn sqlite_params(params: &[Sql]) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    params
        .iter()
        .map(|p| match p {
            Sql::Text(s) => Value::Text(s.clone()),
            Sql::Integer(i) => Value::Integer(*i),
            Sql::Real(r) => Value::Real(*r),
        })
        .collect()
}
