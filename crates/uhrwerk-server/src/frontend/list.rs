//! Visibility RPCs: run state rendered as WorkflowExecutionInfo and
//! DescribeWorkflowExecutionResponse; list, scan and count pages filtered by the query language;
//! GetSearchAttributes; DeleteWorkflowExecution.

use prost::Message;
use uhrwerk_core::state::{ActivityState, RunState};
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::workflow::v1 as workflow_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_storage::PageCursor;
use uhrwerk_visibility::values::execution_status_name;
use uhrwerk_visibility::{Literal, Query, SYSTEM_ATTRIBUTES, ValueType, payload};

use super::Frontend;
use crate::error::{Error, Result};

const TOKEN_MAGIC: &[u8] = b"uwl2";
const DEFAULT_PAGE: usize = 1000;

#[derive(Clone, PartialEq, prost::Message)]
struct ListToken {
    #[prost(int64, tag = "1")]
    start_time_ms: i64,
    #[prost(string, tag = "2")]
    run_id: String,
    #[prost(string, tag = "3")]
    query: String,
    #[prost(int64, tag = "4")]
    close_order: i64,
    /// Rows already returned, for queries with their own ORDER BY.
    #[prost(uint64, tag = "5")]
    offset: u64,
}

fn encode_token(query: &str, cursor: &PageCursor) -> Vec<u8> {
    let token = match cursor {
        PageCursor::After { close_order, start_time_ms, run_id } => ListToken {
            start_time_ms: *start_time_ms,
            run_id: run_id.clone(),
            query: query.to_string(),
            close_order: *close_order,
            offset: 0,
        },
        PageCursor::Offset(n) => ListToken { query: query.to_string(), offset: *n, ..Default::default() },
    };
    let mut out = TOKEN_MAGIC.to_vec();
    token.encode_raw(&mut out);
    out
}

fn decode_token(bytes: &[u8], query: &str) -> Result<Option<PageCursor>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let token = bytes
        .strip_prefix(TOKEN_MAGIC)
        .and_then(|b| ListToken::decode(b).ok())
        .filter(|t| t.query == query)
        .ok_or_else(|| Error::InvalidArgument("Invalid NextPageToken.".into()))?;
    Ok(Some(if token.run_id.is_empty() {
        PageCursor::Offset(token.offset)
    } else {
        PageCursor::After { close_order: token.close_order, start_time_ms: token.start_time_ms, run_id: token.run_id }
    }))
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
                expiration_time: (ai.schedule_to_close_ms > 0)
                    .then(|| time::timestamp(ai.scheduled_time_ms + ai.schedule_to_close_ms)),
                last_failure: ai.last_failure.clone(),
                last_worker_identity: if ai.started_identity.is_empty() {
                    ai.last_worker_identity.clone()
                } else {
                    ai.started_identity.clone()
                },
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
    fn parse_query(&self, namespace: &str, query: &str) -> Result<Query> {
        let catalog = self.engine.search_attributes().catalog(namespace);
        uhrwerk_visibility::parse(query, &catalog).map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    async fn list_page(
        &self,
        namespace: &str,
        query_text: &str,
        page_size: i32,
        token: &[u8],
    ) -> Result<(Vec<workflow_pb::WorkflowExecutionInfo>, Vec<u8>)> {
        self.namespaces.check(namespace)?;
        let query = self.parse_query(namespace, query_text)?;
        let cursor = decode_token(token, query_text)?;
        let page = match usize::try_from(page_size) {
            Ok(n) if n > 0 => n.min(DEFAULT_PAGE),
            _ => DEFAULT_PAGE,
        };
        let (runs, next) = self.engine.visibility().list_runs(namespace, &query, cursor.as_ref(), page).await?;
        let next_page_token = next.map(|c| encode_token(query_text, &c)).unwrap_or_default();
        Ok((runs.iter().map(execution_info).collect(), next_page_token))
    }

    pub(super) async fn list(
        &self,
        req: workflowservice_pb::ListWorkflowExecutionsRequest,
    ) -> Result<workflowservice_pb::ListWorkflowExecutionsResponse> {
        let (executions, next_page_token) =
            self.list_page(&req.namespace, &req.query, req.page_size, &req.next_page_token).await?;
        Ok(workflowservice_pb::ListWorkflowExecutionsResponse { executions, next_page_token })
    }

    pub(super) async fn scan(
        &self,
        req: workflowservice_pb::ScanWorkflowExecutionsRequest,
    ) -> Result<workflowservice_pb::ScanWorkflowExecutionsResponse> {
        let (executions, next_page_token) =
            self.list_page(&req.namespace, &req.query, req.page_size, &req.next_page_token).await?;
        Ok(workflowservice_pb::ScanWorkflowExecutionsResponse { executions, next_page_token })
    }

    pub(super) async fn count(
        &self,
        req: workflowservice_pb::CountWorkflowExecutionsRequest,
    ) -> Result<workflowservice_pb::CountWorkflowExecutionsResponse> {
        self.namespaces.check(&req.namespace)?;
        let query = self.parse_query(&req.namespace, &req.query)?;
        let namespace = req.namespace.as_str();
        if query.group_by.is_empty() {
            let count = self.engine.visibility().count_runs(namespace, query.filter.as_ref()).await?;
            return Ok(workflowservice_pb::CountWorkflowExecutionsResponse { count, groups: Vec::new() });
        }
        let by_status = self.engine.visibility().count_runs_by_status(namespace, query.filter.as_ref()).await?;
        let groups = by_status
            .iter()
            .map(|(status, count)| workflowservice_pb::count_workflow_executions_response::AggregationGroup {
                group_values: vec![payload::encode(
                    ValueType::Keyword,
                    &[Literal::Str(execution_status_name(*status).unwrap_or("Unspecified").to_string())],
                )],
                count: *count,
            })
            .collect();
        Ok(workflowservice_pb::CountWorkflowExecutionsResponse {
            count: by_status.iter().map(|(_, n)| n).sum(),
            groups,
        })
    }

    pub(super) fn get_search_attributes(&self) -> workflowservice_pb::GetSearchAttributesResponse {
        let mut keys: std::collections::HashMap<String, i32> =
            SYSTEM_ATTRIBUTES.iter().map(|(name, ty)| (name.to_string(), ty.to_indexed())).collect();
        keys.extend(self.engine.search_attributes().all_custom().into_iter().map(|(name, ty)| (name, ty.to_indexed())));
        workflowservice_pb::GetSearchAttributesResponse { keys }
    }

    pub(super) async fn delete(
        &self,
        req: workflowservice_pb::DeleteWorkflowExecutionRequest,
    ) -> Result<workflowservice_pb::DeleteWorkflowExecutionResponse> {
        self.namespaces.check(&req.namespace)?;
        let execution = req.workflow_execution.unwrap_or_default();
        if execution.workflow_id.is_empty() {
            return Err(Error::InvalidArgument("WorkflowId is not set on request.".into()));
        }
        self.engine.delete_run(&req.namespace, &execution.workflow_id, &execution.run_id, "").await?;
        Ok(workflowservice_pb::DeleteWorkflowExecutionResponse::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_belong_to_their_query() {
        let cursor = PageCursor::After { close_order: 5, start_time_ms: 7, run_id: "r".into() };
        let token = encode_token("q", &cursor);
        assert_eq!(decode_token(&token, "q").ok().flatten(), Some(cursor));
        assert!(decode_token(&token, "other").is_err());
        let offset = PageCursor::Offset(40);
        assert_eq!(decode_token(&encode_token("q", &offset), "q").ok().flatten(), Some(offset));
        assert!(decode_token(b"garbage", "q").is_err());
    }
}
