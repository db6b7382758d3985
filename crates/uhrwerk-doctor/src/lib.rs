//! `uhrwerk doctor`: connects to a server, reads its state through the Temporal API (and its
//! limits from the metrics endpoint), and prints the chapter's anti-patterns it finds, worst first.
//!
//! Exit codes: 0 no error-level finding, 1 at least one error-level finding, 2 usage or
//! connection failure. The checks are pure functions of plain facts ([`checks`], [`facts`]); the
//! I/O lives in [`scan`] and [`metrics`].

pub mod checks;
pub mod connection;
pub mod error;
pub mod facts;
pub mod finding;
pub mod limits;
pub mod metrics;
pub mod render;
pub mod scan;
pub mod timefmt;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use error::DoctorError;
pub use finding::{Check, Finding, Severity};

/// Output format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Check a running server for the anti-patterns of the best-practices chapter.
///
/// Reads open runs and runs closed in the `--since` window (histories, pending work), and the
/// task queues they use; prints findings worst first with the chapter section and the fix.
/// Exit code 1 when any error-level finding exists (so it can gate a deploy), 2 on usage or
/// connection failures, else 0.
#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// gRPC address of the server.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7233", env = "TEMPORAL_ADDRESS")]
    pub address: String,
    #[command(flatten)]
    pub connection: connection::ConnectionArgs,
    /// Namespace to check.
    #[arg(short = 'n', long, default_value = "default", env = "TEMPORAL_NAMESPACE")]
    pub namespace: String,
    /// Output format: human-readable text, or a JSON array of findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Prometheus endpoint publishing the server's limits as `uhrwerk_limit{name="..."}` gauges
    /// [default: http://<host of --address>:9233/metrics]. When unreachable, Temporal's defaults are used.
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,
    /// Limit override in Temporal's dynamic-config syntax, e.g. limit.historyCount.warn=5000; repeatable.
    #[arg(long = "dynamic-config-value", value_name = "KEY=JSON")]
    pub dynamic_config_values: Vec<String>,
    /// Look-back window for closed runs, non-determinism failures and latencies (e.g. 30m, 24h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = timefmt::parse_duration)]
    pub since: Duration,
    /// At most this many runs are read (open runs first, the largest first).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_runs: usize,
    /// A run projected to reach a hard history limit within this time is an error (DR101).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = timefmt::parse_duration)]
    pub horizon: Duration,
    /// Workflow tasks a run may complete after continue-as-new was suggested before DR103 reports it.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub suggestion_grace: u32,
    /// Schedule-to-start threshold (DR303; 13.5 says act above 1 s).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = timefmt::parse_duration)]
    pub schedule_to_start: Duration,
    /// Payloads above this many bytes are reported (DR601; 13.3: workflow state < 1 KB).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub payload_bytes: usize,
    /// Skip a check by code (e.g. DR302); repeatable.
    #[arg(long, value_name = "CODE")]
    pub ignore: Vec<String>,
    /// Runs read concurrently.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
    /// Print what a check looks for, its severity, chapter section and fix, and exit.
    #[arg(long, value_name = "CODE")]
    pub explain: Option<String>,
}

pub fn run(args: &DoctorArgs) -> ExitCode {
    if let Some(code) = &args.explain {
        return explain(code);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("uhrwerk doctor: {}", DoctorError::Runtime(e));
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(doctor(args)) {
        Ok((output, code)) => {
            print!("{output}");
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("uhrwerk doctor: {e}");
            ExitCode::from(2)
        }
    }
}

fn explain(code: &str) -> ExitCode {
    let Some(check) = Check::from_code(code) else {
        let known: Vec<_> = Check::ALL.iter().map(|c| c.code()).collect();
        eprintln!("uhrwerk doctor: unknown check {code:?}; known: {}", known.join(", "));
        return ExitCode::from(2);
    };
    println!("{} ({}): {}", check.code(), check.severity().as_str(), check.title());
    println!("chapter section: {}", check.section());
    println!("fix: {}", check.fix());
    ExitCode::SUCCESS
}

/// Reads the server at `address` and runs every check not in `ignore`: the engine behind both the
/// command and the web UI's health page. Findings come worst first.
pub async fn examine(
    client: &scan::Client,
    opts: &scan::ScanOptions,
    settings: &checks::Settings,
    ignore: &[Check],
) -> Result<(Vec<Finding>, scan::ScanResult), DoctorError> {
    let result = scan::scan(client, opts, &settings.limits).await?;
    let findings = checks::analyze(&result.snapshot, settings, ignore);
    Ok((findings, result))
}

/// The default metrics URL: port 9233 on the host of `--address`, over https with TLS.
pub fn default_metrics_url(address: &str, tls: bool) -> String {
    let hostport = address.trim_start_matches("http://").trim_start_matches("https://");
    let hostport = hostport.split('/').next().unwrap_or(hostport);
    let host = match hostport.rsplit_once(':') {
        Some((h, _)) => h,
        None => hostport,
    };
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    format!("{}://{host}:9233/metrics", if tls { "https" } else { "http" })
}

/// Resolves the limits: defaults, then the metrics endpoint, then overrides. Returns the limits
/// and a one-line description for the report.
async fn resolve_limits(args: &DoctorArgs, notes: &mut Vec<String>) -> Result<(limits::Limits, String), DoctorError> {
    let mut limits = limits::Limits::default();
    let url =
        args.metrics_url.clone().unwrap_or_else(|| default_metrics_url(&args.address, args.connection.uses_tls()));
    let origin = match metrics::fetch(&url, &args.connection, Duration::from_secs(3)).await {
        Ok(body) => match limits.apply_metrics(&body) {
            0 => format!("Temporal defaults (no uhrwerk_limit gauges at {url})"),
            n => format!("{n} read from {url}"),
        },
        Err(e) => format!("Temporal defaults ({e})"),
    };
    let unused = limits.apply_overrides(args.dynamic_config_values.iter().map(String::as_str))?;
    if !unused.is_empty() {
        notes.push(format!("dynamic config keys not used by the doctor: {}", unused.join(", ")));
    }
    let l = &limits;
    let description = format!(
        "history count warn {} / error {} / suggest continue-as-new {}, history size warn {} / error {} / suggest {}; source: {}{}",
        l.history_count_warn(),
        l.history_count_error(),
        l.history_count_suggest(),
        timefmt::bytes(l.history_size_warn()),
        timefmt::bytes(l.history_size_error()),
        timefmt::bytes(l.history_size_suggest()),
        origin,
        if args.dynamic_config_values.is_empty() { "" } else { ", with --dynamic-config-value overrides" }
    );
    Ok((limits, description))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

async fn doctor(args: &DoctorArgs) -> Result<(String, u8), DoctorError> {
    let mut ignore = Vec::new();
    for code in &args.ignore {
        ignore.push(
            Check::from_code(code).ok_or_else(|| DoctorError::Usage(format!("--ignore: unknown check {code:?}")))?,
        );
    }
    if args.max_runs == 0 {
        return Err(DoctorError::Usage("--max-runs must be at least 1".into()));
    }
    let mut notes = Vec::new();
    let (limits, limits_text) = resolve_limits(args, &mut notes).await?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ms);
    let opts = scan::ScanOptions {
        namespace: args.namespace.clone(),
        max_runs: args.max_runs,
        now_ms,
        since_ms: ms(args.since),
        concurrency: args.concurrency,
    };
    let settings = checks::Settings {
        limits,
        now_ms,
        since_ms: ms(args.since),
        horizon_ms: ms(args.horizon),
        suggestion_grace_tasks: args.suggestion_grace,
        schedule_to_start_ms: ms(args.schedule_to_start),
        payload_bytes: args.payload_bytes,
    };
    let client = connection::connect(&args.address, &args.connection, Duration::from_secs(5), Duration::from_secs(60))
        .await
        .map_err(|detail| DoctorError::Connect { address: args.address.clone(), detail })?
        .max_decoding_message_size(256 * 1024 * 1024);
    let (findings, result) = examine(&client, &opts, &settings, &ignore).await?;
    notes.extend(result.notes.iter().cloned());
    let code = finding::exit_code(&findings);
    let output = match args.format {
        Format::Json => {
            if limits_text.starts_with("Temporal defaults") {
                eprintln!("uhrwerk doctor: limits: {limits_text}");
            }
            for note in &notes {
                eprintln!("uhrwerk doctor: note: {note}");
            }
            let mut s = render::json(&findings);
            s.push('\n');
            s
        }
        Format::Text => render::text(
            &render::Header {
                address: args.address.clone(),
                namespace: args.namespace.clone(),
                runs: result.snapshot.runs.len(),
                open_runs: result.open_runs,
                closed_runs: result.closed_runs,
                since: timefmt::human(ms(args.since)),
                queues: result.snapshot.queues.len(),
                limits: limits_text,
                notes,
            },
            &findings,
        ),
    };
    Ok((output, code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: DoctorArgs,
    }

    #[test]
    fn metrics_url_follows_the_address_host() {
        assert_eq!(default_metrics_url("127.0.0.1:7233", false), "http://127.0.0.1:9233/metrics");
        assert_eq!(default_metrics_url("temporal.internal:7233", false), "http://temporal.internal:9233/metrics");
        assert_eq!(default_metrics_url("http://h:1", false), "http://h:9233/metrics");
        assert_eq!(default_metrics_url("h:7233", true), "https://h:9233/metrics");
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "doctor",
            "--address",
            "127.0.0.1:1",
            "--format",
            "json",
            "--since",
            "2h",
            "--dynamic-config-value",
            "limit.historyCount.warn=50",
            "--ignore",
            "DR302",
        ])
        .expect("parses");
        assert_eq!(cli.args.format, Format::Json);
        assert_eq!(cli.args.since, Duration::from_secs(7200));
        assert_eq!(cli.args.dynamic_config_values, ["limit.historyCount.warn=50"]);
        assert!(Cli::try_parse_from(["doctor", "--since", "soon"]).is_err());
    }

    #[test]
    fn unreachable_server_is_exit_2() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let cli = Cli::try_parse_from([
            "doctor",
            "--address",
            &format!("127.0.0.1:{port}"),
            "--metrics-url",
            &format!("http://127.0.0.1:{port}/metrics"),
        ])
        .expect("parses");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let err = rt.block_on(doctor(&cli.args)).expect_err("no server");
        assert!(matches!(err, DoctorError::Connect { .. }), "{err}");
    }
}
