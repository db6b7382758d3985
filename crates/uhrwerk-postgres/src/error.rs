//! Errors inside the PostgreSQL backend, and how they reach callers as storage errors: a broken
//! constraint is a rejected write, a schema mismatch is the operator's to fix, and everything
//! else (a lost connection, a database that restarts, a full disk) may pass when tried again.

use tokio_postgres::error::SqlState;
use uhrwerk_storage::Error as StorageError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for StorageError {
    fn from(e: Error) -> Self {
        match e {
            Error::Storage(e) => e,
            Error::Postgres(e) => {
                let detail = describe(&e);
                match e.code() {
                    Some(code) if code.code().starts_with("23") => StorageError::Rejected(detail),
                    // Raised by `uw_check_fence`: the shard moved to another node.
                    Some(code) if code.code() == "UW001" => {
                        StorageError::Fenced(e.as_db_error().map(|db| db.message().to_string()).unwrap_or(detail))
                    }
                    Some(&SqlState::DATA_CORRUPTED | &SqlState::INDEX_CORRUPTED) => {
                        StorageError::Corrupt { what: "database", detail }
                    }
                    _ => StorageError::Unavailable(detail),
                }
            }
        }
    }
}

/// The database's own message when it sent one (tokio-postgres' `Display` says only "db
/// error"), else the client's.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("postgres: {}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("postgres: {e}: {source}"),
            None => format!("postgres: {e}"),
        },
    }
}

/// A connection the pool could not hand out: the database is unreachable, refused the login
/// or does not exist.
pub(crate) fn pool(e: deadpool_postgres::PoolError) -> StorageError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StorageError::Unavailable(describe(&e)),
        other => StorageError::Unavailable(format!("postgres: no connection: {other}")),
    }
}
