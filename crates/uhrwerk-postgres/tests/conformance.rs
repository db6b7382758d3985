//! The storage conformance suites (`uhrwerk_storage::conformance`) against a real PostgreSQL,
//! plus PostgreSQL-specific checks: migrations from several processes at once, refusing a
//! newer schema or (without migrating) an older one, reopening.
//!
//! The server comes from `UHRWERK_TEST_DATABASE_URL` (`./scripts/test` starts a throwaway one
//! with `scripts/pg-throwaway`); each test creates a database of its own on it and drops it
//! after. Without the variable the tests fail, unless `UHRWERK_TEST_SKIP_POSTGRES=1` says to
//! skip them.

use uhrwerk_postgres::{DatabaseUrl, PostgresOptions, PostgresStore};
use uhrwerk_storage::conformance as suites;
use uhrwerk_storage::{Error, ExecutionStore};

/// A database of its own for one test, dropped with it.
struct TestDb {
    admin: DatabaseUrl,
    url: DatabaseUrl,
    name: String,
}

async fn admin_client(url: &DatabaseUrl) -> tokio_postgres::Client {
    let (client, conn) = url.config().connect(tokio_postgres::NoTls).await.expect("connect to the test server");
    tokio::spawn(conn);
    client
}

impl TestDb {
    async fn new(test: &str) -> Option<Self> {
        let Ok(url) = std::env::var("UHRWERK_TEST_DATABASE_URL") else {
            if std::env::var("UHRWERK_TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
                eprintln!("skipped: UHRWERK_TEST_SKIP_POSTGRES=1");
                return None;
            }
            panic!("UHRWERK_TEST_DATABASE_URL is not set (./scripts/test sets it; UHRWERK_TEST_SKIP_POSTGRES=1 skips)");
        };
        let admin = DatabaseUrl::parse(&url).expect("UHRWERK_TEST_DATABASE_URL parses");
        let name = format!("uw_{test}_{}", std::process::id());
        let client = admin_client(&admin).await;
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.expect("drop an old test database");
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
        let url = admin.for_database(&name);
        Some(Self { admin, url, name })
    }

    fn options(&self, migrate: bool) -> PostgresOptions {
        PostgresOptions { url: self.url.clone(), pool_size: 4, migrate }
    }

    async fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.options(true)).await.expect("open the postgres store")
    }

    async fn drop_db(self) {
        let client = admin_client(&self.admin).await;
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}

async fn all_suites(store: &PostgresStore) {
    suites::executions::run(store).await;
    suites::visibility::run(store, store).await;
    suites::metadata::run(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conformance() {
    let Some(db) = TestDb::new("conformance").await else { return };
    let store = db.open().await;
    all_suites(&store).await;
    store.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_from_many_processes_at_once_apply_each_version_once() {
    let Some(db) = TestDb::new("migrate").await else { return };
    let status = uhrwerk_postgres::status(&db.url).await.expect("status of an empty database");
    assert_eq!(status.current, 0);
    assert!(status.supported >= 1);
    // Eight stores open the empty database at once: each waits for the migration lock.
    let opened = futures_join(8, || {
        let options = db.options(true);
        async move { PostgresStore::open(&options).await }
    })
    .await;
    for store in &opened {
        assert!(store.is_ok(), "{:?}", store.as_ref().err());
    }
    let client = admin_client(&db.url).await;
    let versions: Vec<i64> = client
        .query("SELECT version FROM uhrwerk_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=status.supported).collect::<Vec<_>>());
    for store in opened.into_iter().flatten() {
        store.close().await;
    }
    // Migrating again applies nothing.
    assert_eq!(uhrwerk_postgres::migrate(&db.url).await.expect("migrate again"), Vec::<i64>::new());
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_and_an_older_one_without_migrating_too() {
    let Some(db) = TestDb::new("versions").await else { return };
    // Without migrating, an empty database is behind this binary.
    let behind = PostgresStore::open(&db.options(false)).await.err().expect("refused");
    assert!(matches!(behind, Error::SchemaBehind { found: 0, .. }), "{behind}");
    assert!(behind.to_string().contains("uhrwerk db migrate"), "{behind}");
    let store = db.open().await;
    store.close().await;
    let supported = uhrwerk_postgres::status(&db.url).await.unwrap().supported;
    let client = admin_client(&db.url).await;
    client.execute("INSERT INTO uhrwerk_schema (version) VALUES ($1)", &[&(supported + 1)]).await.unwrap();
    let newer = PostgresStore::open(&db.options(true)).await.err().expect("refused");
    assert!(matches!(newer, Error::SchemaTooNew { found, .. } if found == supported + 1), "{newer}");
    // Nothing was changed by the refusal.
    let max: i64 = client.query_one("SELECT max(version) FROM uhrwerk_schema", &[]).await.unwrap().get(0);
    assert_eq!(max, supported + 1);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_reads_what_was_committed() {
    use uhrwerk_storage::conformance::fixtures::{Status, T0, batch, events, run_state, write};
    let Some(db) = TestDb::new("reopen").await else { return };
    let store = db.open().await;
    let (namespace, workflow_id, run_id) = ("reopen", "wf-reopen", "run-reopen");
    let mut w = write(run_state(namespace, workflow_id, run_id, T0, Status::Running), events(1..=3));
    w.set_current = true;
    store.commit(batch(vec![w])).await.expect("commit");
    store.close().await;
    let store = db.open().await;
    assert_eq!(store.current_run_id(namespace, workflow_id).await.unwrap().as_deref(), Some(run_id));
    assert_eq!(store.events(run_id, 1, 100).await.unwrap().len(), 3);
    store.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable_with_the_address_and_no_password() {
    let url = DatabaseUrl::parse("postgres://nobody:secret-pw@127.0.0.1:1/none?connect_timeout=2").unwrap();
    let err = PostgresStore::open(&PostgresOptions { url, pool_size: 2, migrate: true }).await.err().expect("refused");
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains("secret-pw"), "{err}");
}

/// Runs `n` futures made by `make` at once and collects their outputs.
async fn futures_join<F, T>(n: usize, make: impl Fn() -> F) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(make())).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// The cluster's leases and fence: a takeover bumps the epoch, a batch under the old epoch is
/// refused whole (and nothing of it is written), one under the new epoch commits; in a group
/// with others, only the fenced batch fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_leases_fence_commits_under_an_old_epoch() {
    use uhrwerk_storage::conformance::fixtures::{Status, batch, events, run_state, write};
    use uhrwerk_storage::{ClusterStore, Fence};
    let Some(db) = TestDb::new("fence").await else { return };
    let store = db.open().await;
    assert_eq!(store.init_cluster(4).await.unwrap(), 4);
    assert_eq!(store.init_cluster(8).await.unwrap(), 4, "the first count stays");
    let leases = store.leases().await.unwrap();
    assert_eq!(leases.len(), 4);
    assert!(leases.iter().all(|l| l.owner.is_empty() && l.epoch == 0 && l.expired));

    store.heartbeat("a:1").await.unwrap();
    store.heartbeat("b:1").await.unwrap();
    assert_eq!(store.live_members(60_000).await.unwrap(), vec!["a:1".to_string(), "b:1".to_string()]);
    let a = store.acquire(2, "a:1", 0, 60_000).await.unwrap().expect("a free shard is taken");
    assert_eq!(a, 1);
    assert_eq!(store.acquire(2, "b:1", 0, 60_000).await.unwrap(), None, "the epoch moved: b lost the race");
    assert_eq!(store.renew("a:1", &[(2, a), (3, 0)], 60_000).await.unwrap(), vec![2], "only what a holds");
    let lease = store.leases().await.unwrap().into_iter().find(|l| l.shard == 2).unwrap();
    assert_eq!((lease.owner.as_str(), lease.epoch, lease.expired), ("a:1", 1, false));

    let open = Status::Running;
    let mut held = batch(vec![write(run_state("default", "wf-a", "run-a", 1, open), events(1..=1))]);
    held.fence = Some(Fence { shard: 2, epoch: a });
    store.commit(held).await.expect("a commit under the held epoch");

    // b takes the shard over (a paused past its lease, say).
    store.release(2, "a:1", a).await.unwrap();
    let b = store.acquire(2, "b:1", a, 60_000).await.unwrap().expect("a released shard is taken");
    assert_eq!(b, 2);
    assert!(store.renew("a:1", &[(2, a)], 60_000).await.unwrap().is_empty(), "a's renewal finds the shard moved on");

    let mut late = batch(vec![write(run_state("default", "wf-late", "run-late", 1, open), events(1..=1))]);
    late.fence = Some(Fence { shard: 2, epoch: a });
    let mut other = batch(vec![write(run_state("default", "wf-other", "run-other", 1, open), events(1..=1))]);
    other.fence = Some(Fence { shard: 3, epoch: 0 });
    let (late, other) = tokio::join!(store.commit(late), store.commit(other));
    let refused = late.expect_err("a commit under the old epoch is refused");
    assert!(matches!(&refused, Error::Fenced(m) if m.contains("shard 2 is at epoch 2")), "{refused}");
    other.expect("a batch of another shard in the same group commits");
    assert_eq!(store.run("run-late").await.unwrap(), None, "nothing of it was written");
    assert!(store.run("run-other").await.unwrap().is_some());

    let mut now_b = batch(vec![write(run_state("default", "wf-b", "run-b", 1, open), events(1..=1))]);
    now_b.fence = Some(Fence { shard: 2, epoch: b });
    store.commit(now_b).await.expect("the new owner commits");
    store.leave("a:1").await.unwrap();
    assert_eq!(store.live_members(60_000).await.unwrap(), vec!["b:1".to_string()]);
    store.close().await;
    db.drop_db().await;
}
