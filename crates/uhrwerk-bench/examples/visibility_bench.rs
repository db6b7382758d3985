//! Visibility benchmark: fills a store with closed runs (1,000,000 by default) and measures list
//! and count latency for typical operator queries, on SQLite or PostgreSQL.
//!
//! Run with `cargo run --release -p uhrwerk-bench --example visibility_bench -- [RUNS] [DB]`.
//! DB is a SQLite file, or a `postgres://` URL of an existing database; without DB a temporary
//! SQLite file is used and removed afterwards. A store that has RUNS runs already is not filled
//! again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use uhrwerk_core::pb::enums::v1::WorkflowExecutionStatus as Status;
use uhrwerk_core::state::RunState;
use uhrwerk_postgres::{DatabaseUrl, PostgresOptions, PostgresStore};
use uhrwerk_sqlite::{SqliteOptions, SqliteStore};
use uhrwerk_storage::{AttrRow, ExecutionStore, RunWrite, VisibilityStore, WriteBatch};
use uhrwerk_visibility::{Literal, ValueType};

const NS: &str = "default";
const T0: i64 = 1_760_000_000_000;
const TYPES: [&str; 10] = [
    "OrderWorkflow",
    "PaymentWorkflow",
    "ShippingWorkflow",
    "RefundWorkflow",
    "InvoiceWorkflow",
    "CleanupWorkflow",
    "ReportWorkflow",
    "SyncWorkflow",
    "EmailWorkflow",
    "AuditWorkflow",
];
const BATCH: usize = 10_000;
const REPEAT: usize = 20;

fn status_of(i: usize) -> Status {
    match (i / 10) % 20 {
        0 => Status::Failed,
        1 => Status::TimedOut,
        2 => Status::Terminated,
        3 => Status::Running,
        _ => Status::Completed,
    }
}

fn run(i: usize) -> RunWrite {
    let status = status_of(i);
    let start = T0 + (i as i64) * 100;
    let st = RunState {
        namespace: NS.into(),
        workflow_id: format!("order-{i:08}"),
        run_id: format!("{:032x}", i as u128 * 2_654_435_761),
        first_execution_run_id: String::new(),
        workflow_type: TYPES[i % TYPES.len()].into(),
        task_queue: format!("queue-{}", i % 4),
        status: status as i32,
        start_time_ms: start,
        execution_time_ms: start,
        close_time_ms: if status == Status::Running { 0 } else { start + 1_000 + (i as i64 % 60_000) },
        next_event_id: 12,
        history_size_bytes: 4_000,
        state_transition_count: 8,
        attempt: 1,
        ..Default::default()
    };
    let attrs = vec![
        AttrRow {
            name: "CustomerId".into(),
            ty: ValueType::Keyword,
            values: vec![Literal::Str(format!("customer-{}", i % 50_000))],
        },
        AttrRow { name: "Amount".into(), ty: ValueType::Int, values: vec![Literal::Int((i % 10_000) as i64)] },
    ];
    RunWrite { state: st, set_current: true, attrs: Some(attrs), ..Default::default() }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let target = args.get(2).cloned();
    match target.as_deref() {
        Some(url) if DatabaseUrl::is_postgres(url) => {
            let url = DatabaseUrl::parse(url).expect("a valid database URL");
            let options = PostgresOptions { url, pool_size: 4, migrate: true };
            let store = PostgresStore::open(&options).await.expect("open the store");
            bench(&store, n, || {
                println!("(PostgreSQL: autovacuum keeps the planner statistics; none refreshed by hand)")
            })
            .await;
            store.close().await;
        }
        path => {
            let path = path.map(PathBuf::from).unwrap_or_else(|| dir.path().join("bench.db"));
            let store =
                SqliteStore::open(&SqliteOptions { path: path.clone(), durable: false }).expect("open the store");
            bench(&store, n, || {
                // What the store's maintenance thread does within its first minute.
                let began = Instant::now();
                store.optimize().expect("optimize");
                println!("planner statistics refreshed in {}", ms(began.elapsed()));
            })
            .await;
        }
    }
}

async fn bench<S: ExecutionStore + VisibilityStore>(store: &S, n: usize, refresh: impl FnOnce()) {
    let existing = store.count_runs(NS, None).await.expect("count");
    if existing < n as i64 {
        let began = Instant::now();
        let mut i = existing as usize;
        while i < n {
            let end = (i + BATCH).min(n);
            let batch = WriteBatch { runs: (i..end).map(run).collect(), ..Default::default() };
            store.commit(batch).await.expect("commit a batch");
            i = end;
            if i.is_multiple_of(100_000) || i == n {
                eprintln!("filled {i}/{n} runs ({:.0} runs/s)", i as f64 / began.elapsed().as_secs_f64());
            }
        }
    }
    println!("runs in the store: {}", store.count_runs(NS, None).await.expect("count"));
    refresh();

    let catalog: BTreeMap<String, ValueType> =
        [("CustomerId".to_string(), ValueType::Keyword), ("Amount".to_string(), ValueType::Int)].into();
    let queries = [
        "",
        "WorkflowType = 'PaymentWorkflow' AND ExecutionStatus = 'Failed'",
        "ExecutionStatus = 'Running'",
        "WorkflowType = 'OrderWorkflow' AND ExecutionStatus = 'Completed' AND StartTime > '2025-10-10T00:00:00Z'",
        "CustomerId = 'customer-4242'",
        "CustomerId = 'customer-4242' AND Amount > 5000",
        "WorkflowId = 'order-00777777'",
        "TaskQueue = 'queue-1' AND ExecutionStatus = 'TimedOut'",
    ];
    println!("| query | list first page (100) | count |");
    println!("|---|---|---|");
    for text in queries {
        let query = uhrwerk_visibility::parse(text, &catalog).expect("valid query");
        let mut list_times = Vec::new();
        let mut count_times = Vec::new();
        let mut count = 0;
        for _ in 0..REPEAT {
            let t = Instant::now();
            let (page, _) = store.list_runs(NS, &query, None, 100).await.expect("list");
            list_times.push(t.elapsed());
            assert!(page.len() <= 100);
            let t = Instant::now();
            count = store.count_runs(NS, query.filter.as_ref()).await.expect("count");
            count_times.push(t.elapsed());
        }
        let shown = if text.is_empty() { "(all runs)" } else { text };
        println!("| `{shown}` ({count} matches) | {} | {} |", ms(median(list_times)), ms(median(count_times)));
    }
}
