//! Soak mode (`--soak 60m`): a steady mix of the capacity workloads at a fixed concurrency for a
//! long time against a Uhrwerk it starts, moving to a new task queue name every
//! `--soak-queue-every`; per interval the workflows, throughput and latency percentiles, the
//! server's RSS, open file descriptors, CPU and database size, and the `taskqueue` label values
//! of its `/metrics`; at the end the table and a verdict: flat or grew after warm-up.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::client::Pool;
use crate::driver::{Settings, Starter, hostname, unique_nanos};
use crate::procfs::{self, Machine};
use crate::server::{ServerKind, ServerProcess};
use crate::stats::Summary;
use crate::worker::{Worker, WorkerConfig};
use crate::workload::{Spec, Workload};

/// The workloads of the mix when `--workload` names none of them (`all`): one each in turn.
const MIX: [Workload; 4] = [Workload::OneActivity, Workload::Timer, Workload::Signal, Workload::TenActivity];
/// Failed workflows printed on stderr; the rest are only counted.
const MAX_LOGGED_FAILURES: usize = 10;
/// How long matching keeps an idle queue (no poll for five minutes) plus its pruning period (a
/// minute): after this long the number of queue names alive has levelled off.
const PRUNE_HORIZON: Duration = Duration::from_secs(6 * 60);

/// Tolerances of the verdict: the last third of the run against the first interval after
/// warm-up, each allowed the larger of a fraction and an absolute amount above it.
const RSS_TOLERANCE: (f64, f64) = (0.10, 4.0); // +10 % or +4 MiB, on the largest RSS
const FDS_TOLERANCE: (f64, f64) = (0.10, 5.0); // +10 % or +5, on the most open descriptors
const P99_TOLERANCE: (f64, f64) = (0.50, 5.0); // +50 % or +5 ms, on the median of the p99s
const QUEUES_TOLERANCE: (f64, f64) = (0.20, 2.0); // +20 % or +2, on the most `taskqueue` values

/// The soak's own flags; the rest comes from [`Settings`] (concurrency, namespace, worker).
#[derive(Clone, Debug)]
pub struct Options {
    pub duration: Duration,
    pub interval: Duration,
    pub queue_every: Duration,
    /// Intervals before this are warm-up (at most a third of the run).
    pub warmup: Duration,
    pub uhrwerk_bin: PathBuf,
    pub keep_data: bool,
    pub ready_timeout: Duration,
    pub json: bool,
    pub json_out: Option<PathBuf>,
}

/// `90`, `90s`, `500ms`, `30m`, `1h`, `1h30m`: a number of seconds or numbers with units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"));
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| format!("{text:?}: expected a number at {rest:?}"))?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m or h)")),
        };
        rest = &rest[unit..];
        total += number * factor;
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("{text:?}: {e}"))
}

/// `1h02m03s`, `5m00s`, `42s`.
pub fn elapsed(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// The workloads of the mix: those of `--workload` that finish by themselves quickly
/// (one-activity, ten-activity, timer, signal), all four for `all`.
pub fn mix(settings: &Settings) -> Vec<Workload> {
    let chosen: Vec<Workload> = MIX.into_iter().filter(|w| settings.workloads.contains(w)).collect();
    if chosen.is_empty() { MIX.to_vec() } else { chosen }
}

/// One interval's row.
#[derive(Clone, Debug, Serialize)]
pub struct Interval {
    pub start_s: f64,
    pub end_s: f64,
    /// Workflows that completed with the right result during the interval.
    pub completed: usize,
    pub failures: usize,
    pub workflows_per_s: f64,
    /// Start to result of the completed workflows; timer workflows minus their timer.
    pub latency_ms: Summary,
    pub rss_kb: Option<u64>,
    pub anon_kb: Option<u64>,
    pub fds: Option<usize>,
    /// Distinct values of the `taskqueue` label in the `/metrics` scrape, and the series with it.
    pub taskqueue_values: Option<usize>,
    pub taskqueue_series: Option<usize>,
    /// Server CPU over the interval, in cores.
    pub server_cpu_cores: Option<f64>,
    /// The SQLite file and its WAL at the end of the interval.
    pub db_bytes: u64,
    /// Task queue names used so far.
    pub queues: usize,
}

/// One row of the verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// The first interval after warm-up.
    pub baseline: f64,
    /// The last third's largest value (the median for p99).
    pub last_third: f64,
    /// Flat at or below this.
    pub limit: f64,
    pub flat: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    /// Index of the baseline interval; `None` if the run has no interval after warm-up.
    pub baseline: Option<usize>,
    /// Intervals in the last third.
    pub last_third: usize,
    pub checks: Vec<Check>,
    /// `Some(true)`: every check flat; `None`: nothing to compare.
    pub flat: Option<bool>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    pub date: String,
    pub machine: Machine,
    pub version: String,
    pub loadavg_before: String,
    pub duration_s: f64,
    pub interval_s: f64,
    pub queue_every_s: f64,
    /// After the clamp to a third of the run.
    pub warmup_s: f64,
    pub concurrency: usize,
    pub mix: Vec<Workload>,
    pub timer_ms: u64,
    pub intervals: Vec<Interval>,
    /// Over the whole run, the workflows still in flight at the end included.
    pub completed: usize,
    pub failures: usize,
    /// Of those, the ones that finished after the last interval (the drain).
    pub drain_completed: usize,
    pub drain_failures: usize,
    pub queues_used: usize,
    /// The server exited before the end, or would not stop.
    pub server_error: Option<String>,
    pub verdict: Verdict,
}

impl SoakReport {
    pub fn failed(&self) -> bool {
        self.failures > 0 || self.server_error.is_some()
    }
}

/// The soak from the command line: runs it, prints the report, and the exit code (0 if every
/// workflow completed right, 1 if any failed, 2 on setup errors).
pub async fn main(options: &Options, settings: &Settings) -> ExitCode {
    let report = match run(options, settings).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("uhrwerk-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    let json = serde_json::to_string_pretty(&report).expect("report serializes");
    if let Some(path) = &options.json_out
        && let Err(e) = std::fs::write(path, json.clone() + "\n")
    {
        eprintln!("uhrwerk-bench: cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    if options.json {
        println!("{json}");
    } else {
        print!("{}", markdown(&report));
    }
    if report.failed() {
        eprintln!(
            "uhrwerk-bench: {} workflow(s) failed{}",
            report.failures,
            report.server_error.as_deref().map(|e| format!("; {e}")).unwrap_or_default()
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

pub async fn run(options: &Options, settings: &Settings) -> anyhow::Result<SoakReport> {
    if options.interval.is_zero() || options.queue_every.is_zero() {
        anyhow::bail!("--soak-interval and --soak-queue-every must be above 0");
    }
    if options.duration < options.interval {
        anyhow::bail!("--soak {} is shorter than one --soak-interval", elapsed(options.duration.as_secs_f64()));
    }
    if !options.uhrwerk_bin.exists() {
        anyhow::bail!(
            "uhrwerk not found: {} (cargo build --release -p uhrwerk, or --uhrwerk-bin)",
            options.uhrwerk_bin.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("uhrwerk-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = run_in(options, settings, &dir).await;
    if options.keep_data {
        eprintln!("database and log kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_in(options: &Options, settings: &Settings, dir: &Path) -> anyhow::Result<SoakReport> {
    let db = dir.join("uhrwerk.db");
    eprintln!("starting uhrwerk ({})", options.uhrwerk_bin.display());
    let mut process =
        ServerProcess::start_with_metrics(ServerKind::Uhrwerk, &options.uhrwerk_bin, &db, &dir.join("uhrwerk.log"))?;
    let version = process.wait_ready(&settings.namespace, options.ready_timeout).await?;
    let report = drive(options, settings, &mut process, &db, version).await;
    let stopped = process.stop().await;
    let mut report = report?;
    if let Err(e) = stopped {
        eprintln!("uhrwerk: {e:#}");
        report.server_error = Some(format!("{e:#}"));
    }
    Ok(report)
}

/// Workflows completed and failed since the last interval.
#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    failures: usize,
}

/// The workflows started on one task queue name, served by their own worker.
struct Generation {
    starter: Starter,
    /// Workflows started on this queue and not finished: the worker stays until it is 0.
    in_flight: AtomicUsize,
}

/// What the starter loops share.
struct Load {
    current: Mutex<Arc<Generation>>,
    stop: AtomicBool,
    next: AtomicU64,
    tally: Mutex<Tally>,
    logged: AtomicUsize,
    mix: Vec<Workload>,
    timer_ms: u64,
    timeout: Duration,
    prefix: String,
}

impl Load {
    /// The current queue, with this workflow counted in flight on it (under the lock, so a queue
    /// that is no longer current only ever sees its count go down).
    fn enter(&self) -> Arc<Generation> {
        let current = self.current.lock().unwrap();
        current.in_flight.fetch_add(1, Ordering::SeqCst);
        current.clone()
    }

    /// Runs workflows one after the other until told to stop.
    async fn starter_loop(self: Arc<Load>) {
        while !self.stop.load(Ordering::SeqCst) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let workload = self.mix[(i % self.mix.len() as u64) as usize];
            let spec = Spec::for_workload(workload, 0, self.timer_ms);
            let workflow_id = format!("{}-{}-{i}", self.prefix, workload.name());
            let generation = self.enter();
            let result = generation.starter.run_one(workload, spec, &workflow_id, self.timeout).await;
            generation.in_flight.fetch_sub(1, Ordering::SeqCst);
            let mut tally = self.tally.lock().unwrap();
            match result {
                Ok((latency, _)) => tally.latencies_ms.push(latency.as_secs_f64() * 1000.0 - spec.timer_ms as f64),
                Err(e) => {
                    tally.failures += 1;
                    if self.logged.fetch_add(1, Ordering::Relaxed) < MAX_LOGGED_FAILURES {
                        eprintln!("  {workflow_id} on {}: {e}", generation.starter.task_queue);
                    }
                }
            }
        }
    }
}

/// Starts the worker and the starter of task queue number `index`.
fn start_generation(
    pool: &Arc<Pool>,
    settings: &Settings,
    session: &str,
    identity: &str,
    index: usize,
) -> (Arc<Generation>, Worker) {
    let task_queue = format!("uhrwerk-soak-{session}-q{index}");
    let worker = Worker::start(
        pool.clone(),
        WorkerConfig {
            namespace: settings.namespace.clone(),
            task_queue: task_queue.clone(),
            identity: identity.to_string(),
            sticky: settings.sticky,
            workflow_pollers: settings.workflow_pollers,
            activity_pollers: settings.activity_pollers,
            cache_size: settings.cache_size,
            timer_permits: None,
        },
    );
    let starter = Starter {
        pool: pool.clone(),
        namespace: settings.namespace.clone(),
        task_queue,
        identity: identity.to_string(),
        prefix: format!("soak-{session}-q{index}"),
    };
    (Arc::new(Generation { starter, in_flight: AtomicUsize::new(0) }), worker)
}

/// Stops the worker of a queue that is no longer current once its last workflow finished (or
/// after `timeout`, when those left count as failed anyway): its polls end and the queue goes idle.
fn retire(generation: Arc<Generation>, worker: Worker, timeout: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deadline = Instant::now() + timeout;
        while generation.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worker.shutdown().await;
    })
}

/// The load, the queue changes and the samples, from the ready server to the end of the drain.
async fn drive(
    options: &Options,
    settings: &Settings,
    process: &mut ServerProcess,
    db: &Path,
    version: String,
) -> anyhow::Result<SoakReport> {
    let pid = process.pid;
    let metrics = process.metrics_address.clone().context("the server was started without /metrics")?;
    let pool = Arc::new(Pool::connect(&process.address, settings.connections).await?);
    let session = format!("{}-{:x}", std::process::id(), unique_nanos());
    let identity = format!("{}@{}", std::process::id(), hostname());
    let mix = mix(settings);
    let warmup = options.warmup.min(options.duration / 3);
    let loadavg_before = procfs::loadavg();
    eprintln!(
        "[soak] uhrwerk {version} at {} (pid {pid}, /metrics on {metrics}), load average {loadavg_before}",
        process.address
    );
    eprintln!(
        "[soak] {} at {} in flight, mix {}, a new task queue every {}, a row every {}, warm-up {}",
        elapsed(options.duration.as_secs_f64()),
        settings.concurrency,
        mix.iter().map(|w| w.name()).collect::<Vec<_>>().join("/"),
        elapsed(options.queue_every.as_secs_f64()),
        elapsed(options.interval.as_secs_f64()),
        elapsed(warmup.as_secs_f64()),
    );
    eprintln!("[soak] {}", row_header());

    let timeout = Duration::from_secs(settings.timeout_s);
    let (first, mut worker) = start_generation(&pool, settings, &session, &identity, 0);
    let load = Arc::new(Load {
        current: Mutex::new(first),
        stop: AtomicBool::new(false),
        next: AtomicU64::new(0),
        tally: Mutex::new(Tally::default()),
        logged: AtomicUsize::new(0),
        mix: mix.clone(),
        timer_ms: settings.timer_ms,
        timeout,
        prefix: format!("soak-{session}"),
    });
    let loops: Vec<_> = (0..settings.concurrency).map(|_| tokio::spawn(load.clone().starter_loop())).collect();
    let mut retiring = Vec::new();
    let mut queues = 1;

    let started = Instant::now();
    let end = started + options.duration;
    let never = end + Duration::from_secs(86_400);
    let mut next_switch = started + options.queue_every;
    let mut next_tick = (started + options.interval).min(end);
    let mut interval_start = started;
    let mut cpu_before = procfs::cpu_seconds(pid).ok();
    let mut intervals = Vec::new();
    loop {
        if next_switch >= end {
            next_switch = never;
        }
        tokio::time::sleep_until(next_tick.min(next_switch).into()).await;
        let now = Instant::now();
        if now >= next_switch {
            let (generation, new_worker) = start_generation(&pool, settings, &session, &identity, queues);
            queues += 1;
            let old = std::mem::replace(&mut *load.current.lock().unwrap(), generation);
            retiring.push(retire(old, std::mem::replace(&mut worker, new_worker), timeout));
            next_switch += options.queue_every;
        }
        if now >= next_tick {
            let tally = std::mem::take(&mut *load.tally.lock().unwrap());
            let cpu_now = procfs::cpu_seconds(pid).ok();
            let wall = now.duration_since(interval_start).as_secs_f64();
            let (values, series) = match scrape(&metrics).await {
                Ok(text) => {
                    let (values, series) = taskqueue_labels(&text);
                    (Some(values), Some(series))
                }
                Err(e) => {
                    eprintln!("[soak] /metrics: {e:#}");
                    (None, None)
                }
            };
            let memory = procfs::memory(pid).ok();
            let interval = Interval {
                start_s: interval_start.duration_since(started).as_secs_f64(),
                end_s: now.duration_since(started).as_secs_f64(),
                completed: tally.latencies_ms.len(),
                failures: tally.failures,
                workflows_per_s: if wall > 0.0 { tally.latencies_ms.len() as f64 / wall } else { 0.0 },
                latency_ms: Summary::of_ms(&tally.latencies_ms),
                rss_kb: memory.map(|m| m.rss_kb),
                anon_kb: memory.map(|m| m.anon_kb),
                fds: procfs::open_fds(pid).ok(),
                taskqueue_values: values,
                taskqueue_series: series,
                server_cpu_cores: cpu_now.zip(cpu_before).map(|(a, b)| (a - b) / wall.max(1e-9)),
                db_bytes: file_len(db) + file_len(&with_suffix(db, "-wal")),
                queues,
            };
            eprintln!("[soak] {}", row(&interval));
            intervals.push(interval);
            cpu_before = cpu_now;
            interval_start = now;
            if next_tick >= end {
                break;
            }
            if process.exited() {
                eprintln!("[soak] the server exited: stopping\n{}", process.log_tail());
                break;
            }
            next_tick = (next_tick + options.interval).min(end);
        }
    }

    load.stop.store(true, Ordering::SeqCst);
    let in_flight = load.current.lock().unwrap().in_flight.load(Ordering::SeqCst);
    eprintln!("[soak] done; waiting for the workflows still in flight ({in_flight} on the current queue)");
    for task in loops {
        task.await.expect("starter loop panicked");
    }
    let drain = std::mem::take(&mut *load.tally.lock().unwrap());
    worker.shutdown().await;
    for task in retiring {
        task.await.expect("worker retirement panicked");
    }
    let completed = intervals.iter().map(|i| i.completed).sum::<usize>() + drain.latencies_ms.len();
    let failures = intervals.iter().map(|i| i.failures).sum::<usize>() + drain.failures;
    let verdict = verdict(&intervals, warmup.as_secs_f64(), options.duration.as_secs_f64(), options.queue_every);
    eprintln!("[soak] {}", verdict_line(&verdict));
    Ok(SoakReport {
        date: procfs::now_utc(),
        machine: procfs::machine(),
        version,
        loadavg_before,
        duration_s: options.duration.as_secs_f64(),
        interval_s: options.interval.as_secs_f64(),
        queue_every_s: options.queue_every.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        concurrency: settings.concurrency,
        mix,
        timer_ms: settings.timer_ms,
        intervals,
        completed,
        failures,
        drain_completed: drain.latencies_ms.len(),
        drain_failures: drain.failures,
        queues_used: queues,
        server_error: None,
        verdict,
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The text of `GET http://<address>/metrics`.
async fn scrape(address: &str) -> anyhow::Result<String> {
    let address = address.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let addr: SocketAddr = address.parse().with_context(|| format!("bad address {address}"))?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("cannot connect to {address}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        http_body(&raw).map_err(anyhow::Error::msg)
    })
    .await
    .context("scrape task")?
}

/// The body of a `200` HTTP/1.1 response (plain or chunked) read to its end.
pub fn http_body(raw: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of headers in the response")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {status:?}"));
    }
    let chunked = head.lines().skip(1).any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked")
        })
    });
    if !chunked {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("truncated chunk size")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16)
            .map_err(|_| format!("bad chunk size {size:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).ok_or("truncated chunk")?;
        out.push_str(chunk);
        rest = after[size..].strip_prefix("\r\n").ok_or("chunk without its line end")?;
    }
}

/// Distinct values of the `taskqueue` label in a Prometheus text scrape, and the series (sample
/// lines) that carry it.
pub fn taskqueue_labels(text: &str) -> (usize, usize) {
    let mut values = BTreeSet::new();
    let mut series = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(labels) = line.find('{').map(|i| &line[i..]) else { continue };
        let found = ["{taskqueue=\"", ",taskqueue=\""].iter().find_map(|key| labels.find(key).map(|i| i + key.len()));
        let Some(start) = found else { continue };
        let value = &labels[start..];
        // The value ends at the first quote that no backslash escapes.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in value.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        if let Some(end) = end {
            values.insert(&value[..end]);
            series += 1;
        }
    }
    (values.len(), series)
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The largest of `f` over `intervals`, where it has a value.
fn max_of(intervals: &[&Interval], f: impl Fn(&Interval) -> Option<f64>) -> Option<f64> {
    intervals.iter().copied().filter_map(f).reduce(f64::max)
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    crate::stats::percentile(values, 50.0)
}

/// A check of `name`: the last third's value against the baseline plus the larger of a fraction
/// and an absolute amount.
fn check(name: &'static str, baseline: f64, last_third: f64, (fraction, absolute): (f64, f64)) -> Check {
    let limit = baseline + (baseline * fraction).max(absolute);
    Check { name, baseline, last_third, limit, flat: last_third <= limit }
}

/// The last third of the run (intervals that start at or after two thirds of it; the last
/// interval if none does) against the first interval that starts at or after `warmup_s`.
pub fn verdict(intervals: &[Interval], warmup_s: f64, duration_s: f64, queue_every: Duration) -> Verdict {
    let mut verdict = Verdict::default();
    let epsilon = 1e-3;
    let Some(base) = intervals.iter().position(|i| i.start_s + epsilon >= warmup_s) else {
        verdict.notes.push("no interval after the warm-up: nothing to compare".into());
        return verdict;
    };
    let mut last: Vec<&Interval> = intervals.iter().filter(|i| i.start_s + epsilon >= duration_s * 2.0 / 3.0).collect();
    if last.is_empty() {
        last.extend(intervals.last());
    }
    last.retain(|i| !std::ptr::eq(*i, &intervals[base]));
    if last.is_empty() {
        verdict.notes.push("the run is too short: the baseline interval is its last third".into());
        verdict.baseline = Some(base);
        return verdict;
    }
    let b = &intervals[base];
    verdict.baseline = Some(base);
    verdict.last_third = last.len();
    let mut missing = Vec::new();
    match (b.rss_kb, max_of(&last, |i| i.rss_kb.map(mib))) {
        (Some(first), Some(end)) => verdict.checks.push(check("RSS (MiB)", mib(first), end, RSS_TOLERANCE)),
        _ => missing.push("RSS"),
    }
    match (b.fds, max_of(&last, |i| i.fds.map(|n| n as f64))) {
        (Some(first), Some(end)) => verdict.checks.push(check("open fds", first as f64, end, FDS_TOLERANCE)),
        _ => missing.push("fds"),
    }
    let mut p99s: Vec<f64> = last.iter().filter(|i| i.latency_ms.count > 0).map(|i| i.latency_ms.p99).collect();
    match (b.latency_ms.count > 0, median(&mut p99s)) {
        (true, Some(end)) => {
            verdict.checks.push(check("p99 latency (ms, median of the p99s)", b.latency_ms.p99, end, P99_TOLERANCE))
        }
        _ => missing.push("p99"),
    }
    match (b.taskqueue_values, max_of(&last, |i| i.taskqueue_values.map(|n| n as f64))) {
        (Some(first), Some(end)) => {
            verdict.checks.push(check("taskqueue label values", first as f64, end, QUEUES_TOLERANCE))
        }
        _ => missing.push("taskqueue label values"),
    }
    if !missing.is_empty() {
        verdict.notes.push(format!("not measured: {}", missing.join(", ")));
    }
    if b.start_s + epsilon < (PRUNE_HORIZON + queue_every).as_secs_f64() {
        verdict.notes.push(format!(
            "the baseline starts at {}, before the {} it takes pruning (idle five minutes, checked every minute) and a queue change to level off the task queue names alive: use --soak-warmup {} or more",
            elapsed(b.start_s),
            elapsed((PRUNE_HORIZON + queue_every).as_secs_f64()),
            elapsed((PRUNE_HORIZON + queue_every).as_secs_f64()),
        ));
    }
    verdict.flat = (!verdict.checks.is_empty()).then(|| verdict.checks.iter().all(|c| c.flat));
    verdict
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e12 { format!("{value:.0}") } else { format!("{value:.1}") }
}

pub fn verdict_line(verdict: &Verdict) -> String {
    let word = match verdict.flat {
        Some(true) => "flat",
        Some(false) => "grew",
        None => "none",
    };
    let checks: Vec<String> = verdict
        .checks
        .iter()
        .map(|c| {
            format!(
                "{} {} → {} (limit {}): {}",
                c.name,
                number(c.baseline),
                number(c.last_third),
                number(c.limit),
                if c.flat { "flat" } else { "grew" }
            )
        })
        .collect();
    let mut line = format!("verdict: {word}");
    if !checks.is_empty() {
        let _ = write!(line, "; {}", checks.join("; "));
    }
    for note in &verdict.notes {
        let _ = write!(line, " ({note})");
    }
    line
}

fn opt<T>(value: Option<T>, f: impl Fn(T) -> String) -> String {
    value.map(f).unwrap_or_else(|| "–".into())
}

fn row_header() -> String {
    format!(
        "{:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>7} {:>6} {:>5} {:>8} {:>6}",
        "elapsed",
        "done",
        "wf/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "RSS MiB",
        "fds",
        "queues",
        "series",
        "cpu",
        "db MiB",
        "failed"
    )
}

/// One interval on a line for stderr, under [`row_header`].
fn row(i: &Interval) -> String {
    let has = i.latency_ms.count > 0;
    let ms = |v: f64| if has { format!("{v:.1}") } else { "–".into() };
    format!(
        "{:>9} {:>8} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>5} {:>7} {:>6} {:>5} {:>8.1} {:>6}",
        elapsed(i.end_s),
        i.completed,
        i.workflows_per_s,
        ms(i.latency_ms.p50),
        ms(i.latency_ms.p95),
        ms(i.latency_ms.p99),
        opt(i.rss_kb, |kb| format!("{:.1}", mib(kb))),
        opt(i.fds, |n| n.to_string()),
        opt(i.taskqueue_values, |n| n.to_string()),
        opt(i.taskqueue_series, |n| n.to_string()),
        opt(i.server_cpu_cores, |c| format!("{c:.2}")),
        i.db_bytes as f64 / 1024.0 / 1024.0,
        i.failures
    )
}

/// The report: settings, the table of every interval, totals and the verdict.
pub fn markdown(report: &SoakReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Soak: uhrwerk {}, {} at {} in flight\n",
        report.version,
        elapsed(report.duration_s),
        report.concurrency
    );
    let _ = writeln!(
        out,
        "{}, {} cores, {}; load average before {}. Mix {} in turn (timer {} ms); a new task queue name every {}, a row every {}, warm-up {}.\n",
        report.machine.cpu_model,
        report.machine.cores,
        report.date,
        report.loadavg_before,
        report.mix.iter().map(|w| w.name()).collect::<Vec<_>>().join(", "),
        report.timer_ms,
        elapsed(report.queue_every_s),
        elapsed(report.interval_s),
        elapsed(report.warmup_s),
    );
    let _ = writeln!(
        out,
        "Latency is start to result of the workflows completed in the interval (timer workflows minus their timer). `taskqueue` values: distinct values of that label in the server's `/metrics`, series: the lines with it.\n"
    );
    let _ = writeln!(
        out,
        "| elapsed | workflows | workflows/s | p50 (ms) | p95 (ms) | p99 (ms) | RSS (MiB) | anon (MiB) | open fds | `taskqueue` values | `taskqueue` series | server CPU (cores) | db + WAL (MiB) | failed |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (n, i) in report.intervals.iter().enumerate() {
        let has = i.latency_ms.count > 0;
        let ms = |v: f64| if has { format!("{v:.1}") } else { "–".into() };
        let mark = if report.verdict.baseline == Some(n) { " (baseline)" } else { "" };
        let _ = writeln!(
            out,
            "| {}{mark} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            elapsed(i.end_s),
            i.completed,
            i.workflows_per_s,
            ms(i.latency_ms.p50),
            ms(i.latency_ms.p95),
            ms(i.latency_ms.p99),
            opt(i.rss_kb, |kb| format!("{:.1}", mib(kb))),
            opt(i.anon_kb, |kb| format!("{:.1}", mib(kb))),
            opt(i.fds, |n| n.to_string()),
            opt(i.taskqueue_values, |n| n.to_string()),
            opt(i.taskqueue_series, |n| n.to_string()),
            opt(i.server_cpu_cores, |c| format!("{c:.2}")),
            i.db_bytes as f64 / 1024.0 / 1024.0,
            i.failures
        );
    }
    let _ = writeln!(
        out,
        "\n{} workflows completed, {} failed ({} completed and {} failed after the last interval, while the driver waited for those in flight); {} task queue names used.",
        report.completed, report.failures, report.drain_completed, report.drain_failures, report.queues_used
    );
    if let Some(error) = &report.server_error {
        let _ = writeln!(out, "\nThe server: {error}");
    }
    let _ = writeln!(
        out,
        "\nTolerances (the last third against the baseline, the larger of the two): RSS (largest) +{:.0} % or +{} MiB, open fds (most) +{:.0} % or +{}, p99 (median of the intervals' p99s) +{:.0} % or +{} ms, `taskqueue` values (most) +{:.0} % or +{}.\n",
        RSS_TOLERANCE.0 * 100.0,
        RSS_TOLERANCE.1,
        FDS_TOLERANCE.0 * 100.0,
        FDS_TOLERANCE.1,
        P99_TOLERANCE.0 * 100.0,
        P99_TOLERANCE.1,
        QUEUES_TOLERANCE.0 * 100.0,
        QUEUES_TOLERANCE.1,
    );
    let _ = writeln!(out, "{}", verdict_line(&report.verdict));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("60m"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-5").is_err());
        assert_eq!(elapsed(42.4), "42s");
        assert_eq!(elapsed(300.0), "5m00s");
        assert_eq!(elapsed(3723.0), "1h02m03s");
    }

    #[test]
    fn taskqueue_values_and_series() {
        let text = "\
# HELP poll_success Polls that received a task.
# TYPE poll_success counter
poll_success{namespace=\"default\",task_type=\"Workflow\",taskqueue=\"q1\"} 3
poll_success{namespace=\"default\",task_type=\"Activity\",taskqueue=\"q1\"} 3
poll_success{namespace=\"default\",task_type=\"Workflow\",taskqueue=\"q\\\"2\"} 1
uhrwerk_pollers{taskqueue=\"q3\"} 1
other{mytaskqueue=\"x\"} 1
plain_metric 5
";
        assert_eq!(taskqueue_labels(text), (3, 4));
        assert_eq!(taskqueue_labels(""), (0, 0));
    }

    #[test]
    fn http_bodies() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(http_body(plain), Ok("hello".into()));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n";
        assert_eq!(http_body(chunked), Ok("hello world!".into()));
        assert!(http_body(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(http_body(b"garbage").is_err());
    }

    #[test]
    fn mix_follows_the_workloads() {
        let mut settings = test_settings();
        assert_eq!(mix(&settings), MIX.to_vec());
        settings.workloads = vec![Workload::Signal, Workload::LongHistory];
        assert_eq!(mix(&settings), vec![Workload::Signal]);
        settings.workloads = vec![Workload::LongHistory];
        assert_eq!(mix(&settings), MIX.to_vec());
    }

    fn test_settings() -> Settings {
        Settings {
            namespace: "default".into(),
            workloads: Workload::ALL.to_vec(),
            workflows: 0,
            concurrency: 1,
            sequential: 0,
            max_seconds: 0,
            warmup: 0,
            timer_ms: 1000,
            long_history_activities: 0,
            long_history_runs: 1,
            timeout_s: 1,
            long_history_timeout_s: 1,
            sticky: true,
            workflow_pollers: 1,
            activity_pollers: 1,
            cache_size: 0,
            connections: 1,
            timer_seconds: 0,
            temporal_workflows: 0,
            settle_seconds: 0,
            fresh_starts: 0,
        }
    }

    fn interval(start_s: f64, rss_mib: u64, fds: usize, p99: f64, values: usize) -> Interval {
        Interval {
            start_s,
            end_s: start_s + 60.0,
            completed: 100,
            failures: 0,
            workflows_per_s: 100.0 / 60.0,
            latency_ms: Summary { count: 100, mean: p99 / 2.0, p50: p99 / 3.0, p95: p99 / 1.5, p99, max: p99 },
            rss_kb: Some(rss_mib * 1024),
            anon_kb: Some(rss_mib * 512),
            fds: Some(fds),
            taskqueue_values: Some(values),
            taskqueue_series: Some(values * 40),
            server_cpu_cores: Some(1.0),
            db_bytes: 0,
            queues: 1,
        }
    }

    #[test]
    fn flat_and_grown_runs() {
        // Nine one-minute intervals, warm-up 2 minutes: baseline is the third, last third the last three.
        let flat: Vec<Interval> = (0..9).map(|n| interval(n as f64 * 60.0, 30 + (n % 2), 40, 20.0, 13)).collect();
        let v = verdict(&flat, 120.0, 540.0, Duration::from_secs(30));
        assert_eq!(v.baseline, Some(2));
        assert_eq!(v.last_third, 3);
        assert_eq!(v.flat, Some(true), "{}", verdict_line(&v));
        assert_eq!(v.checks.len(), 4);
        assert!(verdict_line(&v).starts_with("verdict: flat;"));
        assert!(v.notes.iter().any(|n| n.contains("--soak-warmup")), "a 2-minute warm-up is before the prune horizon");

        let grew: Vec<Interval> =
            (0..9).map(|n| interval(n as f64 * 60.0, 30 + 5 * n as u64, 40 + n, 20.0, 13 + n)).collect();
        let v = verdict(&grew, 420.0, 540.0, Duration::from_secs(30));
        assert_eq!(v.baseline, Some(7));
        let v = verdict(&grew, 120.0, 540.0, Duration::from_secs(30));
        assert_eq!(v.flat, Some(false));
        let by_name = |name: &str| v.checks.iter().find(|c| c.name.starts_with(name)).unwrap().clone();
        assert!(!by_name("RSS").flat); // 40 MiB baseline, 70 MiB at the end, limit 44
        assert_eq!((by_name("RSS").baseline, by_name("RSS").last_third, by_name("RSS").limit), (40.0, 70.0, 44.0));
        assert!(!by_name("open fds").flat); // 42 → 48, limit 42 + 5 = 47
        assert!(!by_name("taskqueue").flat); // 15 → 21, limit 18
        assert!(by_name("p99").flat);
        assert!(verdict_line(&v).starts_with("verdict: grew;"));
    }

    #[test]
    fn short_runs_have_no_verdict() {
        let one = vec![interval(0.0, 30, 40, 20.0, 3)];
        let v = verdict(&one, 0.0, 60.0, Duration::from_secs(30));
        assert_eq!(v.flat, None);
        assert!(verdict_line(&v).starts_with("verdict: none"));
        let v = verdict(&one, 120.0, 60.0, Duration::from_secs(30));
        assert_eq!((v.baseline, v.flat), (None, None));
    }
}
