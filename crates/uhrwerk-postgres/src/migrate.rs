//! Schema migrations: `schema/postgres/vN/schema.sql` applied in order, each in its own
//! transaction, recorded in `uhrwerk_schema`. Every migration runs under a transaction-scoped
//! advisory lock, so processes that start at once apply each version exactly once (the others
//! wait, then find it applied). A database newer than this binary is refused, and so is one whose
//! schema holds another application's tables.

use tokio_postgres::GenericClient;
use uhrwerk_storage::{Error as StorageError, Result as StorageResult};

use crate::config::DatabaseUrl;
use crate::error::Result;

/// Ordered migrations; version N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] =
    &[include_str!("../../../schema/postgres/v1/schema.sql"), include_str!("../../../schema/postgres/v2/schema.sql")];

/// The advisory lock migrations take ("uhrwerk" in ASCII).
const LOCK_KEY: i64 = 0x0075_6872_7765_726b;

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS uhrwerk_schema (
    version    BIGINT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// The schema version a database has and the one this binary writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaStatus {
    pub current: i64,
    pub supported: i64,
}

impl SchemaStatus {
    pub fn up_to_date(&self) -> bool {
        self.current == self.supported
    }
}

fn supported() -> i64 {
    MIGRATIONS.len() as i64
}

async fn current(client: &impl GenericClient) -> Result<i64> {
    let exists: bool = client.query_one("SELECT to_regclass('uhrwerk_schema') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client.query_one("SELECT coalesce(max(version), 0) FROM uhrwerk_schema", &[]).await?.get(0))
}

/// Applies the missing migrations (with `apply`), or checks that none is missing; refuses a
/// database newer than this binary either way. Returns the versions applied.
pub(crate) async fn bring_up_to_date(client: &mut tokio_postgres::Client, apply: bool) -> StorageResult<Vec<i64>> {
    Ok(bring_up_to_date_inner(client, apply).await?)
}

async fn bring_up_to_date_inner(client: &mut tokio_postgres::Client, apply: bool) -> Result<Vec<i64>> {
    let mut applied = Vec::new();
    loop {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
        let found = current(&tx).await?;
        if found > supported() {
            return Err(StorageError::SchemaTooNew { found, supported: supported() }.into());
        }
        if found == supported() {
            return Ok(applied);
        }
        if found == 0 {
            refuse_foreign(&tx).await?;
        }
        if !apply {
            return Err(StorageError::SchemaBehind { found, supported: supported() }.into());
        }
        let version = found + 1;
        tx.batch_execute(VERSION_TABLE).await?;
        tx.batch_execute(MIGRATIONS[found as usize]).await?;
        tx.execute("INSERT INTO uhrwerk_schema (version) VALUES ($1)", &[&version]).await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
        applied.push(version);
    }
}

/// Refuses a database whose schema already holds tables but no Uhrwerk schema version: another
/// application's. Uhrwerk's tables are not added to it.
async fn refuse_foreign(client: &impl GenericClient) -> Result<()> {
    let row = client
        .query_one(
            "SELECT current_schema(), count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .await?;
    let (schema, tables): (Option<String>, i64) = (row.get(0), row.get(1));
    if tables > 0 {
        let schema = schema.unwrap_or_default();
        return Err(StorageError::NotOurs(format!(
            "schema \"{schema}\" holds {tables} tables of another application and no Uhrwerk schema version; \
             give Uhrwerk an empty database (or schema)"
        ))
        .into());
    }
    Ok(())
}

/// A single connection outside any pool, for `uhrwerk db` and start-up checks.
async fn connect(url: &DatabaseUrl) -> Result<tokio_postgres::Client> {
    let (client, connection) = url.config().connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection ended: {}", crate::error::describe(&e));
        }
    });
    Ok(client)
}

/// `uhrwerk db migrate`: applies every missing migration; returns the versions applied.
pub async fn migrate(url: &DatabaseUrl) -> StorageResult<Vec<i64>> {
    let mut client = connect(url).await.map_err(StorageError::from)?;
    bring_up_to_date(&mut client, true).await
}

/// `uhrwerk db status`: the database's schema version and this binary's.
pub async fn status(url: &DatabaseUrl) -> StorageResult<SchemaStatus> {
    let client = connect(url).await.map_err(StorageError::from)?;
    let current = current(&client).await.map_err(StorageError::from)?;
    Ok(SchemaStatus { current, supported: supported() })
}
