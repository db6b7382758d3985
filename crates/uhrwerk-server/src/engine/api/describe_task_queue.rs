//! DescribeTaskQueue: what matching knows about a queue (pollers in the last five minutes,
//! backlog, add and dispatch rates), in the legacy form, for sticky queues too, and in the
//! "enhanced" form the `temporal` CLI asks for.

use std::sync::Arc;

use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::taskqueue::v1 as taskqueue_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;
use uhrwerk_storage::TaskKind;

use crate::engine::Engine;
use crate::error::{Error, Result};

pub fn invoke(engine: &Arc<Engine>, req: pb::DescribeTaskQueueRequest) -> Result<pb::DescribeTaskQueueResponse> {
    let queue = req.task_queue.clone().unwrap_or_default();
    if req.api_mode == enums_pb::DescribeTaskQueueMode::Enhanced as i32 {
        if queue.kind == enums_pb::TaskQueueKind::Sticky as i32 {
            return Err(Error::InvalidArgument(
                    "Enhanced DescribeTaskQueue is not valid for a sticky queue, use api_mode=UNSPECIFIED or a normal queue."
                        .into(),
                ));
        }
        return Ok(describe_enhanced(engine, &req.namespace, &queue.name, &req));
    }
    let kind =
        match enums_pb::TaskQueueType::try_from(req.task_queue_type).unwrap_or(enums_pb::TaskQueueType::Unspecified) {
            enums_pb::TaskQueueType::Activity => TaskKind::Activity,
            enums_pb::TaskQueueType::Nexus => {
                return Err(Error::InvalidArgument("Nexus task queues are not supported by Uhrwerk.".into()));
            }
            _ => TaskKind::Workflow,
        };
    let (pollers, stats) = queue_info(engine, &req.namespace, &queue.name, kind);
    let task_queue_status = req.include_task_queue_status.then(|| taskqueue_pb::TaskQueueStatus {
        backlog_count_hint: stats.approximate_backlog_count,
        ..Default::default()
    });
    Ok(pb::DescribeTaskQueueResponse {
        pollers,
        stats: req.report_stats.then_some(stats),
        task_queue_status,
        ..Default::default()
    })
}

/// Pollers and statistics of one queue as the API shows them.
fn queue_info(
    engine: &Engine,
    namespace: &str,
    queue: &str,
    kind: TaskKind,
) -> (Vec<taskqueue_pb::PollerInfo>, taskqueue_pb::TaskQueueStats) {
    let info = engine.matching.describe(namespace, queue, kind);
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
    let stats = taskqueue_pb::TaskQueueStats {
        approximate_backlog_count: info.backlog as i64,
        approximate_backlog_age: Some(time::duration(info.backlog_age_ms)),
        tasks_add_rate: info.add_rate,
        tasks_dispatch_rate: info.dispatch_rate,
        rate_limiting_active: false,
    };
    (pollers, stats)
}

/// The "enhanced" form the `temporal` CLI asks for: per queue type, under the unversioned
/// build id "".
fn describe_enhanced(
    engine: &Engine,
    namespace: &str,
    queue: &str,
    req: &pb::DescribeTaskQueueRequest,
) -> pb::DescribeTaskQueueResponse {
    let mut types: Vec<i32> = req.task_queue_types.clone();
    if types.is_empty() {
        types = vec![enums_pb::TaskQueueType::Workflow as i32, enums_pb::TaskQueueType::Activity as i32];
    }
    let mut types_info = std::collections::HashMap::new();
    for ty in types {
        let kind = match enums_pb::TaskQueueType::try_from(ty) {
            Ok(enums_pb::TaskQueueType::Workflow) => TaskKind::Workflow,
            Ok(enums_pb::TaskQueueType::Activity) => TaskKind::Activity,
            _ => continue,
        };
        let (pollers, stats) = queue_info(engine, namespace, queue, kind);
        types_info.insert(
            ty,
            taskqueue_pb::TaskQueueTypeInfo {
                pollers: if req.report_pollers { pollers } else { Vec::new() },
                stats: req.report_stats.then_some(stats),
            },
        );
    }
    let version = taskqueue_pb::TaskQueueVersionInfo { types_info, task_reachability: 0 };
    pb::DescribeTaskQueueResponse {
        versions_info: [(String::new(), version)].into_iter().collect(),
        ..Default::default()
    }
}
