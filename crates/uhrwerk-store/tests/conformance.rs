//! Store conformance: a generic suite over `&dyn Store` that every backend must pass, run here
//! against SQLite on a temporary file, plus SQLite-specific checks (migrations, reopening,
//! refusing a newer schema, group commit under a held write lock).

use std::path::Path;

use std::collections::BTreeMap;
use uhrwerk_core::kernel::{TimerKind, TimerTask, new_event};
use uhrwerk_core::pb::enums::v1 as enums_pb;
use uhrwerk_core::pb::history::v1 as history_pb;
use uhrwerk_core::state::RunState;

use uhrwerk_store::{
    AttrRow, Error, OutboxTask, RunKey, RunWrite, SqliteOptions, SqliteStore, Store, TaskKind, TimerRow, TransferRow,
    WriteBatch,
};
use uhrwerk_visibility::{Literal, Query, ValueType};

use enums_pb::WorkflowExecutionStatus as Status;
use history_pb::history_event::Attributes;

const T0: i64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

fn run_state(namespace: &str, workflow_id: &str, run_id: &str, start_time_ms: i64, status: Status) -> RunState {
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

fn event(id: i64) -> history_pb::HistoryEvent {
    new_event(
        id,
        T0 + id,
        enums_pb::EventType::MarkerRecorded,
        Attributes::MarkerRecordedEventAttributes(history_pb::MarkerRecordedEventAttributes {
            marker_name: format!("m{id}"),
            ..Default::default()
        }),
    )
}

fn events(ids: std::ops::RangeInclusive<i64>) -> Vec<history_pb::HistoryEvent> {
    ids.map(event).collect()
}

fn task(st: &RunState, kind: TaskKind, scheduled_event_id: i64) -> OutboxTask {
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

fn timer(kind: TimerKind, id: i64, attempt: i32, fire_at_ms: i64) -> TimerTask {
    TimerTask { fire_at_ms, kind: kind as i32, id, attempt }
}

fn timer_row(st: &RunState, t: &TimerTask) -> TimerRow {
    TimerRow {
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: st.run_id.clone(),
        timer: t.clone(),
    }
}

/// A write of `st` with `events` appended (next_event_id follows the last event).
fn write(mut st: RunState, events: Vec<history_pb::HistoryEvent>) -> RunWrite {
    if let Some(last) = events.last() {
        st.next_event_id = last.event_id + 1;
    }
    RunWrite { state: st, set_current: false, events, ..Default::default() }
}

fn batch(runs: Vec<RunWrite>) -> WriteBatch {
    WriteBatch { runs, ..Default::default() }
}

fn ids(events: &[history_pb::HistoryEvent]) -> Vec<i64> {
    events.iter().map(|e| e.event_id).collect()
}

fn run_ids(runs: &[RunState]) -> Vec<&str> {
    runs.iter().map(|r| r.run_id.as_str()).collect()
}

/// Custom attributes the list scenarios use.
fn catalog() -> BTreeMap<String, ValueType> {
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

fn query(text: &str) -> Query {
    uhrwerk_visibility::parse(text, &catalog()).expect("valid query")
}

fn list(store: &dyn Store, ns: &str, text: &str) -> Vec<String> {
    let (runs, _) = store.list_runs(ns, &query(text), None, 100).expect("list");
    runs.into_iter().map(|r| r.run_id).collect()
}

// ---------------------------------------------------------------------------------------------
// The generic suite
// ---------------------------------------------------------------------------------------------

type Scenario = fn(&dyn Store);

/// Every scenario; each uses its own namespace so they can share one store.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("commit_and_read_back", commit_and_read_back),
    ("remove_tasks_and_timers", remove_tasks_and_timers),
    ("closing_run_deletes_tasks_and_timers", closing_run_deletes_tasks_and_timers),
    ("transfer_tasks_outlive_the_run_until_removed", transfer_tasks_outlive_the_run_until_removed),
    ("events_order_and_paging", events_order_and_paging),
    ("current_run_id_follows_set_current", current_run_id_follows_set_current),
    ("list_and_count_runs", list_and_count_runs),
    ("custom_attributes_filter_and_replace", custom_attributes_filter_and_replace),
    ("delete_removes_everything_of_a_run", delete_removes_everything_of_a_run),
    ("search_attribute_registry_and_schedules", search_attribute_registry_and_schedules),
    ("concurrent_batches_all_commit", concurrent_batches_all_commit),
    ("failed_batch_does_not_fail_others", failed_batch_does_not_fail_others),
    ("namespaces_round_trip", namespaces_round_trip),
];

/// Runs the whole suite against `store`.
pub fn conformance(store: &dyn Store) {
    for (name, scenario) in SCENARIOS {
        eprintln!("conformance: {name}");
        scenario(store);
    }
}

fn transfer_tasks_outlive_the_run_until_removed(store: &dyn Store) {
    use uhrwerk_core::transfer::{TransferKind, TransferTask};
    let ns = "ns-transfer";
    let st = run_state(ns, "wf", "transfer-run", T0, Status::Running);
    let child = TransferTask::new(TransferKind::StartChild, 5);
    let signal = TransferTask::new(TransferKind::SignalExternal, 6);
    let mut w = write(st.clone(), events(1..=6));
    w.add_transfers = vec![child.clone(), signal.clone()];
    store.commit(batch(vec![w])).expect("commit");

    // The run closes; its transfer tasks stay until they are carried out.
    let mut closed = st.clone();
    closed.status = Status::Completed as i32;
    closed.close_event_id = 7;
    let mut policy = TransferTask::new(TransferKind::ParentClosePolicy, 7);
    policy.children = vec![uhrwerk_core::state::ChildInfo {
        initiated_event_id: 5,
        workflow_id: "child".into(),
        run_id: "child-run".into(),
        ..Default::default()
    }];
    let mut w = write(closed, events(7..=7));
    w.add_transfers = vec![policy.clone()];
    store.commit(batch(vec![w])).expect("commit close");
    let row = |task: &TransferTask| TransferRow {
        namespace: ns.into(),
        workflow_id: "wf".into(),
        run_id: "transfer-run".into(),
        task: task.clone(),
    };
    let mut found: Vec<_> =
        store.recover().expect("recover").transfers.into_iter().filter(|t| t.namespace == ns).collect();
    found.sort_by_key(|t| (t.task.kind, t.task.event_id));
    assert_eq!(found, [row(&child), row(&policy), row(&signal)]);

    let done = WriteBatch { remove_transfers: vec![row(&child).key(), row(&policy).key()], ..Default::default() };
    store.commit(done).expect("remove");
    let left: Vec<_> = store.recover().expect("recover").transfers.into_iter().filter(|t| t.namespace == ns).collect();
    assert_eq!(left, [row(&signal)]);
}

fn commit_and_read_back(store: &dyn Store) {
    let ns = "ns-commit";
    let st = run_state(ns, "wf", "commit-run", T0, Status::Running);
    let timers = vec![
        timer(TimerKind::WorkflowTaskStartToClose, 2, 1, T0 + 10_000),
        timer(TimerKind::ActivityScheduleToClose, 5, 0, T0 + 5_000),
    ];
    let mut w = write(st.clone(), events(1..=3));
    w.set_current = true;
    w.add_tasks = vec![task(&st, TaskKind::Workflow, 2), task(&st, TaskKind::Activity, 5)];
    w.add_timers = timers.clone();
    let committed_state = w.state.clone();
    let open_before = store.recover().expect("recover").open_runs;

    store.commit(batch(vec![w])).expect("commit");

    assert_eq!(store.run("commit-run").expect("read run"), Some(committed_state.clone()));
    assert_eq!(store.run("no-such-run").expect("read run"), None);
    assert_eq!(store.events("commit-run", 1, 100).expect("events"), events(1..=3));
    assert_eq!(store.current_run_id(ns, "wf").expect("current"), Some("commit-run".into()));
    let recovered = store.recover().expect("recover");
    assert_eq!(recovered.open_runs, open_before + 1, "the new run is counted as open");
    let mut tasks: Vec<_> = recovered.tasks.iter().filter(|t| t.namespace == ns).cloned().collect();
    tasks.sort_by_key(|t| t.scheduled_event_id);
    assert_eq!(tasks, [task(&st, TaskKind::Workflow, 2), task(&st, TaskKind::Activity, 5)]);
    let timers_back: Vec<_> = recovered.timers.iter().filter(|t| t.namespace == ns).cloned().collect();
    assert_eq!(timers_back, [timer_row(&st, &timers[1]), timer_row(&st, &timers[0])], "timers come back by due time");
}

fn remove_tasks_and_timers(store: &dyn Store) {
    let ns = "ns-remove";
    let st = run_state(ns, "wf", "remove-run", T0, Status::Running);
    let wft_timer = timer(TimerKind::WorkflowTaskStartToClose, 2, 1, T0 + 10_000);
    let activity_timer = timer(TimerKind::ActivityStartToClose, 5, 1, T0 + 20_000);
    let mut w = write(st.clone(), events(1..=2));
    w.add_tasks = vec![task(&st, TaskKind::Workflow, 2), task(&st, TaskKind::Activity, 5)];
    w.add_timers = vec![wft_timer.clone(), activity_timer.clone()];
    store.commit(batch(vec![w])).expect("commit");

    let mut w = write(st.clone(), events(3..=3));
    w.remove_tasks = vec![2];
    // The kernel reports done timers by key, without their due time.
    w.remove_timers = vec![TimerTask::key(TimerKind::WorkflowTaskStartToClose, 2, 1)];
    store.commit(batch(vec![w])).expect("commit");

    let recovered = store.recover().expect("recover");
    let tasks: Vec<_> = recovered.tasks.iter().filter(|t| t.namespace == ns).cloned().collect();
    assert_eq!(tasks, [task(&st, TaskKind::Activity, 5)]);
    let timers: Vec<_> = recovered.timers.iter().filter(|t| t.namespace == ns).cloned().collect();
    assert_eq!(timers, [timer_row(&st, &activity_timer)]);
    assert_eq!(ids(&store.events("remove-run", 1, 100).expect("events")), [1, 2, 3]);
}

fn closing_run_deletes_tasks_and_timers(store: &dyn Store) {
    let ns = "ns-close";
    let open = run_state(ns, "wf", "close-run", T0, Status::Running);
    let other = run_state(ns, "wf-other", "close-other", T0, Status::Running);
    let mut w = write(open.clone(), events(1..=2));
    w.add_tasks = vec![task(&open, TaskKind::Workflow, 2)];
    w.add_timers = vec![timer(TimerKind::ActivityRetry, 5, 2, T0 + 1000)];
    let mut w_other = write(other.clone(), events(1..=2));
    w_other.add_tasks = vec![task(&other, TaskKind::Workflow, 2)];
    let open_before = store.recover().expect("recover").open_runs;
    store.commit(batch(vec![w, w_other])).expect("commit");

    let mut closed = open.clone();
    closed.status = Status::Completed as i32;
    closed.close_time_ms = T0 + 5000;
    closed.close_event_id = 3;
    store.commit(batch(vec![write(closed.clone(), events(3..=3))])).expect("commit close");

    let recovered = store.recover().expect("recover");
    assert_eq!(recovered.open_runs, open_before + 1, "of the two new runs one is still open");
    assert!(recovered.tasks.iter().all(|t| t.run_id != "close-run"), "tasks of the closed run are gone");
    assert!(recovered.timers.iter().all(|t| t.run_id != "close-run"), "timers of the closed run are gone");
    assert!(recovered.tasks.iter().any(|t| t.run_id == "close-other"), "other runs keep their tasks");
    let stored = store.run("close-run").expect("read").expect("closed run is still readable");
    assert_eq!(stored.status, Status::Completed as i32);
    assert_eq!(stored.close_event_id, 3);
    assert_eq!(ids(&store.events("close-run", 1, 100).expect("events")), [1, 2, 3]);
}

fn events_order_and_paging(store: &dyn Store) {
    let ns = "ns-events";
    let st = run_state(ns, "wf", "events-run", T0, Status::Running);
    let neighbour = run_state(ns, "wf-2", "events-run-2", T0, Status::Running);
    store.commit(batch(vec![write(st.clone(), events(1..=4)), write(neighbour, events(1..=7))])).expect("commit");
    store.commit(batch(vec![write(st.clone(), events(5..=10))])).expect("commit");

    assert_eq!(ids(&store.events("events-run", 1, 4).expect("page")), [1, 2, 3, 4]);
    assert_eq!(ids(&store.events("events-run", 5, 4).expect("page")), [5, 6, 7, 8]);
    assert_eq!(ids(&store.events("events-run", 9, 4).expect("page")), [9, 10]);
    assert!(store.events("events-run", 11, 4).expect("page").is_empty());
    assert_eq!(store.events("events-run", 1, 100).expect("all"), events(1..=10), "events round-trip unchanged");
    assert_eq!(ids(&store.events("events-run-2", 6, 100).expect("page")), [6, 7]);
    assert!(store.events("no-such-run", 1, 100).expect("page").is_empty());
}

fn current_run_id_follows_set_current(store: &dyn Store) {
    let ns = "ns-current";
    assert_eq!(store.current_run_id(ns, "wf").expect("current"), None);
    let mut first = write(run_state(ns, "wf", "current-1", T0, Status::Running), events(1..=2));
    first.set_current = true;
    store.commit(batch(vec![first])).expect("commit");
    assert_eq!(store.current_run_id(ns, "wf").expect("current"), Some("current-1".into()));

    let mut second = write(run_state(ns, "wf", "current-2", T0 + 1, Status::Running), events(1..=2));
    second.set_current = true;
    store.commit(batch(vec![second])).expect("commit");
    assert_eq!(store.current_run_id(ns, "wf").expect("current"), Some("current-2".into()));

    // Later writes of the old run without set_current leave the pointer alone.
    let mut old = run_state(ns, "wf", "current-1", T0, Status::Terminated);
    old.close_event_id = 3;
    store.commit(batch(vec![write(old, events(3..=3))])).expect("commit");
    assert_eq!(store.current_run_id(ns, "wf").expect("current"), Some("current-2".into()));
    assert_eq!(store.current_run_id("ns-current-other", "wf").expect("current"), None, "pointers are per namespace");
}

fn list_and_count_runs(store: &dyn Store) {
    let ns = "ns-list";
    // (run_id, workflow_id, type, status, start offset, close offset)
    let rows = [
        ("list-a", "wf-a", "Alpha", Status::Running, 300, 0),
        ("list-b", "wf-b", "Beta", Status::Completed, 200, 1200),
        ("list-c", "wf-c", "Alpha", Status::Failed, 200, 1100),
        ("list-d", "wf-d", "Beta", Status::Running, 100, 0),
        ("list-e", "wf-e", "Alpha", Status::Completed, 400, 1300),
    ];
    let writes = rows
        .iter()
        .map(|(run_id, workflow_id, workflow_type, status, start, close)| {
            let mut st = run_state(ns, workflow_id, run_id, T0 + start, *status);
            st.workflow_type = workflow_type.to_string();
            if *close > 0 {
                st.close_time_ms = T0 + close;
            }
            write(st, events(1..=1))
        })
        .collect();
    store.commit(batch(writes)).expect("commit");
    store
        .commit(batch(vec![write(
            run_state("ns-list-other", "wf-a", "list-other", T0, Status::Running),
            events(1..=1),
        )]))
        .expect("commit");

    assert_eq!(
        list(store, ns, ""),
        ["list-a", "list-d", "list-e", "list-b", "list-c"],
        "open runs first (latest start first), then latest close first"
    );
    assert_eq!(store.count_runs(ns, None).expect("count"), 5);

    // Paging: the cursor comes back with each full page.
    let all = query("");
    let (page1, cursor) = store.list_runs(ns, &all, None, 3).expect("page 1");
    assert_eq!(run_ids(&page1), ["list-a", "list-d", "list-e"]);
    let cursor = cursor.expect("a full page has a cursor");
    let (page2, cursor) = store.list_runs(ns, &all, Some(&cursor), 3).expect("page 2");
    assert_eq!(run_ids(&page2), ["list-b", "list-c"]);
    assert_eq!(cursor, None, "a short page is the last");

    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("WorkflowType = 'Alpha'", vec!["list-a", "list-e", "list-c"]),
        ("WorkflowType != 'Alpha'", vec!["list-d", "list-b"]),
        ("WorkflowId = 'wf-a'", vec!["list-a"]),
        ("RunId = 'list-d'", vec!["list-d"]),
        ("TaskQueue = 'tq'", vec!["list-a", "list-d", "list-e", "list-b", "list-c"]),
        ("WorkflowType = 'Alpha' AND ExecutionStatus = 'Running'", vec!["list-a"]),
        ("WorkflowType = 'Alpha' OR ExecutionStatus = 'Running'", vec!["list-a", "list-d", "list-e", "list-c"]),
        ("NOT ExecutionStatus = 'Running'", vec!["list-e", "list-b", "list-c"]),
        ("NOT (WorkflowType = 'Alpha' OR ExecutionStatus = 'Running')", vec!["list-b"]),
        (
            "(WorkflowType = 'Alpha' AND ExecutionStatus != 'Running') OR RunId = 'list-d'",
            vec!["list-d", "list-e", "list-c"],
        ),
        ("ExecutionStatus IN ('Failed', 'Completed')", vec!["list-e", "list-b", "list-c"]),
        ("WorkflowId NOT IN ('wf-a', 'wf-b', 'wf-c')", vec!["list-d", "list-e"]),
        ("WorkflowId STARTS_WITH 'wf-'", vec!["list-a", "list-d", "list-e", "list-b", "list-c"]),
        ("RunId STARTS_WITH 'list-e'", vec!["list-e"]),
        ("CloseTime IS NULL", vec!["list-a", "list-d"]),
        ("CloseTime IS NOT NULL", vec!["list-e", "list-b", "list-c"]),
        ("ParentWorkflowId IS NULL", vec!["list-a", "list-d", "list-e", "list-b", "list-c"]),
        ("HistoryLength = 1", vec!["list-a", "list-d", "list-e", "list-b", "list-c"]),
        ("ExecutionDuration >= '1s'", vec!["list-b"]),
    ];
    for (text, expected) in cases {
        assert_eq!(list(store, ns, text), expected, "{text}");
        assert_eq!(store.count_runs(ns, query(text).filter.as_ref()).expect("count"), expected.len() as i64, "{text}");
    }
    let start = |offset: i64| uhrwerk_visibility::values::format_datetime((T0 + offset) * 1_000_000);
    assert_eq!(list(store, ns, &format!("StartTime > '{}'", start(200))), ["list-a", "list-e"]);
    assert_eq!(
        list(store, ns, &format!("StartTime BETWEEN '{}' AND '{}'", start(100), start(200))),
        ["list-d", "list-b", "list-c"]
    );
    assert_eq!(list(store, ns, &format!("CloseTime < '{}'", start(1200))), ["list-c"]);

    // ORDER BY replaces the default order; its pages continue by offset.
    assert_eq!(list(store, ns, "ORDER BY StartTime ASC"), ["list-d", "list-b", "list-c", "list-a", "list-e"]);
    let ordered = query("WorkflowType = 'Alpha' ORDER BY StartTime DESC");
    let (page1, cursor) = store.list_runs(ns, &ordered, None, 2).expect("page 1");
    assert_eq!(run_ids(&page1), ["list-e", "list-a"]);
    let (page2, _) = store.list_runs(ns, &ordered, cursor.as_ref(), 2).expect("page 2");
    assert_eq!(run_ids(&page2), ["list-c"]);

    let groups = store.count_runs_by_status(ns, query("WorkflowType = 'Alpha'").filter.as_ref()).expect("groups");
    assert_eq!(groups, [(Status::Running as i32, 1), (Status::Completed as i32, 1), (Status::Failed as i32, 1)]);
    assert_eq!(store.count_runs("ns-list-empty", None).expect("count"), 0);
}

fn custom_attributes_filter_and_replace(store: &dyn Store) {
    let ns = "ns-attrs";
    let attrs = |kw: &str, n: i64, text: &str, list: &[&str], d: f64, b: bool, t: i64| {
        vec![
            AttrRow { name: "CustomKeyword".into(), ty: ValueType::Keyword, values: vec![Literal::Str(kw.into())] },
            AttrRow { name: "CustomInt".into(), ty: ValueType::Int, values: vec![Literal::Int(n)] },
            AttrRow { name: "CustomText".into(), ty: ValueType::Text, values: vec![Literal::Str(text.into())] },
            AttrRow {
                name: "CustomList".into(),
                ty: ValueType::KeywordList,
                values: list.iter().map(|s| Literal::Str(s.to_string())).collect(),
            },
            AttrRow { name: "CustomDouble".into(), ty: ValueType::Double, values: vec![Literal::Double(d)] },
            AttrRow { name: "CustomBool".into(), ty: ValueType::Bool, values: vec![Literal::Bool(b)] },
            AttrRow { name: "CustomTime".into(), ty: ValueType::Datetime, values: vec![Literal::Time(t)] },
        ]
    };
    let mut w1 = write(run_state(ns, "wf-1", "attr-1", T0 + 1, Status::Running), events(1..=1));
    w1.attrs = Some(attrs("red", 5, "The quick brown fox", &["a", "b"], 1.5, true, 1_000));
    let mut w2 = write(run_state(ns, "wf-2", "attr-2", T0 + 2, Status::Running), events(1..=1));
    w2.attrs = Some(attrs("blue", 10, "lazy dog", &["b", "c"], 2.5, false, 2_000));
    let w3 = write(run_state(ns, "wf-3", "attr-3", T0 + 3, Status::Running), events(1..=1));
    store.commit(batch(vec![w1, w2, w3])).expect("commit");

    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("CustomKeyword = 'red'", vec!["attr-1"]),
        // A missing scalar value matches no comparison, negated or not (SQL semantics).
        ("CustomKeyword != 'red'", vec!["attr-2"]),
        ("NOT CustomInt = 5", vec!["attr-2"]),
        ("CustomInt NOT IN (5, 6)", vec!["attr-2"]),
        ("CustomInt NOT BETWEEN 0 AND 6", vec!["attr-2"]),
        ("NOT (CustomInt = 5 OR CustomBool = false)", vec![]),
        ("CustomKeyword NOT STARTS_WITH 'bl'", vec!["attr-1"]),
        ("CustomKeyword IS NULL", vec!["attr-3"]),
        ("CustomKeyword IS NOT NULL", vec!["attr-2", "attr-1"]),
        ("CustomKeyword STARTS_WITH 'bl'", vec!["attr-2"]),
        ("CustomKeyword IN ('red', 'green')", vec!["attr-1"]),
        ("CustomInt > 5", vec!["attr-2"]),
        ("CustomInt >= 5", vec!["attr-2", "attr-1"]),
        ("CustomInt < 10", vec!["attr-1"]),
        ("CustomInt BETWEEN 6 AND 10", vec!["attr-2"]),
        ("CustomText = 'fox quick'", vec!["attr-1"]),
        ("CustomText = 'cat'", vec![]),
        ("CustomList = 'b'", vec!["attr-2", "attr-1"]),
        ("CustomList = 'c'", vec!["attr-2"]),
        ("CustomList != 'a'", vec!["attr-3", "attr-2"]),
        ("CustomList IN ('a', 'z')", vec!["attr-1"]),
        ("CustomDouble > 2", vec!["attr-2"]),
        ("CustomDouble <= 1.5", vec!["attr-1"]),
        ("CustomBool = true", vec!["attr-1"]),
        ("CustomBool = false", vec!["attr-2"]),
        ("CustomTime > 1500", vec!["attr-2"]),
        ("CustomKeyword = 'red' AND CustomInt = 5", vec!["attr-1"]),
        ("`CustomKeyword` = 'blue' OR CustomBool = true", vec!["attr-2", "attr-1"]),
    ];
    for (text, expected) in cases {
        assert_eq!(list(store, ns, text), expected, "{text}");
    }
    assert_eq!(
        list(store, ns, "ORDER BY CustomInt DESC"),
        ["attr-2", "attr-1", "attr-3"],
        "a run without the attribute sorts last descending"
    );

    // A later write replaces the run's attributes; a write without `attrs` keeps them.
    let mut w1 = write(run_state(ns, "wf-1", "attr-1", T0 + 1, Status::Running), vec![]);
    w1.attrs = Some(vec![AttrRow {
        name: "CustomKeyword".into(),
        ty: ValueType::Keyword,
        values: vec![Literal::Str("green".into())],
    }]);
    store.commit(batch(vec![w1])).expect("commit");
    assert_eq!(list(store, ns, "CustomKeyword = 'green'"), ["attr-1"]);
    assert_eq!(list(store, ns, "CustomInt = 5"), Vec::<String>::new());
    let w2 = write(run_state(ns, "wf-2", "attr-2", T0 + 2, Status::Running), vec![]);
    store.commit(batch(vec![w2])).expect("commit");
    assert_eq!(list(store, ns, "CustomKeyword = 'blue'"), ["attr-2"]);
}

fn delete_removes_everything_of_a_run(store: &dyn Store) {
    let ns = "ns-delete";
    let mut st = run_state(ns, "wf-del", "del-1", T0, Status::Completed);
    st.close_time_ms = T0 + 10;
    let mut w = write(st.clone(), events(1..=3));
    w.set_current = true;
    w.attrs = Some(vec![AttrRow {
        name: "CustomKeyword".into(),
        ty: ValueType::Keyword,
        values: vec![Literal::Str("x".into())],
    }]);
    let keep = write(run_state(ns, "wf-keep", "keep-1", T0, Status::Running), events(1..=1));
    store.commit(batch(vec![w, keep])).expect("commit");
    assert_eq!(
        store.expired_runs(ns, T0 + 11, 10).expect("expired"),
        [RunKey { namespace: ns.into(), workflow_id: "wf-del".into(), run_id: "del-1".into() }]
    );
    assert!(store.expired_runs(ns, T0 + 10, 10).expect("expired").is_empty(), "closed at the cutoff is kept");

    let key = RunKey { namespace: ns.into(), workflow_id: "wf-del".into(), run_id: "del-1".into() };
    store.commit(WriteBatch { deletes: vec![key], ..Default::default() }).expect("delete");
    assert_eq!(store.run("del-1").expect("read"), None);
    assert!(store.events("del-1", 1, 10).expect("events").is_empty());
    assert_eq!(store.current_run_id(ns, "wf-del").expect("current"), None);
    assert_eq!(list(store, ns, "CustomKeyword = 'x'"), Vec::<String>::new());
    assert_eq!(list(store, ns, ""), ["keep-1"]);
}

fn search_attribute_registry_and_schedules(store: &dyn Store) {
    store
        .put_search_attributes("ns-sa", &[("A".into(), ValueType::Int), ("B".into(), ValueType::Keyword)])
        .expect("put");
    store.remove_search_attributes("ns-sa", &["B".into()]).expect("remove");
    let all: Vec<_> = store.search_attributes().expect("read").into_iter().filter(|(ns, _, _)| ns == "ns-sa").collect();
    assert_eq!(all, [("ns-sa".to_string(), "A".to_string(), ValueType::Int)]);

    let put = |data: Option<Vec<u8>>| WriteBatch {
        schedules: vec![("ns-sched".into(), "s1".into(), data)],
        ..Default::default()
    };
    store.commit(put(Some(vec![1, 2, 3]))).expect("put schedule");
    let rows: Vec<_> =
        store.schedules().expect("schedules").into_iter().filter(|r| r.namespace == "ns-sched").collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].data, [1, 2, 3]);
    store.commit(put(None)).expect("delete schedule");
    assert!(store.schedules().expect("schedules").iter().all(|r| r.namespace != "ns-sched"));
}

fn concurrent_batches_all_commit(store: &dyn Store) {
    let ns = "ns-concurrent";
    const THREADS: usize = 8;
    const PER_THREAD: usize = 25;
    std::thread::scope(|scope| {
        for thread_idx in 0..THREADS {
            scope.spawn(move || {
                for idx in 0..PER_THREAD {
                    let run_id = format!("conc-{thread_idx}-{idx}");
                    let st = run_state(ns, &run_id, &run_id, T0 + idx as i64, Status::Running);
                    let mut w = write(st.clone(), events(1..=3));
                    w.add_tasks = vec![task(&st, TaskKind::Workflow, 2)];
                    store.commit(batch(vec![w])).expect("concurrent commit");
                }
            });
        }
    });
    assert_eq!(store.count_runs(ns, None).expect("count"), (THREADS * PER_THREAD) as i64);
    for thread_idx in 0..THREADS {
        for idx in 0..PER_THREAD {
            let run_id = format!("conc-{thread_idx}-{idx}");
            assert_eq!(ids(&store.events(&run_id, 1, 10).expect("events")), [1, 2, 3], "{run_id}");
        }
    }
    let tasks = store.recover().expect("recover").tasks.into_iter().filter(|t| t.namespace == ns).count();
    assert_eq!(tasks, THREADS * PER_THREAD);
}

/// Submits good batches around one whose event id already exists; only that one fails.
fn failed_batch_does_not_fail_others(store: &dyn Store) {
    let ns = "ns-bad-batch";
    let victim = run_state(ns, "wf-victim", "bad-victim", T0, Status::Running);
    store.commit(batch(vec![write(victim.clone(), events(1..=2))])).expect("commit");

    let mut receivers = Vec::new();
    for idx in 0..10 {
        if idx == 5 {
            // Re-inserts event 2 and would close the run: must be rejected as a whole.
            let mut closing = victim.clone();
            closing.status = Status::Completed as i32;
            let mut w = write(closing, events(2..=3));
            w.set_current = true;
            receivers.push(("bad".to_string(), store.submit(batch(vec![w]))));
        }
        let run_id = format!("good-{idx}");
        let mut w = write(run_state(ns, &run_id, &run_id, T0, Status::Running), events(1..=2));
        w.set_current = true;
        receivers.push((run_id, store.submit(batch(vec![w]))));
    }
    for (name, rx) in receivers {
        let outcome = rx.blocking_recv().expect("writer replies");
        if name == "bad" {
            assert!(outcome.is_err(), "duplicate event id must fail its batch");
        } else {
            outcome.unwrap_or_else(|e| panic!("{name} failed: {e}"));
            assert_eq!(ids(&store.events(&name, 1, 10).expect("events")), [1, 2], "{name}");
            assert_eq!(store.current_run_id(ns, &name).expect("current"), Some(name.clone()));
        }
    }
    let stored = store.run("bad-victim").expect("read").expect("victim exists");
    assert_eq!(stored.status, Status::Running as i32, "the failed batch left no trace");
    assert_eq!(ids(&store.events("bad-victim", 1, 10).expect("events")), [1, 2]);
    assert_eq!(store.current_run_id(ns, "wf-victim").expect("current"), None);
}

fn namespaces_round_trip(store: &dyn Store) {
    store.put_namespace("zz-ns-b", "id-b", b"bee".to_vec()).expect("put");
    store.put_namespace("zz-ns-a", "id-a", b"ay".to_vec()).expect("put");
    store.put_namespace("zz-ns-a", "id-a", b"ay2".to_vec()).expect("replace");
    let all = store.namespaces().expect("namespaces");
    let ours: Vec<_> = all.iter().filter(|d| d.as_slice() == b"bee" || d.starts_with(b"ay")).cloned().collect();
    assert_eq!(ours, [b"ay2".to_vec(), b"bee".to_vec()], "by name, replaced in place");
}

// ---------------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------------

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(&SqliteOptions { path: path.to_path_buf(), durable: true }).expect("open sqlite store")
}

fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open raw connection");
    conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("user_version")
}

#[test]
fn sqlite_conformance_on_one_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("uhrwerk.db"));
    conformance(&store);
}

/// One test per scenario, each on a fresh file, so a failure names its scenario.
macro_rules! sqlite_scenario {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = open(&dir.path().join("uhrwerk.db"));
                super::$name(&store);
            }
        )*
    };
}

mod sqlite {
    use super::open;

    sqlite_scenario!(
        commit_and_read_back,
        remove_tasks_and_timers,
        closing_run_deletes_tasks_and_timers,
        events_order_and_paging,
        current_run_id_follows_set_current,
        list_and_count_runs,
        concurrent_batches_all_commit,
        failed_batch_does_not_fail_others,
        namespaces_round_trip,
    );
}

#[test]
fn sqlite_migrates_fresh_file_and_reopens_existing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested-name.db");
    let st = run_state("ns", "wf", "persist-run", T0, Status::Running);
    let armed = timer(TimerKind::WorkflowTaskStartToClose, 2, 1, T0 + 10_000);
    {
        let store = open(&path);
        assert_eq!(user_version(&path), 3, "fresh file is migrated to the current schema");
        assert_eq!(store.recover().expect("recover").open_runs, 0);
        let mut w = write(st.clone(), events(1..=3));
        w.set_current = true;
        w.add_tasks = vec![task(&st, TaskKind::Workflow, 2)];
        w.add_timers = vec![armed.clone()];
        store.commit(batch(vec![w])).expect("commit");
        store.put_namespace("ns", "ns-id", b"desc".to_vec()).expect("put namespace");
        store.close();
    }

    let store = open(&path);
    assert_eq!(user_version(&path), 3, "reopening does not migrate again");
    assert_eq!(store.run("persist-run").expect("read").map(|r| r.next_event_id), Some(4));
    assert_eq!(store.events("persist-run", 1, 100).expect("events"), events(1..=3));
    assert_eq!(store.current_run_id("ns", "wf").expect("current"), Some("persist-run".into()));
    let recovered = store.recover().expect("recover");
    assert_eq!(recovered.open_runs, 1);
    assert_eq!(recovered.tasks, [task(&st, TaskKind::Workflow, 2)]);
    assert_eq!(recovered.timers, [timer_row(&st, &armed)]);
    assert_eq!(store.namespaces().expect("namespaces"), [b"desc".to_vec()]);
}

#[test]
fn sqlite_migration_to_v2_fills_visibility_columns() {
    use prost::Message;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.db");
    let mut st = run_state("ns", "wf-old", "old-run", T0, Status::Completed);
    st.close_time_ms = T0 + 2_000;
    st.parent = Some(uhrwerk_core::state::ParentInfo {
        namespace: "ns".into(),
        workflow_id: "parent-wf".into(),
        run_id: "parent-run".into(),
        initiated_event_id: 5,
        root: None,
    });
    {
        // A database as version 1 wrote it.
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch(include_str!("../../../schema/sqlite/v1/schema.sql")).expect("v1 schema");
        conn.pragma_update(None, "user_version", 1).expect("set user_version");
        conn.execute(
            "INSERT INTO runs (run_id, namespace, workflow_id, workflow_type, task_queue, status, start_time, \
             close_time, execution_time, history_length, state) VALUES (?1,'ns','wf-old','Hello','tq',?2,?3,?4,?3,0,?5)",
            rusqlite::params![st.run_id, st.status, st.start_time_ms, st.close_time_ms, st.encode_to_vec()],
        )
        .expect("insert v1 row");
    }
    let store = open(&path);
    assert_eq!(user_version(&path), 3, "migrated through every later version");
    assert_eq!(list(&store, "ns", "ParentWorkflowId = 'parent-wf'"), ["old-run"]);
    assert_eq!(list(&store, "ns", "CloseTime IS NOT NULL AND ExecutionDuration = '2s'"), ["old-run"]);
    assert_eq!(list(&store, "ns", "RootWorkflowId = 'wf-old'"), ["old-run"]);
}

#[test]
fn sqlite_concurrent_batches_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("uhrwerk.db");
    {
        let store = open(&path);
        concurrent_batches_all_commit(&store);
    }
    let store = open(&path);
    assert_eq!(store.count_runs("ns-concurrent", None).expect("count"), 200);
    assert_eq!(ids(&store.events("conc-7-24", 1, 10).expect("events")), [1, 2, 3]);
}

#[test]
fn sqlite_refuses_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("future.db");
    drop(open(&path));
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99).expect("set user_version");
    }
    match SqliteStore::open(&SqliteOptions { path: path.clone(), durable: true }) {
        Err(Error::SchemaTooNew { found, supported }) => assert_eq!((found, supported), (99, 3)),
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("a database from a newer binary must be refused"),
    }
    assert_eq!(user_version(&path), 99, "the refused database is left untouched");
}

/// Holds SQLite's write lock from another connection while the batches are submitted, so the
/// writer finds them all queued and commits them as one group, the bad one included.
#[test]
fn sqlite_bad_batch_in_group_is_retried_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("uhrwerk.db");
    let store = open(&path);
    let ns = "ns-group";
    let victim = run_state(ns, "wf-victim", "group-victim", T0, Status::Running);
    store.commit(batch(vec![write(victim.clone(), events(1..=2))])).expect("commit");

    let locker = rusqlite::Connection::open(&path).expect("raw open");
    locker.busy_timeout(std::time::Duration::from_secs(30)).expect("busy timeout");
    locker.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
    let mut receivers = Vec::new();
    for idx in 0..20 {
        if idx == 10 {
            receivers.push(("bad".to_string(), store.submit(batch(vec![write(victim.clone(), events(1..=3))]))));
        }
        let run_id = format!("group-{idx}");
        receivers.push((
            run_id.clone(),
            store.submit(batch(vec![write(run_state(ns, &run_id, &run_id, T0, Status::Running), events(1..=1))])),
        ));
    }
    locker.execute_batch("ROLLBACK").expect("release the write lock");

    for (name, rx) in receivers {
        let outcome = rx.blocking_recv().expect("writer replies");
        if name == "bad" {
            let err = outcome.expect_err("duplicate event ids fail the batch");
            assert!(matches!(err, Error::Sqlite(_)), "a constraint violation is reported as such: {err}");
        } else {
            outcome.unwrap_or_else(|e| panic!("{name} failed with the bad batch: {e}"));
        }
    }
    assert_eq!(store.count_runs(ns, None).expect("count"), 21);
    assert_eq!(ids(&store.events("group-victim", 1, 10).expect("events")), [1, 2]);
    assert_eq!(store.run("group-victim").expect("read").map(|r| r.next_event_id), Some(3));
}

#[test]
fn sqlite_bad_batch_alone_reports_the_sqlite_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("uhrwerk.db"));
    let st = run_state("ns", "wf", "alone-run", T0, Status::Running);
    store.commit(batch(vec![write(st.clone(), events(1..=2))])).expect("commit");

    let outcome = store.commit(batch(vec![write(st, events(2..=2))]));
    // BUG: crates/uhrwerk-store/src/sqlite.rs `writer_loop`: when a group of one batch fails, the
    // error is replaced by `Error::Corrupt { what: "commit", .. }`, while the same batch failing inside
    // a larger group gets the real `Error::Sqlite`. A duplicate event id is a rejected write, not a
    // corrupt store; the caller must see the same error whatever the grouping was.
    match outcome {
        Err(Error::Sqlite(_)) => {}
        other => panic!("expected Error::Sqlite for a constraint violation, got {other:?}"),
    }
    assert_eq!(ids(&store.events("alone-run", 1, 10).expect("events")), [1, 2]);
}
