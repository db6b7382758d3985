//! Task polls: wait for a task in matching, record it as started in the engine, and build the
//! poll response. Stale tasks (the run moved on) are skipped and the wait continues.

use std::time::Duration;

use uhrwerk_core::kernel::{self, ActivityStarted, WorkflowTaskStarted};
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::history::v1 as history_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_storage::{OutboxTask, TaskKind};

use crate::matching::{Dispatch, QueryTask};

use super::Frontend;
use crate::error::{Error, Result};

impl Frontend {
    /// Waits up to `wait` for a task of `kind` and records it started with `start`.
    async fn poll_task<T, F, Fut>(
        &self,
        namespace: &str,
        task_queue: &str,
        kind: TaskKind,
        sticky: Option<&str>,
        identity: &str,
        wait: Duration,
        start: F,
    ) -> Result<Option<T>>
    where
        F: Fn(Dispatch) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = crate::clock::deadline(wait);
        loop {
            let remaining = crate::clock::remaining(deadline);
            if remaining.is_zero() {
                return Ok(None);
            }
            let Some(task) =
                self.engine.matching().poll(namespace, task_queue, kind, sticky, identity, remaining).await
            else {
                return Ok(None);
            };
            match start(task).await {
                Ok(response) => return Ok(Some(response)),
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) async fn poll_workflow_task(
        &self,
        req: workflowservice_pb::PollWorkflowTaskQueueRequest,
        wait: Duration,
    ) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse> {
        self.namespaces.check(&req.namespace)?;
        let queue = req.task_queue.clone().unwrap_or_default();
        super::validate::task_queue_name(self.engine.limits(), &queue.name)?;
        let sticky = queue.kind == enums_pb::TaskQueueKind::Sticky as i32;
        let normal_name = sticky.then_some(queue.normal_name.as_str());
        let identity = req.identity.clone();
        let response = self
            .poll_task(&req.namespace, &queue.name, TaskKind::Workflow, normal_name, &req.identity, wait, |dispatch| {
                let identity = identity.clone();
                async move {
                    match dispatch {
                        Dispatch::Task(task, queue) => self.start_workflow_task(task, queue, identity).await,
                        Dispatch::Query(query) => self.legacy_query_task(query, sticky).await,
                    }
                }
            })
            .await?;
        Ok(response.unwrap_or_default())
    }

    async fn start_workflow_task(
        &self,
        task: OutboxTask,
        task_queue_name: String,
        identity: String,
    ) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let scheduled_event_id = task.scheduled_event_id;
        let queries = self.engine.queries().clone();
        let (started, workflow_type, task_queue, attached): (WorkflowTaskStarted, String, String, _) = self
            .engine
            .mutate(&task.namespace, &task.workflow_id, &task.run_id, move |ctx, st| {
                let started = kernel::record_workflow_task_started(
                    ctx,
                    st,
                    scheduled_event_id,
                    &task_queue_name,
                    &identity,
                    &request_id,
                )?;
                // Queries that arrived while the task was pending ride along with it.
                let attached = queries.attach(&st.run_id);
                Ok((started, st.workflow_type.clone(), st.task_queue.clone(), attached))
            })
            .await?;
        let run_id = task.run_id.clone();
        // A worker polling the run's sticky queue has it cached: it gets the new events only.
        let first = if started.sticky { started.previous_started_event_id + 1 } else { 1 };
        let n_events = (started.started_event_id - first + 1) as usize - started.transient_events.len();
        let mut events: Vec<history_pb::HistoryEvent> =
            self.engine.executions().events(&run_id, first, n_events).await?;
        // A transient attempt's events end the history the worker gets.
        events.extend(started.transient_events.iter().cloned());
        let mut response = workflow_task_response(
            common_pb::WorkflowExecution { workflow_id: task.workflow_id, run_id: task.run_id },
            workflow_type,
            &task_queue,
            started,
            events,
        );
        response.backlog_count_hint =
            self.engine.matching().backlog(&task.namespace, &task.task_queue, TaskKind::Workflow) as i64;
        response.queries = attached;
        Ok(response)
    }

    /// A legacy query task: the query and the full history, or no history for the run's sticky
    /// worker, which has it cached; answered by RespondQueryTaskCompleted.
    async fn legacy_query_task(
        &self,
        task: QueryTask,
        sticky: bool,
    ) -> Result<workflowservice_pb::PollWorkflowTaskQueueResponse> {
        let Some((_, query)) = self.engine.queries().take_legacy(&task.query_id, &task.task_queue) else {
            return Err(Error::NotFound("the query's caller is gone".into()));
        };
        let st = self.engine.run_state(&task.namespace, &task.workflow_id, &task.run_id).await?;
        let (run_id, n_events) = (st.run_id.clone(), (st.next_event_id - 1).max(0) as usize);
        let events: Vec<history_pb::HistoryEvent> = if sticky && st.sticky_task_queue == task.task_queue {
            Vec::new()
        } else {
            self.engine.executions().events(&run_id, 1, n_events).await?
        };
        Ok(workflowservice_pb::PollWorkflowTaskQueueResponse {
            task_token: super::workflow_query::query_token(&task.query_id),
            workflow_execution: Some(common_pb::WorkflowExecution {
                workflow_id: st.workflow_id.clone(),
                run_id: st.run_id.clone(),
            }),
            workflow_type: Some(common_pb::WorkflowType { name: st.workflow_type.clone() }),
            previous_started_event_id: st.previous_started_event_id,
            started_event_id: 0,
            attempt: 1,
            history: Some(history_pb::History { events }),
            query: Some(query),
            workflow_execution_task_queue: Some(kernel::normal_task_queue(&st.task_queue)),
            ..Default::default()
        })
    }

    pub(super) async fn poll_activity_task(
        &self,
        req: workflowservice_pb::PollActivityTaskQueueRequest,
        wait: Duration,
    ) -> Result<workflowservice_pb::PollActivityTaskQueueResponse> {
        self.namespaces.check(&req.namespace)?;
        let queue = req.task_queue.clone().unwrap_or_default();
        super::validate::task_queue_name(self.engine.limits(), &queue.name)?;
        let identity = req.identity.clone();
        let response = self
            .poll_task(&req.namespace, &queue.name, TaskKind::Activity, None, &req.identity, wait, |dispatch| {
                let identity = identity.clone();
                async move {
                    match dispatch {
                        Dispatch::Task(task, _) => self.start_activity_task(task, identity).await,
                        Dispatch::Query(_) => Err(Error::NotFound("query tasks go to workflow task queues".into())),
                    }
                }
            })
            .await?;
        Ok(response.unwrap_or_default())
    }

    async fn start_activity_task(
        &self,
        task: OutboxTask,
        identity: String,
    ) -> Result<workflowservice_pb::PollActivityTaskQueueResponse> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (scheduled_event_id, attempt) = (task.scheduled_event_id, task.attempt);
        let (started, workflow_type): (ActivityStarted, String) = self
            .engine
            .mutate(&task.namespace, &task.workflow_id, &task.run_id, move |ctx, st| {
                let started =
                    kernel::record_activity_started(ctx, st, scheduled_event_id, attempt, &identity, &request_id)?;
                Ok((started, st.workflow_type.clone()))
            })
            .await?;
        let execution = common_pb::WorkflowExecution { workflow_id: task.workflow_id, run_id: task.run_id };
        Ok(activity_task_response(task.namespace, execution, workflow_type, started))
    }
}

/// A started workflow task as a poll (or inline, or eager) response; `events` is the history the
/// worker gets, transient events included.
pub(super) fn workflow_task_response(
    execution: common_pb::WorkflowExecution,
    workflow_type: String,
    normal_queue: &str,
    started: WorkflowTaskStarted,
    events: Vec<history_pb::HistoryEvent>,
) -> workflowservice_pb::PollWorkflowTaskQueueResponse {
    workflowservice_pb::PollWorkflowTaskQueueResponse {
        task_token: started.token,
        workflow_execution: Some(execution),
        workflow_type: Some(common_pb::WorkflowType { name: workflow_type }),
        previous_started_event_id: started.previous_started_event_id,
        started_event_id: started.started_event_id,
        attempt: started.attempt,
        history: Some(history_pb::History { events }),
        workflow_execution_task_queue: Some(kernel::normal_task_queue(normal_queue)),
        scheduled_time: Some(time::timestamp(started.scheduled_time_ms)),
        started_time: Some(time::timestamp(started.started_time_ms)),
        messages: started.messages,
        ..Default::default()
    }
}

/// A started activity attempt as a poll (or eager) response.
pub(super) fn activity_task_response(
    namespace: String,
    execution: common_pb::WorkflowExecution,
    workflow_type: String,
    started: ActivityStarted,
) -> workflowservice_pb::PollActivityTaskQueueResponse {
    let ai = started.info;
    workflowservice_pb::PollActivityTaskQueueResponse {
        task_token: started.token,
        workflow_namespace: namespace,
        workflow_type: Some(common_pb::WorkflowType { name: workflow_type }),
        workflow_execution: Some(execution),
        activity_type: Some(common_pb::ActivityType { name: ai.activity_type }),
        activity_id: ai.activity_id,
        header: ai.header,
        input: ai.input,
        heartbeat_details: ai.heartbeat_details,
        scheduled_time: Some(time::timestamp(ai.scheduled_time_ms)),
        current_attempt_scheduled_time: Some(time::timestamp(ai.attempt_scheduled_time_ms)),
        started_time: Some(time::timestamp(ai.started_time_ms)),
        attempt: ai.attempt,
        schedule_to_close_timeout: Some(time::duration(ai.schedule_to_close_ms)),
        start_to_close_timeout: Some(time::duration(ai.start_to_close_ms)),
        heartbeat_timeout: Some(time::duration(ai.heartbeat_ms)),
        retry_policy: ai.retry_policy,
        priority: ai.priority,
        ..Default::default()
    }
}
