//! `MetadataStore` for SQLite: namespaces and the search attribute registry are written on a
//! read connection (they change rarely), schedule records through the writer thread.

use async_trait::async_trait;
use rusqlite::params;
use uhrwerk_storage::{Error as StorageError, MetadataStore, Result as StorageResult, ScheduleRow};
use uhrwerk_visibility::ValueType;

use crate::SqliteStore;
use crate::writer::Write;

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn namespaces(&self) -> StorageResult<Vec<Vec<u8>>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT data FROM namespaces ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn put_namespace(&self, name: &str, id: &str, data: Vec<u8>) -> StorageResult<()> {
        let (name, id) = (name.to_string(), id.to_string());
        self.read(move |c| {
            c.prepare_cached("INSERT OR REPLACE INTO namespaces (name, id, data) VALUES (?1, ?2, ?3)")?
                .execute(params![name, id, data])?;
            Ok(())
        })
        .await
    }

    async fn search_attributes(&self) -> StorageResult<Vec<(String, String, ValueType)>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT namespace, name, type FROM search_attributes ORDER BY namespace, name")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i32>(2)?)))?;
            rows.map(|row| {
                let (namespace, name, ty) = row?;
                let ty = ValueType::from_indexed(ty)
                    .ok_or(StorageError::Corrupt { what: "search attribute type", detail: ty.to_string() })?;
                Ok((namespace, name, ty))
            })
            .collect()
        })
        .await
    }

    async fn put_search_attributes(&self, namespace: &str, attrs: &[(String, ValueType)]) -> StorageResult<()> {
        let (namespace, attrs) = (namespace.to_string(), attrs.to_vec());
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            for (name, ty) in &attrs {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO search_attributes (namespace, name, type) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![namespace, name, ty.to_indexed()])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn remove_search_attributes(&self, namespace: &str, names: &[String]) -> StorageResult<()> {
        let (namespace, names) = (namespace.to_string(), names.to_vec());
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            for name in &names {
                tx.prepare_cached("DELETE FROM search_attributes WHERE namespace = ?1 AND name = ?2")?
                    .execute(params![namespace, name])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn schedules(&self) -> StorageResult<Vec<ScheduleRow>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT namespace, schedule_id, data FROM schedules ORDER BY namespace, schedule_id")?;
            let rows = stmt
                .query_map([], |r| Ok(ScheduleRow { namespace: r.get(0)?, schedule_id: r.get(1)?, data: r.get(2)? }))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn put_schedule(&self, namespace: &str, schedule_id: &str, data: Vec<u8>) -> StorageResult<()> {
        let (namespace, schedule_id) = (namespace.to_string(), schedule_id.to_string());
        self.write(Write::Schedule { namespace, schedule_id, data: Some(data) }).await
    }

    async fn delete_schedule(&self, namespace: &str, schedule_id: &str) -> StorageResult<()> {
        let (namespace, schedule_id) = (namespace.to_string(), schedule_id.to_string());
        self.write(Write::Schedule { namespace, schedule_id, data: None }).await
    }
}
