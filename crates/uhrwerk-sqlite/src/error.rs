//! Errors inside the SQLite backend, and how they reach callers as storage errors.

use rusqlite::ErrorCode;
use uhrwerk_storage::Error as StorageError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for StorageError {
    /// A broken constraint is a rejected write and a damaged file is corruption; anything else
    /// SQLite reports (I/O, a lock held too long) may pass when tried again.
    fn from(e: Error) -> Self {
        match e {
            Error::Storage(e) => e,
            Error::Sqlite(e) => {
                let code = e.sqlite_error_code();
                let detail = format!("sqlite: {e}");
                match code {
                    Some(ErrorCode::ConstraintViolation) => StorageError::Rejected(detail),
                    Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                        StorageError::Corrupt { what: "database file", detail }
                    }
                    _ => StorageError::Unavailable(detail),
                }
            }
        }
    }
}
