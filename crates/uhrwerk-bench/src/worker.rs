//! The minimal worker: long-polling workflow tasks (normal queue, and with stickiness a
//! per-worker sticky queue) and activity tasks, answering each at once. Workflow tasks are
//! decided from the run's history: full histories rebuild the view, partial (sticky) ones are
//! merged onto the view cached for the run, and a partial history for a run not in the cache is
//! completed by fetching the full history, as the SDKs do on a cache miss.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use serde::Serialize;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::TaskQueueKind;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::taskqueue::v1::{StickyExecutionAttributes, TaskQueue};
use temporalio_protos::temporal::api::workflowservice::v1::{
    GetWorkflowExecutionHistoryRequest, PollActivityTaskQueueRequest, PollWorkflowTaskQueueRequest,
    PollWorkflowTaskQueueResponse, RespondActivityTaskCompletedRequest, RespondWorkflowTaskCompletedRequest,
    ShutdownWorkerRequest,
};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::client::{Client, Pool, request};
use crate::history::{self, Decision, HistoryKind, RunView};
use crate::workload::Workload;

/// Deadline of a long poll; servers answer empty before it (Temporal after about a minute).
const POLL_TIMEOUT: Duration = Duration::from_secs(70);
/// Deadline of every other call of the worker.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the server may keep a task on the sticky queue before it falls back to the normal one.
const STICKY_SCHEDULE_TO_START: Duration = Duration::from_secs(10);
/// Errors of each kind printed on stderr before the worker only counts them.
const MAX_LOGGED_ERRORS: u64 = 10;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub namespace: String,
    pub task_queue: String,
    pub identity: String,
    pub sticky: bool,
    /// Pollers on the normal workflow queue, and as many on the sticky queue.
    pub workflow_pollers: usize,
    pub activity_pollers: usize,
    /// Runs remembered for sticky histories; beyond it an arbitrary one is forgotten. 0 turns
    /// the cache off: every partial history is then a cache miss.
    pub cache_size: usize,
    /// Gets a permit back for every workflow task completed with a StartTimer command (the
    /// `open-timers` starters hold one permit per run that is not waiting on its timer yet).
    pub timer_permits: Option<Arc<Semaphore>>,
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        #[derive(Default)]
        struct Counters { $($name: AtomicU64,)* }

        /// What the worker saw, as counts; [`WorkerStats::since`] gives the counts of one phase.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct WorkerStats { $($(#[$doc])* pub $name: u64,)* }

        impl Counters {
            fn snapshot(&self) -> WorkerStats {
                WorkerStats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl WorkerStats {
            pub fn since(&self, before: &WorkerStats) -> WorkerStats {
                WorkerStats { $($name: self.$name.saturating_sub(before.$name),)* }
            }
        }
    };
}

counters! {
    /// Workflow tasks received.
    workflow_tasks,
    /// Of those, received on the sticky queue.
    sticky_queue_tasks,
    /// Tasks whose history started at event 1.
    full_histories,
    /// Tasks whose history started later and continued the cached view.
    partial_histories,
    /// Tasks whose history could not be used alone (partial and not cached, or a gap): the
    /// worker fetched the full history with GetWorkflowExecutionHistory.
    cache_misses,
    /// Further history pages fetched because a poll response had a next page token.
    history_pages,
    /// History events received with workflow tasks (all pages, not counting cache-miss fetches).
    history_events,
    /// Encoded bytes of workflow task poll responses and of every history page the worker fetched.
    history_bytes,
    /// Workflow task completions with a StartTimer command the server accepted.
    timers_started,
    /// Workflow task completions the server refused, and tasks the worker could not decide.
    workflow_task_errors,
    /// Activity tasks completed.
    activity_tasks,
    /// Activity completions the server refused.
    activity_errors,
    /// Long polls answered without a task.
    empty_polls,
    /// Polls that failed (other than at their deadline).
    poll_errors,
}

struct Shared {
    config: WorkerConfig,
    sticky_queue: String,
    pool: Arc<Pool>,
    cache: Mutex<HashMap<String, RunView>>,
    counters: Counters,
    /// For long-history runs, by workflow id: when each activity was scheduled, then the end.
    progress: Mutex<HashMap<String, Vec<Instant>>>,
    logged_errors: AtomicU64,
}

pub struct Worker {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl Worker {
    pub fn start(pool: Arc<Pool>, config: WorkerConfig) -> Worker {
        let sticky_queue = format!("{}-sticky-{}", config.task_queue, std::process::id());
        let shared = Arc::new(Shared {
            config,
            sticky_queue,
            pool,
            cache: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            progress: Mutex::new(HashMap::new()),
            logged_errors: AtomicU64::new(0),
        });
        let mut handles = Vec::new();
        let normal = TaskQueue {
            name: shared.config.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        };
        for _ in 0..shared.config.workflow_pollers {
            handles.push(tokio::spawn(workflow_poller(shared.clone(), normal.clone(), false)));
            if shared.config.sticky {
                let sticky = shared.sticky_task_queue();
                handles.push(tokio::spawn(workflow_poller(shared.clone(), sticky, true)));
            }
        }
        for _ in 0..shared.config.activity_pollers {
            handles.push(tokio::spawn(activity_poller(shared.clone(), normal.clone())));
        }
        Worker { shared, handles }
    }

    pub fn stats(&self) -> WorkerStats {
        self.shared.counters.snapshot()
    }

    /// The marks of a long-history run (see [`crate::stats::round_costs_ms`]), forgotten here.
    pub fn take_progress(&self, workflow_id: &str) -> Vec<Instant> {
        self.shared.progress.lock().unwrap().remove(workflow_id).unwrap_or_default()
    }

    /// Stops every poller and tells the server the sticky queue is gone.
    pub async fn shutdown(self) {
        for handle in &self.handles {
            handle.abort();
        }
        for handle in self.handles {
            let _ = handle.await;
        }
        if self.shared.config.sticky {
            let req = ShutdownWorkerRequest {
                namespace: self.shared.config.namespace.clone(),
                sticky_task_queue: self.shared.sticky_queue.clone(),
                identity: self.shared.config.identity.clone(),
                reason: "benchmark done".into(),
                ..Default::default()
            };
            // Older servers do not know the call; the polls are gone anyway.
            let _ = self.shared.pool.get().shutdown_worker(request(req, Duration::from_secs(5))).await;
        }
    }
}

impl Shared {
    fn sticky_task_queue(&self) -> TaskQueue {
        TaskQueue {
            name: self.sticky_queue.clone(),
            kind: TaskQueueKind::Sticky as i32,
            normal_name: self.config.task_queue.clone(),
        }
    }

    fn count(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn log_error(&self, what: &str, detail: &dyn std::fmt::Display) {
        if self.logged_errors.fetch_add(1, Ordering::Relaxed) < MAX_LOGGED_ERRORS {
            eprintln!("worker: {what}: {detail}");
        }
    }

    fn cache_take(&self, run_id: &str) -> Option<RunView> {
        self.cache.lock().unwrap().remove(run_id)
    }

    fn cache_put(&self, run_id: String, view: RunView) {
        if self.config.cache_size == 0 {
            return;
        }
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= self.config.cache_size
            && let Some(victim) = cache.keys().next().cloned()
        {
            cache.remove(&victim);
        }
        cache.insert(run_id, view);
    }
}

async fn workflow_poller(shared: Arc<Shared>, queue: TaskQueue, sticky: bool) {
    loop {
        let mut client = shared.pool.get();
        let req = PollWorkflowTaskQueueRequest {
            namespace: shared.config.namespace.clone(),
            task_queue: Some(queue.clone()),
            identity: shared.config.identity.clone(),
            ..Default::default()
        };
        match client.poll_workflow_task_queue(request(req, POLL_TIMEOUT)).await {
            Ok(response) => {
                let response = response.into_inner();
                if response.task_token.is_empty() {
                    shared.count(&shared.counters.empty_polls, 1);
                    continue;
                }
                shared.count(&shared.counters.workflow_tasks, 1);
                if sticky {
                    shared.count(&shared.counters.sticky_queue_tasks, 1);
                }
                handle_workflow_task(&shared, client, response).await;
            }
            Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
                shared.count(&shared.counters.empty_polls, 1);
            }
            Err(status) => {
                shared.count(&shared.counters.poll_errors, 1);
                shared.log_error("workflow task poll", &status);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Pages of a run's history from `token` on (all of it for an empty token), up to `last_event_id`;
/// `count_pages` counts them as further pages of a poll response.
async fn fetch_history(
    shared: &Shared,
    client: &mut Client,
    execution: &WorkflowExecution,
    mut token: Vec<u8>,
    last_event_id: i64,
    count_pages: bool,
) -> Result<Vec<HistoryEvent>, tonic::Status> {
    let mut events = Vec::new();
    loop {
        let req = GetWorkflowExecutionHistoryRequest {
            namespace: shared.config.namespace.clone(),
            execution: Some(execution.clone()),
            next_page_token: token,
            ..Default::default()
        };
        let response = client.get_workflow_execution_history(request(req, CALL_TIMEOUT)).await?.into_inner();
        shared.count(&shared.counters.history_bytes, response.encoded_len() as u64);
        if count_pages {
            shared.count(&shared.counters.history_pages, 1);
        }
        events.extend(response.history.map(|h| h.events).unwrap_or_default());
        token = response.next_page_token;
        if token.is_empty() || events.last().is_some_and(|e| e.event_id >= last_event_id) {
            break;
        }
    }
    events.retain(|e| e.event_id <= last_event_id);
    Ok(events)
}

async fn handle_workflow_task(shared: &Shared, mut client: Client, mut task: PollWorkflowTaskQueueResponse) {
    shared.count(&shared.counters.history_bytes, task.encoded_len() as u64);
    let execution = task.workflow_execution.clone().unwrap_or_default();
    let started = task.started_event_id;
    let mut events = task.history.take().map(|h| h.events).unwrap_or_default();
    if !task.next_page_token.is_empty() {
        let token = std::mem::take(&mut task.next_page_token);
        match fetch_history(shared, &mut client, &execution, token, started, true).await {
            Ok(more) => events.extend(more),
            Err(status) => {
                shared.count(&shared.counters.workflow_task_errors, 1);
                shared.log_error("history page of a workflow task", &status);
                return;
            }
        }
    }
    if started > 0 {
        events.retain(|e| e.event_id <= started);
    }
    shared.count(&shared.counters.history_events, events.len() as u64);

    let view = match history::merge(shared.cache_take(&execution.run_id), &events) {
        Ok((view, HistoryKind::Full)) => {
            shared.count(&shared.counters.full_histories, 1);
            view
        }
        Ok((view, HistoryKind::Partial)) => {
            shared.count(&shared.counters.partial_histories, 1);
            view
        }
        Err(_) => {
            shared.count(&shared.counters.cache_misses, 1);
            let full = fetch_history(shared, &mut client, &execution, Vec::new(), started, false).await;
            match full.map_err(|s| s.to_string()).and_then(|e| RunView::from_full(&e).map_err(|e| e.to_string())) {
                Ok(view) => view,
                Err(e) => {
                    shared.count(&shared.counters.workflow_task_errors, 1);
                    shared.log_error("full history after a cache miss", &e);
                    return;
                }
            }
        }
    };

    let decision = history::decide(&view);
    // Marked before the completion goes out: the driver may see the run's result before this
    // call returns.
    record_progress(shared, &execution.workflow_id, &view, &decision);
    let req = RespondWorkflowTaskCompletedRequest {
        task_token: task.task_token,
        commands: history::commands(&decision, &shared.config.task_queue),
        identity: shared.config.identity.clone(),
        namespace: shared.config.namespace.clone(),
        sticky_attributes: shared.config.sticky.then(|| StickyExecutionAttributes {
            worker_task_queue: Some(shared.sticky_task_queue()),
            schedule_to_start_timeout: Some(history::duration(STICKY_SCHEDULE_TO_START)),
        }),
        ..Default::default()
    };
    match client.respond_workflow_task_completed(request(req, CALL_TIMEOUT)).await {
        Ok(_) => {
            if let Decision::StartTimer { .. } = decision {
                shared.count(&shared.counters.timers_started, 1);
                if let Some(permits) = &shared.config.timer_permits {
                    permits.add_permits(1);
                }
            }
            if !decision.closes() {
                shared.cache_put(execution.run_id, view);
            }
        }
        Err(status) => {
            shared.count(&shared.counters.workflow_task_errors, 1);
            shared.log_error("workflow task completion", &status);
        }
    }
}

/// Marks the start of each activity round (and the end) of long-history runs: when the worker
/// decided to schedule activity i (mark i), and when it decided to complete (the last mark).
fn record_progress(shared: &Shared, workflow_id: &str, view: &RunView, decision: &Decision) {
    if Workload::from_workflow_type(&view.workflow_type) != Some(Workload::LongHistory) {
        return;
    }
    let round = match decision {
        Decision::ScheduleActivity { index } => *index as usize,
        Decision::Complete { .. } => view.scheduled as usize,
        _ => return,
    };
    let mut progress = shared.progress.lock().unwrap();
    let marks = progress.entry(workflow_id.to_string()).or_default();
    if marks.len() == round {
        marks.push(Instant::now());
    }
}

async fn activity_poller(shared: Arc<Shared>, queue: TaskQueue) {
    loop {
        let mut client = shared.pool.get();
        let req = PollActivityTaskQueueRequest {
            namespace: shared.config.namespace.clone(),
            task_queue: Some(queue.clone()),
            identity: shared.config.identity.clone(),
            ..Default::default()
        };
        match client.poll_activity_task_queue(request(req, POLL_TIMEOUT)).await {
            Ok(response) => {
                let task = response.into_inner();
                if task.task_token.is_empty() {
                    shared.count(&shared.counters.empty_polls, 1);
                    continue;
                }
                let req = RespondActivityTaskCompletedRequest {
                    task_token: task.task_token,
                    result: task.input,
                    identity: shared.config.identity.clone(),
                    namespace: shared.config.namespace.clone(),
                    ..Default::default()
                };
                match client.respond_activity_task_completed(request(req, CALL_TIMEOUT)).await {
                    Ok(_) => shared.count(&shared.counters.activity_tasks, 1),
                    Err(status) => {
                        shared.count(&shared.counters.activity_errors, 1);
                        shared.log_error("activity completion", &status);
                    }
                }
            }
            Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
                shared.count(&shared.counters.empty_polls, 1);
            }
            Err(status) => {
                shared.count(&shared.counters.poll_errors, 1);
                shared.log_error("activity task poll", &status);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
