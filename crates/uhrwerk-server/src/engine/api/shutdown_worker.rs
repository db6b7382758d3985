//! ShutdownWorker: the worker's sticky queue is forgotten, so that its runs' next workflow tasks
//! go to the normal queue at once instead of waiting out the sticky schedule-to-start timeout.

use std::sync::Arc;

use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;

pub fn invoke(engine: &Arc<Engine>, req: pb::ShutdownWorkerRequest) -> pb::ShutdownWorkerResponse {
    if !req.sticky_task_queue.is_empty() {
        engine.matching.forget_sticky(&req.namespace, &req.sticky_task_queue);
    }
    pb::ShutdownWorkerResponse::default()
}
