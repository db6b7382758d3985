//! The engine: owns every run's mutable state. Each transition runs the pure kernel under the
//! run's lock (one writer per workflow id), commits the result through the store's group commit,
//! and only then applies its effects (matching, timers, long-poll wake-ups).
//!
//! Invariant: a transition's in-memory state changes only after its batch is durable, and the
//! transition runs in its own task, so a client that disconnects cannot tear it in half.

pub mod api;
mod delete;
mod runs;
mod shards;
mod start;
mod timer_loop;
mod transfer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use uhrwerk_core::config::Limits;
use uhrwerk_core::state::RunState;
use uhrwerk_storage::{ExecutionStore, MetadataStore, TimerRow, VisibilityStore};

use crate::clock::Clock;
use crate::error::Result;
use crate::matching::Matching;
use crate::metrics::Metrics;
use crate::queries::Queries;
use crate::search_attributes::SearchAttributes;
use crate::timers::Timers;

use runs::{Pending, Slot, SlotKey};

pub use runs::not_found;
pub use start::{EagerTask, StartOutcome};
pub use transfer::TransferQueue;

/// The storage the engine works through, one trait object per concern (one backend may be all
/// three).
#[derive(Clone)]
pub struct Stores {
    pub executions: Arc<dyn ExecutionStore>,
    pub visibility: Arc<dyn VisibilityStore>,
    pub metadata: Arc<dyn MetadataStore>,
}

/// Told about every run that closes, after its commit.
pub type CloseHook = Box<dyn Fn(&RunState) + Send + Sync>;

/// What an engine is made of.
pub struct EngineParts {
    pub stores: Stores,
    /// Workflow time.
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    /// How many runs stay in memory between their transitions (`history.cacheMaxSize`). A run
    /// out of memory costs one store read at its next transition; one in memory costs its
    /// state, a few KiB.
    pub run_cache_size: usize,
    pub matching: Matching,
    pub timers: Timers,
    pub search_attributes: SearchAttributes,
    pub metrics: Arc<Metrics>,
    /// Turns true at server shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// The cluster this node is part of, if any.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

pub struct Engine {
    cluster: Option<Arc<crate::cluster::Cluster>>,
    stores: Stores,
    clock: Arc<dyn Clock>,
    limits: Limits,
    matching: Matching,
    timers: Timers,
    queries: Queries,
    search_attributes: SearchAttributes,
    metrics: Arc<Metrics>,
    slots: Mutex<HashMap<SlotKey, Arc<Slot>>>,
    /// Workflow ids by last use, to keep at most `run_cache_size` runs in memory.
    recent: Mutex<lru::LruCache<SlotKey, ()>>,
    run_cache_size: usize,
    /// Committed transfer tasks on their way to the processor (`run_transfers`).
    transfers: TransferQueue,
    transfer_rx: Mutex<Option<transfer::TransferReceiver>>,
    /// Called with every run that closed, after its commit (schedules watch their runs).
    close_hook: std::sync::OnceLock<CloseHook>,
    /// Long-poll watchers of run histories: run id -> next event id.
    history_watch: Mutex<HashMap<String, watch::Sender<i64>>>,
    /// Turns true at server shutdown: long polls answer at once.
    shutdown: watch::Receiver<bool>,
}

impl Engine {
    pub fn new(parts: EngineParts) -> Arc<Self> {
        let EngineParts {
            stores,
            clock,
            limits,
            run_cache_size,
            matching,
            timers,
            search_attributes,
            metrics,
            shutdown,
            cluster,
        } = parts;
        let (transfers, transfer_rx) = TransferQueue::new();
        Arc::new(Self {
            cluster,
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
            recent: Mutex::new(lru::LruCache::unbounded()),
            run_cache_size: run_cache_size.max(1),
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

    /// Workflow time, which timers and schedules run on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The event that closed `run`, if it is closed.
    pub async fn close_event(
        &self,
        run: &RunState,
    ) -> Result<Option<uhrwerk_proto::temporal::api::history::v1::HistoryEvent>> {
        if run.close_event_id == 0 {
            return Ok(None);
        }
        let events = self.executions().events(&run.run_id, run.close_event_id, 1).await?;
        Ok(events.into_iter().next().filter(|e| e.event_id == run.close_event_id))
    }

    fn executions(&self) -> &dyn ExecutionStore {
        self.stores.executions.as_ref()
    }

    fn visibility(&self) -> &dyn VisibilityStore {
        self.stores.visibility.as_ref()
    }

    /// Reloads queued tasks, armed timers and transfer tasks not carried out yet, after a start
    /// or a crash. Runs stay in the store until something touches them. Returns (open runs,
    /// queued tasks, armed timers).
    pub async fn recover(self: &Arc<Self>) -> Result<(usize, usize, usize)> {
        if self.cluster.is_some() {
            // A cluster node recovers each shard when it takes it (`take_shards`).
            return Ok((0, 0, 0));
        }
        let (open_runs, tasks, timers, _) = self.recover_where(|_, _| true).await?;
        Ok((open_runs, tasks, timers))
    }

    /// Offers the queued tasks, arms the timers and hands over the transfer tasks of the
    /// workflows `keep` picks (by namespace and workflow id). Returns (open runs in the whole
    /// store, tasks, timers, transfer tasks).
    pub(super) async fn recover_where(
        self: &Arc<Self>,
        keep: impl Fn(&str, &str) -> bool,
    ) -> Result<(usize, usize, usize, usize)> {
        /// Timers read per store round trip; a page is armed before the next is read.
        const TIMER_PAGE: usize = 10_000;
        let recovered = self.executions().recover().await?;
        let mut counts = (recovered.open_runs, 0, 0, 0);
        for task in recovered.tasks.into_iter().filter(|t| keep(&t.namespace, &t.workflow_id)) {
            counts.1 += 1;
            self.matching.offer(task);
        }
        let mut after = None;
        loop {
            let page = self.executions().timers(after, TIMER_PAGE).await?;
            let done = page.len() < TIMER_PAGE;
            after = page.last().map(TimerRow::cursor);
            for timer in page.into_iter().filter(|t| keep(&t.namespace, &t.workflow_id)) {
                counts.2 += 1;
                self.timers.arm(timer);
            }
            if done {
                break;
            }
        }
        for row in recovered.transfers.into_iter().filter(|r| keep(&r.namespace, &r.workflow_id)) {
            counts.3 += 1;
            self.transfers.push(row, self.clock.hold());
        }
        Ok(counts)
    }

    /// Turns true at server shutdown.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    pub fn matching(&self) -> &Matching {
        &self.matching
    }

    pub fn queries(&self) -> &Queries {
        &self.queries
    }

    /// Installs the function told about every run that closes (once; later calls are ignored).
    pub fn on_close(&self, hook: CloseHook) {
        let _ = self.close_hook.set(hook);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn search_attributes(&self) -> &SearchAttributes {
        &self.search_attributes
    }
}
