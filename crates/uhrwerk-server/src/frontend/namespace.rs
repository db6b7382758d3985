//! What the frontend answers from its own registries, without the engine: the system's
//! capabilities (GetSystemInfo), the cluster (GetClusterInfo), namespaces (Describe, List,
//! Register, Update) with the limits and capabilities in force, and the search attribute names
//! and types (GetSearchAttributes).

use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;
use uhrwerk_visibility::SYSTEM_ATTRIBUTES;

use super::Frontend;
use crate::error::{Error, Result};

/// What DescribeNamespace reports as the largest workflow task completion, as the dev server.
const WORKFLOW_TASK_COMPLETION_SIZE_LIMIT: i64 = 40 * 1024 * 1024;

impl Frontend {
    pub(super) fn system_info(&self) -> pb::GetSystemInfoResponse {
        pb::GetSystemInfoResponse {
            server_version: self.server_version.to_string(),
            capabilities: Some(pb::get_system_info_response::Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                supports_schedules: true,
                encoded_failure_attributes: true,
                // As the dev server: SDK workers then send their build id with polls and completions,
                // which the workflow task events record (worker versioning itself is not served).
                build_id_based_versioning: true,
                upsert_memo: true,
                eager_workflow_start: self.engine.limits().enable_eager_workflow_start,
                sdk_metadata: true,
                count_group_by_execution_status: true,
                nexus: false,
                ..Default::default()
            }),
        }
    }

    pub(super) fn cluster_info(&self) -> pb::GetClusterInfoResponse {
        let cluster = self.engine.cluster();
        // A cluster's nodes are listed in the release notes (Temporal reports its hosts in the
        // admin service's DescribeCluster, which the CLI's `operator cluster describe` does
        // not call); `--detail` shows them.
        let members = cluster.map_or(String::new(), |c| {
            format!("; cluster of {} nodes: {} (this one: {})", c.members().len(), c.members().join(", "), c.node())
        });
        let store = if cluster.is_some() { "postgres" } else { "sqlite" };
        pb::GetClusterInfoResponse {
            supported_clients: [
                ("temporal-cli", ">=0.1.0"),
                ("temporal-server", ">=1.0.0"),
                ("temporal-python", ">=1.0.0"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            server_version: self.server_version.to_string(),
            cluster_id: self.cluster_id.clone(),
            cluster_name: "active".into(),
            history_shard_count: cluster.map_or(1, |c| c.shard_count()),
            persistence_store: store.into(),
            visibility_store: store.into(),
            initial_failover_version: 1,
            failover_version_increment: 10,
            version_info: Some(uhrwerk_proto::temporal::api::version::v1::VersionInfo {
                current: Some(uhrwerk_proto::temporal::api::version::v1::ReleaseInfo {
                    version: self.server_version.to_string(),
                    notes: format!(
                        "Uhrwerk {}, a Temporal-compatible server with the API of Temporal {}{members}",
                        crate::UHRWERK_VERSION,
                        self.server_version
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    pub(super) fn describe_namespace(
        &self,
        req: pb::DescribeNamespaceRequest,
    ) -> Result<pb::DescribeNamespaceResponse> {
        if req.namespace.is_empty() && req.id.is_empty() {
            return Err(Error::InvalidArgument("Namespace not set on request.".into()));
        }
        let found =
            if !req.id.is_empty() { self.namespaces.get_by_id(&req.id) } else { self.namespaces.get(&req.namespace) };
        let mut ns = found.ok_or_else(|| {
            Error::NamespaceNotFound(if req.namespace.is_empty() { req.id.clone() } else { req.namespace.clone() })
        })?;
        self.with_settings_in_force(&mut ns);
        Ok(ns)
    }

    pub(super) fn list_namespaces(&self) -> pb::ListNamespacesResponse {
        let mut namespaces = self.namespaces.list();
        for ns in &mut namespaces {
            self.with_settings_in_force(ns);
        }
        pb::ListNamespacesResponse { namespaces, next_page_token: Vec::new() }
    }

    /// A namespace's limits and capabilities as this server runs now (the stored record may
    /// come from a run with other settings).
    fn with_settings_in_force(&self, ns: &mut pb::DescribeNamespaceResponse) {
        if let Some(info) = ns.namespace_info.as_mut() {
            let limits = info.limits.get_or_insert_with(Default::default);
            limits.blob_size_limit_error = self.engine.limits().blob_size_error as i64;
            limits.memo_size_limit_error = self.engine.limits().memo_size_error as i64;
            limits.workflow_task_completion_size_limit_error = WORKFLOW_TASK_COMPLETION_SIZE_LIMIT;
            let capabilities = info.capabilities.get_or_insert_with(Default::default);
            capabilities.eager_workflow_start = self.engine.limits().enable_eager_workflow_start;
        }
    }

    pub(super) async fn register_namespace(
        &self,
        req: pb::RegisterNamespaceRequest,
    ) -> Result<pb::RegisterNamespaceResponse> {
        let retention = req.workflow_execution_retention_period.as_ref().map_or(24 * 3600, |d| d.seconds);
        if retention < 0 {
            return Err(Error::InvalidArgument("Invalid retention period.".into()));
        }
        if req.namespace.len() > self.engine.limits().max_id_length {
            return Err(Error::InvalidArgument("Namespace length exceeds limit.".into()));
        }
        self.namespaces.register(&req.namespace, &req.description, retention, uuid::Uuid::new_v4().to_string()).await?;
        self.registries_changed().await;
        Ok(pb::RegisterNamespaceResponse::default())
    }

    pub(super) async fn update_namespace(
        &self,
        req: pb::UpdateNamespaceRequest,
    ) -> Result<pb::UpdateNamespaceResponse> {
        let ns = self.namespaces.update(&req).await?;
        self.registries_changed().await;
        Ok(pb::UpdateNamespaceResponse {
            namespace_info: ns.namespace_info,
            config: ns.config,
            replication_config: ns.replication_config,
            failover_version: ns.failover_version,
            is_global_namespace: ns.is_global_namespace,
        })
    }

    pub(super) fn get_search_attributes(&self) -> pb::GetSearchAttributesResponse {
        let mut keys: std::collections::HashMap<String, i32> =
            SYSTEM_ATTRIBUTES.iter().map(|(name, ty)| (name.to_string(), ty.to_indexed())).collect();
        keys.extend(self.engine.search_attributes().all_custom().into_iter().map(|(name, ty)| (name, ty.to_indexed())));
        pb::GetSearchAttributesResponse { keys }
    }
}
