//! Describe, list and count: run state rendered as WorkflowExecutionInfo and
//! DescribeWorkflowExecutionResponse; list pages and counts filtered by `query::parse`.

use prost::Message;
use uhrwerk_core::state::{ActivityState, RunState};
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::workflow::v1 as workflow_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_store::PageCursor;

use super::Frontend;
use crate::error::{Error, Result};

const TOKEN_MAGIC: &[u8] = b"uwl1";
const DEFAULT_PAGE: usize = 1000;

#[derive(Clone, PartialEq, prost::Message)]
struct ListToken {
    #[prost(int64, tag = "1")]
    start_time_ms: i64,
    #[prost(string, tag = "2")]
    run_id: String,
    #[prost(string, tag = "3")]
    query: String,
}

pub fn execution_info(st: &RunState) -> workflow_pb::WorkflowExecutionInfo {
    let closed = !st.is_open();
    workflow_pb::WorkflowExecutionInfo {
        execution: Some(common_pb::WorkflowExecution { workflow_id: st.workflow_id.clone(), run_id: st.run_id.clone() }),
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
        parent_execution: st.parent.as_ref().map(|p| common_pb::WorkflowExecution { workflow_id: p.workflow_id.clone(), run_id: p.run_id.clone() }),
        root_execution: st.root.clone().or_else(|| Some(common_pb::WorkflowExecution { workflow_id: st.workflow_id.clone(), run_id: st.run_id.clone() })),
        first_run_id: st.first_execution_run_id.clone(),
        ..Default::default()
    }
}

pub fn describe(st: &RunState) -> workflowservice_pb::DescribeWorkflowExecutionResponse {
    let pending_activities = st
        .activities
        .values()
        .map(|ai| {
            let state = match ActivityState::try_from(ai.state) {
                Ok(ActivityState::Started) => enums_pb::PendingActivityState::Started,
                _ => enums_pb::PendingActivityState::Scheduled,
            };
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
                expiration_time: (ai.schedule_to_close_ms > 0).then(|| time::timestamp(ai.scheduled_time_ms + ai.schedule_to_close_ms)),
                last_failure: ai.last_failure.clone(),
                last_worker_identity: if ai.started_identity.is_empty() { ai.last_worker_identity.clone() } else { ai.started_identity.clone() },
                priority: ai.priority.clone(),
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
            workflow_execution_timeout: Some(time::duration(st.execution_timeout_ms)),
            workflow_run_timeout: Some(time::duration(st.run_timeout_ms)),
            default_workflow_task_timeout: Some(time::duration(st.workflow_task_timeout_ms)),
            user_metadata: None,
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

impl Frontend {
    pub(super) async fn list(&self, req: workflowservice_pb::ListWorkflowExecutionsRequest) -> Result<workflowservice_pb::ListWorkflowExecutionsResponse> {
        self.namespaces.check(&req.namespace)?;
        let filter = super::query::parse(&req.query)?;
        let cursor = if req.next_page_token.is_empty() {
            None
        } else {
            let token = req
                .next_page_token
                .strip_prefix(TOKEN_MAGIC)
                .and_then(|b| ListToken::decode(b).ok())
                .filter(|t| t.query == req.query)
                .ok_or_else(|| Error::InvalidArgument("Invalid NextPageToken.".into()))?;
            Some(PageCursor { start_time_ms: token.start_time_ms, run_id: token.run_id })
        };
        let page = match usize::try_from(req.page_size) {
            Ok(n) if n > 0 => n.min(DEFAULT_PAGE),
            _ => DEFAULT_PAGE,
        };
        let namespace = req.namespace.clone();
        let runs = self.engine.read(move |s| s.list_runs(&namespace, &filter, cursor.as_ref(), page)).await?;
        let next_page_token = match runs.last() {
            Some(last) if runs.len() == page => {
                let mut out = TOKEN_MAGIC.to_vec();
                ListToken { start_time_ms: last.start_time_ms, run_id: last.run_id.clone(), query: req.query.clone() }.encode_raw(&mut out);
                out
            }
            _ => Vec::new(),
        };
        Ok(workflowservice_pb::ListWorkflowExecutionsResponse { executions: runs.iter().map(execution_info).collect(), next_page_token })
    }

    pub(super) async fn count(&self, req: workflowservice_pb::CountWorkflowExecutionsRequest) -> Result<workflowservice_pb::CountWorkflowExecutionsResponse> {
        self.namespaces.check(&req.namespace)?;
        let filter = super::query::parse(&req.query)?;
        let namespace = req.namespace.clone();
        let count = self.engine.read(move |s| s.count_runs(&namespace, &filter)).await?;
        Ok(workflowservice_pb::CountWorkflowExecutionsResponse { count, groups: Vec::new() })
    }
}
