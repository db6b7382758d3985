//! The `open-timers` workload: memory per open workflow and restart time. On a server the
//! driver started (so it knows the pid and the database file): a few starts on empty databases
//! for the ready time and idle memory; then N workflows that each start one long timer and stay
//! open waiting on it, memory and database size before and after; then a restart after SIGTERM
//! and one after SIGKILL on the same database, timed from the process start until GetSystemInfo
//! answers, with the timers Uhrwerk's banner says it armed, and memory after each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use temporalio_protos::temporal::api::common::v1::WorkflowType;
use temporalio_protos::temporal::api::enums::v1::TaskQueueKind;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;
use tokio::sync::Semaphore;

use crate::client::{Pool, request};
use crate::driver::{self, Settings};
use crate::history;
use crate::procfs::{self, Memory};
use crate::server::{ServerKind, ServerProcess, Stop};
use crate::stats::{self, Summary};
use crate::worker::{Worker, WorkerConfig};
use crate::workload::{Spec, Workload};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed starts printed on stderr; the rest are only counted.
const MAX_LOGGED_FAILURES: usize = 5;
/// How long Uhrwerk's banner may take to reach its log after the server answered.
const BANNER_WAIT: Duration = Duration::from_secs(10);
/// Progress lines: one every 5 % of the workflows.
const PROGRESS_STEPS: usize = 20;

/// What Uhrwerk's banner line `recovered: X open runs, Y queued tasks, Z timers` says it
/// loaded before it started serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Recovered {
    pub open_runs: u64,
    pub queued_tasks: u64,
    pub timers: u64,
}

/// The last well-formed `recovered:` line of a server's output.
pub fn parse_recovered(log: &str) -> Option<Recovered> {
    log.lines().rev().find_map(|line| {
        let rest = line.split_once("recovered:")?.1;
        let (mut runs, mut tasks, mut timers) = (None, None, None);
        for part in rest.split(',') {
            let (number, what) = part.trim().split_once(' ')?;
            let number: u64 = number.parse().ok()?;
            match what.trim() {
                "open runs" => runs = Some(number),
                "queued tasks" => tasks = Some(number),
                "timers" => timers = Some(number),
                _ => return None,
            }
        }
        Some(Recovered { open_runs: runs?, queued_tasks: tasks?, timers: timers? })
    })
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `(after − before) × 1024 ÷ n`: bytes per item from two kB figures; `None` for no items.
pub fn bytes_per(before_kb: u64, after_kb: u64, n: usize) -> Option<f64> {
    (n > 0).then(|| (after_kb as f64 - before_kb as f64) * 1024.0 / n as f64)
}

/// Server memory and the size of its database at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Snapshot {
    pub memory: Option<Memory>,
    /// The database file and its write-ahead log, in bytes.
    pub db_bytes: u64,
    pub wal_bytes: u64,
}

impl Snapshot {
    fn take(pid: Option<u32>, db: &Path) -> Snapshot {
        Snapshot {
            memory: pid.and_then(|pid| procfs::memory(pid).ok()),
            db_bytes: file_len(db),
            wal_bytes: file_len(&with_suffix(db, "-wal")),
        }
    }

    pub fn db_and_wal(&self) -> u64 {
        self.db_bytes + self.wal_bytes
    }
}

/// Starts on fresh, empty databases.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FreshStarts {
    /// From the process start until GetSystemInfo answered, each start.
    pub ready_ms: Vec<f64>,
    pub best_ready_ms: f64,
    pub median_ready_ms: f64,
    /// RSS right after each start answered, in kB.
    pub rss_at_ready_kb: Vec<u64>,
    pub median_rss_at_ready_kb: u64,
}

/// One restart on the database with the open workflows.
#[derive(Clone, Debug, Serialize)]
pub struct Restart {
    /// How the previous process was ended: `SIGTERM` or `SIGKILL`.
    pub signal: &'static str,
    /// From the signal until the process was gone.
    pub stop_ms: f64,
    /// The database files the new process found (no memory: nothing runs).
    pub found: Snapshot,
    /// From the new process's start until GetSystemInfo answered.
    pub ready_ms: f64,
    /// Uhrwerk's banner; `None` for the dev server, which prints none.
    pub recovered: Option<Recovered>,
    /// Whether the banner named as many armed timers as workflows were waiting.
    pub timers_match: Option<bool>,
    pub memory_at_ready: Option<Memory>,
    /// After `settle_seconds` without load.
    pub memory_settled: Option<Memory>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct OpenTimersReport {
    pub label: String,
    pub version: String,
    /// The workload did not run on this server (see `note`).
    pub skipped: bool,
    pub note: Option<String>,
    pub loadavg_before: String,
    /// Workflows started (asked for).
    pub workflows: usize,
    pub timer_seconds: u64,
    pub settle_seconds: u64,
    pub fresh: Option<FreshStarts>,
    /// Started, answered, settled, nothing run yet.
    pub idle: Snapshot,
    /// Workflows whose first workflow task completed with the StartTimer command.
    pub waiting: usize,
    /// Workflows that did not get there (start failed, or no timer before the stall timeout).
    pub failures: usize,
    /// From the first start until the last workflow was waiting.
    pub start_wall_s: f64,
    pub workflows_per_s: f64,
    /// The StartWorkflowExecution calls (retries included).
    pub start_latency_ms: Summary,
    pub server_cpu_s_per_1000: Option<f64>,
    pub driver_cpu_s: f64,
    /// CPU of every other process on the machine during the starts.
    pub other_cpu_s: f64,
    /// Server CPU while settling before `loaded` was read (near 0: the server was idle).
    pub settle_server_cpu_s: Option<f64>,
    /// Every workflow waiting, settled.
    pub loaded: Snapshot,
    /// (loaded − idle) ÷ waiting.
    pub rss_bytes_per_workflow: Option<f64>,
    pub anon_bytes_per_workflow: Option<f64>,
    pub db_bytes_per_workflow: Option<f64>,
    pub restarts: Vec<Restart>,
}

impl OpenTimersReport {
    pub fn skipped(label: &str, settings: &Settings, note: String) -> OpenTimersReport {
        OpenTimersReport {
            label: label.to_string(),
            skipped: true,
            note: Some(note),
            loadavg_before: procfs::loadavg(),
            timer_seconds: settings.timer_seconds,
            settle_seconds: settings.settle_seconds,
            ..Default::default()
        }
    }

    /// Workflows that did not reach their timer, and restarts that armed a different number of
    /// timers than there were workflows waiting.
    pub fn failures(&self) -> usize {
        self.failures + self.restarts.iter().filter(|r| r.timers_match == Some(false)).count()
    }
}

/// The server binary to start and where its databases and logs go.
pub struct ServerSpec<'a> {
    pub kind: ServerKind,
    pub bin: &'a Path,
    pub dir: &'a Path,
    pub ready_timeout: Duration,
}

/// Runs the workload on fresh servers of `server.kind` with `workflows` open workflows.
pub async fn run(server: &ServerSpec<'_>, settings: &Settings, workflows: usize) -> anyhow::Result<OpenTimersReport> {
    let label = server.kind.label();
    let settle = Duration::from_secs(settings.settle_seconds);
    let mut report = OpenTimersReport {
        label: label.to_string(),
        loadavg_before: procfs::loadavg(),
        workflows,
        timer_seconds: settings.timer_seconds,
        settle_seconds: settings.settle_seconds,
        ..Default::default()
    };
    eprintln!("[{label}] open-timers: load average {}", report.loadavg_before);
    if settings.fresh_starts > 0 {
        eprintln!("[{label}] open-timers: {} starts on empty databases", settings.fresh_starts);
        report.fresh = Some(fresh_starts(server, settings.fresh_starts).await?);
    }

    let db = server.dir.join(format!("{label}-open-timers.db"));
    let log = server.dir.join(format!("{label}-open-timers.log"));
    let mut process = ServerProcess::start(server.kind, server.bin, &db, &log)?;
    process.wait_answer(server.ready_timeout).await?;
    let version = process.wait_ready(&settings.namespace, server.ready_timeout).await?;
    eprintln!("[{label}] {version} at {}: settling {} s before reading idle memory", process.address, settle.as_secs());
    report.version = version;
    tokio::time::sleep(settle).await;
    report.idle = Snapshot::take(Some(process.pid), &db);

    open_workflows(&process, settings, workflows, &mut report).await?;

    eprintln!("[{label}] open-timers: settling {} s", settle.as_secs());
    let cpu_before = procfs::cpu_seconds(process.pid).ok();
    tokio::time::sleep(settle).await;
    report.settle_server_cpu_s = procfs::cpu_seconds(process.pid).ok().zip(cpu_before).map(|(a, b)| a - b);
    report.loaded = Snapshot::take(Some(process.pid), &db);
    let (idle, loaded) = (report.idle, report.loaded);
    if let (Some(before), Some(after)) = (idle.memory, loaded.memory) {
        report.rss_bytes_per_workflow = bytes_per(before.rss_kb, after.rss_kb, report.waiting);
        report.anon_bytes_per_workflow = bytes_per(before.anon_kb, after.anon_kb, report.waiting);
    }
    report.db_bytes_per_workflow =
        (report.waiting > 0).then(|| (loaded.db_and_wal() as f64 - idle.db_and_wal() as f64) / report.waiting as f64);
    eprintln!(
        "[{label}] open-timers: {} waiting; RSS {:.1} → {:.1} MiB, {:.0} bytes per open workflow; database + WAL {:.1} MiB",
        thousands(report.waiting),
        idle.memory.map_or(f64::NAN, |m| m.rss_kb as f64 / 1024.0),
        loaded.memory.map_or(f64::NAN, |m| m.rss_kb as f64 / 1024.0),
        report.rss_bytes_per_workflow.unwrap_or(f64::NAN),
        loaded.db_and_wal() as f64 / 1024.0 / 1024.0
    );

    for how in [Stop::Term, Stop::Kill] {
        let stop_ms = process.terminate(how).await?.as_secs_f64() * 1000.0;
        let found = Snapshot::take(None, &db);
        let log = server.dir.join(format!("{label}-open-timers-after-{}.log", how.name().to_lowercase()));
        process = ServerProcess::start(server.kind, server.bin, &db, &log)?;
        let (ready, _) = process.wait_answer(server.ready_timeout).await?;
        let memory_at_ready = procfs::memory(process.pid).ok();
        let recovered = match server.kind {
            ServerKind::Uhrwerk => wait_banner(&log).await,
            ServerKind::Temporal => None,
        };
        let timers_match = recovered.map(|r| r.timers == report.waiting as u64);
        process.wait_ready(&settings.namespace, server.ready_timeout).await?;
        tokio::time::sleep(settle).await;
        let restart = Restart {
            signal: how.name(),
            stop_ms,
            found,
            ready_ms: ready.as_secs_f64() * 1000.0,
            recovered,
            timers_match,
            memory_at_ready,
            memory_settled: procfs::memory(process.pid).ok(),
        };
        eprintln!(
            "[{label}] open-timers: after {}: stopped in {stop_ms:.0} ms, answered {:.0} ms after its start{}",
            how.name(),
            restart.ready_ms,
            recovered.map_or(String::new(), |r| format!(
                " with {} open runs, {} queued tasks, {} timers armed",
                r.open_runs, r.queued_tasks, r.timers
            ))
        );
        if timers_match == Some(false) {
            eprintln!(
                "[{label}] open-timers: the server armed a different number of timers than workflows are waiting"
            );
        }
        report.restarts.push(restart);
    }
    process.stop().await?;
    Ok(report)
}

/// `count` starts, each on a new empty database that is deleted afterwards.
async fn fresh_starts(server: &ServerSpec<'_>, count: usize) -> anyhow::Result<FreshStarts> {
    let label = server.kind.label();
    let mut fresh = FreshStarts::default();
    for i in 0..count {
        let db = server.dir.join(format!("{label}-fresh-{i}.db"));
        let log = server.dir.join(format!("{label}-fresh.log"));
        let mut process = ServerProcess::start(server.kind, server.bin, &db, &log)?;
        let (ready, _) = process.wait_answer(server.ready_timeout).await?;
        let memory = procfs::memory(process.pid).ok();
        process.stop().await?;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(&db, suffix));
        }
        fresh.ready_ms.push(ready.as_secs_f64() * 1000.0);
        fresh.rss_at_ready_kb.push(memory.map_or(0, |m| m.rss_kb));
    }
    let mut ready = fresh.ready_ms.clone();
    ready.sort_by(f64::total_cmp);
    fresh.best_ready_ms = ready.first().copied().unwrap_or_default();
    fresh.median_ready_ms = stats::percentile(&ready, 50.0).unwrap_or_default();
    let mut rss = fresh.rss_at_ready_kb.clone();
    rss.sort_unstable();
    fresh.median_rss_at_ready_kb = rss.get(rss.len().saturating_sub(1) / 2).copied().unwrap_or_default();
    eprintln!(
        "[{label}] open-timers: empty server answered after {:.1} ms at best, {:.1} ms median; RSS then {:.1} MiB",
        fresh.best_ready_ms,
        fresh.median_ready_ms,
        fresh.median_rss_at_ready_kb as f64 / 1024.0
    );
    Ok(fresh)
}

/// Starts `n` workflows, at most `concurrency` of them not yet waiting on their timer, and
/// waits until every started one is; fills in the start phase of `report`.
async fn open_workflows(
    process: &ServerProcess,
    settings: &Settings,
    n: usize,
    report: &mut OpenTimersReport,
) -> anyhow::Result<()> {
    let label = process.kind.label();
    let pool = Arc::new(Pool::connect(&process.address, settings.connections).await?);
    let session = format!("{}-{:x}", std::process::id(), driver::unique_nanos());
    let task_queue = format!("uhrwerk-bench-open-timers-{session}");
    let identity = format!("{}@{}", std::process::id(), driver::hostname());
    let concurrency = settings.concurrency.clamp(1, n.max(1));
    let permits = Arc::new(Semaphore::new(concurrency));
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
            timer_permits: Some(permits.clone()),
        },
    );
    let spec = Spec::for_workload(Workload::OpenTimers, 0, settings.timer_seconds.saturating_mul(1000));
    let template = StartWorkflowExecutionRequest {
        namespace: settings.namespace.clone(),
        workflow_type: Some(WorkflowType { name: Workload::OpenTimers.workflow_type() }),
        task_queue: Some(TaskQueue { name: task_queue, kind: TaskQueueKind::Normal as i32, ..Default::default() }),
        input: Some(spec.to_payloads()),
        workflow_task_timeout: Some(history::duration(Duration::from_secs(10))),
        identity,
        ..Default::default()
    };
    let template = Arc::new(template);
    let prefix = format!("bench-{session}-open-timers");
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let timeout = Duration::from_secs(settings.timeout_s);
    eprintln!(
        "[{label}] open-timers: {} workflows, at most {concurrency} not yet waiting, timer {} s",
        thousands(n),
        settings.timer_seconds
    );

    let server_before = procfs::cpu_seconds(process.pid).ok();
    let driver_before = procfs::own_cpu_seconds();
    let machine_before = procfs::machine_busy_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (pool, permits, template) = (pool.clone(), permits.clone(), template.clone());
        let (next, failed, prefix) = (next.clone(), failed.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                // A permit per run not waiting yet; the worker gives it back when the run's timer
                // is started. None for `timeout`: the server stalls, stop starting.
                match tokio::time::timeout(timeout, permits.acquire()).await {
                    Ok(permit) => permit.expect("the permits are never closed").forget(),
                    Err(_) => break,
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    permits.add_permits(1);
                    break;
                }
                let workflow_id = format!("{prefix}-{i}");
                let start = StartWorkflowExecutionRequest {
                    workflow_id: workflow_id.clone(),
                    request_id: format!("{workflow_id}-start"),
                    ..(*template).clone()
                };
                let began = Instant::now();
                let result = driver::with_retries(began + timeout, || {
                    let mut client = pool.get();
                    let req = request(start.clone(), CALL_TIMEOUT);
                    async move { client.start_workflow_execution(req).await }
                })
                .await;
                match result {
                    Ok(_) => latencies.push(began.elapsed().as_secs_f64() * 1000.0),
                    Err(status) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < MAX_LOGGED_FAILURES {
                            eprintln!("  {workflow_id}: start: {status}");
                        }
                        permits.add_permits(1);
                    }
                }
            }
            latencies
        }));
    }

    let step = (n / PROGRESS_STEPS).max(1);
    let mut mark = step;
    let (mut mark_count, mut mark_time) = (0usize, t0);
    let (mut seen, mut seen_at) = (0usize, Instant::now());
    let waiting = loop {
        let waiting = worker.stats().timers_started as usize;
        let starting_done = tasks.iter().all(|t| t.is_finished());
        let all_there =
            starting_done && waiting + failed.load(Ordering::Relaxed) >= n.min(next.load(Ordering::Relaxed));
        if waiting >= mark || (all_there && waiting > mark_count) {
            let now = Instant::now();
            let recent = (waiting - mark_count) as f64 / now.duration_since(mark_time).as_secs_f64().max(1e-9);
            let overall = waiting as f64 / now.duration_since(t0).as_secs_f64().max(1e-9);
            let rss = procfs::memory(process.pid).map_or(f64::NAN, |m| m.rss_kb as f64 / 1024.0);
            eprintln!(
                "[{label}] open-timers: {} of {} waiting ({:.0} %), {recent:.0}/s since the last line, {overall:.0}/s \
                 overall, server RSS {rss:.1} MiB",
                thousands(waiting),
                thousands(n),
                waiting as f64 * 100.0 / n.max(1) as f64
            );
            (mark_count, mark_time) = (waiting, now);
            mark = (waiting / step + 1) * step;
        }
        if all_there {
            break waiting;
        }
        if waiting != seen {
            (seen, seen_at) = (waiting, Instant::now());
        } else if seen_at.elapsed() > timeout {
            eprintln!("[{label}] open-timers: no workflow reached its timer for {} s: giving up", timeout.as_secs());
            break waiting;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall_s = t0.elapsed().as_secs_f64();
    let server_cpu_s = procfs::cpu_seconds(process.pid).ok().zip(server_before).map(|(a, b)| a - b);
    let driver_cpu_s = procfs::own_cpu_seconds() - driver_before;
    let machine_s = procfs::machine_busy_seconds() - machine_before;

    let mut latencies = Vec::new();
    for task in tasks {
        task.abort();
        if let Ok(mut part) = task.await {
            latencies.append(&mut part);
        }
    }
    worker.shutdown().await;

    report.waiting = waiting;
    report.failures = n.saturating_sub(waiting);
    report.start_wall_s = wall_s;
    report.workflows_per_s = waiting as f64 / wall_s.max(1e-9);
    report.start_latency_ms = Summary::of_ms(&latencies);
    report.server_cpu_s_per_1000 = server_cpu_s.filter(|_| waiting > 0).map(|cpu| cpu / waiting as f64 * 1000.0);
    report.driver_cpu_s = driver_cpu_s;
    report.other_cpu_s = (machine_s - driver_cpu_s - server_cpu_s.unwrap_or(0.0)).max(0.0);
    eprintln!(
        "[{label}] open-timers: {} waiting after {wall_s:.1} s ({:.0}/s), {} failed; server CPU {:.1} s, driver {:.1} s, \
         other processes {:.1} s",
        thousands(waiting),
        report.workflows_per_s,
        report.failures,
        server_cpu_s.unwrap_or(f64::NAN),
        driver_cpu_s,
        report.other_cpu_s
    );
    Ok(())
}

/// Uhrwerk's `recovered:` banner line from `log`, once it is there (it follows the first answer
/// by a moment).
async fn wait_banner(log: &Path) -> Option<Recovered> {
    let deadline = Instant::now() + BANNER_WAIT;
    loop {
        let found = std::fs::read_to_string(log).ok().and_then(|text| parse_recovered(&text));
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recovered_banner_line_is_parsed() {
        let log = "Uhrwerk 0.1.0 (Temporal-compatible server)\n  gRPC frontend:  127.0.0.1:7233\n  \
                   recovered:      1000000 open runs, 3 queued tasks, 999998 timers\nReady. Stop with Ctrl-C.\n";
        assert_eq!(parse_recovered(log), Some(Recovered { open_runs: 1_000_000, queued_tasks: 3, timers: 999_998 }));
        assert_eq!(
            parse_recovered("  recovered:      0 open runs, 0 queued tasks, 0 timers"),
            Some(Recovered { open_runs: 0, queued_tasks: 0, timers: 0 })
        );
    }

    #[test]
    fn the_last_well_formed_banner_line_counts() {
        let log = "  recovered:      1 open runs, 2 queued tasks, 3 timers\n\
                   WARN something recovered: quickly\n\
                   \x20 recovered:      4 open runs, 5 queued tasks, 6 timers\n\
                   INFO recovered: many things\n";
        assert_eq!(parse_recovered(log), Some(Recovered { open_runs: 4, queued_tasks: 5, timers: 6 }));
        assert_eq!(parse_recovered("recovered: 4 open runs, 5 queued tasks"), None);
        assert_eq!(parse_recovered("recovered: x open runs, 5 queued tasks, 6 timers"), None);
        assert_eq!(parse_recovered("recovered: 4 open runs, 5 queued tasks, 6 timers, 7 schedules"), None);
        assert_eq!(parse_recovered(""), None);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn bytes_per_workflow_from_kb() {
        assert_eq!(bytes_per(20_000, 30_000, 10_000), Some(1024.0));
        assert_eq!(bytes_per(30_000, 20_000, 10_240), Some(-1000.0));
        assert_eq!(bytes_per(1, 2, 0), None);
    }

    #[test]
    fn wal_file_names() {
        assert_eq!(with_suffix(Path::new("dir/uhrwerk.db"), "-wal"), PathBuf::from("dir/uhrwerk.db-wal"));
    }
}
