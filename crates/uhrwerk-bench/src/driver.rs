//! The starter side and the measurement: for each workload, a warm-up, a phase at concurrency 1
//! and a phase at saturation (or the long-history runs), each workflow started, signalled if its
//! workload says so, and awaited through the close-event long poll; server CPU and memory from
//! /proc around each phase.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use temporalio_protos::temporal::api::common::v1::{WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::{HistoryEventFilterType, TaskQueueKind};
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    GetWorkflowExecutionHistoryRequest, SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
};

use crate::client::{Pool, request, transient};
use crate::history::{self, check_close};
use crate::procfs::{self, Memory};
use crate::stats::{self, Summary};
use crate::worker::{Worker, WorkerConfig, WorkerStats};
use crate::workload::{self, Spec, Workload};

/// Deadline of one close-event long poll; servers answer empty before it and the driver asks again.
const RESULT_POLL_TIMEOUT: Duration = Duration::from_secs(70);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Failures printed on stderr per phase; the rest are only counted.
const MAX_LOGGED_FAILURES: usize = 5;

/// What to run, the same against every server.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub namespace: String,
    pub workloads: Vec<Workload>,
    /// Workflows in the saturation phase, and how many are in flight at once.
    pub workflows: usize,
    pub concurrency: usize,
    /// Workflows run one at a time.
    pub sequential: usize,
    /// A measured phase starts no more workflows after this many seconds (0: no limit).
    pub max_seconds: u64,
    /// Unmeasured workflows before each workload.
    pub warmup: usize,
    pub timer_ms: u64,
    pub long_history_activities: u32,
    pub long_history_runs: usize,
    /// How long one workflow may take from start to result before it counts as failed.
    pub timeout_s: u64,
    pub long_history_timeout_s: u64,
    pub sticky: bool,
    pub workflow_pollers: usize,
    pub activity_pollers: usize,
    pub cache_size: usize,
    pub connections: usize,
    /// The timer each `open-timers` workflow waits on, in seconds.
    pub timer_seconds: u64,
    /// Workflows the Temporal dev server gets in `open-timers` (at most `workflows`; 0 skips it).
    pub temporal_workflows: usize,
    /// Seconds without load before `open-timers` reads memory (idle, loaded, after a restart).
    pub settle_seconds: u64,
    /// Starts on a fresh empty database for the ready time and idle memory (`open-timers`).
    pub fresh_starts: usize,
}

impl Settings {
    /// The workloads of the capacity run ([`run_target`]): all but `open-timers`.
    pub fn capacity_workloads(&self) -> Vec<Workload> {
        self.workloads.iter().copied().filter(|w| *w != Workload::OpenTimers).collect()
    }

    pub fn open_timers(&self) -> bool {
        self.workloads.contains(&Workload::OpenTimers)
    }
}

/// The server under test.
#[derive(Clone, Debug)]
pub struct Target {
    pub label: String,
    pub address: String,
    pub pid: Option<u32>,
    pub version: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServerReport {
    pub label: String,
    pub address: String,
    pub version: String,
    pub pid: Option<u32>,
    /// `/proc/loadavg` (1, 5, 15 minutes) just before the first workload.
    pub loadavg_before: String,
    pub workloads: Vec<WorkloadReport>,
    /// Failed workflows over every phase, warm-up included.
    pub failures: usize,
    /// Worker counts over the whole session.
    pub worker: WorkerStats,
    pub memory_end: Option<Memory>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    pub workload: Workload,
    pub warmup_failures: usize,
    pub sequential: Option<PhaseReport>,
    pub saturation: Option<PhaseReport>,
    pub long_history: Option<LongHistoryReport>,
}

/// Resource use of the processes during a phase.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Usage {
    pub wall_s: f64,
    /// Server CPU seconds (user + system) during the phase; `None` without a known pid.
    pub server_cpu_s: Option<f64>,
    /// Driver (starter + worker) CPU seconds.
    pub driver_cpu_s: f64,
    /// CPU seconds of everything else on the machine: other load that distorts the figures.
    pub other_cpu_s: f64,
    /// Server memory at the end of the phase (the peak is over the server's whole life).
    pub server_memory: Option<Memory>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    pub concurrency: usize,
    /// Workflows run (fewer than asked for when the phase hit `max_seconds`).
    pub workflows: usize,
    pub failures: usize,
    pub workflows_per_s: f64,
    /// Start to result, successful workflows only.
    pub latency_ms: Summary,
    /// Latency minus the timer, for the timer workload.
    pub overhead_ms: Option<Summary>,
    pub server_cpu_s_per_1000: Option<f64>,
    pub usage: Usage,
    pub worker: WorkerStats,
}

#[derive(Clone, Debug, Serialize)]
pub struct LongHistoryReport {
    pub runs: usize,
    pub activities_per_run: u32,
    pub failures: usize,
    /// Rounds in each window (100, fewer for shorter runs).
    pub window: usize,
    /// Mean time per activity round over the first and the last window, averaged over the runs.
    pub first_ms_per_activity: Option<f64>,
    pub last_ms_per_activity: Option<f64>,
    pub last_over_first: Option<f64>,
    /// Events in each run's history, its close event included.
    pub events_per_run: i64,
    pub server_cpu_ms_per_activity: Option<f64>,
    pub usage: Usage,
    pub worker: WorkerStats,
}

/// Starts workflows and waits for their results.
pub(crate) struct Starter {
    pub(crate) pool: Arc<Pool>,
    pub(crate) namespace: String,
    pub(crate) task_queue: String,
    pub(crate) identity: String,
    pub(crate) prefix: String,
}

struct Session {
    starter: Arc<Starter>,
    worker: Worker,
    settings: Settings,
    pid: Option<u32>,
}

/// Runs every workload of `settings` against `target` with a fresh worker and task queue.
pub async fn run_target(target: &Target, settings: &Settings) -> anyhow::Result<ServerReport> {
    let pool = Arc::new(Pool::connect(&target.address, settings.connections).await?);
    let session_id = format!("{}-{:x}", std::process::id(), unique_nanos());
    let task_queue = format!("uhrwerk-bench-{session_id}");
    let identity = format!("{}@{}", std::process::id(), hostname());
    let worker = Worker::start(
        pool.clone(),
        WorkerConfig {
            namespace: settings.namespace.clone(),
            task_queue: task_queue.clone(),
            identity: identity.clone(),
            sticky: settings.sticky,
            workflow_pollers: settings.workflow_pollers,
            activity_pollers: settings.activity_pollers,
            cache_size: settings.cache_size,
            timer_permits: None,
        },
    );
    let starter = Arc::new(Starter {
        pool,
        namespace: settings.namespace.clone(),
        task_queue,
        identity,
        prefix: format!("bench-{session_id}"),
    });
    let session = Session { starter, worker, settings: settings.clone(), pid: target.pid };
    let loadavg_before = procfs::loadavg();
    eprintln!("[{}] {} at {} (load average {loadavg_before})", target.label, target.version, target.address);

    let mut workloads = Vec::new();
    let mut failures = 0;
    for workload in settings.capacity_workloads() {
        let report = session.run_workload(&target.label, workload).await;
        failures += report.warmup_failures
            + report.sequential.as_ref().map_or(0, |p| p.failures)
            + report.saturation.as_ref().map_or(0, |p| p.failures)
            + report.long_history.as_ref().map_or(0, |p| p.failures);
        workloads.push(report);
    }
    let worker = session.worker.stats();
    session.worker.shutdown().await;
    Ok(ServerReport {
        label: target.label.clone(),
        address: target.address.clone(),
        version: target.version.clone(),
        pid: target.pid,
        loadavg_before,
        workloads,
        failures,
        worker,
        memory_end: target.pid.and_then(|pid| procfs::memory(pid).ok()),
    })
}

impl Session {
    async fn run_workload(&self, label: &str, workload: Workload) -> WorkloadReport {
        let s = &self.settings;
        let spec = Spec::for_workload(workload, s.long_history_activities, s.timer_ms);
        let mut report =
            WorkloadReport { workload, warmup_failures: 0, sequential: None, saturation: None, long_history: None };
        if workload == Workload::LongHistory {
            eprintln!(
                "[{label}] {}: {} run(s) of {} activities",
                workload.name(),
                s.long_history_runs,
                s.long_history_activities
            );
            report.long_history = Some(self.long_history(workload, spec).await);
            return report;
        }
        if s.warmup > 0 {
            eprintln!("[{label}] {}: warm-up, {} workflows", workload.name(), s.warmup);
            let results = self.phase(workload, spec, "warmup", s.warmup, s.warmup.min(s.concurrency), None).await;
            report.warmup_failures = results.iter().filter(|r| r.is_err()).count();
        }
        if s.sequential > 0 {
            eprintln!("[{label}] {}: {} workflows one at a time", workload.name(), s.sequential);
            report.sequential = Some(self.measured_phase(workload, spec, "seq", s.sequential, 1).await);
        }
        if s.workflows > 0 {
            eprintln!("[{label}] {}: {} workflows, {} in flight", workload.name(), s.workflows, s.concurrency);
            report.saturation = Some(self.measured_phase(workload, spec, "sat", s.workflows, s.concurrency).await);
        }
        for phase in [&report.sequential, &report.saturation].into_iter().flatten() {
            eprintln!(
                "[{label}] {}: concurrency {}: {:.1} workflows/s, p50 {:.1} ms, p99 {:.1} ms, {} failed",
                workload.name(),
                phase.concurrency,
                phase.workflows_per_s,
                phase.latency_ms.p50,
                phase.latency_ms.p99,
                phase.failures
            );
        }
        report
    }

    async fn measured_phase(
        &self,
        workload: Workload,
        spec: Spec,
        phase: &str,
        count: usize,
        concurrency: usize,
    ) -> PhaseReport {
        let limit = (self.settings.max_seconds > 0).then(|| Duration::from_secs(self.settings.max_seconds));
        let run = self.phase(workload, spec, phase, count, concurrency, limit);
        let (results, usage, worker) = self.measure(run).await;
        let count = results.len();
        let latencies: Vec<Duration> = results.iter().filter_map(|r| r.as_ref().ok().map(|(d, _)| *d)).collect();
        let failures = results.len() - latencies.len();
        let latency_ms = Summary::of(&latencies);
        PhaseReport {
            concurrency,
            workflows: count,
            failures,
            workflows_per_s: if usage.wall_s > 0.0 { latencies.len() as f64 / usage.wall_s } else { 0.0 },
            latency_ms,
            overhead_ms: (spec.timer_ms > 0).then(|| latency_ms.minus(spec.timer_ms as f64)),
            server_cpu_s_per_1000: usage.server_cpu_s.filter(|_| count > 0).map(|cpu| cpu / count as f64 * 1000.0),
            usage,
            worker,
        }
    }

    async fn long_history(&self, workload: Workload, spec: Spec) -> LongHistoryReport {
        let s = &self.settings;
        let runs = s.long_history_runs;
        let timeout = Duration::from_secs(s.long_history_timeout_s);
        let starter = self.starter.clone();
        let run = async {
            let mut tasks = Vec::new();
            for i in 0..runs {
                let starter = starter.clone();
                let workflow_id = format!("{}-{}-{i}", starter.prefix, workload.name());
                tasks.push(tokio::spawn(async move {
                    let result = starter.run_one(workload, spec, &workflow_id, timeout).await;
                    (workflow_id, result)
                }));
            }
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.expect("workflow task panicked"));
            }
            results
        };
        let (results, usage, worker) = self.measure(run).await;
        let window = 100.min(spec.activities as usize);
        let mut firsts = Vec::new();
        let mut lasts = Vec::new();
        let mut failures = 0;
        let mut events_per_run = 0;
        for (workflow_id, result) in results {
            let marks = self.worker.take_progress(&workflow_id);
            match result {
                Ok((_, events)) => {
                    events_per_run = events;
                    if let Some((first, last)) = stats::round_costs_ms(&marks, window) {
                        firsts.push(first);
                        lasts.push(last);
                    }
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("  {workflow_id}: {e}");
                }
            }
        }
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let (first, last) = (mean(&firsts), mean(&lasts));
        let activities = (spec.activities as usize * runs) as f64;
        let report = LongHistoryReport {
            runs,
            activities_per_run: spec.activities,
            failures,
            window,
            first_ms_per_activity: first,
            last_ms_per_activity: last,
            last_over_first: first.zip(last).map(|(f, l)| l / f),
            events_per_run,
            server_cpu_ms_per_activity: usage.server_cpu_s.map(|cpu| cpu * 1000.0 / activities),
            usage,
            worker,
        };
        eprintln!(
            "  per activity: first {window} {:.2} ms, last {window} {:.2} ms, {:.1} s in all, {failures} failed",
            first.unwrap_or(f64::NAN),
            last.unwrap_or(f64::NAN),
            usage.wall_s
        );
        report
    }

    /// Runs `work` and measures the processes around it.
    async fn measure<T>(&self, work: impl Future<Output = T>) -> (T, Usage, WorkerStats) {
        let server_before = self.pid.and_then(|pid| procfs::cpu_seconds(pid).ok());
        let driver_before = procfs::own_cpu_seconds();
        let machine_before = procfs::machine_busy_seconds();
        let worker_before = self.worker.stats();
        let started = Instant::now();
        let out = work.await;
        let wall_s = started.elapsed().as_secs_f64();
        let server_cpu_s = self
            .pid
            .and_then(|pid| procfs::cpu_seconds(pid).ok())
            .zip(server_before)
            .map(|(after, before)| after - before);
        let driver_cpu_s = procfs::own_cpu_seconds() - driver_before;
        let machine_s = procfs::machine_busy_seconds() - machine_before;
        let other_cpu_s = (machine_s - driver_cpu_s - server_cpu_s.unwrap_or(0.0)).max(0.0);
        let usage = Usage {
            wall_s,
            server_cpu_s,
            driver_cpu_s,
            other_cpu_s,
            server_memory: self.pid.and_then(|pid| procfs::memory(pid).ok()),
        };
        (out, usage, self.worker.stats().since(&worker_before))
    }

    /// Runs `count` workflows of `workload`, `concurrency` at a time (each worker of the phase
    /// starts the next one as soon as its last one has its result); after `limit` no more start.
    async fn phase(
        &self,
        workload: Workload,
        spec: Spec,
        phase: &str,
        count: usize,
        concurrency: usize,
        limit: Option<Duration>,
    ) -> Vec<Result<(Duration, i64), String>> {
        let stop_at = limit.map(|limit| Instant::now() + limit);
        let next = Arc::new(AtomicUsize::new(0));
        let results = Arc::new(Mutex::new(Vec::with_capacity(count)));
        let logged = Arc::new(AtomicUsize::new(0));
        let timeout = Duration::from_secs(self.settings.timeout_s);
        let mut tasks = Vec::new();
        for _ in 0..concurrency.clamp(1, count.max(1)) {
            let (next, results, logged) = (next.clone(), results.clone(), logged.clone());
            let starter = self.starter.clone();
            let prefix = format!("{}-{}-{phase}", starter.prefix, workload.name());
            tasks.push(tokio::spawn(async move {
                loop {
                    if stop_at.is_some_and(|t| Instant::now() >= t) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let workflow_id = format!("{prefix}-{i}");
                    let result = starter.run_one(workload, spec, &workflow_id, timeout).await;
                    if let Err(e) = &result
                        && logged.fetch_add(1, Ordering::Relaxed) < MAX_LOGGED_FAILURES
                    {
                        eprintln!("  {workflow_id}: {e}");
                    }
                    results.lock().unwrap().push(result);
                }
            }));
        }
        for task in tasks {
            task.await.expect("starter task panicked");
        }
        std::mem::take(&mut *results.lock().unwrap())
    }
}

impl Starter {
    /// Starts one workflow, signals it if its spec waits for a signal, waits for its close event
    /// and checks the result. The latency and the id of the close event (the history length).
    pub(crate) async fn run_one(
        &self,
        workload: Workload,
        spec: Spec,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<(Duration, i64), String> {
        let started = Instant::now();
        let deadline = started + timeout;
        let start = StartWorkflowExecutionRequest {
            namespace: self.namespace.clone(),
            workflow_id: workflow_id.to_string(),
            workflow_type: Some(WorkflowType { name: workload.workflow_type() }),
            task_queue: Some(TaskQueue {
                name: self.task_queue.clone(),
                kind: TaskQueueKind::Normal as i32,
                ..Default::default()
            }),
            input: Some(spec.to_payloads()),
            workflow_task_timeout: Some(history::duration(Duration::from_secs(10))),
            identity: self.identity.clone(),
            request_id: format!("{workflow_id}-start"),
            ..Default::default()
        };
        let run_id = with_retries(deadline, || {
            let mut client = self.pool.get();
            let req = request(start.clone(), CALL_TIMEOUT);
            async move { client.start_workflow_execution(req).await }
        })
        .await
        .map_err(|s| format!("start: {s}"))?
        .into_inner()
        .run_id;
        let execution = WorkflowExecution { workflow_id: workflow_id.to_string(), run_id };
        if spec.signal {
            let signal = SignalWorkflowExecutionRequest {
                namespace: self.namespace.clone(),
                workflow_execution: Some(execution.clone()),
                signal_name: workload::SIGNAL_NAME.to_string(),
                input: Some(workload::json_payloads(&workload::signal_value(workflow_id).into())),
                identity: self.identity.clone(),
                request_id: format!("{workflow_id}-signal"),
                ..Default::default()
            };
            with_retries(deadline, || {
                let mut client = self.pool.get();
                let req = request(signal.clone(), CALL_TIMEOUT);
                async move { client.signal_workflow_execution(req).await }
            })
            .await
            .map_err(|s| format!("signal: {s}"))?;
        }
        let close = self.wait_close(&execution, deadline).await?;
        let latency = started.elapsed();
        check_close(&close, &workload::expected_result(workload, spec, workflow_id))?;
        Ok((latency, close.event_id))
    }

    /// The run's close event, by long polls on its history (the SDKs' `result()`).
    async fn wait_close(&self, execution: &WorkflowExecution, deadline: Instant) -> Result<HistoryEvent, String> {
        let mut token = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no result before the timeout".into());
            }
            let req = GetWorkflowExecutionHistoryRequest {
                namespace: self.namespace.clone(),
                execution: Some(execution.clone()),
                next_page_token: token.clone(),
                wait_new_event: true,
                history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                skip_archival: true,
                ..Default::default()
            };
            let mut client = self.pool.get();
            match client.get_workflow_execution_history(request(req, RESULT_POLL_TIMEOUT.min(left))).await {
                Ok(response) => {
                    let response = response.into_inner();
                    if let Some(event) = response.history.and_then(|h| h.events.into_iter().last()) {
                        return Ok(event);
                    }
                    token = response.next_page_token;
                }
                Err(status) if status.code() == tonic::Code::DeadlineExceeded => {}
                Err(status) if transient(&status) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(status) => return Err(format!("result: {status}")),
            }
        }
    }
}

/// Repeats `call` while it fails with a transient error, with a growing pause, until `deadline`.
pub(crate) async fn with_retries<T, F, Fut>(deadline: Instant, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let mut pause = Duration::from_millis(50);
    loop {
        match call().await {
            Err(status) if transient(&status) && Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

pub(crate) fn unique_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "host".into())
}
