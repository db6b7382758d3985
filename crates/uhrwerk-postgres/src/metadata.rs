//! `MetadataStore` for PostgreSQL: namespaces and the search attribute registry are written in
//! transactions of their own on a pooled connection (they change rarely), schedule records
//! through the writer task.

use async_trait::async_trait;
use uhrwerk_storage::{Error as StorageError, MetadataStore, Result as StorageResult, ScheduleRow};
use uhrwerk_visibility::ValueType;

use crate::PostgresStore;
use crate::error::Result;
use crate::writer::Write;

impl PostgresStore {
    async fn namespaces_inner(&self) -> Result<Vec<Vec<u8>>> {
        let c = self.client().await?;
        Ok(c.query("SELECT data FROM namespaces ORDER BY name", &[]).await?.iter().map(|r| r.get(0)).collect())
    }

    async fn put_namespace_inner(&self, name: &str, id: &str, data: &[u8]) -> Result<()> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO namespaces (name, id, data) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET id = EXCLUDED.id, data = EXCLUDED.data",
            )
            .await?;
        c.execute(&stmt, &[&name, &id, &data]).await?;
        Ok(())
    }

    async fn search_attributes_inner(&self) -> Result<Vec<(String, String, ValueType)>> {
        let c = self.client().await?;
        let rows = c.query("SELECT namespace, name, type FROM search_attributes ORDER BY namespace, name", &[]).await?;
        rows.iter()
            .map(|r| {
                let ty: i64 = r.get(2);
                let ty = i32::try_from(ty)
                    .ok()
                    .and_then(ValueType::from_indexed)
                    .ok_or(StorageError::Corrupt { what: "search attribute type", detail: ty.to_string() })?;
                Ok((r.get(0), r.get(1), ty))
            })
            .collect()
    }

    async fn change_search_attributes(
        &self,
        namespace: &str,
        put: &[(String, ValueType)],
        remove: &[String],
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for (name, ty) in put {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO search_attributes (namespace, name, type) VALUES ($1, $2, $3) \
                     ON CONFLICT (namespace, name) DO UPDATE SET type = EXCLUDED.type",
                )
                .await?;
            tx.execute(&stmt, &[&namespace, name, &i64::from(ty.to_indexed())]).await?;
        }
        for name in remove {
            let stmt = tx.prepare_cached("DELETE FROM search_attributes WHERE namespace = $1 AND name = $2").await?;
            tx.execute(&stmt, &[&namespace, name]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn schedules_inner(&self) -> Result<Vec<ScheduleRow>> {
        let c = self.client().await?;
        let rows =
            c.query("SELECT namespace, schedule_id, data FROM schedules ORDER BY namespace, schedule_id", &[]).await?;
        Ok(rows.iter().map(|r| ScheduleRow { namespace: r.get(0), schedule_id: r.get(1), data: r.get(2) }).collect())
    }
}

#[async_trait]
impl MetadataStore for PostgresStore {
    async fn namespaces(&self) -> StorageResult<Vec<Vec<u8>>> {
        Ok(self.namespaces_inner().await?)
    }

    async fn put_namespace(&self, name: &str, id: &str, data: Vec<u8>) -> StorageResult<()> {
        Ok(self.put_namespace_inner(name, id, &data).await?)
    }

    async fn search_attributes(&self) -> StorageResult<Vec<(String, String, ValueType)>> {
        Ok(self.search_attributes_inner().await?)
    }

    async fn put_search_attributes(&self, namespace: &str, attrs: &[(String, ValueType)]) -> StorageResult<()> {
        Ok(self.change_search_attributes(namespace, attrs, &[]).await?)
    }

    async fn remove_search_attributes(&self, namespace: &str, names: &[String]) -> StorageResult<()> {
        Ok(self.change_search_attributes(namespace, &[], names).await?)
    }

    async fn schedules(&self) -> StorageResult<Vec<ScheduleRow>> {
        Ok(self.schedules_inner().await?)
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
