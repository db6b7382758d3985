//! ListWorkflowExecutions, ScanWorkflowExecutions, CountWorkflowExecutions and the older
//! ListOpen/ListClosedWorkflowExecutions (translated to queries): pages of runs
//! filtered by the list query language (parsed against the namespace's search attributes), and
//! counts, also grouped by ExecutionStatus.

use prost::Message;
use std::sync::Arc;

use uhrwerk_proto::temporal::api::workflow::v1 as workflow_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_storage::PageCursor;
use uhrwerk_visibility::values::execution_status_name;
use uhrwerk_visibility::{Literal, Query, ValueType, payload};

use super::describe_workflow_execution::execution_info;
use crate::engine::Engine;
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

fn parse_query(engine: &Engine, namespace: &str, query: &str) -> Result<Query> {
    let catalog = engine.search_attributes().catalog(namespace);
    uhrwerk_visibility::parse(query, &catalog).map_err(|e| Error::InvalidArgument(e.to_string()))
}

async fn list_page(
    engine: &Engine,
    namespace: &str,
    query_text: &str,
    page_size: i32,
    token: &[u8],
) -> Result<(Vec<workflow_pb::WorkflowExecutionInfo>, Vec<u8>)> {
    let query = parse_query(engine, namespace, query_text)?;
    let cursor = decode_token(token, query_text)?;
    let page = match usize::try_from(page_size) {
        Ok(n) if n > 0 => n.min(DEFAULT_PAGE),
        _ => DEFAULT_PAGE,
    };
    let (runs, next) = engine.visibility().list_runs(namespace, &query, cursor.as_ref(), page).await?;
    let next_page_token = next.map(|c| encode_token(query_text, &c)).unwrap_or_default();
    Ok((runs.iter().map(execution_info).collect(), next_page_token))
}

/// ListWorkflowExecutions.
pub async fn list(
    engine: &Arc<Engine>,
    req: workflowservice_pb::ListWorkflowExecutionsRequest,
) -> Result<workflowservice_pb::ListWorkflowExecutionsResponse> {
    let (executions, next_page_token) =
        list_page(engine, &req.namespace, &req.query, req.page_size, &req.next_page_token).await?;
    Ok(workflowservice_pb::ListWorkflowExecutionsResponse { executions, next_page_token })
}

/// ScanWorkflowExecutions: a list in the default order.
/// The query that ListOpenWorkflowExecutions and ListClosedWorkflowExecutions (the older,
/// filter-based list APIs) stand for: the status, the start time window and one of a workflow
/// id or type filter.
fn filter_query(
    status: &str,
    start_time: Option<&uhrwerk_proto::temporal::api::filter::v1::StartTimeFilter>,
    workflow_id: Option<&str>,
    workflow_type: Option<&str>,
) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut terms = vec![status.to_string()];
    let nanos =
        |t: &uhrwerk_proto::wkt::Timestamp| t.seconds.saturating_mul(1_000_000_000).saturating_add(i64::from(t.nanos));
    if let Some(filter) = start_time {
        if let Some(earliest) = filter.earliest_time.as_ref().filter(|t| t.seconds > 0 || t.nanos > 0) {
            terms.push(format!("StartTime >= '{}'", uhrwerk_visibility::values::format_datetime(nanos(earliest))));
        }
        if let Some(latest) = filter.latest_time.as_ref().filter(|t| t.seconds > 0 || t.nanos > 0) {
            terms.push(format!("StartTime <= '{}'", uhrwerk_visibility::values::format_datetime(nanos(latest))));
        }
    }
    if let Some(id) = workflow_id.filter(|id| !id.is_empty()) {
        terms.push(format!("WorkflowId = {}", quote(id)));
    }
    if let Some(name) = workflow_type.filter(|name| !name.is_empty()) {
        terms.push(format!("WorkflowType = {}", quote(name)));
    }
    terms.join(" AND ")
}

/// ListOpenWorkflowExecutions: running runs, newest start first.
pub async fn list_open(
    engine: &Arc<Engine>,
    req: workflowservice_pb::ListOpenWorkflowExecutionsRequest,
) -> Result<workflowservice_pb::ListOpenWorkflowExecutionsResponse> {
    use workflowservice_pb::list_open_workflow_executions_request::Filters;
    let (id, ty) = match &req.filters {
        Some(Filters::ExecutionFilter(f)) => (Some(f.workflow_id.as_str()), None),
        Some(Filters::TypeFilter(f)) => (None, Some(f.name.as_str())),
        None => (None, None),
    };
    let query = filter_query("ExecutionStatus = 'Running'", req.start_time_filter.as_ref(), id, ty);
    let (executions, next_page_token) =
        list_page(engine, &req.namespace, &query, req.maximum_page_size, &req.next_page_token).await?;
    Ok(workflowservice_pb::ListOpenWorkflowExecutionsResponse { executions, next_page_token })
}

/// ListClosedWorkflowExecutions: closed runs, latest close first.
pub async fn list_closed(
    engine: &Arc<Engine>,
    req: workflowservice_pb::ListClosedWorkflowExecutionsRequest,
) -> Result<workflowservice_pb::ListClosedWorkflowExecutionsResponse> {
    use workflowservice_pb::list_closed_workflow_executions_request::Filters;
    let (mut id, mut ty, mut status) = (None, None, "ExecutionStatus != 'Running'".to_string());
    match &req.filters {
        Some(Filters::ExecutionFilter(f)) => id = Some(f.workflow_id.as_str()),
        Some(Filters::TypeFilter(f)) => ty = Some(f.name.as_str()),
        Some(Filters::StatusFilter(f)) => {
            let name = execution_status_name(f.status)
                .ok_or_else(|| Error::InvalidArgument(format!("invalid status filter {}", f.status)))?;
            status = format!("ExecutionStatus = '{name}'");
        }
        None => {}
    }
    let query = filter_query(&status, req.start_time_filter.as_ref(), id, ty);
    let (executions, next_page_token) =
        list_page(engine, &req.namespace, &query, req.maximum_page_size, &req.next_page_token).await?;
    Ok(workflowservice_pb::ListClosedWorkflowExecutionsResponse { executions, next_page_token })
}

pub async fn scan(
    engine: &Arc<Engine>,
    req: workflowservice_pb::ScanWorkflowExecutionsRequest,
) -> Result<workflowservice_pb::ScanWorkflowExecutionsResponse> {
    let (executions, next_page_token) =
        list_page(engine, &req.namespace, &req.query, req.page_size, &req.next_page_token).await?;
    Ok(workflowservice_pb::ScanWorkflowExecutionsResponse { executions, next_page_token })
}

/// CountWorkflowExecutions.
pub async fn count(
    engine: &Arc<Engine>,
    req: workflowservice_pb::CountWorkflowExecutionsRequest,
) -> Result<workflowservice_pb::CountWorkflowExecutionsResponse> {
    let query = parse_query(engine, &req.namespace, &req.query)?;
    let namespace = req.namespace.as_str();
    if query.group_by.is_empty() {
        let count = engine.visibility().count_runs(namespace, query.filter.as_ref()).await?;
        return Ok(workflowservice_pb::CountWorkflowExecutionsResponse { count, groups: Vec::new() });
    }
    let by_status = engine.visibility().count_runs_by_status(namespace, query.filter.as_ref()).await?;
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
    Ok(workflowservice_pb::CountWorkflowExecutionsResponse { count: by_status.iter().map(|(_, n)| n).sum(), groups })
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
