//! The visibility store suite: the list query language over system and custom attributes,
//! paging, counts, and the runs past their retention. The runs are written through the
//! execution store passed beside it (`seed`), as the engine writes them.

use uhrwerk_visibility::{Literal, ValueType};

use super::fixtures::{Status, T0, batch, events, list, query, run_ids, run_state, write};
use crate::{AttrRow, ExecutionStore, RunKey, VisibilityStore, WriteBatch};

super::suite!((store: &dyn VisibilityStore, seed: &dyn ExecutionStore) (store, seed) {
    list_and_count_runs,
    custom_attributes_filter_and_replace,
    expired_and_deleted_runs,
});

async fn list_and_count_runs(store: &dyn VisibilityStore, seed: &dyn ExecutionStore) {
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
    seed.commit(batch(writes)).await.expect("commit");
    seed.commit(batch(vec![write(
        run_state("ns-list-other", "wf-a", "list-other", T0, Status::Running),
        events(1..=1),
    )]))
    .await
    .expect("commit");

    assert_eq!(
        list(store, ns, "").await,
        ["list-a", "list-d", "list-e", "list-b", "list-c"],
        "open runs first (latest start first), then latest close first"
    );
    assert_eq!(store.count_runs(ns, None).await.expect("count"), 5);

    // Paging: the cursor comes back with each full page.
    let all = query("");
    let (page1, cursor) = store.list_runs(ns, &all, None, 3).await.expect("page 1");
    assert_eq!(run_ids(&page1), ["list-a", "list-d", "list-e"]);
    let cursor = cursor.expect("a full page has a cursor");
    let (page2, cursor) = store.list_runs(ns, &all, Some(&cursor), 3).await.expect("page 2");
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
        assert_eq!(list(store, ns, text).await, expected, "{text}");
        let count = store.count_runs(ns, query(text).filter.as_ref()).await.expect("count");
        assert_eq!(count, expected.len() as i64, "{text}");
    }
    let start = |offset: i64| uhrwerk_visibility::values::format_datetime((T0 + offset) * 1_000_000);
    assert_eq!(list(store, ns, &format!("StartTime > '{}'", start(200))).await, ["list-a", "list-e"]);
    assert_eq!(
        list(store, ns, &format!("StartTime BETWEEN '{}' AND '{}'", start(100), start(200))).await,
        ["list-d", "list-b", "list-c"]
    );
    assert_eq!(list(store, ns, &format!("CloseTime < '{}'", start(1200))).await, ["list-c"]);

    // ORDER BY replaces the default order; its pages continue by offset.
    assert_eq!(list(store, ns, "ORDER BY StartTime ASC").await, ["list-d", "list-b", "list-c", "list-a", "list-e"]);
    let ordered = query("WorkflowType = 'Alpha' ORDER BY StartTime DESC");
    let (page1, cursor) = store.list_runs(ns, &ordered, None, 2).await.expect("page 1");
    assert_eq!(run_ids(&page1), ["list-e", "list-a"]);
    let (page2, _) = store.list_runs(ns, &ordered, cursor.as_ref(), 2).await.expect("page 2");
    assert_eq!(run_ids(&page2), ["list-c"]);

    let groups = store.count_runs_by_status(ns, query("WorkflowType = 'Alpha'").filter.as_ref()).await.expect("groups");
    assert_eq!(groups, [(Status::Running as i32, 1), (Status::Completed as i32, 1), (Status::Failed as i32, 1)]);
    assert_eq!(store.count_runs("ns-list-empty", None).await.expect("count"), 0);
}

async fn custom_attributes_filter_and_replace(store: &dyn VisibilityStore, seed: &dyn ExecutionStore) {
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
    seed.commit(batch(vec![w1, w2, w3])).await.expect("commit");

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
        assert_eq!(list(store, ns, text).await, expected, "{text}");
    }
    assert_eq!(
        list(store, ns, "ORDER BY CustomInt DESC").await,
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
    seed.commit(batch(vec![w1])).await.expect("commit");
    assert_eq!(list(store, ns, "CustomKeyword = 'green'").await, ["attr-1"]);
    assert_eq!(list(store, ns, "CustomInt = 5").await, Vec::<String>::new());
    let w2 = write(run_state(ns, "wf-2", "attr-2", T0 + 2, Status::Running), vec![]);
    seed.commit(batch(vec![w2])).await.expect("commit");
    assert_eq!(list(store, ns, "CustomKeyword = 'blue'").await, ["attr-2"]);
}

/// Retention finds closed runs by close time; a deleted run leaves the index with its
/// attributes. The execution side of deletes is in `executions::delete_removes_everything_of_a_run`.
async fn expired_and_deleted_runs(store: &dyn VisibilityStore, seed: &dyn ExecutionStore) {
    let ns = "ns-expired";
    let mut st = run_state(ns, "wf-del", "expired-1", T0, Status::Completed);
    st.close_time_ms = T0 + 10;
    let mut w = write(st.clone(), events(1..=3));
    w.set_current = true;
    w.attrs = Some(vec![AttrRow {
        name: "CustomKeyword".into(),
        ty: ValueType::Keyword,
        values: vec![Literal::Str("x".into())],
    }]);
    let keep = write(run_state(ns, "wf-keep", "expired-keep", T0, Status::Running), events(1..=1));
    seed.commit(batch(vec![w, keep])).await.expect("commit");
    let key = RunKey { namespace: ns.into(), workflow_id: "wf-del".into(), run_id: "expired-1".into() };
    assert_eq!(store.expired_runs(ns, T0 + 11, 10).await.expect("expired"), std::slice::from_ref(&key));
    assert!(store.expired_runs(ns, T0 + 10, 10).await.expect("expired").is_empty(), "closed at the cutoff is kept");
    assert!(store.expired_runs("ns-expired-other", T0 + 11, 10).await.expect("expired").is_empty(), "per namespace");

    seed.commit(WriteBatch { deletes: vec![key], ..Default::default() }).await.expect("delete");
    assert_eq!(list(store, ns, "CustomKeyword = 'x'").await, Vec::<String>::new());
    assert_eq!(list(store, ns, "").await, ["expired-keep"]);
    assert!(store.expired_runs(ns, T0 + 11, 10).await.expect("expired").is_empty(), "deleted runs are not expired");
}
