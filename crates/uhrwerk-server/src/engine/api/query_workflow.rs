//! QueryWorkflow and RespondQueryTaskCompleted: where a query goes (attached to the run's next
//! workflow task, or a legacy query task, to the sticky worker first), waiting for the worker's
//! answer, and the answer as Temporal's response or error.

use std::time::Duration;

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::query::v1 as query_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::matching::QueryTask;

const TOKEN_MAGIC: &[u8] = b"uwq1";

/// A legacy query task's token: the query's id, then the workflow's namespace and id (after
/// 0 bytes), by which a cluster routes the answer to the node waiting for it.
pub(crate) fn query_token(query_id: &str, namespace: &str, workflow_id: &str) -> Vec<u8> {
    let mut out = TOKEN_MAGIC.to_vec();
    for (i, part) in [query_id, namespace, workflow_id].iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// The parts of a query token: (query id, namespace, workflow id).
pub fn parse_query_token(token: &[u8]) -> Option<(&str, &str, &str)> {
    let body = std::str::from_utf8(token.strip_prefix(TOKEN_MAGIC)?).ok()?;
    let mut parts = body.split('\0');
    let (id, namespace, workflow_id) = (parts.next()?, parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    (!id.is_empty()).then_some((id, namespace, workflow_id))
}

/// Where a query goes, decided under the run's lock.
enum Placement {
    Rejected(i32),
    /// A legacy query task, first to the run's sticky queue (with how long its worker has to
    /// take it) when the run has one.
    Legacy(QueryTask, Option<(String, Duration)>),
    Buffered,
}

/// As in Temporal, queries fail fast once the run's workflow task has failed this often.
const QUERY_FAILED_ATTEMPT: i32 = 3;

type Placed = (Placement, String, tokio::sync::oneshot::Receiver<crate::queries::Outcome>);

/// Decides where a query on run `st` goes and registers it. `sticky`: whether the run's sticky
/// worker may get it first (not for an earlier run of the workflow id, which is not cached).
fn place(
    st: &uhrwerk_core::state::RunState,
    query: query_pb::WorkflowQuery,
    reject: enums_pb::QueryRejectCondition,
    queries: &crate::queries::Queries,
    namespace: String,
    sticky: bool,
) -> kernel::Result<Placed> {
    use enums_pb::QueryRejectCondition as R;
    let status = st.status;
    let completed = status == enums_pb::WorkflowExecutionStatus::Completed as i32;
    let rejected = match reject {
        R::NotOpen => !st.is_open(),
        R::NotCompletedCleanly => !st.is_open() && !completed,
        _ => false,
    };
    if st.previous_started_event_id == 0 && !st.is_open() {
        return Err(kernel::Error::FailedPrecondition(
            "Workflow execution closed before WorkflowTaskStarted event".into(),
        ));
    }
    if st.is_open() && st.workflow_task.as_ref().is_some_and(|wt| wt.attempt >= QUERY_FAILED_ATTEMPT) {
        return Err(kernel::Error::FailedPrecondition(
            "Unable to query workflow due to Workflow Task in failed state.".into(),
        ));
    }
    let (id, rx) = queries.register(&st.run_id, query);
    let placement = if rejected {
        Placement::Rejected(status)
    } else if st.workflow_task.is_none() || !st.is_open() {
        let sticky = (sticky && !st.sticky_task_queue.is_empty()).then(|| {
            (st.sticky_task_queue.clone(), Duration::from_millis(st.sticky_schedule_to_start_ms.max(0) as u64))
        });
        let queue = sticky.as_ref().map_or(&st.task_queue, |(name, _)| name);
        queries.mark_legacy(&id, queue);
        let task = QueryTask {
            namespace,
            workflow_id: st.workflow_id.clone(),
            run_id: st.run_id.clone(),
            task_queue: queue.clone(),
            query_id: id.clone(),
        };
        Placement::Legacy(task, sticky)
    } else {
        queries.buffer(&id);
        Placement::Buffered
    };
    Ok((placement, id, rx))
}

/// `wait`: how long the caller waits for the answer.
pub async fn invoke(
    engine: &Arc<Engine>,
    req: pb::QueryWorkflowRequest,
    wait: Duration,
) -> Result<pb::QueryWorkflowResponse> {
    let execution = req.execution.unwrap_or_default();
    let query = req.query.unwrap_or_default();
    let reject = enums_pb::QueryRejectCondition::try_from(req.query_reject_condition)
        .unwrap_or(enums_pb::QueryRejectCondition::Unspecified);
    let queries = engine.queries.clone();
    let placed = {
        let (query, queries, namespace) = (query.clone(), queries.clone(), req.namespace.clone());
        engine
            .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |_ctx, st| {
                place(st, query, reject, &queries, namespace, true)
            })
            .await
    };
    let placed = match placed {
        // An earlier run of the workflow id (one that continued as new, say) is closed: its
        // query goes to a worker with that run's history, as Temporal answers it.
        Err(Error::NotFound(_)) if !execution.run_id.is_empty() => {
            let st = engine.run_state(&req.namespace, &execution.workflow_id, &execution.run_id).await?;
            place(&st, query, reject, &queries, req.namespace.clone(), false).map_err(Error::from)
        }
        other => other,
    };
    let (placement, id, rx) = placed.map_err(|e| match e {
        Error::FailedPrecondition(m) => Error::WorkflowNotReady(m),
        other => other,
    })?;
    match placement {
        Placement::Rejected(status) => {
            engine.queries.forget(&id);
            return Ok(pb::QueryWorkflowResponse {
                query_rejected: Some(query_pb::QueryRejected { status }),
                ..Default::default()
            });
        }
        Placement::Legacy(task, None) => engine.matching.offer_query(task),
        Placement::Legacy(task, Some((_, sticky_timeout))) => {
            // The task names the sticky queue.
            return sticky_query(engine, task, sticky_timeout, id, rx, wait).await;
        }
        Placement::Buffered => {}
    }
    await_query(engine, id, rx, wait).await
}

/// A legacy query on a sticky run: its worker gets it first (with no history: the run is
/// cached there) if it takes it within the sticky schedule-to-start timeout; otherwise the
/// run's stickiness is reset and the query goes to the normal queue with the full history,
/// as in Temporal.
async fn sticky_query(
    engine: &Arc<Engine>,
    mut task: QueryTask,
    sticky_timeout: Duration,
    id: String,
    mut rx: tokio::sync::oneshot::Receiver<crate::queries::Outcome>,
    wait: Duration,
) -> Result<pb::QueryWorkflowResponse> {
    let deadline = crate::clock::deadline(wait);
    // Only while the sticky worker polls (in a cluster, asked of the node that owns its queue).
    if engine.matching.offer_query_if_polled(task.clone()).await
        && let Some(answer) = crate::clock::timeout(sticky_timeout.min(wait), &mut rx).await
    {
        return query_response(answer, &id, &engine.queries);
    }
    let run_id = task.run_id.clone();
    let normal_queue = engine
        .mutate(&task.namespace, &task.workflow_id, &run_id, |ctx, st| {
            kernel::reset_sticky_task_queue(ctx, st);
            Ok(st.task_queue.clone())
        })
        .await;
    match normal_queue {
        Ok(queue) if engine.queries.move_legacy(&id, &queue) => {
            task.task_queue = queue;
            engine.matching.offer_query(task);
        }
        // Taken by the sticky worker after all (its answer is on the way), or the run is gone.
        Ok(_) | Err(Error::NotFound(_)) => {}
        Err(e) => {
            engine.queries.forget(&id);
            return Err(e);
        }
    }
    await_query(engine, id, rx, crate::clock::remaining(deadline)).await
}

async fn await_query(
    engine: &Engine,
    id: String,
    rx: tokio::sync::oneshot::Receiver<crate::queries::Outcome>,
    wait: Duration,
) -> Result<pb::QueryWorkflowResponse> {
    match crate::clock::timeout(wait, rx).await {
        Some(answer) => query_response(answer, &id, &engine.queries),
        None => {
            engine.queries.forget(&id);
            Err(Error::DeadlineExceeded("query timed out before a worker answered it".into()))
        }
    }
}

/// RespondQueryTaskCompleted: a worker's answer to a legacy query task.
pub fn answer(
    engine: &Engine,
    req: pb::RespondQueryTaskCompletedRequest,
) -> Result<pb::RespondQueryTaskCompletedResponse> {
    let (id, _, _) = parse_query_token(&req.task_token)
        .ok_or_else(|| Error::InvalidArgument("Error deserializing task token.".into()))?;
    let outcome = if req.completed_type == enums_pb::QueryResultType::Answered as i32 {
        Ok(req.query_result)
    } else {
        Err((req.error_message, req.failure))
    };
    if !engine.queries.answer(id, outcome) {
        return Err(Error::NotFound("query task not found, or the query was already answered or timed out".into()));
    }
    Ok(Default::default())
}

/// Turns a workflow task's `query_results` into answers.
pub(super) fn answer_results(
    queries: &crate::queries::Queries,
    results: std::collections::HashMap<String, query_pb::WorkflowQueryResult>,
) {
    for (id, result) in results {
        let outcome = if result.result_type == enums_pb::QueryResultType::Answered as i32 {
            Ok(result.answer)
        } else {
            Err((result.error_message, result.failure))
        };
        queries.answer(&id, outcome);
    }
}

/// The caller's answer from the worker's: a result, a failed handler, or gone.
fn query_response(
    answer: std::result::Result<crate::queries::Outcome, tokio::sync::oneshot::error::RecvError>,
    id: &str,
    queries: &crate::queries::Queries,
) -> Result<pb::QueryWorkflowResponse> {
    match answer {
        Ok(Ok(result)) => Ok(pb::QueryWorkflowResponse { query_result: result, ..Default::default() }),
        Ok(Err((message, failure))) => Err(Error::QueryFailed { message, failure: failure.map(Box::new) }),
        Err(_) => {
            queries.forget(id);
            Err(Error::DeadlineExceeded("query timed out before a worker answered it".into()))
        }
    }
}
