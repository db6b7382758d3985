//! DescribeWorkflowExecution: a run's state as Temporal shows it (execution info, config,
//! pending activities, children and workflow task). `execution_info` is also each row of a list.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_core::state::{ActivityState, RunState};
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::workflow::v1 as workflow_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;

use crate::engine::Engine;
use crate::error::Result;

pub async fn invoke(
    engine: &Arc<Engine>,
    req: workflowservice_pb::DescribeWorkflowExecutionRequest,
) -> Result<workflowservice_pb::DescribeWorkflowExecutionResponse> {
    let execution = req.execution.unwrap_or_default();
    let st = engine.run_state(&req.namespace, &execution.workflow_id, &execution.run_id).await?;
    Ok(describe(&st))
}

pub fn execution_info(st: &RunState) -> workflow_pb::WorkflowExecutionInfo {
    let closed = !st.is_open();
    workflow_pb::WorkflowExecutionInfo {
        execution: Some(common_pb::WorkflowExecution {
            workflow_id: st.workflow_id.clone(),
            run_id: st.run_id.clone(),
        }),
        r#type: Some(common_pb::WorkflowType { name: st.workflow_type.clone() }),
        start_time: Some(time::timestamp(st.start_time_ms)),
        close_time: closed.then(|| time::timestamp(st.close_time_ms)),
        status: st.status,
        history_length: st.next_event_id - 1,
        execution_time: Some(time::timestamp(st.execution_time_ms)),
        memo: Some(st.memo.clone().unwrap_or_default()),
        search_attributes: st.search_attributes.clone(),
        task_queue: st.task_queue.clone(),
        state_transition_count: st.state_transition_count,
        history_size_bytes: st.history_size_bytes,
        execution_duration: closed.then(|| time::duration(st.close_time_ms - st.execution_time_ms)),
        parent_execution: st
            .parent
            .as_ref()
            .map(|p| common_pb::WorkflowExecution { workflow_id: p.workflow_id.clone(), run_id: p.run_id.clone() }),
        root_execution: st.root.clone().or_else(|| {
            Some(common_pb::WorkflowExecution { workflow_id: st.workflow_id.clone(), run_id: st.run_id.clone() })
        }),
        first_run_id: st.first_execution_run_id.clone(),
        ..Default::default()
    }
}

fn describe(st: &RunState) -> workflowservice_pb::DescribeWorkflowExecutionResponse {
    let pending_activities = st
        .activities
        .values()
        .map(|ai| {
            // As Temporal: a paused activity not running is PAUSED, a running one PAUSE_REQUESTED.
            let state = match (ActivityState::try_from(ai.state), ai.paused) {
                _ if ai.cancel_requested => enums_pb::PendingActivityState::CancelRequested,
                (Ok(ActivityState::Started), false) => enums_pb::PendingActivityState::Started,
                (Ok(ActivityState::Started), true) => enums_pb::PendingActivityState::PauseRequested,
                (_, true) => enums_pb::PendingActivityState::Paused,
                (_, false) => enums_pb::PendingActivityState::Scheduled,
            };
            let pause_info =
                ai.pause_info.as_ref().filter(|_| ai.paused).map(|p| workflow_pb::pending_activity_info::PauseInfo {
                    pause_time: Some(time::timestamp(p.pause_time_ms)),
                    paused_by: Some(workflow_pb::pending_activity_info::pause_info::PausedBy::Manual(
                        workflow_pb::pending_activity_info::pause_info::Manual {
                            identity: p.identity.clone(),
                            reason: p.reason.clone(),
                        },
                    )),
                });
            let policy = ai.retry_policy.clone().unwrap_or_default();
            workflow_pb::PendingActivityInfo {
                activity_id: ai.activity_id.clone(),
                activity_type: Some(common_pb::ActivityType { name: ai.activity_type.clone() }),
                state: state as i32,
                heartbeat_details: ai.heartbeat_details.clone(),
                last_heartbeat_time: (ai.last_heartbeat_ms > 0).then(|| time::timestamp(ai.last_heartbeat_ms)),
                last_started_time: (ai.started_time_ms > 0).then(|| time::timestamp(ai.started_time_ms)),
                attempt: ai.attempt,
                maximum_attempts: policy.maximum_attempts,
                scheduled_time: Some(time::timestamp(ai.attempt_scheduled_time_ms)),
                expiration_time: (ai.schedule_to_close_ms > 0)
                    .then(|| time::timestamp(ai.scheduled_time_ms + ai.schedule_to_close_ms)),
                last_failure: ai.last_failure.clone(),
                last_worker_identity: if ai.started_identity.is_empty() {
                    ai.last_worker_identity.clone()
                } else {
                    ai.started_identity.clone()
                },
                priority: ai.priority.clone(),
                paused: ai.paused,
                pause_info,
                activity_options: Some(kernel::activity_options(ai)),
                ..Default::default()
            }
        })
        .collect();
    let pending_workflow_task = st.workflow_task.as_ref().map(|wt| workflow_pb::PendingWorkflowTaskInfo {
        state: if wt.started_event_id > 0 {
            enums_pb::PendingWorkflowTaskState::Started as i32
        } else {
            enums_pb::PendingWorkflowTaskState::Scheduled as i32
        },
        scheduled_time: Some(time::timestamp(wt.scheduled_time_ms)),
        original_scheduled_time: Some(time::timestamp(wt.scheduled_time_ms)),
        started_time: (wt.started_time_ms > 0).then(|| time::timestamp(wt.started_time_ms)),
        attempt: wt.attempt,
    });
    workflowservice_pb::DescribeWorkflowExecutionResponse {
        execution_config: Some(workflow_pb::WorkflowExecutionConfig {
            task_queue: Some(uhrwerk_core::kernel::normal_task_queue(&st.task_queue)),
            // As Temporal: an unlimited timeout is absent, not zero.
            workflow_execution_timeout: time::opt_duration(st.execution_timeout_ms),
            workflow_run_timeout: time::opt_duration(st.run_timeout_ms),
            default_workflow_task_timeout: Some(time::duration(st.workflow_task_timeout_ms)),
            user_metadata: st.user_metadata.clone(),
        }),
        workflow_execution_info: Some(execution_info(st)),
        pending_activities,
        pending_children: st
            .children
            .values()
            .map(|c| workflow_pb::PendingChildExecutionInfo {
                workflow_id: c.workflow_id.clone(),
                run_id: c.run_id.clone(),
                workflow_type_name: c.workflow_type.clone(),
                initiated_id: c.initiated_event_id,
                parent_close_policy: c.parent_close_policy,
            })
            .collect(),
        pending_workflow_task,
        ..Default::default()
    }
}
