//! The write unit of the execution store: one run transition's state, events, outbox tasks,
//! timers, search attributes and transfer tasks, and the rows they name.

use temporalio_protos::temporal::api::history::v1 as history_pb;
use uhrwerk_core::kernel::TimerTask;
use uhrwerk_core::state::RunState;
use uhrwerk_core::transfer::TransferTask;
use uhrwerk_visibility::{Literal, ValueType};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskKind {
    Workflow = 1,
    Activity = 2,
}

impl TaskKind {
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            1 => Some(Self::Workflow),
            2 => Some(Self::Activity),
            _ => None,
        }
    }
}

/// A task waiting in the outbox for a poller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OutboxTask {
    pub kind: TaskKind,
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    pub task_queue: String,
    pub scheduled_event_id: i64,
    pub attempt: i32,
}

/// A durable timer of a run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerRow {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    pub timer: TimerTask,
}

impl TimerRow {
    /// Where a page of [`crate::ExecutionStore::timers`] that ends with this row ends.
    pub fn cursor(&self) -> TimerCursor {
        TimerCursor {
            run_id: self.run_id.clone(),
            kind: self.timer.kind,
            id: self.timer.id,
            attempt: self.timer.attempt,
        }
    }
}

/// A timer's key, `(run id, kind, id, attempt)`: the order in which timers are read page by page.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerCursor {
    pub run_id: String,
    pub kind: i32,
    pub id: i64,
    pub attempt: i32,
}

/// A transfer task of a run: work on another run that the run's transition asked for, kept
/// until it is carried out.
#[derive(Clone, Debug, PartialEq)]
pub struct TransferRow {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    pub task: TransferTask,
}

impl TransferRow {
    pub fn key(&self) -> TransferKey {
        TransferKey { run_id: self.run_id.clone(), kind: self.task.kind, event_id: self.task.event_id }
    }
}

/// Names a transfer task: a run's task is unique by its kind and event id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransferKey {
    pub run_id: String,
    pub kind: i32,
    pub event_id: i64,
}

/// Names a run: one to delete, or one past its namespace's retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunKey {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
}

/// One search attribute of a run as the store indexes it: its values (several for a
/// KeywordList), already typed by the namespace's registry.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrRow {
    pub name: String,
    pub ty: ValueType,
    pub values: Vec<Literal>,
}

/// A shard and the epoch of its lease that a write was made under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    pub shard: i32,
    pub epoch: i64,
}

/// The writes of one run transition.
#[derive(Clone, Debug, Default)]
pub struct RunWrite {
    pub state: RunState,
    /// Point the workflow id's current run at this run.
    pub set_current: bool,
    pub events: Vec<history_pb::HistoryEvent>,
    pub add_tasks: Vec<OutboxTask>,
    /// Scheduled event ids of tasks taken by pollers.
    pub remove_tasks: Vec<i64>,
    pub add_timers: Vec<TimerTask>,
    pub remove_timers: Vec<TimerTask>,
    /// The run's indexed search attributes; when set, they replace the stored ones.
    pub attrs: Option<Vec<AttrRow>>,
    /// Transfer tasks the transition asks for; written with it, deleted when carried out.
    pub add_transfers: Vec<TransferTask>,
}

/// One or more run transitions committed together, atomically.
///
/// A run write replaces the run's state; a run that is no longer open loses its outbox tasks
/// and timers (not its transfer tasks, which outlive it until they are carried out).
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    /// In a cluster: the shard every run of the batch belongs to and the epoch of the lease
    /// its node held when it read them. The store commits the batch only while the shard is
    /// still at that epoch (a single server has no shards and no fence).
    pub fence: Option<Fence>,
    pub runs: Vec<RunWrite>,
    /// Runs deleted with everything they own (events, tasks, timers, attributes, and the
    /// current-run pointer when it names them).
    pub deletes: Vec<RunKey>,
    /// Transfer tasks carried out.
    pub remove_transfers: Vec<TransferKey>,
}
