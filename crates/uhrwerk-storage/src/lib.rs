//! The storage API: what the engine needs from a database, split by concern into three traits,
//! and the data types they exchange.
//!
//! - [`ExecutionStore`]: runs, their histories, current-run pointers, outbox tasks, timers and
//!   transfer tasks, written as [`WriteBatch`]es (one per run transition, group-committed), and
//!   read back one run at a time or all at once at recovery.
//! - [`VisibilityStore`]: list and count queries over runs, and the runs past their retention.
//! - [`MetadataStore`]: namespaces, the search attribute registry and schedule records.
//!
//! Backends live in crates of their own (`uhrwerk-sqlite`) and implement all three; the engine
//! holds one trait object per concern. With the `conformance` feature, [`conformance`] has one
//! suite per trait that every backend runs from its own tests.
//!
//! Invariant: a write (`ExecutionStore::commit`, every `MetadataStore::put_*`) reports success
//! only after it is durable; a failed write changed nothing.

mod batch;
mod cluster;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod execution;
mod metadata;
mod visibility;

pub use batch::{
    AttrRow, Fence, OutboxTask, RunKey, RunWrite, TaskKind, TimerCursor, TimerRow, TransferKey, TransferRow, WriteBatch,
};
pub use cluster::{ClusterStore, ShardLease};
pub use error::{Error, Result};
pub use execution::{ExecutionStore, Recovered, all_timers};
pub use metadata::{MetadataStore, ScheduleRow};
pub use visibility::{ListPage, PageCursor, VisibilityStore, count_sql};
