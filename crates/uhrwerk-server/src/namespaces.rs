//! The namespace registry: kept in memory, written through to the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prost::Message;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_proto::temporal::api::{
    enums::v1 as enums_pb, namespace::v1 as namespace_pb, replication::v1 as replication_pb,
};
use uhrwerk_storage::MetadataStore;

use crate::error::{Error, Result};

pub const DEFAULT_NAMESPACE: &str = "default";
/// Retention of namespaces created without one, as `temporal server start-dev` does.
const DEFAULT_RETENTION_SECS: i64 = 24 * 3600;

#[derive(Clone)]
pub struct Namespaces {
    store: Arc<dyn MetadataStore>,
    by_name: Arc<RwLock<HashMap<String, workflowservice_pb::DescribeNamespaceResponse>>>,
}

impl Namespaces {
    /// Loads the registry and makes sure every namespace in `ensure` exists.
    pub async fn load(store: Arc<dyn MetadataStore>, ensure: &[String], new_id: impl Fn() -> String) -> Result<Self> {
        let mut by_name = HashMap::new();
        for bytes in store.namespaces().await? {
            let ns = workflowservice_pb::DescribeNamespaceResponse::decode(bytes.as_slice())
                .map_err(|e| Error::Internal(format!("corrupt namespace record: {e}")))?;
            let mut ns = ns;
            let name = ns.namespace_info.as_ref().map(|i| i.name.clone()).unwrap_or_default();
            if let Some(info) = ns.namespace_info.as_mut() {
                // Records written before schedules existed said otherwise.
                info.supports_schedules = true;
            }
            by_name.insert(name, ns);
        }
        let this = Self { store, by_name: Arc::new(RwLock::new(by_name)) };
        for name in std::iter::once(DEFAULT_NAMESPACE).chain(ensure.iter().map(String::as_str)) {
            if this.get(name).is_none() {
                this.register(name, "", DEFAULT_RETENTION_SECS, new_id()).await?;
            }
        }
        Ok(this)
    }

    /// Reads the registry again from the store (a cluster node sees namespaces that other
    /// nodes registered or changed).
    pub async fn refresh(&self) -> Result<()> {
        let mut by_name = HashMap::new();
        for bytes in self.store.namespaces().await? {
            let mut ns = workflowservice_pb::DescribeNamespaceResponse::decode(bytes.as_slice())
                .map_err(|e| Error::Internal(format!("corrupt namespace record: {e}")))?;
            if let Some(info) = ns.namespace_info.as_mut() {
                info.supports_schedules = true;
            }
            by_name.insert(ns.namespace_info.as_ref().map(|i| i.name.clone()).unwrap_or_default(), ns);
        }
        *self.by_name.write().expect("namespaces lock") = by_name;
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<workflowservice_pb::DescribeNamespaceResponse> {
        self.by_name.read().expect("namespaces lock").get(name).cloned()
    }

    pub fn get_by_id(&self, id: &str) -> Option<workflowservice_pb::DescribeNamespaceResponse> {
        self.by_name
            .read()
            .expect("namespaces lock")
            .values()
            .find(|ns| ns.namespace_info.as_ref().is_some_and(|i| i.id == id))
            .cloned()
    }

    /// Fails with NamespaceNotFound unless `name` exists.
    pub fn check(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("Namespace not set on request.".into()));
        }
        if self.by_name.read().expect("namespaces lock").contains_key(name) {
            Ok(())
        } else {
            Err(Error::NamespaceNotFound(name.to_string()))
        }
    }

    pub fn list(&self) -> Vec<workflowservice_pb::DescribeNamespaceResponse> {
        let mut all: Vec<_> = self.by_name.read().expect("namespaces lock").values().cloned().collect();
        all.sort_by(|a, b| a.namespace_info.as_ref().map(|i| &i.name).cmp(&b.namespace_info.as_ref().map(|i| &i.name)));
        all
    }

    /// UpdateNamespace: description, owner email, data (merged), state and retention.
    pub async fn update(
        &self,
        req: &workflowservice_pb::UpdateNamespaceRequest,
    ) -> Result<workflowservice_pb::DescribeNamespaceResponse> {
        self.check(&req.namespace)?;
        let mut ns = self.get(&req.namespace).ok_or_else(|| Error::NamespaceNotFound(req.namespace.clone()))?;
        if let (Some(update), Some(info)) = (req.update_info.as_ref(), ns.namespace_info.as_mut()) {
            if !update.description.is_empty() {
                info.description = update.description.clone();
            }
            if !update.owner_email.is_empty() {
                info.owner_email = update.owner_email.clone();
            }
            info.data.extend(update.data.iter().map(|(k, v)| (k.clone(), v.clone())));
            if update.state != 0 {
                info.state = update.state;
            }
        }
        if let Some(retention) = req.config.as_ref().and_then(|c| c.workflow_execution_retention_ttl.as_ref()) {
            if retention.seconds < 0 || retention.nanos < 0 {
                return Err(Error::InvalidArgument("Invalid retention period.".into()));
            }
            if retention.seconds > 0 || retention.nanos > 0 {
                ns.config.get_or_insert_with(Default::default).workflow_execution_retention_ttl = Some(*retention);
            }
        }
        let id = ns.namespace_info.as_ref().map(|i| i.id.clone()).unwrap_or_default();
        self.store.put_namespace(&req.namespace, &id, ns.encode_to_vec()).await?;
        self.by_name.write().expect("namespaces lock").insert(req.namespace.clone(), ns.clone());
        Ok(ns)
    }

    pub async fn register(&self, name: &str, description: &str, retention_secs: i64, id: String) -> Result<()> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("Namespace is not set on request.".into()));
        }
        if self.get(name).is_some() {
            return Err(Error::NamespaceAlreadyExists(name.to_string()));
        }
        let ns = workflowservice_pb::DescribeNamespaceResponse {
            namespace_info: Some(namespace_pb::NamespaceInfo {
                name: name.to_string(),
                state: enums_pb::NamespaceState::Registered as i32,
                description: description.to_string(),
                id: id.clone(),
                capabilities: Some(namespace_pb::namespace_info::Capabilities {
                    eager_workflow_start: false,
                    sync_update: true,
                    async_update: true,
                    ..Default::default()
                }),
                supports_schedules: true,
                ..Default::default()
            }),
            config: Some(namespace_pb::NamespaceConfig {
                workflow_execution_retention_ttl: Some(uhrwerk_proto::wkt::Duration {
                    seconds: retention_secs,
                    nanos: 0,
                }),
                history_archival_state: enums_pb::ArchivalState::Disabled as i32,
                visibility_archival_state: enums_pb::ArchivalState::Disabled as i32,
                ..Default::default()
            }),
            replication_config: Some(replication_pb::NamespaceReplicationConfig {
                active_cluster_name: "active".into(),
                clusters: vec![replication_pb::ClusterReplicationConfig {
                    cluster_name: "active".into(),
                    ..Default::default()
                }],
                state: enums_pb::ReplicationState::Normal as i32,
            }),
            failover_version: 0,
            is_global_namespace: false,
            ..Default::default()
        };
        self.store.put_namespace(name, &id, ns.encode_to_vec()).await?;
        self.by_name.write().expect("namespaces lock").insert(name.to_string(), ns);
        Ok(())
    }
}
