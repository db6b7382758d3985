//! The SQLite store: WAL mode, fsync on commit, one writer thread that groups concurrent
//! batches into one transaction, and a pool of read connections.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;

use prost::Message;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use temporalio_protos::temporal::api::history::v1 as history_pb;
use tokio::sync::oneshot;
use uhrwerk_core::kernel::TimerTask;
use uhrwerk_core::state::RunState;
use uhrwerk_core::transfer::TransferTask;
use uhrwerk_visibility::{Expr, Literal, Query, ValueType};

use crate::batch::{OutboxTask, RunWrite, TaskKind, TimerRow, TransferRow, WriteBatch};
use crate::visibility::{OPEN_ORDER, Where, order_by};
use crate::{AttrRow, Error, PageCursor, Recovered, Result, RunKey, ScheduleRow, Store};

/// Ordered migrations; `PRAGMA user_version` records how many ran. Each may be followed by a
/// data step that derives new columns from existing rows.
/// A migration's data step, run in the migration's transaction.
type DataStep = fn(&Transaction<'_>) -> Result<()>;

const MIGRATIONS: &[(&str, Option<DataStep>)] = &[
    (include_str!("../../../schema/sqlite/v1/schema.sql"), None),
    (include_str!("../../../schema/sqlite/v2/schema.sql"), Some(backfill_visibility)),
    (include_str!("../../../schema/sqlite/v3/schema.sql"), None),
];
/// Most batches one transaction takes; bounds the latency a single group adds.
const MAX_GROUP: usize = 1024;
const READERS: usize = 4;

#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// fsync every commit (`synchronous=FULL`). Off only for throwaway databases.
    pub durable: bool,
}

type Job = (WriteBatch, oneshot::Sender<Result<()>>);

pub struct SqliteStore {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<thread::JoinHandle<()>>>,
    /// Dropping the sender stops the maintenance thread.
    maintenance: Mutex<Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn open_connection(path: &Path, durable: bool) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Text search attributes match by tokens, as Temporal's full-text `=` does.
    conn.create_scalar_function(
        "uw_text_match",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let field: Option<String> = ctx.get(0)?;
            let query: String = ctx.get(1)?;
            Ok(field.is_some_and(|f| uhrwerk_visibility::text::text_matches(&f, &query)))
        },
    )?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(Error::SchemaTooNew { found: version, supported });
    }
    for (idx, (sql, data_step)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if let Some(step) = data_step {
            step(&tx)?;
        }
        tx.pragma_update(None, "user_version", idx as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = idx + 1, "applied schema migration");
    }
    Ok(())
}

impl SqliteStore {
    pub fn open(options: &SqliteOptions) -> Result<Self> {
        let mut conn = open_connection(&options.path, options.durable)?;
        migrate(&mut conn)?;
        let readers = (0..READERS)
            .map(|_| open_connection(&options.path, options.durable).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = thread::Builder::new()
            .name("uhrwerk-store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| Error::Corrupt { what: "writer thread", detail: e.to_string() })?;
        let maintenance_conn = open_connection(&options.path, options.durable)?;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let maintenance = thread::Builder::new()
            .name("uhrwerk-store-maintenance".into())
            .spawn(move || maintenance_loop(maintenance_conn, stop_rx))
            .map_err(|e| Error::Corrupt { what: "maintenance thread", detail: e.to_string() })?;
        Ok(Self {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            maintenance: Mutex::new(Some((stop_tx, maintenance))),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Refreshes the query planner's statistics where tables changed much since the last time
    /// (SQLite's `PRAGMA optimize`); the store does this by itself every few minutes.
    pub fn optimize(&self) -> Result<()> {
        self.read(optimize)
    }

    /// Stops the writer after it finished every submitted batch.
    pub fn close(&self) {
        if let Some((stop, handle)) = self.maintenance.lock().expect("maintenance lock").take() {
            drop(stop);
            let _ = handle.join();
        }
        drop(self.writer.lock().expect("writer lock").take());
        if let Some(handle) = self.writer_thread.lock().expect("writer thread lock").take() {
            let _ = handle.join();
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idx = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = self.readers[idx].lock().expect("reader lock");
        f(&conn)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// First statistics refresh after opening, then the interval between refreshes.
const FIRST_OPTIMIZE: std::time::Duration = std::time::Duration::from_secs(30);
const OPTIMIZE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

fn optimize(conn: &Connection) -> Result<()> {
    // 0x10002: analyze every table whose size changed enough since its last analysis.
    conn.execute_batch("PRAGMA optimize=0x10002;")?;
    Ok(())
}

/// Keeps the planner's statistics fresh, so that list queries keep using the right index as
/// the tables grow.
fn maintenance_loop(conn: Connection, stop: mpsc::Receiver<()>) {
    let mut wait = FIRST_OPTIMIZE;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(wait) {
        if let Err(e) = optimize(&conn) {
            tracing::warn!("failed to refresh query planner statistics: {e}");
        }
        wait = OPTIMIZE_EVERY;
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let grouped = apply_group(&mut conn, jobs.iter().map(|(b, _)| b));
        match grouped {
            Ok(()) => {
                for (_, reply) in jobs {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if jobs.len() > 1 => {
                // One bad batch must not fail the others: retry each on its own.
                tracing::warn!("group commit failed, retrying batches one by one: {e}");
                for (batch, reply) in jobs {
                    let _ = reply.send(apply_group(&mut conn, std::iter::once(&batch)));
                }
            }
            Err(e) => {
                tracing::error!("failed to commit: {e}");
                if let Some((_, reply)) = jobs.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}

/// Version 2: fills the visibility columns and attribute rows of runs written by version 1.
fn backfill_visibility(tx: &Transaction<'_>) -> Result<()> {
    let states: Vec<Vec<u8>> = {
        let mut stmt = tx.prepare("SELECT state FROM runs")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for bytes in states {
        write_run_row(tx, &decode_state(&bytes)?)?;
    }
    Ok(())
}

fn apply_group<'a>(conn: &mut Connection, batches: impl Iterator<Item = &'a WriteBatch>) -> Result<()> {
    let tx = conn.transaction()?;
    for batch in batches {
        for run in &batch.runs {
            apply_run(&tx, run)?;
        }
        for key in &batch.deletes {
            delete_run(&tx, key)?;
        }
        let mut remove_transfer =
            tx.prepare_cached("DELETE FROM transfer_tasks WHERE run_id = ?1 AND kind = ?2 AND event_id = ?3")?;
        for key in &batch.remove_transfers {
            remove_transfer.execute(params![key.run_id, key.kind, key.event_id])?;
        }
        for (namespace, schedule_id, data) in &batch.schedules {
            match data {
                Some(data) => tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO schedules (namespace, schedule_id, data) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![namespace, schedule_id, data])?,
                None => tx
                    .prepare_cached("DELETE FROM schedules WHERE namespace = ?1 AND schedule_id = ?2")?
                    .execute(params![namespace, schedule_id])?,
            };
        }
    }
    tx.commit()?;
    Ok(())
}

fn delete_run(tx: &Transaction<'_>, key: &RunKey) -> Result<()> {
    for sql in [
        "DELETE FROM runs WHERE run_id = ?1",
        "DELETE FROM events WHERE run_id = ?1",
        "DELETE FROM tasks WHERE run_id = ?1",
        "DELETE FROM timers WHERE run_id = ?1",
        "DELETE FROM run_attrs WHERE run_id = ?1",
    ] {
        tx.prepare_cached(sql)?.execute(params![key.run_id])?;
    }
    tx.prepare_cached("DELETE FROM current_runs WHERE namespace = ?1 AND workflow_id = ?2 AND run_id = ?3")?
        .execute(params![key.namespace, key.workflow_id, key.run_id])?;
    Ok(())
}

/// Writes a run's row with its visibility columns.
fn write_run_row(tx: &Transaction<'_>, st: &RunState) -> Result<()> {
    let open = st.is_open();
    let parent = st.parent.as_ref();
    let (root_workflow_id, root_run_id) = match st.root.as_ref() {
        Some(root) => (root.workflow_id.as_str(), root.run_id.as_str()),
        None => (st.workflow_id.as_str(), st.run_id.as_str()),
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO runs (run_id, namespace, workflow_id, workflow_type, task_queue, status, \
         start_time, close_time, execution_time, history_length, state, close_order, history_size_bytes, \
         state_transition_count, execution_duration, parent_workflow_id, parent_run_id, root_workflow_id, root_run_id) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)",
    )?
    .execute(params![
        st.run_id,
        st.namespace,
        st.workflow_id,
        st.workflow_type,
        st.task_queue,
        st.status,
        st.start_time_ms,
        st.close_time_ms,
        st.execution_time_ms,
        st.next_event_id - 1,
        st.encode_to_vec(),
        if open { OPEN_ORDER } else { st.close_time_ms },
        st.history_size_bytes,
        st.state_transition_count,
        (!open).then(|| (st.close_time_ms - st.execution_time_ms).max(0).saturating_mul(1_000_000)),
        parent.map(|p| p.workflow_id.as_str()),
        parent.map(|p| p.run_id.as_str()),
        root_workflow_id,
        root_run_id,
    ])?;
    Ok(())
}

fn write_attrs(tx: &Transaction<'_>, st: &RunState, attrs: &[AttrRow]) -> Result<()> {
    tx.prepare_cached("DELETE FROM run_attrs WHERE run_id = ?1")?.execute(params![st.run_id])?;
    let mut insert =
        tx.prepare_cached("INSERT OR REPLACE INTO run_attrs (run_id, name, seq, namespace, sval, ival, rval) VALUES (?1,?2,?3,?4,?5,?6,?7)")?;
    for attr in attrs {
        for (seq, value) in attr.values.iter().enumerate() {
            let (sval, ival, rval) = match value {
                Literal::Str(s) => (Some(s.as_str()), None, None),
                Literal::Int(i) | Literal::Time(i) => (None, Some(*i), None),
                Literal::Bool(b) => (None, Some(i64::from(*b)), None),
                Literal::Double(d) => (None, None, Some(*d)),
            };
            insert.execute(params![st.run_id, attr.name, seq as i64, st.namespace, sval, ival, rval])?;
        }
    }
    Ok(())
}

fn apply_run(tx: &Transaction<'_>, w: &RunWrite) -> Result<()> {
    let st = &w.state;
    write_run_row(tx, st)?;
    if let Some(attrs) = &w.attrs {
        write_attrs(tx, st, attrs)?;
    }
    if w.set_current {
        tx.prepare_cached("INSERT OR REPLACE INTO current_runs (namespace, workflow_id, run_id) VALUES (?1,?2,?3)")?
            .execute(params![st.namespace, st.workflow_id, st.run_id])?;
    }
    let mut insert_event = tx.prepare_cached("INSERT INTO events (run_id, event_id, data) VALUES (?1,?2,?3)")?;
    for event in &w.events {
        insert_event.execute(params![st.run_id, event.event_id, event.encode_to_vec()])?;
    }
    let mut remove_task = tx.prepare_cached("DELETE FROM tasks WHERE run_id = ?1 AND scheduled_event_id = ?2")?;
    for id in &w.remove_tasks {
        remove_task.execute(params![st.run_id, id])?;
    }
    let mut add_task = tx.prepare_cached(
        "INSERT OR REPLACE INTO tasks (run_id, scheduled_event_id, kind, attempt, namespace, workflow_id, task_queue) \
         VALUES (?1,?2,?3,?4,?5,?6,?7)",
    )?;
    for t in &w.add_tasks {
        add_task.execute(params![
            t.run_id,
            t.scheduled_event_id,
            t.kind as i64,
            t.attempt,
            t.namespace,
            t.workflow_id,
            t.task_queue
        ])?;
    }
    let mut remove_timer =
        tx.prepare_cached("DELETE FROM timers WHERE run_id = ?1 AND kind = ?2 AND id = ?3 AND attempt = ?4")?;
    for t in &w.remove_timers {
        remove_timer.execute(params![st.run_id, t.kind, t.id, t.attempt])?;
    }
    let mut add_timer = tx.prepare_cached(
        "INSERT OR REPLACE INTO timers (run_id, kind, id, attempt, fire_at, namespace, workflow_id) VALUES (?1,?2,?3,?4,?5,?6,?7)",
    )?;
    for t in &w.add_timers {
        add_timer.execute(params![st.run_id, t.kind, t.id, t.attempt, t.fire_at_ms, st.namespace, st.workflow_id])?;
    }
    let mut add_transfer = tx.prepare_cached(
        "INSERT OR REPLACE INTO transfer_tasks (run_id, kind, event_id, namespace, workflow_id, data) \
         VALUES (?1,?2,?3,?4,?5,?6)",
    )?;
    for t in &w.add_transfers {
        add_transfer.execute(params![
            st.run_id,
            t.kind,
            t.event_id,
            st.namespace,
            st.workflow_id,
            t.encode_to_vec()
        ])?;
    }
    if !st.is_open() {
        tx.prepare_cached("DELETE FROM tasks WHERE run_id = ?1")?.execute(params![st.run_id])?;
        tx.prepare_cached("DELETE FROM timers WHERE run_id = ?1")?.execute(params![st.run_id])?;
    }
    Ok(())
}

fn decode_state(bytes: &[u8]) -> Result<RunState> {
    RunState::decode(bytes).map_err(|e| Error::Corrupt { what: "run state", detail: e.to_string() })
}

impl Store for SqliteStore {
    fn commit(&self, batch: WriteBatch) -> Result<()> {
        self.submit(batch).blocking_recv().map_err(|_| Error::WriterGone)?
    }

    fn submit(&self, batch: WriteBatch) -> oneshot::Receiver<Result<()>> {
        let (tx, rx) = oneshot::channel();
        let writer = self.writer.lock().expect("writer lock");
        match writer.as_ref() {
            Some(w) => {
                if let Err(mpsc::SendError((_, reply))) = w.send((batch, tx)) {
                    let _ = reply.send(Err(Error::WriterGone));
                }
            }
            None => {
                let _ = tx.send(Err(Error::WriterGone));
            }
        }
        rx
    }

    fn namespaces(&self) -> Result<Vec<Vec<u8>>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT data FROM namespaces ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn put_namespace(&self, name: &str, id: &str, data: Vec<u8>) -> Result<()> {
        self.read(|c| {
            c.prepare_cached("INSERT OR REPLACE INTO namespaces (name, id, data) VALUES (?1, ?2, ?3)")?
                .execute(params![name, id, data])?;
            Ok(())
        })
    }

    fn recover(&self) -> Result<Recovered> {
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
                    .map_err(|e| Error::Corrupt { what: "transfer task", detail: e.to_string() })?;
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
                let kind =
                    TaskKind::from_i64(kind).ok_or(Error::Corrupt { what: "task kind", detail: kind.to_string() })?;
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
            let mut stmt = c.prepare(
                "SELECT namespace, workflow_id, run_id, kind, id, attempt, fire_at FROM timers ORDER BY fire_at",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(TimerRow {
                    namespace: r.get(0)?,
                    workflow_id: r.get(1)?,
                    run_id: r.get(2)?,
                    timer: TimerTask { kind: r.get(3)?, id: r.get(4)?, attempt: r.get(5)?, fire_at_ms: r.get(6)? },
                })
            })?;
            for row in rows {
                out.timers.push(row?);
            }
            Ok(out)
        })
    }

    fn current_run_id(&self, namespace: &str, workflow_id: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT run_id FROM current_runs WHERE namespace = ?1 AND workflow_id = ?2")?
                .query_row(params![namespace, workflow_id], |r| r.get(0))
                .optional()?)
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunState>> {
        let bytes: Option<Vec<u8>> = self.read(|c| {
            Ok(c.prepare_cached("SELECT state FROM runs WHERE run_id = ?1")?
                .query_row(params![run_id], |r| r.get(0))
                .optional()?)
        })?;
        bytes.map(|b| decode_state(&b)).transpose()
    }

    fn events(&self, run_id: &str, from: i64, limit: usize) -> Result<Vec<history_pb::HistoryEvent>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT data FROM events WHERE run_id = ?1 AND event_id >= ?2 ORDER BY event_id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![run_id, from, limit as i64], |r| r.get::<_, Vec<u8>>(0))?;
            rows.map(|bytes| {
                let bytes = bytes?;
                history_pb::HistoryEvent::decode(bytes.as_slice())
                    .map_err(|e| Error::Corrupt { what: "history event", detail: e.to_string() })
            })
            .collect()
        })
    }

    fn list_runs(
        &self,
        namespace: &str,
        query: &Query,
        after: Option<&PageCursor>,
        limit: usize,
    ) -> Result<(Vec<RunState>, Option<PageCursor>)> {
        let limit = limit.max(1);
        let mut w = Where::new(namespace);
        w.filter(query.filter.as_ref());
        let mut offset = 0u64;
        match after {
            Some(PageCursor::After { close_order, start_time_ms, run_id }) if query.order_by.is_empty() => {
                let (c, s, r) = (
                    w.param(SqlValue::Integer(*close_order)),
                    w.param(SqlValue::Integer(*start_time_ms)),
                    w.param(SqlValue::Text(run_id.clone())),
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
        let rows: Vec<(Vec<u8>, i64)> = self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(w.params), |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let full = rows.len() == limit;
        let last_order = rows.last().map(|r| r.1);
        let runs = rows.iter().map(|(b, _)| decode_state(b)).collect::<Result<Vec<_>>>()?;
        let next = match (full, runs.last(), last_order) {
            (true, Some(last), Some(close_order)) if query.order_by.is_empty() => {
                Some(PageCursor::After { close_order, start_time_ms: last.start_time_ms, run_id: last.run_id.clone() })
            }
            (true, Some(_), _) => Some(PageCursor::Offset(offset + limit as u64)),
            _ => None,
        };
        Ok((runs, next))
    }

    fn count_runs(&self, namespace: &str, filter: Option<&Expr>) -> Result<i64> {
        let mut w = Where::new(namespace);
        w.filter(filter);
        let sql = format!("SELECT COUNT(*) FROM runs WHERE runs.namespace = ?1{}", w.sql);
        self.read(|c| Ok(c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(w.params), |r| r.get(0))?))
    }

    fn count_runs_by_status(&self, namespace: &str, filter: Option<&Expr>) -> Result<Vec<(i32, i64)>> {
        let mut w = Where::new(namespace);
        w.filter(filter);
        let sql = format!(
            "SELECT runs.status, COUNT(*) FROM runs WHERE runs.namespace = ?1{} GROUP BY runs.status ORDER BY runs.status",
            w.sql
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(w.params), |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn expired_runs(&self, namespace: &str, closed_before_ms: i64, limit: usize) -> Result<Vec<RunKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT workflow_id, run_id FROM runs WHERE namespace = ?1 AND close_order < ?2 ORDER BY close_order LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![namespace, closed_before_ms, limit as i64], |r| {
                Ok(RunKey { namespace: namespace.to_string(), workflow_id: r.get(0)?, run_id: r.get(1)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn search_attributes(&self) -> Result<Vec<(String, String, ValueType)>> {
        let rows: Vec<(String, String, i32)> = self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT namespace, name, type FROM search_attributes ORDER BY namespace, name")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        rows.into_iter()
            .map(|(ns, name, ty)| {
                let ty = ValueType::from_indexed(ty)
                    .ok_or(Error::Corrupt { what: "search attribute type", detail: ty.to_string() })?;
                Ok((ns, name, ty))
            })
            .collect()
    }

    fn put_search_attributes(&self, namespace: &str, attrs: &[(String, ValueType)]) -> Result<()> {
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            for (name, ty) in attrs {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO search_attributes (namespace, name, type) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![namespace, name, ty.to_indexed()])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn remove_search_attributes(&self, namespace: &str, names: &[String]) -> Result<()> {
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            for name in names {
                tx.prepare_cached("DELETE FROM search_attributes WHERE namespace = ?1 AND name = ?2")?
                    .execute(params![namespace, name])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT namespace, schedule_id, data FROM schedules ORDER BY namespace, schedule_id")?;
            let rows = stmt
                .query_map([], |r| Ok(ScheduleRow { namespace: r.get(0)?, schedule_id: r.get(1)?, data: r.get(2)? }))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
