//! Hostile input through the real service layer: for every method of WorkflowService and
//! OperatorService, messages generated from the API's descriptors (random fields, the ids of a
//! workflow that exists, extreme numbers, long and odd strings, nested messages), bytes that
//! are no message at all, and the saved corpus (`tests/fuzz-corpus/<Service>.<Method>.*.bin`).
//! Every call gets a gRPC status within its deadline, no handler panics, and the server still
//! serves a workflow afterwards.
//!
//! `UHRWERK_FUZZ_ROUNDS` (messages per method, default 6) and `UHRWERK_FUZZ_SEED` (printed)
//! set the run; CI runs the short form, longer runs are `UHRWERK_FUZZ_ROUNDS=500 cargo test
//! -p uhrwerk-server --test it fuzz -- --nocapture`.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use uhrwerk_server::config::Persistence;

use crate::common::*;

/// A codec that sends and receives message bytes as they are.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

const SERVICES: [&str; 2] =
    ["temporal.api.workflowservice.v1.WorkflowService", "temporal.api.operatorservice.v1.OperatorService"];
/// The deadline of each call: long polls end before it.
const CALL_DEADLINE: Duration = Duration::from_millis(300);
/// How long past its deadline a call may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(20);
const WORKFLOW_ID: &str = "fuzz-wf";
const TASK_QUEUE: &str = "fuzz-tq";

/// Strings that reach real state or odd corners.
fn string(rng: &mut StdRng, field: &FieldDescriptor) -> String {
    if field.name() == "namespace" && rng.random_bool(0.85) {
        return NAMESPACE.to_string();
    }
    match rng.random_range(0..12) {
        0 => String::new(),
        1 | 2 => WORKFLOW_ID.to_string(),
        3 => TASK_QUEUE.to_string(),
        4 => "x".repeat(rng.random_range(100..5000)),
        5 => "ü\u{0}\u{202e}🦀'\"\\%_".to_string(),
        6 => "WorkflowId = 'fuzz-wf' AND (ExecutionStatus = 'Running' OR StartTime > '2020-01-01')".to_string(),
        7 => "ORDER BY".to_string(),
        8 => uuid::Uuid::new_v4().to_string(),
        9 => "default".to_string(),
        10 => "*/5 * * * *".to_string(),
        _ => (0..rng.random_range(1..20)).map(|_| rng.random_range(b' '..=b'~') as char).collect(),
    }
}

fn int(rng: &mut StdRng) -> i64 {
    match rng.random_range(0..8) {
        0 => 0,
        1 => 1,
        2 => -1,
        3 => i64::MAX,
        4 => i64::MIN,
        5 => i32::MAX as i64,
        6 => i32::MIN as i64,
        _ => rng.random_range(-1_000_000..1_000_000),
    }
}

fn float(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..5) {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => -1e308,
        3 => 0.0,
        _ => rng.random_range(-1e6..1e6),
    }
}

fn value(rng: &mut StdRng, field: &FieldDescriptor, kind: &Kind, depth: usize) -> Option<Value> {
    Some(match kind {
        Kind::String => Value::String(string(rng, field)),
        Kind::Bytes => Value::Bytes((0..rng.random_range(0..64)).map(|_| rng.random()).collect::<Vec<u8>>().into()),
        Kind::Bool => Value::Bool(rng.random()),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(int(rng) as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(int(rng)),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(int(rng) as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(int(rng) as u64),
        Kind::Float => Value::F32(float(rng) as f32),
        Kind::Double => Value::F64(float(rng)),
        Kind::Enum(e) => {
            let known: Vec<i32> = e.values().map(|v| v.number()).collect();
            Value::EnumNumber(if rng.random_bool(0.8) {
                known[rng.random_range(0..known.len())]
            } else {
                int(rng) as i32
            })
        }
        Kind::Message(m) => {
            if depth > 4 {
                return None;
            }
            Value::Message(message(rng, m, depth + 1))
        }
    })
}

fn map_key(rng: &mut StdRng, field: &FieldDescriptor, kind: &Kind) -> Option<MapKey> {
    Some(match kind {
        Kind::String => MapKey::String(string(rng, field)),
        Kind::Bool => MapKey::Bool(rng.random()),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(int(rng) as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(int(rng)),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(int(rng) as u32),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(int(rng) as u64),
        _ => return None,
    })
}

/// A message of `descriptor` with random fields set.
fn message(rng: &mut StdRng, descriptor: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut msg = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        if !rng.random_bool(if depth == 0 { 0.7 } else { 0.4 }) {
            continue;
        }
        let v = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { continue };
            let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let mut map = std::collections::HashMap::new();
            for _ in 0..rng.random_range(0..3) {
                if let (Some(k), Some(v)) =
                    (map_key(rng, &key_field, &key_field.kind()), value(rng, &value_field, &value_field.kind(), depth))
                {
                    map.insert(k, v);
                }
            }
            Value::Map(map)
        } else if field.is_list() {
            Value::List((0..rng.random_range(0..4)).filter_map(|_| value(rng, &field, &field.kind(), depth)).collect())
        } else {
            match value(rng, &field, &field.kind(), depth) {
                Some(v) => v,
                None => continue,
            }
        };
        msg.set_field(&field, v);
    }
    msg
}

/// What a call answered: a status code, or a hang.
async fn call(channel: &tonic::transport::Channel, path: &str, body: Vec<u8>) -> Result<Code, String> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|e| format!("channel not ready: {e}"))?;
    let mut request = tonic::Request::new(body);
    request.set_timeout(CALL_DEADLINE);
    let path = http::uri::PathAndQuery::from_str(path).expect("method path");
    match uhrwerk_server::clock::timeout(CALL_DEADLINE + HANG, grpc.unary(request, path, Raw)).await {
        Some(Ok(_)) => Ok(Code::Ok),
        Some(Err(status)) => {
            if matches!(status.code(), Code::Unknown | Code::Internal)
                && !status.message().starts_with("failed to decode Protobuf message")
            {
                return Err(format!("{:?}: {}", status.code(), status.message()));
            }
            Ok(status.code())
        }
        None => Err("no answer: the call hung".to_string()),
    }
}

/// Panics on the server's threads (the test's own threads are named after the test).
fn count_server_panics() -> Arc<AtomicUsize> {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let name = std::thread::current().name().unwrap_or("").to_string();
        if !name.contains("fuzz") {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    panics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_to_every_method_get_a_status() {
    let panics = count_server_panics();
    let server = TestServer::with(Persistence::Ephemeral).await;
    start_workflow(&server.client, WORKFLOW_ID, "FuzzFlow", TASK_QUEUE).await;
    let channel = connect_channel(server.running.addr).await;
    let rounds: usize = std::env::var("UHRWERK_FUZZ_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(6);
    let seed: u64 = std::env::var("UHRWERK_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("fuzz: seed {seed} (UHRWERK_FUZZ_SEED), {rounds} rounds per method");
    let mut rng = StdRng::seed_from_u64(seed);
    let pool = uhrwerk_server::http_api::descriptors();
    let mut failures = Vec::new();
    let mut calls = 0;
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for service in SERVICES {
        let service = pool.get_service_by_name(service).expect("the API's service");
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let mut bodies: Vec<(String, Vec<u8>)> = (0..rounds)
                .map(|round| {
                    let msg = message(&mut rng, &method.input(), 0);
                    (format!("generated #{round}"), prost::Message::encode_to_vec(&msg))
                })
                .collect();
            // Bytes that are no message: random, a field claiming more bytes than follow, a
            // group tag, nesting deeper than any decoder allows.
            bodies.push(("random bytes".into(), (0..rng.random_range(1..200)).map(|_| rng.random()).collect()));
            bodies.push(("truncated length".into(), vec![0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
            bodies.push(("group tag".into(), vec![0x0b, 0x0c]));
            bodies.push(("deep nesting".into(), deep_nesting(200)));
            if method.name() == "StartWorkflowExecution" {
                // Larger than a message may be (4 MiB): refused, not buffered whole.
                bodies.push(("over the size limit".into(), vec![0x0a; 5 * 1024 * 1024]));
            }
            for (what, body) in bodies {
                calls += 1;
                let size = body.len();
                match call(&channel, &path, body).await {
                    Ok(code) => *codes.entry(format!("{code:?}")).or_default() += 1,
                    Err(e) => failures.push(format!("{} ({what}, {size} bytes): {e}", method.name())),
                }
            }
        }
    }
    for (name, body) in corpus() {
        let (service, method) = name.split_once('.').map(|(s, m)| (s, m.split('.').next().unwrap_or(m))).expect("name");
        let service = SERVICES.iter().find(|s| s.ends_with(service)).expect("a corpus file names a service");
        calls += 1;
        if let Err(e) = call(&channel, &format!("/{service}/{method}"), body).await {
            failures.push(format!("corpus {name}: {e}"));
        }
    }
    println!("fuzz: {calls} calls, answers {codes:?}");
    assert!(failures.is_empty(), "{} of {calls} calls failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a handler panicked (see the output above)");
    // The server still works: a new workflow starts and its first task is polled.
    start_workflow(&server.client, "fuzz-after", "FuzzFlow", "fuzz-after-tq").await;
    let peak = peak_rss_mib();
    println!("fuzz: the test process peaked at {peak} MiB");
    assert!(peak < PEAK_RSS_MIB, "the test process peaked at {peak} MiB");
    let poller = TaskPoller::new(&server.client, "fuzz-after-tq");
    let task = poller.poll_workflow_task(TASK_DEADLINE).await.expect("the server serves workflows after the fuzzing");
    assert_eq!(task.workflow_execution.expect("an execution").workflow_id, "fuzz-after");
}

/// The test process's peak resident memory in MiB (`VmHWM`; the server runs in this process).
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
    kb / 1024
}

/// What the fuzzing may take at most: hostile sizes (length prefixes claiming gigabytes, 4 MiB
/// bodies, deep nesting) must be refused before they are allocated. Far above what the whole
/// test binary needs (70 to 80 MiB measured), far below what one such allocation would take.
const PEAK_RSS_MIB: u64 = 1024;

/// A message nested `depth` levels through field 1 (length-delimited).
fn deep_nesting(depth: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..depth {
        let mut outer = vec![0x0a];
        prost::encoding::encode_varint(body.len() as u64, &mut outer);
        outer.extend_from_slice(&body);
        body = outer;
    }
    body
}

/// The saved inputs: `tests/fuzz-corpus/<Service>.<Method>.<name>.bin`.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("the fuzz corpus").flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .map(|p| {
            let name = p.file_stem().expect("a name").to_string_lossy().to_string();
            (name, std::fs::read(&p).expect("a corpus file"))
        })
        .collect()
}

/// A random JSON value, nested up to `depth`.
fn json(rng: &mut StdRng, depth: usize) -> serde_json::Value {
    use serde_json::Value as J;
    match rng.random_range(0..if depth > 3 { 5 } else { 7 }) {
        0 => J::Null,
        1 => J::Bool(rng.random()),
        2 => serde_json::json!(int(rng)),
        3 => serde_json::json!(float(rng).to_string()),
        4 => J::String(["fuzz-wf", "", "\u{0}ü", "AAAA", "1e309", "-", "default"][rng.random_range(0..7)].to_string()),
        5 => J::Array((0..rng.random_range(0..4)).map(|_| json(rng, depth + 1)).collect()),
        _ => {
            let keys = ["namespace", "workflowId", "input", "payloads", "data", "taskQueue", "name", "reason", "query"];
            J::Object(
                (0..rng.random_range(0..5))
                    .map(|_| (keys[rng.random_range(0..keys.len())].to_string(), json(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_http_requests_get_an_answer() {
    let panics = count_server_panics();
    let mut config = test_config(on_the_test_store(Persistence::Ephemeral).await, &[]);
    config.http_listen = Some("127.0.0.1:0".parse().expect("an address"));
    let running = uhrwerk_server::start(config).await.expect("server starts");
    let base = format!("http://{}", running.http_addr.expect("the HTTP API is on"));
    let client = connect(running.addr).await;
    start_workflow(&client, WORKFLOW_ID, "FuzzFlow", TASK_QUEUE).await;
    let rounds: usize = std::env::var("UHRWERK_FUZZ_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(6);
    let seed: u64 = std::env::var("UHRWERK_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("fuzz (HTTP): seed {seed}, {rounds} rounds per path");
    let mut rng = StdRng::seed_from_u64(seed);
    let http = reqwest::Client::builder().timeout(CALL_DEADLINE + HANG).build().expect("an HTTP client");
    let paths = [
        "/api/v1/namespaces/default",
        "/api/v1/namespaces/default/workflows",
        "/api/v1/namespaces/default/workflows/fuzz-wf",
        "/api/v1/namespaces/default/workflows/fuzz-wf/history",
        "/api/v1/namespaces/default/workflows/fuzz-wf/signal/s",
        "/api/v1/namespaces/default/workflows/fuzz-wf/terminate",
        // A query waits for a worker: bounded by the `Grpc-Timeout` header every request sends
        // (seed 12542475921972629025 found it waiting past the client's timeout without one).
        "/api/v1/namespaces/default/workflows/fuzz-wf/query/q",
        "/api/v1/namespaces/default/schedules/s",
        "/api/v1/namespaces/default/workflow-count",
        "/api/v1/namespaces/%FF%00/workflows/..%2F..",
        "/api/v1/cluster-info",
        "/api/v1/namespaces/default/task-queues/fuzz-tq",
    ];
    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for path in paths {
        for round in 0..rounds {
            let method =
                [reqwest::Method::GET, reqwest::Method::POST, reqwest::Method::DELETE][rng.random_range(0..3)].clone();
            let body: Vec<u8> = match rng.random_range(0..4) {
                0 => (0..rng.random_range(0..100)).map(|_| rng.random()).collect(),
                1 => "{".repeat(rng.random_range(1..5000)).into_bytes(),
                _ => serde_json::to_vec(&json(&mut rng, 0)).expect("json"),
            };
            let query =
                ["", "?pageSize=-1", "?query=%27%27%27", "?nextPageToken=%%%", "?a=1&a=2"][rng.random_range(0..5)];
            let url = format!("{base}{path}{query}");
            let request =
                http.request(method.clone(), &url).header("grpc-timeout", format!("{}m", CALL_DEADLINE.as_millis()));
            match request.body(body).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    *statuses.entry(status).or_default() += 1;
                    if status == 500 {
                        let text = response.text().await.unwrap_or_default();
                        failures.push(format!("{method} {path}{query} (#{round}): 500 {text}"));
                    }
                }
                Err(e) => failures.push(format!("{method} {path}{query} (#{round}): {e}")),
            }
        }
    }
    println!("fuzz (HTTP): answers {statuses:?}");
    assert!(failures.is_empty(), "{} HTTP requests failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a handler panicked (see the output above)");
    let alive = http.get(format!("{base}/api/v1/namespaces/default")).send().await.expect("the HTTP API answers");
    assert_eq!(alive.status().as_u16(), 200);
}
