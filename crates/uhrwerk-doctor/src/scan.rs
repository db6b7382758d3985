//! The scan: reads a server's state through the Temporal gRPC API (visibility lists, histories,
//! describe calls, DescribeTaskQueue) into a [`Snapshot`], bounded by `--max-runs`, with progress
//! on stderr for long scans.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::taskqueue::v1 as taskqueue_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as service_pb;
use tokio::task::JoinSet;

use crate::checks::Snapshot;
use crate::error::DoctorError;
use crate::facts::{HistoryScan, QueueFacts, QueueKind, RunFacts};
use crate::limits::Limits;
use crate::timefmt::rfc3339;

pub use crate::connection::Client;

/// At most this many task queues are described.
const MAX_QUEUES: usize = 500;
const PAGE_SIZE: usize = 100;
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub struct ScanOptions {
    pub namespace: String,
    pub max_runs: usize,
    pub now_ms: i64,
    pub since_ms: i64,
    pub concurrency: usize,
}

pub struct ScanResult {
    pub snapshot: Snapshot,
    pub open_runs: usize,
    pub closed_runs: usize,
    /// More runs matched than `--max-runs` allowed.
    pub truncated: bool,
    pub notes: Vec<String>,
}

pub async fn scan(client: &Client, opts: &ScanOptions, limits: &Limits) -> Result<ScanResult, DoctorError> {
    let mut client = client.clone();
    client
        .describe_namespace(service_pb::DescribeNamespaceRequest {
            namespace: opts.namespace.clone(),
            ..Default::default()
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => {
                DoctorError::Usage(format!("namespace {} not found on the server", opts.namespace))
            }
            _ => DoctorError::rpc("DescribeNamespace", s),
        })?;

    let mut notes = Vec::new();
    let mut runs: Vec<RunFacts> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut truncated = false;
    // Big open runs first (visibility may lag for open runs on Temporal, so all open runs follow),
    // then the runs closed inside the window.
    let big = format!(
        "ExecutionStatus = 'Running' AND (HistoryLength >= {} OR HistorySizeBytes >= {})",
        limits.history_count_suggest().min(limits.history_count_warn()).max(1),
        limits.history_size_suggest().min(limits.history_size_warn()).max(1)
    );
    let closed = format!("ExecutionStatus != 'Running' AND CloseTime > '{}'", rfc3339(opts.now_ms - opts.since_ms));
    for (query, optional) in [(big, true), ("ExecutionStatus = 'Running'".to_string(), false), (closed, false)] {
        match list(&mut client, &opts.namespace, &query, opts.max_runs, &mut runs, &mut seen).await {
            Ok(more) => truncated |= more,
            Err(e) if optional => notes.push(format!("could not list the largest runs first ({e})")),
            Err(e) => return Err(e),
        }
    }
    if truncated {
        notes.push(format!(
            "more runs match than --max-runs {}: scanned the first {} (open runs first)",
            opts.max_runs,
            runs.len()
        ));
    }

    let runs = fetch_runs(&client, &opts.namespace, runs, opts.concurrency.max(1), &mut notes).await?;
    let open_runs = runs.iter().filter(|r| r.open).count();
    let closed_runs = runs.len() - open_runs;

    let mut queue_names: BTreeSet<(String, QueueKind)> = BTreeSet::new();
    for run in &runs {
        if !run.task_queue.is_empty() {
            queue_names.insert((run.task_queue.clone(), QueueKind::Workflow));
        }
        for a in &run.history.activities {
            if !a.task_queue.is_empty() {
                queue_names.insert((a.task_queue.clone(), QueueKind::Activity));
            }
        }
    }
    if queue_names.len() > MAX_QUEUES {
        notes.push(format!("{} task queues found; described the first {MAX_QUEUES}", queue_names.len()));
    }
    let mut queues = Vec::new();
    for (name, kind) in queue_names.into_iter().take(MAX_QUEUES) {
        let task_queue_type = match kind {
            QueueKind::Workflow => enums_pb::TaskQueueType::Workflow,
            QueueKind::Activity => enums_pb::TaskQueueType::Activity,
        };
        let req = service_pb::DescribeTaskQueueRequest {
            namespace: opts.namespace.clone(),
            task_queue: Some(taskqueue_pb::TaskQueue {
                name: name.clone(),
                kind: enums_pb::TaskQueueKind::Normal as i32,
                ..Default::default()
            }),
            task_queue_type: task_queue_type as i32,
            report_stats: true,
            ..Default::default()
        };
        // Enhanced mode aggregates all partitions (Temporal's legacy mode shows the root
        // partition's pollers only); servers without it answer an error, which is ignored. The
        // fields are deprecated in favour of worker deployments, but every server still serves them.
        #[allow(deprecated)]
        let enhanced_req = service_pb::DescribeTaskQueueRequest {
            api_mode: enums_pb::DescribeTaskQueueMode::Enhanced as i32,
            report_pollers: true,
            task_queue_types: vec![task_queue_type as i32],
            ..req.clone()
        };
        match client.describe_task_queue(req).await {
            Ok(resp) => {
                let enhanced = client.describe_task_queue(enhanced_req).await.ok();
                queues.push(QueueFacts::from_response(
                    &opts.namespace,
                    &name,
                    kind,
                    resp.get_ref(),
                    enhanced.as_ref().map(|r| r.get_ref()),
                ));
            }
            Err(s) if matches!(s.code(), tonic::Code::Unimplemented) => {
                notes.push("the server does not implement DescribeTaskQueue: task queue checks skipped".into());
                break;
            }
            Err(s) if matches!(s.code(), tonic::Code::InvalidArgument | tonic::Code::NotFound) => {
                notes.push(format!("DescribeTaskQueue {name} ({}): {}", kind.as_str(), s.message()));
            }
            Err(s) => return Err(DoctorError::rpc("DescribeTaskQueue", s)),
        }
    }
    Ok(ScanResult { snapshot: Snapshot { runs, queues }, open_runs, closed_runs, truncated, notes })
}

/// Appends the runs of one visibility query (not yet seen) up to `max_runs` in total; returns
/// whether more matched.
async fn list(
    client: &mut Client,
    namespace: &str,
    query: &str,
    max_runs: usize,
    runs: &mut Vec<RunFacts>,
    seen: &mut HashSet<String>,
) -> Result<bool, DoctorError> {
    let mut token = Vec::new();
    loop {
        if runs.len() >= max_runs {
            return Ok(true);
        }
        let req = service_pb::ListWorkflowExecutionsRequest {
            namespace: namespace.to_string(),
            page_size: PAGE_SIZE as i32,
            next_page_token: token.clone(),
            query: query.to_string(),
        };
        let resp = client
            .list_workflow_executions(req)
            .await
            .map_err(|s| DoctorError::rpc("ListWorkflowExecutions", s))?
            .into_inner();
        for info in &resp.executions {
            let run = RunFacts::from_info(namespace, info);
            if run.run_id.is_empty() || !seen.insert(run.run_id.clone()) {
                continue;
            }
            if runs.len() >= max_runs {
                return Ok(true);
            }
            runs.push(run);
        }
        if resp.next_page_token.is_empty() || resp.executions.is_empty() {
            return Ok(false);
        }
        token = resp.next_page_token;
    }
}

/// Reads each run's history (and describes open runs), `concurrency` runs at a time.
async fn fetch_runs(
    client: &Client,
    namespace: &str,
    runs: Vec<RunFacts>,
    concurrency: usize,
    notes: &mut Vec<String>,
) -> Result<Vec<RunFacts>, DoctorError> {
    let total = runs.len();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut pending = runs.into_iter();
    let mut tasks: JoinSet<Result<Option<RunFacts>, DoctorError>> = JoinSet::new();
    let mut done = Vec::with_capacity(total);
    let mut missing = 0usize;
    let mut spawn_next = |tasks: &mut JoinSet<_>| {
        if let Some(run) = pending.next() {
            let client = client.clone();
            let namespace = namespace.to_string();
            tasks.spawn(async move { fetch_run(client, namespace, run).await });
        }
    };
    for _ in 0..concurrency {
        spawn_next(&mut tasks);
    }
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|e| DoctorError::Usage(format!("scan task failed: {e}")))?;
        match result? {
            Some(run) => done.push(run),
            None => missing += 1,
        }
        spawn_next(&mut tasks);
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            eprintln!(
                "uhrwerk doctor: scanned {}/{total} runs ({:.0} s)",
                done.len() + missing,
                started.elapsed().as_secs_f64()
            );
        }
    }
    if missing > 0 {
        notes.push(format!("{missing} run(s) disappeared during the scan (deleted by retention)"));
    }
    Ok(done)
}

async fn fetch_run(mut client: Client, namespace: String, mut run: RunFacts) -> Result<Option<RunFacts>, DoctorError> {
    let execution = common_pb::WorkflowExecution { workflow_id: run.workflow_id.clone(), run_id: run.run_id.clone() };
    let mut scan = HistoryScan::default();
    let mut token = Vec::new();
    loop {
        let req = service_pb::GetWorkflowExecutionHistoryRequest {
            namespace: namespace.clone(),
            execution: Some(execution.clone()),
            next_page_token: token.clone(),
            skip_archival: true,
            ..Default::default()
        };
        let resp = match client.get_workflow_execution_history(req).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) => return Err(DoctorError::rpc("GetWorkflowExecutionHistory", s)),
        };
        for event in resp.history.iter().flat_map(|h| h.events.iter()) {
            scan.add(event);
        }
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    run.apply_history(scan.finish());
    if run.open {
        let req = service_pb::DescribeWorkflowExecutionRequest { namespace, execution: Some(execution) };
        match client.describe_workflow_execution(req).await {
            Ok(resp) => run.apply_describe(resp.get_ref()),
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) => return Err(DoctorError::rpc("DescribeWorkflowExecution", s)),
        }
    }
    Ok(Some(run))
}
