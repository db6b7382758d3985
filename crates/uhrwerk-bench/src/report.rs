//! The report: one markdown table per workload with a column per server (and their ratio when
//! there are two), the machine, the date and the load; or all of it as JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::driver::{LongHistoryReport, PhaseReport, ServerReport, Settings, WorkloadReport};
use crate::procfs::Machine;
use crate::workload::Workload;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub settings: Settings,
    pub servers: Vec<ServerReport>,
}

impl Report {
    pub fn failures(&self) -> usize {
        self.servers.iter().map(|s| s.failures).sum()
    }
}

struct Row {
    name: String,
    values: Vec<Option<f64>>,
    decimals: usize,
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
            let _ = write!(out, " {} |", ratio(row.values[0], row.values[1]));
        }
        out.push('\n');
    }
    out.push('\n');
}

const MIB: f64 = 1024.0;

fn row<T>(name: impl Into<String>, items: &[T], decimals: usize, f: impl Fn(&T) -> Option<f64>) -> Row {
    Row { name: name.into(), values: items.iter().map(f).collect(), decimals }
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
    if labels.len() == 2 {
        let _ = writeln!(
            out,
            "- ratio = {} ÷ {}: above 1 is better for throughput, below 1 is better for latency, time, CPU and memory",
            labels[0], labels[1]
        );
    }
    out.push('\n');
    for &workload in &s.workloads {
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
    let _ = writeln!(out, "## What the worker saw (whole session)\n");
    table(&mut out, &labels, &worker_rows(&report.servers));
    out
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
            Row { name: "a".into(), values: vec![Some(10.0), Some(4.0)], decimals: 1 },
            Row { name: "b".into(), values: vec![None, Some(4.0)], decimals: 0 },
        ];
        let mut out = String::new();
        table(&mut out, &["x", "y"], &rows);
        assert_eq!(out, "| | x | y | x ÷ y |\n|---|---:|---:|---:|\n| a | 10.0 | 4.0 | ×2.50 |\n| b | – | 4 |  |\n\n");
        let mut out = String::new();
        table(&mut out, &["x"], &[Row { name: "a".into(), values: vec![Some(10.0)], decimals: 1 }]);
        assert_eq!(out, "| | x |\n|---|---:|\n| a | 10.0 |\n\n");
    }
}
