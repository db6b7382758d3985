//! Describe, list and count: run state rendered as WorkflowExecutionInfo, and the subset of the
//! visibility query language Uhrwerk understands so far (equality on WorkflowId, RunId,
//! WorkflowType, TaskQueue and ExecutionStatus joined by AND, plus an ignored ORDER BY).

use prost::Message;
use uhrwerk_core::state::{ActivityState, RunState};
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::workflow::v1 as workflow_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_store::{PageCursor, RunFilter};

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
        root_execution: Some(common_pb::WorkflowExecution { workflow_id: st.workflow_id.clone(), run_id: st.run_id.clone() }),
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
        pending_workflow_task,
        ..Default::default()
    }
}

/// Parses the supported subset of Temporal's list query language.
pub fn parse_query(query: &str) -> Result<RunFilter> {
    let mut filter = RunFilter::default();
    let mut rest = query.trim();
    if let Some(idx) = find_keyword(rest, "order by") {
        rest = rest[..idx].trim();
    }
    if rest.is_empty() {
        return Ok(filter);
    }
    for clause in split_and(rest) {
        let (field, value) = clause
            .split_once('=')
            .ok_or_else(|| Error::InvalidArgument(format!("invalid query: unsupported expression {clause:?}; only Field = 'value' joined by AND is supported")))?;
        let field = field.trim().trim_matches('`');
        let value = unquote(value.trim()).ok_or_else(|| Error::InvalidArgument(format!("invalid query: value of {field} must be a quoted string")))?;
        match field {
            "WorkflowId" => filter.workflow_id = Some(value),
            "RunId" => filter.run_id = Some(value),
            "WorkflowType" => filter.workflow_type = Some(value),
            "TaskQueue" => filter.task_queue = Some(value),
            "ExecutionStatus" => filter.status = Some(parse_status(&value)?),
            other => return Err(Error::InvalidArgument(format!("invalid query: unknown or unsupported search attribute {other}"))),
        }
    }
    Ok(filter)
}

fn find_keyword(s: &str, keyword: &str) -> Option<usize> {
    s.to_ascii_lowercase().find(keyword)
}

/// Splits on AND outside quotes, case-insensitively.
fn split_and(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {
                let rest: String = chars[i..].iter().take(5).collect();
                let starts_word = i == 0 || chars[i - 1].is_whitespace();
                if starts_word && rest.len() >= 4 && rest[..3].eq_ignore_ascii_case("and") && rest[3..4].chars().all(char::is_whitespace) {
                    parts.push(std::mem::take(&mut current).trim().to_string());
                    i += 3;
                    continue;
                }
            }
        }
        current.push(c);
        i += 1;
    }
    parts.push(current.trim().to_string());
    parts
}

fn unquote(v: &str) -> Option<String> {
    let q = v.chars().next()?;
    if (q == '\'' || q == '"') && v.len() >= 2 && v.ends_with(q) {
        Some(v[1..v.len() - 1].to_string())
    } else {
        None
    }
}

fn parse_status(value: &str) -> Result<i32> {
    use enums_pb::WorkflowExecutionStatus as S;
    let status = match value {
        "Running" => S::Running,
        "Completed" => S::Completed,
        "Failed" => S::Failed,
        "Canceled" => S::Canceled,
        "Terminated" => S::Terminated,
        "ContinuedAsNew" => S::ContinuedAsNew,
        "TimedOut" => S::TimedOut,
        other => return Err(Error::InvalidArgument(format!("invalid query: unknown ExecutionStatus {other}"))),
    };
    Ok(status as i32)
}

impl Frontend {
    pub(super) async fn list(&self, req: workflowservice_pb::ListWorkflowExecutionsRequest) -> Result<workflowservice_pb::ListWorkflowExecutionsResponse> {
        self.namespaces.check(&req.namespace)?;
        let filter = parse_query(&req.query)?;
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
        let filter = parse_query(&req.query)?;
        let namespace = req.namespace.clone();
        let count = self.engine.read(move |s| s.count_runs(&namespace, &filter)).await?;
        Ok(workflowservice_pb::CountWorkflowExecutionsResponse { count, groups: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_queries() {
        assert_eq!(parse_query("").expect("empty"), RunFilter::default());
        let f = parse_query("WorkflowType = 'Order' and ExecutionStatus=\"Running\" ORDER BY StartTime DESC").expect("valid");
        assert_eq!(f.workflow_type.as_deref(), Some("Order"));
        assert_eq!(f.status, Some(enums_pb::WorkflowExecutionStatus::Running as i32));
        let f = parse_query("WorkflowId = 'a and b'").expect("quoted and");
        assert_eq!(f.workflow_id.as_deref(), Some("a and b"));
    }

    #[test]
    fn rejects_unsupported_queries() {
        assert!(parse_query("WorkflowId > 'x'").is_err());
        assert!(parse_query("Nope = 'x'").is_err());
        assert!(parse_query("WorkflowId = x").is_err());
        assert!(parse_query("ExecutionStatus = 'Sleeping'").is_err());
        assert!(parse_query("=").is_err());
    }
}
