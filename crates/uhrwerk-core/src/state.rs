//! A run's mutable state: everything the kernel needs besides the history itself.
//!
//! The structs derive `prost::Message` so that the store keeps them as compact binary blobs;
//! field tags are part of the on-disk format and must never be reused.

use std::collections::BTreeMap;

use crate::pb::history::v1 as history_pb;
use crate::pb::{common::v1 as common_pb, enums::v1 as enums_pb, failure::v1 as failure_pb};

/// Mutable state of one workflow run.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunState {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    #[prost(string, tag = "4")]
    pub first_execution_run_id: String,
    #[prost(string, tag = "5")]
    pub workflow_type: String,
    #[prost(string, tag = "6")]
    pub task_queue: String,
    /// `WorkflowExecutionStatus`.
    #[prost(int32, tag = "7")]
    pub status: i32,
    #[prost(int64, tag = "8")]
    pub start_time_ms: i64,
    #[prost(int64, tag = "9")]
    pub execution_time_ms: i64,
    #[prost(int64, tag = "10")]
    pub close_time_ms: i64,
    /// Id the next persisted event gets; event ids are contiguous from 1.
    #[prost(int64, tag = "11")]
    pub next_event_id: i64,
    /// Started event id of the last *completed* workflow task, or 0.
    #[prost(int64, tag = "12")]
    pub previous_started_event_id: i64,
    #[prost(message, optional, tag = "13")]
    pub workflow_task: Option<WorkflowTaskInfo>,
    #[prost(int64, tag = "14")]
    pub workflow_task_timeout_ms: i64,
    /// Events that arrived while a workflow task was started; flushed after its completion.
    #[prost(message, repeated, tag = "15")]
    pub buffered_events: Vec<history_pb::HistoryEvent>,
    /// Pending activities by scheduled event id.
    #[prost(btree_map = "int64, message", tag = "16")]
    pub activities: BTreeMap<i64, ActivityInfo>,
    #[prost(string, tag = "17")]
    pub start_request_id: String,
    /// Sum of the encoded sizes of all persisted events.
    #[prost(int64, tag = "18")]
    pub history_size_bytes: i64,
    #[prost(int64, tag = "19")]
    pub state_transition_count: i64,
    #[prost(int64, tag = "20")]
    pub run_timeout_ms: i64,
    #[prost(int64, tag = "21")]
    pub execution_timeout_ms: i64,
    #[prost(message, optional, tag = "22")]
    pub memo: Option<common_pb::Memo>,
    #[prost(message, optional, tag = "23")]
    pub search_attributes: Option<common_pb::SearchAttributes>,
    /// Attempt of the next workflow task: 1 after a completion, +1 after a failure or timeout.
    #[prost(int32, tag = "24")]
    pub next_workflow_task_attempt: i32,
    /// Id of the event that closed the run, or 0 while it is open.
    #[prost(int64, tag = "25")]
    pub close_event_id: i64,
    #[prost(message, optional, tag = "26")]
    pub retry_policy: Option<common_pb::RetryPolicy>,
    #[prost(int32, tag = "27")]
    pub attempt: i32,
    /// Number of ScheduleActivityTask commands seen, to detect duplicate activity ids cheaply.
    #[prost(int64, tag = "28")]
    pub activity_count: i64,
    /// Pending user timers by timer id.
    #[prost(btree_map = "string, message", tag = "29")]
    pub timers: BTreeMap<String, UserTimerInfo>,
    /// Request ids of signals already applied, for deduplication of retried calls.
    #[prost(string, repeated, tag = "30")]
    pub signal_request_ids: Vec<String>,
    #[prost(int64, tag = "31")]
    pub signal_count: i64,
    /// Set once a cancellation of the run was requested (WorkflowExecutionCancelRequested).
    #[prost(bool, tag = "32")]
    pub cancel_requested: bool,
    /// Absolute deadline of the whole chain of runs (execution timeout), or 0.
    #[prost(int64, tag = "33")]
    pub execution_expiration_ms: i64,
    #[prost(string, tag = "34")]
    pub cron_schedule: String,
    /// Search attributes and memo as set at start, to be carried to successors.
    #[prost(message, optional, tag = "35")]
    pub header: Option<common_pb::Header>,
    #[prost(message, optional, tag = "36")]
    pub priority: Option<common_pb::Priority>,
    /// The run's input, carried to a retry of the run.
    #[prost(message, optional, tag = "37")]
    pub input: Option<common_pb::Payloads>,
    /// Updates by update id: in flight, and finished ones (for deduplication).
    #[prost(btree_map = "string, message", tag = "38")]
    pub updates: BTreeMap<String, UpdateInfo>,
    /// Set on child runs: the parent to tell when the chain closes.
    #[prost(message, optional, tag = "39")]
    pub parent: Option<ParentInfo>,
    /// Pending child workflows by initiated event id.
    #[prost(btree_map = "int64, message", tag = "40")]
    pub children: BTreeMap<i64, ChildInfo>,
    /// The first workflow of this run's parent chain (the run itself when it has no parent).
    #[prost(message, optional, tag = "41")]
    pub root: Option<common_pb::WorkflowExecution>,
    /// Warn-level limits this run has crossed (`kernel::limits::WARN_*` bits).
    #[prost(uint32, tag = "42")]
    pub warned_limits: u32,
    /// Workflow tasks started while continue-as-new was suggested.
    #[prost(int64, tag = "43")]
    pub continue_as_new_suggestions: i64,
    /// Signals to other workflows initiated and not yet delivered or failed.
    #[prost(int64, tag = "44")]
    pub pending_external_signals: i64,
    /// Cancel requests to other workflows initiated and not yet delivered or failed.
    #[prost(int64, tag = "45")]
    pub pending_external_cancels: i64,
    /// Initiated event ids of signals and cancel requests to other workflows whose outcome is
    /// not recorded yet: each gets exactly one outcome event, even when its transfer task is
    /// carried out twice.
    #[prost(int64, repeated, tag = "46")]
    pub pending_externals: Vec<i64>,
    // Tag 47 (children open at close, for start-up repair) is retired: transfer tasks carry them.
    /// The sticky queue of the worker that completed the last workflow task (its
    /// `sticky_attributes`), where the next task goes while that worker polls; empty when none.
    #[prost(string, tag = "48")]
    pub sticky_task_queue: String,
    /// How long a task waits on the sticky queue before it times out and goes to the normal
    /// queue (ms).
    #[prost(int64, tag = "49")]
    pub sticky_schedule_to_start_ms: i64,
    /// The summary and details the starter gave (`user_metadata`), for DescribeWorkflowExecution.
    #[prost(message, optional, tag = "50")]
    pub user_metadata: Option<crate::pb::sdk::v1::UserMetadata>,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct ParentInfo {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
    #[prost(int64, tag = "4")]
    pub initiated_event_id: i64,
    /// The parent's root workflow, which becomes the child's root.
    #[prost(message, optional, tag = "5")]
    pub root: Option<common_pb::WorkflowExecution>,
}

/// A child workflow the run started and that has not closed yet.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChildInfo {
    #[prost(int64, tag = "1")]
    pub initiated_event_id: i64,
    #[prost(string, tag = "2")]
    pub namespace: String,
    #[prost(string, tag = "3")]
    pub workflow_id: String,
    #[prost(string, tag = "4")]
    pub workflow_type: String,
    /// Run id once started.
    #[prost(string, tag = "5")]
    pub run_id: String,
    /// ChildWorkflowExecutionStarted id; 0 before, -1 while that event sits in the buffer.
    #[prost(int64, tag = "6")]
    pub started_event_id: i64,
    /// `ParentClosePolicy`.
    #[prost(int32, tag = "7")]
    pub parent_close_policy: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum UpdateState {
    Unspecified = 0,
    /// Accepted by the server, waiting for a workflow task to carry it.
    Admitted = 1,
    /// Sent to the worker inside a workflow task.
    Requested = 2,
    /// The workflow accepted it (WorkflowExecutionUpdateAccepted written).
    Accepted = 3,
    /// Finished: completed (WorkflowExecutionUpdateCompleted) or rejected (no event).
    Completed = 4,
}

/// One workflow update.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateInfo {
    #[prost(string, tag = "1")]
    pub update_id: String,
    #[prost(enumeration = "UpdateState", tag = "2")]
    pub state: i32,
    #[prost(message, optional, tag = "3")]
    pub request: Option<crate::pb::update::v1::Request>,
    #[prost(int64, tag = "4")]
    pub accepted_event_id: i64,
    #[prost(message, optional, tag = "5")]
    pub outcome: Option<crate::pb::update::v1::Outcome>,
}

/// A pending user timer (`workflow.sleep`, `wait_condition` timeouts).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserTimerInfo {
    #[prost(string, tag = "1")]
    pub timer_id: String,
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(int64, tag = "3")]
    pub fire_at_ms: i64,
}

impl RunState {
    pub fn is_open(&self) -> bool {
        self.status == enums_pb::WorkflowExecutionStatus::Running as i32
    }

    /// Work of this run that waits for or is in the hands of a worker: its workflow task
    /// (scheduled or started) and its activity attempts (queued or running, not those waiting
    /// out a retry backoff or paused). Time skipping waits while any run has some.
    pub fn outstanding_work(&self) -> i64 {
        if !self.is_open() {
            return 0;
        }
        let activities = self
            .activities
            .values()
            .filter(|a| {
                a.state == ActivityState::Started as i32 || (a.state == ActivityState::Scheduled as i32 && !a.paused)
            })
            .count();
        i64::from(self.workflow_task.is_some()) + activities as i64
    }

    /// The started workflow task, if one is in flight.
    pub fn started_workflow_task(&self) -> Option<&WorkflowTaskInfo> {
        self.workflow_task.as_ref().filter(|wt| wt.started_event_id > 0)
    }
}

/// The run's single workflow task, scheduled (started id 0) or started.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkflowTaskInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    #[prost(int64, tag = "2")]
    pub started_event_id: i64,
    #[prost(int32, tag = "3")]
    pub attempt: i32,
    #[prost(int64, tag = "4")]
    pub scheduled_time_ms: i64,
    #[prost(int64, tag = "5")]
    pub started_time_ms: i64,
    #[prost(string, tag = "6")]
    pub task_queue: String,
    #[prost(string, tag = "7")]
    pub request_id: String,
    #[prost(string, tag = "8")]
    pub identity: String,
    /// Start-to-close timeout of this attempt (ms); 0 in states written before it was kept,
    /// which then use the run's.
    #[prost(int64, tag = "9")]
    pub start_to_close_ms: i64,
    /// The task was scheduled on the run's sticky queue (`task_queue` names it).
    #[prost(bool, tag = "10")]
    pub sticky: bool,
    /// A started transient attempt's WorkflowTaskScheduled and WorkflowTaskStarted events, which
    /// are not in the history: they are written only if this attempt completes.
    #[prost(message, repeated, tag = "11")]
    pub transient_events: Vec<history_pb::HistoryEvent>,
}

impl WorkflowTaskInfo {
    /// As in Temporal, attempts after the first are transient: their events stay out of the
    /// history until one of them completes.
    pub fn is_transient(&self) -> bool {
        self.attempt > 1
    }
}

/// Lifecycle of a pending activity's current attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum ActivityState {
    Unspecified = 0,
    /// Waiting in the task queue.
    Scheduled = 1,
    /// Taken by a worker.
    Started = 2,
    /// Waiting out a retry backoff before the next attempt is queued.
    Backoff = 3,
}

/// A pending activity.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityInfo {
    #[prost(int64, tag = "1")]
    pub scheduled_event_id: i64,
    #[prost(string, tag = "2")]
    pub activity_id: String,
    #[prost(string, tag = "3")]
    pub activity_type: String,
    #[prost(string, tag = "4")]
    pub task_queue: String,
    #[prost(message, optional, tag = "5")]
    pub header: Option<common_pb::Header>,
    #[prost(message, optional, tag = "6")]
    pub input: Option<common_pb::Payloads>,
    #[prost(int64, tag = "7")]
    pub schedule_to_close_ms: i64,
    #[prost(int64, tag = "8")]
    pub schedule_to_start_ms: i64,
    #[prost(int64, tag = "9")]
    pub start_to_close_ms: i64,
    #[prost(int64, tag = "10")]
    pub heartbeat_ms: i64,
    #[prost(message, optional, tag = "11")]
    pub retry_policy: Option<common_pb::RetryPolicy>,
    #[prost(int32, tag = "12")]
    pub attempt: i32,
    #[prost(enumeration = "ActivityState", tag = "13")]
    pub state: i32,
    #[prost(int64, tag = "14")]
    pub scheduled_time_ms: i64,
    #[prost(int64, tag = "15")]
    pub attempt_scheduled_time_ms: i64,
    #[prost(int64, tag = "16")]
    pub started_time_ms: i64,
    #[prost(string, tag = "17")]
    pub started_identity: String,
    #[prost(string, tag = "18")]
    pub request_id: String,
    #[prost(message, optional, tag = "19")]
    pub last_failure: Option<failure_pb::Failure>,
    #[prost(message, optional, tag = "20")]
    pub heartbeat_details: Option<common_pb::Payloads>,
    #[prost(int64, tag = "21")]
    pub last_heartbeat_ms: i64,
    #[prost(bool, tag = "22")]
    pub cancel_requested: bool,
    #[prost(message, optional, tag = "23")]
    pub priority: Option<common_pb::Priority>,
    #[prost(string, tag = "24")]
    pub last_worker_identity: String,
    /// Id of the ActivityTaskCancelRequested event, once the workflow asked to cancel.
    #[prost(int64, tag = "25")]
    pub cancel_requested_event_id: i64,
    /// Paused by an operator (PauseActivity): no new attempt is queued until it is unpaused; a
    /// running attempt learns it from its heartbeats.
    #[prost(bool, tag = "26")]
    pub paused: bool,
    #[prost(message, optional, tag = "27")]
    pub pause_info: Option<ActivityPauseInfo>,
    /// Reset by an operator (ResetActivity) while an attempt ran: that attempt's heartbeats say
    /// so, until the next attempt.
    #[prost(bool, tag = "28")]
    pub activity_reset: bool,
    /// The reset asked to drop the heartbeat details when the next attempt begins.
    #[prost(bool, tag = "29")]
    pub reset_heartbeats: bool,
    /// The options the workflow scheduled the activity with, kept once an operator changes them
    /// (UpdateActivityOptions), for `restore_original`.
    #[prost(message, optional, tag = "30")]
    pub original_options: Option<crate::pb::activity::v1::ActivityOptions>,
}

/// Who paused an activity, when and why.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActivityPauseInfo {
    #[prost(int64, tag = "1")]
    pub pause_time_ms: i64,
    #[prost(string, tag = "2")]
    pub identity: String,
    #[prost(string, tag = "3")]
    pub reason: String,
    /// The pause request's id: the same request again is not an error.
    #[prost(string, tag = "4")]
    pub request_id: String,
}
