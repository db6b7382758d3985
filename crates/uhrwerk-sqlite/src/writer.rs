//! The writer thread: takes queued writes from a channel and commits everything queued in one
//! transaction (group commit); if a group fails, each write is retried alone so one bad batch
//! cannot fail the others. Also the SQL of a batch: runs with their visibility columns and
//! attributes, events, outbox tasks, timers, transfer tasks, deletes.

use std::sync::mpsc;

use prost::Message;
use rusqlite::{Connection, Transaction, params};
use tokio::sync::oneshot;
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{AttrRow, Result as StorageResult, RunKey, RunWrite, WriteBatch};
use uhrwerk_visibility::Literal;

use crate::error::Result;
use uhrwerk_visibility::sql::OPEN_ORDER;

/// Most writes one transaction takes; bounds the latency a single group adds.
const MAX_GROUP: usize = 1024;

/// One write the writer commits, durably.
pub(crate) enum Write {
    Batch(WriteBatch),
    /// A schedule record; `None` deletes it.
    Schedule {
        namespace: String,
        schedule_id: String,
        data: Option<Vec<u8>>,
    },
}

pub(crate) type Job = (Write, oneshot::Sender<StorageResult<()>>);

pub(crate) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let grouped = apply_group(&mut conn, jobs.iter().map(|(w, _)| w));
        match grouped {
            Ok(()) => {
                for (_, reply) in jobs {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if jobs.len() > 1 => {
                // One bad batch must not fail the others: retry each on its own.
                tracing::warn!("group commit failed, retrying batches one by one: {e}");
                for (write, reply) in jobs {
                    let _ = reply.send(apply_group(&mut conn, std::iter::once(&write)).map_err(Into::into));
                }
            }
            Err(e) => {
                tracing::error!("failed to commit: {e}");
                if let Some((_, reply)) = jobs.into_iter().next() {
                    let _ = reply.send(Err(e.into()));
                }
            }
        }
    }
}

fn apply_group<'a>(conn: &mut Connection, writes: impl Iterator<Item = &'a Write>) -> Result<()> {
    let tx = conn.transaction()?;
    for write in writes {
        match write {
            Write::Batch(batch) => apply_batch(&tx, batch)?,
            Write::Schedule { namespace, schedule_id, data: Some(data) } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO schedules (namespace, schedule_id, data) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![namespace, schedule_id, data])?;
            }
            Write::Schedule { namespace, schedule_id, data: None } => {
                tx.prepare_cached("DELETE FROM schedules WHERE namespace = ?1 AND schedule_id = ?2")?
                    .execute(params![namespace, schedule_id])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

fn apply_batch(tx: &Transaction<'_>, batch: &WriteBatch) -> Result<()> {
    for run in &batch.runs {
        apply_run(tx, run)?;
    }
    for key in &batch.deletes {
        delete_run(tx, key)?;
    }
    let mut remove_transfer =
        tx.prepare_cached("DELETE FROM transfer_tasks WHERE run_id = ?1 AND kind = ?2 AND event_id = ?3")?;
    for key in &batch.remove_transfers {
        remove_transfer.execute(params![key.run_id, key.kind, key.event_id])?;
    }
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
pub(crate) fn write_run_row(tx: &Transaction<'_>, st: &RunState) -> Result<()> {
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

/// Updates a run's row in place when none of its indexed columns changed, which is every
/// transition but the first and the last: only the row's page is written. `INSERT OR REPLACE`
/// would delete the row and insert it under a new rowid, rewriting an entry in each of the
/// table's eight indexes and growing the transaction (and the WAL frames fsynced with it)
/// from one or two pages to about ten. Returns false when the row is missing or an indexed
/// column differs; `write_run_row` then writes it whole.
fn update_run_row(tx: &Transaction<'_>, st: &RunState) -> Result<bool> {
    let open = st.is_open();
    let changed = tx
        .prepare_cached(
            "UPDATE runs SET history_length = ?2, state = ?3, history_size_bytes = ?4, state_transition_count = ?5 \
             WHERE run_id = ?1 AND status = ?6 AND close_order = ?7 AND close_time = ?8 AND start_time = ?9 \
             AND execution_time = ?10",
        )?
        .execute(params![
            st.run_id,
            st.next_event_id - 1,
            st.encode_to_vec(),
            st.history_size_bytes,
            st.state_transition_count,
            st.status,
            if open { OPEN_ORDER } else { st.close_time_ms },
            st.close_time_ms,
            st.start_time_ms,
            st.execution_time_ms,
        ])?;
    Ok(changed == 1)
}

fn apply_run(tx: &Transaction<'_>, w: &RunWrite) -> Result<()> {
    let st = &w.state;
    if w.set_current || !update_run_row(tx, st)? {
        write_run_row(tx, st)?;
    }
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
