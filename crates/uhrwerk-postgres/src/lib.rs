//! The PostgreSQL backend of the storage API: [`PostgresStore`] implements `ExecutionStore`,
//! `VisibilityStore` and `MetadataStore` over one PostgreSQL database.
//!
//! A pool of connections (deadpool-postgres, which replaces a broken connection on its next
//! use, so the store reconnects by itself after the database restarts). Writer tasks take queued
//! writes from a channel and commit everything queued in one transaction (group commit), several
//! groups at once on their own connections, answering each write once its transaction committed; if a group fails, each write
//! is retried alone so one bad batch cannot fail the others. `synchronous_commit` is on for the
//! store's sessions whatever the server's default, so a commit is durable when acknowledged.
//! Reads take any pooled connection. Migrations (`schema/postgres/vN`) run at open under an
//! advisory lock, so several processes may start at once.
//!
//! Invariant: `ExecutionStore::commit` and the schedule writes report success only after the
//! transaction committed.

mod cluster;
mod config;
mod error;
mod execution;
mod metadata;
mod migrate;
mod visibility;
mod writer;

use std::sync::Mutex;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{Error as StorageError, Result as StorageResult, WriteBatch};

pub use config::{DatabaseUrl, UrlError};
pub use migrate::{SchemaStatus, migrate, status};

use crate::error::Result;
use crate::writer::{Job, Write};

#[derive(Clone, Debug)]
pub struct PostgresOptions {
    pub url: DatabaseUrl,
    /// Connections in the pool (the writer uses one at a time, reads the rest).
    pub pool_size: usize,
    /// Apply missing migrations at open; otherwise a database behind this binary is refused.
    pub migrate: bool,
}

pub struct PostgresStore {
    pool: Pool,
    writer: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    writer_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// How long a call waits for a pooled connection, for a new one, or for a check of an idle one.
const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A pool over `url` whose connections commit synchronously.
fn pool(url: &DatabaseUrl, size: usize) -> Pool {
    let manager = Manager::from_config(
        url.config().clone(),
        tokio_postgres::NoTls,
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
    Pool::builder(manager)
        .max_size(size.max(2))
        // Nothing waits forever on the database: a call that cannot get a connection in time
        // fails with UNAVAILABLE, which clients retry.
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
            Box::pin(async move {
                client.batch_execute("SET synchronous_commit = on").await.map_err(deadpool_postgres::HookError::Backend)
            })
        }))
        .build()
        .expect("a pool with a runtime-free configuration builds")
}

impl PostgresStore {
    /// Connects, checks (and with `options.migrate` brings up to date) the schema, and starts
    /// the writer. Must be called within a tokio runtime.
    pub async fn open(options: &PostgresOptions) -> StorageResult<Self> {
        let pool = pool(&options.url, options.pool_size);
        {
            let mut client = pool.get().await.map_err(error::pool)?;
            migrate::bring_up_to_date(&mut client, options.migrate).await?;
        }
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        let tasks = (0..writer::WRITERS).map(|_| tokio::spawn(writer::writer_loop(pool.clone(), rx.clone()))).collect();
        Ok(Self { pool, writer: Mutex::new(Some(tx)), writer_tasks: Mutex::new(tasks) })
    }

    /// Stops the writer after it finished every submitted write, and closes the pool.
    pub async fn close(&self) {
        drop(self.writer.lock().expect("writer lock").take());
        let tasks = std::mem::take(&mut *self.writer_tasks.lock().expect("writer tasks lock"));
        for task in tasks {
            let _ = task.await;
        }
        self.pool.close();
    }

    /// Queues a batch for the writer and returns at once; the receiver gets the outcome when
    /// the batch committed (or failed). `ExecutionStore::commit` is this plus the wait.
    pub fn submit(&self, batch: WriteBatch) -> oneshot::Receiver<StorageResult<()>> {
        self.enqueue(Write::Batch(batch))
    }

    fn enqueue(&self, write: Write) -> oneshot::Receiver<StorageResult<()>> {
        let (tx, rx) = oneshot::channel();
        let writer = self.writer.lock().expect("writer lock");
        match writer.as_ref() {
            Some(w) => {
                if let Err(mpsc::error::SendError((_, reply))) = w.send((write, tx)) {
                    let _ = reply.send(Err(StorageError::Stopped));
                }
            }
            None => {
                let _ = tx.send(Err(StorageError::Stopped));
            }
        }
        rx
    }

    /// Waits for a queued write.
    async fn write(&self, write: Write) -> StorageResult<()> {
        self.enqueue(write).await.map_err(|_| StorageError::Stopped)?
    }

    /// A pooled connection for reads.
    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| error::pool(e).into())
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        drop(self.writer.lock().expect("writer lock").take());
    }
}

fn decode_state(bytes: &[u8]) -> Result<RunState> {
    Ok(RunState::decode(bytes).map_err(|e| StorageError::Corrupt { what: "run state", detail: e.to_string() })?)
}

/// A row limit as PostgreSQL takes it (`usize::MAX`, "all", would wrap to a negative LIMIT).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
