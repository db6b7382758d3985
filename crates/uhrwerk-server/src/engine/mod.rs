//! The engine: owns every run's mutable state. Each transition runs the pure kernel under the
//! run's lock (one writer per workflow id), commits the result through the store's group commit,
//! and only then applies its effects (matching, timers, long-poll wake-ups).
//!
//! Invariant: a transition's in-memory state changes only after its batch is durable, and the
//! transition runs in its own task, so a client that disconnects cannot tear it in half.

pub mod api;
mod delete;
mod start;
mod transfer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use uhrwerk_core::config::Limits;
use uhrwerk_core::kernel::{self, Ctx, Effect};
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{
    ExecutionStore, MetadataStore, OutboxTask, RunWrite, TaskKind, TimerRow, TransferRow, VisibilityStore, WriteBatch,
};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::matching::Matching;
use crate::metrics::Metrics;
use crate::queries::Queries;
use crate::search_attributes::SearchAttributes;
use crate::timers::Timers;

pub use start::{EagerTask, StartOutcome};
pub use transfer::TransferQueue;

/// One run's transition waiting to be committed.
struct Pending {
    state: RunState,
    events: Vec<uhrwerk_proto::temporal::api::history::v1::HistoryEvent>,
    effects: Vec<Effect>,
    set_current: bool,
}

impl Pending {
    fn from_ctx(state: RunState, ctx: &mut Ctx<'_>, set_current: bool) -> Self {
        Self { state, events: std::mem::take(&mut ctx.events), effects: std::mem::take(&mut ctx.effects), set_current }
    }
}

type SlotKey = (String, String);

/// The state slot of one workflow id: its latest run, loaded lazily.
#[derive(Default)]
struct SlotState {
    loaded: bool,
    /// Set when the slot left the map; a waiter that still holds it must look again.
    evicted: bool,
    run: Option<RunState>,
}

type Slot = tokio::sync::Mutex<SlotState>;

/// The storage the engine works through, one trait object per concern (one backend may be all
/// three).
#[derive(Clone)]
pub struct Stores {
    pub executions: Arc<dyn ExecutionStore>,
    pub visibility: Arc<dyn VisibilityStore>,
    pub metadata: Arc<dyn MetadataStore>,
}

pub struct Engine {
    stores: Stores,
    clock: Arc<dyn Clock>,
    limits: Limits,
    matching: Matching,
    timers: Timers,
    queries: Queries,
    search_attributes: SearchAttributes,
    metrics: Arc<Metrics>,
    slots: Mutex<HashMap<SlotKey, Arc<Slot>>>,
    /// Committed transfer tasks on their way to the processor (`run_transfers`).
    transfers: TransferQueue,
    transfer_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<TransferRow>>>,
    /// Called with every run that closed, after its commit (schedules watch their runs).
    close_hook: std::sync::OnceLock<Box<dyn Fn(&RunState) + Send + Sync>>,
    /// Long-poll watchers of run histories: run id -> next event id.
    history_watch: Mutex<HashMap<String, watch::Sender<i64>>>,
    /// Turns true at server shutdown: long polls answer at once.
    shutdown: watch::Receiver<bool>,
}

impl Engine {
    pub fn new(
        stores: Stores,
        clock: Arc<dyn Clock>,
        limits: Limits,
        matching: Matching,
        timers: Timers,
        search_attributes: SearchAttributes,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let (transfers, transfer_rx) = TransferQueue::new();
        Arc::new(Self {
            stores,
            clock,
            limits,
            matching,
            timers,
            queries: Queries::default(),
            search_attributes,
            metrics,
            close_hook: std::sync::OnceLock::new(),
            slots: Mutex::default(),
            transfers,
            transfer_rx: Mutex::new(Some(transfer_rx)),
            history_watch: Mutex::default(),
            shutdown,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn executions(&self) -> &dyn ExecutionStore {
        self.stores.executions.as_ref()
    }

    pub fn visibility(&self) -> &dyn VisibilityStore {
        self.stores.visibility.as_ref()
    }

    pub fn metadata(&self) -> &dyn MetadataStore {
        self.stores.metadata.as_ref()
    }

    /// Reloads queued tasks, armed timers and transfer tasks not carried out yet, after a start
    /// or a crash. Runs stay in the store until something touches them. Returns (open runs,
    /// queued tasks, armed timers).
    pub async fn recover(self: &Arc<Self>) -> Result<(usize, usize, usize)> {
        let recovered = self.executions().recover().await?;
        let counts = (recovered.open_runs, recovered.tasks.len(), recovered.timers.len());
        for task in recovered.tasks {
            self.matching.offer(task);
        }
        for timer in recovered.timers {
            self.timers.arm(timer);
        }
        for row in recovered.transfers {
            self.transfers.push(row);
        }
        Ok(counts)
    }

    fn slot(&self, namespace: &str, workflow_id: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().expect("slots lock");
        slots.entry((namespace.to_string(), workflow_id.to_string())).or_default().clone()
    }

    /// Locks the slot of a workflow id and loads its latest run from the store if needed.
    async fn lock_slot(
        &self,
        namespace: &str,
        workflow_id: &str,
    ) -> Result<(Arc<Slot>, tokio::sync::OwnedMutexGuard<SlotState>)> {
        loop {
            let slot = self.slot(namespace, workflow_id);
            let state_guard = slot.clone().lock_owned().await;
            if state_guard.evicted {
                continue;
            }
            let mut state_guard = state_guard;
            if !state_guard.loaded {
                let run = match self.executions().current_run_id(namespace, workflow_id).await? {
                    Some(run_id) => self.executions().run(&run_id).await?,
                    None => None,
                };
                state_guard.run = run;
                state_guard.loaded = true;
            }
            return Ok((slot, state_guard));
        }
    }

    /// Applies `f` to the latest run of `workflow_id` (which must be `run_id` when that is
    /// non-empty) and commits the outcome, together with any successor run it created.
    pub async fn mutate<T, F>(self: &Arc<Self>, namespace: &str, workflow_id: &str, run_id: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_>, &mut RunState) -> kernel::Result<T> + Send + 'static,
    {
        let this = self.clone();
        let (namespace, workflow_id, run_id) = (namespace.to_string(), workflow_id.to_string(), run_id.to_string());
        tokio::spawn(async move {
            let (slot, mut guard) = this.lock_slot(&namespace, &workflow_id).await?;
            let current = match guard.run.as_ref() {
                Some(run) if run_id.is_empty() || run.run_id == run_id => run,
                _ => return Err(not_found(&workflow_id, &run_id)),
            };
            let mut next = current.clone();
            let registry = this.search_attributes.clone();
            let check_namespace = namespace.clone();
            let check = move |attrs: &uhrwerk_proto::temporal::api::common::v1::SearchAttributes| registry.validate(&check_namespace, attrs);
            let mut ctx = Ctx::new(this.clock.now_ms(), &this.limits);
            ctx.search_attribute_check = Some(&check);
            ctx.successor_run_id = uuid::Uuid::now_v7().to_string();
            let result = f(&mut ctx, &mut next).map_err(Error::from);
            if !ctx.events.is_empty() && kernel::limits::count_exceeded(&this.limits, &next) {
                // As Temporal: the transition that took the history over the count limit is
                // dropped, and the run is terminated as it was before it.
                drop(ctx);
                next = current.clone();
                ctx = Ctx::new(this.clock.now_ms(), &this.limits);
                ctx.search_attribute_check = Some(&check);
                kernel::limits::terminate_over_count(&mut ctx, &mut next);
                tracing::warn!(workflow_id = %next.workflow_id, run_id = %next.run_id, "terminated a workflow over the history count limit");
            }
            if !ctx.events.is_empty() {
                next.warned_limits |= ctx.warned_limits;
                if kernel::limits::enforce_history_limits(&mut ctx, &mut next) {
                    tracing::warn!(workflow_id = %next.workflow_id, run_id = %next.run_id, "terminated a workflow over a history limit");
                }
            }
            if ctx.has_changes() {
                let mut pending = vec![Pending::from_ctx(next, &mut ctx, false)];
                if let Some(successor) = ctx.successor.take() {
                    pending.push(Pending { state: successor.state, events: successor.events, effects: successor.effects, set_current: true });
                }
                drop(ctx);
                this.commit(&slot, &mut guard, pending, true).await?;
            }
            result
        })
        .await
        .map_err(|e| Error::Internal(format!("transition task failed: {e}")))?
    }

    /// Makes transitions of one workflow id durable in one batch, then installs the last state in
    /// the slot and applies their effects. With `evict`, a slot whose last run closed leaves memory.
    async fn commit(&self, slot: &Arc<Slot>, guard: &mut SlotState, pending: Vec<Pending>, evict: bool) -> Result<()> {
        let mut batch = WriteBatch::default();
        let mut offers = Vec::new();
        let mut transfers = Vec::new();
        for p in &pending {
            let st = &p.state;
            let mut write = RunWrite {
                state: st.clone(),
                set_current: p.set_current,
                events: p.events.clone(),
                attrs: st.search_attributes.as_ref().map(|attrs| self.search_attributes.index(&st.namespace, attrs)),
                ..Default::default()
            };
            for effect in &p.effects {
                match effect {
                    Effect::DispatchWorkflowTask { task_queue, scheduled_event_id, attempt, .. }
                    | Effect::DispatchActivityTask { task_queue, scheduled_event_id, attempt } => {
                        let (kind, sticky_queue) = match effect {
                            Effect::DispatchWorkflowTask { sticky_queue, .. } => {
                                (TaskKind::Workflow, sticky_queue.clone())
                            }
                            _ => (TaskKind::Activity, String::new()),
                        };
                        let task = OutboxTask {
                            kind,
                            namespace: st.namespace.clone(),
                            workflow_id: st.workflow_id.clone(),
                            run_id: st.run_id.clone(),
                            task_queue: task_queue.clone(),
                            scheduled_event_id: *scheduled_event_id,
                            attempt: *attempt,
                        };
                        write.add_tasks.push(task.clone());
                        offers.push((task, sticky_queue));
                    }
                    Effect::TaskStarted { scheduled_event_id } => write.remove_tasks.push(*scheduled_event_id),
                    Effect::ArmTimer(t) => write.add_timers.push(t.clone()),
                    Effect::TimerDone(t) => write.remove_timers.push(t.clone()),
                    Effect::RunClosed => {}
                    Effect::Transfer(task) => {
                        write.add_transfers.push(task.clone());
                        transfers.push(TransferRow {
                            namespace: st.namespace.clone(),
                            workflow_id: st.workflow_id.clone(),
                            run_id: st.run_id.clone(),
                            task: task.clone(),
                        });
                    }
                }
            }
            batch.runs.push(write);
        }
        self.executions().commit(batch).await?;

        for p in &pending {
            let row = |timer: &kernel::TimerTask| TimerRow {
                namespace: p.state.namespace.clone(),
                workflow_id: p.state.workflow_id.clone(),
                run_id: p.state.run_id.clone(),
                timer: timer.clone(),
            };
            for effect in &p.effects {
                match effect {
                    Effect::ArmTimer(t) => self.timers.arm(row(t)),
                    Effect::TimerDone(t) => self.timers.cancel(&row(t)),
                    _ => {}
                }
            }
        }
        let last = pending.last().expect("commit of at least one transition");
        let closed = !last.state.is_open();
        let key = (last.state.namespace.clone(), last.state.workflow_id.clone());
        // Every commit wakes the run's watchers: history long polls (which re-check for new
        // events) and update waiters (which re-check the update's stage).
        let notifications: Vec<(String, i64)> =
            pending.iter().map(|p| (p.state.run_id.clone(), p.state.next_event_id)).collect();
        for (task, sticky_queue) in offers {
            self.matching.offer_workflow_task(task, &sticky_queue);
        }
        // Queries still waiting on a run that closed (terminated, timed out...) go to a worker
        // as legacy query tasks: closed workflows answer queries too.
        for p in pending.iter().filter(|p| !p.state.is_open()) {
            for query_id in self.queries.after_completion(&p.state.run_id, false, &p.state.task_queue) {
                self.matching.offer_query(crate::matching::QueryTask {
                    namespace: p.state.namespace.clone(),
                    workflow_id: p.state.workflow_id.clone(),
                    run_id: p.state.run_id.clone(),
                    task_queue: p.state.task_queue.clone(),
                    query_id,
                });
            }
        }
        for p in &pending {
            let before = guard.run.as_ref().filter(|r| r.run_id == p.state.run_id);
            self.metrics.transition(before, &p.state, &p.events);
        }
        if let Some(hook) = self.close_hook.get() {
            for p in pending
                .iter()
                .filter(|p| !p.state.is_open() && p.events.iter().any(|e| e.event_id == p.state.close_event_id))
            {
                hook(&p.state);
            }
        }
        guard.run = pending.into_iter().last().map(|p| p.state);
        for (run_id, next_event_id) in notifications {
            self.notify_history(&run_id, next_event_id);
        }
        // Work on other runs: the processor carries each task out in a task of its own, which
        // takes the other run's lock only (never two at once).
        for row in transfers {
            self.transfers.push(row);
        }
        if evict && closed {
            // Closed runs leave memory; the next access reloads them from the store.
            self.evict(&key, slot, guard);
        }
        Ok(())
    }

    /// Takes a locked slot out of the map; a waiter that still holds it looks again.
    fn evict(&self, key: &SlotKey, slot: &Arc<Slot>, guard: &mut SlotState) {
        guard.evicted = true;
        let mut slots = self.slots.lock().expect("slots lock");
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }

    fn notify_history(&self, run_id: &str, next_event_id: i64) {
        let mut watchers = self.history_watch.lock().expect("history watch lock");
        if let Some(tx) = watchers.get(run_id) {
            if tx.receiver_count() == 0 {
                watchers.remove(run_id);
            } else {
                tx.send_replace(next_event_id);
            }
        }
    }

    /// Subscribes to the history growth of a run. Subscribe *before* reading the store.
    pub fn watch_history(&self, run_id: &str) -> watch::Receiver<i64> {
        let mut watchers = self.history_watch.lock().expect("history watch lock");
        watchers.entry(run_id.to_string()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Drops the watcher entry of a run once nobody listens.
    pub fn unwatch_history(&self, run_id: &str) {
        let mut watchers = self.history_watch.lock().expect("history watch lock");
        if watchers.get(run_id).is_some_and(|tx| tx.receiver_count() == 0) {
            watchers.remove(run_id);
        }
    }

    /// The latest state of a run: from memory when it is loaded, else from the store. Reads
    /// never create slots, so looking at closed workflows does not fill memory.
    pub async fn run_state(&self, namespace: &str, workflow_id: &str, run_id: &str) -> Result<RunState> {
        let existing =
            self.slots.lock().expect("slots lock").get(&(namespace.to_string(), workflow_id.to_string())).cloned();
        if let Some(slot) = existing {
            let guard = slot.lock().await;
            if let Some(run) = guard.run.as_ref().filter(|_| guard.loaded && !guard.evicted)
                && (run_id.is_empty() || run.run_id == run_id)
            {
                return Ok(run.clone());
            }
        }
        let id = match run_id {
            "" => self.executions().current_run_id(namespace, workflow_id).await?,
            id => Some(id.to_string()),
        };
        let run = match id {
            Some(id) => {
                self.executions().run(&id).await?.filter(|r| r.namespace == namespace && r.workflow_id == workflow_id)
            }
            None => None,
        };
        run.ok_or_else(|| not_found(workflow_id, run_id))
    }

    /// Handles a due timer.
    pub async fn fire_timer(self: &Arc<Self>, row: TimerRow) {
        let timer = row.timer.clone();
        let result = self.mutate(&row.namespace, &row.workflow_id, &row.run_id, move |ctx, st| {
            kernel::fire_timer(ctx, st, &timer);
            Ok(())
        });
        match result.await {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(run_id = %row.run_id, "failed to handle timer, retrying in 1s: {e}");
                let mut retry = row;
                retry.timer.fire_at_ms = self.clock.now_ms() + 1000;
                self.timers.arm(retry);
            }
        }
    }

    /// Fires due timers until `shutdown` turns true.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let now = self.clock.now_ms();
            let (due, next) = self.timers.take_due(now);
            for row in due {
                let engine = self.clone();
                tokio::spawn(async move { engine.fire_timer(row).await });
            }
            let wait = next.map_or(Duration::from_secs(3600), |at| Duration::from_millis((at - now).max(1) as u64));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.timers.changed() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    pub fn matching(&self) -> &Matching {
        &self.matching
    }

    pub fn queries(&self) -> &Queries {
        &self.queries
    }

    /// Installs the function told about every run that closes (once; later calls are ignored).
    pub fn on_close(&self, hook: Box<dyn Fn(&RunState) + Send + Sync>) {
        let _ = self.close_hook.set(hook);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn search_attributes(&self) -> &SearchAttributes {
        &self.search_attributes
    }
}

pub fn not_found(workflow_id: &str, run_id: &str) -> Error {
    if run_id.is_empty() {
        Error::NotFound(format!("workflow not found for ID: {workflow_id}"))
    } else {
        Error::NotFound(format!(
            "workflow execution not found for workflow ID \"{workflow_id}\" and run ID \"{run_id}\""
        ))
    }
}
