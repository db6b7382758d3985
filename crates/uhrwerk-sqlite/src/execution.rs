//! `ExecutionStore` for SQLite: commits go to the writer thread, reads to the reader pool.

use async_trait::async_trait;
use prost::Message;
use rusqlite::{OptionalExtension, params};
use temporalio_protos::temporal::api::history::v1 as history_pb;
use uhrwerk_core::kernel::TimerTask;
use uhrwerk_core::state::RunState;
use uhrwerk_core::transfer::TransferTask;
use uhrwerk_storage::{
    Error as StorageError, ExecutionStore, OutboxTask, Recovered, Result as StorageResult, TaskKind, TimerCursor,
    TimerRow, TransferRow, WriteBatch,
};

use crate::SqliteStore;
use crate::writer::Write;

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn commit(&self, batch: WriteBatch) -> StorageResult<()> {
        self.write(Write::Batch(batch)).await
    }

    async fn current_run_id(&self, namespace: &str, workflow_id: &str) -> StorageResult<Option<String>> {
        let (namespace, workflow_id) = (namespace.to_string(), workflow_id.to_string());
        self.read(move |c| {
            Ok(c.prepare_cached("SELECT run_id FROM current_runs WHERE namespace = ?1 AND workflow_id = ?2")?
                .query_row(params![namespace, workflow_id], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn run(&self, run_id: &str) -> StorageResult<Option<RunState>> {
        let run_id = run_id.to_string();
        self.read(move |c| {
            let bytes: Option<Vec<u8>> = c
                .prepare_cached("SELECT state FROM runs WHERE run_id = ?1")?
                .query_row(params![run_id], |r| r.get(0))
                .optional()?;
            bytes.map(|b| crate::decode_state(&b)).transpose()
        })
        .await
    }

    async fn events(&self, run_id: &str, from: i64, limit: usize) -> StorageResult<Vec<history_pb::HistoryEvent>> {
        let run_id = run_id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT data FROM events WHERE run_id = ?1 AND event_id >= ?2 ORDER BY event_id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![run_id, from, limit as i64], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|bytes| {
                let bytes = bytes?;
                Ok(history_pb::HistoryEvent::decode(bytes.as_slice())
                    .map_err(|e| StorageError::Corrupt { what: "history event", detail: e.to_string() })?)
            })
            .collect()
        })
        .await
    }

    async fn recover(&self) -> StorageResult<Recovered> {
        self.read(|c| {
            let mut out = Recovered::default();
            let open: i64 = c.query_row("SELECT count(*) FROM runs WHERE status = 1", [], |r| r.get(0))?;
            out.open_runs = open as usize;
            let mut stmt = c.prepare("SELECT namespace, workflow_id, run_id, data FROM transfer_tasks")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Vec<u8>>(3)?))
            })?;
            for row in rows {
                let (namespace, workflow_id, run_id, data) = row?;
                let task = TransferTask::decode(data.as_slice())
                    .map_err(|e| StorageError::Corrupt { what: "transfer task", detail: e.to_string() })?;
                out.transfers.push(TransferRow { namespace, workflow_id, run_id, task });
            }
            let mut stmt = c.prepare(
                "SELECT kind, namespace, workflow_id, run_id, task_queue, scheduled_event_id, attempt FROM tasks",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
            for row in rows {
                let (kind, namespace, workflow_id, run_id, task_queue, scheduled_event_id, attempt) = row?;
                let kind = TaskKind::from_i64(kind)
                    .ok_or(StorageError::Corrupt { what: "task kind", detail: kind.to_string() })?;
                out.tasks.push(OutboxTask {
                    kind,
                    namespace,
                    workflow_id,
                    run_id,
                    task_queue,
                    scheduled_event_id,
                    attempt,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn timers(&self, after: Option<TimerCursor>, limit: usize) -> StorageResult<Vec<TimerRow>> {
        self.read(move |c| {
            let after =
                after.unwrap_or(TimerCursor { run_id: String::new(), kind: i32::MIN, id: i64::MIN, attempt: i32::MIN });
            let mut stmt = c.prepare_cached(
                "SELECT namespace, workflow_id, run_id, kind, id, attempt, fire_at FROM timers \
                 WHERE (run_id, kind, id, attempt) > (?1, ?2, ?3, ?4) ORDER BY run_id, kind, id, attempt LIMIT ?5",
            )?;
            let rows =
                stmt.query_map(params![after.run_id, after.kind, after.id, after.attempt, limit as i64], |r| {
                    Ok(TimerRow {
                        namespace: r.get(0)?,
                        workflow_id: r.get(1)?,
                        run_id: r.get(2)?,
                        timer: TimerTask { kind: r.get(3)?, id: r.get(4)?, attempt: r.get(5)?, fire_at_ms: r.get(6)? },
                    })
                })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
