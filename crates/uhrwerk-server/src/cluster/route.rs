//! Routing of client calls in a cluster: a tower layer in front of the gRPC services reads
//! each WorkflowService request's workflow (or task queue, or schedule) and, when another node
//! serves it, passes the call on to that node unchanged (the same bytes, headers and deadline;
//! a client that goes away cancels the forwarded call too). A forwarded call is marked, and the
//! node that receives it serves it whatever its own view says: a call is forwarded at most
//! once, and a node that does not hold the shard any more fails the commit at the fence with
//! UNAVAILABLE, which clients retry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::Message;
use tonic::body::Body;
use uhrwerk_proto::temporal::api::common::v1::WorkflowExecution;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::{Cluster, Owner};
use crate::unary::{BoxError, Unary};

/// Marks a forwarded call, with the node that forwarded it.
pub const FORWARDED: &str = "uhrwerk-forwarded-by";
const WORKFLOW_SERVICE: &str = "/temporal.api.workflowservice.v1.WorkflowService/";

/// The layer; without a cluster it passes everything through.
#[derive(Clone)]
pub struct RouteLayer {
    cluster: Option<Arc<Cluster>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl RouteLayer {
    /// `shutdown` turns true when this node stops: forwarded long polls end then.
    pub fn new(cluster: Option<Arc<Cluster>>, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        Self { cluster, shutdown }
    }
}

impl<S> tower_layer::Layer<S> for RouteLayer {
    type Service = Route<S>;

    fn layer(&self, inner: S) -> Route<S> {
        Route { inner, cluster: self.cluster.clone(), shutdown: self.shutdown.clone() }
    }
}

#[derive(Clone)]
pub struct Route<S> {
    inner: S,
    cluster: Option<Arc<Cluster>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Calls that may wait long on the node that serves them (long polls).
fn long_poll(method: &str) -> bool {
    method.starts_with("Poll") || method == "GetWorkflowExecutionHistory"
}

impl<S> tower_service::Service<http::Request<Body>> for Route<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = req.uri().path().strip_prefix(WORKFLOW_SERVICE).map(str::to_string);
        let (Some(cluster), Some(method), false) =
            (self.cluster.clone(), method, req.headers().contains_key(FORWARDED))
        else {
            let call = self.inner.call(req);
            return Box::pin(async move { call.await.map_err(Into::into) });
        };
        // The inner service is ready; keep it for this call and leave a clone for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let mut shutdown = self.shutdown.clone();
        Box::pin(async move {
            let mut call = Unary::read(req).await?;
            let owner = call
                .message()
                .and_then(|message| route_key(&method, &message))
                .map_or(Owner::Local, |key| key.owner(&cluster));
            let Owner::Node(node) = owner else {
                return inner.call(call.into_request()).await.map_err(Into::into);
            };
            cluster.metrics.forwarded_calls.with_label_values(&[method.as_str()]).inc();
            if let Ok(by) = http::HeaderValue::from_str(cluster.node()) {
                call.parts.headers.insert(FORWARDED, by);
            }
            let unreachable = |e: &dyn std::fmt::Display| {
                tonic::Status::unavailable(format!("the node that serves this call ({node}) is unreachable: {e}"))
                    .into_http::<Body>()
            };
            let mut channel = match cluster.peers.channel(&node) {
                Ok(channel) => channel,
                Err(e) => return Ok(unreachable(&e)),
            };
            if let Err(e) = std::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut channel, cx)).await {
                return Ok(unreachable(&e));
            }
            let forwarded = tower_service::Service::call(&mut channel, call.into_request());
            // A long poll passed on to another node ends when this node stops (its worker polls
            // again elsewhere), as the polls it serves itself do; other calls finish.
            let stopping = async move {
                if long_poll(&method) {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                response = forwarded => match response {
                    Ok(response) => Ok(response),
                    Err(e) => Ok(unreachable(&e)),
                },
                () = stopping => Ok(tonic::Status::unavailable("this node is shutting down").into_http::<Body>()),
            }
        })
    }
}

/// What decides where a call is served.
#[derive(Debug, PartialEq, Eq)]
enum Key {
    /// The workflow's shard (schedules go by their id, in the same way).
    Workflow(String, String),
    /// The task queue's owner.
    Queue(String, String),
}

impl Key {
    fn owner(&self, cluster: &Cluster) -> Owner {
        match self {
            Key::Workflow(namespace, id) => cluster.workflow_owner(namespace, id),
            Key::Queue(namespace, queue) => cluster.queue_owner(namespace, queue),
        }
    }
}

fn id(execution: Option<&WorkflowExecution>) -> String {
    execution.map(|e| e.workflow_id.clone()).unwrap_or_default()
}

/// The routing key of a WorkflowService request; `None` for calls any node serves (lists,
/// namespaces, system information) and for requests that do not decode (their handler
/// answers them with the right error).
fn route_key(method: &str, body: &[u8]) -> Option<Key> {
    macro_rules! msg {
        ($t:ident) => {
            pb::$t::decode(body).ok()?
        };
    }
    let token = |token: &[u8]| -> Option<Key> {
        if let Ok(t) = uhrwerk_core::token::TaskToken::decode_bytes(token) {
            return Some(Key::Workflow(t.namespace, t.workflow_id));
        }
        let (_, namespace, workflow_id) = crate::engine::api::query_workflow::parse_query_token(token)?;
        Some(Key::Workflow(namespace.to_string(), workflow_id.to_string()))
    };
    use Key::{Queue, Workflow};
    Some(match method {
        "StartWorkflowExecution" => {
            let r = msg!(StartWorkflowExecutionRequest);
            Workflow(r.namespace, r.workflow_id)
        }
        "SignalWithStartWorkflowExecution" => {
            let r = msg!(SignalWithStartWorkflowExecutionRequest);
            Workflow(r.namespace, r.workflow_id)
        }
        "ExecuteMultiOperation" => {
            let r = msg!(ExecuteMultiOperationRequest);
            use pb::execute_multi_operation_request::operation::Operation;
            let id = r.operations.iter().find_map(|op| match op.operation.as_ref()? {
                Operation::StartWorkflow(s) => Some(s.workflow_id.clone()),
                Operation::UpdateWorkflow(u) => Some(id(u.workflow_execution.as_ref())),
            })?;
            Workflow(r.namespace, id)
        }
        "SignalWorkflowExecution" => {
            let r = msg!(SignalWorkflowExecutionRequest);
            Workflow(r.namespace, id(r.workflow_execution.as_ref()))
        }
        "RequestCancelWorkflowExecution" => {
            let r = msg!(RequestCancelWorkflowExecutionRequest);
            Workflow(r.namespace, id(r.workflow_execution.as_ref()))
        }
        "TerminateWorkflowExecution" => {
            let r = msg!(TerminateWorkflowExecutionRequest);
            Workflow(r.namespace, id(r.workflow_execution.as_ref()))
        }
        "DeleteWorkflowExecution" => {
            let r = msg!(DeleteWorkflowExecutionRequest);
            Workflow(r.namespace, id(r.workflow_execution.as_ref()))
        }
        "ResetWorkflowExecution" => {
            let r = msg!(ResetWorkflowExecutionRequest);
            Workflow(r.namespace, id(r.workflow_execution.as_ref()))
        }
        "UpdateWorkflowExecution" => {
            let r = msg!(UpdateWorkflowExecutionRequest);
            Workflow(r.namespace, id(r.workflow_execution.as_ref()))
        }
        "PollWorkflowExecutionUpdate" => {
            let r = msg!(PollWorkflowExecutionUpdateRequest);
            Workflow(r.namespace, id(r.update_ref.as_ref().and_then(|u| u.workflow_execution.as_ref())))
        }
        "DescribeWorkflowExecution" => {
            let r = msg!(DescribeWorkflowExecutionRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "GetWorkflowExecutionHistory" => {
            let r = msg!(GetWorkflowExecutionHistoryRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "GetWorkflowExecutionHistoryReverse" => {
            let r = msg!(GetWorkflowExecutionHistoryReverseRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "QueryWorkflow" => {
            let r = msg!(QueryWorkflowRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "ResetStickyTaskQueue" => {
            let r = msg!(ResetStickyTaskQueueRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "PauseActivity" => {
            let r = msg!(PauseActivityRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "UnpauseActivity" => {
            let r = msg!(UnpauseActivityRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "ResetActivity" => {
            let r = msg!(ResetActivityRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "UpdateActivityOptions" => {
            let r = msg!(UpdateActivityOptionsRequest);
            Workflow(r.namespace, id(r.execution.as_ref()))
        }
        "RespondActivityTaskCompletedById" => {
            let r = msg!(RespondActivityTaskCompletedByIdRequest);
            Workflow(r.namespace, r.workflow_id)
        }
        "RespondActivityTaskFailedById" => {
            let r = msg!(RespondActivityTaskFailedByIdRequest);
            Workflow(r.namespace, r.workflow_id)
        }
        "RespondActivityTaskCanceledById" => {
            let r = msg!(RespondActivityTaskCanceledByIdRequest);
            Workflow(r.namespace, r.workflow_id)
        }
        "RecordActivityTaskHeartbeatById" => {
            let r = msg!(RecordActivityTaskHeartbeatByIdRequest);
            Workflow(r.namespace, r.workflow_id)
        }
        "RespondWorkflowTaskCompleted" => token(&msg!(RespondWorkflowTaskCompletedRequest).task_token)?,
        "RespondWorkflowTaskFailed" => token(&msg!(RespondWorkflowTaskFailedRequest).task_token)?,
        "RespondActivityTaskCompleted" => token(&msg!(RespondActivityTaskCompletedRequest).task_token)?,
        "RespondActivityTaskFailed" => token(&msg!(RespondActivityTaskFailedRequest).task_token)?,
        "RespondActivityTaskCanceled" => token(&msg!(RespondActivityTaskCanceledRequest).task_token)?,
        "RecordActivityTaskHeartbeat" => token(&msg!(RecordActivityTaskHeartbeatRequest).task_token)?,
        "RespondQueryTaskCompleted" => token(&msg!(RespondQueryTaskCompletedRequest).task_token)?,
        "PollWorkflowTaskQueue" => {
            let r = msg!(PollWorkflowTaskQueueRequest);
            Queue(r.namespace, r.task_queue?.name)
        }
        "PollActivityTaskQueue" => {
            let r = msg!(PollActivityTaskQueueRequest);
            Queue(r.namespace, r.task_queue?.name)
        }
        "DescribeTaskQueue" => {
            let r = msg!(DescribeTaskQueueRequest);
            Queue(r.namespace, r.task_queue?.name)
        }
        "ShutdownWorker" => {
            let r = msg!(ShutdownWorkerRequest);
            Queue(r.namespace, r.sticky_task_queue)
        }
        "CreateSchedule" => {
            let r = msg!(CreateScheduleRequest);
            Workflow(r.namespace, r.schedule_id)
        }
        "DescribeSchedule" => {
            let r = msg!(DescribeScheduleRequest);
            Workflow(r.namespace, r.schedule_id)
        }
        "UpdateSchedule" => {
            let r = msg!(UpdateScheduleRequest);
            Workflow(r.namespace, r.schedule_id)
        }
        "PatchSchedule" => {
            let r = msg!(PatchScheduleRequest);
            Workflow(r.namespace, r.schedule_id)
        }
        "DeleteSchedule" => {
            let r = msg!(DeleteScheduleRequest);
            Workflow(r.namespace, r.schedule_id)
        }
        "ListScheduleMatchingTimes" => {
            let r = msg!(ListScheduleMatchingTimesRequest);
            Workflow(r.namespace, r.schedule_id)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(message: &impl Message) -> Vec<u8> {
        let bytes = message.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
        out
    }

    #[test]
    fn calls_are_keyed_by_their_workflow_queue_or_token() {
        let start = pb::StartWorkflowExecutionRequest {
            namespace: "ns".into(),
            workflow_id: "wf".into(),
            ..Default::default()
        };
        let body = framed(&start);
        let key = route_key("StartWorkflowExecution", &crate::unary::grpc_message(&body, false).unwrap());
        assert_eq!(key, Some(Key::Workflow("ns".into(), "wf".into())));
        let token = uhrwerk_core::token::TaskToken {
            kind: 1,
            namespace: "ns".into(),
            workflow_id: "wf2".into(),
            run_id: "r".into(),
            scheduled_event_id: 2,
            ..Default::default()
        };
        let done = pb::RespondWorkflowTaskCompletedRequest { task_token: token.encode(), ..Default::default() };
        let key = route_key("RespondWorkflowTaskCompleted", &done.encode_to_vec());
        assert_eq!(key, Some(Key::Workflow("ns".into(), "wf2".into())));
        let query = crate::engine::api::query_workflow::query_token("q1", "ns", "wf3");
        let answer = pb::RespondQueryTaskCompletedRequest { task_token: query, ..Default::default() };
        let key = route_key("RespondQueryTaskCompleted", &answer.encode_to_vec());
        assert_eq!(key, Some(Key::Workflow("ns".into(), "wf3".into())));
        let poll = pb::PollActivityTaskQueueRequest {
            namespace: "ns".into(),
            task_queue: Some(uhrwerk_proto::temporal::api::taskqueue::v1::TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            route_key("PollActivityTaskQueue", &poll.encode_to_vec()),
            Some(Key::Queue("ns".into(), "q".into()))
        );
        assert_eq!(route_key("ListWorkflowExecutions", &[]), None);
        assert_eq!(route_key("StartWorkflowExecution", &[0xff, 0xff]), None, "garbage is served locally");
    }
}
