//! WorkflowService: one handler per implemented RPC, each validating its request and handing it
//! to the engine (through the pure kernel) or to the store for reads.

use tonic::{Request, Response, Status};
use uhrwerk_core::kernel;
use uhrwerk_core::token::TaskToken;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::{Frontend, MAX_HISTORY_POLL, MAX_TASK_POLL, list, long_poll_wait, validate, workflow_query};
use crate::error::{Error, Result};
use crate::matching::QueryTask;

/// Methods answered for real; every other method gets UNIMPLEMENTED naming it.
pub const IMPLEMENTED: &[&str] = &[
    "GetSystemInfo",
    "DescribeNamespace",
    "ListNamespaces",
    "RegisterNamespace",
    "UpdateNamespace",
    "StartWorkflowExecution",
    "PollWorkflowTaskQueue",
    "RespondWorkflowTaskCompleted",
    "RespondWorkflowTaskFailed",
    "PollActivityTaskQueue",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RecordActivityTaskHeartbeat",
    "GetWorkflowExecutionHistory",
    "DescribeWorkflowExecution",
    "ListWorkflowExecutions",
    "CountWorkflowExecutions",
    "ScanWorkflowExecutions",
    "GetSearchAttributes",
    "DeleteWorkflowExecution",
    "CreateSchedule",
    "DescribeSchedule",
    "UpdateSchedule",
    "PatchSchedule",
    "DeleteSchedule",
    "ListSchedules",
    "CountSchedules",
    "ListScheduleMatchingTimes",
    "DescribeTaskQueue",
    "GetClusterInfo",
    "TerminateWorkflowExecution",
    "SignalWorkflowExecution",
    "SignalWithStartWorkflowExecution",
    "RequestCancelWorkflowExecution",
    "RespondActivityTaskCanceled",
    "RespondActivityTaskCompletedById",
    "RespondActivityTaskFailedById",
    "RespondActivityTaskCanceledById",
    "RecordActivityTaskHeartbeatById",
    "QueryWorkflow",
    "UpdateWorkflowExecution",
    "PollWorkflowExecutionUpdate",
    "ExecuteMultiOperation",
    "RespondQueryTaskCompleted",
    "RecordWorkerHeartbeat",
    "ShutdownWorker",
    "ResetStickyTaskQueue",
];

type RpcResult<T> = std::result::Result<Response<T>, Status>;

/// What DescribeNamespace reports as the largest workflow task completion, as the dev server.
const WORKFLOW_TASK_COMPLETION_SIZE_LIMIT: i64 = 40 * 1024 * 1024;

fn reply<T>(result: Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

/// Decodes a task token; garbage gets INVALID_ARGUMENT, as in Temporal.
pub(super) fn token(bytes: &[u8], namespace: &str) -> Result<TaskToken> {
    if bytes.is_empty() {
        return Err(Error::InvalidArgument("Task token not set on request.".into()));
    }
    let token =
        TaskToken::decode_bytes(bytes).map_err(|_| Error::InvalidArgument("Error deserializing task token.".into()))?;
    if !namespace.is_empty() && token.namespace != namespace {
        return Err(Error::InvalidArgument("Operation requested with a token from a different namespace.".into()));
    }
    Ok(token)
}

impl Frontend {
    pub(super) async fn start(
        &self,
        req: pb::StartWorkflowExecutionRequest,
    ) -> Result<pb::StartWorkflowExecutionResponse> {
        self.start_inner(req, None).await
    }

    /// The start half of update-with-start: a new run gets the update admitted with it.
    pub(super) async fn start_for_update(
        &self,
        req: pb::StartWorkflowExecutionRequest,
        update: uhrwerk_proto::temporal::api::update::v1::Request,
    ) -> Result<pb::StartWorkflowExecutionResponse> {
        self.start_inner(req, Some(update)).await
    }

    async fn start_inner(
        &self,
        mut req: pb::StartWorkflowExecutionRequest,
        update: Option<uhrwerk_proto::temporal::api::update::v1::Request>,
    ) -> Result<pb::StartWorkflowExecutionResponse> {
        self.namespaces.check(&req.namespace)?;
        validate::start(self.engine.limits(), &mut req)?;
        self.check_search_attributes(&mut req)?;
        let eager_workflow_id = req.workflow_id.clone();
        let outcome = match update {
            Some(update) => self.engine.start_with_update(req, update).await?,
            None => self.engine.start_workflow(req).await?,
        };
        let eager_workflow_task = outcome.eager_task.map(|eager| {
            let execution = uhrwerk_proto::temporal::api::common::v1::WorkflowExecution {
                workflow_id: eager_workflow_id.clone(),
                run_id: outcome.run_id.clone(),
            };
            super::poll::workflow_task_response(
                execution,
                eager.workflow_type,
                &eager.task_queue,
                eager.started,
                eager.events,
            )
        });
        Ok(pb::StartWorkflowExecutionResponse {
            run_id: outcome.run_id,
            started: outcome.started,
            status: outcome.status,
            first_execution_run_id: outcome.first_execution_run_id,
            eager_workflow_task,
            ..Default::default()
        })
    }

    fn check_search_attributes(&self, req: &mut pb::StartWorkflowExecutionRequest) -> Result<()> {
        match req.search_attributes.as_mut() {
            Some(attrs) => {
                self.engine.search_attributes().validate(&req.namespace, attrs).map_err(Error::InvalidArgument)?;
                self.engine.search_attributes().add_types(&req.namespace, attrs);
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn workflow_task_completed(
        &self,
        mut req: pb::RespondWorkflowTaskCompletedRequest,
    ) -> Result<pb::RespondWorkflowTaskCompletedResponse> {
        let token = token(&req.task_token, &req.namespace)?;
        let t = token.clone();
        let queries = self.engine.queries().clone();
        let query_results = std::mem::take(&mut req.query_results);
        let (legacy, completion, inline) = self
            .engine
            .mutate(&token.namespace, &token.workflow_id, &token.run_id, move |ctx, st| {
                let completion = kernel::complete_workflow_task(ctx, st, &t, req);
                if let Err(kernel::Error::NotFound(_)) = completion {
                    return Err(kernel::Error::NotFound("Workflow task not found.".into()));
                }
                workflow_query::answer_results(&queries, query_results);
                let legacy = queries.after_completion(&st.run_id, st.workflow_task.is_some(), &st.task_queue);
                let legacy = legacy.into_iter().map(|id| QueryTask {
                    namespace: st.namespace.clone(),
                    workflow_id: st.workflow_id.clone(),
                    run_id: st.run_id.clone(),
                    task_queue: st.task_queue.clone(),
                    query_id: id,
                });
                // The inline next task carries the events after the completed one, all written
                // by this transition; waiting queries ride along.
                let inline = match &completion {
                    Ok(kernel::Completion { new_task: Some(task), .. }) => {
                        let events: Vec<_> = ctx
                            .events
                            .iter()
                            .filter(|e| e.event_id > task.previous_started_event_id)
                            .cloned()
                            .chain(task.transient_events.iter().cloned())
                            .collect();
                        Some((events, queries.attach(&st.run_id)))
                    }
                    _ => None,
                };
                let execution = uhrwerk_proto::temporal::api::common::v1::WorkflowExecution {
                    workflow_id: st.workflow_id.clone(),
                    run_id: st.run_id.clone(),
                };
                let context = (execution, st.workflow_type.clone(), st.task_queue.clone(), st.namespace.clone());
                Ok((legacy.collect::<Vec<_>>(), completion.map(|c| (c, context)), inline))
            })
            .await?;
        // Queries the task did not answer, with no task to follow, go out on their own.
        for query in legacy {
            self.engine.matching().offer_query(query);
        }
        let (completion, (execution, workflow_type, task_queue, namespace)) = completion?;
        let workflow_task = match (completion.new_task, inline) {
            (Some(task), Some((events, attached))) => {
                let mut response = super::poll::workflow_task_response(
                    execution.clone(),
                    workflow_type.clone(),
                    &task_queue,
                    task,
                    events,
                );
                response.queries = attached;
                Some(response)
            }
            _ => None,
        };
        let activity_tasks = completion
            .activity_tasks
            .into_iter()
            .map(|started| {
                super::poll::activity_task_response(
                    namespace.clone(),
                    execution.clone(),
                    workflow_type.clone(),
                    started,
                )
            })
            .collect();
        Ok(pb::RespondWorkflowTaskCompletedResponse { workflow_task, activity_tasks, ..Default::default() })
    }

    async fn workflow_task_failed(
        &self,
        req: pb::RespondWorkflowTaskFailedRequest,
    ) -> Result<pb::RespondWorkflowTaskFailedResponse> {
        let token = token(&req.task_token, &req.namespace)?;
        let t = token.clone();
        self.engine
            .mutate(&token.namespace, &token.workflow_id, &token.run_id, move |ctx, st| {
                kernel::fail_workflow_task(ctx, st, &t, req)
            })
            .await?;
        Ok(pb::RespondWorkflowTaskFailedResponse::default())
    }

    async fn activity_completed(
        &self,
        req: pb::RespondActivityTaskCompletedRequest,
    ) -> Result<pb::RespondActivityTaskCompletedResponse> {
        let token = token(&req.task_token, &req.namespace)?;
        let t = token.clone();
        let oversized = validate::blob(self.engine.limits(), req.result.as_ref()).is_err();
        self.engine
            .mutate(&token.namespace, &token.workflow_id, &token.run_id, move |ctx, st| {
                if oversized {
                    // As Temporal: the result is not kept; the attempt fails for good instead.
                    kernel::fail_activity(ctx, st, &t, validate::result_too_large(), &req.identity, None)
                } else {
                    kernel::complete_activity(ctx, st, &t, req.result, &req.identity)
                }
            })
            .await?;
        Ok(pb::RespondActivityTaskCompletedResponse::default())
    }

    async fn activity_failed(
        &self,
        req: pb::RespondActivityTaskFailedRequest,
    ) -> Result<pb::RespondActivityTaskFailedResponse> {
        let token = token(&req.task_token, &req.namespace)?;
        let t = token.clone();
        self.engine
            .mutate(&token.namespace, &token.workflow_id, &token.run_id, move |ctx, st| {
                kernel::fail_activity(
                    ctx,
                    st,
                    &t,
                    req.failure.unwrap_or_default(),
                    &req.identity,
                    req.last_heartbeat_details,
                )
            })
            .await?;
        Ok(pb::RespondActivityTaskFailedResponse::default())
    }

    async fn activity_heartbeat(
        &self,
        req: pb::RecordActivityTaskHeartbeatRequest,
    ) -> Result<pb::RecordActivityTaskHeartbeatResponse> {
        let token = token(&req.task_token, &req.namespace)?;
        validate::blob(self.engine.limits(), req.details.as_ref())?;
        let t = token.clone();
        let cancel_requested = self
            .engine
            .mutate(&token.namespace, &token.workflow_id, &token.run_id, move |ctx, st| {
                kernel::record_activity_heartbeat(ctx, st, &t, req.details)
            })
            .await?;
        Ok(pb::RecordActivityTaskHeartbeatResponse { cancel_requested, ..Default::default() })
    }

    async fn describe_execution(
        &self,
        req: pb::DescribeWorkflowExecutionRequest,
    ) -> Result<pb::DescribeWorkflowExecutionResponse> {
        self.namespaces.check(&req.namespace)?;
        let execution = req.execution.unwrap_or_default();
        validate::workflow_id(self.engine.limits(), &execution.workflow_id)?;
        let st = self.engine.run_state(&req.namespace, &execution.workflow_id, &execution.run_id).await?;
        Ok(list::describe(&st))
    }

    async fn terminate(
        &self,
        req: pb::TerminateWorkflowExecutionRequest,
    ) -> Result<pb::TerminateWorkflowExecutionResponse> {
        self.namespaces.check(&req.namespace)?;
        let execution = req.workflow_execution.unwrap_or_default();
        validate::workflow_id(self.engine.limits(), &execution.workflow_id)?;
        let first_run = req.first_execution_run_id;
        let (reason, details, identity) = (req.reason, req.details, req.identity);
        self.engine
            .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
                if !first_run.is_empty() && st.first_execution_run_id != first_run {
                    return Err(kernel::Error::NotFound("workflow execution not found".into()));
                }
                kernel::terminate_run(ctx, st, &reason, details, &identity)
            })
            .await?;
        Ok(pb::TerminateWorkflowExecutionResponse::default())
    }

    async fn signal(&self, req: pb::SignalWorkflowExecutionRequest) -> Result<pb::SignalWorkflowExecutionResponse> {
        self.namespaces.check(&req.namespace)?;
        let execution = req.workflow_execution.unwrap_or_default();
        validate::workflow_id(self.engine.limits(), &execution.workflow_id)?;
        validate::signal_name(self.engine.limits(), &req.signal_name)?;
        validate::blob(self.engine.limits(), req.input.as_ref())?;
        let signal = kernel::SignalInput {
            signal_name: req.signal_name,
            input: req.input,
            identity: req.identity,
            header: req.header,
            request_id: req.request_id,
            external: None,
        };
        self.engine
            .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
                kernel::signal_run(ctx, st, signal)
            })
            .await?;
        Ok(pb::SignalWorkflowExecutionResponse::default())
    }

    async fn signal_with_start(
        &self,
        req: pb::SignalWithStartWorkflowExecutionRequest,
    ) -> Result<pb::SignalWithStartWorkflowExecutionResponse> {
        self.namespaces.check(&req.namespace)?;
        validate::signal_name(self.engine.limits(), &req.signal_name)?;
        validate::blob(self.engine.limits(), req.signal_input.as_ref())?;
        let signal = kernel::SignalInput {
            signal_name: req.signal_name,
            input: req.signal_input,
            identity: req.identity.clone(),
            header: req.header.clone(),
            request_id: req.request_id.clone(),
            external: None,
        };
        let mut start = pb::StartWorkflowExecutionRequest {
            namespace: req.namespace,
            workflow_id: req.workflow_id,
            workflow_type: req.workflow_type,
            task_queue: req.task_queue,
            input: req.input,
            workflow_execution_timeout: req.workflow_execution_timeout,
            workflow_run_timeout: req.workflow_run_timeout,
            workflow_task_timeout: req.workflow_task_timeout,
            identity: req.identity,
            request_id: req.request_id,
            workflow_id_reuse_policy: req.workflow_id_reuse_policy,
            workflow_id_conflict_policy: req.workflow_id_conflict_policy,
            retry_policy: req.retry_policy,
            cron_schedule: req.cron_schedule,
            memo: req.memo,
            search_attributes: req.search_attributes,
            header: req.header,
            user_metadata: req.user_metadata,
            links: req.links,
            priority: req.priority,
            ..Default::default()
        };
        validate::start(self.engine.limits(), &mut start)?;
        self.check_search_attributes(&mut start)?;
        let outcome = self.engine.signal_with_start(start, signal).await?;
        Ok(pb::SignalWithStartWorkflowExecutionResponse {
            run_id: outcome.run_id,
            started: outcome.started,
            ..Default::default()
        })
    }

    async fn reset_sticky(&self, req: pb::ResetStickyTaskQueueRequest) -> Result<pb::ResetStickyTaskQueueResponse> {
        self.namespaces.check(&req.namespace)?;
        let execution = req.execution.unwrap_or_default();
        validate::workflow_id(self.engine.limits(), &execution.workflow_id)?;
        self.engine
            .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, |ctx, st| {
                if !st.is_open() {
                    return Err(kernel::Error::NotFound("workflow execution already completed".into()));
                }
                kernel::reset_sticky_task_queue(ctx, st);
                Ok(())
            })
            .await?;
        Ok(pb::ResetStickyTaskQueueResponse::default())
    }

    fn system_info(&self) -> pb::GetSystemInfoResponse {
        pb::GetSystemInfoResponse {
            server_version: self.server_version.to_string(),
            capabilities: Some(pb::get_system_info_response::Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                supports_schedules: true,
                encoded_failure_attributes: true,
                build_id_based_versioning: false,
                upsert_memo: true,
                eager_workflow_start: self.engine.limits().enable_eager_workflow_start,
                sdk_metadata: true,
                count_group_by_execution_status: true,
                nexus: false,
                ..Default::default()
            }),
        }
    }

    fn describe_namespace(&self, req: pb::DescribeNamespaceRequest) -> Result<pb::DescribeNamespaceResponse> {
        if req.namespace.is_empty() && req.id.is_empty() {
            return Err(Error::InvalidArgument("Namespace not set on request.".into()));
        }
        let found =
            if !req.id.is_empty() { self.namespaces.get_by_id(&req.id) } else { self.namespaces.get(&req.namespace) };
        let mut ns = found.ok_or_else(|| {
            Error::NamespaceNotFound(if req.namespace.is_empty() { req.id.clone() } else { req.namespace.clone() })
        })?;
        self.with_settings_in_force(&mut ns);
        Ok(ns)
    }

    /// A namespace's limits and capabilities as this server runs now (the stored record may
    /// come from a run with other settings).
    fn with_settings_in_force(&self, ns: &mut pb::DescribeNamespaceResponse) {
        if let Some(info) = ns.namespace_info.as_mut() {
            let limits = info.limits.get_or_insert_with(Default::default);
            limits.blob_size_limit_error = self.engine.limits().blob_size_error as i64;
            limits.memo_size_limit_error = self.engine.limits().memo_size_error as i64;
            limits.workflow_task_completion_size_limit_error = WORKFLOW_TASK_COMPLETION_SIZE_LIMIT;
            let capabilities = info.capabilities.get_or_insert_with(Default::default);
            capabilities.eager_workflow_start = self.engine.limits().enable_eager_workflow_start;
        }
    }

    async fn register_namespace(&self, req: pb::RegisterNamespaceRequest) -> Result<pb::RegisterNamespaceResponse> {
        let retention = req.workflow_execution_retention_period.as_ref().map_or(24 * 3600, |d| d.seconds);
        if retention < 0 {
            return Err(Error::InvalidArgument("Invalid retention period.".into()));
        }
        if req.namespace.len() > self.engine.limits().max_id_length {
            return Err(Error::InvalidArgument("Namespace length exceeds limit.".into()));
        }
        self.namespaces.register(&req.namespace, &req.description, retention, uuid::Uuid::new_v4().to_string()).await?;
        Ok(pb::RegisterNamespaceResponse::default())
    }
}

#[tonic::async_trait]
impl WorkflowService for Frontend {
    async fn get_system_info(
        &self,
        _request: Request<pb::GetSystemInfoRequest>,
    ) -> RpcResult<pb::GetSystemInfoResponse> {
        Ok(Response::new(self.system_info()))
    }

    async fn describe_namespace(
        &self,
        request: Request<pb::DescribeNamespaceRequest>,
    ) -> RpcResult<pb::DescribeNamespaceResponse> {
        reply(Frontend::describe_namespace(self, request.into_inner()))
    }

    async fn list_namespaces(
        &self,
        _request: Request<pb::ListNamespacesRequest>,
    ) -> RpcResult<pb::ListNamespacesResponse> {
        let mut namespaces = self.namespaces.list();
        for ns in &mut namespaces {
            self.with_settings_in_force(ns);
        }
        Ok(Response::new(pb::ListNamespacesResponse { namespaces, next_page_token: Vec::new() }))
    }

    async fn register_namespace(
        &self,
        request: Request<pb::RegisterNamespaceRequest>,
    ) -> RpcResult<pb::RegisterNamespaceResponse> {
        reply(Frontend::register_namespace(self, request.into_inner()).await)
    }

    async fn start_workflow_execution(
        &self,
        request: Request<pb::StartWorkflowExecutionRequest>,
    ) -> RpcResult<pb::StartWorkflowExecutionResponse> {
        reply(self.start(request.into_inner()).await)
    }

    async fn poll_workflow_task_queue(
        &self,
        request: Request<pb::PollWorkflowTaskQueueRequest>,
    ) -> RpcResult<pb::PollWorkflowTaskQueueResponse> {
        let wait = long_poll_wait(&request, MAX_TASK_POLL);
        reply(self.poll_workflow_task(request.into_inner(), wait).await)
    }

    async fn respond_workflow_task_completed(
        &self,
        request: Request<pb::RespondWorkflowTaskCompletedRequest>,
    ) -> RpcResult<pb::RespondWorkflowTaskCompletedResponse> {
        reply(self.workflow_task_completed(request.into_inner()).await)
    }

    async fn respond_workflow_task_failed(
        &self,
        request: Request<pb::RespondWorkflowTaskFailedRequest>,
    ) -> RpcResult<pb::RespondWorkflowTaskFailedResponse> {
        reply(self.workflow_task_failed(request.into_inner()).await)
    }

    async fn poll_activity_task_queue(
        &self,
        request: Request<pb::PollActivityTaskQueueRequest>,
    ) -> RpcResult<pb::PollActivityTaskQueueResponse> {
        let wait = long_poll_wait(&request, MAX_TASK_POLL);
        reply(self.poll_activity_task(request.into_inner(), wait).await)
    }

    async fn respond_activity_task_completed(
        &self,
        request: Request<pb::RespondActivityTaskCompletedRequest>,
    ) -> RpcResult<pb::RespondActivityTaskCompletedResponse> {
        reply(self.activity_completed(request.into_inner()).await)
    }

    async fn respond_activity_task_failed(
        &self,
        request: Request<pb::RespondActivityTaskFailedRequest>,
    ) -> RpcResult<pb::RespondActivityTaskFailedResponse> {
        reply(self.activity_failed(request.into_inner()).await)
    }

    async fn record_activity_task_heartbeat(
        &self,
        request: Request<pb::RecordActivityTaskHeartbeatRequest>,
    ) -> RpcResult<pb::RecordActivityTaskHeartbeatResponse> {
        reply(self.activity_heartbeat(request.into_inner()).await)
    }

    async fn get_workflow_execution_history(
        &self,
        request: Request<pb::GetWorkflowExecutionHistoryRequest>,
    ) -> RpcResult<pb::GetWorkflowExecutionHistoryResponse> {
        let wait = long_poll_wait(&request, MAX_HISTORY_POLL);
        let client = request.metadata().get("client-name").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let sdk_client = !matches!(client, "" | "temporal-cli" | "temporal-ui");
        reply(self.history(request.into_inner(), wait, sdk_client).await)
    }

    async fn describe_workflow_execution(
        &self,
        request: Request<pb::DescribeWorkflowExecutionRequest>,
    ) -> RpcResult<pb::DescribeWorkflowExecutionResponse> {
        reply(self.describe_execution(request.into_inner()).await)
    }

    async fn list_workflow_executions(
        &self,
        request: Request<pb::ListWorkflowExecutionsRequest>,
    ) -> RpcResult<pb::ListWorkflowExecutionsResponse> {
        reply(self.list(request.into_inner()).await)
    }

    async fn count_workflow_executions(
        &self,
        request: Request<pb::CountWorkflowExecutionsRequest>,
    ) -> RpcResult<pb::CountWorkflowExecutionsResponse> {
        reply(self.count(request.into_inner()).await)
    }

    async fn scan_workflow_executions(
        &self,
        request: Request<pb::ScanWorkflowExecutionsRequest>,
    ) -> RpcResult<pb::ScanWorkflowExecutionsResponse> {
        reply(self.scan(request.into_inner()).await)
    }

    async fn get_search_attributes(
        &self,
        _request: Request<pb::GetSearchAttributesRequest>,
    ) -> RpcResult<pb::GetSearchAttributesResponse> {
        reply(Ok(self.get_search_attributes()))
    }

    async fn delete_workflow_execution(
        &self,
        request: Request<pb::DeleteWorkflowExecutionRequest>,
    ) -> RpcResult<pb::DeleteWorkflowExecutionResponse> {
        reply(self.delete(request.into_inner()).await)
    }

    async fn update_namespace(
        &self,
        request: Request<pb::UpdateNamespaceRequest>,
    ) -> RpcResult<pb::UpdateNamespaceResponse> {
        let updated = self.namespaces.update(&request.into_inner()).await.map(|ns| pb::UpdateNamespaceResponse {
            namespace_info: ns.namespace_info,
            config: ns.config,
            replication_config: ns.replication_config,
            failover_version: ns.failover_version,
            is_global_namespace: ns.is_global_namespace,
        });
        reply(updated)
    }

    async fn describe_task_queue(
        &self,
        request: Request<pb::DescribeTaskQueueRequest>,
    ) -> RpcResult<pb::DescribeTaskQueueResponse> {
        reply(self.describe_task_queue(request.into_inner()))
    }

    async fn get_cluster_info(
        &self,
        _request: Request<pb::GetClusterInfoRequest>,
    ) -> RpcResult<pb::GetClusterInfoResponse> {
        reply(Ok(self.cluster_info()))
    }

    async fn create_schedule(
        &self,
        request: Request<pb::CreateScheduleRequest>,
    ) -> RpcResult<pb::CreateScheduleResponse> {
        reply(self.create_schedule(request.into_inner()).await)
    }

    async fn describe_schedule(
        &self,
        request: Request<pb::DescribeScheduleRequest>,
    ) -> RpcResult<pb::DescribeScheduleResponse> {
        reply(self.describe_schedule(request.into_inner()).await)
    }

    async fn update_schedule(
        &self,
        request: Request<pb::UpdateScheduleRequest>,
    ) -> RpcResult<pb::UpdateScheduleResponse> {
        reply(self.update_schedule(request.into_inner()).await)
    }

    async fn patch_schedule(&self, request: Request<pb::PatchScheduleRequest>) -> RpcResult<pb::PatchScheduleResponse> {
        reply(self.patch_schedule(request.into_inner()).await)
    }

    async fn delete_schedule(
        &self,
        request: Request<pb::DeleteScheduleRequest>,
    ) -> RpcResult<pb::DeleteScheduleResponse> {
        reply(self.delete_schedule(request.into_inner()).await)
    }

    async fn list_schedules(&self, request: Request<pb::ListSchedulesRequest>) -> RpcResult<pb::ListSchedulesResponse> {
        reply(self.list_schedules(request.into_inner()).await)
    }

    async fn count_schedules(
        &self,
        request: Request<pb::CountSchedulesRequest>,
    ) -> RpcResult<pb::CountSchedulesResponse> {
        reply(self.count_schedules(request.into_inner()).await)
    }

    async fn list_schedule_matching_times(
        &self,
        request: Request<pb::ListScheduleMatchingTimesRequest>,
    ) -> RpcResult<pb::ListScheduleMatchingTimesResponse> {
        reply(self.schedule_matching_times(request.into_inner()).await)
    }

    async fn terminate_workflow_execution(
        &self,
        request: Request<pb::TerminateWorkflowExecutionRequest>,
    ) -> RpcResult<pb::TerminateWorkflowExecutionResponse> {
        reply(self.terminate(request.into_inner()).await)
    }

    async fn signal_workflow_execution(
        &self,
        request: Request<pb::SignalWorkflowExecutionRequest>,
    ) -> RpcResult<pb::SignalWorkflowExecutionResponse> {
        reply(self.signal(request.into_inner()).await)
    }

    async fn signal_with_start_workflow_execution(
        &self,
        request: Request<pb::SignalWithStartWorkflowExecutionRequest>,
    ) -> RpcResult<pb::SignalWithStartWorkflowExecutionResponse> {
        reply(self.signal_with_start(request.into_inner()).await)
    }

    async fn request_cancel_workflow_execution(
        &self,
        request: Request<pb::RequestCancelWorkflowExecutionRequest>,
    ) -> RpcResult<pb::RequestCancelWorkflowExecutionResponse> {
        reply(self.request_cancel(request.into_inner()).await)
    }

    async fn respond_activity_task_canceled(
        &self,
        request: Request<pb::RespondActivityTaskCanceledRequest>,
    ) -> RpcResult<pb::RespondActivityTaskCanceledResponse> {
        reply(self.activity_canceled(request.into_inner()).await)
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        request: Request<pb::RespondActivityTaskCompletedByIdRequest>,
    ) -> RpcResult<pb::RespondActivityTaskCompletedByIdResponse> {
        reply(self.completed_by_id(request.into_inner()).await)
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        request: Request<pb::RespondActivityTaskFailedByIdRequest>,
    ) -> RpcResult<pb::RespondActivityTaskFailedByIdResponse> {
        reply(self.failed_by_id(request.into_inner()).await)
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        request: Request<pb::RespondActivityTaskCanceledByIdRequest>,
    ) -> RpcResult<pb::RespondActivityTaskCanceledByIdResponse> {
        reply(self.canceled_by_id(request.into_inner()).await)
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        request: Request<pb::RecordActivityTaskHeartbeatByIdRequest>,
    ) -> RpcResult<pb::RecordActivityTaskHeartbeatByIdResponse> {
        reply(self.heartbeat_by_id(request.into_inner()).await)
    }

    async fn query_workflow(&self, request: Request<pb::QueryWorkflowRequest>) -> RpcResult<pb::QueryWorkflowResponse> {
        let wait = long_poll_wait(&request, MAX_TASK_POLL);
        reply(self.query(request.into_inner(), wait).await)
    }

    async fn respond_query_task_completed(
        &self,
        request: Request<pb::RespondQueryTaskCompletedRequest>,
    ) -> RpcResult<pb::RespondQueryTaskCompletedResponse> {
        reply(self.query_completed(request.into_inner()))
    }

    async fn update_workflow_execution(
        &self,
        request: Request<pb::UpdateWorkflowExecutionRequest>,
    ) -> RpcResult<pb::UpdateWorkflowExecutionResponse> {
        let wait = super::update_wait(&request);
        reply(self.update(request.into_inner(), wait).await)
    }

    async fn poll_workflow_execution_update(
        &self,
        request: Request<pb::PollWorkflowExecutionUpdateRequest>,
    ) -> RpcResult<pb::PollWorkflowExecutionUpdateResponse> {
        let wait = super::update_wait(&request);
        reply(self.poll_update(request.into_inner(), wait).await)
    }

    async fn execute_multi_operation(
        &self,
        request: Request<pb::ExecuteMultiOperationRequest>,
    ) -> RpcResult<pb::ExecuteMultiOperationResponse> {
        let wait = long_poll_wait(&request, MAX_TASK_POLL);
        reply(self.multi_operation(request.into_inner(), wait).await)
    }

    async fn record_worker_heartbeat(
        &self,
        _request: Request<pb::RecordWorkerHeartbeatRequest>,
    ) -> RpcResult<pb::RecordWorkerHeartbeatResponse> {
        Ok(Response::new(pb::RecordWorkerHeartbeatResponse::default()))
    }

    async fn reset_sticky_task_queue(
        &self,
        request: Request<pb::ResetStickyTaskQueueRequest>,
    ) -> RpcResult<pb::ResetStickyTaskQueueResponse> {
        reply(self.reset_sticky(request.into_inner()).await)
    }

    async fn shutdown_worker(
        &self,
        request: Request<pb::ShutdownWorkerRequest>,
    ) -> RpcResult<pb::ShutdownWorkerResponse> {
        let req = request.into_inner();
        if !req.sticky_task_queue.is_empty() {
            self.engine.matching().forget_sticky(&req.namespace, &req.sticky_task_queue);
        }
        Ok(Response::new(pb::ShutdownWorkerResponse::default()))
    }
}
