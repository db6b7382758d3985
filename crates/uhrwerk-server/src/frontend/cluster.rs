//! The internal service other cluster nodes call (`uhrwerk.cluster.v1.Cluster`): tasks handed
//! to this node's matching, matched tasks to record started for runs this node serves, and the
//! parts of transfer tasks that change runs this node serves.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};
use uhrwerk_proto::cluster::cluster_server::{Cluster, ClusterServer};
use uhrwerk_proto::cluster::{
    AddTaskRequest, AddTaskResponse, CarryOutRequest, CarryOutResponse, RefreshRequest, RefreshResponse,
    StartTaskRequest, StartTaskResponse,
};
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_storage::{TaskKind, TransferRow};

use crate::engine::{Engine, api};
use crate::matching::{Dispatch, from_wire};

pub struct Internal {
    engine: Arc<Engine>,
    namespaces: crate::namespaces::Namespaces,
    scheduler: Arc<crate::schedules::Scheduler>,
}

/// The internal service over `engine`.
pub fn service(
    engine: Arc<Engine>,
    namespaces: crate::namespaces::Namespaces,
    scheduler: Arc<crate::schedules::Scheduler>,
) -> ClusterServer<Internal> {
    ClusterServer::new(Internal { engine, namespaces, scheduler })
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

fn bad(what: &str) -> Status {
    Status::invalid_argument(format!("malformed internal request: {what}"))
}

#[tonic::async_trait]
impl Cluster for Internal {
    async fn add_task(&self, request: Request<AddTaskRequest>) -> Result<Response<AddTaskResponse>, Status> {
        let req = request.into_inner();
        let task = req.task.and_then(from_wire).ok_or_else(|| bad("task"))?;
        let accepted = match task {
            Dispatch::Query(query) if req.only_if_polled => self.engine.matching().accept_if_polled(query),
            task => {
                self.engine.matching().accept(task, &req.sticky_queue);
                true
            }
        };
        Ok(Response::new(AddTaskResponse { accepted }))
    }

    async fn start_task(&self, request: Request<StartTaskRequest>) -> Result<Response<StartTaskResponse>, Status> {
        let req = request.into_inner();
        let task = req.task.and_then(from_wire).ok_or_else(|| bad("task"))?;
        let activity = matches!(&task, Dispatch::Task(t, _) if t.kind == TaskKind::Activity);
        let response = if activity {
            let poll = workflowservice_pb::PollActivityTaskQueueRequest::decode(req.poll.as_slice())
                .map_err(|_| bad("poll"))?;
            api::poll_activity_task_queue::start_here(&self.engine, &poll, task).await?.encode_to_vec()
        } else {
            let poll = workflowservice_pb::PollWorkflowTaskQueueRequest::decode(req.poll.as_slice())
                .map_err(|_| bad("poll"))?;
            api::poll_workflow_task_queue::start_here(&self.engine, &poll, task).await?.encode_to_vec()
        };
        Ok(Response::new(StartTaskResponse { response }))
    }

    async fn refresh(&self, _request: Request<RefreshRequest>) -> Result<Response<RefreshResponse>, Status> {
        self.namespaces.refresh().await?;
        self.engine.search_attributes().refresh().await?;
        Ok(Response::new(RefreshResponse {}))
    }

    async fn wake_schedule(
        &self,
        request: Request<uhrwerk_proto::cluster::WakeScheduleRequest>,
    ) -> Result<Response<uhrwerk_proto::cluster::WakeScheduleResponse>, Status> {
        let req = request.into_inner();
        self.scheduler.run_closed(&req.namespace, &req.schedule_id);
        Ok(Response::new(uhrwerk_proto::cluster::WakeScheduleResponse {}))
    }

    async fn queue_hour(
        &self,
        request: Request<uhrwerk_proto::cluster::QueueHourRequest>,
    ) -> Result<Response<uhrwerk_proto::cluster::QueueHourResponse>, Status> {
        let req = request.into_inner();
        let kind = TaskKind::from_i64(i64::from(req.kind)).ok_or_else(|| bad("kind"))?;
        let minutes = self
            .engine
            .matching()
            .last_hour(&req.namespace, &req.task_queue, kind)
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(uhrwerk_proto::cluster::QueueHourResponse { minutes }))
    }

    async fn carry_out(&self, request: Request<CarryOutRequest>) -> Result<Response<CarryOutResponse>, Status> {
        let req = request.into_inner();
        let task = uhrwerk_core::transfer::TransferTask::decode(req.task.as_slice()).map_err(|_| bad("task"))?;
        let row = TransferRow { namespace: req.namespace, workflow_id: req.workflow_id, run_id: req.run_id, task };
        Ok(Response::new(self.engine.carry_out_here(&row, req.child as usize).await?))
    }
}
