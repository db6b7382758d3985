//! The metadata store: namespaces, the custom search attribute registry and schedule records.

use async_trait::async_trait;
use uhrwerk_visibility::ValueType;

use crate::Result;

/// A stored schedule record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRow {
    pub namespace: String,
    pub schedule_id: String,
    pub data: Vec<u8>,
}

/// Records the server keeps beside the runs. The records themselves are opaque bytes (the
/// server's protobuf messages).
///
/// Invariant: every write is durable when it returns. The scheduler relies on it: a schedule
/// record with the times it takes is stored before the runs for those times start.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Every namespace record, by name.
    async fn namespaces(&self) -> Result<Vec<Vec<u8>>>;
    /// Writes a namespace record, replacing the one of the same name.
    async fn put_namespace(&self, name: &str, id: &str, data: Vec<u8>) -> Result<()>;
    /// Custom search attributes of every namespace: (namespace, name, type), by namespace and
    /// name.
    async fn search_attributes(&self) -> Result<Vec<(String, String, ValueType)>>;
    /// Registers custom attributes of a namespace (replacing the type of existing names).
    async fn put_search_attributes(&self, namespace: &str, attrs: &[(String, ValueType)]) -> Result<()>;
    async fn remove_search_attributes(&self, namespace: &str, names: &[String]) -> Result<()>;
    /// Every schedule record, by namespace and schedule id.
    async fn schedules(&self) -> Result<Vec<ScheduleRow>>;
    /// Writes a schedule record, replacing the one of the same id.
    async fn put_schedule(&self, namespace: &str, schedule_id: &str, data: Vec<u8>) -> Result<()>;
    /// Deletes a schedule record; deleting one that does not exist is no error.
    async fn delete_schedule(&self, namespace: &str, schedule_id: &str) -> Result<()>;
}
