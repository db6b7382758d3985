//! `uhrwerk workflow export`: writes the histories of the runs a visibility query selects as JSON
//! files that the SDKs' replayers read.
//!
//! The command lists the runs with ListWorkflowExecutions, reads each run's full history with
//! GetWorkflowExecutionHistory (every page) and writes `<out>/<workflow id>_<run id>.json`
//! holding `{"events": [...]}` in proto3 JSON, the format of `temporal workflow show --output
//! json`, which the Python SDK's `WorkflowHistory.from_json` and the other SDKs' replayers read.
//!
//! The JSON encoder is this file's own: `temporalio-protos` gives proto3 JSON (pbjson) only for
//! the common, failure and enum packages, and the history messages have no serde support at all.
//! Every message that a history event can contain is declared below with `message!`, which
//! destructures the prost struct without `..`, so a field added to the protos fails the build
//! here instead of being dropped silently. The output follows Go's protojson as the CLI prints it:
//! lowerCamelCase names in declaration order, fields at their default value left out (message
//! fields and proto3 `optional` fields are written when set), 64-bit integers as strings, enums
//! by name, bytes in padded base64, timestamps in RFC 3339 with 0, 3, 6 or 9 fractional digits,
//! durations as seconds with an `s`, map keys sorted.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration as StdDuration;

use anyhow::{Context, bail};
use temporalio_protos::temporal::api;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::{EncodingType, HistoryEventFilterType, WorkflowExecutionStatus};
use temporalio_protos::temporal::api::history::v1::{History, HistoryEvent};
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use temporalio_protos::temporal::api::workflowservice::v1::{
    GetWorkflowExecutionHistoryRequest, ListWorkflowExecutionsRequest,
};
use tonic::transport::{Channel, Endpoint};
use uhrwerk_proto::prost::Message as _;
use uhrwerk_proto::wkt;

/// Export workflow histories for replay tests.
///
/// Lists the runs that a visibility query selects and writes each run's full history to
/// `<DIR>/<workflow id>_<run id>.json` as `{"events": [...]}`, the JSON of `temporal workflow
/// show --output json`. The files feed the SDKs' replayers directly (Python:
/// `WorkflowHistory.from_json(workflow_id, text)` and `Replayer.replay_workflows`).
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ExportArgs {
    /// Frontend address of the server, HOST:PORT (plaintext gRPC).
    #[arg(long, default_value = "127.0.0.1:7233", value_name = "HOST:PORT")]
    address: String,
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

type Client = WorkflowServiceClient<Channel>;

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
    let mut client = connect(&args.address).await?;
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

async fn connect(address: &str) -> anyhow::Result<Client> {
    let uri = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
    let endpoint = Endpoint::from_shared(uri)
        .with_context(|| format!("invalid --address {address:?}: expected HOST:PORT"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(RPC_TIMEOUT);
    let channel = endpoint.connect().await.with_context(|| format!("cannot connect to {address}"))?;
    // A history page can be large (big payloads); the server bounds it, not the client.
    Ok(WorkflowServiceClient::new(channel).max_decoding_message_size(usize::MAX))
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

/// The history as `temporal workflow show --output json` prints it: `{"events": [...]}`, indented
/// by two spaces.
fn history_json(events: &[HistoryEvent]) -> String {
    let doc = J::Obj(vec![("events".to_string(), J::Arr(events.iter().map(ToJ::to_j).collect()))]);
    let mut out = String::new();
    doc.write_pretty(&mut out, 0);
    out
}

// ---------------------------------------------------------------------------------------------
// Proto3 JSON

/// A JSON value whose objects keep their keys in insertion order.
#[derive(Debug, Clone, PartialEq)]
enum J {
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    /// Writes the value indented by two spaces per level, as Go's protojson (multiline) and
    /// serde_json's pretty printer do.
    fn write_pretty(&self, out: &mut String, depth: usize) {
        fn indent(out: &mut String, depth: usize) {
            out.push('\n');
            for _ in 0..depth {
                out.push_str("  ");
            }
        }
        fn string(out: &mut String, s: &str) {
            // serde_json escapes exactly what JSON requires: quote, backslash, control characters.
            out.push_str(&serde_json::Value::from(s).to_string());
        }
        match self {
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(&n.to_string()),
            J::Str(s) => string(out, s),
            J::Arr(items) if items.is_empty() => out.push_str("[]"),
            J::Obj(fields) if fields.is_empty() => out.push_str("{}"),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, depth + 1);
                    item.write_pretty(out, depth + 1);
                }
                indent(out, depth);
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, depth + 1);
                    string(out, key);
                    out.push_str(": ");
                    value.write_pretty(out, depth + 1);
                }
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

type Obj = Vec<(String, J)>;

/// The proto3 JSON name of a field: `workflow_task_timeout` -> `workflowTaskTimeout`.
fn json_name(field: &str) -> String {
    let field = field.strip_prefix("r#").unwrap_or(field);
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The JSON key of a oneof member from its prost variant name: `WorkflowTaskStartedEventAttributes`
/// -> `workflowTaskStartedEventAttributes`.
fn variant_json_name(variant: &str) -> String {
    let mut chars = variant.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// A value in proto3 JSON, written whether or not it is the default (list items, map values,
/// oneof members, set optional fields).
trait ToJ {
    fn to_j(&self) -> J;
}

/// A singular, repeated or map field: writes itself into the object unless proto3 JSON leaves it out.
trait Field {
    fn put(&self, obj: &mut Obj, field: &'static str);
}

/// A oneof: writes its set member.
trait Oneof {
    fn put_member(&self, obj: &mut Obj);
}

fn push(obj: &mut Obj, field: &'static str, value: J) {
    obj.push((json_name(field), value));
}

macro_rules! scalar {
    ($($t:ty => |$v:ident| $e:expr;)*) => {$(
        impl ToJ for $t {
            fn to_j(&self) -> J {
                let $v = self;
                $e
            }
        }
        impl Field for $t {
            fn put(&self, obj: &mut Obj, field: &'static str) {
                if *self != <$t>::default() {
                    push(obj, field, self.to_j());
                }
            }
        }
    )*};
}

scalar! {
    i32 => |v| J::Num((*v).into());
    u32 => |v| J::Num((*v).into());
    i64 => |v| J::Str(v.to_string());
    u64 => |v| J::Str(v.to_string());
    f64 => |v| float_j(*v);
    f32 => |v| float_j(f32_as_f64(*v));
    bool => |v| J::Bool(*v);
    String => |v| J::Str(v.clone());
    Vec<u8> => |v| J::Str(base64(v));
}

impl<T: ToJ> ToJ for Box<T> {
    fn to_j(&self) -> J {
        (**self).to_j()
    }
}

impl<T: ToJ> Field for Option<T> {
    fn put(&self, obj: &mut Obj, field: &'static str) {
        if let Some(v) = self {
            push(obj, field, v.to_j());
        }
    }
}

impl<T: ToJ> Field for Vec<T> {
    fn put(&self, obj: &mut Obj, field: &'static str) {
        if !self.is_empty() {
            push(obj, field, J::Arr(self.iter().map(ToJ::to_j).collect()));
        }
    }
}

impl<V: ToJ> Field for HashMap<String, V> {
    fn put(&self, obj: &mut Obj, field: &'static str) {
        if !self.is_empty() {
            let mut entries: Vec<_> = self.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            push(obj, field, J::Obj(entries.into_iter().map(|(k, v)| (k.clone(), v.to_j())).collect()));
        }
    }
}

impl ToJ for wkt::Timestamp {
    fn to_j(&self) -> J {
        J::Str(timestamp(self.seconds, self.nanos))
    }
}

impl ToJ for wkt::Duration {
    fn to_j(&self) -> J {
        J::Str(duration(self.seconds, self.nanos))
    }
}

/// An enum value by name; a number the protos do not know stays a number (as in Go).
fn enum_j(value: i32, name: Option<&'static str>) -> J {
    match name {
        Some(name) => J::Str(name.to_string()),
        None => J::Num(value.into()),
    }
}

/// A float as Go's protojson writes it: integral values without a fraction, NaN and the
/// infinities as strings.
fn float_j(v: f64) -> J {
    if v.is_nan() {
        return J::Str("NaN".into());
    }
    if v.is_infinite() {
        return J::Str(if v > 0.0 { "Infinity" } else { "-Infinity" }.into());
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return J::Num((v as i64).into());
    }
    serde_json::Number::from_f64(v).map_or_else(|| J::Str(v.to_string()), J::Num)
}

/// The f64 with the shortest decimal form of a float32 (0.1f32 -> 0.1, not 0.10000000149).
fn f32_as_f64(v: f32) -> f64 {
    if v.is_finite() { v.to_string().parse().unwrap_or(f64::from(v)) } else { f64::from(v) }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as Go's protojson writes a Timestamp.
fn timestamp(seconds: i64, nanos: i32) -> String {
    let seconds = seconds.saturating_add(i64::from(nanos.div_euclid(1_000_000_000)));
    let nanos = nanos.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    fraction(&mut out, nanos);
    out.push('Z');
    out
}

fn fraction(out: &mut String, nanos: i32) {
    if nanos == 0 {
    } else if nanos % 1_000_000 == 0 {
        let _ = write!(out, ".{:03}", nanos / 1_000_000);
    } else if nanos % 1_000 == 0 {
        let _ = write!(out, ".{:06}", nanos / 1_000);
    } else {
        let _ = write!(out, ".{nanos:09}");
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (H. Hinnant).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds with 0, 3, 6 or 9 fractional digits and an `s`, as Go's protojson writes a Duration.
fn duration(seconds: i64, nanos: i32) -> String {
    let negative = seconds < 0 || nanos < 0;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let _ = write!(out, "{}", seconds.unsigned_abs());
    fraction(&mut out, nanos.unsigned_abs().min(999_999_999) as i32);
    out.push('s');
    out
}

/// Declares the proto3 JSON of a message: every field of the prost struct, in the order of the
/// .proto file, a oneof at the place of its first member. Fields of enum type are marked with
/// `enum(Type)` (`enums` when repeated, `opt_enum` when proto3 `optional`); oneofs with `oneof`.
macro_rules! message {
    ($($seg:ident)::+ { $($field:ident $(: $kind:ident $(($($en:ident)::+))?)?),* $(,)? }) => {
        impl ToJ for api::$($seg)::+ {
            #[allow(deprecated)]
            fn to_j(&self) -> J {
                let api::$($seg)::+ { $($field),* } = self;
                let mut obj = Obj::new();
                $( field!(obj, $field $(, $kind $(, $($en)::+)?)?); )*
                J::Obj(obj)
            }
        }
    };
}

macro_rules! field {
    ($obj:ident, $field:ident) => {
        Field::put($field, &mut $obj, stringify!($field))
    };
    ($obj:ident, $field:ident, oneof) => {
        if let Some(member) = $field {
            Oneof::put_member(member, &mut $obj);
        }
    };
    ($obj:ident, $field:ident, enum, $($en:ident)::+) => {
        if *$field != 0 {
            push(&mut $obj, stringify!($field), enum_value!(*$field, $($en)::+));
        }
    };
    ($obj:ident, $field:ident, opt_enum, $($en:ident)::+) => {
        if let Some(v) = $field {
            push(&mut $obj, stringify!($field), enum_value!(*v, $($en)::+));
        }
    };
    ($obj:ident, $field:ident, enums, $($en:ident)::+) => {
        if !$field.is_empty() {
            let items = $field.iter().map(|v| enum_value!(*v, $($en)::+)).collect();
            push(&mut $obj, stringify!($field), J::Arr(items));
        }
    };
}

macro_rules! enum_value {
    ($v:expr, $($en:ident)::+) => {{
        let v: i32 = $v;
        enum_j(v, api::$($en)::+::try_from(v).ok().map(|e| e.as_str_name()))
    }};
}

/// Declares the members of a oneof (prost enum); members of enum type are marked `enum(Type)`.
macro_rules! oneof {
    ($($seg:ident)::+ { $($variant:ident $(: enum($($en:ident)::+))?),* $(,)? }) => {
        impl Oneof for api::$($seg)::+ {
            #[allow(deprecated)]
            fn put_member(&self, obj: &mut Obj) {
                match self {
                    $(Self::$variant(v) => {
                        obj.push((variant_json_name(stringify!($variant)), oneof_value!(v $(, $($en)::+)?)));
                    })*
                }
            }
        }
    };
}

macro_rules! oneof_value {
    ($v:ident) => {
        ToJ::to_j($v)
    };
    ($v:ident, $($en:ident)::+) => {
        enum_value!(*$v, $($en)::+)
    };
}

// Every message a HistoryEvent can contain, generated from the temporalio-protos descriptors
// (fields in .proto order) and checked by the compiler against the prost structs.
message! { history::v1::HistoryEvent {
    event_id, event_time, event_type: enum(enums::v1::EventType), version, task_id, worker_may_ignore,
    user_metadata, links, principal, event_group_markers, attributes: oneof,
} }
oneof! { history::v1::history_event::Attributes {
    WorkflowExecutionStartedEventAttributes, WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionFailedEventAttributes, WorkflowExecutionTimedOutEventAttributes,
    WorkflowTaskScheduledEventAttributes, WorkflowTaskStartedEventAttributes,
    WorkflowTaskCompletedEventAttributes, WorkflowTaskTimedOutEventAttributes,
    WorkflowTaskFailedEventAttributes, ActivityTaskScheduledEventAttributes,
    ActivityTaskStartedEventAttributes, ActivityTaskCompletedEventAttributes,
    ActivityTaskFailedEventAttributes, ActivityTaskTimedOutEventAttributes, TimerStartedEventAttributes,
    TimerFiredEventAttributes, ActivityTaskCancelRequestedEventAttributes,
    ActivityTaskCanceledEventAttributes, TimerCanceledEventAttributes, MarkerRecordedEventAttributes,
    WorkflowExecutionSignaledEventAttributes, WorkflowExecutionTerminatedEventAttributes,
    WorkflowExecutionCancelRequestedEventAttributes, WorkflowExecutionCanceledEventAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    ExternalWorkflowExecutionCancelRequestedEventAttributes, WorkflowExecutionContinuedAsNewEventAttributes,
    StartChildWorkflowExecutionInitiatedEventAttributes, StartChildWorkflowExecutionFailedEventAttributes,
    ChildWorkflowExecutionStartedEventAttributes, ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionFailedEventAttributes, ChildWorkflowExecutionCanceledEventAttributes,
    ChildWorkflowExecutionTimedOutEventAttributes, ChildWorkflowExecutionTerminatedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes, ExternalWorkflowExecutionSignaledEventAttributes,
    UpsertWorkflowSearchAttributesEventAttributes, WorkflowExecutionUpdateAcceptedEventAttributes,
    WorkflowExecutionUpdateRejectedEventAttributes, WorkflowExecutionUpdateCompletedEventAttributes,
    WorkflowPropertiesModifiedExternallyEventAttributes, ActivityPropertiesModifiedExternallyEventAttributes,
    WorkflowPropertiesModifiedEventAttributes, WorkflowExecutionUpdateAdmittedEventAttributes,
    NexusOperationScheduledEventAttributes, NexusOperationStartedEventAttributes,
    NexusOperationCompletedEventAttributes, NexusOperationFailedEventAttributes,
    NexusOperationCanceledEventAttributes, NexusOperationTimedOutEventAttributes,
    NexusOperationCancelRequestedEventAttributes, WorkflowExecutionOptionsUpdatedEventAttributes,
    NexusOperationCancelRequestCompletedEventAttributes, NexusOperationCancelRequestFailedEventAttributes,
    WorkflowExecutionPausedEventAttributes, WorkflowExecutionUnpausedEventAttributes,
    WorkflowExecutionTimeSkippingTransitionedEventAttributes,
} }
message! { sdk::v1::UserMetadata { summary, details } }
message! { common::v1::Payload { metadata, data, external_payloads } }
message! { common::v1::payload::ExternalPayloadDetails { size_bytes } }
message! { common::v1::Link { variant: oneof } }
oneof! { common::v1::link::Variant { WorkflowEvent, BatchJob, Activity, NexusOperation, Workflow, Callback } }
message! { common::v1::link::WorkflowEvent { namespace, workflow_id, run_id, reference: oneof } }
oneof! { common::v1::link::workflow_event::Reference { EventRef, RequestIdRef } }
message! { common::v1::link::workflow_event::EventReference {
    event_id, event_type: enum(enums::v1::EventType),
} }
message! { common::v1::link::workflow_event::RequestIdReference {
    request_id, event_type: enum(enums::v1::EventType),
} }
message! { common::v1::link::BatchJob { job_id } }
message! { common::v1::link::Activity { namespace, activity_id, run_id } }
message! { common::v1::link::NexusOperation { namespace, operation_id, run_id } }
message! { common::v1::link::Workflow { namespace, workflow_id, run_id, reason } }
message! { common::v1::link::Callback { namespace, execution, component_path, request_id } }
message! { common::v1::Execution { r#type: enum(enums::v1::ExecutionType), business_id, run_id } }
message! { common::v1::Principal { r#type, name } }
message! { sdk::v1::EventGroupMarker { variant: oneof } }
oneof! { sdk::v1::event_group_marker::Variant { Label, InboundEvent, InboundUpdate } }
message! { sdk::v1::event_group_marker::Label { id, label } }
message! { sdk::v1::event_group_marker::InboundEvent { inbound_event_id } }
message! { sdk::v1::event_group_marker::InboundUpdate { inbound_update_id } }
message! { history::v1::WorkflowExecutionStartedEventAttributes {
    workflow_type, parent_workflow_namespace, parent_workflow_namespace_id, parent_workflow_execution,
    parent_initiated_event_id, task_queue, input, workflow_execution_timeout, workflow_run_timeout,
    workflow_task_timeout, continued_execution_run_id, initiator: enum(enums::v1::ContinueAsNewInitiator),
    continued_failure, last_completion_result, original_execution_run_id, identity, first_execution_run_id,
    retry_policy, attempt, workflow_execution_expiration_time, cron_schedule, first_workflow_task_backoff,
    memo, search_attributes, prev_auto_reset_points, header, parent_initiated_event_version, workflow_id,
    source_version_stamp, completion_callbacks, root_workflow_execution, inherited_build_id,
    versioning_override, parent_pinned_worker_deployment_version, priority, inherited_pinned_version,
    inherited_auto_upgrade_info, eager_execution_accepted, declined_target_version_upgrade,
    time_skipping_config, time_skipping_state_propagation,
} }
message! { common::v1::WorkflowType { name } }
message! { common::v1::WorkflowExecution { workflow_id, run_id } }
message! { taskqueue::v1::TaskQueue { name, kind: enum(enums::v1::TaskQueueKind), normal_name } }
message! { common::v1::Payloads { payloads } }
message! { failure::v1::Failure {
    message, source, stack_trace, encoded_attributes, cause, failure_info: oneof,
} }
oneof! { failure::v1::failure::FailureInfo {
    ApplicationFailureInfo, TimeoutFailureInfo, CanceledFailureInfo, TerminatedFailureInfo, ServerFailureInfo,
    ResetWorkflowFailureInfo, ActivityFailureInfo, ChildWorkflowExecutionFailureInfo,
    NexusOperationExecutionFailureInfo, NexusHandlerFailureInfo,
} }
message! { failure::v1::ApplicationFailureInfo {
    r#type, non_retryable, details, next_retry_delay, category: enum(enums::v1::ApplicationErrorCategory),
} }
message! { failure::v1::TimeoutFailureInfo {
    timeout_type: enum(enums::v1::TimeoutType), last_heartbeat_details,
} }
message! { failure::v1::CanceledFailureInfo { details, identity } }
message! { failure::v1::TerminatedFailureInfo { identity } }
message! { failure::v1::ServerFailureInfo { non_retryable } }
message! { failure::v1::ResetWorkflowFailureInfo { last_heartbeat_details } }
message! { failure::v1::ActivityFailureInfo {
    scheduled_event_id, started_event_id, identity, activity_type, activity_id,
    retry_state: enum(enums::v1::RetryState),
} }
message! { common::v1::ActivityType { name } }
message! { failure::v1::ChildWorkflowExecutionFailureInfo {
    namespace, workflow_execution, workflow_type, initiated_event_id, started_event_id,
    retry_state: enum(enums::v1::RetryState),
} }
message! { failure::v1::NexusOperationFailureInfo {
    scheduled_event_id, endpoint, service, operation, operation_id, operation_token,
} }
message! { failure::v1::NexusHandlerFailureInfo {
    r#type, retry_behavior: enum(enums::v1::NexusHandlerErrorRetryBehavior),
} }
message! { common::v1::RetryPolicy {
    initial_interval, backoff_coefficient, maximum_interval, maximum_attempts, non_retryable_error_types,
} }
message! { common::v1::Memo { fields } }
message! { common::v1::SearchAttributes { indexed_fields } }
message! { workflow::v1::ResetPoints { points } }
message! { workflow::v1::ResetPointInfo {
    build_id, binary_checksum, run_id, first_workflow_task_completed_id, create_time, expire_time, resettable,
} }
message! { common::v1::Header { fields } }
message! { common::v1::WorkerVersionStamp { build_id, use_versioning } }
message! { common::v1::Callback { variant: oneof, links } }
oneof! { common::v1::callback::Variant { Nexus, Internal, NexusHandler } }
message! { common::v1::callback::Nexus { url, header } }
message! { common::v1::callback::Internal { data } }
message! { common::v1::callback::NexusHandler { task_queue_name, service, operation, source_context } }
message! { workflow::v1::VersioningOverride {
    r#override: oneof, behavior: enum(enums::v1::VersioningBehavior), deployment, pinned_version,
} }
oneof! { workflow::v1::versioning_override::Override { Pinned, AutoUpgrade, OneTime } }
message! { workflow::v1::versioning_override::PinnedOverride {
    behavior: enum(workflow::v1::versioning_override::PinnedOverrideBehavior), version,
} }
message! { deployment::v1::WorkerDeploymentVersion { build_id, deployment_name } }
message! { workflow::v1::versioning_override::OneTimeOverride { target_deployment_version } }
message! { deployment::v1::Deployment { series_name, build_id } }
message! { common::v1::Priority { priority_key, fairness_key, fairness_weight } }
message! { deployment::v1::InheritedAutoUpgradeInfo {
    source_deployment_version, source_deployment_revision_number,
    continue_as_new_initial_versioning_behavior: enum(enums::v1::ContinueAsNewVersioningBehavior),
} }
message! { history::v1::DeclinedTargetVersionUpgrade { deployment_version, revision_number } }
message! { common::v1::TimeSkippingConfig {
    enabled, fast_forward_config, disable_propagation, max_session_skip_count,
} }
message! { common::v1::FastForwardConfig { id, duration } }
message! { common::v1::TimeSkippingStatePropagation {
    initial_skipped_duration, fast_forward_target_time, initial_skip_count,
} }
message! { history::v1::WorkflowExecutionCompletedEventAttributes {
    result, workflow_task_completed_event_id, new_execution_run_id,
} }
message! { history::v1::WorkflowExecutionFailedEventAttributes {
    failure, retry_state: enum(enums::v1::RetryState), workflow_task_completed_event_id, new_execution_run_id,
} }
message! { history::v1::WorkflowExecutionTimedOutEventAttributes {
    retry_state: enum(enums::v1::RetryState), new_execution_run_id,
} }
message! { history::v1::WorkflowTaskScheduledEventAttributes { task_queue, start_to_close_timeout, attempt } }
message! { history::v1::WorkflowTaskStartedEventAttributes {
    scheduled_event_id, identity, request_id, suggest_continue_as_new,
    suggest_continue_as_new_reasons: enums(enums::v1::SuggestContinueAsNewReason),
    target_worker_deployment_version_changed, history_size_bytes, worker_version, build_id_redirect_counter,
} }
message! { history::v1::WorkflowTaskCompletedEventAttributes {
    scheduled_event_id, started_event_id, identity, binary_checksum, worker_version, sdk_metadata,
    metering_metadata, deployment, versioning_behavior: enum(enums::v1::VersioningBehavior),
    worker_deployment_version, worker_deployment_name, deployment_version,
} }
message! { sdk::v1::WorkflowTaskCompletedMetadata {
    core_used_flags, lang_used_flags, sdk_name, sdk_version,
} }
message! { common::v1::MeteringMetadata { nonfirst_local_activity_execution_attempts } }
message! { history::v1::WorkflowTaskTimedOutEventAttributes {
    scheduled_event_id, started_event_id, timeout_type: enum(enums::v1::TimeoutType),
} }
message! { history::v1::WorkflowTaskFailedEventAttributes {
    scheduled_event_id, started_event_id, cause: enum(enums::v1::WorkflowTaskFailedCause), failure, identity,
    base_run_id, new_run_id, fork_event_version, binary_checksum, worker_version,
} }
message! { history::v1::ActivityTaskScheduledEventAttributes {
    activity_id, activity_type, task_queue, header, input, schedule_to_close_timeout,
    schedule_to_start_timeout, start_to_close_timeout, heartbeat_timeout, workflow_task_completed_event_id,
    retry_policy, use_workflow_build_id, priority,
} }
message! { history::v1::ActivityTaskStartedEventAttributes {
    scheduled_event_id, identity, request_id, attempt, last_failure, worker_version,
    build_id_redirect_counter,
} }
message! { history::v1::ActivityTaskCompletedEventAttributes {
    result, scheduled_event_id, started_event_id, identity, worker_version,
} }
message! { history::v1::ActivityTaskFailedEventAttributes {
    failure, scheduled_event_id, started_event_id, identity, retry_state: enum(enums::v1::RetryState),
    worker_version, cause: enum(enums::v1::ActivityTaskFailedCause),
} }
message! { history::v1::ActivityTaskTimedOutEventAttributes {
    failure, scheduled_event_id, started_event_id, retry_state: enum(enums::v1::RetryState),
} }
message! { history::v1::TimerStartedEventAttributes {
    timer_id, start_to_fire_timeout, workflow_task_completed_event_id,
} }
message! { history::v1::TimerFiredEventAttributes { timer_id, started_event_id } }
message! { history::v1::ActivityTaskCancelRequestedEventAttributes {
    scheduled_event_id, workflow_task_completed_event_id,
} }
message! { history::v1::ActivityTaskCanceledEventAttributes {
    details, latest_cancel_requested_event_id, scheduled_event_id, started_event_id, identity, worker_version,
} }
message! { history::v1::TimerCanceledEventAttributes {
    timer_id, started_event_id, workflow_task_completed_event_id, identity,
} }
message! { history::v1::MarkerRecordedEventAttributes {
    marker_name, details, workflow_task_completed_event_id, header, failure,
} }
message! { history::v1::WorkflowExecutionSignaledEventAttributes {
    signal_name, input, identity, header, skip_generate_workflow_task, external_workflow_execution,
    request_id,
} }
message! { history::v1::WorkflowExecutionTerminatedEventAttributes { reason, details, identity } }
message! { history::v1::WorkflowExecutionCancelRequestedEventAttributes {
    cause, external_initiated_event_id, external_workflow_execution, identity,
} }
message! { history::v1::WorkflowExecutionCanceledEventAttributes {
    workflow_task_completed_event_id, details,
} }
message! { history::v1::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
    workflow_task_completed_event_id, namespace, namespace_id, workflow_execution, control,
    child_workflow_only, reason,
} }
message! { history::v1::RequestCancelExternalWorkflowExecutionFailedEventAttributes {
    cause: enum(enums::v1::CancelExternalWorkflowExecutionFailedCause), workflow_task_completed_event_id,
    namespace, namespace_id, workflow_execution, initiated_event_id, control,
} }
message! { history::v1::ExternalWorkflowExecutionCancelRequestedEventAttributes {
    initiated_event_id, namespace, namespace_id, workflow_execution,
} }
message! { history::v1::WorkflowExecutionContinuedAsNewEventAttributes {
    new_execution_run_id, workflow_type, task_queue, input, workflow_run_timeout, workflow_task_timeout,
    workflow_task_completed_event_id, backoff_start_interval,
    initiator: enum(enums::v1::ContinueAsNewInitiator), failure, last_completion_result, header, memo,
    search_attributes, inherit_build_id,
    initial_versioning_behavior: enum(enums::v1::ContinueAsNewVersioningBehavior),
} }
message! { history::v1::StartChildWorkflowExecutionInitiatedEventAttributes {
    namespace, namespace_id, workflow_id, workflow_type, task_queue, input, workflow_execution_timeout,
    workflow_run_timeout, workflow_task_timeout, parent_close_policy: enum(enums::v1::ParentClosePolicy),
    control, workflow_task_completed_event_id,
    workflow_id_reuse_policy: enum(enums::v1::WorkflowIdReusePolicy), retry_policy, cron_schedule, header,
    memo, search_attributes, inherit_build_id, priority, time_skipping_config,
    time_skipping_state_propagation, versioning_override,
} }
message! { history::v1::StartChildWorkflowExecutionFailedEventAttributes {
    namespace, namespace_id, workflow_id, workflow_type,
    cause: enum(enums::v1::StartChildWorkflowExecutionFailedCause), control, initiated_event_id,
    workflow_task_completed_event_id,
} }
message! { history::v1::ChildWorkflowExecutionStartedEventAttributes {
    namespace, namespace_id, initiated_event_id, workflow_execution, workflow_type, header,
} }
message! { history::v1::ChildWorkflowExecutionCompletedEventAttributes {
    result, namespace, namespace_id, workflow_execution, workflow_type, initiated_event_id, started_event_id,
} }
message! { history::v1::ChildWorkflowExecutionFailedEventAttributes {
    failure, namespace, namespace_id, workflow_execution, workflow_type, initiated_event_id, started_event_id,
    retry_state: enum(enums::v1::RetryState),
} }
message! { history::v1::ChildWorkflowExecutionCanceledEventAttributes {
    details, namespace, namespace_id, workflow_execution, workflow_type, initiated_event_id, started_event_id,
} }
message! { history::v1::ChildWorkflowExecutionTimedOutEventAttributes {
    namespace, namespace_id, workflow_execution, workflow_type, initiated_event_id, started_event_id,
    retry_state: enum(enums::v1::RetryState),
} }
message! { history::v1::ChildWorkflowExecutionTerminatedEventAttributes {
    namespace, namespace_id, workflow_execution, workflow_type, initiated_event_id, started_event_id,
} }
message! { history::v1::SignalExternalWorkflowExecutionInitiatedEventAttributes {
    workflow_task_completed_event_id, namespace, namespace_id, workflow_execution, signal_name, input,
    control, child_workflow_only, header,
} }
message! { history::v1::SignalExternalWorkflowExecutionFailedEventAttributes {
    cause: enum(enums::v1::SignalExternalWorkflowExecutionFailedCause), workflow_task_completed_event_id,
    namespace, namespace_id, workflow_execution, initiated_event_id, control,
} }
message! { history::v1::ExternalWorkflowExecutionSignaledEventAttributes {
    initiated_event_id, namespace, namespace_id, workflow_execution, control,
} }
message! { history::v1::UpsertWorkflowSearchAttributesEventAttributes {
    workflow_task_completed_event_id, search_attributes,
} }
message! { history::v1::WorkflowExecutionUpdateAcceptedEventAttributes {
    protocol_instance_id, accepted_request_message_id, accepted_request_sequencing_event_id, accepted_request,
} }
message! { update::v1::Request { meta, input, request_id, completion_callbacks, links } }
message! { update::v1::Meta { update_id, identity } }
message! { update::v1::Input { header, name, args } }
message! { history::v1::WorkflowExecutionUpdateRejectedEventAttributes {
    protocol_instance_id, rejected_request_message_id, rejected_request_sequencing_event_id, rejected_request,
    failure,
} }
message! { history::v1::WorkflowExecutionUpdateCompletedEventAttributes { meta, accepted_event_id, outcome } }
message! { update::v1::Outcome { value: oneof } }
oneof! { update::v1::outcome::Value { Success, Failure } }
message! { history::v1::WorkflowPropertiesModifiedExternallyEventAttributes {
    new_task_queue, new_workflow_task_timeout, new_workflow_run_timeout, new_workflow_execution_timeout,
    upserted_memo,
} }
message! { history::v1::ActivityPropertiesModifiedExternallyEventAttributes {
    scheduled_event_id, new_retry_policy,
} }
message! { history::v1::WorkflowPropertiesModifiedEventAttributes {
    workflow_task_completed_event_id, upserted_memo,
} }
message! { history::v1::WorkflowExecutionUpdateAdmittedEventAttributes {
    request, origin: enum(enums::v1::UpdateAdmittedEventOrigin),
} }
message! { history::v1::NexusOperationScheduledEventAttributes {
    endpoint, service, operation, input, schedule_to_close_timeout, nexus_header,
    workflow_task_completed_event_id, request_id, endpoint_id, schedule_to_start_timeout,
    start_to_close_timeout,
} }
message! { history::v1::NexusOperationStartedEventAttributes {
    scheduled_event_id, operation_id, request_id, operation_token,
} }
message! { history::v1::NexusOperationCompletedEventAttributes { scheduled_event_id, result, request_id } }
message! { history::v1::NexusOperationFailedEventAttributes { scheduled_event_id, failure, request_id } }
message! { history::v1::NexusOperationCanceledEventAttributes { scheduled_event_id, failure, request_id } }
message! { history::v1::NexusOperationTimedOutEventAttributes { scheduled_event_id, failure, request_id } }
message! { history::v1::NexusOperationCancelRequestedEventAttributes {
    scheduled_event_id, workflow_task_completed_event_id,
} }
message! { history::v1::WorkflowExecutionOptionsUpdatedEventAttributes {
    versioning_override, unset_versioning_override, attached_request_id, attached_completion_callbacks,
    identity, priority, time_skipping_config, time_skipping_config_updated, workflow_update_options,
} }
message! { history::v1::workflow_execution_options_updated_event_attributes::WorkflowUpdateOptionsUpdate {
    update_id, attached_request_id, attached_completion_callbacks,
} }
message! { history::v1::NexusOperationCancelRequestCompletedEventAttributes {
    requested_event_id, workflow_task_completed_event_id, scheduled_event_id,
} }
message! { history::v1::NexusOperationCancelRequestFailedEventAttributes {
    requested_event_id, workflow_task_completed_event_id, failure, scheduled_event_id,
} }
message! { history::v1::WorkflowExecutionPausedEventAttributes { identity, reason, request_id } }
message! { history::v1::WorkflowExecutionUnpausedEventAttributes { identity, reason, request_id } }
message! { history::v1::WorkflowExecutionTimeSkippingTransitionedEventAttributes {
    target_time, disabled_after_fast_forward, wall_clock_time,
} }

#[cfg(test)]
mod tests {
    use super::*;
    use api::common::v1::{Payload, Payloads, WorkflowType};
    use api::enums::v1::{EventType, TaskQueueKind};
    use api::history::v1::{WorkflowExecutionStartedEventAttributes, history_event::Attributes};
    use api::taskqueue::v1::TaskQueue;

    #[test]
    fn timestamps_use_rfc3339_with_0_3_6_or_9_digits() {
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_795_849_591, 506_646_065), "2026-11-28T07:06:31.506646065Z");
        assert_eq!(timestamp(951_782_400, 120_000_000), "2000-02-29T00:00:00.120Z");
        assert_eq!(timestamp(951_782_400, 120_000), "2000-02-29T00:00:00.000120Z");
        assert_eq!(timestamp(-1, 0), "1969-12-31T23:59:59Z");
        assert_eq!(timestamp(253_402_300_799, 999_999_999), "9999-12-31T23:59:59.999999999Z");
        // Nanos outside [0, 1e9) are carried into the seconds.
        assert_eq!(timestamp(10, -500_000_000), "1970-01-01T00:00:09.500Z");
    }

    #[test]
    fn durations_are_seconds_with_s() {
        assert_eq!(duration(0, 0), "0s");
        assert_eq!(duration(10, 0), "10s");
        assert_eq!(duration(0, 100_000_000), "0.100s");
        assert_eq!(duration(1, 500), "1.000000500s");
        assert_eq!(duration(2, 1_000), "2.000001s");
        assert_eq!(duration(-1, -500_000_000), "-1.500s");
        assert_eq!(duration(0, -1), "-0.000000001s");
    }

    #[test]
    fn base64_is_standard_and_padded() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"json/plain"), "anNvbi9wbGFpbg==");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn floats_look_like_go() {
        assert_eq!(float_j(2.0), J::Num(2.into()));
        assert_eq!(float_j(1.5), J::Num(serde_json::Number::from_f64(1.5).expect("finite")));
        assert_eq!(float_j(f64::NAN), J::Str("NaN".into()));
        assert_eq!(float_j(f64::NEG_INFINITY), J::Str("-Infinity".into()));
        assert_eq!(f32_as_f64(0.1), 0.1);
    }

    #[test]
    fn names() {
        assert_eq!(json_name("workflow_task_timeout"), "workflowTaskTimeout");
        assert_eq!(json_name("r#type"), "type");
        assert_eq!(variant_json_name("TimerFiredEventAttributes"), "timerFiredEventAttributes");
        assert_eq!(file_name("order/1 a", "r-1"), "order_1_a_r-1.json");
        assert_eq!(file_name("", "r"), "__r.json");
        assert_eq!(file_name("..", "r"), "_.._r.json");
        let long = "x".repeat(5000);
        assert!(file_name(&long, "01a220ff-aa3f-7748-bd28-d3a15e82e2c8").len() < 255);
    }

    #[test]
    fn history_event_json() {
        let event = HistoryEvent {
            event_id: 1,
            event_time: Some(wkt::Timestamp { seconds: 1_795_849_591, nanos: 506_646_065 }),
            event_type: EventType::WorkflowExecutionStarted as i32,
            task_id: 1_049_517,
            attributes: Some(Attributes::WorkflowExecutionStartedEventAttributes(
                WorkflowExecutionStartedEventAttributes {
                    workflow_type: Some(WorkflowType { name: "Order".into() }),
                    task_queue: Some(TaskQueue {
                        name: "tq".into(),
                        kind: TaskQueueKind::Normal as i32,
                        normal_name: String::new(),
                    }),
                    input: Some(Payloads {
                        payloads: vec![Payload {
                            metadata: HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]),
                            data: b"\"o1\"".to_vec(),
                            external_payloads: Vec::new(),
                        }],
                    }),
                    workflow_task_timeout: Some(wkt::Duration { seconds: 10, nanos: 0 }),
                    first_workflow_task_backoff: Some(wkt::Duration::default()),
                    attempt: 1,
                    priority: Some(Default::default()),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let expected = r#"{
  "events": [
    {
      "eventId": "1",
      "eventTime": "2026-11-28T07:06:31.506646065Z",
      "eventType": "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
      "taskId": "1049517",
      "workflowExecutionStartedEventAttributes": {
        "workflowType": {
          "name": "Order"
        },
        "taskQueue": {
          "name": "tq",
          "kind": "TASK_QUEUE_KIND_NORMAL"
        },
        "input": {
          "payloads": [
            {
              "metadata": {
                "encoding": "anNvbi9wbGFpbg=="
              },
              "data": "Im8xIg=="
            }
          ]
        },
        "workflowTaskTimeout": "10s",
        "attempt": 1,
        "firstWorkflowTaskBackoff": "0s",
        "priority": {}
      }
    }
  ]
}"#;
        assert_eq!(history_json(&[event]), expected);
        assert_eq!(history_json(&[]), "{\n  \"events\": []\n}");
    }

    #[test]
    fn unknown_enum_values_stay_numbers() {
        let event = HistoryEvent { event_id: 1, event_type: 9999, ..Default::default() };
        assert!(history_json(&[event]).contains("\"eventType\": 9999"));
    }
}
