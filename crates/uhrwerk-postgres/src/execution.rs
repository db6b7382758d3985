//! `ExecutionStore` for PostgreSQL: commits go to the writer task, reads to pooled connections.

use async_trait::async_trait;
use prost::Message;
use temporalio_protos::temporal::api::history::v1 as history_pb;
use uhrwerk_core::kernel::TimerTask;
use uhrwerk_core::state::RunState;
use uhrwerk_core::transfer::TransferTask;
use uhrwerk_storage::{
    Error as StorageError, ExecutionStore, OutboxTask, Recovered, Result as StorageResult, TaskKind, TimerCursor,
    TimerRow, TransferRow, WriteBatch,
};

use crate::PostgresStore;
use crate::error::Result;
use crate::writer::Write;

/// An i64 column that holds an i32 field.
fn narrow(v: i64, what: &'static str) -> Result<i32> {
    Ok(i32::try_from(v).map_err(|_| StorageError::Corrupt { what, detail: v.to_string() })?)
}

impl PostgresStore {
    async fn current_run_id_inner(&self, namespace: &str, workflow_id: &str) -> Result<Option<String>> {
        let c = self.client().await?;
        let stmt =
            c.prepare_cached("SELECT run_id FROM current_runs WHERE namespace = $1 AND workflow_id = $2").await?;
        Ok(c.query_opt(&stmt, &[&namespace, &workflow_id]).await?.map(|r| r.get(0)))
    }

    async fn run_inner(&self, run_id: &str) -> Result<Option<RunState>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached("SELECT state FROM runs WHERE run_id = $1").await?;
        let row = c.query_opt(&stmt, &[&run_id]).await?;
        row.map(|r| crate::decode_state(r.get::<_, &[u8]>(0))).transpose()
    }

    async fn events_inner(&self, run_id: &str, from: i64, limit: usize) -> Result<Vec<history_pb::HistoryEvent>> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached("SELECT data FROM events WHERE run_id = $1 AND event_id >= $2 ORDER BY event_id LIMIT $3")
            .await?;
        let rows = c.query(&stmt, &[&run_id, &from, &crate::sql_limit(limit)]).await?;
        rows.iter()
            .map(|r| {
                Ok(history_pb::HistoryEvent::decode(r.get::<_, &[u8]>(0))
                    .map_err(|e| StorageError::Corrupt { what: "history event", detail: e.to_string() })?)
            })
            .collect()
    }

    async fn recover_inner(&self) -> Result<Recovered> {
        let c = self.client().await?;
        let mut out = Recovered::default();
        let open: i64 = c.query_one("SELECT count(*) FROM runs WHERE status = 1", &[]).await?.get(0);
        out.open_runs = open as usize;
        for r in c.query("SELECT namespace, workflow_id, run_id, data FROM transfer_tasks", &[]).await? {
            let task = TransferTask::decode(r.get::<_, &[u8]>(3))
                .map_err(|e| StorageError::Corrupt { what: "transfer task", detail: e.to_string() })?;
            out.transfers.push(TransferRow { namespace: r.get(0), workflow_id: r.get(1), run_id: r.get(2), task });
        }
        let rows = c
            .query(
                "SELECT kind, namespace, workflow_id, run_id, task_queue, scheduled_event_id, attempt FROM tasks",
                &[],
            )
            .await?;
        for r in rows {
            let kind: i64 = r.get(0);
            let kind = TaskKind::from_i64(kind)
                .ok_or(StorageError::Corrupt { what: "task kind", detail: kind.to_string() })?;
            out.tasks.push(OutboxTask {
                kind,
                namespace: r.get(1),
                workflow_id: r.get(2),
                run_id: r.get(3),
                task_queue: r.get(4),
                scheduled_event_id: r.get(5),
                attempt: narrow(r.get(6), "task attempt")?,
            });
        }
        Ok(out)
    }

    async fn timers_inner(&self, after: Option<TimerCursor>, limit: usize) -> Result<Vec<TimerRow>> {
        let c = self.client().await?;
        let after =
            after.unwrap_or(TimerCursor { run_id: String::new(), kind: i32::MIN, id: i64::MIN, attempt: i32::MIN });
        let stmt = c
            .prepare_cached(
                "SELECT namespace, workflow_id, run_id, kind, id, attempt, fire_at FROM timers \
                 WHERE (run_id, kind, id, attempt) > ($1, $2, $3, $4) ORDER BY run_id, kind, id, attempt LIMIT $5",
            )
            .await?;
        let rows = c
            .query(
                &stmt,
                &[
                    &after.run_id,
                    &i64::from(after.kind),
                    &after.id,
                    &i64::from(after.attempt),
                    &crate::sql_limit(limit),
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TimerRow {
                    namespace: r.get(0),
                    workflow_id: r.get(1),
                    run_id: r.get(2),
                    timer: TimerTask {
                        kind: narrow(r.get(3), "timer kind")?,
                        id: r.get(4),
                        attempt: narrow(r.get(5), "timer attempt")?,
                        fire_at_ms: r.get(6),
                    },
                })
            })
            .collect()
    }
}

#[async_trait]
impl ExecutionStore for PostgresStore {
    async fn commit(&self, batch: WriteBatch) -> StorageResult<()> {
        self.write(Write::Batch(batch)).await
    }

    async fn current_run_id(&self, namespace: &str, workflow_id: &str) -> StorageResult<Option<String>> {
        Ok(self.current_run_id_inner(namespace, workflow_id).await?)
    }

    async fn run(&self, run_id: &str) -> StorageResult<Option<RunState>> {
        Ok(self.run_inner(run_id).await?)
    }

    async fn events(&self, run_id: &str, from: i64, limit: usize) -> StorageResult<Vec<history_pb::HistoryEvent>> {
        Ok(self.events_inner(run_id, from, limit).await?)
    }

    async fn recover(&self) -> StorageResult<Recovered> {
        Ok(self.recover_inner().await?)
    }

    async fn timers(&self, after: Option<TimerCursor>, limit: usize) -> StorageResult<Vec<TimerRow>> {
        Ok(self.timers_inner(after, limit).await?)
    }
}
