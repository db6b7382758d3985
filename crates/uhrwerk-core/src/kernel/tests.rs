//! Scenario tests of the workflow state machine. A [`Run`] harness plays the engine and the
//! worker: it starts a run, takes tasks through tokens, keeps the persisted history and the
//! pending durable timers, and renders each step's events and effects as compact strings.

use prost::Message;

use super::*;
use crate::config::Limits;
use crate::pb::command::v1 as command_pb;
use crate::pb::common::v1 as common_pb;
use crate::pb::enums::v1 as enums_pb;
use crate::pb::failure::v1 as failure_pb;
use crate::pb::history::v1 as history_pb;
use crate::pb::taskqueue::v1 as taskqueue_pb;
use crate::pb::workflowservice::v1 as workflowservice_pb;
use crate::state::{ActivityState, RunState};
use crate::time::{self, Millis};
use crate::token::TaskToken;

use command_pb::command::Attributes as CommandAttributes;
use enums_pb::{CommandType, EventType, RetryState, TimeoutType, WorkflowTaskFailedCause as Cause};
use history_pb::history_event::Attributes;

const T0: Millis = 1_700_000_000_000;
const TQ: &str = "tq";

/// Borrows the attributes of `$event`, which must be of variant `$variant`.
macro_rules! attrs {
    ($event:expr, $variant:ident) => {
        match &$event.attributes {
            Some(Attributes::$variant(a)) => a,
            other => panic!("expected {}, got {other:?}", stringify!($variant)),
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// One run driven through the kernel the way the engine would drive it.
struct Run {
    limits: Limits,
    now: Millis,
    st: RunState,
    /// Every persisted event, in id order.
    history: Vec<history_pb::HistoryEvent>,
    /// Armed timers not yet reported done.
    timers: Vec<TimerTask>,
    /// What the last step produced.
    events: Vec<history_pb::HistoryEvent>,
    effects: Vec<Effect>,
    state_changed: bool,
}

impl Run {
    fn start() -> Self {
        Self::start_with(Limits::default(), start_request())
    }

    fn start_with(limits: Limits, request: workflowservice_pb::StartWorkflowExecutionRequest) -> Self {
        let mut run = Run {
            limits,
            now: T0,
            st: RunState::default(),
            history: Vec::new(),
            timers: Vec::new(),
            events: Vec::new(),
            effects: Vec::new(),
            state_changed: false,
        };
        run.step(|ctx, st| {
            *st = start_run(ctx, StartOptions { run_id: "run-1".into(), request, signal: None, parent: None })
        });
        run
    }

    /// Runs one transition at `self.now` and records its outcome like the engine would commit it.
    fn step<T>(&mut self, f: impl FnOnce(&mut Ctx<'_>, &mut RunState) -> T) -> T {
        let mut ctx = Ctx::new(self.now, &self.limits);
        let out = f(&mut ctx, &mut self.st);
        let first_new = self.history.len() as i64 + 1;
        for (idx, event) in ctx.events.iter().enumerate() {
            assert_eq!(event.event_id, first_new + idx as i64, "event ids must be contiguous");
            assert!(event.event_time.is_some(), "event {} has no event_time", event.event_id);
        }
        self.history.extend(ctx.events.iter().cloned());
        assert_eq!(self.st.next_event_id, self.history.len() as i64 + 1);
        let size: i64 = self.history.iter().map(|e| e.encoded_len() as i64).sum();
        assert_eq!(self.st.history_size_bytes, size, "history_size_bytes is the sum of persisted event sizes");
        for effect in &ctx.effects {
            match effect {
                Effect::ArmTimer(t) => self.timers.push(t.clone()),
                Effect::TimerDone(t) => self.timers.retain(|p| !same_timer(p, t)),
                _ => {}
            }
        }
        self.state_changed = ctx.state_changed;
        self.events = ctx.events;
        self.effects = ctx.effects;
        out
    }

    fn advance(&mut self, ms: Millis) {
        self.now += ms;
    }

    fn event(&self, id: i64) -> &history_pb::HistoryEvent {
        &self.history[(id - 1) as usize]
    }

    /// The whole history, rendered.
    fn rendered_history(&self) -> Vec<String> {
        self.history.iter().map(render_event).collect()
    }

    /// The last step's events, rendered.
    fn new_events(&self) -> Vec<String> {
        self.events.iter().map(render_event).collect()
    }

    /// The last step's effects, rendered.
    fn new_effects(&self) -> Vec<String> {
        self.effects.iter().map(render_effect).collect()
    }

    fn poll_workflow_task(&mut self) -> WorkflowTaskStarted {
        let scheduled_event_id =
            self.st.workflow_task.as_ref().expect("a workflow task is scheduled").scheduled_event_id;
        self.step(|ctx, st| record_workflow_task_started(ctx, st, scheduled_event_id, TQ, "worker", "poll-req", None))
            .expect("poll takes the scheduled workflow task")
    }

    fn complete_workflow_task(&mut self, task: &WorkflowTaskStarted, commands: Vec<command_pb::Command>) -> Result<()> {
        self.complete_workflow_task_with(task, completion(commands))
    }

    fn complete_workflow_task_with(
        &mut self,
        task: &WorkflowTaskStarted,
        request: workflowservice_pb::RespondWorkflowTaskCompletedRequest,
    ) -> Result<()> {
        let token = decode(&task.token);
        self.step(|ctx, st| complete_workflow_task(ctx, st, &token, request)).map(|_| ())
    }

    fn poll_activity(&mut self, scheduled_event_id: i64) -> ActivityStarted {
        let attempt = self.st.activities.get(&scheduled_event_id).expect("activity is pending").attempt;
        self.step(|ctx, st| record_activity_started(ctx, st, scheduled_event_id, attempt, "activity-worker", "act-req"))
            .expect("poll takes the activity task")
    }

    fn complete_activity(&mut self, token: &[u8], result: &str) -> Result<()> {
        let token = decode(token);
        self.step(|ctx, st| complete_activity(ctx, st, &token, Some(payloads(result)), "activity-worker"))
    }

    fn fail_activity(&mut self, token: &[u8], failure: failure_pb::Failure) -> Result<()> {
        let token = decode(token);
        self.step(|ctx, st| fail_activity(ctx, st, &token, failure, "activity-worker", None))
    }

    /// The single pending timer of `kind`.
    fn pending_timer(&self, kind: TimerKind) -> TimerTask {
        let matching: Vec<_> = self.timers.iter().filter(|t| t.timer_kind() == kind).collect();
        assert_eq!(matching.len(), 1, "expected one pending {kind:?} timer, have {:?}", self.timers);
        matching[0].clone()
    }

    /// Moves the clock to the pending timer of `kind` and fires it.
    fn fire_pending(&mut self, kind: TimerKind) {
        let timer = self.pending_timer(kind);
        assert!(timer.fire_at_ms >= self.now, "timers are not armed in the past");
        self.now = timer.fire_at_ms;
        self.fire(&timer);
    }

    fn fire(&mut self, timer: &TimerTask) {
        self.step(|ctx, st| fire_timer(ctx, st, timer));
    }

    /// Starts the run's first workflow task and completes it by scheduling `activity`.
    /// Returns the activity's scheduled event id (5).
    fn schedule_first_activity(&mut self, activity: command_pb::ScheduleActivityTaskCommandAttributes) -> i64 {
        let task = self.poll_workflow_task();
        self.complete_workflow_task(&task, vec![schedule_activity_command(activity)])
            .expect("completion scheduling an activity is accepted");
        assert_eq!(self.new_events(), ["4 WorkflowTaskCompleted", "5 ActivityTaskScheduled"]);
        5
    }
}

fn same_timer(a: &TimerTask, b: &TimerTask) -> bool {
    (a.kind, a.id, a.attempt) == (b.kind, b.id, b.attempt)
}

fn decode(token: &[u8]) -> TaskToken {
    TaskToken::decode_bytes(token).expect("kernel issues valid tokens")
}

fn render_event(event: &history_pb::HistoryEvent) -> String {
    let event_type = EventType::try_from(event.event_type).expect("known event type");
    format!("{} {event_type:?}", event.event_id)
}

fn render_effect(effect: &Effect) -> String {
    match effect {
        Effect::DispatchWorkflowTask { task_queue, sticky_queue, scheduled_event_id, attempt } => {
            let sticky = if sticky_queue.is_empty() { String::new() } else { format!(" sticky {sticky_queue}") };
            format!("DispatchWorkflowTask {task_queue}{sticky} #{scheduled_event_id} attempt {attempt}")
        }
        Effect::DispatchActivityTask { task_queue, scheduled_event_id, attempt } => {
            format!("DispatchActivityTask {task_queue} #{scheduled_event_id} attempt {attempt}")
        }
        Effect::TaskStarted { scheduled_event_id } => format!("TaskStarted #{scheduled_event_id}"),
        Effect::ArmTimer(t) => {
            format!("ArmTimer {:?} #{} attempt {} at +{}", t.timer_kind(), t.id, t.attempt, t.fire_at_ms - T0)
        }
        Effect::TimerDone(t) => format!("TimerDone {:?} #{} attempt {}", t.timer_kind(), t.id, t.attempt),
        Effect::RunClosed => "RunClosed".into(),
        Effect::Transfer(t) => {
            let children =
                if t.children.is_empty() { String::new() } else { format!(" {} children", t.children.len()) };
            format!("Transfer {:?} #{}{children}", t.transfer_kind(), t.event_id)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

fn start_request() -> workflowservice_pb::StartWorkflowExecutionRequest {
    workflowservice_pb::StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: "wf-1".into(),
        workflow_type: Some(common_pb::WorkflowType { name: "Hello".into() }),
        task_queue: Some(normal_task_queue(TQ)),
        input: Some(payloads("world")),
        identity: "client".into(),
        request_id: "start-req".into(),
        ..Default::default()
    }
}

fn payloads(data: &str) -> common_pb::Payloads {
    common_pb::Payloads { payloads: vec![common_pb::Payload { data: data.as_bytes().to_vec(), ..Default::default() }] }
}

fn completion(commands: Vec<command_pb::Command>) -> workflowservice_pb::RespondWorkflowTaskCompletedRequest {
    workflowservice_pb::RespondWorkflowTaskCompletedRequest {
        commands,
        identity: "worker".into(),
        ..Default::default()
    }
}

/// An activity with only a 10 s start-to-close timeout and the default retry policy.
fn activity(activity_id: &str) -> command_pb::ScheduleActivityTaskCommandAttributes {
    command_pb::ScheduleActivityTaskCommandAttributes {
        activity_id: activity_id.into(),
        activity_type: Some(common_pb::ActivityType { name: "greet".into() }),
        task_queue: Some(normal_task_queue(TQ)),
        input: Some(payloads("in")),
        start_to_close_timeout: Some(time::duration(10_000)),
        ..Default::default()
    }
}

fn retry_policy(initial_ms: Millis, maximum_attempts: i32) -> Option<common_pb::RetryPolicy> {
    Some(common_pb::RetryPolicy {
        initial_interval: Some(time::duration(initial_ms)),
        maximum_attempts,
        ..Default::default()
    })
}

fn schedule_activity_command(a: command_pb::ScheduleActivityTaskCommandAttributes) -> command_pb::Command {
    command_pb::Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(CommandAttributes::ScheduleActivityTaskCommandAttributes(a)),
        ..Default::default()
    }
}

fn complete_workflow_command(result: &str) -> command_pb::Command {
    command_pb::Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(CommandAttributes::CompleteWorkflowExecutionCommandAttributes(
            command_pb::CompleteWorkflowExecutionCommandAttributes { result: Some(payloads(result)) },
        )),
        ..Default::default()
    }
}

fn record_marker_command(name: &str) -> command_pb::Command {
    command_pb::Command {
        command_type: CommandType::RecordMarker as i32,
        attributes: Some(CommandAttributes::RecordMarkerCommandAttributes(command_pb::RecordMarkerCommandAttributes {
            marker_name: name.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn start_timer_command() -> command_pb::Command {
    start_timer_command_with_id("t1")
}

fn start_timer_command_with_id(timer_id: &str) -> command_pb::Command {
    command_pb::Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(CommandAttributes::StartTimerCommandAttributes(command_pb::StartTimerCommandAttributes {
            timer_id: timer_id.into(),
            start_to_fire_timeout: Some(time::duration(1000)),
        })),
        ..Default::default()
    }
}

fn app_failure(message: &str, non_retryable: bool) -> failure_pb::Failure {
    failure_pb::Failure {
        message: message.into(),
        source: "PythonSDK".into(),
        failure_info: Some(failure_pb::failure::FailureInfo::ApplicationFailureInfo(
            failure_pb::ApplicationFailureInfo { r#type: "AppError".into(), non_retryable, ..Default::default() },
        )),
        ..Default::default()
    }
}

fn timeout_type_of(failure: &failure_pb::Failure) -> TimeoutType {
    match &failure.failure_info {
        Some(failure_pb::failure::FailureInfo::TimeoutFailureInfo(info)) => {
            TimeoutType::try_from(info.timeout_type).expect("known timeout type")
        }
        other => panic!("expected a timeout failure, got {other:?}"),
    }
}

/// A run whose second workflow task (scheduled 6, started 7) is in flight while activity 5
/// (already started) is pending: the setup for buffering scenarios.
fn run_with_started_task_and_running_activity() -> (Run, WorkflowTaskStarted, ActivityStarted) {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let mut request = completion(vec![schedule_activity_command(activity("a1"))]);
    request.force_create_new_workflow_task = true;
    run.complete_workflow_task_with(&task, request).expect("completion is accepted");
    assert_eq!(run.new_events(), ["4 WorkflowTaskCompleted", "5 ActivityTaskScheduled", "6 WorkflowTaskScheduled"]);
    run.advance(100);
    let activity_task = run.poll_activity(5);
    run.advance(100);
    let second = run.poll_workflow_task();
    assert_eq!(second.started_event_id, 7);
    (run, second, activity_task)
}

// ---------------------------------------------------------------------------------------------
// Workflow task cycle
// ---------------------------------------------------------------------------------------------

#[test]
fn hello_world_with_one_activity() {
    let mut run = Run::start();
    assert_eq!(run.new_events(), ["1 WorkflowExecutionStarted", "2 WorkflowTaskScheduled"]);
    assert_eq!(run.new_effects(), ["DispatchWorkflowTask tq #2 attempt 1"]);
    let started = attrs!(run.event(1), WorkflowExecutionStartedEventAttributes);
    assert_eq!(started.original_execution_run_id, "run-1");
    assert_eq!(started.first_execution_run_id, "run-1");
    assert_eq!(started.attempt, 1);
    assert_eq!(time::duration_ms(&started.workflow_task_timeout), 10_000);
    assert_eq!(attrs!(run.event(2), WorkflowTaskScheduledEventAttributes).attempt, 1);

    run.advance(10);
    let task = run.poll_workflow_task();
    assert_eq!(run.new_events(), ["3 WorkflowTaskStarted"]);
    assert_eq!(run.new_effects(), ["TaskStarted #2", "ArmTimer WorkflowTaskStartToClose #2 attempt 1 at +10010"]);
    assert_eq!(
        (task.scheduled_event_id, task.started_event_id, task.previous_started_event_id, task.attempt),
        (2, 3, 0, 1)
    );
    assert_eq!((task.scheduled_time_ms, task.started_time_ms), (T0, T0 + 10));
    let wft_started = attrs!(run.event(3), WorkflowTaskStartedEventAttributes);
    assert_eq!(wft_started.scheduled_event_id, 2);
    assert_eq!((wft_started.identity.as_str(), wft_started.request_id.as_str()), ("worker", "poll-req"));
    assert!(!wft_started.suggest_continue_as_new);

    run.advance(10);
    run.complete_workflow_task(&task, vec![schedule_activity_command(activity("a1"))]).expect("accepted");
    assert_eq!(run.new_events(), ["4 WorkflowTaskCompleted", "5 ActivityTaskScheduled"]);
    assert_eq!(
        run.new_effects(),
        ["TimerDone WorkflowTaskStartToClose #2 attempt 1", "DispatchActivityTask tq #5 attempt 1"]
    );
    let completed = attrs!(run.event(4), WorkflowTaskCompletedEventAttributes);
    assert_eq!((completed.scheduled_event_id, completed.started_event_id), (2, 3));
    let scheduled = attrs!(run.event(5), ActivityTaskScheduledEventAttributes);
    assert_eq!(scheduled.workflow_task_completed_event_id, 4);
    assert_eq!(scheduled.activity_id, "a1");
    assert!(scheduled.retry_policy.is_some(), "the effective retry policy is written");

    run.advance(1000);
    let activity_task = run.poll_activity(5);
    assert!(run.new_events().is_empty(), "ActivityTaskStarted is written only when the attempt ends");
    assert_eq!(
        run.new_effects(),
        [
            "TaskStarted #5",
            "TimerDone ActivityScheduleToStart #5 attempt 1",
            "ArmTimer ActivityStartToClose #5 attempt 1 at +11020",
        ]
    );
    assert_eq!(activity_task.info.attempt, 1);
    assert_eq!(decode(&activity_task.token).activity_id, "a1");

    run.advance(2000);
    run.complete_activity(&activity_task.token, "hello world").expect("accepted");
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskCompleted", "8 WorkflowTaskScheduled"]);
    assert_eq!(
        run.new_effects(),
        [
            "TimerDone ActivityStartToClose #5 attempt 1",
            "TimerDone ActivityHeartbeat #5 attempt 1",
            "TimerDone ActivityScheduleToStart #5 attempt 1",
            "TimerDone ActivityScheduleToClose #5 attempt 0",
            "DispatchWorkflowTask tq #8 attempt 1",
        ]
    );
    let act_started = attrs!(run.event(6), ActivityTaskStartedEventAttributes);
    assert_eq!((act_started.scheduled_event_id, act_started.attempt), (5, 1));
    assert_eq!(act_started.last_failure, None);
    assert_eq!(run.event(6).event_time, Some(time::timestamp(T0 + 1020)), "Started carries the attempt's start time");
    assert_eq!(run.event(7).event_time, Some(time::timestamp(T0 + 3020)));
    let act_completed = attrs!(run.event(7), ActivityTaskCompletedEventAttributes);
    assert_eq!((act_completed.scheduled_event_id, act_completed.started_event_id), (5, 6));
    assert_eq!(act_completed.result, Some(payloads("hello world")));
    assert!(run.st.activities.is_empty());

    let task = run.poll_workflow_task();
    assert_eq!(run.new_events(), ["9 WorkflowTaskStarted"]);
    assert_eq!((task.scheduled_event_id, task.started_event_id, task.previous_started_event_id), (8, 9, 3));

    run.complete_workflow_task(&task, vec![complete_workflow_command("done")]).expect("accepted");
    assert_eq!(run.new_events(), ["10 WorkflowTaskCompleted", "11 WorkflowExecutionCompleted"]);
    assert_eq!(run.new_effects(), ["TimerDone WorkflowTaskStartToClose #8 attempt 1", "RunClosed"]);
    let completed = attrs!(run.event(10), WorkflowTaskCompletedEventAttributes);
    assert_eq!((completed.scheduled_event_id, completed.started_event_id), (8, 9));
    let closed = attrs!(run.event(11), WorkflowExecutionCompletedEventAttributes);
    assert_eq!(closed.workflow_task_completed_event_id, 10);
    assert_eq!(closed.result, Some(payloads("done")));

    assert_eq!(run.st.status, enums_pb::WorkflowExecutionStatus::Completed as i32);
    assert_eq!((run.st.close_event_id, run.st.close_time_ms), (11, run.now));
    assert_eq!(run.st.previous_started_event_id, 9);
    assert_eq!(run.st.workflow_task, None);
    assert!(run.timers.is_empty(), "every armed timer was reported done: {:?}", run.timers);
    assert_eq!(run.rendered_history().len(), 11);
}

#[test]
fn activity_result_during_started_task_is_buffered_and_flushed_after_commands() {
    let (mut run, task, activity_task) = run_with_started_task_and_running_activity();

    run.advance(100);
    run.complete_activity(&activity_task.token, "r").expect("accepted");
    assert!(run.new_events().is_empty(), "nothing is written while the workflow task is started");
    assert!(run.state_changed, "the buffer is state to persist");
    assert!(!run.new_effects().iter().any(|e| e.starts_with("DispatchWorkflowTask")));
    assert_eq!(run.st.buffered_events.len(), 2);

    run.advance(100);
    run.complete_workflow_task(&task, vec![record_marker_command("m")]).expect("accepted");
    assert_eq!(
        run.new_events(),
        [
            "8 WorkflowTaskCompleted",
            "9 MarkerRecorded",
            "10 ActivityTaskStarted",
            "11 ActivityTaskCompleted",
            "12 WorkflowTaskScheduled",
        ]
    );
    assert_eq!(
        run.new_effects(),
        ["TimerDone WorkflowTaskStartToClose #6 attempt 1", "DispatchWorkflowTask tq #12 attempt 1"]
    );
    assert_eq!(attrs!(run.event(9), MarkerRecordedEventAttributes).workflow_task_completed_event_id, 8);
    assert_eq!(attrs!(run.event(10), ActivityTaskStartedEventAttributes).scheduled_event_id, 5);
    let completed = attrs!(run.event(11), ActivityTaskCompletedEventAttributes);
    assert_eq!((completed.scheduled_event_id, completed.started_event_id), (5, 10));
    assert_eq!(attrs!(run.event(12), WorkflowTaskScheduledEventAttributes).attempt, 1);
    assert!(run.st.buffered_events.is_empty());
    assert_eq!(run.st.previous_started_event_id, 7);
}

#[test]
fn activity_result_while_task_only_scheduled_is_appended_without_second_task() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    run.complete_workflow_task(
        &task,
        vec![schedule_activity_command(activity("a1")), schedule_activity_command(activity("a2"))],
    )
    .expect("accepted");
    assert_eq!(run.new_events(), ["4 WorkflowTaskCompleted", "5 ActivityTaskScheduled", "6 ActivityTaskScheduled"]);
    let first = run.poll_activity(5);
    let second = run.poll_activity(6);

    run.complete_activity(&first.token, "one").expect("accepted");
    assert_eq!(run.new_events(), ["7 ActivityTaskStarted", "8 ActivityTaskCompleted", "9 WorkflowTaskScheduled"]);
    run.complete_activity(&second.token, "two").expect("accepted");
    assert_eq!(run.new_events(), ["10 ActivityTaskStarted", "11 ActivityTaskCompleted"]);
    assert!(!run.new_effects().iter().any(|e| e.starts_with("DispatchWorkflowTask")));

    let task = run.poll_workflow_task();
    assert_eq!((task.scheduled_event_id, task.started_event_id), (9, 12));
}

#[test]
fn closing_command_with_buffered_events_is_unhandled_command() {
    let (mut run, task, activity_task) = run_with_started_task_and_running_activity();
    run.complete_activity(&activity_task.token, "r").expect("accepted");

    let result = run.complete_workflow_task(&task, vec![complete_workflow_command("done")]);
    assert_eq!(result, Err(Error::InvalidArgument("UnhandledCommand".into())));
    assert_eq!(
        run.new_events(),
        ["8 WorkflowTaskFailed", "9 ActivityTaskStarted", "10 ActivityTaskCompleted", "11 WorkflowTaskScheduled"]
    );
    let failed = attrs!(run.event(8), WorkflowTaskFailedEventAttributes);
    assert_eq!(failed.cause, Cause::UnhandledCommand as i32);
    assert_eq!((failed.scheduled_event_id, failed.started_event_id), (6, 7));
    let completed = attrs!(run.event(10), ActivityTaskCompletedEventAttributes);
    assert_eq!(completed.started_event_id, 9);
    assert!(run.new_effects().contains(&"TimerDone WorkflowTaskStartToClose #6 attempt 1".to_string()));
    assert!(run.new_effects().iter().any(|e| e.starts_with("DispatchWorkflowTask tq #11")));
    assert!(run.st.is_open(), "the closing command was not applied");
    assert!(run.st.buffered_events.is_empty());
    assert_eq!(run.st.previous_started_event_id, 3, "a failed task is not a completed one");

    // The worker sees the new events and may now complete.
    let task = run.poll_workflow_task();
    assert_eq!(task.previous_started_event_id, 3);
    run.complete_workflow_task(&task, vec![complete_workflow_command("done")]).expect("accepted");
    assert_eq!(run.new_events(), ["13 WorkflowTaskCompleted", "14 WorkflowExecutionCompleted"]);
}

#[test]
fn invalid_schedule_activity_discards_whole_completion() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let mut no_timeouts = activity("a1");
    no_timeouts.start_to_close_timeout = None;

    let result = run.complete_workflow_task(
        &task,
        vec![
            record_marker_command("m"),
            schedule_activity_command(activity("ok")),
            schedule_activity_command(no_timeouts),
        ],
    );
    let Err(Error::InvalidArgument(message)) = result else { panic!("expected InvalidArgument, got {result:?}") };
    assert!(message.starts_with("BadScheduleActivityAttributes"), "message: {message}");
    assert_eq!(run.new_events(), ["4 WorkflowTaskFailed"]);
    assert_eq!(
        run.new_effects(),
        ["TimerDone WorkflowTaskStartToClose #2 attempt 1", "DispatchWorkflowTask tq #5 attempt 2"]
    );
    let failed = attrs!(run.event(4), WorkflowTaskFailedEventAttributes);
    assert_eq!(failed.cause, Cause::BadScheduleActivityAttributes as i32);
    assert_eq!((failed.scheduled_event_id, failed.started_event_id), (2, 3));
    assert!(failed.failure.as_ref().is_some_and(|f| f.message.contains("StartToClose")));
    assert!(run.st.activities.is_empty(), "the valid activity of the same completion was discarded too");
    assert_eq!(run.st.activity_count, 0);
    assert_eq!(run.st.previous_started_event_id, 0);

    // Attempt 2 is transient: its events reach the worker but not the history.
    let retry = run.poll_workflow_task();
    assert_eq!((retry.attempt, retry.previous_started_event_id, retry.started_event_id), (2, 0, 6));
    let transient: Vec<String> = retry.transient_events.iter().map(render_event).collect();
    assert_eq!(transient, ["5 WorkflowTaskScheduled", "6 WorkflowTaskStarted"]);
    assert!(run.new_events().is_empty(), "nothing is written when a transient attempt starts");
    assert_eq!(run.new_effects()[1], "ArmTimer WorkflowTaskStartToClose #5 attempt 2 at +10000");
}

#[test]
fn unsupported_command_fails_task_with_its_bad_attributes_cause() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();

    let child = command_pb::Command {
        command_type: CommandType::StartChildWorkflowExecution as i32,
        attributes: Some(CommandAttributes::StartChildWorkflowExecutionCommandAttributes(Default::default())),
        ..Default::default()
    };
    let result = run.complete_workflow_task(&task, vec![child]);
    let Err(Error::InvalidArgument(message)) = result else { panic!("expected InvalidArgument, got {result:?}") };
    assert!(message.starts_with("BadStartChildExecutionAttributes"), "message: {message}");
    assert_eq!(run.new_events(), ["4 WorkflowTaskFailed"]);
    assert_eq!(
        attrs!(run.event(4), WorkflowTaskFailedEventAttributes).cause,
        Cause::BadStartChildExecutionAttributes as i32
    );
    assert!(run.st.is_open());
}

#[test]
fn command_type_must_match_its_attributes() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let mut mismatched = complete_workflow_command("r");
    mismatched.command_type = CommandType::StartTimer as i32;
    let result = run.complete_workflow_task(&task, vec![mismatched]);
    assert!(
        matches!(result, Err(Error::InvalidArgument(ref m)) if m.starts_with("BadStartTimerAttributes")),
        "{result:?}"
    );
    assert_eq!(run.new_events(), ["4 WorkflowTaskFailed"]);
    assert!(run.st.is_open());
}

#[test]
fn user_timer_starts_fires_and_schedules_a_task() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    run.complete_workflow_task(&task, vec![start_timer_command()]).expect("timer accepted");
    assert_eq!(run.new_events(), ["4 WorkflowTaskCompleted", "5 TimerStarted"]);
    let timer = run.pending_timer(TimerKind::UserTimer);
    assert_eq!((timer.id, timer.fire_at_ms), (5, T0 + 1000));
    assert_eq!(run.st.timers["t1"].started_event_id, 5);

    run.fire_pending(TimerKind::UserTimer);
    assert_eq!(run.new_events(), ["6 TimerFired", "7 WorkflowTaskScheduled"]);
    let fired = attrs!(run.event(6), TimerFiredEventAttributes);
    assert_eq!((fired.timer_id.as_str(), fired.started_event_id), ("t1", 5));
    assert!(run.st.timers.is_empty());

    // A duplicate firing (e.g. after a restart) is stale and changes nothing.
    run.fire(&timer);
    assert!(run.new_events().is_empty());
}

#[test]
fn duplicate_timer_id_is_rejected() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let result = run.complete_workflow_task(&task, vec![start_timer_command(), start_timer_command()]);
    assert!(
        matches!(result, Err(Error::InvalidArgument(ref m)) if m.starts_with("StartTimerDuplicateId")),
        "{result:?}"
    );
    assert_eq!(run.new_events(), ["4 WorkflowTaskFailed"]);
    assert!(run.st.timers.is_empty(), "the rejected completion started no timer");
}

#[test]
fn timer_fired_during_task_and_canceled_by_its_completion_is_withdrawn() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    run.complete_workflow_task(&task, vec![start_timer_command(), record_marker_command("m")]).expect("accepted");
    // Something else schedules a task; while it runs, the timer fires and is buffered.
    run.step(|ctx, st| signal_run(ctx, st, SignalInput { signal_name: "go".into(), ..Default::default() }))
        .expect("signal accepted");
    assert_eq!(run.new_events(), ["7 WorkflowExecutionSignaled", "8 WorkflowTaskScheduled"]);
    let task = run.poll_workflow_task();
    run.fire_pending(TimerKind::UserTimer);
    assert!(run.new_events().is_empty(), "TimerFired is buffered behind the started task");

    let cancel = command_pb::Command {
        command_type: CommandType::CancelTimer as i32,
        attributes: Some(CommandAttributes::CancelTimerCommandAttributes(command_pb::CancelTimerCommandAttributes {
            timer_id: "t1".into(),
        })),
        ..Default::default()
    };
    run.complete_workflow_task(&task, vec![cancel]).expect("cancel accepted");
    assert_eq!(run.new_events(), ["10 WorkflowTaskCompleted", "11 TimerCanceled"]);
    let canceled = attrs!(run.event(11), TimerCanceledEventAttributes);
    assert_eq!((canceled.started_event_id, canceled.workflow_task_completed_event_id), (5, 10));
    assert!(run.st.buffered_events.is_empty());
    assert_eq!(run.st.workflow_task, None, "the withdrawn TimerFired needs no new task");
}

#[test]
fn signal_is_buffered_during_a_started_task_and_deduplicated() {
    let mut run = Run::start();
    let signal = SignalInput {
        signal_name: "add".into(),
        input: Some(payloads("1")),
        request_id: "req-1".into(),
        ..Default::default()
    };
    run.step(|ctx, st| signal_run(ctx, st, signal.clone())).expect("accepted");
    assert_eq!(run.new_events(), ["3 WorkflowExecutionSignaled"], "a scheduled task absorbs the signal");

    let task = run.poll_workflow_task();
    run.step(|ctx, st| signal_run(ctx, st, signal.clone())).expect("a retried call is accepted");
    assert!(run.new_events().is_empty() && run.st.buffered_events.is_empty(), "the retried signal is dropped");
    let second = SignalInput { request_id: "req-2".into(), ..signal.clone() };
    run.step(|ctx, st| signal_run(ctx, st, second)).expect("accepted");
    assert!(run.new_events().is_empty());
    assert_eq!(run.st.buffered_events.len(), 1);

    run.complete_workflow_task(&task, vec![]).expect("accepted");
    assert_eq!(run.new_events(), ["5 WorkflowTaskCompleted", "6 WorkflowExecutionSignaled", "7 WorkflowTaskScheduled"]);
    assert_eq!(run.st.signal_count, 2);
}

#[test]
fn signal_to_a_closed_run_is_not_found_unless_it_is_a_retry() {
    let mut run = Run::start();
    let acknowledged = SignalInput { signal_name: "early".into(), request_id: "req-1".into(), ..Default::default() };
    run.step(|ctx, st| signal_run(ctx, st, acknowledged.clone())).expect("accepted");
    let task = run.poll_workflow_task();
    run.complete_workflow_task(&task, vec![complete_workflow_command("done")]).expect("accepted");
    let result =
        run.step(|ctx, st| signal_run(ctx, st, SignalInput { signal_name: "late".into(), ..Default::default() }));
    assert_eq!(result, Err(Error::NotFound("workflow execution already completed".into())));
    // As Temporal: the retry of a signal the run took is acknowledged after the run closed.
    run.step(|ctx, st| signal_run(ctx, st, acknowledged)).expect("a retried call is acknowledged");
    assert!(run.new_events().is_empty());
}

#[test]
fn closing_command_not_last_is_rejected() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();

    let result = run.complete_workflow_task(&task, vec![complete_workflow_command("done"), record_marker_command("m")]);
    let Err(Error::InvalidArgument(message)) = result else { panic!("expected InvalidArgument, got {result:?}") };
    assert!(message.starts_with("BadCompleteWorkflowExecutionAttributes"), "message: {message}");
    assert_eq!(run.new_events(), ["4 WorkflowTaskFailed"]);
    assert!(!run.new_effects().contains(&"RunClosed".to_string()));
    assert!(run.st.is_open());
    assert_eq!(run.st.close_event_id, 0);
}

#[test]
fn workflow_task_failed_by_worker_schedules_next_attempt() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let request = workflowservice_pb::RespondWorkflowTaskFailedRequest {
        cause: Cause::WorkflowWorkerUnhandledFailure as i32,
        failure: Some(app_failure("panic in workflow", false)),
        identity: "worker".into(),
        ..Default::default()
    };
    let token = decode(&task.token);

    run.step(|ctx, st| fail_workflow_task(ctx, st, &token, request)).expect("accepted");
    assert_eq!(run.new_events(), ["4 WorkflowTaskFailed"]);
    let failed = attrs!(run.event(4), WorkflowTaskFailedEventAttributes);
    assert_eq!(failed.cause, Cause::WorkflowWorkerUnhandledFailure as i32);
    assert_eq!(failed.failure.as_ref().map(|f| f.message.as_str()), Some("panic in workflow"));
    let second = run.poll_workflow_task();
    assert_eq!(second.attempt, 2);

    // A successful completion resets the attempt of the next task.
    let mut request = completion(vec![]);
    request.force_create_new_workflow_task = true;
    run.complete_workflow_task_with(&second, request).expect("accepted");
    assert_eq!(
        run.new_events(),
        ["5 WorkflowTaskScheduled", "6 WorkflowTaskStarted", "7 WorkflowTaskCompleted", "8 WorkflowTaskScheduled"],
        "the transient attempt's events are written when it completes"
    );
    assert_eq!(attrs!(run.event(5), WorkflowTaskScheduledEventAttributes).attempt, 2);
    assert_eq!(attrs!(run.event(8), WorkflowTaskScheduledEventAttributes).attempt, 1);
}

#[test]
fn workflow_task_timeout_reschedules_and_stale_timers_do_nothing() {
    let mut run = Run::start();
    run.advance(5);
    let task = run.poll_workflow_task();
    let first_timer = run.pending_timer(TimerKind::WorkflowTaskStartToClose);
    assert_eq!(first_timer.fire_at_ms, T0 + 5 + 10_000);

    run.fire_pending(TimerKind::WorkflowTaskStartToClose);
    assert_eq!(run.new_events(), ["4 WorkflowTaskTimedOut"]);
    assert_eq!(
        run.new_effects(),
        ["TimerDone WorkflowTaskStartToClose #2 attempt 1", "DispatchWorkflowTask tq #5 attempt 2"]
    );
    let timed_out = attrs!(run.event(4), WorkflowTaskTimedOutEventAttributes);
    assert_eq!((timed_out.scheduled_event_id, timed_out.started_event_id), (2, 3));
    assert_eq!(timed_out.timeout_type, TimeoutType::StartToClose as i32);
    assert_eq!(
        run.complete_workflow_task(&task, vec![]),
        Err(Error::NotFound("Workflow task not found.".into())),
        "the timed-out task's token is stale"
    );

    let second = run.poll_workflow_task();
    assert_eq!((second.scheduled_event_id, second.started_event_id, second.attempt), (5, 6, 2));

    // The first timer fires again (a duplicate delivery), then one with the right id but wrong attempt.
    let state_before = run.st.clone();
    run.fire(&first_timer);
    assert!(run.new_events().is_empty());
    assert_eq!(run.new_effects(), ["TimerDone WorkflowTaskStartToClose #2 attempt 1"]);
    run.fire(&TimerTask { fire_at_ms: run.now, ..TimerTask::key(TimerKind::WorkflowTaskStartToClose, 5, 1) });
    assert!(run.new_events().is_empty());
    assert_eq!(run.new_effects(), ["TimerDone WorkflowTaskStartToClose #5 attempt 1"]);
    assert_eq!(run.st, state_before);

    // The current task's timer after the task completed.
    let current_timer = run.pending_timer(TimerKind::WorkflowTaskStartToClose);
    assert_eq!((current_timer.id, current_timer.attempt), (5, 2));
    run.complete_workflow_task(&second, vec![]).expect("accepted");
    assert_eq!(run.new_events(), ["5 WorkflowTaskScheduled", "6 WorkflowTaskStarted", "7 WorkflowTaskCompleted"]);
    let state_before = run.st.clone();
    run.fire(&current_timer);
    assert!(run.new_events().is_empty());
    assert_eq!(run.new_effects(), ["TimerDone WorkflowTaskStartToClose #5 attempt 2"]);
    assert_eq!(run.st, state_before);
}

#[test]
fn stale_workflow_task_tokens_are_not_found() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let not_found: Result<()> = Err(Error::NotFound("Workflow task not found.".into()));

    // A token naming the right task with the wrong attempt.
    let mut wrong_attempt = decode(&task.token);
    wrong_attempt.attempt = 2;
    let state_before = run.st.clone();
    assert_eq!(
        run.step(|ctx, st| complete_workflow_task(ctx, st, &wrong_attempt, completion(vec![])).map(|_| ())),
        not_found
    );
    assert!(run.new_events().is_empty() && run.new_effects().is_empty() && !run.state_changed);
    assert_eq!(run.st, state_before);

    // Polling the already started task again.
    let result = run.step(|ctx, st| record_workflow_task_started(ctx, st, 2, TQ, "worker", "poll-2", None));
    assert_eq!(result, Err(Error::NotFound("Workflow task not found.".into())));

    // Completing twice.
    run.complete_workflow_task(&task, vec![schedule_activity_command(activity("a1"))]).expect("accepted");
    let state_before = run.st.clone();
    assert_eq!(run.complete_workflow_task(&task, vec![]), not_found);
    assert!(run.new_events().is_empty() && run.new_effects().is_empty());
    assert_eq!(run.st, state_before);
    let request = workflowservice_pb::RespondWorkflowTaskFailedRequest::default();
    assert_eq!(run.step(|ctx, st| fail_workflow_task(ctx, st, &decode(&task.token), request)), not_found);

    // An activity token is not a workflow task token.
    let activity_task = run.poll_activity(5);
    let mut as_workflow_token = decode(&activity_task.token);
    as_workflow_token.started_event_id = 3;
    assert_eq!(
        run.step(|ctx, st| complete_workflow_task(ctx, st, &as_workflow_token, completion(vec![])).map(|_| ())),
        not_found
    );
}

#[test]
fn tokens_of_a_closed_run_are_not_found() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    run.complete_workflow_task(&task, vec![schedule_activity_command(activity("a1"))]).expect("accepted");
    let activity_task = run.poll_activity(5);
    run.complete_activity(&activity_task.token, "r").expect("accepted");
    let task = run.poll_workflow_task();
    run.complete_workflow_task(&task, vec![complete_workflow_command("done")]).expect("accepted");
    let state_before = run.st.clone();

    assert!(matches!(run.complete_workflow_task(&task, vec![]), Err(Error::NotFound(_))));
    assert!(matches!(run.complete_activity(&activity_task.token, "again"), Err(Error::NotFound(_))));
    assert!(matches!(
        run.step(|ctx, st| record_workflow_task_started(ctx, st, 8, TQ, "w", "r", None)),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(run.step(|ctx, st| record_activity_started(ctx, st, 5, 1, "w", "r")), Err(Error::NotFound(_))));
    assert!(matches!(run.step(|ctx, st| terminate_run(ctx, st, "why", None, "admin")), Err(Error::NotFound(_))));
    assert!(run.new_events().is_empty() && run.new_effects().is_empty());
    assert_eq!(run.st, state_before);
}

#[test]
fn suggest_continue_as_new_when_history_is_long() {
    let limits = Limits { history_count_suggest_continue_as_new: 3, ..Limits::default() };
    let mut run = Run::start_with(limits, start_request());
    let size_of_first_two: i64 = run.history.iter().map(|e| e.encoded_len() as i64).sum();

    run.poll_workflow_task();
    let started = attrs!(run.event(3), WorkflowTaskStartedEventAttributes);
    assert!(started.suggest_continue_as_new);
    assert_eq!(
        started.suggest_continue_as_new_reasons,
        [enums_pb::SuggestContinueAsNewReason::TooManyHistoryEvents as i32]
    );
    assert_eq!(started.history_size_bytes, size_of_first_two);
    assert!(size_of_first_two > 0);
}

#[test]
fn suggest_continue_as_new_when_history_is_large() {
    let limits = Limits { history_size_suggest_continue_as_new: 10, ..Limits::default() };
    let mut run = Run::start_with(limits, start_request());
    run.poll_workflow_task();
    let started = attrs!(run.event(3), WorkflowTaskStartedEventAttributes);
    assert!(started.suggest_continue_as_new);
    assert_eq!(
        started.suggest_continue_as_new_reasons,
        [enums_pb::SuggestContinueAsNewReason::HistorySizeTooLarge as i32]
    );

    let mut small = Run::start();
    small.poll_workflow_task();
    let started = attrs!(small.event(3), WorkflowTaskStartedEventAttributes);
    assert!(!started.suggest_continue_as_new);
    assert!(started.suggest_continue_as_new_reasons.is_empty());
}

#[test]
fn terminate_during_started_task_closes_immediately() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();

    run.step(|ctx, st| terminate_run(ctx, st, "enough", Some(payloads("d")), "admin")).expect("open run terminates");
    assert_eq!(run.new_events(), ["4 WorkflowExecutionTerminated"]);
    assert!(run.new_effects().contains(&"RunClosed".to_string()));
    let terminated = attrs!(run.event(4), WorkflowExecutionTerminatedEventAttributes);
    assert_eq!((terminated.reason.as_str(), terminated.identity.as_str()), ("enough", "admin"));
    assert_eq!(run.st.status, enums_pb::WorkflowExecutionStatus::Terminated as i32);
    assert_eq!(run.st.close_event_id, 4);
    assert_eq!(run.st.workflow_task, None);
    assert!(matches!(run.complete_workflow_task(&task, vec![]), Err(Error::NotFound(_))));
}

#[test]
fn terminate_with_buffered_events_keeps_started_task_followed_by_its_outcome() {
    let (mut run, _task, activity_task) = run_with_started_task_and_running_activity();
    run.complete_activity(&activity_task.token, "r").expect("accepted");

    run.step(|ctx, st| terminate_run(ctx, st, "enough", None, "admin")).expect("open run terminates");
    // Core's history sequencer requires WorkflowTaskStarted to be followed directly by the task's
    // outcome or a close event (server-surface.md section 3.4), so the in-flight task is failed with
    // FORCE_CLOSE_COMMAND first, then the buffered events are written, then the terminate event.
    assert_eq!(
        run.new_events(),
        ["8 WorkflowTaskFailed", "9 ActivityTaskStarted", "10 ActivityTaskCompleted", "11 WorkflowExecutionTerminated"]
    );
    let failed = attrs!(run.event(8), WorkflowTaskFailedEventAttributes);
    assert_eq!(
        (failed.scheduled_event_id, failed.started_event_id, failed.cause),
        (6, 7, enums_pb::WorkflowTaskFailedCause::ForceCloseCommand as i32)
    );
    let completed = attrs!(run.event(10), ActivityTaskCompletedEventAttributes);
    assert_eq!(completed.started_event_id, 9);
    assert_eq!(run.st.close_event_id, 11);
}

// ---------------------------------------------------------------------------------------------
// Activities
// ---------------------------------------------------------------------------------------------

#[test]
fn retryable_activity_failure_retries_without_events() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.retry_policy = retry_policy(2000, 0);
    let scheduled = run.schedule_first_activity(a);
    run.advance(1000);
    let first = run.poll_activity(scheduled);
    run.advance(500);
    let failure = app_failure("fail attempt 1", false);

    run.fail_activity(&first.token, failure.clone()).expect("accepted");
    assert!(run.new_events().is_empty(), "no events between attempts");
    assert!(run.state_changed);
    assert_eq!(
        run.new_effects(),
        [
            "TimerDone ActivityStartToClose #5 attempt 1",
            "TimerDone ActivityHeartbeat #5 attempt 1",
            "ArmTimer ActivityRetry #5 attempt 2 at +3500",
        ]
    );
    let ai = &run.st.activities[&5];
    assert_eq!((ai.attempt, ai.state), (2, ActivityState::Backoff as i32));
    assert_eq!(ai.last_failure.as_ref(), Some(&failure));
    assert!(
        matches!(run.step(|ctx, st| record_activity_started(ctx, st, 5, 2, "w", "r")), Err(Error::NotFound(_))),
        "attempt 2 is not dispatched before its backoff"
    );

    run.fire_pending(TimerKind::ActivityRetry);
    assert!(run.new_events().is_empty());
    assert_eq!(run.new_effects(), ["TimerDone ActivityRetry #5 attempt 2", "DispatchActivityTask tq #5 attempt 2"]);
    assert_eq!(run.now, T0 + 3500);

    let second = run.poll_activity(5);
    assert_eq!(second.info.attempt, 2);
    assert_eq!(second.info.last_failure.as_ref(), Some(&failure));
    assert!(
        matches!(run.complete_activity(&first.token, "late"), Err(Error::NotFound(_))),
        "attempt 1's token is stale"
    );
    run.advance(500);
    run.complete_activity(&second.token, "ok").expect("accepted");
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskCompleted", "8 WorkflowTaskScheduled"]);
    let started = attrs!(run.event(6), ActivityTaskStartedEventAttributes);
    assert_eq!(started.attempt, 2);
    assert_eq!(started.last_failure.as_ref(), Some(&failure));
    assert_eq!(run.event(6).event_time, Some(time::timestamp(T0 + 3500)));
    assert_eq!(attrs!(run.event(7), ActivityTaskCompletedEventAttributes).started_event_id, 6);
}

#[test]
fn non_retryable_activity_failure_fails_at_once() {
    let mut run = Run::start();
    run.schedule_first_activity(activity("a1"));
    let task = run.poll_activity(5);
    let failure = app_failure("fatal", true);

    run.fail_activity(&task.token, failure.clone()).expect("accepted");
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskFailed", "8 WorkflowTaskScheduled"]);
    let started = attrs!(run.event(6), ActivityTaskStartedEventAttributes);
    assert_eq!((started.attempt, started.last_failure.as_ref()), (1, None));
    let failed = attrs!(run.event(7), ActivityTaskFailedEventAttributes);
    assert_eq!(failed.retry_state, RetryState::NonRetryableFailure as i32);
    assert_eq!(failed.failure.as_ref(), Some(&failure));
    assert_eq!((failed.scheduled_event_id, failed.started_event_id), (5, 6));
    assert_eq!(failed.identity, "activity-worker");
    assert!(run.st.activities.is_empty());
}

#[test]
fn non_retryable_error_type_fails_at_once() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.retry_policy =
        Some(common_pb::RetryPolicy { non_retryable_error_types: vec!["AppError".into()], ..Default::default() });
    run.schedule_first_activity(a);
    let task = run.poll_activity(5);

    run.fail_activity(&task.token, app_failure("typed", false)).expect("accepted");
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskFailed", "8 WorkflowTaskScheduled"]);
    assert_eq!(
        attrs!(run.event(7), ActivityTaskFailedEventAttributes).retry_state,
        RetryState::NonRetryableFailure as i32
    );
}

#[test]
fn activity_failure_stops_at_maximum_attempts() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.retry_policy = retry_policy(1000, 2);
    run.schedule_first_activity(a);
    let first = run.poll_activity(5);
    let first_failure = app_failure("fail attempt 1", false);
    run.fail_activity(&first.token, first_failure.clone()).expect("accepted");
    assert!(run.new_events().is_empty());
    run.fire_pending(TimerKind::ActivityRetry);
    let second = run.poll_activity(5);
    let second_failure = app_failure("fail attempt 2", false);

    run.fail_activity(&second.token, second_failure.clone()).expect("accepted");
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskFailed", "8 WorkflowTaskScheduled"]);
    let started = attrs!(run.event(6), ActivityTaskStartedEventAttributes);
    assert_eq!((started.attempt, started.last_failure.as_ref()), (2, Some(&first_failure)));
    let failed = attrs!(run.event(7), ActivityTaskFailedEventAttributes);
    assert_eq!(failed.retry_state, RetryState::MaximumAttemptsReached as i32);
    assert_eq!(failed.failure.as_ref(), Some(&second_failure));
    assert_eq!(failed.started_event_id, 6);
    assert!(run.timers.is_empty(), "every activity timer was reported done: {:?}", run.timers);
}

#[test]
fn activity_start_to_close_timeout_retries_then_times_out() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.start_to_close_timeout = Some(time::duration(5000));
    a.retry_policy = retry_policy(1000, 2);
    run.schedule_first_activity(a);
    let first = run.poll_activity(5);

    run.fire_pending(TimerKind::ActivityStartToClose);
    assert_eq!(run.now, T0 + 5000);
    assert!(run.new_events().is_empty(), "a start-to-close timeout is retryable");
    assert!(
        run.new_effects().contains(&"ArmTimer ActivityRetry #5 attempt 2 at +6000".to_string()),
        "{:?}",
        run.new_effects()
    );
    assert!(matches!(run.complete_activity(&first.token, "late"), Err(Error::NotFound(_))));
    let first_failure = run.st.activities[&5].last_failure.clone().expect("timeout recorded as last failure");
    assert_eq!(timeout_type_of(&first_failure), TimeoutType::StartToClose);

    run.fire_pending(TimerKind::ActivityRetry);
    run.poll_activity(5);
    run.fire_pending(TimerKind::ActivityStartToClose);
    assert_eq!(run.now, T0 + 11_000);
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskTimedOut", "8 WorkflowTaskScheduled"]);
    let started = attrs!(run.event(6), ActivityTaskStartedEventAttributes);
    assert_eq!((started.attempt, started.last_failure.as_ref()), (2, Some(&first_failure)));
    let timed_out = attrs!(run.event(7), ActivityTaskTimedOutEventAttributes);
    assert_eq!(timed_out.retry_state, RetryState::MaximumAttemptsReached as i32);
    assert_eq!((timed_out.scheduled_event_id, timed_out.started_event_id), (5, 6));
    let failure = timed_out.failure.as_ref().expect("timeout failure");
    assert_eq!(timeout_type_of(failure), TimeoutType::StartToClose);
}

#[test]
fn activity_schedule_to_start_timeout_has_no_started_event() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.schedule_to_start_timeout = Some(time::duration(2000));
    run.schedule_first_activity(a);
    assert!(run.new_effects().contains(&"ArmTimer ActivityScheduleToStart #5 attempt 1 at +2000".to_string()));

    run.fire_pending(TimerKind::ActivityScheduleToStart);
    assert_eq!(run.new_events(), ["6 ActivityTaskTimedOut", "7 WorkflowTaskScheduled"]);
    let timed_out = attrs!(run.event(6), ActivityTaskTimedOutEventAttributes);
    assert_eq!((timed_out.scheduled_event_id, timed_out.started_event_id), (5, 0));
    assert_eq!(timed_out.retry_state, RetryState::NonRetryableFailure as i32, "schedule-to-start is not retried");
    assert_eq!(timeout_type_of(timed_out.failure.as_ref().expect("failure")), TimeoutType::ScheduleToStart);
    assert!(matches!(run.step(|ctx, st| record_activity_started(ctx, st, 5, 1, "w", "r")), Err(Error::NotFound(_))));
}

#[test]
fn activity_heartbeat_extends_deadline_then_times_out() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.heartbeat_timeout = Some(time::duration(2000));
    a.retry_policy = retry_policy(1000, 1);
    run.schedule_first_activity(a);
    let task = run.poll_activity(5);
    assert!(run.new_effects().contains(&"ArmTimer ActivityHeartbeat #5 attempt 1 at +2000".to_string()));

    run.advance(1500);
    let token = decode(&task.token);
    let answer = run.step(|ctx, st| record_activity_heartbeat(ctx, st, &token, Some(payloads("progress"))));
    assert_eq!(answer, Ok(HeartbeatAnswer::default()));
    assert!(run.new_events().is_empty());

    run.fire_pending(TimerKind::ActivityHeartbeat);
    assert!(run.new_events().is_empty(), "a heartbeat arrived within the timeout");
    assert_eq!(
        run.new_effects(),
        ["TimerDone ActivityHeartbeat #5 attempt 1", "ArmTimer ActivityHeartbeat #5 attempt 1 at +3500"]
    );

    run.fire_pending(TimerKind::ActivityHeartbeat);
    assert_eq!(run.now, T0 + 3500);
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskTimedOut", "8 WorkflowTaskScheduled"]);
    let timed_out = attrs!(run.event(7), ActivityTaskTimedOutEventAttributes);
    assert_eq!(timed_out.retry_state, RetryState::MaximumAttemptsReached as i32);
    let failure = timed_out.failure.as_ref().expect("failure");
    assert_eq!(timeout_type_of(failure), TimeoutType::Heartbeat);
    let Some(failure_pb::failure::FailureInfo::TimeoutFailureInfo(info)) = &failure.failure_info else {
        unreachable!()
    };
    assert_eq!(info.last_heartbeat_details, Some(payloads("progress")));
}

#[test]
fn activity_schedule_to_close_timeout_ends_retries() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.start_to_close_timeout = None;
    a.schedule_to_close_timeout = Some(time::duration(10_000));
    a.retry_policy = retry_policy(1000, 0);
    run.schedule_first_activity(a);
    assert!(run.new_effects().contains(&"ArmTimer ActivityScheduleToClose #5 attempt 0 at +10000".to_string()));
    run.advance(1000);
    let first = run.poll_activity(5);
    run.advance(1000);
    let first_failure = app_failure("fail attempt 1", false);
    run.fail_activity(&first.token, first_failure.clone()).expect("accepted");
    assert!(run.new_events().is_empty(), "retry fits before the deadline");
    run.fire_pending(TimerKind::ActivityRetry);
    run.poll_activity(5);

    run.fire_pending(TimerKind::ActivityScheduleToClose);
    assert_eq!(run.now, T0 + 10_000);
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskTimedOut", "8 WorkflowTaskScheduled"]);
    let started = attrs!(run.event(6), ActivityTaskStartedEventAttributes);
    assert_eq!((started.attempt, started.last_failure.as_ref()), (2, Some(&first_failure)));
    let timed_out = attrs!(run.event(7), ActivityTaskTimedOutEventAttributes);
    assert_eq!(timed_out.retry_state, RetryState::Timeout as i32);
    let failure = timed_out.failure.as_ref().expect("failure");
    assert_eq!(timeout_type_of(failure), TimeoutType::ScheduleToClose);
    assert_eq!(failure.cause.as_deref(), Some(&first_failure), "the last attempt's failure is the cause");
    assert!(run.st.activities.is_empty());
}

#[test]
fn activity_retry_past_schedule_to_close_fails_with_timeout_state() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.schedule_to_close_timeout = Some(time::duration(10_000));
    a.retry_policy = retry_policy(1000, 0);
    run.schedule_first_activity(a);
    let task = run.poll_activity(5);
    run.advance(9500);

    run.fail_activity(&task.token, app_failure("too late to retry", false)).expect("accepted");
    assert_eq!(run.new_events(), ["6 ActivityTaskStarted", "7 ActivityTaskFailed", "8 WorkflowTaskScheduled"]);
    assert_eq!(attrs!(run.event(7), ActivityTaskFailedEventAttributes).retry_state, RetryState::Timeout as i32);
}

#[test]
fn activity_timeouts_are_normalized_from_schedule_to_close() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.start_to_close_timeout = None;
    a.schedule_to_close_timeout = Some(time::duration(30_000));
    a.heartbeat_timeout = Some(time::duration(60_000));
    run.schedule_first_activity(a);

    let scheduled = attrs!(run.event(5), ActivityTaskScheduledEventAttributes);
    assert_eq!(time::duration_ms(&scheduled.schedule_to_close_timeout), 30_000);
    assert_eq!(time::duration_ms(&scheduled.schedule_to_start_timeout), 30_000);
    assert_eq!(time::duration_ms(&scheduled.start_to_close_timeout), 30_000);
    assert_eq!(time::duration_ms(&scheduled.heartbeat_timeout), 30_000, "heartbeat is capped at start-to-close");
    let policy = scheduled.retry_policy.as_ref().expect("policy");
    assert_eq!(time::duration_ms(&policy.initial_interval), 1000);
    assert_eq!(policy.backoff_coefficient, 2.0);
    assert_eq!(time::duration_ms(&policy.maximum_interval), 100_000);
    let ai = &run.st.activities[&5];
    assert_eq!(
        (ai.schedule_to_close_ms, ai.schedule_to_start_ms, ai.start_to_close_ms, ai.heartbeat_ms),
        (30_000, 30_000, 30_000, 30_000)
    );
}

#[test]
fn activity_timeouts_are_capped_by_run_timeout() {
    let mut request = start_request();
    request.workflow_run_timeout = Some(time::duration(20_000));
    let mut run = Run::start_with(Limits::default(), request);
    let mut a = activity("a1");
    a.start_to_close_timeout = Some(time::duration(60_000));
    run.schedule_first_activity(a);

    let scheduled = attrs!(run.event(5), ActivityTaskScheduledEventAttributes);
    assert_eq!(time::duration_ms(&scheduled.schedule_to_close_timeout), 20_000);
    assert_eq!(time::duration_ms(&scheduled.schedule_to_start_timeout), 20_000);
    assert_eq!(time::duration_ms(&scheduled.start_to_close_timeout), 20_000);
    assert_eq!(time::duration_ms(&scheduled.heartbeat_timeout), 0);
}

/// Breaks a valid ScheduleActivityTask command in one way.
type Mutation = Box<dyn Fn(&mut command_pb::ScheduleActivityTaskCommandAttributes)>;

#[test]
fn schedule_activity_validation() {
    let cases: Vec<(&str, Mutation, Cause)> = vec![
        ("no id", Box::new(|a| a.activity_id.clear()), Cause::BadScheduleActivityAttributes),
        ("no type", Box::new(|a| a.activity_type = None), Cause::BadScheduleActivityAttributes),
        (
            "negative timeout",
            Box::new(|a| a.heartbeat_timeout = Some(crate::time::duration(-1000))),
            Cause::BadScheduleActivityAttributes,
        ),
        (
            "bad retry policy",
            Box::new(|a| {
                a.retry_policy = Some(common_pb::RetryPolicy { backoff_coefficient: 0.5, ..Default::default() })
            }),
            Cause::BadScheduleActivityAttributes,
        ),
    ];
    for (name, mutate, cause) in cases {
        let mut run = Run::start();
        let task = run.poll_workflow_task();
        let mut a = activity("a1");
        mutate(&mut a);
        let result = run.complete_workflow_task(&task, vec![schedule_activity_command(a)]);
        assert!(matches!(result, Err(Error::InvalidArgument(_))), "{name}: {result:?}");
        assert_eq!(run.new_events(), ["4 WorkflowTaskFailed"], "{name}");
        assert_eq!(attrs!(run.event(4), WorkflowTaskFailedEventAttributes).cause, cause as i32, "{name}");
    }

    // Two pending activities with the same id.
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let result = run.complete_workflow_task(
        &task,
        vec![schedule_activity_command(activity("dup")), schedule_activity_command(activity("dup"))],
    );
    assert!(matches!(result, Err(Error::InvalidArgument(_))));
    assert_eq!(
        attrs!(run.event(4), WorkflowTaskFailedEventAttributes).cause,
        Cause::ScheduleActivityDuplicateId as i32
    );
}

#[test]
fn timers_due_together_report_temporals_timeout_type() {
    // Not started, schedule-to-start defaulted to schedule-to-close: whichever timer the timer
    // loop fires first, the timeout is schedule-to-start.
    let mut run = Run::start();
    let mut a = activity("a1");
    a.start_to_close_timeout = None;
    a.schedule_to_close_timeout = Some(time::duration(3000));
    run.schedule_first_activity(a);
    run.fire_pending(TimerKind::ActivityScheduleToClose);
    assert_eq!(run.new_events(), ["6 ActivityTaskTimedOut", "7 WorkflowTaskScheduled"]);
    let timed_out = attrs!(run.event(6), ActivityTaskTimedOutEventAttributes);
    assert_eq!(timeout_type_of(timed_out.failure.as_ref().expect("failure")), TimeoutType::ScheduleToStart);

    // Started in the same millisecond it was scheduled: start-to-close (defaulted to
    // schedule-to-close) and schedule-to-close fall due together; schedule-to-close wins.
    let mut run = Run::start();
    let mut a = activity("a1");
    a.start_to_close_timeout = None;
    a.schedule_to_close_timeout = Some(time::duration(300));
    run.schedule_first_activity(a);
    run.poll_activity(5);
    run.fire_pending(TimerKind::ActivityStartToClose);
    let events = run.new_events();
    assert_eq!(events.last().map(String::as_str), Some("8 WorkflowTaskScheduled"), "{events:?}");
    let timed_out = attrs!(run.event(7), ActivityTaskTimedOutEventAttributes);
    assert_eq!(timeout_type_of(timed_out.failure.as_ref().expect("failure")), TimeoutType::ScheduleToClose);
    assert_eq!(timed_out.retry_state, RetryState::Timeout as i32);
}

// ---------------------------------------------------------------------------------------------
// Transfer tasks: work on other runs
// ---------------------------------------------------------------------------------------------

fn start_child_command(workflow_id: &str, policy: enums_pb::ParentClosePolicy) -> command_pb::Command {
    command_pb::Command {
        command_type: CommandType::StartChildWorkflowExecution as i32,
        attributes: Some(CommandAttributes::StartChildWorkflowExecutionCommandAttributes(
            command_pb::StartChildWorkflowExecutionCommandAttributes {
                workflow_id: workflow_id.into(),
                workflow_type: Some(common_pb::WorkflowType { name: "Child".into() }),
                parent_close_policy: policy as i32,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

#[test]
fn child_start_is_a_transfer_task_and_open_children_get_the_close_policy() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    run.complete_workflow_task(
        &task,
        vec![
            start_child_command("kept", enums_pb::ParentClosePolicy::Terminate),
            start_child_command("abandoned", enums_pb::ParentClosePolicy::Abandon),
            start_child_command("never-started", enums_pb::ParentClosePolicy::Terminate),
        ],
    )
    .expect("child commands accepted");
    assert_eq!(
        run.new_effects(),
        [
            "TimerDone WorkflowTaskStartToClose #2 attempt 1",
            "Transfer StartChild #5",
            "Transfer StartChild #6",
            "Transfer StartChild #7"
        ]
    );
    // Two children start; the third's start is still in flight when the parent completes.
    run.step(|ctx, st| child_started(ctx, st, 5, "kept-run")).expect("started");
    run.step(|ctx, st| child_started(ctx, st, 6, "abandoned-run")).expect("started");
    let task = run.poll_workflow_task();
    run.complete_workflow_task(&task, vec![complete_workflow_command("done")]).expect("completes");
    let close_event_id = run.st.close_event_id;
    assert_eq!(
        run.new_effects().last().map(String::as_str),
        Some("RunClosed"),
        "the close is the transition's last effect"
    );
    let policies: Vec<&TransferTask> = run
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Transfer(t) if t.transfer_kind() == TransferKind::ParentClosePolicy => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].event_id, close_event_id);
    let children: Vec<&str> = policies[0].children.iter().map(|c| c.workflow_id.as_str()).collect();
    assert_eq!(children, ["kept"], "abandoned and never-started children get no policy");
    assert!(run.st.children.is_empty());
}

#[test]
fn a_child_closing_at_the_end_of_its_chain_notifies_its_parent() {
    let mut request = start_request();
    let mut run = Run::start_with(Limits::default(), request.clone());
    run.st.parent = Some(crate::state::ParentInfo {
        namespace: "default".into(),
        workflow_id: "parent".into(),
        run_id: "parent-run".into(),
        initiated_event_id: 5,
        root: None,
    });
    let task = run.poll_workflow_task();
    run.complete_workflow_task(&task, vec![complete_workflow_command("r")]).expect("completes");
    let close_event_id = run.st.close_event_id;
    assert!(run.new_effects().contains(&format!("Transfer NotifyParent #{close_event_id}")), "{:?}", run.new_effects());

    // A run that continues as new does not notify: its successor will.
    request.workflow_id = "wf-2".into();
    let mut run = Run::start_with(Limits::default(), request);
    run.st.parent = Some(crate::state::ParentInfo { workflow_id: "parent".into(), ..Default::default() });
    let task = run.poll_workflow_task();
    let can = command_pb::Command {
        command_type: CommandType::ContinueAsNewWorkflowExecution as i32,
        attributes: Some(CommandAttributes::ContinueAsNewWorkflowExecutionCommandAttributes(
            command_pb::ContinueAsNewWorkflowExecutionCommandAttributes {
                workflow_type: Some(common_pb::WorkflowType { name: "Hello".into() }),
                task_queue: Some(normal_task_queue(TQ)),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    run.step(|ctx, st| {
        ctx.successor_run_id = "run-2".into();
        complete_workflow_task(ctx, st, &decode(&task.token), completion(vec![can]))
    })
    .expect("continues as new");
    assert!(!run.new_effects().iter().any(|e| e.contains("NotifyParent")), "{:?}", run.new_effects());
}

#[test]
fn an_external_signal_gets_exactly_one_outcome() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let signal = command_pb::Command {
        command_type: CommandType::SignalExternalWorkflowExecution as i32,
        attributes: Some(CommandAttributes::SignalExternalWorkflowExecutionCommandAttributes(
            command_pb::SignalExternalWorkflowExecutionCommandAttributes {
                execution: Some(common_pb::WorkflowExecution { workflow_id: "target".into(), run_id: String::new() }),
                signal_name: "ping".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    run.complete_workflow_task(&task, vec![signal]).expect("signal command accepted");
    assert_eq!(run.new_effects()[1], "Transfer SignalExternal #5");
    let delivery = external_delivery(&run.st, run.event(5)).expect("the initiated event names a delivery");
    let ExternalRequest::Signal(signal) = &delivery.request else { panic!("a signal: {delivery:?}") };
    assert_eq!(signal.request_id, "run-1-signal-5", "the request id dedupes a repeated delivery at the target");
    assert!(external_pending(&run.st, 5));

    run.step(|ctx, st| external_outcome(ctx, st, delivery.clone(), true)).expect("outcome recorded");
    assert_eq!(run.new_events(), ["6 ExternalWorkflowExecutionSignaled", "7 WorkflowTaskScheduled"]);
    assert!(!external_pending(&run.st, 5));
    // Carried out again after a crash: nothing more is written.
    run.step(|ctx, st| external_outcome(ctx, st, delivery, true)).expect("repeat is accepted");
    assert!(run.new_events().is_empty());
    assert!(!run.state_changed);
}

// ---------------------------------------------------------------------------------------------
// Transient attempts, sticky queues, inline and eager tasks
// ---------------------------------------------------------------------------------------------

fn fail_task(run: &mut Run, task: &WorkflowTaskStarted) {
    let request = workflowservice_pb::RespondWorkflowTaskFailedRequest {
        cause: Cause::WorkflowWorkerUnhandledFailure as i32,
        failure: Some(app_failure("boom", false)),
        identity: "worker".into(),
        ..Default::default()
    };
    run.step(|ctx, st| fail_workflow_task(ctx, st, &decode(&task.token), request)).expect("failure accepted");
}

fn sticky_completion(commands: Vec<command_pb::Command>) -> workflowservice_pb::RespondWorkflowTaskCompletedRequest {
    let mut request = completion(commands);
    request.sticky_attributes = Some(taskqueue_pb::StickyExecutionAttributes {
        worker_task_queue: Some(taskqueue_pb::TaskQueue {
            name: "sticky-1".into(),
            kind: enums_pb::TaskQueueKind::Sticky as i32,
            normal_name: TQ.into(),
        }),
        schedule_to_start_timeout: Some(time::duration(5_000)),
    });
    request
}

fn signal(run: &mut Run, name: &str) {
    run.step(|ctx, st| signal_run(ctx, st, SignalInput { signal_name: name.into(), ..Default::default() }))
        .expect("signal accepted");
}

#[test]
fn failing_attempts_after_the_first_are_transient_until_one_completes() {
    let mut run = Run::start();
    let first = run.poll_workflow_task();
    fail_task(&mut run, &first);
    assert_eq!(run.new_events(), ["4 WorkflowTaskFailed"]);
    for attempt in 2..=3 {
        let task = run.poll_workflow_task();
        assert_eq!((task.scheduled_event_id, task.started_event_id, task.attempt), (5, 6, attempt));
        fail_task(&mut run, &task);
        assert!(run.new_events().is_empty(), "attempt {attempt} writes nothing");
        assert_eq!(
            run.new_effects().last().map(String::as_str),
            Some(&*format!("DispatchWorkflowTask tq #5 attempt {}", attempt + 1))
        );
    }
    // From the fourth attempt on, the task gets 5 s more to finish.
    let fourth = run.poll_workflow_task();
    assert_eq!(fourth.attempt, 4);
    let timeout = run.pending_timer(TimerKind::WorkflowTaskStartToClose);
    assert_eq!(timeout.fire_at_ms - run.now, 15_000);
    run.complete_workflow_task(&fourth, vec![complete_workflow_command("done")]).expect("completes");
    assert_eq!(
        run.rendered_history(),
        [
            "1 WorkflowExecutionStarted",
            "2 WorkflowTaskScheduled",
            "3 WorkflowTaskStarted",
            "4 WorkflowTaskFailed",
            "5 WorkflowTaskScheduled",
            "6 WorkflowTaskStarted",
            "7 WorkflowTaskCompleted",
            "8 WorkflowExecutionCompleted"
        ]
    );
    let scheduled = attrs!(run.event(5), WorkflowTaskScheduledEventAttributes);
    assert_eq!(scheduled.attempt, 4);
    assert_eq!(scheduled.start_to_close_timeout, Some(time::duration(15_000)));
    assert_eq!(attrs!(run.event(7), WorkflowTaskCompletedEventAttributes).started_event_id, 6);
}

#[test]
fn workflow_task_timeout_grows_from_the_fourth_attempt() {
    let max = 600_000;
    let timeouts: Vec<Millis> = (1..=12).map(|a| workflow_task_timeout_for_attempt(10_000, a, max)).collect();
    assert_eq!(
        timeouts,
        [10_000, 10_000, 10_000, 15_000, 20_000, 30_000, 50_000, 90_000, 170_000, 330_000, 610_000, 610_000]
    );
}

#[test]
fn a_signal_makes_a_scheduled_transient_attempt_a_normal_one() {
    let mut run = Run::start();
    let first = run.poll_workflow_task();
    fail_task(&mut run, &first);
    signal(&mut run, "go");
    assert_eq!(run.new_events(), ["5 WorkflowExecutionSignaled"]);
    let task = run.poll_workflow_task();
    assert_eq!((task.attempt, task.started_event_id), (1, 7));
    assert!(task.transient_events.is_empty());
    assert_eq!(run.new_events(), ["6 WorkflowTaskScheduled", "7 WorkflowTaskStarted"]);
    assert_eq!(attrs!(run.event(6), WorkflowTaskScheduledEventAttributes).attempt, 1);
}

#[test]
fn a_failing_transient_attempt_writes_the_signals_it_buffered_and_starts_over() {
    let mut run = Run::start();
    let first = run.poll_workflow_task();
    fail_task(&mut run, &first);
    let second = run.poll_workflow_task();
    signal(&mut run, "go");
    assert!(run.new_events().is_empty(), "buffered behind the started attempt");
    fail_task(&mut run, &second);
    assert_eq!(run.new_events(), ["5 WorkflowExecutionSignaled", "6 WorkflowTaskScheduled"]);
    assert_eq!(attrs!(run.event(6), WorkflowTaskScheduledEventAttributes).attempt, 1);
}

#[test]
fn a_rejected_completion_of_a_transient_attempt_changes_nothing() {
    let mut run = Run::start();
    let first = run.poll_workflow_task();
    fail_task(&mut run, &first);
    let second = run.poll_workflow_task();
    let state_before = run.st.clone();
    let mut no_timeouts = activity("a1");
    no_timeouts.start_to_close_timeout = None;
    let result = run.complete_workflow_task(&second, vec![schedule_activity_command(no_timeouts)]);
    assert!(matches!(result, Err(Error::InvalidArgument(ref m)) if m.starts_with("BadScheduleActivityAttributes")));
    assert!(run.new_events().is_empty() && run.new_effects().is_empty());
    assert_eq!(run.st, state_before, "the attempt stays started until it times out");
}

#[test]
fn sticky_tasks_name_the_sticky_queue_and_fall_back_after_their_timeout() {
    let mut run = Run::start();
    let first = run.poll_workflow_task();
    assert!(!first.sticky);
    run.complete_workflow_task_with(&first, sticky_completion(vec![start_timer_command()])).expect("accepted");
    assert_eq!(run.st.sticky_task_queue, "sticky-1");
    run.fire_pending(TimerKind::UserTimer);
    let scheduled = run.st.workflow_task.clone().expect("scheduled");
    let queue =
        attrs!(run.event(scheduled.scheduled_event_id), WorkflowTaskScheduledEventAttributes).task_queue.clone();
    assert_eq!(
        queue.as_ref().map(|q| (q.name.as_str(), q.kind, q.normal_name.as_str())),
        Some(("sticky-1", enums_pb::TaskQueueKind::Sticky as i32, TQ))
    );
    assert!(
        run.new_effects().contains(&"DispatchWorkflowTask tq sticky sticky-1 #7 attempt 1".to_string()),
        "{:?}",
        run.new_effects()
    );
    // Nobody takes it from the sticky queue in time.
    run.fire_pending(TimerKind::WorkflowTaskScheduleToStart);
    assert_eq!(run.new_events(), ["8 WorkflowTaskTimedOut", "9 WorkflowTaskScheduled"]);
    let timed_out = attrs!(run.event(8), WorkflowTaskTimedOutEventAttributes);
    assert_eq!((timed_out.scheduled_event_id, timed_out.started_event_id), (7, 0));
    assert_eq!(timed_out.timeout_type, TimeoutType::ScheduleToStart as i32);
    let retry = attrs!(run.event(9), WorkflowTaskScheduledEventAttributes);
    assert_eq!(
        (retry.attempt, retry.task_queue.as_ref().map(|q| q.kind)),
        (1, Some(enums_pb::TaskQueueKind::Normal as i32))
    );
    assert!(run.new_effects().contains(&"TaskStarted #7".to_string()), "the timed-out task leaves the outbox");
    assert!(run.st.sticky_task_queue.is_empty());
}

#[test]
fn a_poll_from_the_sticky_queue_gets_partial_history_and_one_from_the_normal_queue_clears_stickiness() {
    let mut run = Run::start();
    let first = run.poll_workflow_task();
    run.complete_workflow_task_with(&first, sticky_completion(vec![start_timer_command()])).expect("accepted");
    run.fire_pending(TimerKind::UserTimer);
    let scheduled_event_id = run.st.workflow_task.as_ref().expect("scheduled").scheduled_event_id;
    let task = run
        .step(|ctx, st| record_workflow_task_started(ctx, st, scheduled_event_id, "sticky-1", "w", "r", None))
        .expect("started");
    assert!(task.sticky);
    assert!(
        run.new_effects().contains(&format!("TimerDone WorkflowTaskScheduleToStart #{scheduled_event_id} attempt 1"))
    );
    run.complete_workflow_task_with(&task, sticky_completion(vec![start_timer_command_with_id("t2")]))
        .expect("accepted");
    run.fire_pending(TimerKind::UserTimer);
    let scheduled_event_id = run.st.workflow_task.as_ref().expect("scheduled").scheduled_event_id;
    let task = run
        .step(|ctx, st| record_workflow_task_started(ctx, st, scheduled_event_id, TQ, "w", "r", None))
        .expect("started");
    assert!(!task.sticky, "a normal poller has no cached copy");
    assert!(run.st.sticky_task_queue.is_empty());
}

#[test]
fn a_failure_on_the_sticky_queue_is_not_counted_as_an_attempt() {
    let mut run = Run::start();
    let first = run.poll_workflow_task();
    run.complete_workflow_task_with(&first, sticky_completion(vec![start_timer_command()])).expect("accepted");
    run.fire_pending(TimerKind::UserTimer);
    let scheduled_event_id = run.st.workflow_task.as_ref().expect("scheduled").scheduled_event_id;
    let task = run
        .step(|ctx, st| record_workflow_task_started(ctx, st, scheduled_event_id, "sticky-1", "w", "r", None))
        .expect("started");
    fail_task(&mut run, &task);
    assert_eq!(run.new_events().len(), 2, "{:?}", run.new_events());
    let retry = run.st.workflow_task.clone().expect("rescheduled");
    assert_eq!((retry.attempt, retry.sticky), (1, false));
    assert!(run.st.sticky_task_queue.is_empty());
}

#[test]
fn return_new_workflow_task_starts_the_next_task_inline() {
    let mut run = Run::start();
    let first = run.poll_workflow_task();
    let mut request = completion(vec![record_marker_command("m")]);
    request.force_create_new_workflow_task = true;
    request.return_new_workflow_task = true;
    request.identity = "worker".into();
    let token = decode(&first.token);
    let completion = run.step(|ctx, st| complete_workflow_task(ctx, st, &token, request)).expect("accepted");
    let inline = completion.new_task.expect("the next task comes back inline");
    assert_eq!((inline.scheduled_event_id, inline.started_event_id, inline.previous_started_event_id), (6, 7, 3));
    assert!(inline.sticky, "the worker has the run cached");
    assert_eq!(
        run.new_events(),
        ["4 WorkflowTaskCompleted", "5 MarkerRecorded", "6 WorkflowTaskScheduled", "7 WorkflowTaskStarted"]
    );
    assert!(
        !run.new_effects().iter().any(|e| e.starts_with("DispatchWorkflowTask") || e.starts_with("TaskStarted")),
        "{:?}",
        run.new_effects()
    );
    assert!(run.new_effects().contains(&"ArmTimer WorkflowTaskStartToClose #6 attempt 1 at +10000".to_string()));
}

#[test]
fn eager_activities_start_for_the_completing_worker() {
    let mut run = Run::start();
    let task = run.poll_workflow_task();
    let mut eager = activity("eager");
    eager.request_eager_execution = true;
    let mut request = completion(vec![schedule_activity_command(eager), schedule_activity_command(activity("queued"))]);
    request.identity = "worker-a".into();
    let token = decode(&task.token);
    let done = run.step(|ctx, st| complete_workflow_task(ctx, st, &token, request)).expect("accepted");
    assert_eq!(done.activity_tasks.len(), 1);
    let started = &done.activity_tasks[0];
    assert_eq!((started.info.activity_id.as_str(), started.info.started_identity.as_str()), ("eager", "worker-a"));
    let effects = run.new_effects();
    assert!(
        !effects
            .iter()
            .any(|e| e == "DispatchActivityTask tq #5 attempt 1" || e.contains("ActivityScheduleToStart #5")),
        "{effects:?}"
    );
    assert!(effects.contains(&"DispatchActivityTask tq #6 attempt 1".to_string()), "{effects:?}");
    assert_eq!(run.st.activities[&5].state, ActivityState::Started as i32);

    let limits = Limits { enable_activity_eager_execution: false, ..Default::default() };
    let mut run = Run::start_with(limits, start_request());
    let task = run.poll_workflow_task();
    let mut eager = activity("eager");
    eager.request_eager_execution = true;
    let token = decode(&task.token);
    let completion = run
        .step(|ctx, st| complete_workflow_task(ctx, st, &token, completion(vec![schedule_activity_command(eager)])))
        .expect("accepted");
    assert!(completion.activity_tasks.is_empty(), "system.enableActivityEagerExecution=false");
}

#[test]
fn paused_activity_that_fails_waits_for_unpause_past_its_maximum_attempts() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.retry_policy = retry_policy(1000, 1);
    run.schedule_first_activity(a);
    let task = run.poll_activity(5);
    let token = decode(&task.token);
    let selector = ActivitySelector::Id("a1".into());
    run.step(|ctx, st| pause_activities(ctx, st, &selector, &PauseRequest::default())).unwrap();
    let answer = run.step(|ctx, st| record_activity_heartbeat(ctx, st, &token, None)).unwrap();
    assert_eq!(answer, HeartbeatAnswer { paused: true, ..Default::default() });

    run.step(|ctx, st| fail_activity(ctx, st, &token, app_failure("boom", false), "w", None)).unwrap();
    assert!(run.new_events().is_empty(), "the activity stays pending");
    let effects = run.new_effects();
    assert!(!effects.iter().any(|e| e.starts_with("Dispatch") || e.contains("ActivityRetry")), "{effects:?}");
    let ai = run.st.activities.get(&5).expect("pending");
    assert!(ai.paused && ai.attempt == 2 && ai.state == ActivityState::Scheduled as i32, "{ai:?}");
    assert!(matches!(run.step(|ctx, st| record_activity_started(ctx, st, 5, 2, "w", "r")), Err(Error::NotFound(_))));

    run.step(|ctx, st| unpause_activities(ctx, st, &selector, UnpauseOptions::default())).unwrap();
    let effects = run.new_effects();
    assert!(effects.iter().any(|e| e.starts_with("DispatchActivityTask") && e.contains("attempt 2")), "{effects:?}");
    run.step(|ctx, st| record_activity_started(ctx, st, 5, 2, "w", "r")).unwrap();
}

#[test]
fn reset_of_a_running_attempt_is_answered_by_its_heartbeat_until_the_next_attempt() {
    let mut run = Run::start();
    let mut a = activity("a1");
    a.retry_policy = retry_policy(1000, 3);
    run.schedule_first_activity(a);
    let token = decode(&run.poll_activity(5).token);
    let selector = ActivitySelector::Type(run.st.activities[&5].activity_type.clone());
    let options = ResetOptions { reset_heartbeat: true, ..Default::default() };
    run.step(|ctx, st| record_activity_heartbeat(ctx, st, &token, Some(payloads("p")))).unwrap();
    run.step(|ctx, st| reset_activities(ctx, st, &selector, options)).unwrap();
    let answer = run.step(|ctx, st| record_activity_heartbeat(ctx, st, &token, None)).unwrap();
    assert_eq!(answer, HeartbeatAnswer { reset: true, ..Default::default() });

    run.step(|ctx, st| fail_activity(ctx, st, &token, app_failure("boom", false), "w", None)).unwrap();
    let ai = run.st.activities.get(&5).expect("retried");
    assert!(ai.attempt == 2 && !ai.activity_reset && ai.heartbeat_details.is_none(), "{ai:?}");
}
