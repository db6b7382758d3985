//! The runs in memory and the path of every transition. Each workflow id has a slot (a tokio
//! mutex around its latest run's state) while it is in use; at most `run_cache_size` slots stay
//! loaded, the least recently used leave memory and are read back from the store on their next
//! use, and closed runs leave at once. `mutate` is the one way to change a run: lock its slot,
//! run the kernel on a copy, enforce the history limits, commit, install the new state, apply
//! the effects.
//!
//! Invariant: a run's state in memory changes only after its transition is durable, and a
//! transition runs in its own task, so a client that disconnects cannot tear it in half.

use std::sync::Arc;

use tokio::sync::watch;
use uhrwerk_core::kernel::{self, Ctx, Effect};
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{OutboxTask, RunWrite, TaskKind, TimerRow, TransferRow, WriteBatch};

use super::Engine;
use crate::error::{Error, Result};

/// One run's transition waiting to be committed.
pub(super) struct Pending {
    state: RunState,
    events: Vec<uhrwerk_proto::temporal::api::history::v1::HistoryEvent>,
    effects: Vec<Effect>,
    set_current: bool,
    /// The history limit that terminated the run in this transition, for the metrics.
    limit_terminated: Option<kernel::limits::HistoryLimit>,
}

impl Pending {
    pub(super) fn from_ctx(state: RunState, ctx: &mut Ctx<'_>, set_current: bool) -> Self {
        Self {
            state,
            events: std::mem::take(&mut ctx.events),
            effects: std::mem::take(&mut ctx.effects),
            set_current,
            limit_terminated: None,
        }
    }
}

pub(super) type SlotKey = (String, String);

/// The state slot of one workflow id: its latest run, loaded lazily.
#[derive(Default)]
pub(super) struct SlotState {
    pub(super) loaded: bool,
    /// Set when the slot left the map; a waiter that still holds it must look again.
    pub(super) evicted: bool,
    pub(super) run: Option<RunState>,
    /// In a cluster: the shard lease this node held when it loaded the run, which its commits
    /// carry; a lease taken again since makes the slot load afresh.
    pub(super) fence: Option<uhrwerk_storage::Fence>,
}

pub(super) type Slot = tokio::sync::Mutex<SlotState>;

impl Engine {
    /// The slot of a workflow id, made if needed, and marked as just used; the least recently
    /// used slot over `run_cache_size` leaves memory when nobody holds it.
    fn slot(&self, namespace: &str, workflow_id: &str) -> Arc<Slot> {
        let key = (namespace.to_string(), workflow_id.to_string());
        let slot = {
            let mut slots = self.slots.lock().expect("slots lock");
            let slot = slots.entry(key.clone()).or_default().clone();
            self.metrics.runs_in_memory.set(slots.len() as i64);
            slot
        };
        let least_used = {
            let mut recent = self.recent.lock().expect("recent runs lock");
            recent.put(key, ());
            if recent.len() > self.run_cache_size { recent.pop_lru().map(|(key, ())| key) } else { None }
        };
        if let Some(old) = least_used {
            self.evict_idle(&old);
        }
        slot
    }

    /// Takes a slot out of memory unless it is in use (a transition or a waiter holds it; it
    /// then stays until its run closes or it is the least used again).
    pub(super) fn evict_idle(&self, key: &SlotKey) {
        let mut slots = self.slots.lock().expect("slots lock");
        let Some(slot) = slots.get(key).cloned() else { return };
        if Arc::strong_count(&slot) > 2 {
            return;
        }
        if let Ok(mut guard) = slot.try_lock() {
            guard.evicted = true;
            slots.remove(key);
            self.metrics.runs_in_memory.set(slots.len() as i64);
        }
    }

    /// Locks the slot of a workflow id and loads its latest run from the store if needed.
    pub(super) async fn lock_slot(
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
            let fence = self.fence(namespace, workflow_id);
            if state_guard.loaded && state_guard.fence != fence {
                // The shard moved since the run was loaded: another node may have changed it.
                state_guard.loaded = false;
            }
            if !state_guard.loaded {
                // The fence is taken before the read: the read sees every commit made under
                // earlier epochs.
                state_guard.fence = fence;
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
            let mut limit_terminated = None;
            if !ctx.events.is_empty() && kernel::limits::count_exceeded(&this.limits, &next) {
                // As Temporal: the transition that took the history over the count limit is
                // dropped, and the run is terminated as it was before it.
                drop(ctx);
                next = current.clone();
                ctx = Ctx::new(this.clock.now_ms(), &this.limits);
                ctx.search_attribute_check = Some(&check);
                limit_terminated = kernel::limits::terminate_over_count(&mut ctx, &mut next);
                tracing::warn!(workflow_id = %next.workflow_id, run_id = %next.run_id, "terminated a workflow over the history count limit");
            }
            if !ctx.events.is_empty() {
                next.warned_limits |= ctx.warned_limits;
                if let Some(limit) = kernel::limits::enforce_history_limits(&mut ctx, &mut next) {
                    limit_terminated = Some(limit);
                    tracing::warn!(workflow_id = %next.workflow_id, run_id = %next.run_id, "terminated a workflow over a history limit");
                }
            }
            if ctx.has_changes() {
                let mut first = Pending::from_ctx(next, &mut ctx, false);
                first.limit_terminated = limit_terminated;
                let mut pending = vec![first];
                if let Some(successor) = ctx.successor.take() {
                    pending.push(Pending {
                        state: successor.state,
                        events: successor.events,
                        effects: successor.effects,
                        set_current: true,
                        limit_terminated: None,
                    });
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
    pub(super) async fn commit(
        &self,
        slot: &Arc<Slot>,
        guard: &mut SlotState,
        pending: Vec<Pending>,
        evict: bool,
    ) -> Result<()> {
        let mut batch = WriteBatch { fence: guard.fence, ..Default::default() };
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
        if let Err(e) = self.executions().commit(batch).await {
            // The store may have committed after all (a connection lost after COMMIT was sent):
            // the run leaves memory, and the next access reads what the store has.
            let last = pending.last().expect("commit of at least one transition");
            let key = (last.state.namespace.clone(), last.state.workflow_id.clone());
            self.evict(&key, slot, guard);
            if let (uhrwerk_storage::Error::Fenced(detail), Some(cluster)) = (&e, &self.cluster) {
                cluster.fenced();
                tracing::warn!(
                    workflow_id = %key.1,
                    "commit refused by the shard fence (another node took the shard): {detail}"
                );
                return Err(Error::Unavailable(format!(
                    "shard {} moved to another node; try again",
                    cluster.shard_of(&key.0, &key.1)
                )));
            }
            return Err(e.into());
        }

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
        let counts_outstanding = self.clock.counts_outstanding();
        let mut outstanding = 0;
        for p in &pending {
            let before = guard.run.as_ref().filter(|r| r.run_id == p.state.run_id);
            self.metrics.transition(before, &p.state, &p.events, p.limit_terminated.map(|l| l.key()));
            if counts_outstanding {
                outstanding += p.state.outstanding_work() - before.map_or(0, RunState::outstanding_work);
            }
        }
        if outstanding != 0 {
            self.clock.outstanding_changed(outstanding);
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
            self.transfers.push(row, self.clock.hold());
        }
        if evict && closed {
            // Closed runs leave memory; the next access reloads them from the store.
            self.evict(&key, slot, guard);
        }
        Ok(())
    }

    /// Takes a locked slot out of the map; a waiter that still holds it looks again.
    pub(super) fn evict(&self, key: &SlotKey, slot: &Arc<Slot>, guard: &mut SlotState) {
        guard.evicted = true;
        self.recent.lock().expect("recent runs lock").pop(key);
        let mut slots = self.slots.lock().expect("slots lock");
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
            self.metrics.runs_in_memory.set(slots.len() as i64);
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

    /// Waits on `watcher` (from `watch_history(run_id)`) until the run changes, `deadline` passes
    /// or the server shuts down; true when it changed. Releases the watcher either way.
    pub async fn wait_for_change(
        &self,
        mut watcher: watch::Receiver<i64>,
        run_id: &str,
        deadline: crate::clock::Deadline,
    ) -> bool {
        let mut shutdown = self.shutdown.clone();
        let changed = tokio::select! {
            changed = watcher.changed() => changed.is_ok(),
            _ = crate::clock::sleep_until(deadline) => false,
            _ = shutdown.wait_for(|stop| *stop) => false,
        };
        drop(watcher);
        self.unwatch_history(run_id);
        changed
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
            let current = guard.fence == self.fence(namespace, workflow_id);
            if let Some(run) = guard.run.as_ref().filter(|_| guard.loaded && !guard.evicted && current)
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
