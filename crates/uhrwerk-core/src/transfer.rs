//! Transfer tasks: work on *another* run that a transition asks for (start a child, tell a
//! parent that its child closed, apply parent close policies, signal or cancel another
//! workflow). The engine writes each one as a row in the same batch as the transition that asks
//! for it and deletes the row once it is carried out, so a crash at any point leaves the row
//! behind and the work is done after the restart (Temporal's transfer tasks).
//!
//! A task names its work by event ids only; whoever carries it out reads the rest from the run's
//! state and history, as Temporal's transfer queue does. Every kind is idempotent: carrying a
//! task out twice (after a crash between doing it and deleting its row) changes nothing more.

use crate::state::ChildInfo;

/// What a transfer task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum TransferKind {
    Unspecified = 0,
    /// Start the child initiated by `event_id` and record ChildWorkflowExecutionStarted (or
    /// StartChildWorkflowExecutionFailed) in the parent.
    StartChild = 1,
    /// The run closed with event `event_id` at the end of its chain: record the outcome in the
    /// parent.
    NotifyParent = 2,
    /// The run closed with event `event_id`: apply the parent close policy of `children`.
    ParentClosePolicy = 3,
    /// Deliver the signal initiated by `event_id` and record its outcome in the run.
    SignalExternal = 4,
    /// Deliver the cancellation request initiated by `event_id` and record its outcome.
    CancelExternal = 5,
}

/// One transfer task of a run; stored as a protobuf blob next to its key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TransferTask {
    #[prost(enumeration = "TransferKind", tag = "1")]
    pub kind: i32,
    /// The event the work belongs to; with the kind it is unique within the run.
    #[prost(int64, tag = "2")]
    pub event_id: i64,
    /// ParentClosePolicy: the children that were still open when the parent closed (those with
    /// a policy other than ABANDON).
    #[prost(message, repeated, tag = "3")]
    pub children: Vec<ChildInfo>,
}

impl TransferTask {
    pub fn new(kind: TransferKind, event_id: i64) -> Self {
        Self { kind: kind as i32, event_id, children: Vec::new() }
    }

    pub fn transfer_kind(&self) -> TransferKind {
        TransferKind::try_from(self.kind).unwrap_or(TransferKind::Unspecified)
    }
}
