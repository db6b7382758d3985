//! Carrying out transfer tasks: work on another run that a committed transition asked for
//! (start a child, tell a parent, apply parent close policies, signal or cancel another
//! workflow). Rows are written with the transition; after its commit the task is handed to the
//! processor here, which carries it out and deletes the row. At start-up, recovery hands over
//! every row left behind, for open and closed runs alike.
//!
//! Every kind is idempotent, because a crash between doing the work and deleting the row makes
//! it run again: child starts dedupe by request id and by the parent's initiation, signals by
//! request id, cancellation requests and terminations change nothing the second time, and each
//! outcome is recorded in the asking run only while that run still waits for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use uhrwerk_core::kernel;
use uhrwerk_core::transfer::TransferKind;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::history::v1 as history_pb;
use uhrwerk_storage::{TransferRow, WriteBatch};

use uhrwerk_proto::cluster::{CarryOutRequest, CarryOutResponse};

use super::Engine;
use crate::clock::Hold;
use crate::cluster::Owner;
use crate::error::{Error, Result};

use history_pb::history_event::Attributes;

/// First pause before a transfer task that failed (the store was unavailable) is tried again;
/// it doubles up to `MAX_RETRY_DELAY`.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Hands transfer tasks to the processor; cheap to clone.
#[derive(Clone)]
pub struct TransferQueue {
    tx: mpsc::UnboundedSender<(TransferRow, Hold)>,
}

/// The processor's end of the queue: each task with the hold on the clock it keeps until done.
pub(super) type TransferReceiver = mpsc::UnboundedReceiver<(TransferRow, Hold)>;

impl TransferQueue {
    pub(super) fn new() -> (Self, TransferReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, rx)
    }

    /// Queues a committed task. Lost only with the process, and then its row brings it back.
    /// A time-skipping clock stays where it is until the task is carried out (`hold`).
    pub(super) fn push(&self, row: TransferRow, hold: Hold) {
        let _ = self.tx.send((row, hold));
    }
}

impl Engine {
    /// Carries out transfer tasks until `shutdown` turns true: each in its own task, so that a
    /// slow one (a child start waiting for its workflow id's lock) holds up no other.
    pub async fn run_transfers(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(mut rx) = self.transfer_rx.lock().expect("transfer receiver lock").take() else {
            tracing::error!("the transfer processor was started twice");
            return;
        };
        loop {
            tokio::select! {
                row = rx.recv() => match row {
                    Some((row, hold)) => {
                        let engine = self.clone();
                        tokio::spawn(async move {
                            engine.process_transfer(row).await;
                            drop(hold);
                        });
                    }
                    None => return,
                },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Carries out one task, retrying while the store is unavailable, then deletes its row.
    async fn process_transfer(self: Arc<Self>, row: TransferRow) {
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            match self.carry_out(&row).await {
                Ok(()) | Err(Error::NotFound(_)) => break,
                // A cluster node that lost the shard: the new owner carries the task out.
                Err(_) if !self.serves(&row.namespace, &row.workflow_id) => return,
                Err(e) => {
                    tracing::warn!(
                        workflow_id = %row.workflow_id,
                        run_id = %row.run_id,
                        kind = ?row.task.transfer_kind(),
                        "failed to carry out a transfer task, retrying in {delay:?}: {e}"
                    );
                    crate::clock::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
        let done = WriteBatch {
            fence: self.fence(&row.namespace, &row.workflow_id),
            remove_transfers: vec![row.key()],
            ..Default::default()
        };
        match self.executions().commit(done).await {
            // Stopped: the server is shutting down.
            Ok(()) | Err(uhrwerk_storage::Error::Stopped | uhrwerk_storage::Error::Fenced(_)) => {}
            // The row stays and the task runs once more after a restart, which is harmless.
            Err(e) => tracing::warn!("failed to delete a carried out transfer task: {e}"),
        }
    }

    async fn carry_out(self: &Arc<Self>, row: &TransferRow) -> Result<()> {
        match row.task.transfer_kind() {
            TransferKind::StartChild => self.start_child(row).await,
            TransferKind::NotifyParent => self.notify_parent(row).await,
            TransferKind::ParentClosePolicy => self.apply_parent_close_policy(row).await,
            TransferKind::SignalExternal | TransferKind::CancelExternal => self.deliver_external(row).await,
            TransferKind::Unspecified => {
                tracing::warn!(run_id = %row.run_id, kind = row.task.kind, "dropping a transfer task of an unknown kind");
                Ok(())
            }
        }
    }

    /// The one event a task refers to. Missing when the run was deleted (retention, or
    /// DeleteWorkflowExecution) before its task was carried out: then there is nothing left to
    /// do, and the task is dropped like one whose run is gone.
    async fn transfer_event(&self, row: &TransferRow) -> Result<history_pb::HistoryEvent> {
        let event_id = row.task.event_id;
        let events = self.executions().events(&row.run_id, event_id, 1).await?;
        events.into_iter().next().filter(|e| e.event_id == event_id).ok_or_else(|| {
            Error::NotFound(format!("event {event_id} of run {} named by a transfer task is gone", row.run_id))
        })
    }

    /// Starts the child initiated by the task's event (on the node serving the child's
    /// workflow id) and records in the parent whether it started. As in Temporal, a parent that
    /// closed before its child started starts nothing.
    async fn start_child(self: &Arc<Self>, row: &TransferRow) -> Result<()> {
        let initiated_event_id = row.task.event_id;
        let parent_run = self.run_state(&row.namespace, &row.workflow_id, &row.run_id).await?;
        let waiting = parent_run.children.get(&initiated_event_id).is_some_and(|c| c.started_event_id == 0);
        if !parent_run.is_open() || !waiting {
            return Ok(());
        }
        let (request, _) = self.child_request(row).await?;
        let outcome = self.on_owner(&request.namespace, &request.workflow_id, row, 0).await?;
        if outcome.already_started {
            self.mutate(&row.namespace, &row.workflow_id, &row.run_id, move |ctx, st| {
                kernel::child_start_failed(ctx, st, initiated_event_id)
            })
            .await
        } else {
            // The parent names the first run of the child's chain.
            let child_run_id = outcome.child_run_id;
            self.mutate(&row.namespace, &row.workflow_id, &row.run_id, move |ctx, st| {
                kernel::child_started(ctx, st, initiated_event_id, &child_run_id)
            })
            .await
        }
    }

    /// The start request of the child a task initiates, and its parent.
    async fn child_request(
        &self,
        row: &TransferRow,
    ) -> Result<(
        uhrwerk_proto::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest,
        uhrwerk_core::state::ParentInfo,
    )> {
        let initiated_event_id = row.task.event_id;
        let parent_run = self.run_state(&row.namespace, &row.workflow_id, &row.run_id).await?;
        let event = self.transfer_event(row).await?;
        let Some(Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a)) = event.attributes else {
            return Err(Error::Internal(format!(
                "event {initiated_event_id} of run {} is not a child initiation",
                row.run_id
            )));
        };
        let mut request = kernel::child_start_request(&row.run_id, initiated_event_id, &a);
        // The command's summary and details (on its Initiated event) are the child's, as Temporal.
        request.user_metadata = event.user_metadata;
        Ok((request, kernel::parent_of_child(&parent_run, initiated_event_id)))
    }

    /// The part of a transfer task that changes the other run (`child`: which child of a parent
    /// close policy), here or on the node that serves `namespace`/`workflow_id`.
    async fn on_owner(
        self: &Arc<Self>,
        namespace: &str,
        workflow_id: &str,
        row: &TransferRow,
        child: usize,
    ) -> Result<CarryOutResponse> {
        match self.run_owner(namespace, workflow_id) {
            Owner::Local => self.carry_out_here(row, child).await,
            Owner::Node(node) => {
                let cluster = self.cluster().expect("a remote owner means a cluster");
                cluster.metrics.internal_calls.with_label_values(&["CarryOut"]).inc();
                let request = CarryOutRequest {
                    namespace: row.namespace.clone(),
                    workflow_id: row.workflow_id.clone(),
                    run_id: row.run_id.clone(),
                    task: prost::Message::encode_to_vec(&row.task),
                    child: child as u32,
                };
                cluster.peers.carry_out(&node, request).await
            }
        }
    }

    /// The part of a transfer task that changes the other run, on the node that serves it
    /// (the internal service's CarryOut lands here). The asking run is read from the store.
    pub async fn carry_out_here(self: &Arc<Self>, row: &TransferRow, child: usize) -> Result<CarryOutResponse> {
        let mut out = CarryOutResponse::default();
        match row.task.transfer_kind() {
            TransferKind::StartChild => {
                let (request, parent) = self.child_request(row).await?;
                match self.start_child_run(request, parent).await {
                    Ok(outcome) => out.child_run_id = outcome.first_execution_run_id,
                    Err(Error::AlreadyStarted { .. }) => out.already_started = true,
                    Err(e) => return Err(e),
                }
            }
            TransferKind::NotifyParent => self.notify_parent_here(row).await?,
            TransferKind::ParentClosePolicy => self.apply_parent_close_policy_here(row, child).await?,
            TransferKind::SignalExternal | TransferKind::CancelExternal => {
                out.delivered = self.deliver_here(row).await?
            }
            TransferKind::Unspecified => {}
        }
        Ok(out)
    }

    /// Records a child chain's outcome in its parent, on the node serving the parent.
    async fn notify_parent(self: &Arc<Self>, row: &TransferRow) -> Result<()> {
        let child = self.run_state(&row.namespace, &row.workflow_id, &row.run_id).await?;
        let Some(parent) = child.parent.clone() else { return Ok(()) };
        self.on_owner(&parent.namespace, &parent.workflow_id, row, 0).await.map(drop)
    }

    async fn notify_parent_here(self: &Arc<Self>, row: &TransferRow) -> Result<()> {
        let child = self.run_state(&row.namespace, &row.workflow_id, &row.run_id).await?;
        let Some(parent) = child.parent.clone() else { return Ok(()) };
        let Some(outcome) = kernel::child_outcome_of(&self.transfer_event(row).await?) else { return Ok(()) };
        let (initiated_event_id, run_id) = (parent.initiated_event_id, row.run_id.clone());
        self.mutate(&parent.namespace, &parent.workflow_id, &parent.run_id, move |ctx, st| {
            kernel::child_closed(ctx, st, initiated_event_id, &run_id, outcome)
        })
        .await
    }

    /// Terminates or asks to cancel the children that were open when their parent closed, each
    /// on the node serving it.
    async fn apply_parent_close_policy(self: &Arc<Self>, row: &TransferRow) -> Result<()> {
        for (i, child) in row.task.children.iter().enumerate() {
            self.on_owner(&child.namespace, &child.workflow_id, row, i).await?;
        }
        Ok(())
    }

    async fn apply_parent_close_policy_here(self: &Arc<Self>, row: &TransferRow, index: usize) -> Result<()> {
        use enums_pb::ParentClosePolicy as Policy;
        let parent = common_pb::WorkflowExecution { workflow_id: row.workflow_id.clone(), run_id: row.run_id.clone() };
        if let Some(child) = row.task.children.get(index) {
            let policy = Policy::try_from(child.parent_close_policy).unwrap_or(Policy::Unspecified);
            let applied = match policy {
                Policy::Abandon => return Ok(()),
                Policy::RequestCancel => {
                    // As in Temporal: the request names the parent, with no cause.
                    let parent = parent.clone();
                    self.mutate(&child.namespace, &child.workflow_id, &child.run_id, move |ctx, st| {
                        kernel::request_cancel_run_from(ctx, st, "", "", "", Some((parent, 0)))
                    })
                    .await
                }
                Policy::Terminate | Policy::Unspecified => {
                    self.mutate(&child.namespace, &child.workflow_id, &child.run_id, |ctx, st| {
                        kernel::terminate_run(ctx, st, "by parent close policy", None, "")
                    })
                    .await
                }
            };
            match applied {
                // The child closed on its own meanwhile.
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Delivers a signal or cancellation request to another workflow (on the node serving it)
    /// and records the outcome in the asking run. As in Temporal, nothing is delivered once the
    /// asking run has closed.
    async fn deliver_external(self: &Arc<Self>, row: &TransferRow) -> Result<()> {
        let source = self.run_state(&row.namespace, &row.workflow_id, &row.run_id).await?;
        if !kernel::external_pending(&source, row.task.event_id) {
            return Ok(());
        }
        let delivery = self.delivery(row).await?;
        let done = self.on_owner(&delivery.namespace, &delivery.target.workflow_id, row, 0).await?.delivered;
        self.mutate(&row.namespace, &row.workflow_id, &row.run_id, move |ctx, st| {
            kernel::external_outcome(ctx, st, delivery, done)
        })
        .await
    }

    async fn delivery(&self, row: &TransferRow) -> Result<kernel::ExternalDelivery> {
        let source = self.run_state(&row.namespace, &row.workflow_id, &row.run_id).await?;
        let event = self.transfer_event(row).await?;
        kernel::external_delivery(&source, &event).ok_or_else(|| {
            Error::Internal(format!("event {} of run {} is not an external request", event.event_id, row.run_id))
        })
    }

    /// Delivers the request to its target; false when the target is gone.
    async fn deliver_here(self: &Arc<Self>, row: &TransferRow) -> Result<bool> {
        let delivery = self.delivery(row).await?;
        let target = delivery.target.clone();
        let delivered = match delivery.request.clone() {
            kernel::ExternalRequest::Signal(signal) => {
                self.mutate(&delivery.namespace, &target.workflow_id, &target.run_id, move |ctx, st| {
                    kernel::signal_run(ctx, st, signal)
                })
                .await
            }
            kernel::ExternalRequest::Cancel { reason } => {
                let request_id = format!("{}-cancel-{}", row.run_id, delivery.initiated_event_id);
                let sender =
                    common_pb::WorkflowExecution { workflow_id: row.workflow_id.clone(), run_id: row.run_id.clone() };
                let initiated = delivery.initiated_event_id;
                self.mutate(&delivery.namespace, &target.workflow_id, &target.run_id, move |ctx, st| {
                    kernel::request_cancel_run_from(ctx, st, &reason, "", &request_id, Some((sender, initiated)))
                })
                .await
            }
        };
        match delivered {
            Ok(()) => Ok(true),
            Err(Error::NotFound(_) | Error::NamespaceNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
