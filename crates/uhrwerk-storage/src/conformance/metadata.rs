//! The metadata store suite: namespace records, the search attribute registry and schedule
//! records.

use uhrwerk_visibility::ValueType;

use crate::MetadataStore;

super::suite!((store: &dyn MetadataStore) (store) {
    namespaces_round_trip,
    search_attribute_registry,
    schedules_put_replace_and_delete,
});

async fn namespaces_round_trip(store: &dyn MetadataStore) {
    store.put_namespace("zz-ns-b", "id-b", b"bee".to_vec()).await.expect("put");
    store.put_namespace("zz-ns-a", "id-a", b"ay".to_vec()).await.expect("put");
    store.put_namespace("zz-ns-a", "id-a", b"ay2".to_vec()).await.expect("replace");
    let all = store.namespaces().await.expect("namespaces");
    let ours: Vec<_> = all.iter().filter(|d| d.as_slice() == b"bee" || d.starts_with(b"ay")).cloned().collect();
    assert_eq!(ours, [b"ay2".to_vec(), b"bee".to_vec()], "by name, replaced in place");
}

async fn search_attribute_registry(store: &dyn MetadataStore) {
    store
        .put_search_attributes("ns-sa", &[("A".into(), ValueType::Int), ("B".into(), ValueType::Keyword)])
        .await
        .expect("put");
    store.put_search_attributes("ns-sa-other", &[("B".into(), ValueType::Bool)]).await.expect("put");
    store.remove_search_attributes("ns-sa", &["B".into()]).await.expect("remove");
    let all: Vec<_> = store
        .search_attributes()
        .await
        .expect("read")
        .into_iter()
        .filter(|(ns, _, _)| ns.starts_with("ns-sa"))
        .collect();
    assert_eq!(
        all,
        [
            ("ns-sa".to_string(), "A".to_string(), ValueType::Int),
            ("ns-sa-other".to_string(), "B".to_string(), ValueType::Bool)
        ],
        "removing from one namespace leaves the others"
    );
}

async fn schedules_put_replace_and_delete(store: &dyn MetadataStore) {
    let ours = |rows: Vec<crate::ScheduleRow>| -> Vec<(String, Vec<u8>)> {
        rows.into_iter().filter(|r| r.namespace == "ns-sched").map(|r| (r.schedule_id, r.data)).collect()
    };
    store.put_schedule("ns-sched", "s2", vec![9]).await.expect("put schedule");
    store.put_schedule("ns-sched", "s1", vec![1, 2, 3]).await.expect("put schedule");
    assert_eq!(
        ours(store.schedules().await.expect("schedules")),
        [("s1".into(), vec![1, 2, 3]), ("s2".into(), vec![9])]
    );
    store.put_schedule("ns-sched", "s1", vec![4]).await.expect("replace schedule");
    assert_eq!(ours(store.schedules().await.expect("schedules")), [("s1".into(), vec![4]), ("s2".into(), vec![9])]);

    store.delete_schedule("ns-sched", "s1").await.expect("delete schedule");
    store.delete_schedule("ns-sched", "s1").await.expect("deleting a deleted schedule");
    store.delete_schedule("ns-sched", "s2").await.expect("delete schedule");
    assert!(store.schedules().await.expect("schedules").iter().all(|r| r.namespace != "ns-sched"));
}
