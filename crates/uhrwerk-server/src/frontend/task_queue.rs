//! DescribeTaskQueue and GetClusterInfo: what matching knows about a queue (pollers in the last
//! five minutes, backlog, add and dispatch rates) and what this server is.

use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::taskqueue::v1 as taskqueue_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;
use uhrwerk_store::TaskKind;

use super::Frontend;
use crate::error::{Error, Result};

impl Frontend {
    pub(super) fn describe_task_queue(&self, req: pb::DescribeTaskQueueRequest) -> Result<pb::DescribeTaskQueueResponse> {
        self.namespaces.check(&req.namespace)?;
        let queue = req.task_queue.unwrap_or_default();
        if queue.name.is_empty() {
            return Err(Error::InvalidArgument("TaskQueue is not set on request.".into()));
        }
        super::validate::task_queue_name(self.engine.limits(), &queue.name)?;
        let kind = match enums_pb::TaskQueueType::try_from(req.task_queue_type).unwrap_or(enums_pb::TaskQueueType::Unspecified) {
            enums_pb::TaskQueueType::Activity => TaskKind::Activity,
            enums_pb::TaskQueueType::Nexus => return Err(Error::InvalidArgument("Nexus task queues are not supported by Uhrwerk.".into())),
            _ => TaskKind::Workflow,
        };
        let info = self.engine.matching().describe(&req.namespace, &queue.name, kind);
        let pollers = info
            .pollers
            .iter()
            .map(|(identity, last)| taskqueue_pb::PollerInfo {
                last_access_time: Some(time::timestamp(*last)),
                identity: identity.clone(),
                rate_per_second: 100_000.0,
                ..Default::default()
            })
            .collect();
        let stats = req.report_stats.then(|| taskqueue_pb::TaskQueueStats {
            approximate_backlog_count: info.backlog as i64,
            approximate_backlog_age: Some(time::duration(info.backlog_age_ms)),
            tasks_add_rate: info.add_rate,
            tasks_dispatch_rate: info.dispatch_rate,
            rate_limiting_active: false,
        });
        Ok(pb::DescribeTaskQueueResponse { pollers, stats, ..Default::default() })
    }

    pub(super) fn cluster_info(&self) -> pb::GetClusterInfoResponse {
        pb::GetClusterInfoResponse {
            supported_clients: [("temporal-cli", ">=0.1.0"), ("temporal-server", ">=1.0.0"), ("temporal-python", ">=1.0.0")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            server_version: self.server_version.to_string(),
            cluster_id: self.cluster_id.clone(),
            cluster_name: "active".into(),
            history_shard_count: 1,
            persistence_store: "sqlite".into(),
            visibility_store: "sqlite".into(),
            initial_failover_version: 1,
            failover_version_increment: 10,
            ..Default::default()
        }
    }
}
