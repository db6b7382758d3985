"""Transient workflow-task attempts: what a failing or timing-out workflow task leaves in history.

Recorded against the real dev server (temporal CLI 1.9.1, server 1.32.0):
- the first failure (or start-to-close timeout) is written: WorkflowTaskFailed / TimedOut;
- attempts 2, 3, ... are transient: their WorkflowTaskScheduled/Started events are not persisted,
  only sent in the poll response right after the persisted events, with the next free ids and the
  attempt number; their failures and timeouts write nothing;
- the attempt that finally completes persists its Scheduled (with its attempt) and Started events
  with those same ids, then WorkflowTaskCompleted;
- from attempt 4 on the task's start_to_close_timeout grows by 5 s x 2^(attempt-4) (x 0.8-1.0
  jitter, at most 10 min); the task is rescheduled at once, with no backoff;
- GetWorkflowExecutionHistory appends the transient events for SDK clients, not for the CLI;
- an event arriving meanwhile (a signal) ends the transient streak: the next task is a normal one,
  attempt 1, with persisted events; a signal during a started transient task is buffered;
- a failing completion (a bad command) on attempt > 1 is rejected with INVALID_ARGUMENT and leaves
  the task started, so it times out;
- a failure on the sticky queue does not count as an attempt: the task is retried once on the
  normal queue as attempt 1 (a second WorkflowTaskFailed) before attempts start counting;
- QueryWorkflow fails with WorkflowNotReady from attempt 3 on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.command.v1 import Command, ScheduleActivityTaskCommandAttributes
from temporalio.api.enums.v1 import (
    CommandType,
    PendingWorkflowTaskState,
    TimeoutType,
    WorkflowTaskFailedCause,
)
from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from compat_dispatch import (
    FIRST_TASK,
    Background,
    FlakyTaskWorkflow,
    RawWorker,
    cli_event_types,
    complete_command,
    duration,
    event,
    ids_and_types,
    scheduled_attempt,
    scheduled_queue,
)
from compat_util import event_types, result_of

FAILED_FIRST = FIRST_TASK + [(4, "WORKFLOW_TASK_FAILED")]
TRANSIENT = [(5, "WORKFLOW_TASK_SCHEDULED"), (6, "WORKFLOW_TASK_STARTED")]
COMPLETED = [(7, "WORKFLOW_TASK_COMPLETED"), (8, "WORKFLOW_EXECUTION_COMPLETED")]
TASK_TIMEOUT = timedelta(seconds=1)


@pytest.fixture
async def background() -> AsyncIterator[Background]:
    async with Background() as tasks:
        yield tasks


def timeout_of(e) -> float:
    return e.workflow_task_scheduled_event_attributes.start_to_close_timeout.ToTimedelta().total_seconds()


def assert_transient_task(task, attempt: int, first_part=FAILED_FIRST) -> None:
    """A poll response of a transient attempt: the persisted events, then Scheduled/Started."""
    assert ids_and_types(task.history.events) == first_part + TRANSIENT
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (0, 6, attempt)
    assert scheduled_attempt(event(task.history.events, 5)) == attempt
    assert event(task.history.events, 6).workflow_task_started_event_attributes.scheduled_event_id == 5


async def test_failed_task_is_retried_as_transient_attempts(client: Client, task_queue: str, new_id) -> None:
    """A raw worker fails attempts 1, 2 and 3 and completes attempt 4."""
    wid = new_id("transient")
    worker = RawWorker(client, task_queue)
    task = await worker.start_and_poll(wid)
    assert task.attempt == 1
    await worker.fail(task, "attempt 1 fails")
    for attempt in (2, 3, 4):
        task = await worker.poll_task()
        assert_transient_task(task, attempt)
        failed = event(task.history.events, 4).workflow_task_failed_event_attributes
        assert (failed.scheduled_event_id, failed.started_event_id) == (2, 3)
        assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
        assert failed.failure.message == "attempt 1 fails"
        desc = await worker.describe(wid)
        assert desc.pending_workflow_task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
        assert desc.pending_workflow_task.attempt == attempt
        assert desc.workflow_execution_info.history_length == 4
        # The default task timeout is 10 s; attempt 4 gets 5 s more (x 0.8-1.0 jitter).
        if attempt < 4:
            assert timeout_of(event(task.history.events, 5)) == 10
            await worker.fail(task, f"attempt {attempt} fails")
        else:
            assert 14 <= timeout_of(event(task.history.events, 5)) <= 15
    await worker.complete(task, [complete_command()])

    history = await worker.history(wid)
    assert ids_and_types(history) == FAILED_FIRST + TRANSIENT + COMPLETED
    assert scheduled_attempt(event(history, 5)) == 4
    assert scheduled_queue(event(history, 5)) == scheduled_queue(event(history, 2))
    assert len([e for e in history if e.workflow_task_failed_event_attributes.failure.message]) == 1
    assert event(history, 7).workflow_task_completed_event_attributes.scheduled_event_id == 5
    assert event(history, 7).workflow_task_completed_event_attributes.started_event_id == 6


async def test_history_shows_transient_events_to_sdk_clients_only(
    client: Client, server, task_queue: str, new_id
) -> None:
    """While attempt 2 runs, GetWorkflowExecutionHistory from the SDK ends with its Scheduled and
    Started events; `temporal workflow show` (the CLI) only gets the persisted ones."""
    wid = new_id("transient-history")
    worker = RawWorker(client, task_queue)
    await worker.fail(await worker.start_and_poll(wid))
    task = await worker.poll_task()
    assert_transient_task(task, 2)
    history = await worker.history(wid)
    assert ids_and_types(history) == FAILED_FIRST + TRANSIENT
    assert scheduled_attempt(event(history, 5)) == 2
    assert await cli_event_types(server.address, server.namespace, wid) == FAILED_FIRST

    await worker.fail(task)
    # Attempt 3 is scheduled but not started: only its Scheduled event is appended.
    history = await worker.history(wid)
    assert ids_and_types(history) == FAILED_FIRST + TRANSIENT[:1]
    assert scheduled_attempt(event(history, 5)) == 3
    await worker.complete(await worker.poll_task(), [complete_command()])


async def test_transient_attempt_timeouts_write_nothing(client: Client, task_queue: str, new_id) -> None:
    """Attempt 1 times out (WorkflowTaskTimedOut START_TO_CLOSE); attempt 2 times out without a
    trace; its token is stale afterwards; queries fail fast from attempt 3 on."""
    wid = new_id("transient-timeout")
    worker = RawWorker(client, task_queue)
    await worker.start_and_poll(wid, workflow_task_timeout=duration(TASK_TIMEOUT))
    timed_out_first = FIRST_TASK + [(4, "WORKFLOW_TASK_TIMED_OUT")]

    started = time.monotonic()
    second = await worker.poll_task()
    assert time.monotonic() - started >= 0.8 * TASK_TIMEOUT.total_seconds()
    assert_transient_task(second, 2, timed_out_first)
    timed_out = event(second.history.events, 4).workflow_task_timed_out_event_attributes
    assert (timed_out.scheduled_event_id, timed_out.started_event_id) == (2, 3)
    assert timed_out.timeout_type == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE

    third = await worker.poll_task()
    assert_transient_task(third, 3, timed_out_first)
    assert timeout_of(event(third.history.events, 5)) == TASK_TIMEOUT.total_seconds()
    with pytest.raises(RPCError) as stale:
        await worker.complete(second, [complete_command()])
    assert stale.value.status == RPCStatusCode.NOT_FOUND
    assert stale.value.message == "Workflow task not found."

    with pytest.raises(RPCError) as query:
        await worker.query(wid)
    assert query.value.status == RPCStatusCode.FAILED_PRECONDITION
    assert query.value.message == "Unable to query workflow due to Workflow Task in failed state."
    assert query.value.grpc_status.details[0].Is(WorkflowNotReadyFailure.DESCRIPTOR)

    await worker.complete(third, [complete_command()])
    history = await worker.history(wid)
    assert ids_and_types(history) == timed_out_first + TRANSIENT + COMPLETED
    assert scheduled_attempt(event(history, 5)) == 3


def bad_schedule_activity(task_queue: str) -> Command:
    """A ScheduleActivityTask command without an activity type: the server fails the task."""
    return Command(
        command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
        schedule_activity_task_command_attributes=ScheduleActivityTaskCommandAttributes(
            activity_id="bad", task_queue=TaskQueue(name=task_queue), start_to_close_timeout=Duration(seconds=5)
        ),
    )


async def test_failing_completion_after_the_first_attempt_is_rejected(
    client: Client, task_queue: str, new_id
) -> None:
    wid = new_id("transient-bad-command")
    worker = RawWorker(client, task_queue)
    first = await worker.start_and_poll(wid, workflow_task_timeout=duration(TASK_TIMEOUT))
    message = "BadScheduleActivityAttributes: activityType is not set"
    with pytest.raises(RPCError) as attempt1:
        await worker.complete(first, [bad_schedule_activity(task_queue)])
    assert (attempt1.value.status, attempt1.value.message) == (RPCStatusCode.INVALID_ARGUMENT, message)

    second = await worker.poll_task()
    assert_transient_task(second, 2)
    failed = event(second.history.events, 4).workflow_task_failed_event_attributes
    assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES
    assert failed.failure.message == message

    with pytest.raises(RPCError) as attempt2:
        await worker.complete(second, [bad_schedule_activity(task_queue)])
    assert (attempt2.value.status, attempt2.value.message) == (RPCStatusCode.INVALID_ARGUMENT, message)
    # Dropped, not failed: attempt 2 is still started and nothing was written.
    desc = await worker.describe(wid)
    assert desc.pending_workflow_task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
    assert desc.pending_workflow_task.attempt == 2
    assert desc.workflow_execution_info.history_length == 4

    # It times out (no event) and comes back as attempt 3.
    third = await worker.poll_task()
    assert_transient_task(third, 3)
    await worker.complete(third, [complete_command()])
    assert ids_and_types(await worker.history(wid)) == FAILED_FIRST + TRANSIENT + COMPLETED


async def test_signal_while_transient_task_is_scheduled(client: Client, task_queue: str, new_id) -> None:
    """The signal is written at once; the next task is a normal one (attempt 1) after it."""
    wid = new_id("transient-signal-scheduled")
    worker = RawWorker(client, task_queue)
    await worker.fail(await worker.start_and_poll(wid))
    await worker.signal(wid)
    assert ids_and_types(await worker.history(wid)) == FAILED_FIRST + [(5, "WORKFLOW_EXECUTION_SIGNALED")]

    task = await worker.poll_task()
    assert ids_and_types(task.history.events) == FAILED_FIRST + [
        (5, "WORKFLOW_EXECUTION_SIGNALED"),
        (6, "WORKFLOW_TASK_SCHEDULED"),
        (7, "WORKFLOW_TASK_STARTED"),
    ]
    assert (task.started_event_id, task.attempt) == (7, 1)
    assert scheduled_attempt(event(task.history.events, 6)) == 1
    await worker.complete(task, [complete_command()])
    assert [t for _, t in ids_and_types(await worker.history(wid))][-3:] == [
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]


async def test_signal_while_transient_task_is_started_then_it_fails(client: Client, task_queue: str, new_id) -> None:
    """The signal is buffered; failing attempt 2 writes no failure event but flushes the signal
    and schedules a normal task (attempt 1)."""
    wid = new_id("transient-signal-failed")
    worker = RawWorker(client, task_queue)
    await worker.fail(await worker.start_and_poll(wid))
    second = await worker.poll_task()
    assert_transient_task(second, 2)
    await worker.signal(wid)
    assert ids_and_types(await worker.history(wid)) == FAILED_FIRST + TRANSIENT, "the signal was not buffered"

    await worker.fail(second)
    assert ids_and_types(await worker.history(wid)) == FAILED_FIRST + [
        (5, "WORKFLOW_EXECUTION_SIGNALED"),
        (6, "WORKFLOW_TASK_SCHEDULED"),
    ]
    task = await worker.poll_task()
    assert (task.started_event_id, task.attempt) == (7, 1)
    assert scheduled_attempt(event(task.history.events, 6)) == 1
    await worker.complete(task, [complete_command()])


async def test_signal_while_transient_task_is_started_then_it_completes(
    client: Client, task_queue: str, new_id
) -> None:
    """Completing attempt 2 persists its Scheduled/Started events, then the buffered signal and a
    new normal task."""
    wid = new_id("transient-signal-completed")
    worker = RawWorker(client, task_queue)
    await worker.fail(await worker.start_and_poll(wid))
    second = await worker.poll_task()
    await worker.signal(wid)
    await worker.complete(second)
    history = await worker.history(wid)
    assert ids_and_types(history) == FAILED_FIRST + TRANSIENT + [
        (7, "WORKFLOW_TASK_COMPLETED"),
        (8, "WORKFLOW_EXECUTION_SIGNALED"),
        (9, "WORKFLOW_TASK_SCHEDULED"),
    ]
    assert (scheduled_attempt(event(history, 5)), scheduled_attempt(event(history, 9))) == (2, 1)
    task = await worker.poll_task()
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (6, 10, 1)
    await worker.complete(task, [complete_command()])


async def test_failure_on_the_sticky_queue_is_not_an_attempt(
    client: Client, background: Background, task_queue: str, new_id
) -> None:
    wid = new_id("transient-sticky")
    worker = RawWorker(client, task_queue)
    first = await worker.start_and_poll(wid)
    await worker.complete(first, sticky=worker.sticky_attributes(timedelta(seconds=5)))
    sticky_poll = background(worker.poll(worker.sticky()))
    await worker.wait_for_sticky_poller()
    await worker.signal(wid)
    sticky_task = await sticky_poll
    assert (sticky_task.started_event_id, sticky_task.attempt) == (7, 1)
    await worker.fail(sticky_task)

    # Retried on the normal queue, full history, still attempt 1 and persisted.
    retry = await worker.poll_task()
    assert [t for _, t in ids_and_types(retry.history.events)][-4:] == [
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_FAILED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
    ]
    assert (retry.previous_started_event_id, retry.started_event_id, retry.attempt) == (3, 10, 1)
    assert scheduled_queue(event(retry.history.events, 9)) == (task_queue, "TASK_QUEUE_KIND_NORMAL", "")
    assert scheduled_attempt(event(retry.history.events, 9)) == 1
    await worker.fail(retry)

    # Now the attempts count: attempt 2 is transient.
    task = await worker.poll_task()
    assert ids_and_types(task.history.events)[-3:] == [
        (11, "WORKFLOW_TASK_FAILED"),
        (12, "WORKFLOW_TASK_SCHEDULED"),
        (13, "WORKFLOW_TASK_STARTED"),
    ]
    assert (task.started_event_id, task.attempt) == (13, 2)
    assert scheduled_attempt(event(task.history.events, 12)) == 2
    await worker.complete(task, [complete_command()])
    history = await worker.history(wid)
    assert [t for _, t in ids_and_types(history)].count("WORKFLOW_TASK_FAILED") == 2
    assert scheduled_attempt(event(history, 12)) == 2


async def test_sdk_workflow_task_fails_three_times_then_succeeds(client: Client, task_queue: str, new_id) -> None:
    """The SDK reports only the first failure; attempts 2 and 3 fail in the worker and time out
    on the server (1 s task timeout) without a trace; attempt 4 completes."""
    wid = new_id("sdk-flaky")
    async with Worker(
        client, task_queue=task_queue, workflows=[FlakyTaskWorkflow], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        handle = await client.start_workflow(
            FlakyTaskWorkflow.run, 3, id=wid, task_queue=task_queue, task_timeout=TASK_TIMEOUT
        )
        assert await result_of(handle.result()) == 4
    history = await handle.fetch_history()
    assert event_types(history) == [t for _, t in FAILED_FIRST + TRANSIENT + COMPLETED]
    assert event(history.events, 4).workflow_task_failed_event_attributes.failure.message == "flaky task, run 1"
    assert scheduled_attempt(event(history.events, 2)) == 1
    assert scheduled_attempt(event(history.events, 5)) == 4
    # 1 s + 5 s x (0.8 to 1.0) for attempt 4.
    assert 5 <= timeout_of(event(history.events, 5)) <= 6
