//! The storage error, shared by every backend: what went wrong, in terms a caller can act on.

/// A storage failure. Backends map their own errors onto these variants.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend refused a write that breaks a constraint of the stored data (an event id or
    /// a row that exists already). Nothing of the batch was written and the store is fine.
    #[error("write rejected: {0}")]
    Rejected(String),
    /// The backend could not carry out the operation (I/O, a lock held too long, a lost
    /// connection). Trying again later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data that cannot be read back: a record that does not decode, an unknown kind.
    #[error("corrupt {what} in store: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// An operating-system resource the store needs failed: a thread, a directory, a file.
    #[error("failed to {what}: {source}")]
    Io {
        /// A verb phrase: "start the writer thread".
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A write under a shard lease that moved on: another node took the shard (a cluster's
    /// epoch check). Nothing of the batch was written; the shard's new owner serves it.
    #[error("write refused by the shard fence: {0}")]
    Fenced(String),
    /// The store was closed; it takes no more writes.
    #[error("the store has stopped")]
    Stopped,
    /// The file or database is not one of Uhrwerk's (random bytes, another application's
    /// database): it is left as it is.
    #[error("not a Uhrwerk database: {0}; it was left unchanged")]
    NotOurs(String),
    #[error("database schema version {found} is newer than this binary supports ({supported}); it was left unchanged")]
    SchemaTooNew { found: i64, supported: i64 },
    /// The database's schema is older than this binary's and migrating at start was turned off.
    #[error(
        "database schema version {found} is older than this binary's ({supported}): run `uhrwerk db migrate` first"
    )]
    SchemaBehind { found: i64, supported: i64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
