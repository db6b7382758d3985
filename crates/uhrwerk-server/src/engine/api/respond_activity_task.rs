//! The activity outcome RPCs: RespondActivityTaskCompleted, -Failed, -Canceled and
//! RecordActivityTaskHeartbeat, each by task token or by ids (the `*ById` variants that async
//! completion uses through a client). One entry point takes the attempt and what happened to it.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_core::token::TaskToken;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::failure::v1 as failure_pb;

use crate::engine::Engine;
use crate::error::Result;

/// What the worker reports about an activity attempt.
pub enum Outcome {
    Completed(Option<common_pb::Payloads>),
    /// The failure and the last heartbeat details.
    Failed(Box<failure_pb::Failure>, Option<common_pb::Payloads>),
    Canceled(Option<common_pb::Payloads>),
    Heartbeat(Option<common_pb::Payloads>),
}

/// The attempt a call names.
pub enum Target {
    Token(TaskToken),
    /// The started attempt of activity `activity_id`; an empty `run_id` means the latest run.
    Id {
        namespace: String,
        workflow_id: String,
        run_id: String,
        activity_id: String,
    },
}

/// Applies `outcome` to the attempt; returns the heartbeat's answer (whether the attempt should
/// stop, and why), the default for the other outcomes.
pub async fn invoke(
    engine: &Arc<Engine>,
    target: Target,
    identity: String,
    outcome: Outcome,
) -> Result<kernel::HeartbeatAnswer> {
    let outcome = match outcome {
        // As Temporal: a result over the blob limit is not kept; the attempt fails for good.
        Outcome::Completed(result) if too_large(engine, result.as_ref()) => {
            Outcome::Failed(Box::new(result_too_large()), None)
        }
        other => other,
    };
    let (namespace, workflow_id, run_id, target) = match target {
        Target::Token(token) => {
            (token.namespace.clone(), token.workflow_id.clone(), token.run_id.clone(), Target::Token(token))
        }
        Target::Id { namespace, workflow_id, run_id, activity_id } => {
            let named =
                Target::Id { namespace: String::new(), workflow_id: String::new(), run_id: String::new(), activity_id };
            (namespace, workflow_id, run_id, named)
        }
    };
    engine
        .mutate(&namespace, &workflow_id, &run_id, move |ctx, st| {
            let token = match target {
                Target::Token(token) => token,
                Target::Id { activity_id, .. } => kernel::activity_token_by_id(st, &activity_id)?,
            };
            match outcome {
                Outcome::Completed(result) => {
                    kernel::complete_activity(ctx, st, &token, result, &identity).map(|()| Default::default())
                }
                Outcome::Failed(failure, details) => {
                    kernel::fail_activity(ctx, st, &token, *failure, &identity, details).map(|()| Default::default())
                }
                Outcome::Canceled(details) => {
                    kernel::cancel_activity(ctx, st, &token, details, &identity).map(|()| Default::default())
                }
                Outcome::Heartbeat(details) => kernel::record_activity_heartbeat(ctx, st, &token, details),
            }
        })
        .await
}

fn too_large(engine: &Engine, payloads: Option<&common_pb::Payloads>) -> bool {
    let size: usize = payloads.map_or(0, |p| p.payloads.iter().map(prost::Message::encoded_len).sum());
    let limits = engine.limits();
    size > limits.blob_size_error && size > limits.blob_size_warn
}

/// The failure an activity gets when its result is over the blob limit, as Temporal writes it.
fn result_too_large() -> failure_pb::Failure {
    failure_pb::Failure {
        message: "Complete result exceeds size limit.".into(),
        failure_info: Some(failure_pb::failure::FailureInfo::ServerFailureInfo(failure_pb::ServerFailureInfo {
            non_retryable: true,
        })),
        ..Default::default()
    }
}
