//! The execution store suite: commits and what they leave behind (runs, events, current-run
//! pointers, outbox tasks, timers, transfer tasks), deletes, recovery, and the group commit
//! under concurrent and failing batches.

use futures_util::future::join_all;
use uhrwerk_core::kernel::{TimerKind, TimerTask};
use uhrwerk_core::state::ChildInfo;
use uhrwerk_core::transfer::{TransferKind, TransferTask};

use super::fixtures::{Status, T0, batch, events, ids, run_state, task, timer, timer_row, write};
use crate::{ExecutionStore, RunKey, TaskKind, TimerRow, TransferRow, WriteBatch, all_timers};

super::suite!((store: &dyn ExecutionStore) (store) {
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
});

async fn commit_and_read_back(store: &dyn ExecutionStore) {
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
    let open_before = store.recover().await.expect("recover").open_runs;

    store.commit(batch(vec![w])).await.expect("commit");

    assert_eq!(store.run("commit-run").await.expect("read run"), Some(committed_state.clone()));
    assert_eq!(store.run("no-such-run").await.expect("read run"), None);
    assert_eq!(store.events("commit-run", 1, 100).await.expect("events"), events(1..=3));
    assert_eq!(store.current_run_id(ns, "wf").await.expect("current"), Some("commit-run".into()));
    let recovered = store.recover().await.expect("recover");
    assert_eq!(recovered.open_runs, open_before + 1, "the new run is counted as open");
    let mut tasks: Vec<_> = recovered.tasks.iter().filter(|t| t.namespace == ns).cloned().collect();
    tasks.sort_by_key(|t| t.scheduled_event_id);
    assert_eq!(tasks, [task(&st, TaskKind::Workflow, 2), task(&st, TaskKind::Activity, 5)]);
    let timers_back: Vec<_> =
        all_timers(store).await.expect("timers").into_iter().filter(|t| t.namespace == ns).collect();
    assert_eq!(timers_back, [timer_row(&st, &timers[1]), timer_row(&st, &timers[0])], "timers come back by due time");
}

async fn remove_tasks_and_timers(store: &dyn ExecutionStore) {
    let ns = "ns-remove";
    let st = run_state(ns, "wf", "remove-run", T0, Status::Running);
    let wft_timer = timer(TimerKind::WorkflowTaskStartToClose, 2, 1, T0 + 10_000);
    let activity_timer = timer(TimerKind::ActivityStartToClose, 5, 1, T0 + 20_000);
    let mut w = write(st.clone(), events(1..=2));
    w.add_tasks = vec![task(&st, TaskKind::Workflow, 2), task(&st, TaskKind::Activity, 5)];
    w.add_timers = vec![wft_timer.clone(), activity_timer.clone()];
    store.commit(batch(vec![w])).await.expect("commit");

    let mut w = write(st.clone(), events(3..=3));
    w.remove_tasks = vec![2];
    // The kernel reports done timers by key, without their due time.
    w.remove_timers = vec![TimerTask::key(TimerKind::WorkflowTaskStartToClose, 2, 1)];
    store.commit(batch(vec![w])).await.expect("commit");

    let recovered = store.recover().await.expect("recover");
    let tasks: Vec<_> = recovered.tasks.iter().filter(|t| t.namespace == ns).cloned().collect();
    assert_eq!(tasks, [task(&st, TaskKind::Activity, 5)]);
    let timers: Vec<_> = all_timers(store).await.expect("timers").into_iter().filter(|t| t.namespace == ns).collect();
    assert_eq!(timers, [timer_row(&st, &activity_timer)]);
    assert_eq!(ids(&store.events("remove-run", 1, 100).await.expect("events")), [1, 2, 3]);
}

async fn closing_run_deletes_tasks_and_timers(store: &dyn ExecutionStore) {
    let ns = "ns-close";
    let open = run_state(ns, "wf", "close-run", T0, Status::Running);
    let other = run_state(ns, "wf-other", "close-other", T0, Status::Running);
    let mut w = write(open.clone(), events(1..=2));
    w.add_tasks = vec![task(&open, TaskKind::Workflow, 2)];
    w.add_timers = vec![timer(TimerKind::ActivityRetry, 5, 2, T0 + 1000)];
    let mut w_other = write(other.clone(), events(1..=2));
    w_other.add_tasks = vec![task(&other, TaskKind::Workflow, 2)];
    let open_before = store.recover().await.expect("recover").open_runs;
    store.commit(batch(vec![w, w_other])).await.expect("commit");

    let mut closed = open.clone();
    closed.status = Status::Completed as i32;
    closed.close_time_ms = T0 + 5000;
    closed.close_event_id = 3;
    store.commit(batch(vec![write(closed.clone(), events(3..=3))])).await.expect("commit close");

    let recovered = store.recover().await.expect("recover");
    assert_eq!(recovered.open_runs, open_before + 1, "of the two new runs one is still open");
    assert!(recovered.tasks.iter().all(|t| t.run_id != "close-run"), "tasks of the closed run are gone");
    let timers = all_timers(store).await.expect("timers");
    assert!(timers.iter().all(|t| t.run_id != "close-run"), "timers of the closed run are gone");
    assert!(recovered.tasks.iter().any(|t| t.run_id == "close-other"), "other runs keep their tasks");
    let stored = store.run("close-run").await.expect("read").expect("closed run is still readable");
    assert_eq!(stored.status, Status::Completed as i32);
    assert_eq!(stored.close_event_id, 3);
    assert_eq!(ids(&store.events("close-run", 1, 100).await.expect("events")), [1, 2, 3]);
}

async fn transfer_tasks_outlive_the_run_until_removed(store: &dyn ExecutionStore) {
    let ns = "ns-transfer";
    let st = run_state(ns, "wf", "transfer-run", T0, Status::Running);
    let child = TransferTask::new(TransferKind::StartChild, 5);
    let signal = TransferTask::new(TransferKind::SignalExternal, 6);
    let mut w = write(st.clone(), events(1..=6));
    w.add_transfers = vec![child.clone(), signal.clone()];
    store.commit(batch(vec![w])).await.expect("commit");

    // The run closes; its transfer tasks stay until they are carried out.
    let mut closed = st.clone();
    closed.status = Status::Completed as i32;
    closed.close_event_id = 7;
    let mut policy = TransferTask::new(TransferKind::ParentClosePolicy, 7);
    policy.children = vec![ChildInfo {
        initiated_event_id: 5,
        workflow_id: "child".into(),
        run_id: "child-run".into(),
        ..Default::default()
    }];
    let mut w = write(closed, events(7..=7));
    w.add_transfers = vec![policy.clone()];
    store.commit(batch(vec![w])).await.expect("commit close");
    let row = |task: &TransferTask| TransferRow {
        namespace: ns.into(),
        workflow_id: "wf".into(),
        run_id: "transfer-run".into(),
        task: task.clone(),
    };
    let mut found: Vec<_> =
        store.recover().await.expect("recover").transfers.into_iter().filter(|t| t.namespace == ns).collect();
    found.sort_by_key(|t| (t.task.kind, t.task.event_id));
    assert_eq!(found, [row(&child), row(&policy), row(&signal)]);

    let done = WriteBatch { remove_transfers: vec![row(&child).key(), row(&policy).key()], ..Default::default() };
    store.commit(done).await.expect("remove");
    let left: Vec<_> =
        store.recover().await.expect("recover").transfers.into_iter().filter(|t| t.namespace == ns).collect();
    assert_eq!(left, [row(&signal)]);
}

async fn events_order_and_paging(store: &dyn ExecutionStore) {
    let ns = "ns-events";
    let st = run_state(ns, "wf", "events-run", T0, Status::Running);
    let neighbour = run_state(ns, "wf-2", "events-run-2", T0, Status::Running);
    store.commit(batch(vec![write(st.clone(), events(1..=4)), write(neighbour, events(1..=7))])).await.expect("commit");
    store.commit(batch(vec![write(st.clone(), events(5..=10))])).await.expect("commit");

    assert_eq!(ids(&store.events("events-run", 1, 4).await.expect("page")), [1, 2, 3, 4]);
    assert_eq!(ids(&store.events("events-run", 5, 4).await.expect("page")), [5, 6, 7, 8]);
    assert_eq!(ids(&store.events("events-run", 9, 4).await.expect("page")), [9, 10]);
    assert!(store.events("events-run", 11, 4).await.expect("page").is_empty());
    assert_eq!(store.events("events-run", 1, 100).await.expect("all"), events(1..=10), "events round-trip unchanged");
    assert_eq!(ids(&store.events("events-run-2", 6, 100).await.expect("page")), [6, 7]);
    assert!(store.events("no-such-run", 1, 100).await.expect("page").is_empty());
    // `usize::MAX` reads them all (reset reads a whole history so).
    assert_eq!(ids(&store.events("events-run", 3, usize::MAX).await.expect("rest")), [3, 4, 5, 6, 7, 8, 9, 10]);
}

async fn timers_page_in_key_order(store: &dyn ExecutionStore) {
    let ns = "ns-timer-pages";
    // Two runs whose ids sort before and after each other, timers of several kinds and
    // attempts, due in an order unrelated to their keys.
    let mut writes = Vec::new();
    for run in ["timer-page-b", "timer-page-a"] {
        let st = run_state(ns, run, run, T0, Status::Running);
        let mut w = write(st, events(1..=1));
        w.add_timers = vec![
            timer(TimerKind::ActivityStartToClose, 5, 2, T0 + 1_000),
            timer(TimerKind::ActivityStartToClose, 5, 1, T0 + 3_000),
            timer(TimerKind::UserTimer, 9, 0, T0 + 2_000),
            timer(TimerKind::WorkflowTaskStartToClose, 2, 1, T0 + 500),
        ];
        writes.push(w);
    }
    store.commit(batch(writes)).await.expect("commit");

    let mut paged: Vec<TimerRow> = Vec::new();
    loop {
        let page = store.timers(paged.last().map(TimerRow::cursor), 3).await.expect("page");
        assert!(page.len() <= 3, "a page holds at most its limit");
        if page.is_empty() {
            break;
        }
        paged.extend(page);
        assert!(paged.len() <= 1000, "paging comes to an end");
    }
    let cursors: Vec<_> = paged.iter().map(TimerRow::cursor).collect();
    let mut sorted = cursors.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(cursors, sorted, "pages follow the key order without repeats");
    let mine: Vec<_> = paged.iter().filter(|t| t.namespace == ns).collect();
    assert_eq!(mine.len(), 8, "every timer of the two runs, once");
    let everything = all_timers(store).await.expect("all timers");
    assert_eq!(everything.len(), paged.len());
    assert!(everything.windows(2).all(|w| w[0].timer.fire_at_ms <= w[1].timer.fire_at_ms), "all_timers is by due time");
}

async fn current_run_id_follows_set_current(store: &dyn ExecutionStore) {
    let ns = "ns-current";
    assert_eq!(store.current_run_id(ns, "wf").await.expect("current"), None);
    let mut first = write(run_state(ns, "wf", "current-1", T0, Status::Running), events(1..=2));
    first.set_current = true;
    store.commit(batch(vec![first])).await.expect("commit");
    assert_eq!(store.current_run_id(ns, "wf").await.expect("current"), Some("current-1".into()));

    let mut second = write(run_state(ns, "wf", "current-2", T0 + 1, Status::Running), events(1..=2));
    second.set_current = true;
    store.commit(batch(vec![second])).await.expect("commit");
    assert_eq!(store.current_run_id(ns, "wf").await.expect("current"), Some("current-2".into()));

    // Later writes of the old run without set_current leave the pointer alone.
    let mut old = run_state(ns, "wf", "current-1", T0, Status::Terminated);
    old.close_event_id = 3;
    store.commit(batch(vec![write(old, events(3..=3))])).await.expect("commit");
    assert_eq!(store.current_run_id(ns, "wf").await.expect("current"), Some("current-2".into()));
    assert_eq!(
        store.current_run_id("ns-current-other", "wf").await.expect("current"),
        None,
        "pointers are per namespace"
    );
}

/// The visibility side of deletes is in `visibility::expired_and_deleted_runs`.
async fn delete_removes_everything_of_a_run(store: &dyn ExecutionStore) {
    let ns = "ns-delete";
    let mut st = run_state(ns, "wf-del", "del-1", T0, Status::Completed);
    st.close_time_ms = T0 + 10;
    let mut w = write(st.clone(), events(1..=3));
    w.set_current = true;
    // A run deleted while open loses its outbox tasks and timers too.
    let open = run_state(ns, "wf-del-open", "del-open", T0, Status::Running);
    let mut w_open = write(open.clone(), events(1..=2));
    w_open.add_tasks = vec![task(&open, TaskKind::Workflow, 2)];
    w_open.add_timers = vec![timer(TimerKind::WorkflowTaskStartToClose, 2, 1, T0 + 10_000)];
    let keep = write(run_state(ns, "wf-keep", "keep-1", T0, Status::Running), events(1..=1));
    store.commit(batch(vec![w, w_open, keep])).await.expect("commit");

    let key = RunKey { namespace: ns.into(), workflow_id: "wf-del".into(), run_id: "del-1".into() };
    let key_open = RunKey { namespace: ns.into(), workflow_id: "wf-del-open".into(), run_id: "del-open".into() };
    store.commit(WriteBatch { deletes: vec![key, key_open], ..Default::default() }).await.expect("delete");
    assert_eq!(store.run("del-1").await.expect("read"), None);
    assert!(store.events("del-1", 1, 10).await.expect("events").is_empty());
    assert_eq!(store.current_run_id(ns, "wf-del").await.expect("current"), None);
    assert_eq!(store.run("del-open").await.expect("read"), None);
    let recovered = store.recover().await.expect("recover");
    assert!(recovered.tasks.iter().all(|t| t.run_id != "del-open"), "tasks of a deleted run are gone");
    let timers = all_timers(store).await.expect("timers");
    assert!(timers.iter().all(|t| t.run_id != "del-open"), "timers of a deleted run are gone");
    assert!(store.run("keep-1").await.expect("read").is_some(), "other runs stay");
}

/// Batches from many submitters at once, as the engine's transitions arrive.
async fn concurrent_batches_all_commit(store: &dyn ExecutionStore) {
    let ns = "ns-concurrent";
    const SUBMITTERS: usize = 8;
    const PER_SUBMITTER: usize = 25;
    join_all((0..SUBMITTERS).map(|submitter| async move {
        for idx in 0..PER_SUBMITTER {
            let run_id = format!("conc-{submitter}-{idx}");
            let st = run_state(ns, &run_id, &run_id, T0 + idx as i64, Status::Running);
            let mut w = write(st.clone(), events(1..=3));
            w.add_tasks = vec![task(&st, TaskKind::Workflow, 2)];
            store.commit(batch(vec![w])).await.expect("concurrent commit");
        }
    }))
    .await;
    for submitter in 0..SUBMITTERS {
        for idx in 0..PER_SUBMITTER {
            let run_id = format!("conc-{submitter}-{idx}");
            let stored = store.run(&run_id).await.expect("read").unwrap_or_else(|| panic!("{run_id} is stored"));
            assert_eq!(stored.next_event_id, 4, "{run_id}");
            assert_eq!(ids(&store.events(&run_id, 1, 10).await.expect("events")), [1, 2, 3], "{run_id}");
        }
    }
    let tasks = store.recover().await.expect("recover").tasks.into_iter().filter(|t| t.namespace == ns).count();
    assert_eq!(tasks, SUBMITTERS * PER_SUBMITTER);
}

/// Submits good batches around one whose event id already exists; only that one fails.
async fn failed_batch_does_not_fail_others(store: &dyn ExecutionStore) {
    let ns = "ns-bad-batch";
    let victim = run_state(ns, "wf-victim", "bad-victim", T0, Status::Running);
    store.commit(batch(vec![write(victim.clone(), events(1..=2))])).await.expect("commit");

    let mut names = Vec::new();
    let mut batches = Vec::new();
    for idx in 0..10 {
        if idx == 5 {
            // Re-inserts event 2 and would close the run: must be rejected as a whole.
            let mut closing = victim.clone();
            closing.status = Status::Completed as i32;
            let mut w = write(closing, events(2..=3));
            w.set_current = true;
            names.push("bad".to_string());
            batches.push(batch(vec![w]));
        }
        let run_id = format!("good-{idx}");
        let mut w = write(run_state(ns, &run_id, &run_id, T0, Status::Running), events(1..=2));
        w.set_current = true;
        names.push(run_id);
        batches.push(batch(vec![w]));
    }
    // All submitted before any is waited for, so the store may commit them as one group.
    let outcomes = join_all(batches.into_iter().map(|b| store.commit(b))).await;
    for (name, outcome) in names.into_iter().zip(outcomes) {
        if name == "bad" {
            let err = outcome.expect_err("duplicate event id must fail its batch");
            assert!(matches!(err, crate::Error::Rejected(_)), "a broken constraint is a rejected write: {err}");
        } else {
            outcome.unwrap_or_else(|e| panic!("{name} failed: {e}"));
            assert_eq!(ids(&store.events(&name, 1, 10).await.expect("events")), [1, 2], "{name}");
            assert_eq!(store.current_run_id(ns, &name).await.expect("current"), Some(name.clone()));
        }
    }
    let stored = store.run("bad-victim").await.expect("read").expect("victim exists");
    assert_eq!(stored.status, Status::Running as i32, "the failed batch left no trace");
    assert_eq!(ids(&store.events("bad-victim", 1, 10).await.expect("events")), [1, 2]);
    assert_eq!(store.current_run_id(ns, "wf-victim").await.expect("current"), None);
}
