//! Builders the conformance suites share: run states, events, outbox tasks, timers, batches,
//! and the query catalog of the list scenarios. Backends use them in their own tests too.

use std::collections::BTreeMap;

use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::history::v1 as history_pb;
use uhrwerk_core::kernel::{TimerKind, TimerTask, new_event};
use uhrwerk_core::state::RunState;
use uhrwerk_visibility::{Query, ValueType};

use crate::{OutboxTask, RunWrite, TaskKind, TimerRow, VisibilityStore, WriteBatch};

pub use enums_pb::WorkflowExecutionStatus as Status;

/// The time every scenario starts from.
pub const T0: i64 = 1_700_000_000_000;

pub fn run_state(namespace: &str, workflow_id: &str, run_id: &str, start_time_ms: i64, status: Status) -> RunState {
    RunState {
        namespace: namespace.into(),
        workflow_id: workflow_id.into(),
        run_id: run_id.into(),
        first_execution_run_id: run_id.into(),
        workflow_type: "Hello".into(),
        task_queue: "tq".into(),
        status: status as i32,
        start_time_ms,
        execution_time_ms: start_time_ms,
        next_event_id: 1,
        attempt: 1,
        ..Default::default()
    }
}

pub fn event(id: i64) -> history_pb::HistoryEvent {
    new_event(
        id,
        T0 + id,
        enums_pb::EventType::MarkerRecorded,
        history_pb::history_event::Attributes::MarkerRecordedEventAttributes(
            history_pb::MarkerRecordedEventAttributes { marker_name: format!("m{id}"), ..Default::default() },
        ),
    )
}

pub fn events(ids: std::ops::RangeInclusive<i64>) -> Vec<history_pb::HistoryEvent> {
    ids.map(event).collect()
}

pub fn task(st: &RunState, kind: TaskKind, scheduled_event_id: i64) -> OutboxTask {
    OutboxTask {
        kind,
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: st.run_id.clone(),
        task_queue: st.task_queue.clone(),
        scheduled_event_id,
        attempt: 1,
    }
}

pub fn timer(kind: TimerKind, id: i64, attempt: i32, fire_at_ms: i64) -> TimerTask {
    TimerTask { fire_at_ms, kind: kind as i32, id, attempt }
}

pub fn timer_row(st: &RunState, t: &TimerTask) -> TimerRow {
    TimerRow {
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: st.run_id.clone(),
        timer: t.clone(),
    }
}

/// A write of `st` with `events` appended (next_event_id follows the last event).
pub fn write(mut st: RunState, events: Vec<history_pb::HistoryEvent>) -> RunWrite {
    if let Some(last) = events.last() {
        st.next_event_id = last.event_id + 1;
    }
    RunWrite { state: st, set_current: false, events, ..Default::default() }
}

pub fn batch(runs: Vec<RunWrite>) -> WriteBatch {
    WriteBatch { runs, ..Default::default() }
}

pub fn ids(events: &[history_pb::HistoryEvent]) -> Vec<i64> {
    events.iter().map(|e| e.event_id).collect()
}

pub fn run_ids(runs: &[RunState]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}

/// Custom attributes the list scenarios use.
pub fn catalog() -> BTreeMap<String, ValueType> {
    [
        ("CustomKeyword", ValueType::Keyword),
        ("CustomInt", ValueType::Int),
        ("CustomText", ValueType::Text),
        ("CustomList", ValueType::KeywordList),
        ("CustomDouble", ValueType::Double),
        ("CustomBool", ValueType::Bool),
        ("CustomTime", ValueType::Datetime),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn query(text: &str) -> Query {
    uhrwerk_visibility::parse(text, &catalog()).expect("valid query")
}

/// The run ids of the first page (up to 100) a query lists.
pub async fn list(store: &dyn VisibilityStore, namespace: &str, text: &str) -> Vec<String> {
    let (runs, _) = store.list_runs(namespace, &query(text), None, 100).await.expect("list");
    runs.into_iter().map(|r| r.run_id).collect()
}
