//! The report: one markdown table per workload with a column per server (and their ratio when
//! there are two), the machine, the date and the load, and the `open-timers` table; or all of
//! it as JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::driver::{LongHistoryReport, PhaseReport, ServerReport, Settings, WorkloadReport};
use crate::open_timers::{OpenTimersReport, Restart};
use crate::procfs::{Machine, Memory};
use crate::workload::Workload;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub settings: Settings,
    pub servers: Vec<ServerReport>,
    /// The `open-timers` workload, one entry per server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub open_timers: Vec<OpenTimersReport>,
}

impl Report {
    pub fn failures(&self) -> usize {
        self.servers.iter().map(|s| s.failures).sum::<usize>()
            + self.open_timers.iter().map(OpenTimersReport::failures).sum::<usize>()
    }
}

struct Row {
    name: String,
    values: Vec<Option<f64>>,
    decimals: usize,
    /// Whether the ratio column applies (not for totals that depend on a per-server N).
    ratio: bool,
}

impl Row {
    fn without_ratio(mut self) -> Row {
        self.ratio = false;
        self
    }
}

/// `a ÷ b` as `×1.23`, or empty when either is missing or `b` is 0.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => format!("×{:.2}", a / b),
        _ => String::new(),
    }
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "–".into(),
    }
}

fn table(out: &mut String, labels: &[&str], rows: &[Row]) {
    let with_ratio = labels.len() == 2;
    let mut header = String::from("| |");
    let mut rule = String::from("|---|");
    for label in labels {
        let _ = write!(header, " {label} |");
        rule.push_str("---:|");
    }
    if with_ratio {
        let _ = write!(header, " {} ÷ {} |", labels[0], labels[1]);
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for row in rows {
        let _ = write!(out, "| {} |", row.name);
        for value in &row.values {
            let _ = write!(out, " {} |", cell(*value, row.decimals));
        }
        if with_ratio {
            let r = if row.ratio { ratio(row.values[0], row.values[1]) } else { String::new() };
            let _ = write!(out, " {r} |");
        }
        out.push('\n');
    }
    out.push('\n');
}

const MIB: f64 = 1024.0;

fn row<T>(name: impl Into<String>, items: &[T], decimals: usize, f: impl Fn(&T) -> Option<f64>) -> Row {
    Row { name: name.into(), values: items.iter().map(f).collect(), decimals, ratio: true }
}

fn phase_rows(rows: &mut Vec<Row>, phases: &[Option<&PhaseReport>], timer_ms: Option<u64>) {
    let Some(c) = phases.iter().flatten().next().map(|p| p.concurrency) else { return };
    let at = format!("at concurrency {c}");
    rows.push(row(format!("workflows measured {at}"), phases, 0, |p| p.map(|p| p.workflows as f64)));
    rows.push(row(format!("throughput {at} (workflows/s)"), phases, 1, |p| p.map(|p| p.workflows_per_s)));
    for (q, f) in [("p50", 0), ("p95", 1), ("p99", 2)] {
        let pick = move |s: &crate::stats::Summary| [s.p50, s.p95, s.p99][f];
        rows.push(row(format!("latency {q} {at} (ms)"), phases, 1, |p| {
            p.filter(|p| p.latency_ms.count > 0).map(|p| pick(&p.latency_ms))
        }));
        if let Some(ms) = timer_ms {
            let name = format!("overhead {q} {at} (latency − {} s, ms)", ms as f64 / 1000.0);
            rows.push(row(name, phases, 1, |p| {
                p.and_then(|p| p.overhead_ms).filter(|s| s.count > 0).map(|s| pick(&s))
            }));
        }
    }
    rows.push(row(format!("server CPU per 1,000 workflows {at} (s)"), phases, 2, |p| {
        p.and_then(|p| p.server_cpu_s_per_1000)
    }));
    rows.push(row(format!("server CPU use {at} (cores)"), phases, 2, |p| {
        p.and_then(|p| Some(p.usage.server_cpu_s? / p.usage.wall_s))
    }));
    rows.push(row(format!("driver CPU use {at} (cores)"), phases, 2, |p| {
        p.map(|p| p.usage.driver_cpu_s / p.usage.wall_s)
    }));
    rows.push(row(format!("workflow tasks per workflow {at}"), phases, 2, |p| {
        p.map(|p| p.worker.workflow_tasks as f64 / p.workflows as f64)
    }));
    rows.push(row(format!("history received per workflow {at} (KiB)"), phases, 1, |p| {
        p.map(|p| p.worker.history_bytes as f64 / 1024.0 / p.workflows as f64)
    }));
}

fn workload_rows(reports: &[Option<&WorkloadReport>], timer_ms: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    let timer = reports.iter().flatten().any(|r| r.workload == Workload::Timer).then_some(timer_ms);
    let saturation: Vec<_> = reports.iter().map(|r| r.and_then(|r| r.saturation.as_ref())).collect();
    let sequential: Vec<_> = reports.iter().map(|r| r.and_then(|r| r.sequential.as_ref())).collect();
    phase_rows(&mut rows, &saturation, timer);
    phase_rows(&mut rows, &sequential, timer);
    fn last_phase<'a>(r: &Option<&'a WorkloadReport>) -> Option<&'a PhaseReport> {
        r.and_then(|r| r.saturation.as_ref().or(r.sequential.as_ref()))
    }
    rows.push(row("server peak RSS so far (MiB)", reports, 1, |r| {
        last_phase(r).and_then(|p| p.usage.server_memory).map(|m| m.peak_rss_kb as f64 / MIB)
    }));
    rows.push(row("server RSS at the end (MiB)", reports, 1, |r| {
        last_phase(r).and_then(|p| p.usage.server_memory).map(|m| m.rss_kb as f64 / MIB)
    }));
    rows.push(row("of it anonymous (heap) at the end (MiB)", reports, 1, |r| {
        last_phase(r).and_then(|p| p.usage.server_memory).map(|m| m.anon_kb as f64 / MIB)
    }));
    rows.push(row("failed workflows (warm-up included)", reports, 0, |r| {
        r.map(|r| {
            (r.warmup_failures
                + r.sequential.as_ref().map_or(0, |p| p.failures)
                + r.saturation.as_ref().map_or(0, |p| p.failures)) as f64
        })
    }));
    rows
}

fn long_history_rows(reports: &[Option<&LongHistoryReport>]) -> Vec<Row> {
    let window = reports.iter().flatten().map(|r| r.window).next().unwrap_or(100);
    let per_task = |r: &LongHistoryReport, v: u64| v as f64 / r.worker.workflow_tasks.max(1) as f64;
    vec![
        row(format!("time per activity, first {window} (ms)"), reports, 2, |r| r.and_then(|r| r.first_ms_per_activity)),
        row(format!("time per activity, last {window} (ms)"), reports, 2, |r| r.and_then(|r| r.last_ms_per_activity)),
        row("last ÷ first", reports, 2, |r| r.and_then(|r| r.last_over_first)),
        row("total time (s)", reports, 1, |r| r.map(|r| r.usage.wall_s)),
        row("history events per run", reports, 0, |r| r.map(|r| r.events_per_run as f64)),
        row("server CPU per activity (ms)", reports, 2, |r| r.and_then(|r| r.server_cpu_ms_per_activity)),
        row("server CPU use (cores)", reports, 2, |r| r.and_then(|r| Some(r.usage.server_cpu_s? / r.usage.wall_s))),
        row("history events received per workflow task", reports, 1, |r| {
            r.map(|r| per_task(r, r.worker.history_events))
        }),
        row("history received in all (MiB)", reports, 1, |r| r.map(|r| r.worker.history_bytes as f64 / MIB / MIB)),
        row("server peak RSS so far (MiB)", reports, 1, |r| {
            r.and_then(|r| r.usage.server_memory).map(|m| m.peak_rss_kb as f64 / MIB)
        }),
        row("server RSS at the end (MiB)", reports, 1, |r| {
            r.and_then(|r| r.usage.server_memory).map(|m| m.rss_kb as f64 / MIB)
        }),
        row("of it anonymous (heap) at the end (MiB)", reports, 1, |r| {
            r.and_then(|r| r.usage.server_memory).map(|m| m.anon_kb as f64 / MIB)
        }),
        row("failed workflows", reports, 0, |r| r.map(|r| r.failures as f64)),
    ]
}

fn worker_rows(servers: &[ServerReport]) -> Vec<Row> {
    type Count = fn(&ServerReport) -> u64;
    let counts: [(&str, Count); 11] = [
        ("workflow tasks", |s| s.worker.workflow_tasks),
        ("of those from the sticky queue", |s| s.worker.sticky_queue_tasks),
        ("full histories (from event 1)", |s| s.worker.full_histories),
        ("partial histories merged onto the cache", |s| s.worker.partial_histories),
        ("cache misses (full history fetched)", |s| s.worker.cache_misses),
        ("further history pages fetched", |s| s.worker.history_pages),
        ("activity tasks", |s| s.worker.activity_tasks),
        ("empty polls", |s| s.worker.empty_polls),
        ("poll errors", |s| s.worker.poll_errors),
        ("workflow task errors", |s| s.worker.workflow_task_errors),
        ("activity completion errors", |s| s.worker.activity_errors),
    ];
    counts.iter().map(|(name, f)| row(*name, servers, 0, |s| Some(f(s) as f64))).collect()
}

/// Measured wall time and CPU of other processes over every measured phase of a server.
fn other_load(server: &ServerReport) -> (f64, f64) {
    let mut wall = 0.0;
    let mut other = 0.0;
    for w in &server.workloads {
        let phases = [w.sequential.as_ref().map(|p| p.usage), w.saturation.as_ref().map(|p| p.usage)];
        for usage in phases.into_iter().flatten().chain(w.long_history.as_ref().map(|l| l.usage)) {
            wall += usage.wall_s;
            other += usage.other_cpu_s;
        }
    }
    (wall, other)
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let labels: Vec<&str> = report.servers.iter().map(|s| s.label.as_str()).collect();
    let s = &report.settings;
    let _ = writeln!(out, "# Capacity benchmark\n");
    let _ = writeln!(out, "- date: {}", report.date);
    let _ = writeln!(out, "- machine: {}, {} cores", report.machine.cpu_model, report.machine.cores);
    for server in &report.servers {
        let (wall, other) = other_load(server);
        let _ = writeln!(
            out,
            "- {}: server version {} at {}; load average before: {}; other processes used {:.1} CPU s during {:.1} s \
             of measurement",
            server.label, server.version, server.address, server.loadavg_before, other, wall
        );
    }
    let capacity = s.capacity_workloads();
    if !capacity.is_empty() {
        settings_line(&mut out, s);
    }
    if labels.len() == 2 {
        let _ = writeln!(
            out,
            "- ratio = {} ÷ {}: above 1 is better for throughput, below 1 is better for latency, time, CPU and memory",
            labels[0], labels[1]
        );
    }
    out.push('\n');
    for &workload in &capacity {
        let _ = writeln!(out, "## {}\n", workload.name());
        let reports: Vec<Option<&WorkloadReport>> =
            report.servers.iter().map(|srv| srv.workloads.iter().find(|w| w.workload == workload)).collect();
        let rows = if workload == Workload::LongHistory {
            long_history_rows(&reports.iter().map(|r| r.and_then(|r| r.long_history.as_ref())).collect::<Vec<_>>())
        } else {
            workload_rows(&reports, s.timer_ms)
        };
        table(&mut out, &labels, &rows);
    }
    if !report.servers.is_empty() {
        let _ = writeln!(out, "## What the worker saw (whole session)\n");
        table(&mut out, &labels, &worker_rows(&report.servers));
    }
    if !report.open_timers.is_empty() {
        open_timers_markdown(&mut out, &report.open_timers, s);
    }
    out
}

fn settings_line(out: &mut String, s: &Settings) {
    let _ = writeln!(
        out,
        "- settings: {} workflows at concurrency {}, {} one at a time, {} warm-up, phases stop starting after {}; \
         long history {} × {} activities; \
         timer {} ms; sticky {}; cache {} runs; {} workflow + {} activity pollers; {} connections",
        s.workflows,
        s.concurrency,
        s.sequential,
        s.warmup,
        if s.max_seconds > 0 { format!("{} s", s.max_seconds) } else { "no limit".into() },
        s.long_history_runs,
        s.long_history_activities,
        s.timer_ms,
        if s.sticky { "on" } else { "off" },
        s.cache_size,
        s.workflow_pollers,
        s.activity_pollers,
        s.connections
    );
}

const MIB_BYTES: f64 = 1024.0 * 1024.0;

fn mib_kb(memory: Option<Memory>, f: impl Fn(&Memory) -> u64) -> Option<f64> {
    memory.map(|m| f(&m) as f64 / MIB)
}

fn restart_rows(rows: &mut Vec<Row>, reports: &[&OpenTimersReport], index: usize) {
    let restarts: Vec<Option<&Restart>> = reports.iter().map(|r| r.restarts.get(index)).collect();
    let Some(signal) = restarts.iter().flatten().next().map(|r| r.signal) else { return };
    let name = |what: &str| format!("restart after {signal}: {what}");
    rows.push(
        row(name("from the signal until the process was gone (ms)"), &restarts, 0, |r| r.map(|r| r.stop_ms))
            .without_ratio(),
    );
    rows.push(
        row(name("database + WAL the new process found (MiB)"), &restarts, 1, |r| {
            r.map(|r| r.found.db_and_wal() as f64 / MIB_BYTES)
        })
        .without_ratio(),
    );
    rows.push(
        row(name("from process start until GetSystemInfo answers (ms)"), &restarts, 0, |r| r.map(|r| r.ready_ms))
            .without_ratio(),
    );
    rows.push(
        row(name("timers armed, from the banner"), &restarts, 0, |r| {
            r.and_then(|r| r.recovered).map(|x| x.timers as f64)
        })
        .without_ratio(),
    );
    rows.push(
        row(name("open runs, from the banner"), &restarts, 0, |r| {
            r.and_then(|r| r.recovered).map(|x| x.open_runs as f64)
        })
        .without_ratio(),
    );
    rows.push(
        row(name("RSS when it answered (MiB)"), &restarts, 1, |r| {
            r.and_then(|r| mib_kb(r.memory_at_ready, |m| m.rss_kb))
        })
        .without_ratio(),
    );
    rows.push(
        row(name("RSS after settling (MiB)"), &restarts, 1, |r| r.and_then(|r| mib_kb(r.memory_settled, |m| m.rss_kb)))
            .without_ratio(),
    );
    rows.push(
        row(name("of it anonymous (MiB)"), &restarts, 1, |r| r.and_then(|r| mib_kb(r.memory_settled, |m| m.anon_kb)))
            .without_ratio(),
    );
    rows.push(
        row(name("peak RSS of the new process (MiB)"), &restarts, 1, |r| {
            r.and_then(|r| mib_kb(r.memory_settled, |m| m.peak_rss_kb))
        })
        .without_ratio(),
    );
}

fn open_timers_rows(reports: &[&OpenTimersReport]) -> Vec<Row> {
    let mut rows = Vec::new();
    let fresh = reports.iter().find_map(|r| r.fresh.as_ref()).map_or(0, |f| f.ready_ms.len());
    rows.push(row("open workflows waiting on their timer", reports, 0, |r| Some(r.waiting as f64)).without_ratio());
    rows.push(row("failed (not waiting)", reports, 0, |r| Some(r.failures as f64)).without_ratio());
    rows.push(row("start rate until waiting (workflows/s)", reports, 1, |r| Some(r.workflows_per_s)));
    rows.push(row("StartWorkflowExecution latency p50 (ms)", reports, 1, |r| {
        (r.start_latency_ms.count > 0).then_some(r.start_latency_ms.p50)
    }));
    rows.push(row("StartWorkflowExecution latency p99 (ms)", reports, 1, |r| {
        (r.start_latency_ms.count > 0).then_some(r.start_latency_ms.p99)
    }));
    rows.push(row("server CPU per 1,000 workflows (s)", reports, 2, |r| r.server_cpu_s_per_1000));
    if fresh > 0 {
        rows.push(row(
            format!("empty database: start until GetSystemInfo answers, best of {fresh} (ms)"),
            reports,
            1,
            |r| r.fresh.as_ref().map(|f| f.best_ready_ms),
        ));
        rows.push(row(format!("empty database: the same, median of {fresh} (ms)"), reports, 1, |r| {
            r.fresh.as_ref().map(|f| f.median_ready_ms)
        }));
        rows.push(row("empty database: RSS when it answered, median (MiB)", reports, 1, |r| {
            r.fresh.as_ref().map(|f| f.median_rss_at_ready_kb as f64 / MIB)
        }));
    }
    rows.push(row("idle RSS, empty database, settled (MiB)", reports, 1, |r| mib_kb(r.idle.memory, |m| m.rss_kb)));
    rows.push(row("of it anonymous (MiB)", reports, 1, |r| mib_kb(r.idle.memory, |m| m.anon_kb)));
    rows.push(
        row("RSS with every workflow waiting, settled (MiB)", reports, 1, |r| mib_kb(r.loaded.memory, |m| m.rss_kb))
            .without_ratio(),
    );
    rows.push(row("of it anonymous (MiB)", reports, 1, |r| mib_kb(r.loaded.memory, |m| m.anon_kb)).without_ratio());
    rows.push(row("peak RSS so far (MiB)", reports, 1, |r| mib_kb(r.loaded.memory, |m| m.peak_rss_kb)).without_ratio());
    rows.push(row("RSS per open workflow: (with − idle) ÷ N (bytes)", reports, 0, |r| r.rss_bytes_per_workflow));
    rows.push(row("RssAnon per open workflow (bytes)", reports, 0, |r| r.anon_bytes_per_workflow));
    rows.push(
        row("database + WAL with every workflow waiting (MiB)", reports, 1, |r| {
            Some(r.loaded.db_and_wal() as f64 / MIB_BYTES)
        })
        .without_ratio(),
    );
    rows.push(row("of it WAL (MiB)", reports, 1, |r| Some(r.loaded.wal_bytes as f64 / MIB_BYTES)).without_ratio());
    rows.push(row("database + WAL per workflow (bytes)", reports, 0, |r| r.db_bytes_per_workflow));
    rows.push(row("server CPU while settling (s)", reports, 2, |r| r.settle_server_cpu_s).without_ratio());
    let restarts = reports.iter().map(|r| r.restarts.len()).max().unwrap_or(0);
    for index in 0..restarts {
        restart_rows(&mut rows, reports, index);
    }
    rows
}

fn open_timers_markdown(out: &mut String, reports: &[OpenTimersReport], s: &Settings) {
    let _ = writeln!(out, "## open-timers\n");
    let _ = writeln!(
        out,
        "- each workflow starts one timer of {} s with its first workflow task and stays open waiting on it; \
         at most {} started but not yet waiting; memory read after {} s without load; \
         sticky {}; {} connections",
        s.timer_seconds,
        s.concurrency,
        s.settle_seconds,
        if s.sticky { "on" } else { "off" },
        s.connections
    );
    for r in reports {
        if r.skipped {
            let _ = writeln!(out, "- {}: {}", r.label, r.note.as_deref().unwrap_or("skipped"));
            continue;
        }
        let _ = writeln!(
            out,
            "- {}: server version {}; {} workflows; load average before: {}; other processes used {:.1} CPU s \
             during the {:.1} s of starts{}",
            r.label,
            r.version,
            crate::open_timers::thousands(r.workflows),
            r.loadavg_before,
            r.other_cpu_s,
            r.start_wall_s,
            r.note.as_ref().map_or(String::new(), |n| format!("; {n}"))
        );
    }
    let ran: Vec<&OpenTimersReport> = reports.iter().filter(|r| !r.skipped).collect();
    if ran.is_empty() {
        out.push('\n');
        return;
    }
    if ran.len() == 2 {
        let _ = writeln!(
            out,
            "- ratio = {} ÷ {}, only where it compares like with like (per workflow, per start, an empty server); \
             totals and restart times grow with N, which differs",
            ran[0].label, ran[1].label
        );
    }
    let _ = writeln!(
        out,
        "- ready = from the process start until GetSystemInfo answers. Uhrwerk loads its queued tasks, timers and \
         transfer tasks before it listens, so for Uhrwerk ready means every timer is armed; the banner rows are its \
         line `recovered: X open runs, Y queued tasks, Z timers`. The dev server prints no such line\n"
    );
    let labels: Vec<String> =
        ran.iter().map(|r| format!("{} (N = {})", r.label, crate::open_timers::thousands(r.waiting))).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    table(out, &labels, &open_timers_rows(&ran));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(ratio(Some(150.0), Some(20.0)), "×7.50");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "");
        assert_eq!(ratio(None, Some(1.0)), "");
        assert_eq!(ratio(Some(f64::NAN), Some(1.0)), "");
    }

    #[test]
    fn tables_have_a_ratio_column_for_two_servers() {
        let rows = [
            Row { name: "a".into(), values: vec![Some(10.0), Some(4.0)], decimals: 1, ratio: true },
            Row { name: "b".into(), values: vec![None, Some(4.0)], decimals: 0, ratio: true },
            row("c", &[Some(3.0), Some(1.0)], 0, |v| *v).without_ratio(),
        ];
        let mut out = String::new();
        table(&mut out, &["x", "y"], &rows);
        assert_eq!(
            out,
            "| | x | y | x ÷ y |\n|---|---:|---:|---:|\n| a | 10.0 | 4.0 | ×2.50 |\n| b | – | 4 |  |\n| c | 3 | 1 |  |\n\n"
        );
        let mut out = String::new();
        table(&mut out, &["x"], &[Row { name: "a".into(), values: vec![Some(10.0)], decimals: 1, ratio: true }]);
        assert_eq!(out, "| | x |\n|---|---:|\n| a | 10.0 |\n\n");
    }
}
