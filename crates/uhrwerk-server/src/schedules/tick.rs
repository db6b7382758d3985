//! One turn of a schedule: notice closed runs, take the due nominal times from the spec, and
//! start buffered workflows as the overlap policy allows.

use prost::Message;
use uhrwerk_core::kernel;
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::schedule::v1 as schedule_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_visibility::{Literal, ValueType, payload};

use super::Scheduler;
use super::record::{self, BufferedStart, ScheduleRecord};
use crate::cluster::Owner;
use crate::error::{Error, Result};

use enums_pb::{ScheduleOverlapPolicy as Overlap, WorkflowExecutionStatus as Status};

/// Temporal's default catch-up window: one year.
const DEFAULT_CATCHUP_MS: i64 = 365 * 24 * 3600 * 1000;
/// Temporal's smallest catch-up window.
const MIN_CATCHUP_MS: i64 = 10_000;
/// Recent actions a schedule remembers.
const RECENT_ACTIONS: usize = 10;
/// Most nominal times taken in one turn; the rest follow in the next turn.
const MAX_PER_TURN: usize = 1000;

/// A run's workflow id as a schedule names it: the action's id and the nominal time.
pub fn scheduled_workflow_id(base: &str, nominal_ms: i64) -> String {
    let secs = nominal_ms.div_euclid(1000);
    let formatted = chrono::DateTime::from_timestamp(secs, 0)
        .map_or_else(|| secs.to_string(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    format!("{base}-{formatted}")
}

impl Scheduler {
    /// Runs one turn and persists what changed; returns when to wake next.
    pub(super) async fn tick(
        &self,
        namespace: &str,
        schedule_id: &str,
        record: &mut ScheduleRecord,
    ) -> Result<Option<i64>> {
        let before = record.encode_to_vec();
        let now = self.engine.now_ms();
        self.refresh_running(namespace, record).await;
        let next_wake = take_due_times(record, now)?;
        if record.encode_to_vec() != before {
            // Durable before any start: a crash from here on repeats starts, never skips or
            // doubles a nominal time.
            self.persist(namespace, schedule_id, Some(record)).await?;
        }
        let saved = record.encode_to_vec();
        self.drain_buffer(namespace, schedule_id, record).await;
        if record.encode_to_vec() != saved {
            self.persist(namespace, schedule_id, Some(record)).await?;
        }
        Ok(next_wake)
    }

    /// Drops closed runs from `running_workflows` and records how they ended.
    async fn refresh_running(&self, namespace: &str, record: &mut ScheduleRecord) {
        let running = record.info.as_ref().map(|i| i.running_workflows.clone()).unwrap_or_default();
        for execution in running {
            let (status, failure_message) = match self.engine.run_state(namespace, &execution.workflow_id, "").await {
                Ok(run) if run.is_open() => continue,
                Ok(run) => {
                    self.remember_outcome(&run, record).await;
                    (Status::try_from(run.status).unwrap_or(Status::Unspecified), self.close_message(&run).await)
                }
                Err(Error::NotFound(_)) => (Status::Unspecified, String::new()),
                Err(e) => {
                    tracing::warn!(workflow_id = %execution.workflow_id, "failed to look at a scheduled run: {e}");
                    continue;
                }
            };
            let info = record.info.get_or_insert_with(Default::default);
            info.running_workflows.retain(|w| w.workflow_id != execution.workflow_id);
            for action in info.recent_actions.iter_mut() {
                if action.start_workflow_result.as_ref().is_some_and(|r| r.workflow_id == execution.workflow_id) {
                    action.start_workflow_status = status as i32;
                }
            }
            let pause_on_failure =
                record.schedule.as_ref().and_then(|s| s.policies.as_ref()).is_some_and(|p| p.pause_on_failure);
            if pause_on_failure && matches!(status, Status::Failed | Status::TimedOut) {
                let state =
                    record.schedule.get_or_insert_with(Default::default).state.get_or_insert_with(Default::default);
                state.paused = true;
                state.notes = format!("paused due to workflow failure: {}: {failure_message}", execution.workflow_id);
            }
        }
    }

    /// Keeps a closed run's result (or its failure, leaving the last result) for the next start,
    /// as Temporal's scheduler does.
    async fn remember_outcome(&self, run: &uhrwerk_core::state::RunState, record: &mut ScheduleRecord) {
        use uhrwerk_proto::temporal::api::history::v1::history_event::Attributes;
        match self.engine.close_event(run).await.ok().flatten().and_then(|e| e.attributes) {
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                record.last_completion_result = a.result;
                record.continued_failure = None;
            }
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => record.continued_failure = a.failure,
            _ => {}
        }
    }

    /// The failure message of a closed run's close event, or its status when it has none.
    async fn close_message(&self, run: &uhrwerk_core::state::RunState) -> String {
        use uhrwerk_proto::temporal::api::history::v1::history_event::Attributes;
        let close = self.engine.close_event(run).await.ok().flatten();
        let message = close.and_then(|e| match e.attributes {
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => a.failure.map(|f| f.message),
            _ => None,
        });
        message.unwrap_or_else(|| {
            Status::try_from(run.status).map_or_else(|_| String::new(), |s| s.as_str_name().to_string())
        })
    }

    /// Starts buffered runs in order while the overlap policy lets them go.
    async fn drain_buffer(&self, namespace: &str, schedule_id: &str, record: &mut ScheduleRecord) {
        while let Some(first) = record.buffer.first().cloned() {
            let state = record.schedule.as_ref().and_then(|s| s.state.clone()).unwrap_or_default();
            if !first.manual && state.limited_actions && state.remaining_actions <= 0 {
                record.buffer.remove(0);
                continue;
            }
            let running: Vec<common_pb::WorkflowExecution> =
                record.info.as_ref().map(|i| i.running_workflows.clone()).unwrap_or_default();
            let policy = record::overlap_policy(record, &first);
            if !running.is_empty() {
                match policy {
                    Overlap::AllowAll => {}
                    Overlap::Skip | Overlap::Unspecified => {
                        record.buffer.remove(0);
                        record.info.get_or_insert_with(Default::default).overlap_skipped += 1;
                        continue;
                    }
                    Overlap::BufferOne => {
                        // One start waits; later ones under the same policy are dropped.
                        let before = record.buffer.len();
                        let mut kept_one = false;
                        let rec = record.clone();
                        record.buffer.retain(|b| {
                            if record::overlap_policy(&rec, b) != Overlap::BufferOne {
                                return true;
                            }
                            let keep = !kept_one;
                            kept_one = true;
                            keep
                        });
                        // Temporal counts these as skipped by the overlap policy.
                        record.info.get_or_insert_with(Default::default).overlap_skipped +=
                            (before - record.buffer.len()) as i64;
                        return;
                    }
                    Overlap::BufferAll => return,
                    Overlap::CancelOther => {
                        for execution in &running {
                            let result = self.cancel_other(namespace, execution).await;
                            if let Err(e) = result {
                                tracing::debug!(workflow_id = %execution.workflow_id, "cancel by overlap policy not applied: {e}");
                            }
                        }
                        // The start waits until they are gone.
                        return;
                    }
                    Overlap::TerminateOther => {
                        for execution in &running {
                            let result = self.terminate_other(namespace, execution).await;
                            if let Err(e) = result {
                                tracing::debug!(workflow_id = %execution.workflow_id, "terminate by overlap policy not applied: {e}");
                            }
                        }
                        self.refresh_running(namespace, record).await;
                    }
                }
            }
            record.buffer.remove(0);
            self.start(namespace, schedule_id, record, &first).await;
        }
    }

    /// Starts one run of the schedule's action.
    async fn start(&self, namespace: &str, schedule_id: &str, record: &mut ScheduleRecord, start: &BufferedStart) {
        let schedule = record.schedule.clone().unwrap_or_default();
        let Some(schedule_pb::schedule_action::Action::StartWorkflow(action)) = schedule.action.and_then(|a| a.action)
        else {
            return;
        };
        let keep_id = schedule.policies.as_ref().is_some_and(|p| p.keep_original_workflow_id);
        let workflow_id = if keep_id {
            action.workflow_id.clone()
        } else {
            scheduled_workflow_id(&action.workflow_id, start.nominal_ms)
        };
        let mut attrs = action.search_attributes.clone().unwrap_or_default();
        attrs.indexed_fields.insert(
            "TemporalScheduledById".into(),
            payload::encode(ValueType::Keyword, &[Literal::Str(schedule_id.to_string())]),
        );
        attrs.indexed_fields.insert(
            "TemporalScheduledStartTime".into(),
            payload::encode(ValueType::Datetime, &[Literal::Time(start.nominal_ms.saturating_mul(1_000_000))]),
        );
        // As Temporal: a triggered or backfilled start may reuse a workflow id whose run closed
        // (two triggers within a second name the same id); a repeat after a crash is still
        // recognised by its request id.
        let reuse = if keep_id || start.manual {
            enums_pb::WorkflowIdReusePolicy::AllowDuplicate
        } else {
            enums_pb::WorkflowIdReusePolicy::RejectDuplicate
        };
        let mut req = workflowservice_pb::StartWorkflowExecutionRequest {
            namespace: namespace.to_string(),
            workflow_id: workflow_id.clone(),
            workflow_type: action.workflow_type.clone(),
            task_queue: action.task_queue.clone(),
            input: action.input.clone(),
            workflow_execution_timeout: action.workflow_execution_timeout,
            workflow_run_timeout: action.workflow_run_timeout,
            workflow_task_timeout: action.workflow_task_timeout,
            identity: "temporal-scheduler".into(),
            request_id: format!("uhrwerk-schedule-{schedule_id}-{}-{}", start.nominal_ms, start.actual_ms),
            workflow_id_reuse_policy: reuse as i32,
            retry_policy: action.retry_policy.clone(),
            memo: action.memo.clone(),
            search_attributes: Some(attrs),
            header: action.header.clone(),
            user_metadata: action.user_metadata.clone(),
            priority: action.priority.clone(),
            ..Default::default()
        };
        // Runs that may overlap (ALLOW_ALL) take no part in the chain of results, as in Temporal.
        if record::overlap_policy(record, start) != Overlap::AllowAll {
            req.last_completion_result = record.last_completion_result.clone();
            req.continued_failure = record.continued_failure.clone();
        }
        let run_id = match crate::frontend::validate_start(self.engine.limits(), &mut req) {
            Err(e) => Err(e),
            Ok(()) => self.start_anywhere(req).await,
        };
        let run_id = match run_id {
            Ok(run_id) => run_id,
            // Started before a crash: the nominal time is in the id, so this is our run.
            Err(Error::AlreadyStarted { run_id, .. }) if !keep_id => run_id,
            Err(e) => {
                tracing::warn!(schedule_id, workflow_id, "failed to start a scheduled workflow: {e}");
                return;
            }
        };
        let execution = common_pb::WorkflowExecution { workflow_id, run_id };
        let now = self.engine.now_ms();
        let info = record.info.get_or_insert_with(Default::default);
        info.action_count += 1;
        info.recent_actions.push(schedule_pb::ScheduleActionResult {
            schedule_time: Some(time::timestamp(start.nominal_ms)),
            actual_time: Some(time::timestamp(now)),
            start_workflow_result: Some(execution.clone()),
            start_workflow_status: Status::Running as i32,
        });
        let excess = info.recent_actions.len().saturating_sub(RECENT_ACTIONS);
        info.recent_actions.drain(..excess);
        if !info.running_workflows.iter().any(|w| w.workflow_id == execution.workflow_id) {
            info.running_workflows.push(execution);
        }
        if !start.manual {
            let state = record.schedule.get_or_insert_with(Default::default).state.get_or_insert_with(Default::default);
            if state.limited_actions {
                state.remaining_actions = (state.remaining_actions - 1).max(0);
            }
        }
    }
}

/// Moves nominal times that are due into the buffer (or counts them as missed); returns the
/// actual time of the next one.
fn take_due_times(record: &mut ScheduleRecord, now: i64) -> Result<Option<i64>> {
    let spec = record::compiled_spec(record)?;
    let schedule = record.schedule.clone().unwrap_or_default();
    let catchup = schedule
        .policies
        .as_ref()
        .and_then(|p| p.catchup_window.as_ref())
        .map(|d| time::duration_ms(&Some(*d)))
        .filter(|ms| *ms > 0);
    let catchup = catchup.unwrap_or(DEFAULT_CATCHUP_MS).max(MIN_CATCHUP_MS);
    let mut taken = 0;
    loop {
        let Some(next) = spec.next(record.last_processed_ms) else { return Ok(None) };
        if next.actual_ms > now {
            return Ok(Some(next.actual_ms));
        }
        if taken == MAX_PER_TURN {
            return Ok(Some(now));
        }
        taken += 1;
        record.last_processed_ms = next.nominal_ms;
        let state = record.schedule.as_ref().and_then(|s| s.state.clone()).unwrap_or_default();
        if state.paused || (state.limited_actions && state.remaining_actions <= 0) {
            continue;
        }
        if now - next.actual_ms > catchup {
            record.info.get_or_insert_with(Default::default).missed_catchup_window += 1;
            continue;
        }
        record.buffer.push(BufferedStart {
            nominal_ms: next.nominal_ms,
            actual_ms: next.actual_ms,
            overlap_policy: 0,
            manual: false,
        });
    }
}

/// A schedule's actions on its runs, which in a cluster may be served by another node than the
/// schedule's: carried out there (through its frontend, as a client would).
impl Scheduler {
    async fn start_anywhere(&self, req: workflowservice_pb::StartWorkflowExecutionRequest) -> Result<String> {
        match self.engine.run_owner(&req.namespace, &req.workflow_id) {
            Owner::Local => self.engine.start_workflow(req).await.map(|o| o.run_id),
            Owner::Node(node) => {
                let cluster = self.engine.cluster().expect("a remote owner means a cluster");
                let response: workflowservice_pb::StartWorkflowExecutionResponse =
                    cluster.peers.workflow_call(&node, cluster.node(), "StartWorkflowExecution", req).await?;
                Ok(response.run_id)
            }
        }
    }

    async fn cancel_other(&self, namespace: &str, execution: &common_pb::WorkflowExecution) -> Result<()> {
        const REASON: &str = "cancelled by schedule overlap policy";
        let request_id = format!("uhrwerk-schedule-cancel-{}", execution.run_id);
        match self.engine.run_owner(namespace, &execution.workflow_id) {
            Owner::Local => {
                self.engine
                    .mutate(namespace, &execution.workflow_id, &execution.run_id, move |ctx, st| {
                        kernel::request_cancel_run(ctx, st, REASON, SCHEDULER_IDENTITY, &request_id)
                    })
                    .await
            }
            Owner::Node(node) => {
                let cluster = self.engine.cluster().expect("a remote owner means a cluster");
                let req = workflowservice_pb::RequestCancelWorkflowExecutionRequest {
                    namespace: namespace.to_string(),
                    workflow_execution: Some(execution.clone()),
                    identity: SCHEDULER_IDENTITY.into(),
                    request_id,
                    reason: REASON.into(),
                    ..Default::default()
                };
                let _: workflowservice_pb::RequestCancelWorkflowExecutionResponse =
                    cluster.peers.workflow_call(&node, cluster.node(), "RequestCancelWorkflowExecution", req).await?;
                Ok(())
            }
        }
    }

    async fn terminate_other(&self, namespace: &str, execution: &common_pb::WorkflowExecution) -> Result<()> {
        const REASON: &str = "terminated by schedule overlap policy";
        match self.engine.run_owner(namespace, &execution.workflow_id) {
            Owner::Local => {
                self.engine
                    .mutate(namespace, &execution.workflow_id, &execution.run_id, |ctx, st| {
                        kernel::terminate_run(ctx, st, REASON, None, SCHEDULER_IDENTITY)
                    })
                    .await
            }
            Owner::Node(node) => {
                let cluster = self.engine.cluster().expect("a remote owner means a cluster");
                let req = workflowservice_pb::TerminateWorkflowExecutionRequest {
                    namespace: namespace.to_string(),
                    workflow_execution: Some(execution.clone()),
                    identity: SCHEDULER_IDENTITY.into(),
                    reason: REASON.into(),
                    ..Default::default()
                };
                let _: workflowservice_pb::TerminateWorkflowExecutionResponse =
                    cluster.peers.workflow_call(&node, cluster.node(), "TerminateWorkflowExecution", req).await?;
                Ok(())
            }
        }
    }
}

/// The identity of a schedule's cancellations and terminations, as Temporal's scheduler.
const SCHEDULER_IDENTITY: &str = "temporal-scheduler";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_ids_carry_the_nominal_time_to_the_second() {
        assert_eq!(scheduled_workflow_id("job", 1_654_042_500_123), "job-2022-06-01T00:15:00Z");
    }
}
