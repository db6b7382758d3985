//! The SQLite backend of the storage API: [`SqliteStore`] implements `ExecutionStore`,
//! `VisibilityStore` and `MetadataStore` over one database file.
//!
//! WAL mode, fsync on commit (`synchronous=FULL`). One writer thread takes batches from a
//! channel and commits everything queued in one transaction (group commit), answering each
//! batch through a oneshot channel once it is durable; if a group fails, each batch is retried
//! alone so one bad batch cannot fail the others. Reads go through a small pool of separate
//! connections (WAL lets them run beside the writer) on tokio's blocking pool, so async callers
//! never block their worker. Migrations (`schema/sqlite/vN`) run at open.
//!
//! Invariant: `ExecutionStore::commit` and the schedule writes report success only after the
//! writer's transaction is durable.

mod error;
mod execution;
mod metadata;
mod migrate;
mod visibility;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use crate::error::Error;
use prost::Message;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{Error as StorageError, Result as StorageResult, WriteBatch};

use crate::error::Result;
use crate::writer::{Job, Write};

/// Read connections; WAL lets them read beside the writer.
const READERS: usize = 4;

#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// fsync every commit (`synchronous=FULL`). Off only for throwaway databases.
    pub durable: bool,
}

/// Where the database lives.
enum Location {
    File(PathBuf),
    /// A URI of SQLite's `memdb` VFS, shared by the store's connections and gone with the last.
    Memory(String),
}

pub struct SqliteStore {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<thread::JoinHandle<()>>>,
    /// Dropping the sender stops the maintenance thread.
    maintenance: Mutex<Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>>,
    readers: Arc<Readers>,
}

/// The pool of read connections, used round-robin.
struct Readers {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idx = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let conn = self.connections[idx].lock().expect("reader lock");
        f(&conn)
    }
}

/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 64;

fn open_connection(location: &Location, durable: bool) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match location {
        Location::File(path) => Connection::open_with_flags(path, flags)?,
        Location::Memory(uri) => Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?,
    };
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // The writer alone runs about twenty distinct statements per commit; rusqlite's default
    // cache of 16 would evict and re-prepare some of them on every transaction.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if let Location::File(_) = location {
        // An in-memory database has no WAL; its connections take turns through SQLite's locks.
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
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

/// At open, a file SQLite cannot read as a database is not a Uhrwerk database.
fn not_ours(e: Error) -> Error {
    match &e {
        Error::Sqlite(inner) if inner.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
            Error::Storage(StorageError::NotOurs(format!("not a SQLite file, or a damaged one ({inner})")))
        }
        _ => e,
    }
}

impl SqliteStore {
    /// Opens (creating and migrating when needed) the database at `options.path`.
    pub fn open(options: &SqliteOptions) -> StorageResult<Self> {
        Self::open_at(&Location::File(options.path.clone()), options.durable)
    }

    /// A fresh database in memory, gone when the store is dropped; for tests.
    pub fn open_in_memory() -> StorageResult<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("uhrwerk-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        Self::open_at(&Location::Memory(format!("file:/{name}?vfs=memdb")), false)
    }

    fn open_at(location: &Location, durable: bool) -> StorageResult<Self> {
        if let Location::File(path) = location
            && path.exists()
        {
            // SQLite would say only "unable to open database file" for a read-only file system.
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|source| StorageError::Io { what: "open the database file for writing", source })?;
            // Whose it is, read only: a file of another application is not touched (the
            // connection's settings below would already write to it).
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let probe = Connection::open_with_flags(path, flags).map_err(Error::from).map_err(not_ours)?;
            migrate::check(&probe).map_err(not_ours)?;
        }
        let mut conn = open_connection(location, durable).map_err(not_ours)?;
        migrate::migrate(&mut conn).map_err(not_ours)?;
        let readers =
            (0..READERS).map(|_| open_connection(location, durable).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = thread::Builder::new()
            .name("uhrwerk-store-writer".into())
            .spawn(move || writer::writer_loop(conn, rx))
            .map_err(|source| StorageError::Io { what: "start the store's writer thread", source })?;
        let maintenance_conn = open_connection(location, durable)?;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let maintenance = thread::Builder::new()
            .name("uhrwerk-store-maintenance".into())
            .spawn(move || maintenance_loop(maintenance_conn, stop_rx))
            .map_err(|source| StorageError::Io { what: "start the store's maintenance thread", source })?;
        Ok(Self {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            maintenance: Mutex::new(Some((stop_tx, maintenance))),
            readers: Arc::new(Readers { connections: readers, next: AtomicUsize::new(0) }),
        })
    }

    /// Refreshes the query planner's statistics where tables changed much since the last time
    /// (SQLite's `PRAGMA optimize`); the store does this by itself every few minutes. Blocks.
    pub fn optimize(&self) -> StorageResult<()> {
        Ok(self.readers.with(optimize)?)
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

    /// Queues a batch for the writer and returns at once; the receiver gets the outcome when
    /// the batch is durable (or failed). `ExecutionStore::commit` is this plus the wait.
    pub fn submit(&self, batch: WriteBatch) -> oneshot::Receiver<StorageResult<()>> {
        self.enqueue(Write::Batch(batch))
    }

    fn enqueue(&self, write: Write) -> oneshot::Receiver<StorageResult<()>> {
        let (tx, rx) = oneshot::channel();
        let writer = self.writer.lock().expect("writer lock");
        match writer.as_ref() {
            Some(w) => {
                if let Err(mpsc::SendError((_, reply))) = w.send((write, tx)) {
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

    /// Runs `f` on a read connection on tokio's blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> StorageResult<T> {
        let readers = self.readers.clone();
        match tokio::task::spawn_blocking(move || readers.with(f)).await {
            Ok(result) => Ok(result?),
            Err(e) => Err(StorageError::Unavailable(format!("the store's read task failed: {e}"))),
        }
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

/// Rows of each index that ANALYZE samples (SQLite's advice for `PRAGMA optimize`). Without a
/// limit it reads every analysed table whole: on a database of gigabytes each refresh reread
/// them, and left the connection's page cache full (in a 24-minute soak, the server's heap grew
/// by a step at each refresh).
const ANALYSIS_LIMIT: u32 = 400;

fn optimize(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "analysis_limit", ANALYSIS_LIMIT)?;
    // 0x10002: analyze every table whose size changed enough since its last analysis.
    conn.execute_batch("PRAGMA optimize=0x10002;")?;
    // The pages read stay cached on this connection until it needs the room: give them back.
    conn.execute_batch("PRAGMA shrink_memory;")?;
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

fn decode_state(bytes: &[u8]) -> Result<RunState> {
    Ok(RunState::decode(bytes).map_err(|e| StorageError::Corrupt { what: "run state", detail: e.to_string() })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of page cache `conn` holds.
    fn cache_used(conn: &Connection) -> i32 {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: the handle is a live connection; the call only reads its counters.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut current,
                &mut highest,
                0,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        current
    }

    #[test]
    fn a_statistics_refresh_samples_and_gives_its_cache_back() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let location = Location::File(dir.path().join("stats.db"));
        let conn = open_connection(&location, false).expect("a connection");
        conn.execute_batch(
            "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT); CREATE INDEX t_b ON t (b);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
             INSERT INTO t (b) SELECT printf('%08x-%s', i * 2654435761 % 4294967296, hex(randomblob(40))) FROM n;",
        )
        .expect("rows");
        conn.execute_batch("PRAGMA shrink_memory;").expect("shrink");
        optimize(&conn).expect("optimize");
        let analysed: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_stat1 WHERE idx = 't_b'", [], |r| r.get(0)).expect("stat1");
        assert_eq!(analysed, 1, "the index was analysed");
        let limit: i64 = conn.pragma_query_value(None, "analysis_limit", |r| r.get(0)).expect("analysis_limit");
        assert_eq!(limit, i64::from(ANALYSIS_LIMIT));
        // The table is some megabytes; what the refresh read is not kept.
        assert!(cache_used(&conn) < 64 * 1024, "{} bytes of page cache kept", cache_used(&conn));
    }
}
