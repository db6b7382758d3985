//! Closing a run from a workflow task or a timeout, and the successors that follow a close:
//! continue-as-new, workflow retry (only with a retry policy), and the chain bookkeeping that
//! lets clients follow `new_execution_run_id`.

use crate::pb::command::v1 as command_pb;
use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::failure::v1 as failure_pb;
use crate::pb::history::v1 as history_pb;
use crate::retry::{self, Decision};
use crate::state::RunState;
use crate::time::{self, Millis};

use super::start::{RunSpec, create_run};
use super::{Ctx, Successor, close_run, end_task_before_forced_close};
use enums_pb::{ContinueAsNewInitiator as Initiator, EventType, RetryState, WorkflowExecutionStatus as Status};
use history_pb::history_event::Attributes;

/// What differs in a successor from the run it follows.
struct Next {
    initiator: Initiator,
    attempt: i32,
    backoff_ms: Millis,
    input: Option<common_pb::Payloads>,
    continued_failure: Option<failure_pb::Failure>,
    last_completion_result: Option<common_pb::Payloads>,
}

/// Creates the successor run and hands it to the engine through `ctx.successor`.
fn successor(
    ctx: &mut Ctx<'_>,
    st: &RunState,
    next: Next,
    overrides: Option<&command_pb::ContinueAsNewWorkflowExecutionCommandAttributes>,
) -> String {
    let run_id = if ctx.successor_run_id.is_empty() {
        format!("{}-{}", st.run_id, st.next_event_id)
    } else {
        ctx.successor_run_id.clone()
    };
    let pick = |v: Option<String>, current: &str| v.filter(|s| !s.is_empty()).unwrap_or_else(|| current.to_string());
    let spec = RunSpec {
        user_metadata: None,
        namespace: st.namespace.clone(),
        workflow_id: st.workflow_id.clone(),
        run_id: run_id.clone(),
        first_execution_run_id: st.first_execution_run_id.clone(),
        workflow_type: pick(
            overrides.and_then(|o| o.workflow_type.as_ref().map(|t| t.name.clone())),
            &st.workflow_type,
        ),
        task_queue: pick(overrides.and_then(|o| o.task_queue.as_ref().map(|q| q.name.clone())), &st.task_queue),
        input: next.input,
        header: overrides.map_or_else(|| st.header.clone(), |o| o.header.clone()),
        memo: overrides.and_then(|o| o.memo.clone()).or_else(|| st.memo.clone()),
        search_attributes: overrides.and_then(|o| o.search_attributes.clone()).or_else(|| st.search_attributes.clone()),
        execution_timeout_ms: st.execution_timeout_ms,
        run_timeout_ms: overrides
            .map(|o| time::duration_ms(&o.workflow_run_timeout))
            .filter(|t| *t > 0)
            .unwrap_or(st.run_timeout_ms),
        task_timeout_ms: overrides
            .map(|o| time::duration_ms(&o.workflow_task_timeout))
            .filter(|t| *t > 0)
            .unwrap_or(st.workflow_task_timeout_ms),
        retry_policy: overrides.and_then(|o| o.retry_policy.clone()).or_else(|| st.retry_policy.clone()),
        cron_schedule: overrides
            .map(|o| o.cron_schedule.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| st.cron_schedule.clone()),
        identity: String::new(),
        request_id: String::new(),
        attempt: next.attempt,
        initiator: next.initiator,
        continued_execution_run_id: st.run_id.clone(),
        continued_failure: next.continued_failure,
        last_completion_result: next.last_completion_result,
        backoff_ms: next.backoff_ms,
        execution_expiration_ms: st.execution_expiration_ms,
        priority: st.priority.clone(),
        signal: None,
        parent: st.parent.clone(),
        eager: false,
    };
    let mut sub = Ctx::new(ctx.now, ctx.limits);
    let state = create_run(&mut sub, spec);
    ctx.successor = Some(Successor { state, events: sub.events, effects: sub.effects });
    run_id
}

/// The next run of a cron workflow, if the run has a schedule; returns its run id.
fn cron_successor(
    ctx: &mut Ctx<'_>,
    st: &RunState,
    last_completion_result: Option<common_pb::Payloads>,
    failure: Option<failure_pb::Failure>,
) -> String {
    if st.cron_schedule.is_empty() {
        return String::new();
    }
    let Ok(next) = crate::cron::next_after(&st.cron_schedule, ctx.now) else { return String::new() };
    if st.execution_expiration_ms > 0 && next >= st.execution_expiration_ms {
        return String::new();
    }
    let spec = Next {
        initiator: Initiator::CronSchedule,
        attempt: 1,
        backoff_ms: (next - ctx.now).max(1),
        input: st.input.clone(),
        continued_failure: failure,
        last_completion_result,
    };
    successor(ctx, st, spec, None)
}

pub(super) fn complete(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    result: Option<common_pb::Payloads>,
) {
    let new_run_id = cron_successor(ctx, st, result.clone(), None);
    let id = ctx.append(
        st,
        EventType::WorkflowExecutionCompleted,
        Attributes::WorkflowExecutionCompletedEventAttributes(history_pb::WorkflowExecutionCompletedEventAttributes {
            result,
            workflow_task_completed_event_id: completed_event_id,
            new_execution_run_id: new_run_id,
        }),
    );
    close_run(ctx, st, Status::Completed, id);
}

/// Retry decision for a failed or timed-out run: only runs started with a retry policy retry.
fn retry_decision(st: &RunState, failure: &failure_pb::Failure, now: Millis) -> Decision {
    match st.retry_policy.as_ref() {
        None => Decision::Stop(RetryState::RetryPolicyNotSet),
        Some(policy) => match retry::normalize(Some(policy)) {
            Ok(policy) => retry::decide(failure, &policy, st.attempt, now, st.execution_expiration_ms),
            Err(_) => Decision::Stop(RetryState::RetryPolicyNotSet),
        },
    }
}

pub(super) fn fail(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    failure: Option<failure_pb::Failure>,
) {
    let decision = retry_decision(st, failure.as_ref().unwrap_or(&failure_pb::Failure::default()), ctx.now);
    let (retry_state, new_run_id) = match decision {
        Decision::Retry(backoff_ms) => {
            let next = Next {
                initiator: Initiator::Retry,
                attempt: st.attempt + 1,
                backoff_ms,
                input: st.input.clone(),
                continued_failure: failure.clone(),
                last_completion_result: None,
            };
            (RetryState::InProgress, successor(ctx, st, next, None))
        }
        Decision::Stop(state) => (state, cron_successor(ctx, st, None, failure.clone())),
    };
    let id = ctx.append(
        st,
        EventType::WorkflowExecutionFailed,
        Attributes::WorkflowExecutionFailedEventAttributes(history_pb::WorkflowExecutionFailedEventAttributes {
            failure,
            retry_state: retry_state as i32,
            workflow_task_completed_event_id: completed_event_id,
            new_execution_run_id: new_run_id,
        }),
    );
    close_run(ctx, st, Status::Failed, id);
}

pub(super) fn continue_as_new(
    ctx: &mut Ctx<'_>,
    st: &mut RunState,
    completed_event_id: i64,
    a: command_pb::ContinueAsNewWorkflowExecutionCommandAttributes,
) {
    let next = Next {
        initiator: Initiator::Workflow,
        attempt: 1,
        backoff_ms: time::duration_ms(&a.backoff_start_interval),
        input: a.input.clone(),
        continued_failure: a.failure.clone(),
        last_completion_result: a.last_completion_result.clone(),
    };
    let new_run_id = successor(ctx, st, next, Some(&a));
    let new_run = &ctx.successor.as_ref().expect("successor was just created").state;
    let (workflow_type, task_queue, run_timeout, task_timeout) = (
        new_run.workflow_type.clone(),
        new_run.task_queue.clone(),
        new_run.run_timeout_ms,
        new_run.workflow_task_timeout_ms,
    );
    let id = ctx.append(
        st,
        EventType::WorkflowExecutionContinuedAsNew,
        Attributes::WorkflowExecutionContinuedAsNewEventAttributes(
            history_pb::WorkflowExecutionContinuedAsNewEventAttributes {
                new_execution_run_id: new_run_id,
                workflow_type: Some(common_pb::WorkflowType { name: workflow_type }),
                task_queue: Some(super::normal_task_queue(&task_queue)),
                input: a.input,
                workflow_run_timeout: (run_timeout > 0).then(|| time::duration(run_timeout)),
                workflow_task_timeout: time::opt_duration(task_timeout),
                workflow_task_completed_event_id: completed_event_id,
                backoff_start_interval: a.backoff_start_interval,
                failure: a.failure,
                last_completion_result: a.last_completion_result,
                header: a.header,
                memo: a.memo,
                search_attributes: a.search_attributes,
                ..Default::default()
            },
        ),
    );
    close_run(ctx, st, Status::ContinuedAsNew, id);
}

/// The run or execution timeout was reached.
pub(super) fn time_out(ctx: &mut Ctx<'_>, st: &mut RunState) {
    if !st.is_open() {
        return;
    }
    end_task_before_forced_close(ctx, st, "");
    let failure = failure_pb::Failure {
        message: "workflow timed out".into(),
        source: "Server".into(),
        failure_info: Some(failure_pb::failure::FailureInfo::TimeoutFailureInfo(failure_pb::TimeoutFailureInfo {
            timeout_type: enums_pb::TimeoutType::StartToClose as i32,
            last_heartbeat_details: None,
        })),
        ..Default::default()
    };
    let (retry_state, new_run_id) = match retry_decision(st, &failure, ctx.now) {
        Decision::Retry(backoff_ms) => {
            let next = Next {
                initiator: Initiator::Retry,
                attempt: st.attempt + 1,
                backoff_ms,
                input: st.input.clone(),
                continued_failure: Some(failure),
                last_completion_result: None,
            };
            (RetryState::InProgress, successor(ctx, st, next, None))
        }
        Decision::Stop(state) => (state, String::new()),
    };
    let id = ctx.append(
        st,
        EventType::WorkflowExecutionTimedOut,
        Attributes::WorkflowExecutionTimedOutEventAttributes(history_pb::WorkflowExecutionTimedOutEventAttributes {
            retry_state: retry_state as i32,
            new_execution_run_id: new_run_id,
        }),
    );
    close_run(ctx, st, Status::TimedOut, id);
}
