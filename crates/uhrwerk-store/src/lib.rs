//! Durable storage: the [`Store`] trait the engine writes through, and its SQLite implementation.
//!
//! Writes arrive as [`WriteBatch`]es, one per run transition. The SQLite store commits many
//! batches in one transaction with one fsync (group commit) on a dedicated writer thread;
//! reads use a small pool of separate connections (WAL lets them run beside the writer).

mod batch;
mod sqlite;

pub use batch::{OutboxTask, RunWrite, TaskKind, TimerRow, WriteBatch};
pub use sqlite::{SqliteOptions, SqliteStore};

use uhrwerk_core::state::RunState;
use uhrwerk_proto::temporal::api::history::v1 as history_pb;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt {what} in store: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("database schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Visibility columns a list or count query can filter on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    WorkflowId,
    RunId,
    WorkflowType,
    TaskQueue,
    /// `WorkflowExecutionStatus` as its integer value.
    ExecutionStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
}

/// A filter over runs, built by the frontend's query parser and translated by each store.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RunFilter {
    /// Every run.
    #[default]
    All,
    Compare(Column, CompareOp, Value),
    And(Box<RunFilter>, Box<RunFilter>),
    Or(Box<RunFilter>, Box<RunFilter>),
    Not(Box<RunFilter>),
}

/// Position after the last row of a page: (start_time, run_id) of that row.
#[derive(Clone, Debug, PartialEq)]
pub struct PageCursor {
    pub start_time_ms: i64,
    pub run_id: String,
}

/// Everything the server reloads at start-up.
#[derive(Debug, Default)]
pub struct Recovered {
    pub open_runs: Vec<RunState>,
    pub tasks: Vec<OutboxTask>,
    pub timers: Vec<TimerRow>,
}

/// The storage interface of the engine. Implementations must make a committed batch durable
/// before `commit` returns.
pub trait Store: Send + Sync + 'static {
    /// Commits a batch atomically; blocks until it is durable.
    fn commit(&self, batch: WriteBatch) -> Result<()>;
    /// Submits a batch and returns a receiver for the outcome (for async callers).
    fn submit(&self, batch: WriteBatch) -> tokio::sync::oneshot::Receiver<Result<()>>;
    fn namespaces(&self) -> Result<Vec<Vec<u8>>>;
    fn put_namespace(&self, name: &str, id: &str, data: Vec<u8>) -> Result<()>;
    fn recover(&self) -> Result<Recovered>;
    fn current_run_id(&self, namespace: &str, workflow_id: &str) -> Result<Option<String>>;
    fn run(&self, run_id: &str) -> Result<Option<RunState>>;
    /// Events with `event_id >= from`, at most `limit`, in order.
    fn events(&self, run_id: &str, from: i64, limit: usize) -> Result<Vec<history_pb::HistoryEvent>>;
    fn list_runs(&self, namespace: &str, filter: &RunFilter, after: Option<&PageCursor>, limit: usize) -> Result<Vec<RunState>>;
    fn count_runs(&self, namespace: &str, filter: &RunFilter) -> Result<i64>;
}
