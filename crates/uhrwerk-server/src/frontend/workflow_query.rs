//! QueryWorkflow and RespondQueryTaskCompleted: where a query goes (attached to the next
//! workflow task, or a legacy query task), waiting for the worker's answer, and the answer's
//! mapping to Temporal's responses and errors.

use std::time::Duration;

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::query::v1 as query_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::{Frontend, validate};
use crate::error::{Error, Result};
use crate::matching::QueryTask;

const TOKEN_MAGIC: &[u8] = b"uwq1";

pub(super) fn query_token(query_id: &str) -> Vec<u8> {
    let mut out = TOKEN_MAGIC.to_vec();
    out.extend_from_slice(query_id.as_bytes());
    out
}

/// Where a query goes, decided under the run's lock.
enum Placement {
    Rejected(i32),
    Legacy(QueryTask),
    Buffered,
}

impl Frontend {
    pub(super) async fn query(
        &self,
        req: pb::QueryWorkflowRequest,
        wait: Duration,
    ) -> Result<pb::QueryWorkflowResponse> {
        self.namespaces.check(&req.namespace)?;
        let execution = req.execution.unwrap_or_default();
        validate::workflow_id(self.engine.limits(), &execution.workflow_id)?;
        let query = req.query.unwrap_or_default();
        if query.query_type.is_empty() {
            return Err(Error::InvalidArgument("QueryType is not set on request.".into()));
        }
        validate::blob(self.engine.limits(), query.query_args.as_ref())?;
        let reject = enums_pb::QueryRejectCondition::try_from(req.query_reject_condition)
            .unwrap_or(enums_pb::QueryRejectCondition::Unspecified);
        let queries = self.engine.queries().clone();
        let namespace = req.namespace.clone();
        let (placement, id, rx) = self
            .engine
            .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |_ctx, st| {
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
                let (id, rx) = queries.register(&st.run_id, query);
                let placement = if rejected {
                    Placement::Rejected(status)
                } else if st.workflow_task.is_none() {
                    queries.mark_legacy(&id);
                    Placement::Legacy(QueryTask {
                        namespace,
                        workflow_id: st.workflow_id.clone(),
                        run_id: st.run_id.clone(),
                        task_queue: st.task_queue.clone(),
                        query_id: id.clone(),
                    })
                } else {
                    queries.buffer(&id);
                    Placement::Buffered
                };
                Ok((placement, id, rx))
            })
            .await
            .map_err(|e| match e {
                Error::FailedPrecondition(m) => Error::WorkflowNotReady(m),
                other => other,
            })?;
        match placement {
            Placement::Rejected(status) => {
                self.engine.queries().forget(&id);
                return Ok(pb::QueryWorkflowResponse {
                    query_rejected: Some(query_pb::QueryRejected { status }),
                    ..Default::default()
                });
            }
            Placement::Legacy(task) => self.engine.matching().offer_query(task),
            Placement::Buffered => {}
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(Ok(result))) => Ok(pb::QueryWorkflowResponse { query_result: result, ..Default::default() }),
            Ok(Ok(Err((message, failure)))) => Err(Error::QueryFailed { message, failure: failure.map(Box::new) }),
            Ok(Err(_)) | Err(_) => {
                self.engine.queries().forget(&id);
                Err(Error::DeadlineExceeded("query timed out before a worker answered it".into()))
            }
        }
    }

    pub(super) fn query_completed(
        &self,
        req: pb::RespondQueryTaskCompletedRequest,
    ) -> Result<pb::RespondQueryTaskCompletedResponse> {
        let id = req
            .task_token
            .strip_prefix(TOKEN_MAGIC)
            .and_then(|b| std::str::from_utf8(b).ok())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::InvalidArgument("Error deserializing task token.".into()))?;
        let outcome = if req.completed_type == enums_pb::QueryResultType::Answered as i32 {
            Ok(req.query_result)
        } else {
            Err((req.error_message, req.failure))
        };
        if !self.engine.queries().answer(id, outcome) {
            return Err(Error::NotFound("query task not found, or the query was already answered or timed out".into()));
        }
        Ok(Default::default())
    }
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
