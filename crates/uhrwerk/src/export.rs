//! `uhrwerk workflow export`: writes the histories of the runs a visibility query selects as JSON
//! files that the SDKs' replayers read.
//!
//! The command lists the runs with ListWorkflowExecutions, reads each run's full history with
//! GetWorkflowExecutionHistory (every page, retrying transient errors) and writes
//! `<out>/<workflow id>_<run id>.json` holding `{"events": [...]}` in the JSON of `temporal
//! workflow show --output json` ([`uhrwerk_server::protojson`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration as StdDuration;

use anyhow::{Context, bail};
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::{EncodingType, HistoryEventFilterType, WorkflowExecutionStatus};
use temporalio_protos::temporal::api::history::v1::{History, HistoryEvent};
use temporalio_protos::temporal::api::workflowservice::v1::{
    GetWorkflowExecutionHistoryRequest, ListWorkflowExecutionsRequest,
};
use uhrwerk_proto::prost::Message as _;

use uhrwerk_server::protojson::history_json;

/// Export workflow histories for replay tests.
///
/// Lists the runs that a visibility query selects and writes each run's full history to
/// `<DIR>/<workflow id>_<run id>.json` as `{"events": [...]}`, the JSON of `temporal workflow
/// show --output json`. The files feed the SDKs' replayers directly (Python:
/// `WorkflowHistory.from_json(workflow_id, text)` and `Replayer.replay_workflows`).
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ExportArgs {
    /// Frontend address of the server, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:7233", value_name = "HOST:PORT", env = "TEMPORAL_ADDRESS")]
    address: String,
    #[command(flatten)]
    connection: uhrwerk_doctor::connection::ConnectionArgs,
    /// Namespace of the runs.
    #[arg(short, long, default_value = "default", value_name = "NS")]
    namespace: String,
    /// Visibility query that selects the runs, e.g. "WorkflowType = 'Order' AND ExecutionStatus =
    /// 'Completed'". Without it, every run of the namespace is exported. Open runs are exported
    /// with the history they have so far.
    #[arg(short, long, value_name = "QUERY")]
    query: Option<String>,
    /// Directory for the history files, created if missing. Each run goes to
    /// <workflow id>_<run id>.json, with characters other than letters, digits, '.', '-' and '_'
    /// in the workflow id replaced by '_'.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Export at most N runs: the first N in the order the server lists them (newest first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Replace history files that already exist. Without it, a run whose file exists is not
    /// fetched and counts as failed.
    #[arg(long)]
    overwrite: bool,
    /// Runs per ListWorkflowExecutions page and events per GetWorkflowExecutionHistory page asked
    /// of the server (0: the server's default). For tests of the paging.
    #[arg(long, hide = true, default_value_t = 0, value_name = "N")]
    page_size: u32,
}

const AFTER_HELP: &str = "\
Each file holds {\"events\": [...]} in proto3 JSON, as `temporal workflow show --output json` prints it;
the Python SDK reads it with WorkflowHistory.from_json(workflow_id, text) and replays it with
Replayer(workflows=[...]).replay_workflows(histories).

Progress and a summary go to stderr. Exit status: 0 when every selected run was written (also when
none matched), 1 when some histories could not be fetched or written (they are listed at the end),
2 on usage errors, when the server cannot be reached, or when it rejects the namespace or query.";

pub fn run(args: &ExportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("uhrwerk workflow export: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(export(args)) {
        Ok(summary) if summary.failed.is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("uhrwerk workflow export: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Per-request deadline; a history page or a visibility page that takes longer is an error.
const RPC_TIMEOUT: StdDuration = StdDuration::from_secs(60);
const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// Runs asked for per ListWorkflowExecutions page.
const LIST_PAGE_SIZE: u64 = 1000;
/// How often a call that failed with a transient status (Unavailable, ResourceExhausted, ...) is tried.
const ATTEMPTS: u32 = 3;
/// Longest workflow id part of a file name, in bytes, so that `<id>_<run id>.json` stays under
/// the usual 255-byte limit of file names.
const MAX_ID_IN_FILE_NAME: usize = 200;

use uhrwerk_doctor::connection::Client;

/// One run that the query selected.
struct Run {
    workflow_id: String,
    run_id: String,
    open: bool,
}

/// What the export did; runs that failed are listed with their error.
struct Summary {
    failed: Vec<(String, String, String)>,
}

/// Connects, lists and exports. Errors returned from here are usage or connection errors (exit 2);
/// a run that fails is reported and counted in the summary (exit 1).
async fn export(args: &ExportArgs) -> anyhow::Result<Summary> {
    let query = args.query.as_deref().unwrap_or("");
    let mut client = connect(&args.address, &args.connection).await?;
    let runs = list_runs(&mut client, &args.namespace, query, args.limit, args.page_size)
        .await
        .with_context(|| format!("cannot list the runs of namespace {:?} on {}", args.namespace, args.address))?;
    let total = runs.len();
    if total == 0 {
        let what =
            if query.is_empty() { "no runs in the namespace".to_string() } else { format!("no runs match {query:?}") };
        eprintln!("{what}; nothing exported");
        return Ok(Summary { failed: Vec::new() });
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {}", args.out.display()))?;
    eprintln!(
        "exporting {total} run(s) from namespace {:?} on {} to {}",
        args.namespace,
        args.address,
        args.out.display()
    );
    let mut failed = Vec::new();
    let mut events_total = 0usize;
    for (i, run) in runs.iter().enumerate() {
        let n = i + 1;
        let path = args.out.join(file_name(&run.workflow_id, &run.run_id));
        match export_run(&mut client, &args.namespace, run, &path, args).await {
            Ok(events) => {
                events_total += events;
                let open = if run.open { ", still open: partial history" } else { "" };
                eprintln!(
                    "[{n}/{total}] {} (run {}): {events} events{open} -> {}",
                    run.workflow_id,
                    run.run_id,
                    path.display()
                );
            }
            Err(e) => {
                let message = format!("{e:#}");
                eprintln!("[{n}/{total}] FAILED {} (run {}): {message}", run.workflow_id, run.run_id);
                failed.push((run.workflow_id.clone(), run.run_id.clone(), message));
            }
        }
    }
    let written = total - failed.len();
    eprintln!("exported {written} of {total} run(s) ({events_total} events) to {}", args.out.display());
    if !failed.is_empty() {
        eprintln!("{} run(s) could not be exported:", failed.len());
        for (wid, rid, message) in &failed {
            eprintln!("  {wid} (run {rid}): {message}");
        }
    }
    Ok(Summary { failed })
}

async fn connect(address: &str, connection: &uhrwerk_doctor::connection::ConnectionArgs) -> anyhow::Result<Client> {
    let client = uhrwerk_doctor::connection::connect(address, connection, CONNECT_TIMEOUT, RPC_TIMEOUT)
        .await
        .map_err(|detail| anyhow::anyhow!("cannot connect to {address}: {detail}"))?;
    // A history page can be large (big payloads); the server bounds it, not the client.
    Ok(client.max_decoding_message_size(usize::MAX))
}

fn transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::ResourceExhausted
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
    )
}

fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

/// Calls `call` until it succeeds, fails with a non-transient status or has been tried ATTEMPTS times.
async fn with_retries<T, F, Fut>(mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if attempt < ATTEMPTS && transient(&status) => {
                tokio::time::sleep(StdDuration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(status) => return Err(status_error(status)),
        }
    }
}

/// Pages through ListWorkflowExecutions; each run once, in the order the server lists them.
async fn list_runs(
    client: &mut Client,
    namespace: &str,
    query: &str,
    limit: Option<u64>,
    page_size: u32,
) -> anyhow::Result<Vec<Run>> {
    let limit = limit.unwrap_or(u64::MAX);
    let page_limit = if page_size == 0 { LIST_PAGE_SIZE } else { u64::from(page_size) };
    let mut runs = Vec::new();
    let mut seen = HashSet::new();
    let mut token = Vec::new();
    loop {
        let page_size = i32::try_from(page_limit.min(limit - runs.len() as u64)).unwrap_or(i32::MAX);
        let request = ListWorkflowExecutionsRequest {
            namespace: namespace.to_string(),
            page_size,
            next_page_token: token.clone(),
            query: query.to_string(),
        };
        let page = with_retries(|| {
            let mut client = client.clone();
            let request = request.clone();
            async move { client.list_workflow_executions(request).await }
        })
        .await?;
        for info in page.executions {
            let Some(execution) = info.execution else { continue };
            if seen.insert((execution.workflow_id.clone(), execution.run_id.clone())) {
                runs.push(Run {
                    workflow_id: execution.workflow_id,
                    run_id: execution.run_id,
                    open: info.status == WorkflowExecutionStatus::Running as i32,
                });
                if runs.len() as u64 >= limit {
                    return Ok(runs);
                }
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(runs);
        }
        if page.next_page_token == token {
            bail!("the server returned the same next_page_token twice");
        }
        token = page.next_page_token;
    }
}

/// Reads every page of a run's history; the events must be numbered 1, 2, 3, ...
async fn fetch_history(
    client: &mut Client,
    namespace: &str,
    run: &Run,
    page_size: u32,
) -> anyhow::Result<Vec<HistoryEvent>> {
    let mut events: Vec<HistoryEvent> = Vec::new();
    let mut token = Vec::new();
    loop {
        let request = GetWorkflowExecutionHistoryRequest {
            namespace: namespace.to_string(),
            execution: Some(WorkflowExecution { workflow_id: run.workflow_id.clone(), run_id: run.run_id.clone() }),
            maximum_page_size: i32::try_from(page_size).unwrap_or(i32::MAX),
            next_page_token: token.clone(),
            history_event_filter_type: HistoryEventFilterType::AllEvent as i32,
            ..Default::default()
        };
        let page = with_retries(|| {
            let mut client = client.clone();
            let request = request.clone();
            async move { client.get_workflow_execution_history(request).await }
        })
        .await
        .context("GetWorkflowExecutionHistory failed")?;
        if page.archived {
            bail!("the history is archived; this command reads histories from the server only");
        }
        if let Some(history) = page.history {
            events.extend(history.events);
        }
        for blob in page.raw_history {
            if blob.encoding_type != EncodingType::Proto3 as i32
                && blob.encoding_type != EncodingType::Unspecified as i32
            {
                bail!("raw history blob with unsupported encoding {}", blob.encoding_type);
            }
            let history = History::decode(blob.data.as_slice()).context("cannot decode a raw history blob")?;
            events.extend(history.events);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        if page.next_page_token == token {
            bail!("the server returned the same next_page_token twice");
        }
        token = page.next_page_token;
    }
    if events.is_empty() {
        bail!("the server returned an empty history");
    }
    for (i, event) in events.iter().enumerate() {
        if event.event_id != i as i64 + 1 {
            bail!("history is not contiguous: event #{} has id {}", i + 1, event.event_id);
        }
    }
    Ok(events)
}

/// Fetches one run's history and writes its file (through a temporary file and a rename, so a
/// file that exists is complete). Returns the number of events.
async fn export_run(
    client: &mut Client,
    namespace: &str,
    run: &Run,
    path: &Path,
    args: &ExportArgs,
) -> anyhow::Result<usize> {
    if !args.overwrite && path.exists() {
        bail!("{} already exists (pass --overwrite to replace it)", path.display());
    }
    let events = fetch_history(client, namespace, run, args.page_size).await?;
    let mut text = history_json(&events);
    text.push('\n');
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    std::fs::write(&tmp, text.as_bytes()).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()));
    }
    Ok(events.len())
}

/// `<workflow id>_<run id>.json` with every character outside `[A-Za-z0-9._-]` replaced by `_`;
/// a long workflow id is cut (the run id keeps the name unique).
fn file_name(workflow_id: &str, run_id: &str) -> String {
    fn clean(s: &str, max: usize) -> String {
        let mut out = String::new();
        for c in s.chars() {
            if out.len() >= max {
                break;
            }
            out.push(if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' });
        }
        out
    }
    let mut wid = clean(workflow_id, MAX_ID_IN_FILE_NAME);
    if wid.is_empty() || wid.starts_with('.') {
        wid.insert(0, '_');
    }
    format!("{wid}_{}.json", clean(run_id, 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(file_name("order/1 a", "r-1"), "order_1_a_r-1.json");
        assert_eq!(file_name("", "r"), "__r.json");
        assert_eq!(file_name("..", "r"), "_.._r.json");
        let long = "x".repeat(5000);
        assert!(file_name(&long, "01a220ff-aa3f-7748-bd28-d3a15e82e2c8").len() < 255);
    }
}
