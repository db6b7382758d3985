//! Plain facts about runs and task queues, extracted from the API's messages (visibility info,
//! history events, describe responses) without I/O, so the checks can be tested on plain data.

use std::collections::HashMap;

use temporalio_protos::temporal::api::common::v1 as common_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use temporalio_protos::temporal::api::history::v1::{self as history_pb, history_event::Attributes};
use temporalio_protos::temporal::api::taskqueue::v1 as taskqueue_pb;
use temporalio_protos::temporal::api::update::v1 as update_pb;
use temporalio_protos::temporal::api::workflow::v1 as workflow_pb;
use temporalio_protos::temporal::api::workflowservice::v1 as service_pb;

use crate::timefmt::{dur_ms, ts_ms};

/// Task queue type, as DescribeTaskQueue distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueueKind {
    Workflow,
    Activity,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Workflow => "workflow",
            QueueKind::Activity => "activity",
        }
    }
}

/// Everything the checks need to know about one run.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    pub workflow_type: String,
    pub task_queue: String,
    pub open: bool,
    /// `Running`, `Completed`, `ContinuedAsNew`...
    pub status: String,
    pub start_ms: i64,
    pub close_ms: Option<i64>,
    pub history_length: i64,
    pub history_size_bytes: i64,
    pub history: HistoryFacts,
    /// Attempt of the pending workflow task (describe; 0 when none or unknown).
    pub pending_workflow_task_attempt: i32,
    pub pending_activities: Vec<PendingActivity>,
}

impl RunFacts {
    pub fn subject(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.workflow_id, self.run_id)
    }
}

#[derive(Clone, Debug, Default)]
pub struct HistoryFacts {
    /// Number of events read (the last event id).
    pub events: i64,
    /// The task queue the started event names.
    pub workflow_task_queue: String,
    /// Positional payloads of the workflow's input.
    pub input_payloads: usize,
    /// The run closed with continue-as-new.
    pub continued_as_new: bool,
    /// The first workflow task started with `suggest_continue_as_new`, and what followed.
    pub suggestion: Option<Suggestion>,
    pub workflow_task_failures: Vec<WorkflowTaskFailure>,
    /// Index into `workflow_task_failures` when the last workflow task outcome is that failure.
    pub last_outcome_failure: Option<usize>,
    /// Workflow task failures since the last completed workflow task.
    pub failures_since_completion: u32,
    /// Schedule-to-start of first attempts of workflow and activity tasks.
    pub latencies: Vec<Latency>,
    pub activities: Vec<ScheduledActivity>,
    pub largest_payload: Option<PayloadSeen>,
    /// The run was terminated by the server for crossing a history limit.
    pub limit_termination: Option<LimitTermination>,
}

/// Temporal's termination reasons for a history over its error limits.
pub const HISTORY_COUNT_EXCEEDED: &str = "Workflow history count exceeds limit.";
pub const HISTORY_SIZE_EXCEEDED: &str = "Workflow history size exceeds limit.";

#[derive(Clone, Debug, PartialEq)]
pub struct LimitTermination {
    pub event_id: i64,
    pub time_ms: i64,
    /// `length` or `size`, as the history checks name the dimensions.
    pub dimension: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion {
    /// The WorkflowTaskStarted event that first carried the suggestion.
    pub event_id: i64,
    pub time_ms: i64,
    /// Workflow tasks completed from that task on.
    pub tasks_completed_after: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowTaskFailure {
    pub event_id: i64,
    pub time_ms: i64,
    /// Temporal's cause name, e.g. `WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR`.
    pub cause: String,
    /// First line of the failure message.
    pub message: String,
    pub nondeterminism: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    pub task_queue: String,
    pub kind: QueueKind,
    pub scheduled_ms: i64,
    pub latency_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledActivity {
    pub event_id: i64,
    pub activity_type: String,
    pub task_queue: String,
    pub start_to_close_ms: i64,
    pub schedule_to_close_ms: i64,
    /// 0 means unlimited.
    pub maximum_attempts: i32,
    pub input_payloads: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PendingActivity {
    pub activity_type: String,
    pub attempt: i32,
    pub maximum_attempts: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PayloadSeen {
    pub event_id: i64,
    /// e.g. `ActivityTaskCompleted result (activity charge)`.
    pub what: String,
    pub bytes: usize,
}

/// What DescribeTaskQueue says about one queue.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueFacts {
    pub namespace: String,
    pub name: String,
    pub kind: QueueKind,
    /// Distinct poller identities seen recently.
    pub pollers: Vec<Poller>,
    /// None when the server does not report stats.
    pub backlog: Option<i64>,
    pub backlog_age_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Poller {
    pub identity: String,
    pub last_access_ms: Option<i64>,
}

impl QueueFacts {
    /// Facts from a legacy DescribeTaskQueue answer (root partition pollers, `report_stats`) and,
    /// when the server supports it, an enhanced-mode answer (pollers and stats of all partitions,
    /// per build id): pollers are merged by identity, the larger backlog wins.
    pub fn from_response(
        namespace: &str,
        name: &str,
        kind: QueueKind,
        legacy: &service_pb::DescribeTaskQueueResponse,
        enhanced: Option<&service_pb::DescribeTaskQueueResponse>,
    ) -> Self {
        let mut q = QueueFacts {
            namespace: namespace.to_string(),
            name: name.to_string(),
            kind,
            pollers: Vec::new(),
            backlog: None,
            backlog_age_ms: 0,
        };
        q.add(&legacy.pollers, legacy.stats.as_ref());
        let type_key = match kind {
            QueueKind::Workflow => enums_pb::TaskQueueType::Workflow as i32,
            QueueKind::Activity => enums_pb::TaskQueueType::Activity as i32,
        };
        if let Some(enhanced) = enhanced {
            let mut backlog = None::<i64>;
            let mut age = 0;
            for version in enhanced.versions_info.values() {
                let Some(info) = version.types_info.get(&type_key) else {
                    continue;
                };
                q.add(&info.pollers, None);
                if let Some(s) = &info.stats {
                    backlog = Some(backlog.unwrap_or(0) + s.approximate_backlog_count);
                    age = age.max(dur_ms(s.approximate_backlog_age.as_ref()));
                }
            }
            if let Some(b) = backlog
                && b > q.backlog.unwrap_or(-1)
            {
                q.backlog = Some(b);
                q.backlog_age_ms = q.backlog_age_ms.max(age);
            }
        }
        q
    }

    fn add(&mut self, pollers: &[taskqueue_pb::PollerInfo], stats: Option<&taskqueue_pb::TaskQueueStats>) {
        for p in pollers {
            let last = ts_ms(p.last_access_time.as_ref());
            match self.pollers.iter_mut().find(|q| q.identity == p.identity) {
                Some(q) => q.last_access_ms = q.last_access_ms.max(last),
                None => self.pollers.push(Poller { identity: p.identity.clone(), last_access_ms: last }),
            }
        }
        if let Some(s) = stats {
            self.backlog = Some(s.approximate_backlog_count);
            self.backlog_age_ms = dur_ms(s.approximate_backlog_age.as_ref());
        }
    }
}

impl RunFacts {
    /// The run as visibility lists it; history and describe facts are added later.
    pub fn from_info(namespace: &str, info: &workflow_pb::WorkflowExecutionInfo) -> Self {
        let mut run = RunFacts { namespace: namespace.to_string(), ..Default::default() };
        run.apply_info(info);
        run
    }

    pub fn apply_info(&mut self, info: &workflow_pb::WorkflowExecutionInfo) {
        if let Some(e) = &info.execution {
            self.workflow_id = e.workflow_id.clone();
            self.run_id = e.run_id.clone();
        }
        self.workflow_type = info.r#type.as_ref().map(|t| t.name.clone()).unwrap_or_default();
        self.task_queue = info.task_queue.clone();
        let status = enums_pb::WorkflowExecutionStatus::try_from(info.status)
            .unwrap_or(enums_pb::WorkflowExecutionStatus::Unspecified);
        self.open = status == enums_pb::WorkflowExecutionStatus::Running;
        self.status = status_name(status);
        self.start_ms = ts_ms(info.start_time.as_ref()).unwrap_or(0);
        self.close_ms = ts_ms(info.close_time.as_ref()).filter(|_| !self.open);
        self.history_length = self.history_length.max(info.history_length);
        self.history_size_bytes = self.history_size_bytes.max(info.history_size_bytes);
    }

    pub fn apply_describe(&mut self, resp: &service_pb::DescribeWorkflowExecutionResponse) {
        if let Some(info) = &resp.workflow_execution_info {
            self.apply_info(info);
        }
        self.pending_workflow_task_attempt = resp.pending_workflow_task.as_ref().map_or(0, |t| t.attempt);
        self.pending_activities = resp
            .pending_activities
            .iter()
            .map(|a| PendingActivity {
                activity_type: a.activity_type.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
                attempt: a.attempt,
                maximum_attempts: a.maximum_attempts,
            })
            .collect();
    }

    pub fn apply_history(&mut self, history: HistoryFacts) {
        self.history_length = self.history_length.max(history.events);
        if self.task_queue.is_empty() {
            self.task_queue = history.workflow_task_queue.clone();
        }
        self.history = history;
    }
}

fn status_name(status: enums_pb::WorkflowExecutionStatus) -> String {
    let name = status.as_str_name().trim_start_matches("WORKFLOW_EXECUTION_STATUS_");
    let mut out = String::new();
    for word in name.split('_') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first);
            out.extend(chars.flat_map(char::to_lowercase));
        }
    }
    out
}

/// Folds history events, page by page, into [`HistoryFacts`].
#[derive(Debug, Default)]
pub struct HistoryScan {
    facts: HistoryFacts,
    workflow_task_queue: String,
    first_task_backoff: bool,
    /// Workflow task scheduled event id -> (time, attempt, task queue).
    scheduled_workflow_tasks: HashMap<i64, (i64, i32, String)>,
    /// Activity scheduled event id -> (time, task queue, activity type).
    scheduled_activities: HashMap<i64, (i64, String, String)>,
    first_workflow_task_seen: bool,
}

impl HistoryScan {
    pub fn add(&mut self, event: &history_pb::HistoryEvent) {
        let id = event.event_id;
        let time = ts_ms(event.event_time.as_ref()).unwrap_or(0);
        self.facts.events = self.facts.events.max(id);
        let Some(attrs) = &event.attributes else {
            return;
        };
        match attrs {
            Attributes::WorkflowExecutionStartedEventAttributes(a) => {
                self.facts.input_payloads = payload_count(a.input.as_ref());
                self.workflow_task_queue = a.task_queue.as_ref().map(|q| q.name.clone()).unwrap_or_default();
                self.facts.workflow_task_queue = self.workflow_task_queue.clone();
                self.first_task_backoff = dur_ms(a.first_workflow_task_backoff.as_ref()) > 0;
                self.payloads(id, "WorkflowExecutionStarted input", a.input.as_ref());
            }
            Attributes::WorkflowTaskScheduledEventAttributes(a) => {
                let queue =
                    a.task_queue.as_ref().map(|q| q.name.clone()).unwrap_or_else(|| self.workflow_task_queue.clone());
                self.scheduled_workflow_tasks.insert(id, (time, a.attempt, queue));
            }
            Attributes::WorkflowTaskStartedEventAttributes(a) => {
                let first = !self.first_workflow_task_seen;
                self.first_workflow_task_seen = true;
                if let Some((scheduled, attempt, queue)) = self.scheduled_workflow_tasks.remove(&a.scheduled_event_id) {
                    // Retried tasks wait for a backoff, and a delayed start's first task waits for the delay.
                    if attempt <= 1 && !(first && self.first_task_backoff) && time > 0 && scheduled > 0 {
                        let queue = if queue.is_empty() { self.workflow_task_queue.clone() } else { queue };
                        self.facts.latencies.push(Latency {
                            task_queue: queue,
                            kind: QueueKind::Workflow,
                            scheduled_ms: scheduled,
                            latency_ms: (time - scheduled).max(0),
                        });
                    }
                }
                if a.suggest_continue_as_new && self.facts.suggestion.is_none() {
                    self.facts.suggestion = Some(Suggestion { event_id: id, time_ms: time, tasks_completed_after: 0 });
                }
            }
            Attributes::WorkflowTaskCompletedEventAttributes(_) => {
                self.facts.last_outcome_failure = None;
                self.facts.failures_since_completion = 0;
                if let Some(s) = &mut self.facts.suggestion {
                    s.tasks_completed_after += 1;
                }
            }
            Attributes::WorkflowTaskFailedEventAttributes(a) => {
                let cause = enums_pb::WorkflowTaskFailedCause::try_from(a.cause)
                    .unwrap_or(enums_pb::WorkflowTaskFailedCause::Unspecified);
                let full = a.failure.as_ref().map(|f| f.message.as_str()).unwrap_or_default();
                let lower = full.to_ascii_lowercase();
                let nondeterminism = cause == enums_pb::WorkflowTaskFailedCause::NonDeterministicError
                    || lower.contains("nondeterminism")
                    || lower.contains("non-determinism")
                    || full.contains("TMPRL1100");
                self.facts.workflow_task_failures.push(WorkflowTaskFailure {
                    event_id: id,
                    time_ms: time,
                    cause: cause.as_str_name().to_string(),
                    message: first_line(full, 300),
                    nondeterminism,
                });
                self.facts.last_outcome_failure = Some(self.facts.workflow_task_failures.len() - 1);
                self.facts.failures_since_completion += 1;
            }
            Attributes::ActivityTaskScheduledEventAttributes(a) => {
                let activity_type = a.activity_type.as_ref().map(|t| t.name.clone()).unwrap_or_default();
                let queue =
                    a.task_queue.as_ref().map(|q| q.name.clone()).unwrap_or_else(|| self.workflow_task_queue.clone());
                self.facts.activities.push(ScheduledActivity {
                    event_id: id,
                    activity_type: activity_type.clone(),
                    task_queue: queue.clone(),
                    start_to_close_ms: dur_ms(a.start_to_close_timeout.as_ref()),
                    schedule_to_close_ms: dur_ms(a.schedule_to_close_timeout.as_ref()),
                    maximum_attempts: a.retry_policy.as_ref().map_or(0, |p| p.maximum_attempts),
                    input_payloads: payload_count(a.input.as_ref()),
                });
                self.payloads(id, &format!("ActivityTaskScheduled input (activity {activity_type})"), a.input.as_ref());
                self.scheduled_activities.insert(id, (time, queue, activity_type));
            }
            Attributes::ActivityTaskStartedEventAttributes(a) => {
                if let Some((scheduled, queue, _)) = self.scheduled_activities.get(&a.scheduled_event_id)
                    && a.attempt <= 1
                    && time > 0
                    && *scheduled > 0
                {
                    self.facts.latencies.push(Latency {
                        task_queue: queue.clone(),
                        kind: QueueKind::Activity,
                        scheduled_ms: *scheduled,
                        latency_ms: (time - scheduled).max(0),
                    });
                }
            }
            Attributes::ActivityTaskCompletedEventAttributes(a) => {
                let name =
                    self.scheduled_activities.get(&a.scheduled_event_id).map(|(_, _, t)| t.clone()).unwrap_or_default();
                self.payloads(id, &format!("ActivityTaskCompleted result (activity {name})"), a.result.as_ref());
            }
            Attributes::WorkflowExecutionSignaledEventAttributes(a) => {
                self.payloads(
                    id,
                    &format!("WorkflowExecutionSignaled input (signal {})", a.signal_name),
                    a.input.as_ref(),
                );
            }
            Attributes::MarkerRecordedEventAttributes(a) => {
                let mut keys: Vec<_> = a.details.keys().collect();
                keys.sort();
                for key in keys {
                    let what = format!("MarkerRecorded {} ({})", a.marker_name, key);
                    self.payloads(id, &what, a.details.get(key));
                }
            }
            Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a) => {
                let name = a.workflow_type.as_ref().map(|t| t.name.as_str()).unwrap_or_default();
                self.payloads(
                    id,
                    &format!("StartChildWorkflowExecutionInitiated input (child {name})"),
                    a.input.as_ref(),
                );
            }
            Attributes::ChildWorkflowExecutionCompletedEventAttributes(a) => {
                let name = a.workflow_type.as_ref().map(|t| t.name.as_str()).unwrap_or_default();
                self.payloads(id, &format!("ChildWorkflowExecutionCompleted result (child {name})"), a.result.as_ref());
            }
            Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(a) => {
                self.payloads(
                    id,
                    &format!("SignalExternalWorkflowExecutionInitiated input (signal {})", a.signal_name),
                    a.input.as_ref(),
                );
            }
            Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
                let input = a.accepted_request.as_ref().and_then(|r| r.input.as_ref());
                let name = input.map(|i| i.name.as_str()).unwrap_or_default();
                self.payloads(
                    id,
                    &format!("WorkflowExecutionUpdateAccepted args (update {name})"),
                    input.and_then(|i| i.args.as_ref()),
                );
            }
            Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a) => {
                if let Some(update_pb::outcome::Value::Success(p)) = a.outcome.as_ref().and_then(|o| o.value.as_ref()) {
                    self.payloads(id, "WorkflowExecutionUpdateCompleted result", Some(p));
                }
            }
            Attributes::WorkflowExecutionCompletedEventAttributes(a) => {
                self.payloads(id, "WorkflowExecutionCompleted result", a.result.as_ref());
            }
            Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a) => {
                self.facts.continued_as_new = true;
                self.payloads(id, "WorkflowExecutionContinuedAsNew input", a.input.as_ref());
            }
            Attributes::WorkflowExecutionTerminatedEventAttributes(a) => {
                let dimension = match a.reason.as_str() {
                    HISTORY_COUNT_EXCEEDED => Some("length"),
                    HISTORY_SIZE_EXCEEDED => Some("size"),
                    _ => None,
                };
                self.facts.limit_termination =
                    dimension.map(|dimension| LimitTermination { event_id: id, time_ms: time, dimension });
            }
            _ => {}
        }
    }

    fn payloads(&mut self, event_id: i64, what: &str, payloads: Option<&common_pb::Payloads>) {
        let Some(payloads) = payloads else { return };
        for p in &payloads.payloads {
            let bytes = p.data.len();
            if self.facts.largest_payload.as_ref().is_none_or(|l| bytes > l.bytes) {
                self.facts.largest_payload = Some(PayloadSeen { event_id, what: what.to_string(), bytes });
            }
        }
    }

    pub fn finish(self) -> HistoryFacts {
        self.facts
    }
}

/// Folds a whole history at once (tests, small histories).
pub fn scan_history(events: &[history_pb::HistoryEvent]) -> HistoryFacts {
    let mut scan = HistoryScan::default();
    for e in events {
        scan.add(e);
    }
    scan.finish()
}

fn payload_count(p: Option<&common_pb::Payloads>) -> usize {
    p.map_or(0, |p| p.payloads.len())
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let mut out: String = line.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use prost_wkt_types as wkt;
    use temporalio_protos::temporal::api::failure::v1 as failure_pb;
    use temporalio_protos::temporal::api::taskqueue::v1 as taskqueue_pb;

    pub fn ts(ms: i64) -> Option<wkt::Timestamp> {
        Some(wkt::Timestamp { seconds: ms / 1000, nanos: ((ms % 1000) * 1_000_000) as i32 })
    }

    pub fn dur(ms: i64) -> Option<wkt::Duration> {
        Some(wkt::Duration { seconds: ms / 1000, nanos: ((ms % 1000) * 1_000_000) as i32 })
    }

    pub fn payloads(sizes: &[usize]) -> Option<common_pb::Payloads> {
        Some(common_pb::Payloads {
            payloads: sizes.iter().map(|n| common_pb::Payload { data: vec![b'x'; *n], ..Default::default() }).collect(),
        })
    }

    fn queue(name: &str) -> Option<taskqueue_pb::TaskQueue> {
        Some(taskqueue_pb::TaskQueue { name: name.into(), ..Default::default() })
    }

    pub fn event(id: i64, ms: i64, attrs: Attributes) -> history_pb::HistoryEvent {
        history_pb::HistoryEvent { event_id: id, event_time: ts(ms), attributes: Some(attrs), ..Default::default() }
    }

    /// A history builder: each call appends one event one second after the previous one.
    pub struct Builder {
        pub events: Vec<history_pb::HistoryEvent>,
        pub now: i64,
    }

    impl Builder {
        pub fn started(input: &[usize]) -> Self {
            let mut b = Builder { events: Vec::new(), now: 1_000_000 };
            b.push(Attributes::WorkflowExecutionStartedEventAttributes(
                history_pb::WorkflowExecutionStartedEventAttributes {
                    task_queue: queue("tq"),
                    input: payloads(input),
                    ..Default::default()
                },
            ));
            b
        }

        pub fn push(&mut self, attrs: Attributes) -> i64 {
            let id = self.events.len() as i64 + 1;
            self.events.push(event(id, self.now, attrs));
            self.now += 1000;
            id
        }

        pub fn wait(&mut self, ms: i64) {
            self.now += ms;
        }

        /// Scheduled, started (with the suggestion flag), completed.
        pub fn workflow_task(&mut self, suggest: bool) {
            let s = self.schedule_workflow_task(1);
            self.start_workflow_task(s, suggest);
            self.push(Attributes::WorkflowTaskCompletedEventAttributes(Default::default()));
        }

        pub fn schedule_workflow_task(&mut self, attempt: i32) -> i64 {
            self.push(Attributes::WorkflowTaskScheduledEventAttributes(
                history_pb::WorkflowTaskScheduledEventAttributes {
                    task_queue: queue("tq"),
                    attempt,
                    ..Default::default()
                },
            ))
        }

        pub fn start_workflow_task(&mut self, scheduled: i64, suggest: bool) -> i64 {
            self.push(Attributes::WorkflowTaskStartedEventAttributes(history_pb::WorkflowTaskStartedEventAttributes {
                scheduled_event_id: scheduled,
                suggest_continue_as_new: suggest,
                ..Default::default()
            }))
        }

        pub fn fail_workflow_task(&mut self, cause: enums_pb::WorkflowTaskFailedCause, message: &str) -> i64 {
            self.push(Attributes::WorkflowTaskFailedEventAttributes(history_pb::WorkflowTaskFailedEventAttributes {
                cause: cause as i32,
                failure: Some(failure_pb::Failure { message: message.into(), ..Default::default() }),
                ..Default::default()
            }))
        }

        pub fn activity(
            &mut self,
            name: &str,
            start_to_close_ms: i64,
            schedule_to_close_ms: i64,
            max_attempts: i32,
            input: &[usize],
        ) -> i64 {
            self.push(Attributes::ActivityTaskScheduledEventAttributes(
                history_pb::ActivityTaskScheduledEventAttributes {
                    activity_type: Some(common_pb::ActivityType { name: name.into() }),
                    task_queue: queue("tq-act"),
                    start_to_close_timeout: dur(start_to_close_ms),
                    schedule_to_close_timeout: dur(schedule_to_close_ms),
                    retry_policy: Some(common_pb::RetryPolicy { maximum_attempts: max_attempts, ..Default::default() }),
                    input: payloads(input),
                    ..Default::default()
                },
            ))
        }

        pub fn start_activity(&mut self, scheduled: i64, attempt: i32) -> i64 {
            self.push(Attributes::ActivityTaskStartedEventAttributes(history_pb::ActivityTaskStartedEventAttributes {
                scheduled_event_id: scheduled,
                attempt,
                ..Default::default()
            }))
        }

        pub fn complete_activity(&mut self, scheduled: i64, result: &[usize]) -> i64 {
            self.push(Attributes::ActivityTaskCompletedEventAttributes(
                history_pb::ActivityTaskCompletedEventAttributes {
                    scheduled_event_id: scheduled,
                    result: payloads(result),
                    ..Default::default()
                },
            ))
        }

        pub fn facts(&self) -> HistoryFacts {
            scan_history(&self.events)
        }
    }

    #[test]
    fn suggestion_counts_completed_tasks_from_the_first_suggested_one() {
        let mut b = Builder::started(&[10]);
        b.workflow_task(false);
        b.workflow_task(true);
        b.workflow_task(true);
        let f = b.facts();
        let s = f.suggestion.expect("suggested");
        assert_eq!(s.event_id, 6);
        assert_eq!(s.tasks_completed_after, 2);
        assert!(!f.continued_as_new);
        assert_eq!(f.input_payloads, 1);
    }

    #[test]
    fn nondeterminism_by_cause_or_message_and_last_outcome() {
        let mut b = Builder::started(&[]);
        b.workflow_task(false);
        let s = b.schedule_workflow_task(1);
        b.start_workflow_task(s, false);
        b.fail_workflow_task(
            enums_pb::WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
            "[TMPRL1100] Nondeterminism error: x\nmore",
        );
        let s = b.schedule_workflow_task(2);
        b.start_workflow_task(s, false);
        b.fail_workflow_task(enums_pb::WorkflowTaskFailedCause::NonDeterministicError, "boom");
        let f = b.facts();
        assert_eq!(f.workflow_task_failures.len(), 2);
        assert!(f.workflow_task_failures.iter().all(|w| w.nondeterminism));
        assert_eq!(f.workflow_task_failures[0].message, "[TMPRL1100] Nondeterminism error: x");
        assert_eq!(f.last_outcome_failure, Some(1));
        assert_eq!(f.workflow_task_failures[1].cause, "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR");

        let mut b = Builder::started(&[]);
        let s = b.schedule_workflow_task(1);
        b.start_workflow_task(s, false);
        b.fail_workflow_task(enums_pb::WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure, "division by zero");
        b.workflow_task(false);
        let f = b.facts();
        assert!(!f.workflow_task_failures[0].nondeterminism);
        assert_eq!(f.last_outcome_failure, None);
    }

    #[test]
    fn latencies_of_first_attempts_only() {
        let mut b = Builder::started(&[]);
        let s = b.schedule_workflow_task(1);
        b.wait(2000);
        b.start_workflow_task(s, false);
        b.push(Attributes::WorkflowTaskCompletedEventAttributes(Default::default()));
        let a = b.activity("charge", 10_000, 0, 0, &[5]);
        b.start_activity(a, 1);
        b.complete_activity(a, &[2000]);
        let a2 = b.activity("retry", 10_000, 0, 0, &[]);
        b.wait(60_000);
        b.start_activity(a2, 3);
        let s = b.schedule_workflow_task(2);
        b.wait(60_000);
        b.start_workflow_task(s, false);
        let f = b.facts();
        let got: Vec<_> = f.latencies.iter().map(|l| (l.kind, l.task_queue.as_str(), l.latency_ms)).collect();
        assert_eq!(got, [(QueueKind::Workflow, "tq", 3000), (QueueKind::Activity, "tq-act", 1000)]);
        let p = f.largest_payload.expect("payloads");
        assert_eq!(p.bytes, 2000);
        assert_eq!(p.what, "ActivityTaskCompleted result (activity charge)");
        assert_eq!(f.activities.len(), 2);
        assert_eq!(f.activities[0].start_to_close_ms, 10_000);
    }

    #[test]
    fn queue_facts_merge_pollers_by_identity() {
        let resp = service_pb::DescribeTaskQueueResponse {
            pollers: vec![
                taskqueue_pb::PollerInfo { identity: "a".into(), last_access_time: ts(5000), ..Default::default() },
                taskqueue_pb::PollerInfo { identity: "a".into(), last_access_time: ts(7000), ..Default::default() },
                taskqueue_pb::PollerInfo { identity: "b".into(), last_access_time: ts(6000), ..Default::default() },
            ],
            stats: Some(taskqueue_pb::TaskQueueStats {
                approximate_backlog_count: 3,
                approximate_backlog_age: dur(1500),
                ..Default::default()
            }),
            ..Default::default()
        };
        let q = QueueFacts::from_response("default", "tq", QueueKind::Workflow, &resp, None);
        assert_eq!(q.pollers.len(), 2);
        assert_eq!(q.pollers[0].last_access_ms, Some(7000));
        assert_eq!(q.backlog, Some(3));
        assert_eq!(q.backlog_age_ms, 1500);

        // Enhanced mode adds the pollers of other partitions and may see a larger backlog.
        let type_info = |identity: &str, backlog: i64| taskqueue_pb::TaskQueueTypeInfo {
            pollers: vec![taskqueue_pb::PollerInfo { identity: identity.into(), ..Default::default() }],
            stats: Some(taskqueue_pb::TaskQueueStats {
                approximate_backlog_count: backlog,
                approximate_backlog_age: dur(4000),
                ..Default::default()
            }),
        };
        let enhanced = service_pb::DescribeTaskQueueResponse {
            versions_info: [(
                String::new(),
                taskqueue_pb::TaskQueueVersionInfo {
                    types_info: [
                        (enums_pb::TaskQueueType::Workflow as i32, type_info("c", 5)),
                        (enums_pb::TaskQueueType::Activity as i32, type_info("d", 9)),
                    ]
                    .into_iter()
                    .collect(),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let q = QueueFacts::from_response("default", "tq", QueueKind::Workflow, &resp, Some(&enhanced));
        let ids: Vec<_> = q.pollers.iter().map(|p| p.identity.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(q.backlog, Some(5));
        assert_eq!(q.backlog_age_ms, 4000);
    }

    #[test]
    fn status_names() {
        assert_eq!(status_name(enums_pb::WorkflowExecutionStatus::ContinuedAsNew), "ContinuedAsNew");
        assert_eq!(status_name(enums_pb::WorkflowExecutionStatus::Running), "Running");
    }
}
