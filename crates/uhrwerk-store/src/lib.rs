//! Durable storage: the [`Store`] trait the engine writes through, and its SQLite implementation.
//!
//! Writes arrive as [`WriteBatch`]es, one per run transition. The SQLite store commits many
//! batches in one transaction with one fsync (group commit) on a dedicated writer thread;
//! reads use a small pool of separate connections (WAL lets them run beside the writer).

mod batch;
mod sqlite;
mod visibility;

pub use batch::{OutboxTask, RunWrite, TaskKind, TimerRow, TransferKey, TransferRow, WriteBatch};
pub use sqlite::{SqliteOptions, SqliteStore};

use temporalio_protos::temporal::api::history::v1 as history_pb;
use uhrwerk_core::state::RunState;
use uhrwerk_visibility::{Expr, Literal, Query, ValueType};

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

/// Where the next page of a list starts.
#[derive(Clone, Debug, PartialEq)]
pub enum PageCursor {
    /// After the last row of the default order: its (close_order, start_time, run_id).
    After { close_order: i64, start_time_ms: i64, run_id: String },
    /// After this many rows, for queries with their own ORDER BY.
    Offset(u64),
}

/// One search attribute of a run as the store indexes it: its values (several for a
/// KeywordList), already typed by the namespace's registry.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrRow {
    pub name: String,
    pub ty: ValueType,
    pub values: Vec<Literal>,
}

/// A run selected for deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunKey {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
}

/// A stored schedule record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRow {
    pub namespace: String,
    pub schedule_id: String,
    pub data: Vec<u8>,
}

/// Everything the server reloads at start-up.
#[derive(Debug, Default)]
pub struct Recovered {
    /// How many runs are open. Their states stay in the store until something touches them.
    pub open_runs: usize,
    /// Transfer tasks not carried out yet.
    pub transfers: Vec<TransferRow>,
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
    /// A page of runs matching the query, in its order (Temporal's by default), with the
    /// cursor of the page's last row.
    fn list_runs(
        &self,
        namespace: &str,
        query: &Query,
        after: Option<&PageCursor>,
        limit: usize,
    ) -> Result<(Vec<RunState>, Option<PageCursor>)>;
    fn count_runs(&self, namespace: &str, filter: Option<&Expr>) -> Result<i64>;
    /// Counts per `WorkflowExecutionStatus` value, for `GROUP BY ExecutionStatus`.
    fn count_runs_by_status(&self, namespace: &str, filter: Option<&Expr>) -> Result<Vec<(i32, i64)>>;
    /// Closed runs of a namespace that closed before `closed_before_ms`, oldest first.
    fn expired_runs(&self, namespace: &str, closed_before_ms: i64, limit: usize) -> Result<Vec<RunKey>>;
    /// Custom search attributes of every namespace: (namespace, name, type).
    fn search_attributes(&self) -> Result<Vec<(String, String, ValueType)>>;
    fn put_search_attributes(&self, namespace: &str, attrs: &[(String, ValueType)]) -> Result<()>;
    fn remove_search_attributes(&self, namespace: &str, names: &[String]) -> Result<()>;
    fn schedules(&self) -> Result<Vec<ScheduleRow>>;
}
