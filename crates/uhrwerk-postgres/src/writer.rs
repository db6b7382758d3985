//! The writer tasks: each takes the writes queued in a channel and commits them in one
//! transaction (group commit); if a group fails, each write is retried alone so one bad batch
//! cannot fail the others. Also the SQL of a batch: runs with their visibility columns and
//! attributes, events, outbox tasks, timers, transfer tasks, deletes. All statements of a group's
//! transaction are sent without waiting for each answer (tokio-postgres pipelines queries
//! issued together), so a group costs about one round trip plus the commit; several writers
//! commit groups at once.

use std::sync::Arc;

use deadpool_postgres::{Pool, Transaction};
use prost::Message;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::types::ToSql;
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{AttrRow, Result as StorageResult, RunKey, RunWrite, WriteBatch};
use uhrwerk_visibility::Literal;
use uhrwerk_visibility::sql::OPEN_ORDER;

use crate::error::{self, Result};

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

/// Writer tasks that commit at once, each on its own connection. Transitions of one run never
/// wait in two groups at the same time (the engine commits a run's transitions one after the
/// other), so groups on different connections touch different runs.
pub(crate) const WRITERS: usize = 4;

pub(crate) async fn writer_loop(pool: Pool, rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let jobs = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut jobs = vec![first];
            while jobs.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        let grouped = apply_group(&pool, jobs.iter().map(|(w, _)| w)).await;
        match grouped {
            Ok(()) => {
                for (_, reply) in jobs {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e)
                if jobs.len() > 1
                    && matches!(e, uhrwerk_storage::Error::Rejected(_) | uhrwerk_storage::Error::Fenced(_)) =>
            {
                // One bad batch (or one of a shard that moved on) must not fail the others:
                // retry each on its own.
                tracing::warn!("group commit failed, retrying batches one by one: {e}");
                for (write, reply) in jobs {
                    let _ = reply.send(apply_group(&pool, std::iter::once(&write)).await);
                }
            }
            Err(e @ uhrwerk_storage::Error::Fenced(_)) => {
                let _ = jobs.into_iter().next().map(|(_, reply)| reply.send(Err(e)));
            }
            Err(e) => {
                // The database is unreachable or failed: none of the group committed.
                tracing::error!("failed to commit: {e}");
                // Each caller gets it as unavailable, said once.
                let detail = match &e {
                    uhrwerk_storage::Error::Unavailable(detail) => detail.clone(),
                    other => other.to_string(),
                };
                for (_, reply) in jobs {
                    let _ = reply.send(Err(uhrwerk_storage::Error::Unavailable(detail.clone())));
                }
            }
        }
    }
}

/// Commits writes in one transaction: every statement of the group sent at once, then COMMIT.
async fn apply_group<'a>(pool: &Pool, writes: impl Iterator<Item = &'a Write>) -> StorageResult<()> {
    let mut client = pool.get().await.map_err(error::pool)?;
    let run = async {
        let tx = client.transaction().await?;
        let mut pipe = Pipeline::new(&tx);
        // The shard fences first, each once and in shard order (so that groups lock the shard
        // rows in the same order and never deadlock): a shard that moved on aborts the whole
        // transaction, which is then retried batch by batch.
        let writes: Vec<&Write> = writes.collect();
        let fences: std::collections::BTreeSet<(i32, i64)> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Batch(batch) => batch.fence.map(|f| (f.shard, f.epoch)),
                Write::Schedule { .. } => None,
            })
            .collect();
        for (shard, epoch) in fences {
            pipe.add("SELECT uw_check_fence($1, $2)", vec![p(shard), p(epoch)]).await?;
        }
        for write in writes {
            match write {
                Write::Batch(batch) => apply_batch(&mut pipe, batch).await?,
                Write::Schedule { namespace, schedule_id, data: Some(data) } => {
                    pipe.add(
                        "INSERT INTO schedules (namespace, schedule_id, data) VALUES ($1, $2, $3) \
                         ON CONFLICT (namespace, schedule_id) DO UPDATE SET data = EXCLUDED.data",
                        vec![p(namespace.clone()), p(schedule_id.clone()), p(data.clone())],
                    )
                    .await?;
                }
                Write::Schedule { namespace, schedule_id, data: None } => {
                    pipe.add(
                        "DELETE FROM schedules WHERE namespace = $1 AND schedule_id = $2",
                        vec![p(namespace.clone()), p(schedule_id.clone())],
                    )
                    .await?;
                }
            }
        }
        pipe.run().await?;
        tx.commit().await?;
        Result::<()>::Ok(())
    };
    Ok(run.await?)
}

/// Statements of one transaction, sent together and awaited together.
struct Pipeline<'t, 'c> {
    tx: &'t Transaction<'c>,
    statements: Vec<(tokio_postgres::Statement, Vec<Box<dyn ToSql + Sync + Send>>)>,
}

impl<'t, 'c> Pipeline<'t, 'c> {
    fn new(tx: &'t Transaction<'c>) -> Self {
        Self { tx, statements: Vec::new() }
    }

    async fn add(&mut self, sql: &str, params: Vec<Box<dyn ToSql + Sync + Send>>) -> Result<()> {
        let stmt = self.tx.prepare_cached(sql).await?;
        self.statements.push((stmt, params));
        Ok(())
    }

    /// Runs every statement; they reach the server in the order they were added.
    async fn run(self) -> Result<Vec<u64>> {
        let tx = self.tx;
        let futures = self.statements.iter().map(|(stmt, params)| {
            let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            async move { tx.execute(stmt, &params).await }
        });
        let mut out = Vec::with_capacity(self.statements.len());
        for r in join_in_order(futures).await {
            out.push(r?);
        }
        Ok(out)
    }
}

/// Polls all futures together (so their queries are pipelined) and returns their results in
/// order. Hand-written rather than `futures::future::join_all`, which past 30 futures polls
/// through `FuturesUnordered` and so does not promise that each statement is first polled, and
/// sent, in the order it was added (a run's `DELETE` of its attributes must reach the server
/// before their `INSERT`s).
async fn join_in_order<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future finished")).collect()
}

fn p<T: ToSql + Sync + Send + 'static>(v: T) -> Box<dyn ToSql + Sync + Send> {
    Box::new(v)
}

async fn apply_batch(pipe: &mut Pipeline<'_, '_>, batch: &WriteBatch) -> Result<()> {
    for run in &batch.runs {
        apply_run(pipe, run).await?;
    }
    for key in &batch.deletes {
        delete_run(pipe, key).await?;
    }
    for key in &batch.remove_transfers {
        pipe.add(
            "DELETE FROM transfer_tasks WHERE run_id = $1 AND kind = $2 AND event_id = $3",
            vec![p(key.run_id.clone()), p(i64::from(key.kind)), p(key.event_id)],
        )
        .await?;
    }
    Ok(())
}

async fn delete_run(pipe: &mut Pipeline<'_, '_>, key: &RunKey) -> Result<()> {
    for sql in [
        "DELETE FROM runs WHERE run_id = $1",
        "DELETE FROM events WHERE run_id = $1",
        "DELETE FROM tasks WHERE run_id = $1",
        "DELETE FROM timers WHERE run_id = $1",
        "DELETE FROM run_attrs WHERE run_id = $1",
    ] {
        pipe.add(sql, vec![p(key.run_id.clone())]).await?;
    }
    pipe.add(
        "DELETE FROM current_runs WHERE namespace = $1 AND workflow_id = $2 AND run_id = $3",
        vec![p(key.namespace.clone()), p(key.workflow_id.clone()), p(key.run_id.clone())],
    )
    .await
}

/// The row of a run with its visibility columns, in the order of `RUN_COLUMNS`.
fn run_row(st: &RunState) -> Vec<Box<dyn ToSql + Sync + Send>> {
    let open = st.is_open();
    let parent = st.parent.as_ref();
    let (root_workflow_id, root_run_id) = match st.root.as_ref() {
        Some(root) => (root.workflow_id.clone(), root.run_id.clone()),
        None => (st.workflow_id.clone(), st.run_id.clone()),
    };
    vec![
        p(st.run_id.clone()),
        p(st.namespace.clone()),
        p(st.workflow_id.clone()),
        p(st.workflow_type.clone()),
        p(st.task_queue.clone()),
        p(i64::from(st.status)),
        p(st.start_time_ms),
        p(st.close_time_ms),
        p(st.execution_time_ms),
        p(st.next_event_id - 1),
        p(st.encode_to_vec()),
        p(if open { OPEN_ORDER } else { st.close_time_ms }),
        p(st.history_size_bytes),
        p(st.state_transition_count),
        p((!open).then(|| (st.close_time_ms - st.execution_time_ms).max(0).saturating_mul(1_000_000))),
        p(parent.map(|x| x.workflow_id.clone())),
        p(parent.map(|x| x.run_id.clone())),
        p(root_workflow_id),
        p(root_run_id),
    ]
}

/// Writes a run's row whole (insert, or replace every column).
pub(crate) const UPSERT_RUN: &str = "INSERT INTO runs (run_id, namespace, workflow_id, workflow_type, task_queue, \
     status, start_time, close_time, execution_time, history_length, state, close_order, history_size_bytes, \
     state_transition_count, execution_duration, parent_workflow_id, parent_run_id, root_workflow_id, root_run_id) \
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19) \
     ON CONFLICT (run_id) DO UPDATE SET namespace = EXCLUDED.namespace, workflow_id = EXCLUDED.workflow_id, \
     workflow_type = EXCLUDED.workflow_type, task_queue = EXCLUDED.task_queue, status = EXCLUDED.status, \
     start_time = EXCLUDED.start_time, close_time = EXCLUDED.close_time, execution_time = EXCLUDED.execution_time, \
     history_length = EXCLUDED.history_length, state = EXCLUDED.state, close_order = EXCLUDED.close_order, \
     history_size_bytes = EXCLUDED.history_size_bytes, state_transition_count = EXCLUDED.state_transition_count, \
     execution_duration = EXCLUDED.execution_duration, parent_workflow_id = EXCLUDED.parent_workflow_id, \
     parent_run_id = EXCLUDED.parent_run_id, root_workflow_id = EXCLUDED.root_workflow_id, \
     root_run_id = EXCLUDED.root_run_id";

async fn write_attrs(pipe: &mut Pipeline<'_, '_>, st: &RunState, attrs: &[AttrRow]) -> Result<()> {
    pipe.add("DELETE FROM run_attrs WHERE run_id = $1", vec![p(st.run_id.clone())]).await?;
    for attr in attrs {
        for (seq, value) in attr.values.iter().enumerate() {
            let (sval, ival, rval) = match value {
                Literal::Str(s) => (Some(s.clone()), None, None),
                Literal::Int(i) | Literal::Time(i) => (None, Some(*i), None),
                Literal::Bool(b) => (None, Some(i64::from(*b)), None),
                Literal::Double(d) => (None, None, Some(*d)),
            };
            pipe.add(
                "INSERT INTO run_attrs (run_id, name, seq, namespace, sval, ival, rval) VALUES ($1,$2,$3,$4,$5,$6,$7) \
                 ON CONFLICT (run_id, name, seq) DO UPDATE SET namespace = EXCLUDED.namespace, sval = EXCLUDED.sval, \
                 ival = EXCLUDED.ival, rval = EXCLUDED.rval",
                vec![
                    p(st.run_id.clone()),
                    p(attr.name.clone()),
                    p(seq as i64),
                    p(st.namespace.clone()),
                    p(sval),
                    p(ival),
                    p(rval),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

async fn apply_run(pipe: &mut Pipeline<'_, '_>, w: &RunWrite) -> Result<()> {
    let st = &w.state;
    pipe.add(UPSERT_RUN, run_row(st)).await?;
    if let Some(attrs) = &w.attrs {
        write_attrs(pipe, st, attrs).await?;
    }
    if w.set_current {
        pipe.add(
            "INSERT INTO current_runs (namespace, workflow_id, run_id) VALUES ($1,$2,$3) \
             ON CONFLICT (namespace, workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id",
            vec![p(st.namespace.clone()), p(st.workflow_id.clone()), p(st.run_id.clone())],
        )
        .await?;
    }
    for event in &w.events {
        pipe.add(
            "INSERT INTO events (run_id, event_id, data) VALUES ($1,$2,$3)",
            vec![p(st.run_id.clone()), p(event.event_id), p(event.encode_to_vec())],
        )
        .await?;
    }
    for id in &w.remove_tasks {
        pipe.add("DELETE FROM tasks WHERE run_id = $1 AND scheduled_event_id = $2", vec![p(st.run_id.clone()), p(*id)])
            .await?;
    }
    for t in &w.add_tasks {
        pipe.add(
            "INSERT INTO tasks (run_id, scheduled_event_id, kind, attempt, namespace, workflow_id, task_queue) \
             VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (run_id, scheduled_event_id) DO UPDATE SET kind = EXCLUDED.kind, \
             attempt = EXCLUDED.attempt, namespace = EXCLUDED.namespace, workflow_id = EXCLUDED.workflow_id, \
             task_queue = EXCLUDED.task_queue",
            vec![
                p(t.run_id.clone()),
                p(t.scheduled_event_id),
                p(t.kind as i64),
                p(i64::from(t.attempt)),
                p(t.namespace.clone()),
                p(t.workflow_id.clone()),
                p(t.task_queue.clone()),
            ],
        )
        .await?;
    }
    for t in &w.remove_timers {
        pipe.add(
            "DELETE FROM timers WHERE run_id = $1 AND kind = $2 AND id = $3 AND attempt = $4",
            vec![p(st.run_id.clone()), p(i64::from(t.kind)), p(t.id), p(i64::from(t.attempt))],
        )
        .await?;
    }
    for t in &w.add_timers {
        pipe.add(
            "INSERT INTO timers (run_id, kind, id, attempt, fire_at, namespace, workflow_id) VALUES ($1,$2,$3,$4,$5,$6,$7) \
             ON CONFLICT (run_id, kind, id, attempt) DO UPDATE SET fire_at = EXCLUDED.fire_at",
            vec![
                p(st.run_id.clone()),
                p(i64::from(t.kind)),
                p(t.id),
                p(i64::from(t.attempt)),
                p(t.fire_at_ms),
                p(st.namespace.clone()),
                p(st.workflow_id.clone()),
            ],
        )
        .await?;
    }
    for t in &w.add_transfers {
        pipe.add(
            "INSERT INTO transfer_tasks (run_id, kind, event_id, namespace, workflow_id, data) VALUES ($1,$2,$3,$4,$5,$6) \
             ON CONFLICT (run_id, kind, event_id) DO UPDATE SET data = EXCLUDED.data",
            vec![
                p(st.run_id.clone()),
                p(i64::from(t.kind)),
                p(t.event_id),
                p(st.namespace.clone()),
                p(st.workflow_id.clone()),
                p(t.encode_to_vec()),
            ],
        )
        .await?;
    }
    if !st.is_open() {
        pipe.add("DELETE FROM tasks WHERE run_id = $1", vec![p(st.run_id.clone())]).await?;
        pipe.add("DELETE FROM timers WHERE run_id = $1", vec![p(st.run_id.clone())]).await?;
    }
    Ok(())
}
