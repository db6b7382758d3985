//! RespondWorkflowTaskCompleted: the kernel applies the worker's commands and messages in one
//! transition (`kernel::complete_workflow_task`); queries the task answered are answered, those
//! it did not go out on their own when no task follows; the response carries the next workflow
//! task when the worker asked for it inline, and the activities it asked to run eagerly.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_core::token::TaskToken;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::tasks::{activity_task_response, workflow_task_response};
use crate::engine::Engine;
use crate::error::Result;
use crate::matching::QueryTask;

/// What the response is built from, collected under the run's lock.
struct Outcome {
    completion: kernel::Completion,
    execution: common_pb::WorkflowExecution,
    workflow_type: String,
    task_queue: String,
    namespace: String,
    /// The inline next task's history (the events after the completed task, all written by this
    /// transition) and the queries that ride along with it.
    inline: Option<(Vec<uhrwerk_proto::temporal::api::history::v1::HistoryEvent>, QueriesAttached)>,
}

type QueriesAttached = std::collections::HashMap<String, uhrwerk_proto::temporal::api::query::v1::WorkflowQuery>;

/// `token`: the request's task token, decoded by the frontend.
pub async fn invoke(
    engine: &Arc<Engine>,
    token: TaskToken,
    mut req: pb::RespondWorkflowTaskCompletedRequest,
) -> Result<pb::RespondWorkflowTaskCompletedResponse> {
    let queries = engine.queries.clone();
    let query_results = std::mem::take(&mut req.query_results);
    let t = token.clone();
    let (legacy, outcome) = engine
        .mutate(&token.namespace, &token.workflow_id, &token.run_id, move |ctx, st| {
            let completion = kernel::complete_workflow_task(ctx, st, &t, req);
            if let Err(kernel::Error::NotFound(_)) = completion {
                return Err(kernel::Error::NotFound("Workflow task not found.".into()));
            }
            super::query_workflow::answer_results(&queries, query_results);
            let legacy: Vec<QueryTask> = queries
                .after_completion(&st.run_id, st.workflow_task.is_some(), &st.task_queue)
                .into_iter()
                .map(|id| QueryTask {
                    namespace: st.namespace.clone(),
                    workflow_id: st.workflow_id.clone(),
                    run_id: st.run_id.clone(),
                    task_queue: st.task_queue.clone(),
                    query_id: id,
                })
                .collect();
            let outcome = completion.map(|completion| {
                let inline = completion.new_task.as_ref().map(|task| {
                    let events = ctx
                        .events
                        .iter()
                        .filter(|e| e.event_id > task.previous_started_event_id)
                        .cloned()
                        .chain(task.transient_events.iter().cloned())
                        .collect();
                    (events, queries.attach(&st.run_id))
                });
                Outcome {
                    completion,
                    execution: common_pb::WorkflowExecution {
                        workflow_id: st.workflow_id.clone(),
                        run_id: st.run_id.clone(),
                    },
                    workflow_type: st.workflow_type.clone(),
                    task_queue: st.task_queue.clone(),
                    namespace: st.namespace.clone(),
                    inline,
                }
            });
            Ok((legacy, outcome))
        })
        .await?;
    // Queries the task did not answer, with no task to follow, go out on their own.
    for query in legacy {
        engine.matching.offer_query(query);
    }
    let Outcome { completion, execution, workflow_type, task_queue, namespace, inline } = outcome?;
    let workflow_task = match (completion.new_task, inline) {
        (Some(task), Some((events, attached))) => {
            let mut response =
                workflow_task_response(execution.clone(), workflow_type.clone(), &task_queue, task, events);
            response.queries = attached;
            Some(response)
        }
        _ => None,
    };
    let activity_tasks = completion
        .activity_tasks
        .into_iter()
        .map(|started| activity_task_response(namespace.clone(), execution.clone(), workflow_type.clone(), started))
        .collect();
    Ok(pb::RespondWorkflowTaskCompletedResponse { workflow_task, activity_tasks, ..Default::default() })
}
