//! The worker's view of a run, folded from history events: built from a full history, or a
//! partial (sticky) history merged onto the view remembered for the run; the next commands of a
//! benchmark workflow decided from it; and the check of a run's close event. Pure: no I/O.

use std::time::Duration;

use temporalio_protos::temporal::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, FailWorkflowExecutionCommandAttributes,
    ScheduleActivityTaskCommandAttributes, StartTimerCommandAttributes, command,
};
use temporalio_protos::temporal::api::common::v1::ActivityType;
use temporalio_protos::temporal::api::enums::v1::{CommandType, TaskQueueKind};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::{HistoryEvent, history_event::Attributes};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;

use crate::workload::{self, SIGNAL_NAME, Spec};

/// How long each benchmark activity may take once started (it answers at once).
const ACTIVITY_START_TO_CLOSE: Duration = Duration::from_secs(30);
/// The id of the one timer of the `timer` workload.
const TIMER_ID: &str = "t1";

/// What a benchmark workflow has seen so far: everything [`decide`] needs, folded from the
/// events up to `last_event_id`, so a partial history only has to be applied on top.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunView {
    pub workflow_type: String,
    /// `None` until WorkflowExecutionStarted is seen, or if its input is not a [`Spec`].
    pub spec: Option<Spec>,
    /// Id of the last event applied; 0 for an empty view.
    pub last_event_id: i64,
    pub timer_started: bool,
    pub timer_fired: bool,
    /// Input of the first signal named [`SIGNAL_NAME`].
    pub signal: Option<String>,
    /// Activities scheduled so far (the next one gets this index).
    pub scheduled: u32,
    /// The scheduled event id and index of the activity in flight.
    pub pending: Option<(i64, u32)>,
    /// Activities completed with the result they had to return.
    pub completed_ok: u32,
    /// Activities that failed, timed out, were canceled or returned something else.
    pub bad_activities: u32,
    /// A close event was seen (never in a workflow task's history).
    pub closed: bool,
}

/// Why a history could not be applied to a view; the worker then fetches the full history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeError {
    /// The task carried no events at all.
    Empty,
    /// A partial history for a run the worker does not remember.
    NotCached { first_event_id: i64 },
    /// The events do not continue the view (a gap, an overlap or events out of order).
    Gap { expected: i64, got: i64 },
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Empty => write!(f, "empty history"),
            MergeError::NotCached { first_event_id } => {
                write!(f, "partial history from event {first_event_id} for a run not in the cache")
            }
            MergeError::Gap { expected, got } => write!(f, "expected event {expected}, got {got}"),
        }
    }
}

/// How [`merge`] used the history it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryKind {
    /// It started at event 1: the view was built from it alone.
    Full,
    /// It started later and continued the cached view.
    Partial,
}

impl RunView {
    /// Applies `events`, which must continue the view without a gap. On error the view may be
    /// half-updated and must be dropped.
    pub fn apply(&mut self, events: &[HistoryEvent]) -> Result<(), MergeError> {
        for event in events {
            let expected = self.last_event_id + 1;
            if event.event_id != expected {
                return Err(MergeError::Gap { expected, got: event.event_id });
            }
            self.apply_one(event);
            self.last_event_id = event.event_id;
        }
        Ok(())
    }

    /// A view of a full history (the first event must be event 1).
    pub fn from_full(events: &[HistoryEvent]) -> Result<RunView, MergeError> {
        if events.is_empty() {
            return Err(MergeError::Empty);
        }
        let mut view = RunView::default();
        view.apply(events)?;
        Ok(view)
    }

    fn apply_one(&mut self, event: &HistoryEvent) {
        let Some(attributes) = &event.attributes else { return };
        match attributes {
            Attributes::WorkflowExecutionStartedEventAttributes(a) => {
                self.workflow_type = a.workflow_type.as_ref().map(|t| t.name.clone()).unwrap_or_default();
                self.spec = Spec::from_payloads(a.input.as_ref());
            }
            Attributes::ActivityTaskScheduledEventAttributes(a) => {
                let index = workload::first_json(a.input.as_ref()).and_then(|v| v.as_u64()).unwrap_or(u64::MAX);
                self.pending = Some((event.event_id, u32::try_from(index).unwrap_or(u32::MAX)));
                self.scheduled += 1;
            }
            Attributes::ActivityTaskCompletedEventAttributes(a) => {
                let expected = self.take_pending(a.scheduled_event_id);
                let got = workload::first_json(a.result.as_ref()).and_then(|v| v.as_u64());
                match (expected, got) {
                    (Some(index), Some(got)) if u64::from(index) == got => self.completed_ok += 1,
                    _ => self.bad_activities += 1,
                }
            }
            Attributes::ActivityTaskFailedEventAttributes(a) => {
                self.take_pending(a.scheduled_event_id);
                self.bad_activities += 1;
            }
            Attributes::ActivityTaskTimedOutEventAttributes(a) => {
                self.take_pending(a.scheduled_event_id);
                self.bad_activities += 1;
            }
            Attributes::ActivityTaskCanceledEventAttributes(a) => {
                self.take_pending(a.scheduled_event_id);
                self.bad_activities += 1;
            }
            Attributes::TimerStartedEventAttributes(_) => self.timer_started = true,
            Attributes::TimerFiredEventAttributes(_) => self.timer_fired = true,
            Attributes::WorkflowExecutionSignaledEventAttributes(a)
                if a.signal_name == SIGNAL_NAME && self.signal.is_none() =>
            {
                let value = workload::first_json(a.input.as_ref());
                self.signal = Some(value.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default());
            }
            Attributes::WorkflowExecutionCompletedEventAttributes(_)
            | Attributes::WorkflowExecutionFailedEventAttributes(_)
            | Attributes::WorkflowExecutionTimedOutEventAttributes(_)
            | Attributes::WorkflowExecutionCanceledEventAttributes(_)
            | Attributes::WorkflowExecutionTerminatedEventAttributes(_)
            | Attributes::WorkflowExecutionContinuedAsNewEventAttributes(_) => self.closed = true,
            _ => {}
        }
    }

    /// Clears the pending activity if it is `scheduled_event_id`; its index if it was.
    fn take_pending(&mut self, scheduled_event_id: i64) -> Option<u32> {
        match self.pending {
            Some((id, index)) if id == scheduled_event_id => {
                self.pending = None;
                Some(index)
            }
            _ => None,
        }
    }
}

/// Combines the history of a workflow task with the view remembered for its run: a history
/// starting at event 1 replaces it, a later start must continue it.
pub fn merge(cached: Option<RunView>, events: &[HistoryEvent]) -> Result<(RunView, HistoryKind), MergeError> {
    let first = events.first().ok_or(MergeError::Empty)?.event_id;
    if first == 1 {
        return Ok((RunView::from_full(events)?, HistoryKind::Full));
    }
    let mut view = cached.ok_or(MergeError::NotCached { first_event_id: first })?;
    view.apply(events)?;
    Ok((view, HistoryKind::Partial))
}

/// The next step of a benchmark workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do until the next event (a signal, a timer, an activity result).
    Wait,
    StartTimer {
        ms: u64,
    },
    ScheduleActivity {
        index: u32,
    },
    /// Complete with this result (JSON data of one payload).
    Complete {
        result: serde_json::Value,
    },
    /// The run cannot be a benchmark workflow: fail it so the driver sees it.
    Fail {
        message: String,
    },
}

impl Decision {
    pub fn closes(&self) -> bool {
        matches!(self, Decision::Complete { .. } | Decision::Fail { .. })
    }
}

/// What a benchmark workflow does next, in the order of [`Spec`]: signal, timer, activities,
/// then complete with what it saw.
pub fn decide(view: &RunView) -> Decision {
    let Some(spec) = view.spec else {
        return Decision::Fail { message: format!("input of {:?} is not a benchmark spec", view.workflow_type) };
    };
    if spec.signal && view.signal.is_none() {
        return Decision::Wait;
    }
    if spec.timer_ms > 0 && !view.timer_fired {
        return if view.timer_started { Decision::Wait } else { Decision::StartTimer { ms: spec.timer_ms } };
    }
    if view.pending.is_some() {
        return Decision::Wait;
    }
    if view.scheduled < spec.activities {
        return Decision::ScheduleActivity { index: view.scheduled };
    }
    Decision::Complete {
        result: workload::result_value(
            &view.workflow_type,
            view.completed_ok,
            view.timer_fired,
            view.signal.as_deref(),
        ),
    }
}

/// The commands that carry out `decision`; activities go to `task_queue`.
pub fn commands(decision: &Decision, task_queue: &str) -> Vec<Command> {
    let (command_type, attributes) = match decision {
        Decision::Wait => return Vec::new(),
        Decision::StartTimer { ms } => (
            CommandType::StartTimer,
            command::Attributes::StartTimerCommandAttributes(StartTimerCommandAttributes {
                timer_id: TIMER_ID.to_string(),
                start_to_fire_timeout: Some(duration(Duration::from_millis(*ms))),
            }),
        ),
        Decision::ScheduleActivity { index } => (
            CommandType::ScheduleActivityTask,
            command::Attributes::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                activity_id: index.to_string(),
                activity_type: Some(ActivityType { name: workload::ACTIVITY_TYPE.to_string() }),
                task_queue: Some(TaskQueue {
                    name: task_queue.to_string(),
                    kind: TaskQueueKind::Normal as i32,
                    ..Default::default()
                }),
                input: Some(workload::activity_input(*index)),
                start_to_close_timeout: Some(duration(ACTIVITY_START_TO_CLOSE)),
                ..Default::default()
            }),
        ),
        Decision::Complete { result } => (
            CommandType::CompleteWorkflowExecution,
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes { result: Some(workload::json_payloads(result)) },
            ),
        ),
        Decision::Fail { message } => (
            CommandType::FailWorkflowExecution,
            command::Attributes::FailWorkflowExecutionCommandAttributes(FailWorkflowExecutionCommandAttributes {
                failure: Some(Failure { message: message.clone(), ..Default::default() }),
            }),
        ),
    };
    vec![Command { command_type: command_type as i32, attributes: Some(attributes), ..Default::default() }]
}

pub fn duration(d: Duration) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

/// Checks a run's close event: `Ok` if it completed with exactly `expected` as its result data.
pub fn check_close(event: &HistoryEvent, expected: &[u8]) -> Result<(), String> {
    match &event.attributes {
        Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
            let data = a.result.as_ref().and_then(|p| p.payloads.first()).map(|p| p.data.as_slice());
            match data {
                Some(data) if data == expected => Ok(()),
                other => Err(format!(
                    "completed with result {}, expected {}",
                    other.map_or("(none)".into(), String::from_utf8_lossy),
                    String::from_utf8_lossy(expected)
                )),
            }
        }
        Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
            Err(format!("failed: {}", a.failure.as_ref().map_or("", |f| f.message.as_str())))
        }
        Some(Attributes::WorkflowExecutionTimedOutEventAttributes(_)) => Err("timed out".into()),
        Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => Err(format!("terminated: {}", a.reason)),
        Some(Attributes::WorkflowExecutionCanceledEventAttributes(_)) => Err("canceled".into()),
        Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(_)) => Err("continued as new".into()),
        _ => Err(format!("event {} (type {}) is not a close event", event.event_id, event.event_type)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::workload::{Workload, activity_input, expected_result, json_payloads};
    use temporalio_protos::temporal::api::common::v1::WorkflowType;
    use temporalio_protos::temporal::api::history::v1::*;

    /// Builds histories event by event with contiguous ids, as a server would.
    pub(crate) struct Builder {
        pub events: Vec<HistoryEvent>,
    }

    impl Builder {
        pub fn start(workload: Workload, spec: Spec) -> Builder {
            let mut b = Builder { events: Vec::new() };
            b.push(Attributes::WorkflowExecutionStartedEventAttributes(WorkflowExecutionStartedEventAttributes {
                workflow_type: Some(WorkflowType { name: workload.workflow_type() }),
                input: Some(spec.to_payloads()),
                ..Default::default()
            }));
            b.workflow_task();
            b
        }

        pub fn push(&mut self, attributes: Attributes) -> i64 {
            let event_id = self.events.len() as i64 + 1;
            self.events.push(HistoryEvent { event_id, attributes: Some(attributes), ..Default::default() });
            event_id
        }

        /// WorkflowTaskScheduled, WorkflowTaskStarted.
        pub fn workflow_task(&mut self) {
            self.push(Attributes::WorkflowTaskScheduledEventAttributes(Default::default()));
            self.push(Attributes::WorkflowTaskStartedEventAttributes(Default::default()));
        }

        pub fn completed_task(&mut self) {
            self.push(Attributes::WorkflowTaskCompletedEventAttributes(Default::default()));
        }

        /// A full activity round after a started workflow task: completed task, activity
        /// scheduled, started, completed with `result`, next workflow task.
        pub fn activity_round(&mut self, index: u32, result: u32) {
            self.completed_task();
            let scheduled_event_id =
                self.push(Attributes::ActivityTaskScheduledEventAttributes(ActivityTaskScheduledEventAttributes {
                    input: Some(activity_input(index)),
                    ..Default::default()
                }));
            self.push(Attributes::ActivityTaskStartedEventAttributes(Default::default()));
            self.push(Attributes::ActivityTaskCompletedEventAttributes(ActivityTaskCompletedEventAttributes {
                scheduled_event_id,
                result: Some(activity_input(result)),
                ..Default::default()
            }));
            self.workflow_task();
        }

        pub fn signal(&mut self, name: &str, value: &str) {
            self.push(Attributes::WorkflowExecutionSignaledEventAttributes(WorkflowExecutionSignaledEventAttributes {
                signal_name: name.to_string(),
                input: Some(json_payloads(&value.into())),
                ..Default::default()
            }));
        }
    }

    fn spec(workload: Workload) -> Spec {
        Spec::for_workload(workload, 3, 1000)
    }

    fn complete_data(decision: &Decision) -> Vec<u8> {
        match decision {
            Decision::Complete { result } => serde_json::to_vec(result).unwrap(),
            other => panic!("expected Complete, got {other:?}"),
        }
    }

    #[test]
    fn a_full_history_is_parsed() {
        let mut b = Builder::start(Workload::TenActivity, spec(Workload::TenActivity));
        b.activity_round(0, 0);
        let view = RunView::from_full(&b.events).unwrap();
        assert_eq!(view.workflow_type, "bench-ten-activity");
        assert_eq!(view.spec, Some(spec(Workload::TenActivity)));
        assert_eq!(view.last_event_id, b.events.len() as i64);
        assert_eq!((view.scheduled, view.completed_ok, view.bad_activities, view.pending), (1, 1, 0, None));
        assert_eq!(decide(&view), Decision::ScheduleActivity { index: 1 });
    }

    #[test]
    fn one_activity_runs_schedule_then_complete() {
        let spec = spec(Workload::OneActivity);
        let mut b = Builder::start(Workload::OneActivity, spec);
        let view = RunView::from_full(&b.events).unwrap();
        assert_eq!(decide(&view), Decision::ScheduleActivity { index: 0 });
        b.activity_round(0, 0);
        let view = RunView::from_full(&b.events).unwrap();
        let decision = decide(&view);
        assert!(decision.closes());
        assert_eq!(complete_data(&decision), expected_result(Workload::OneActivity, spec, "any"));
    }

    #[test]
    fn a_wrong_activity_result_changes_the_workflow_result() {
        let spec = spec(Workload::OneActivity);
        let mut b = Builder::start(Workload::OneActivity, spec);
        b.activity_round(0, 7);
        let view = RunView::from_full(&b.events).unwrap();
        assert_eq!((view.completed_ok, view.bad_activities), (0, 1));
        assert_ne!(complete_data(&decide(&view)), expected_result(Workload::OneActivity, spec, "any"));
    }

    #[test]
    fn a_partial_history_continues_the_cached_view() {
        let spec = spec(Workload::LongHistory);
        let mut b = Builder::start(Workload::LongHistory, spec);
        let (view, kind) = merge(None, &b.events).unwrap();
        assert_eq!(kind, HistoryKind::Full);
        let seen = b.events.len();
        b.activity_round(0, 0);
        // The sticky task carries the events after the previous WorkflowTaskStarted.
        let (view, kind) = merge(Some(view), &b.events[seen..]).unwrap();
        assert_eq!(kind, HistoryKind::Partial);
        assert_eq!(view, RunView::from_full(&b.events).unwrap());
        assert_eq!(decide(&view), Decision::ScheduleActivity { index: 1 });

        let seen = b.events.len();
        b.activity_round(1, 1);
        b.activity_round(2, 2);
        let (view, _) = merge(Some(view), &b.events[seen..]).unwrap();
        assert_eq!(view, RunView::from_full(&b.events).unwrap());
        assert_eq!(complete_data(&decide(&view)), expected_result(Workload::LongHistory, spec, "x"));
    }

    #[test]
    fn a_full_history_replaces_whatever_was_cached() {
        let spec = spec(Workload::TenActivity);
        let mut b = Builder::start(Workload::TenActivity, spec);
        b.activity_round(0, 0);
        let stale = RunView { scheduled: 9, completed_ok: 9, last_event_id: 99, ..Default::default() };
        let (view, kind) = merge(Some(stale), &b.events).unwrap();
        assert_eq!(kind, HistoryKind::Full);
        assert_eq!(view, RunView::from_full(&b.events).unwrap());
    }

    #[test]
    fn a_partial_history_without_a_cached_view_is_a_miss() {
        let mut b = Builder::start(Workload::OneActivity, spec(Workload::OneActivity));
        let seen = b.events.len();
        b.activity_round(0, 0);
        assert_eq!(merge(None, &b.events[seen..]), Err(MergeError::NotCached { first_event_id: seen as i64 + 1 }));
        assert_eq!(merge(None, &[]), Err(MergeError::Empty));
    }

    #[test]
    fn a_gap_or_overlap_is_a_miss() {
        let mut b = Builder::start(Workload::TenActivity, spec(Workload::TenActivity));
        let view = RunView::from_full(&b.events[..2]).unwrap();
        let seen = b.events.len();
        b.activity_round(0, 0);
        // The cache stopped at event 2, the task starts after event 3.
        assert_eq!(merge(Some(view.clone()), &b.events[seen..]), Err(MergeError::Gap { expected: 3, got: 4 }));
        // Overlap: the task repeats event 2.
        assert_eq!(merge(Some(view.clone()), &b.events[1..]), Err(MergeError::Gap { expected: 3, got: 2 }));
        // Events out of order inside one history.
        let mut shuffled = b.events.clone();
        shuffled.swap(3, 4);
        assert_eq!(RunView::from_full(&shuffled), Err(MergeError::Gap { expected: 4, got: 5 }));
    }

    #[test]
    fn the_signal_workload_waits_for_its_signal() {
        let spec = spec(Workload::Signal);
        let mut b = Builder::start(Workload::Signal, spec);
        assert_eq!(decide(&RunView::from_full(&b.events).unwrap()), Decision::Wait);
        b.completed_task();
        b.signal("other", "ignored");
        b.signal(SIGNAL_NAME, "sig-wf-7");
        b.signal(SIGNAL_NAME, "second");
        b.workflow_task();
        let view = RunView::from_full(&b.events).unwrap();
        assert_eq!(view.signal.as_deref(), Some("sig-wf-7"));
        assert_eq!(complete_data(&decide(&view)), expected_result(Workload::Signal, spec, "wf-7"));
    }

    #[test]
    fn the_timer_workload_starts_one_timer_then_completes() {
        let spec = spec(Workload::Timer);
        let mut b = Builder::start(Workload::Timer, spec);
        assert_eq!(decide(&RunView::from_full(&b.events).unwrap()), Decision::StartTimer { ms: 1000 });
        b.completed_task();
        b.push(Attributes::TimerStartedEventAttributes(Default::default()));
        assert_eq!(decide(&RunView::from_full(&b.events).unwrap()), Decision::Wait);
        b.push(Attributes::TimerFiredEventAttributes(Default::default()));
        b.workflow_task();
        let view = RunView::from_full(&b.events).unwrap();
        assert_eq!(complete_data(&decide(&view)), expected_result(Workload::Timer, spec, "x"));
    }

    #[test]
    fn a_run_without_a_spec_is_failed() {
        let mut b = Builder { events: Vec::new() };
        b.push(Attributes::WorkflowExecutionStartedEventAttributes(Default::default()));
        let decision = decide(&RunView::from_full(&b.events).unwrap());
        assert!(matches!(decision, Decision::Fail { .. }));
        assert_eq!(commands(&decision, "q")[0].command_type, CommandType::FailWorkflowExecution as i32);
    }

    #[test]
    fn commands_carry_their_attributes() {
        assert!(commands(&Decision::Wait, "q").is_empty());
        let c = commands(&Decision::ScheduleActivity { index: 4 }, "q").remove(0);
        assert_eq!(c.command_type, CommandType::ScheduleActivityTask as i32);
        let Some(command::Attributes::ScheduleActivityTaskCommandAttributes(a)) = c.attributes else { panic!() };
        assert_eq!((a.activity_id.as_str(), a.task_queue.unwrap().name.as_str()), ("4", "q"));
        assert_eq!(a.input, Some(activity_input(4)));
        let c = commands(&Decision::StartTimer { ms: 1500 }, "q").remove(0);
        let Some(command::Attributes::StartTimerCommandAttributes(a)) = c.attributes else { panic!() };
        assert_eq!(a.start_to_fire_timeout, Some(prost_wkt_types::Duration { seconds: 1, nanos: 500_000_000 }));
    }

    #[test]
    fn close_events_are_checked() {
        let ok = HistoryEvent {
            event_id: 9,
            attributes: Some(Attributes::WorkflowExecutionCompletedEventAttributes(
                WorkflowExecutionCompletedEventAttributes {
                    result: Some(json_payloads(&"r".into())),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        assert_eq!(check_close(&ok, br#""r""#), Ok(()));
        assert!(check_close(&ok, br#""s""#).unwrap_err().contains("expected"));
        let failed = HistoryEvent {
            attributes: Some(Attributes::WorkflowExecutionFailedEventAttributes(Default::default())),
            ..Default::default()
        };
        assert!(check_close(&failed, b"").unwrap_err().starts_with("failed"));
        assert!(check_close(&HistoryEvent::default(), b"").is_err());
    }
}
