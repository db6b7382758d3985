//! `VisibilityStore` for SQLite: list and count queries translated by `uhrwerk_visibility::sql`, run on the
//! reader pool.

use async_trait::async_trait;
use rusqlite::params;
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{PageCursor, Result as StorageResult, RunKey, VisibilityStore};
use uhrwerk_visibility::{Expr, Query};

use crate::SqliteStore;
use crate::error::Result;
use uhrwerk_visibility::sql::{Dialect, Sql, Where, order_by};

#[async_trait]
impl VisibilityStore for SqliteStore {
    async fn list_runs(
        &self,
        namespace: &str,
        query: &Query,
        after: Option<&PageCursor>,
        limit: usize,
    ) -> StorageResult<(Vec<RunState>, Option<PageCursor>)> {
        let limit = limit.max(1);
        let mut w = Where::new(Dialect::Sqlite, namespace);
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
            "SELECT runs.state, runs.close_order FROM runs WHERE runs.namespace = ?1{} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
            w.sql
        );
        let params = sqlite_params(w.params);
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

    async fn count_runs(&self, namespace: &str, filter: Option<&Expr>) -> StorageResult<i64> {
        let mut w = Where::new(Dialect::Sqlite, namespace);
        w.filter(filter);
        let sql = format!("SELECT COUNT(*) FROM runs WHERE runs.namespace = ?1{}", w.sql);
        let params = sqlite_params(w.params);
        self.read(move |c| Ok(c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(params), |r| r.get(0))?))
            .await
    }

    async fn count_runs_by_status(&self, namespace: &str, filter: Option<&Expr>) -> StorageResult<Vec<(i32, i64)>> {
        let mut w = Where::new(Dialect::Sqlite, namespace);
        w.filter(filter);
        let sql = format!(
            "SELECT runs.status, COUNT(*) FROM runs WHERE runs.namespace = ?1{} GROUP BY runs.status ORDER BY runs.status",
            w.sql
        );
        let params = sqlite_params(w.params);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
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

fn sqlite_params(params: Vec<Sql>) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    params
        .into_iter()
        .map(|p| match p {
            Sql::Text(s) => Value::Text(s),
            Sql::Integer(i) => Value::Integer(i),
            Sql::Real(r) => Value::Real(r),
        })
        .collect()
}
