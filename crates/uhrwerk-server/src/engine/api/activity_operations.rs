//! The operator RPCs on a run's pending activities: PauseActivity, UnpauseActivity,
//! ResetActivity and UpdateActivityOptions. Each is one transition of the run
//! (`kernel::activity_ops`); none writes an event.

use std::sync::Arc;

use uhrwerk_core::kernel::{self, ActivitySelector};
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use crate::engine::Engine;
use crate::error::{Error, Result};

fn selector_required() -> Error {
    Error::InvalidArgument("Either Activity.Id or Activity.Type should be set on request.".into())
}

/// A delay drawn uniformly from `[0, jitter)`, as Temporal spreads unpaused and reset attempts.
fn jitter_delay(jitter_ms: i64) -> i64 {
    if jitter_ms <= 0 {
        return 0;
    }
    // uuid's v4 generator is the process's source of randomness already; one draw is enough.
    (uuid::Uuid::new_v4().as_u128() % jitter_ms as u128) as i64
}

pub async fn pause(engine: &Arc<Engine>, req: pb::PauseActivityRequest) -> Result<pb::PauseActivityResponse> {
    use pb::pause_activity_request::Activity;
    let selector = match req.activity {
        Some(Activity::Id(id)) => ActivitySelector::Id(id),
        Some(Activity::Type(name)) => ActivitySelector::Type(name),
        None => return Err(selector_required()),
    };
    let execution = req.execution.unwrap_or_default();
    let request = kernel::PauseRequest { identity: req.identity, reason: req.reason, request_id: req.request_id };
    engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
            kernel::pause_activities(ctx, st, &selector, &request)
        })
        .await?;
    Ok(pb::PauseActivityResponse::default())
}

pub async fn unpause(engine: &Arc<Engine>, req: pb::UnpauseActivityRequest) -> Result<pb::UnpauseActivityResponse> {
    use pb::unpause_activity_request::Activity;
    let selector = match req.activity {
        Some(Activity::Id(id)) => ActivitySelector::Id(id),
        Some(Activity::Type(name)) => ActivitySelector::Type(name),
        Some(Activity::UnpauseAll(true)) => ActivitySelector::All,
        _ => return Err(selector_required()),
    };
    let execution = req.execution.unwrap_or_default();
    let options = kernel::UnpauseOptions {
        reset_attempts: req.reset_attempts,
        reset_heartbeat: req.reset_heartbeat,
        delay_ms: jitter_delay(time::duration_ms(&req.jitter)),
    };
    engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
            kernel::unpause_activities(ctx, st, &selector, options)
        })
        .await?;
    Ok(pb::UnpauseActivityResponse::default())
}

pub async fn reset(engine: &Arc<Engine>, req: pb::ResetActivityRequest) -> Result<pb::ResetActivityResponse> {
    use pb::reset_activity_request::Activity;
    let selector = match req.activity {
        Some(Activity::Id(id)) => ActivitySelector::Id(id),
        Some(Activity::Type(name)) => ActivitySelector::Type(name),
        Some(Activity::MatchAll(true)) => ActivitySelector::All,
        _ => return Err(selector_required()),
    };
    let execution = req.execution.unwrap_or_default();
    let options = kernel::ResetOptions {
        reset_heartbeat: req.reset_heartbeat,
        keep_paused: req.keep_paused,
        delay_ms: jitter_delay(time::duration_ms(&req.jitter)),
        restore_original_options: req.restore_original_options,
    };
    engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
            kernel::reset_activities(ctx, st, &selector, options)
        })
        .await?;
    Ok(pb::ResetActivityResponse::default())
}

pub async fn update_options(
    engine: &Arc<Engine>,
    req: pb::UpdateActivityOptionsRequest,
) -> Result<pb::UpdateActivityOptionsResponse> {
    use pb::update_activity_options_request::Activity;
    let selector = match req.activity {
        Some(Activity::Id(id)) => ActivitySelector::Id(id),
        Some(Activity::Type(name)) => ActivitySelector::Type(name),
        Some(Activity::MatchAll(true)) => ActivitySelector::All,
        _ => return Err(selector_required()),
    };
    let update = match (req.update_mask, req.restore_original) {
        (Some(_), true) => {
            return Err(Error::InvalidArgument("Both UpdateMask and RestoreOriginal are provided".into()));
        }
        (_, true) => kernel::OptionsUpdate::RestoreOriginal,
        (None, false) => return Err(Error::InvalidArgument("UpdateMask is not provided".into())),
        (Some(mask), false) => {
            let options = req
                .activity_options
                .ok_or_else(|| Error::InvalidArgument("ActivityOptions are not provided".into()))?;
            kernel::OptionsUpdate::Merge { options: Box::new(options), paths: mask.paths }
        }
    };
    let execution = req.execution.unwrap_or_default();
    let activity_options = engine
        .mutate(&req.namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
            kernel::update_activity_options(ctx, st, &selector, &update)
        })
        .await?;
    Ok(pb::UpdateActivityOptionsResponse { activity_options: Some(activity_options) })
}
