//! The engine: owns every run's mutable state. Each transition runs the pure kernel under the
//! run's lock (one writer per workflow id), commits the result through the store's group commit,
//! and only then applies its effects (matching, timers, long-poll wake-ups).
//!
//! Invariant: a transition's in-memory state changes only after its batch is durable, and the
//! transition runs in its own task, so a client that disconnects cannot tear it in half.

mod delete;
mod start;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use uhrwerk_core::config::Limits;
use uhrwerk_core::kernel::{self, Ctx, Effect};
use uhrwerk_core::state::{ParentInfo, RunState};
use uhrwerk_store::{OutboxTask, RunWrite, Store, TaskKind, TimerRow, WriteBatch};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::matching::Matching;
use crate::metrics::Metrics;
use crate::queries::Queries;
use crate::search_attributes::SearchAttributes;
use crate::timers::Timers;

pub use start::StartOutcome;

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

pub struct Engine {
    /// A weak handle to itself, for follow-up work spawned after commits.
    me: std::sync::Weak<Engine>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    matching: Matching,
    timers: Timers,
    queries: Queries,
    search_attributes: SearchAttributes,
    metrics: Arc<Metrics>,
    slots: Mutex<HashMap<SlotKey, Arc<Slot>>>,
    /// Testing only: follow-ups on other workflows (parent close policies, external signals and
    /// cancel requests) are dropped, as if the process died right after the commit.
    drop_follow_ups: std::sync::atomic::AtomicBool,
    /// Called with every run that closed, after its commit (schedules watch their runs).
    close_hook: std::sync::OnceLock<Box<dyn Fn(&RunState) + Send + Sync>>,
    /// Long-poll watchers of run histories: run id -> next event id.
    history_watch: Mutex<HashMap<String, watch::Sender<i64>>>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        matching: Matching,
        timers: Timers,
        search_attributes: SearchAttributes,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            store,
            clock,
            limits,
            matching,
            timers,
            queries: Queries::default(),
            search_attributes,
            metrics,
            close_hook: std::sync::OnceLock::new(),
            drop_follow_ups: std::sync::atomic::AtomicBool::new(false),
            slots: Mutex::default(),
            history_watch: Mutex::default(),
        })
    }

    fn self_ref(&self) -> Arc<Engine> {
        self.me.upgrade().expect("the engine outlives its transitions")
    }

    /// Work on other workflows that a committed transition asked for. Boxed: it runs
    /// transitions, whose commits can spawn further follow-ups.
    fn follow_up(self: Arc<Self>, effect: Effect) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move { self.follow_up_inner(effect).await })
    }

    async fn follow_up_inner(self: Arc<Self>, effect: Effect) {
        let result = match effect {
            Effect::StartChild { parent, request } => self.start_child(parent, *request).await,
            Effect::NotifyParent { parent, run_id, outcome } => {
                let initiated = parent.initiated_event_id;
                self.mutate(&parent.namespace, &parent.workflow_id, &parent.run_id, move |ctx, st| {
                    kernel::child_closed(ctx, st, initiated, &run_id, outcome)
                })
                .await
            }
            Effect::ParentClosed { parent, children } => {
                for child in children.into_iter().filter(|c| !c.run_id.is_empty()) {
                    use uhrwerk_proto::temporal::api::enums::v1::ParentClosePolicy as P;
                    let policy = P::try_from(child.parent_close_policy).unwrap_or(P::Unspecified);
                    let applied = match policy {
                        P::Abandon => continue,
                        P::RequestCancel => {
                            // As in Temporal: the request names the parent, with no cause.
                            let parent = parent.clone();
                            self.mutate(&child.namespace, &child.workflow_id, &child.run_id, move |ctx, st| {
                                kernel::request_cancel_run_from(ctx, st, "", "", "", Some((parent, 0)))
                            })
                            .await
                        }
                        P::Terminate | P::Unspecified => {
                            self.mutate(&child.namespace, &child.workflow_id, &child.run_id, |ctx, st| {
                                kernel::terminate_run(ctx, st, "by parent close policy", None, "")
                            })
                            .await
                        }
                    };
                    if let Err(e) = applied {
                        tracing::debug!(workflow_id = %child.workflow_id, "parent close policy not applied: {e}");
                    }
                }
                Ok(())
            }
            Effect::External { source, namespace, target, control, request } => {
                let is_signal = matches!(request, kernel::ExternalRequest::Signal(_));
                let delivered = match request {
                    kernel::ExternalRequest::Signal(signal) => {
                        self.mutate(&namespace, &target.workflow_id, &target.run_id, move |ctx, st| {
                            kernel::signal_run(ctx, st, signal)
                        })
                        .await
                    }
                    kernel::ExternalRequest::Cancel { reason } => {
                        let request_id = format!("{}-cancel-{}", source.run_id, source.initiated_event_id);
                        let sender = uhrwerk_proto::temporal::api::common::v1::WorkflowExecution {
                            workflow_id: source.workflow_id.clone(),
                            run_id: source.run_id.clone(),
                        };
                        let initiated = source.initiated_event_id;
                        self.mutate(&namespace, &target.workflow_id, &target.run_id, move |ctx, st| {
                            kernel::request_cancel_run_from(
                                ctx,
                                st,
                                &reason,
                                "",
                                &request_id,
                                Some((sender, initiated)),
                            )
                        })
                        .await
                    }
                };
                let done = match delivered {
                    Ok(()) => true,
                    Err(Error::NotFound(_)) => false,
                    Err(e) => {
                        tracing::warn!("failed to deliver an external request: {e}");
                        return;
                    }
                };
                let initiated = source.initiated_event_id;
                self.mutate(&source.namespace, &source.workflow_id, &source.run_id, move |ctx, st| {
                    kernel::external_outcome(ctx, st, initiated, namespace, target, control, is_signal, done)
                })
                .await
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => tracing::warn!("failed to apply a follow-up of a transition: {e}"),
        }
    }

    /// Delivers the outcome of a child whose chain closed while the parent was not told.
    async fn recheck_child(self: &Arc<Self>, parent: ParentInfo, child: uhrwerk_core::state::ChildInfo) -> Result<()> {
        let (ns, wf) = (child.namespace.clone(), child.workflow_id.clone());
        let latest = self
            .read(move |s| match s.current_run_id(&ns, &wf)? {
                Some(id) => s.run(&id),
                None => Ok(None),
            })
            .await?;
        // The workflow id's latest run must belong to the child's chain and be closed.
        let Some(latest) = latest.filter(|r| r.first_execution_run_id == child.run_id || r.run_id == child.run_id)
        else {
            return Ok(());
        };
        if latest.is_open() {
            return Ok(());
        }
        let (run_id, close_event_id) = (latest.run_id.clone(), latest.close_event_id);
        let events = self.read(move |s| s.events(&run_id, close_event_id, 1)).await?;
        let Some(outcome) = events.first().and_then(kernel::child_outcome_of) else { return Ok(()) };
        let (initiated, run_id) = (parent.initiated_event_id, latest.run_id.clone());
        self.mutate(&parent.namespace, &parent.workflow_id, &parent.run_id, move |ctx, st| {
            kernel::child_closed(ctx, st, initiated, &run_id, outcome)
        })
        .await
    }

    /// Applies the parent close policy to a child whose parent closed before the policy was
    /// carried out.
    async fn recheck_parent(self: &Arc<Self>, child: RunState) -> Result<()> {
        let Some(parent) = child.parent.clone() else { return Ok(()) };
        let parent_run_id = parent.run_id.clone();
        let Some(parent_run) = self.read(move |s| s.run(&parent_run_id)).await? else { return Ok(()) };
        if parent_run.is_open() {
            return Ok(());
        }
        let Some(info) =
            parent_run.closed_children.iter().find(|c| c.initiated_event_id == parent.initiated_event_id).cloned()
        else {
            return Ok(());
        };
        let execution = uhrwerk_proto::temporal::api::common::v1::WorkflowExecution {
            workflow_id: parent_run.workflow_id.clone(),
            run_id: parent_run.run_id.clone(),
        };
        self.clone().follow_up(Effect::ParentClosed { parent: execution, children: vec![info] }).await;
        Ok(())
    }

    /// Starts a child again from its StartChildWorkflowExecutionInitiated event.
    async fn restart_child(self: &Arc<Self>, parent: ParentInfo) -> Result<()> {
        use uhrwerk_proto::temporal::api::history::v1::history_event::Attributes;
        let (run_id, initiated) = (parent.run_id.clone(), parent.initiated_event_id);
        let events = self.read(move |s| s.events(&run_id, initiated, 1)).await?;
        let Some(Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a)) =
            events.into_iter().next().and_then(|e| e.attributes)
        else {
            return Err(Error::Internal(format!(
                "event {initiated} of run {} is not a child initiation",
                parent.run_id
            )));
        };
        let request = kernel::child_start_request(&parent.run_id, initiated, &a);
        self.start_child(parent, request).await
    }

    /// Starts a child workflow and tells the parent whether it started.
    async fn start_child(
        self: &Arc<Self>,
        parent: ParentInfo,
        request: uhrwerk_proto::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest,
    ) -> Result<()> {
        let initiated = parent.initiated_event_id;
        match self.start_child_run(request, parent.clone()).await {
            Ok(outcome) => {
                self.mutate(&parent.namespace, &parent.workflow_id, &parent.run_id, move |ctx, st| {
                    kernel::child_started(ctx, st, initiated, &outcome.run_id)
                })
                .await
            }
            Err(Error::AlreadyStarted { .. }) => {
                self.mutate(&parent.namespace, &parent.workflow_id, &parent.run_id, move |ctx, st| {
                    kernel::child_start_failed(ctx, st, initiated)
                })
                .await
            }
            Err(e) => Err(e),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Testing only: drop parent-close and external follow-ups from now on (a simulated crash
    /// between a commit and its follow-ups).
    pub fn drop_follow_ups_for_testing(&self, drop: bool) {
        self.drop_follow_ups.store(drop, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs a blocking store call off the async workers.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> uhrwerk_store::Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| Error::Internal(format!("store task failed: {e}")))?
            .map_err(Error::from)
    }

    /// Reloads open runs, queued tasks and armed timers after a start or a crash.
    pub async fn recover(self: &Arc<Self>) -> Result<(usize, usize, usize)> {
        let recovered = self.read(|s| s.recover()).await?;
        let counts = (recovered.open_runs.len(), recovered.tasks.len(), recovered.timers.len());
        // Children that closed while their parent's notification was in flight when the process
        // died: look at each started child's chain once more.
        let started_children: Vec<(ParentInfo, uhrwerk_core::state::ChildInfo)> = recovered
            .open_runs
            .iter()
            .flat_map(|run| {
                run.children.values().filter(|c| c.started_event_id > 0).map(move |c| {
                    let parent = ParentInfo {
                        namespace: run.namespace.clone(),
                        workflow_id: run.workflow_id.clone(),
                        run_id: run.run_id.clone(),
                        initiated_event_id: c.initiated_event_id,
                        root: run.root.clone(),
                    };
                    (parent, c.clone())
                })
            })
            .collect();
        // Children whose start was committed but maybe not carried out before a crash: starting
        // them again is safe, the start request id makes it idempotent.
        let pending_children: Vec<ParentInfo> = recovered
            .open_runs
            .iter()
            .flat_map(|run| {
                run.children.values().filter(|c| c.started_event_id == 0).map(move |c| ParentInfo {
                    namespace: run.namespace.clone(),
                    workflow_id: run.workflow_id.clone(),
                    run_id: run.run_id.clone(),
                    initiated_event_id: c.initiated_event_id,
                    root: run.root.clone(),
                })
            })
            .collect();
        // Runs with follow-ups that a crash may have cut off (see below).
        let pending_externals: Vec<RunState> =
            recovered.open_runs.iter().filter(|r| !r.pending_externals.is_empty()).cloned().collect();
        let orphans: Vec<RunState> = recovered.open_runs.iter().filter(|r| r.parent.is_some()).cloned().collect();
        {
            let mut slots = self.slots.lock().expect("slots lock");
            for run in recovered.open_runs {
                let key = (run.namespace.clone(), run.workflow_id.clone());
                slots.insert(
                    key,
                    Arc::new(tokio::sync::Mutex::new(SlotState { loaded: true, evicted: false, run: Some(run) })),
                );
            }
        }
        for task in recovered.tasks {
            self.matching.offer(task);
        }
        for timer in recovered.timers {
            self.timers.arm(timer);
        }
        for (parent, child) in started_children {
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.recheck_child(parent, child).await {
                    tracing::warn!("failed to re-check a child workflow after recovery: {e}");
                }
            });
        }
        // Signals and cancel requests to other workflows that were committed but maybe not
        // carried out: do them again (the target deduplicates by request id, the source records
        // one outcome per request).
        for run in pending_externals {
            let engine = self.clone();
            tokio::spawn(async move {
                for initiated in run.pending_externals.clone() {
                    let run_id = run.run_id.clone();
                    match engine.read(move |s| s.events(&run_id, initiated, 1)).await {
                        Ok(events) => {
                            if let Some(effect) = events.first().and_then(|e| kernel::resume_external(&run, e)) {
                                engine.clone().follow_up(effect).await;
                            }
                        }
                        Err(e) => tracing::warn!("failed to resume an external request after recovery: {e}"),
                    }
                }
            });
        }
        // Children whose parent closed while its close policy was in flight.
        for child in orphans {
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.recheck_parent(child).await {
                    tracing::warn!("failed to re-check a child's parent after recovery: {e}");
                }
            });
        }
        for parent in pending_children {
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.restart_child(parent).await {
                    tracing::warn!("failed to start a child workflow after recovery: {e}");
                }
            });
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
                let (ns, wf) = (namespace.to_string(), workflow_id.to_string());
                let run = self
                    .read(move |s| match s.current_run_id(&ns, &wf)? {
                        Some(run_id) => s.run(&run_id),
                        None => Ok(None),
                    })
                    .await?;
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
        let mut follow_ups = Vec::new();
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
                    Effect::DispatchWorkflowTask { task_queue, scheduled_event_id, attempt }
                    | Effect::DispatchActivityTask { task_queue, scheduled_event_id, attempt } => {
                        let kind = if matches!(effect, Effect::DispatchWorkflowTask { .. }) {
                            TaskKind::Workflow
                        } else {
                            TaskKind::Activity
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
                        offers.push(task);
                    }
                    Effect::TaskStarted { scheduled_event_id } => write.remove_tasks.push(*scheduled_event_id),
                    Effect::ArmTimer(t) => write.add_timers.push(t.clone()),
                    Effect::TimerDone(t) => write.remove_timers.push(t.clone()),
                    Effect::RunClosed => {}
                    Effect::StartChild { .. }
                    | Effect::NotifyParent { .. }
                    | Effect::ParentClosed { .. }
                    | Effect::External { .. } => {
                        follow_ups.push(effect.clone());
                    }
                }
            }
            batch.runs.push(write);
        }
        let receiver = self.store.submit(batch);
        receiver.await.map_err(|_| Error::Unavailable("the store stopped".into()))??;

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
        for task in offers {
            self.matching.offer(task);
        }
        // Queries still waiting on a run that closed (terminated, timed out...) go to a worker
        // as legacy query tasks: closed workflows answer queries too.
        for p in pending.iter().filter(|p| !p.state.is_open()) {
            for query_id in self.queries.after_completion(&p.state.run_id, false) {
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
        let dropping = self.drop_follow_ups.load(std::sync::atomic::Ordering::Relaxed);
        for effect in follow_ups {
            if dropping && matches!(effect, Effect::ParentClosed { .. } | Effect::External { .. }) {
                continue;
            }
            // Other workflows' transitions: run them on their own, after this one released its lock.
            tokio::spawn(self.self_ref().follow_up(effect));
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
        let (ns, wf, id) = (namespace.to_string(), workflow_id.to_string(), run_id.to_string());
        let run = self
            .read(move |s| {
                let id = if id.is_empty() { s.current_run_id(&ns, &wf)? } else { Some(id) };
                match id {
                    Some(id) => Ok(s.run(&id)?.filter(|r| r.namespace == ns && r.workflow_id == wf)),
                    None => Ok(None),
                }
            })
            .await?;
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
