//! WorkflowService over gRPC: one handler per implemented RPC. Each checks its request (the
//! namespace, ids, sizes and defaults, through `validate`) and hands it to its entry point in
//! `engine::api`, or answers from the frontend's registries (`namespace.rs`), or from the
//! scheduler (`schedule.rs`).

use tonic::{Request, Response, Status};
use uhrwerk_core::kernel;
use uhrwerk_core::token::TaskToken;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::{Frontend, MAX_HISTORY_POLL, MAX_TASK_POLL, long_poll_wait, validate};
use crate::engine::api;
use crate::error::{Error, Result};

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
    "ListOpenWorkflowExecutions",
    "ListClosedWorkflowExecutions",
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
    "PauseActivity",
    "UnpauseActivity",
    "ResetActivity",
    "UpdateActivityOptions",
    "ResetWorkflowExecution",
];

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn reply<T>(result: Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

/// Decodes a task token; garbage gets INVALID_ARGUMENT, as in Temporal.
fn token(bytes: &[u8], namespace: &str) -> Result<TaskToken> {
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
    /// A start request checked and completed with defaults, its search attributes typed.
    pub(super) fn check_start(&self, req: &mut pb::StartWorkflowExecutionRequest) -> Result<()> {
        self.namespaces.check(&req.namespace)?;
        validate::start(self.engine.limits(), req)?;
        if let Some(attrs) = req.search_attributes.as_mut() {
            self.engine.search_attributes().validate(&req.namespace, attrs).map_err(Error::InvalidArgument)?;
            self.engine.search_attributes().add_types(&req.namespace, attrs);
        }
        Ok(())
    }

    pub(super) fn check_update(&self, req: &pb::UpdateWorkflowExecutionRequest) -> Result<()> {
        self.check_execution(&req.namespace, req.workflow_execution.as_ref().map(|e| e.workflow_id.as_str()))?;
        let request = req.request.as_ref();
        if request.and_then(|r| r.meta.as_ref()).is_none_or(|m| m.update_id.is_empty()) {
            return Err(Error::InvalidArgument("Update ID is not set on request.".into()));
        }
        let input = request.and_then(|r| r.input.as_ref());
        if input.is_none_or(|i| i.name.is_empty()) {
            return Err(Error::InvalidArgument("Update name is not set on request.".into()));
        }
        validate::blob(self.engine.limits(), input.and_then(|i| i.args.as_ref()))?;
        // As Temporal: a caller cannot wait for admission only (it would learn nothing durable).
        if req.wait_policy.as_ref().is_some_and(|w| {
            w.lifecycle_stage
                == uhrwerk_proto::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage::Admitted as i32
        }) {
            return Err(Error::PermissionDenied(
                "UpdateWorkflowExecution issued asynchronously and waiting on update admitted is not supported.".into(),
            ));
        }
        Ok(())
    }

    /// The namespace exists and the workflow id is a valid one.
    fn check_execution(&self, namespace: &str, workflow_id: Option<&str>) -> Result<()> {
        self.namespaces.check(namespace)?;
        validate::workflow_id(self.engine.limits(), workflow_id.unwrap_or_default())
    }

    fn check_task_queue(&self, namespace: &str, queue: Option<&str>) -> Result<()> {
        self.namespaces.check(namespace)?;
        validate::task_queue_name(self.engine.limits(), queue.unwrap_or_default())
    }

    /// An operator action on a workflow's activities names an existing namespace and a workflow.
    fn check_activity_operation(
        &self,
        namespace: &str,
        execution: Option<&uhrwerk_proto::temporal::api::common::v1::WorkflowExecution>,
    ) -> Result<()> {
        self.namespaces.check(namespace)?;
        let workflow_id = execution.map(|e| e.workflow_id.as_str()).unwrap_or_default();
        if workflow_id.is_empty() {
            return Err(Error::InvalidArgument("WorkflowId is not set on request.".into()));
        }
        validate::workflow_id(self.engine.limits(), workflow_id)
    }

    /// The attempt a `*ById` call names, checked.
    fn activity_by_id(
        &self,
        namespace: String,
        workflow_id: String,
        run_id: String,
        activity_id: String,
    ) -> Result<api::respond_activity_task::Target> {
        self.check_execution(&namespace, Some(&workflow_id))?;
        if activity_id.is_empty() {
            return Err(Error::InvalidArgument("ActivityId is not set on request.".into()));
        }
        Ok(api::respond_activity_task::Target::Id { namespace, workflow_id, run_id, activity_id })
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
            workflow_start_delay: req.workflow_start_delay,
            priority: req.priority,
            ..Default::default()
        };
        self.check_start(&mut start)?;
        api::signal_with_start_workflow_execution::invoke(&self.engine, start, signal).await
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
        request: Request<pb::ListNamespacesRequest>,
    ) -> RpcResult<pb::ListNamespacesResponse> {
        let mut listed = Frontend::list_namespaces(self);
        // With authorization on, the caller sees the namespaces it may read.
        if let Some(claims) = request.extensions().get::<crate::auth::Claims>() {
            listed.namespaces.retain(|ns| ns.namespace_info.as_ref().is_some_and(|info| claims.reads(&info.name)));
        }
        Ok(Response::new(listed))
    }

    async fn register_namespace(
        &self,
        request: Request<pb::RegisterNamespaceRequest>,
    ) -> RpcResult<pb::RegisterNamespaceResponse> {
        reply(Frontend::register_namespace(self, request.into_inner()).await)
    }

    async fn update_namespace(
        &self,
        request: Request<pb::UpdateNamespaceRequest>,
    ) -> RpcResult<pb::UpdateNamespaceResponse> {
        reply(Frontend::update_namespace(self, request.into_inner()).await)
    }

    async fn get_cluster_info(
        &self,
        _request: Request<pb::GetClusterInfoRequest>,
    ) -> RpcResult<pb::GetClusterInfoResponse> {
        reply(Ok(self.cluster_info()))
    }

    async fn get_search_attributes(
        &self,
        _request: Request<pb::GetSearchAttributesRequest>,
    ) -> RpcResult<pb::GetSearchAttributesResponse> {
        reply(Ok(Frontend::get_search_attributes(self)))
    }

    async fn start_workflow_execution(
        &self,
        request: Request<pb::StartWorkflowExecutionRequest>,
    ) -> RpcResult<pb::StartWorkflowExecutionResponse> {
        let mut req = request.into_inner();
        reply(
            async {
                self.check_start(&mut req)?;
                api::start_workflow_execution::invoke(&self.engine, req).await
            }
            .await,
        )
    }

    async fn signal_with_start_workflow_execution(
        &self,
        request: Request<pb::SignalWithStartWorkflowExecutionRequest>,
    ) -> RpcResult<pb::SignalWithStartWorkflowExecutionResponse> {
        reply(self.signal_with_start(request.into_inner()).await)
    }

    async fn poll_workflow_task_queue(
        &self,
        request: Request<pb::PollWorkflowTaskQueueRequest>,
    ) -> RpcResult<pb::PollWorkflowTaskQueueResponse> {
        let wait = long_poll_wait(&request, MAX_TASK_POLL);
        let req = request.into_inner();
        reply(
            async {
                self.check_task_queue(&req.namespace, req.task_queue.as_ref().map(|q| q.name.as_str()))?;
                api::poll_workflow_task_queue::invoke(&self.engine, req, wait).await
            }
            .await,
        )
    }

    async fn respond_workflow_task_completed(
        &self,
        request: Request<pb::RespondWorkflowTaskCompletedRequest>,
    ) -> RpcResult<pb::RespondWorkflowTaskCompletedResponse> {
        let req = request.into_inner();
        reply(
            async {
                let token = token(&req.task_token, &req.namespace)?;
                api::respond_workflow_task_completed::invoke(&self.engine, token, req).await
            }
            .await,
        )
    }

    async fn respond_workflow_task_failed(
        &self,
        request: Request<pb::RespondWorkflowTaskFailedRequest>,
    ) -> RpcResult<pb::RespondWorkflowTaskFailedResponse> {
        let req = request.into_inner();
        reply(
            async {
                let token = token(&req.task_token, &req.namespace)?;
                api::respond_workflow_task_failed::invoke(&self.engine, token, req).await
            }
            .await,
        )
    }

    async fn poll_activity_task_queue(
        &self,
        request: Request<pb::PollActivityTaskQueueRequest>,
    ) -> RpcResult<pb::PollActivityTaskQueueResponse> {
        let wait = long_poll_wait(&request, MAX_TASK_POLL);
        let req = request.into_inner();
        reply(
            async {
                self.check_task_queue(&req.namespace, req.task_queue.as_ref().map(|q| q.name.as_str()))?;
                api::poll_activity_task_queue::invoke(&self.engine, req, wait).await
            }
            .await,
        )
    }

    async fn respond_activity_task_completed(
        &self,
        request: Request<pb::RespondActivityTaskCompletedRequest>,
    ) -> RpcResult<pb::RespondActivityTaskCompletedResponse> {
        use api::respond_activity_task::{Outcome, Target, invoke};
        let req = request.into_inner();
        reply(
            async {
                let target = Target::Token(token(&req.task_token, &req.namespace)?);
                invoke(&self.engine, target, req.identity, Outcome::Completed(req.result)).await?;
                Ok(Default::default())
            }
            .await,
        )
    }

    async fn respond_activity_task_failed(
        &self,
        request: Request<pb::RespondActivityTaskFailedRequest>,
    ) -> RpcResult<pb::RespondActivityTaskFailedResponse> {
        use api::respond_activity_task::{Outcome, Target, invoke};
        let req = request.into_inner();
        reply(
            async {
                let target = Target::Token(token(&req.task_token, &req.namespace)?);
                let outcome = Outcome::Failed(Box::new(req.failure.unwrap_or_default()), req.last_heartbeat_details);
                invoke(&self.engine, target, req.identity, outcome).await?;
                Ok(Default::default())
            }
            .await,
        )
    }

    async fn respond_activity_task_canceled(
        &self,
        request: Request<pb::RespondActivityTaskCanceledRequest>,
    ) -> RpcResult<pb::RespondActivityTaskCanceledResponse> {
        use api::respond_activity_task::{Outcome, Target, invoke};
        let req = request.into_inner();
        reply(
            async {
                let target = Target::Token(token(&req.task_token, &req.namespace)?);
                invoke(&self.engine, target, req.identity, Outcome::Canceled(req.details)).await?;
                Ok(Default::default())
            }
            .await,
        )
    }

    async fn record_activity_task_heartbeat(
        &self,
        request: Request<pb::RecordActivityTaskHeartbeatRequest>,
    ) -> RpcResult<pb::RecordActivityTaskHeartbeatResponse> {
        use api::respond_activity_task::{Outcome, Target, invoke};
        let req = request.into_inner();
        reply(
            async {
                let target = Target::Token(token(&req.task_token, &req.namespace)?);
                validate::blob(self.engine.limits(), req.details.as_ref())?;
                let answer = invoke(&self.engine, target, req.identity, Outcome::Heartbeat(req.details)).await?;
                Ok(pb::RecordActivityTaskHeartbeatResponse {
                    cancel_requested: answer.cancel_requested,
                    activity_paused: answer.paused,
                    activity_reset: answer.reset,
                })
            }
            .await,
        )
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        request: Request<pb::RespondActivityTaskCompletedByIdRequest>,
    ) -> RpcResult<pb::RespondActivityTaskCompletedByIdResponse> {
        use api::respond_activity_task::{Outcome, invoke};
        let req = request.into_inner();
        reply(
            async {
                let target = self.activity_by_id(req.namespace, req.workflow_id, req.run_id, req.activity_id)?;
                invoke(&self.engine, target, req.identity, Outcome::Completed(req.result)).await?;
                Ok(Default::default())
            }
            .await,
        )
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        request: Request<pb::RespondActivityTaskFailedByIdRequest>,
    ) -> RpcResult<pb::RespondActivityTaskFailedByIdResponse> {
        use api::respond_activity_task::{Outcome, invoke};
        let req = request.into_inner();
        reply(
            async {
                let target = self.activity_by_id(req.namespace, req.workflow_id, req.run_id, req.activity_id)?;
                let outcome = Outcome::Failed(Box::new(req.failure.unwrap_or_default()), req.last_heartbeat_details);
                invoke(&self.engine, target, req.identity, outcome).await?;
                Ok(Default::default())
            }
            .await,
        )
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        request: Request<pb::RespondActivityTaskCanceledByIdRequest>,
    ) -> RpcResult<pb::RespondActivityTaskCanceledByIdResponse> {
        use api::respond_activity_task::{Outcome, invoke};
        let req = request.into_inner();
        reply(
            async {
                let target = self.activity_by_id(req.namespace, req.workflow_id, req.run_id, req.activity_id)?;
                invoke(&self.engine, target, req.identity, Outcome::Canceled(req.details)).await?;
                Ok(Default::default())
            }
            .await,
        )
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        request: Request<pb::RecordActivityTaskHeartbeatByIdRequest>,
    ) -> RpcResult<pb::RecordActivityTaskHeartbeatByIdResponse> {
        use api::respond_activity_task::{Outcome, invoke};
        let req = request.into_inner();
        reply(
            async {
                validate::blob(self.engine.limits(), req.details.as_ref())?;
                let target = self.activity_by_id(req.namespace, req.workflow_id, req.run_id, req.activity_id)?;
                let answer = invoke(&self.engine, target, req.identity, Outcome::Heartbeat(req.details)).await?;
                Ok(pb::RecordActivityTaskHeartbeatByIdResponse {
                    cancel_requested: answer.cancel_requested,
                    activity_paused: answer.paused,
                    activity_reset: answer.reset,
                })
            }
            .await,
        )
    }

    async fn reset_workflow_execution(
        &self,
        request: Request<pb::ResetWorkflowExecutionRequest>,
    ) -> RpcResult<pb::ResetWorkflowExecutionResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_execution(&req.namespace, req.workflow_execution.as_ref().map(|e| e.workflow_id.as_str()))?;
                api::reset_workflow_execution::invoke(&self.engine, req).await
            }
            .await,
        )
    }

    async fn pause_activity(&self, request: Request<pb::PauseActivityRequest>) -> RpcResult<pb::PauseActivityResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_activity_operation(&req.namespace, req.execution.as_ref())?;
                api::activity_operations::pause(&self.engine, req).await
            }
            .await,
        )
    }

    async fn unpause_activity(
        &self,
        request: Request<pb::UnpauseActivityRequest>,
    ) -> RpcResult<pb::UnpauseActivityResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_activity_operation(&req.namespace, req.execution.as_ref())?;
                api::activity_operations::unpause(&self.engine, req).await
            }
            .await,
        )
    }

    async fn reset_activity(&self, request: Request<pb::ResetActivityRequest>) -> RpcResult<pb::ResetActivityResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_activity_operation(&req.namespace, req.execution.as_ref())?;
                api::activity_operations::reset(&self.engine, req).await
            }
            .await,
        )
    }

    async fn update_activity_options(
        &self,
        request: Request<pb::UpdateActivityOptionsRequest>,
    ) -> RpcResult<pb::UpdateActivityOptionsResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_activity_operation(&req.namespace, req.execution.as_ref())?;
                api::activity_operations::update_options(&self.engine, req).await
            }
            .await,
        )
    }

    async fn get_workflow_execution_history(
        &self,
        request: Request<pb::GetWorkflowExecutionHistoryRequest>,
    ) -> RpcResult<pb::GetWorkflowExecutionHistoryResponse> {
        let wait = long_poll_wait(&request, MAX_HISTORY_POLL);
        let client = request.metadata().get("client-name").and_then(|v| v.to_str().ok()).unwrap_or_default();
        // Temporal shows a transient workflow task attempt's events to SDKs, not to its CLI or UI.
        let sdk_client = !matches!(client, "" | "temporal-cli" | "temporal-ui");
        let req = request.into_inner();
        reply(
            async {
                self.check_execution(&req.namespace, req.execution.as_ref().map(|e| e.workflow_id.as_str()))?;
                api::get_workflow_execution_history::invoke(&self.engine, req, wait, sdk_client).await
            }
            .await,
        )
    }

    async fn describe_workflow_execution(
        &self,
        request: Request<pb::DescribeWorkflowExecutionRequest>,
    ) -> RpcResult<pb::DescribeWorkflowExecutionResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_execution(&req.namespace, req.execution.as_ref().map(|e| e.workflow_id.as_str()))?;
                api::describe_workflow_execution::invoke(&self.engine, req).await
            }
            .await,
        )
    }

    async fn list_workflow_executions(
        &self,
        request: Request<pb::ListWorkflowExecutionsRequest>,
    ) -> RpcResult<pb::ListWorkflowExecutionsResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.namespaces.check(&req.namespace)?;
                api::list_workflow_executions::list(&self.engine, req).await
            }
            .await,
        )
    }

    async fn list_open_workflow_executions(
        &self,
        request: Request<pb::ListOpenWorkflowExecutionsRequest>,
    ) -> RpcResult<pb::ListOpenWorkflowExecutionsResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.namespaces.check(&req.namespace)?;
                api::list_workflow_executions::list_open(&self.engine, req).await
            }
            .await,
        )
    }

    async fn list_closed_workflow_executions(
        &self,
        request: Request<pb::ListClosedWorkflowExecutionsRequest>,
    ) -> RpcResult<pb::ListClosedWorkflowExecutionsResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.namespaces.check(&req.namespace)?;
                api::list_workflow_executions::list_closed(&self.engine, req).await
            }
            .await,
        )
    }

    async fn scan_workflow_executions(
        &self,
        request: Request<pb::ScanWorkflowExecutionsRequest>,
    ) -> RpcResult<pb::ScanWorkflowExecutionsResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.namespaces.check(&req.namespace)?;
                api::list_workflow_executions::scan(&self.engine, req).await
            }
            .await,
        )
    }

    async fn count_workflow_executions(
        &self,
        request: Request<pb::CountWorkflowExecutionsRequest>,
    ) -> RpcResult<pb::CountWorkflowExecutionsResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.namespaces.check(&req.namespace)?;
                api::list_workflow_executions::count(&self.engine, req).await
            }
            .await,
        )
    }

    async fn delete_workflow_execution(
        &self,
        request: Request<pb::DeleteWorkflowExecutionRequest>,
    ) -> RpcResult<pb::DeleteWorkflowExecutionResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.namespaces.check(&req.namespace)?;
                if req.workflow_execution.as_ref().is_none_or(|e| e.workflow_id.is_empty()) {
                    return Err(Error::InvalidArgument("WorkflowId is not set on request.".into()));
                }
                api::delete_workflow_execution::invoke(&self.engine, req).await
            }
            .await,
        )
    }

    async fn describe_task_queue(
        &self,
        request: Request<pb::DescribeTaskQueueRequest>,
    ) -> RpcResult<pb::DescribeTaskQueueResponse> {
        let req = request.into_inner();
        let checked = self.namespaces.check(&req.namespace).and_then(|()| {
            let queue = req.task_queue.as_ref().map(|q| q.name.as_str()).unwrap_or_default();
            if queue.is_empty() {
                return Err(Error::InvalidArgument("TaskQueue is not set on request.".into()));
            }
            validate::task_queue_name(self.engine.limits(), queue)
        });
        reply(checked.and_then(|()| api::describe_task_queue::invoke(&self.engine, req)))
    }

    async fn terminate_workflow_execution(
        &self,
        request: Request<pb::TerminateWorkflowExecutionRequest>,
    ) -> RpcResult<pb::TerminateWorkflowExecutionResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_execution(&req.namespace, req.workflow_execution.as_ref().map(|e| e.workflow_id.as_str()))?;
                api::terminate_workflow_execution::invoke(&self.engine, req).await
            }
            .await,
        )
    }

    async fn signal_workflow_execution(
        &self,
        request: Request<pb::SignalWorkflowExecutionRequest>,
    ) -> RpcResult<pb::SignalWorkflowExecutionResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_execution(&req.namespace, req.workflow_execution.as_ref().map(|e| e.workflow_id.as_str()))?;
                validate::signal_name(self.engine.limits(), &req.signal_name)?;
                validate::blob(self.engine.limits(), req.input.as_ref())?;
                api::signal_workflow_execution::invoke(&self.engine, req).await
            }
            .await,
        )
    }

    async fn request_cancel_workflow_execution(
        &self,
        request: Request<pb::RequestCancelWorkflowExecutionRequest>,
    ) -> RpcResult<pb::RequestCancelWorkflowExecutionResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_execution(&req.namespace, req.workflow_execution.as_ref().map(|e| e.workflow_id.as_str()))?;
                api::request_cancel_workflow_execution::invoke(&self.engine, req).await
            }
            .await,
        )
    }

    async fn query_workflow(&self, request: Request<pb::QueryWorkflowRequest>) -> RpcResult<pb::QueryWorkflowResponse> {
        let wait = long_poll_wait(&request, MAX_TASK_POLL);
        let req = request.into_inner();
        reply(
            async {
                self.check_execution(&req.namespace, req.execution.as_ref().map(|e| e.workflow_id.as_str()))?;
                let query = req.query.as_ref();
                if query.is_none_or(|q| q.query_type.is_empty()) {
                    return Err(Error::InvalidArgument("QueryType is not set on request.".into()));
                }
                validate::blob(self.engine.limits(), query.and_then(|q| q.query_args.as_ref()))?;
                api::query_workflow::invoke(&self.engine, req, wait).await
            }
            .await,
        )
    }

    async fn respond_query_task_completed(
        &self,
        request: Request<pb::RespondQueryTaskCompletedRequest>,
    ) -> RpcResult<pb::RespondQueryTaskCompletedResponse> {
        reply(api::query_workflow::answer(&self.engine, request.into_inner()))
    }

    async fn update_workflow_execution(
        &self,
        request: Request<pb::UpdateWorkflowExecutionRequest>,
    ) -> RpcResult<pb::UpdateWorkflowExecutionResponse> {
        let wait = super::update_wait(&request);
        let req = request.into_inner();
        reply(
            async {
                self.check_update(&req)?;
                api::update_workflow_execution::invoke(&self.engine, req, wait).await
            }
            .await,
        )
    }

    async fn poll_workflow_execution_update(
        &self,
        request: Request<pb::PollWorkflowExecutionUpdateRequest>,
    ) -> RpcResult<pb::PollWorkflowExecutionUpdateResponse> {
        let wait = super::update_wait(&request);
        let req = request.into_inner();
        reply(
            async {
                let execution = req.update_ref.as_ref().and_then(|r| r.workflow_execution.as_ref());
                self.check_execution(&req.namespace, execution.map(|e| e.workflow_id.as_str()))?;
                api::update_workflow_execution::poll(&self.engine, req, wait).await
            }
            .await,
        )
    }

    async fn execute_multi_operation(
        &self,
        request: Request<pb::ExecuteMultiOperationRequest>,
    ) -> RpcResult<pb::ExecuteMultiOperationResponse> {
        let wait = long_poll_wait(&request, MAX_TASK_POLL);
        reply(self.multi_operation(request.into_inner(), wait).await)
    }

    async fn reset_sticky_task_queue(
        &self,
        request: Request<pb::ResetStickyTaskQueueRequest>,
    ) -> RpcResult<pb::ResetStickyTaskQueueResponse> {
        let req = request.into_inner();
        reply(
            async {
                self.check_execution(&req.namespace, req.execution.as_ref().map(|e| e.workflow_id.as_str()))?;
                api::reset_sticky_task_queue::invoke(&self.engine, req).await
            }
            .await,
        )
    }

    async fn shutdown_worker(
        &self,
        request: Request<pb::ShutdownWorkerRequest>,
    ) -> RpcResult<pb::ShutdownWorkerResponse> {
        Ok(Response::new(api::shutdown_worker::invoke(&self.engine, request.into_inner())))
    }

    async fn record_worker_heartbeat(
        &self,
        _request: Request<pb::RecordWorkerHeartbeatRequest>,
    ) -> RpcResult<pb::RecordWorkerHeartbeatResponse> {
        Ok(Response::new(pb::RecordWorkerHeartbeatResponse::default()))
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
}
