//! Activity outcomes reported by id (`*ById`, used for async completion through a client) and
//! activity cancellation; the by-token variants live beside the other handlers in `workflow.rs`.

use uhrwerk_core::kernel;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::{Frontend, validate};
use crate::error::{Error, Result};

/// What a by-id call does once its activity is found.
enum Outcome {
    Completed(Option<uhrwerk_proto::temporal::api::common::v1::Payloads>),
    Failed(
        Box<uhrwerk_proto::temporal::api::failure::v1::Failure>,
        Option<uhrwerk_proto::temporal::api::common::v1::Payloads>,
    ),
    Canceled(Option<uhrwerk_proto::temporal::api::common::v1::Payloads>),
    Heartbeat(Option<uhrwerk_proto::temporal::api::common::v1::Payloads>),
}

impl Frontend {
    /// Applies `outcome` to the started activity `activity_id` of a run; returns cancel_requested.
    async fn by_id(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        activity_id: &str,
        identity: String,
        outcome: Outcome,
    ) -> Result<bool> {
        self.namespaces.check(namespace)?;
        validate::workflow_id(self.engine.limits(), workflow_id)?;
        if activity_id.is_empty() {
            return Err(Error::InvalidArgument("ActivityId is not set on request.".into()));
        }
        let activity_id = activity_id.to_string();
        self.engine
            .mutate(namespace, workflow_id, run_id, move |ctx, st| {
                let token = kernel::activity_token_by_id(st, &activity_id)?;
                match outcome {
                    Outcome::Completed(result) => {
                        kernel::complete_activity(ctx, st, &token, result, &identity).map(|()| false)
                    }
                    Outcome::Failed(failure, details) => {
                        kernel::fail_activity(ctx, st, &token, *failure, &identity, details).map(|()| false)
                    }
                    Outcome::Canceled(details) => {
                        kernel::cancel_activity(ctx, st, &token, details, &identity).map(|()| false)
                    }
                    Outcome::Heartbeat(details) => kernel::record_activity_heartbeat(ctx, st, &token, details),
                }
            })
            .await
    }

    pub(super) async fn completed_by_id(
        &self,
        req: pb::RespondActivityTaskCompletedByIdRequest,
    ) -> Result<pb::RespondActivityTaskCompletedByIdResponse> {
        let outcome = if validate::blob(self.engine.limits(), req.result.as_ref()).is_err() {
            Outcome::Failed(Box::new(validate::result_too_large()), None)
        } else {
            Outcome::Completed(req.result)
        };
        self.by_id(&req.namespace, &req.workflow_id, &req.run_id, &req.activity_id, req.identity, outcome).await?;
        Ok(Default::default())
    }

    pub(super) async fn failed_by_id(
        &self,
        req: pb::RespondActivityTaskFailedByIdRequest,
    ) -> Result<pb::RespondActivityTaskFailedByIdResponse> {
        let outcome = Outcome::Failed(Box::new(req.failure.unwrap_or_default()), req.last_heartbeat_details);
        self.by_id(&req.namespace, &req.workflow_id, &req.run_id, &req.activity_id, req.identity, outcome).await?;
        Ok(Default::default())
    }

    pub(super) async fn canceled_by_id(
        &self,
        req: pb::RespondActivityTaskCanceledByIdRequest,
    ) -> Result<pb::RespondActivityTaskCanceledByIdResponse> {
        self.by_id(
            &req.namespace,
            &req.workflow_id,
            &req.run_id,
            &req.activity_id,
            req.identity,
            Outcome::Canceled(req.details),
        )
        .await?;
        Ok(Default::default())
    }

    pub(super) async fn heartbeat_by_id(
        &self,
        req: pb::RecordActivityTaskHeartbeatByIdRequest,
    ) -> Result<pb::RecordActivityTaskHeartbeatByIdResponse> {
        validate::blob(self.engine.limits(), req.details.as_ref())?;
        let cancel_requested = self
            .by_id(
                &req.namespace,
                &req.workflow_id,
                &req.run_id,
                &req.activity_id,
                req.identity,
                Outcome::Heartbeat(req.details),
            )
            .await?;
        Ok(pb::RecordActivityTaskHeartbeatByIdResponse { cancel_requested, ..Default::default() })
    }

    pub(super) async fn activity_canceled(
        &self,
        req: pb::RespondActivityTaskCanceledRequest,
    ) -> Result<pb::RespondActivityTaskCanceledResponse> {
        let token = super::workflow::token(&req.task_token, &req.namespace)?;
        let t = token.clone();
        self.engine
            .mutate(&token.namespace, &token.workflow_id, &token.run_id, move |ctx, st| {
                kernel::cancel_activity(ctx, st, &t, req.details, &req.identity)
            })
            .await?;
        Ok(Default::default())
    }

    pub(super) async fn request_cancel(
        &self,
        req: pb::RequestCancelWorkflowExecutionRequest,
    ) -> Result<pb::RequestCancelWorkflowExecutionResponse> {
        self.namespaces.check(&req.namespace)?;
        let execution = req.workflow_execution.unwrap_or_default();
        validate::workflow_id(self.engine.limits(), &execution.workflow_id)?;
        let first_run = req.first_execution_run_id;
        let (reason, identity, request_id) = (req.reason, req.identity, req.request_id);
        self.engine
            .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
                if !first_run.is_empty() && st.first_execution_run_id != first_run {
                    return Err(kernel::Error::NotFound("workflow execution not found".into()));
                }
                kernel::request_cancel_run(ctx, st, &reason, &identity, &request_id)
            })
            .await?;
        Ok(Default::default())
    }
}
