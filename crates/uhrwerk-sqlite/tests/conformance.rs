//! The storage conformance suites (`uhrwerk_storage::conformance`) against SQLite, in memory and
//! on a file, plus SQLite-specific checks: migrations, reopening, refusing a newer schema,
//! group commit under a held write lock.

use std::path::Path;

use uhrwerk_core::kernel::TimerKind;
use uhrwerk_sqlite::{SqliteOptions, SqliteStore};
use uhrwerk_storage::conformance as suites;
use uhrwerk_storage::conformance::fixtures::{
    Status, T0, batch, events, ids, list, run_state, task, timer, timer_row, write,
};
use uhrwerk_storage::{Error, ExecutionStore, MetadataStore, TaskKind, VisibilityStore};

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(&SqliteOptions { path: path.to_path_buf(), durable: true }).expect("open sqlite store")
}

fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open raw connection");
    conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("user_version")
}

/// Every suite, one after the other, on one store.
async fn all_suites(store: &SqliteStore) {
    suites::executions::run(store).await;
    suites::visibility::run(store, store).await;
    suites::metadata::run(store).await;
}

#[tokio::test]
async fn sqlite_conformance_in_memory() {
    let store = SqliteStore::open_in_memory().expect("open in-memory store");
    all_suites(&store).await;
}

#[tokio::test]
async fn sqlite_conformance_on_one_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("uhrwerk.db"));
    all_suites(&store).await;
}

/// Runs one scenario on a fresh file.
async fn scenario_on_a_fresh_file(suite: &str, name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("uhrwerk.db"));
    match suite {
        "executions" => suites::executions::scenario(&store, name).await,
        "visibility" => suites::visibility::scenario(&store, &store, name).await,
        "metadata" => suites::metadata::scenario(&store, name).await,
        _ => panic!("no suite called {suite}"),
    }
}

/// One test per scenario, each on a fresh file, so a failure names its scenario.
macro_rules! scenario_tests {
    ($($suite:ident: [$($name:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $suite {
                $(
                    #[tokio::test]
                    async fn $name() {
                        super::scenario_on_a_fresh_file(stringify!($suite), stringify!($name)).await;
                    }
                )*
            }
        )*

        #[test]
        fn every_scenario_has_a_test_of_its_own() {
            $(
                assert_eq!(
                    uhrwerk_storage::conformance::$suite::SCENARIOS,
                    [$(stringify!($name)),*],
                    "the scenarios of {}", stringify!($suite),
                );
            )*
        }
    };
}

scenario_tests!(
    executions: [
        commit_and_read_back,
        remove_tasks_and_timers,
        closing_run_deletes_tasks_and_timers,
        transfer_tasks_outlive_the_run_until_removed,
        events_order_and_paging,
        timers_page_in_key_order,
        current_run_id_follows_set_current,
        delete_removes_everything_of_a_run,
        concurrent_batches_all_commit,
        failed_batch_does_not_fail_others,
    ],
    visibility: [list_and_count_runs, custom_attributes_filter_and_replace, expired_and_deleted_runs],
    metadata: [namespaces_round_trip, search_attribute_registry, schedules_put_replace_and_delete],
);

#[tokio::test]
async fn sqlite_migrates_fresh_file_and_reopens_existing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested-name.db");
    let st = run_state("ns", "wf", "persist-run", T0, Status::Running);
    let armed = timer(TimerKind::WorkflowTaskStartToClose, 2, 1, T0 + 10_000);
    {
        let store = open(&path);
        assert_eq!(user_version(&path), 3, "fresh file is migrated to the current schema");
        assert_eq!(store.recover().await.expect("recover").open_runs, 0);
        let mut w = write(st.clone(), events(1..=3));
        w.set_current = true;
        w.add_tasks = vec![task(&st, TaskKind::Workflow, 2)];
        w.add_timers = vec![armed.clone()];
        store.commit(batch(vec![w])).await.expect("commit");
        store.put_namespace("ns", "ns-id", b"desc".to_vec()).await.expect("put namespace");
        store.put_schedule("ns", "sched", b"record".to_vec()).await.expect("put schedule");
        store.close();
    }

    let store = open(&path);
    assert_eq!(user_version(&path), 3, "reopening does not migrate again");
    assert_eq!(store.run("persist-run").await.expect("read").map(|r| r.next_event_id), Some(4));
    assert_eq!(store.events("persist-run", 1, 100).await.expect("events"), events(1..=3));
    assert_eq!(store.current_run_id("ns", "wf").await.expect("current"), Some("persist-run".into()));
    let recovered = store.recover().await.expect("recover");
    assert_eq!(recovered.open_runs, 1);
    assert_eq!(recovered.tasks, [task(&st, TaskKind::Workflow, 2)]);
    assert_eq!(uhrwerk_storage::all_timers(&store).await.expect("timers"), [timer_row(&st, &armed)]);
    assert_eq!(store.namespaces().await.expect("namespaces"), [b"desc".to_vec()]);
    let schedules = store.schedules().await.expect("schedules");
    assert_eq!(schedules.iter().map(|s| s.data.as_slice()).collect::<Vec<_>>(), [b"record"]);
}

#[tokio::test]
async fn sqlite_migration_to_v2_fills_visibility_columns() {
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
    assert_eq!(list(&store, "ns", "ParentWorkflowId = 'parent-wf'").await, ["old-run"]);
    assert_eq!(list(&store, "ns", "CloseTime IS NOT NULL AND ExecutionDuration = '2s'").await, ["old-run"]);
    assert_eq!(list(&store, "ns", "RootWorkflowId = 'wf-old'").await, ["old-run"]);
}

#[tokio::test]
async fn sqlite_concurrent_batches_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("uhrwerk.db");
    {
        let store = open(&path);
        suites::executions::scenario(&store, "concurrent_batches_all_commit").await;
    }
    let store = open(&path);
    assert_eq!(store.count_runs("ns-concurrent", None).await.expect("count"), 200);
    assert_eq!(ids(&store.events("conc-7-24", 1, 10).await.expect("events")), [1, 2, 3]);
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
#[tokio::test]
async fn sqlite_bad_batch_in_group_is_retried_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("uhrwerk.db");
    let store = open(&path);
    let ns = "ns-group";
    let victim = run_state(ns, "wf-victim", "group-victim", T0, Status::Running);
    store.commit(batch(vec![write(victim.clone(), events(1..=2))])).await.expect("commit");

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
        let outcome = rx.await.expect("writer replies");
        if name == "bad" {
            let err = outcome.expect_err("duplicate event ids fail the batch");
            assert!(matches!(err, Error::Rejected(_)), "a constraint violation is reported as such: {err}");
        } else {
            outcome.unwrap_or_else(|e| panic!("{name} failed with the bad batch: {e}"));
        }
    }
    assert_eq!(store.count_runs(ns, None).await.expect("count"), 21);
    assert_eq!(ids(&store.events("group-victim", 1, 10).await.expect("events")), [1, 2]);
    assert_eq!(store.run("group-victim").await.expect("read").map(|r| r.next_event_id), Some(3));
}

/// A batch that fails alone reports the same error as one that fails within a group: a
/// duplicate event id is a rejected write, not a corrupt store.
#[tokio::test]
async fn sqlite_bad_batch_alone_reports_the_sqlite_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("uhrwerk.db"));
    let st = run_state("ns", "wf", "alone-run", T0, Status::Running);
    store.commit(batch(vec![write(st.clone(), events(1..=2))])).await.expect("commit");

    match store.commit(batch(vec![write(st, events(2..=2))])).await {
        Err(Error::Rejected(detail)) => assert!(detail.contains("UNIQUE constraint failed"), "{detail}"),
        other => panic!("expected Error::Rejected for a constraint violation, got {other:?}"),
    }
    assert_eq!(ids(&store.events("alone-run", 1, 10).await.expect("events")), [1, 2]);
}
