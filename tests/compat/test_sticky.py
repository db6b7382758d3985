"""Sticky execution: which queue a workflow task goes to, and what history it carries.

A hand-written worker (`compat_dispatch.RawWorker`) completes workflow tasks with
`sticky_attributes`, polls or stops polling its sticky queue, and calls ResetStickyTaskQueue and
ShutdownWorker, so every dispatch decision of the server is visible; the SDK tests at the end show
what users see (a caching worker, a worker without cache, a cache miss, a restart).

Recorded against the real dev server (temporal CLI 1.9.1, server 1.32.0):
- the WorkflowTaskScheduled event names the queue the task was scheduled on: the sticky queue as
  {name, kind STICKY, normal_name} while the run is sticky, otherwise {name, kind NORMAL};
- a task started from the sticky queue carries only the events after previous_started_event_id;
  one started from the normal queue carries the full history (and clears the stickiness);
- a sticky queue that no poller has polled in the last 10 s is "unavailable": the task goes to the
  normal queue at once, but the event still names the sticky queue and the sticky
  schedule-to-start timeout still applies;
- a task left in a sticky queue times out after the sticky schedule_to_start_timeout with
  WorkflowTaskTimedOut(SCHEDULE_TO_START, started_event_id 0) and is rescheduled on the normal
  queue with attempt 1 (a schedule-to-start timeout does not count as a failed attempt);
- a legacy query goes to the sticky queue first (empty history); without a sticky poller it falls
  back to the normal queue (full history) and clears the stickiness.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import (
    DescribeTaskQueueMode,
    EventType,
    PendingWorkflowTaskState,
    TaskQueueKind,
    TimeoutType,
)
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from compat_dispatch import (
    FIRST_TASK,
    WFT_SCHEDULED,
    WFT_TIMED_OUT,
    Background,
    RawWorker,
    StepsWorkflow,
    complete_command,
    event,
    ids_and_types,
    scheduled_queue,
)
from compat_util import eventually, result_of

STICKY = "TASK_QUEUE_KIND_STICKY"
NORMAL = "TASK_QUEUE_KIND_NORMAL"

# What a signal after the first completed task adds, as ids and types.
SIGNAL_TASK = [
    (4, "WORKFLOW_TASK_COMPLETED"),
    (5, "WORKFLOW_EXECUTION_SIGNALED"),
    (6, "WORKFLOW_TASK_SCHEDULED"),
    (7, "WORKFLOW_TASK_STARTED"),
]
# The same when the task scheduled by the signal timed out in the sticky queue first.
SIGNAL_TASK_AFTER_STICKY_TIMEOUT = [
    (4, "WORKFLOW_TASK_COMPLETED"),
    (5, "WORKFLOW_EXECUTION_SIGNALED"),
    (6, "WORKFLOW_TASK_SCHEDULED"),
    (7, "WORKFLOW_TASK_TIMED_OUT"),
    (8, "WORKFLOW_TASK_SCHEDULED"),
    (9, "WORKFLOW_TASK_STARTED"),
]
COMPLETED_TAIL = ["WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED"]


@pytest.fixture
async def background() -> AsyncIterator[Background]:
    async with Background() as tasks:
        yield tasks


async def sticky_run(client: Client, task_queue: str, wid: str, s2s: timedelta) -> RawWorker:
    """A raw worker whose run `wid` completed its first task with sticky attributes."""
    worker = RawWorker(client, task_queue)
    first = await worker.start_and_poll(wid)
    await worker.complete(first, sticky=worker.sticky_attributes(s2s))
    return worker


def assert_sticky_timeout(events, worker: RawWorker) -> None:
    """Events 6-8 of SIGNAL_TASK_AFTER_STICKY_TIMEOUT: sticky task, its timeout, the normal task."""
    assert scheduled_queue(event(events, 6)) == (worker.sticky_queue, STICKY, worker.task_queue)
    timed_out = event(events, 7).workflow_task_timed_out_event_attributes
    assert (timed_out.scheduled_event_id, timed_out.started_event_id) == (6, 0)
    assert timed_out.timeout_type == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
    assert scheduled_queue(event(events, 8)) == (worker.task_queue, NORMAL, "")
    assert event(events, 8).workflow_task_scheduled_event_attributes.attempt == 1


async def test_sticky_task_carries_only_new_events(
    client: Client, background: Background, task_queue: str, new_id
) -> None:
    wid = new_id("sticky")
    worker = await sticky_run(client, task_queue, wid, timedelta(seconds=5))
    sticky_poll = background(worker.poll(worker.sticky()))
    await worker.wait_for_sticky_poller()
    await worker.signal(wid)
    task = await sticky_poll
    assert task.task_token
    assert ids_and_types(task.history.events) == SIGNAL_TASK
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (3, 7, 1)
    assert task.workflow_execution_task_queue.name == task_queue
    assert task.workflow_execution_task_queue.kind == TaskQueueKind.TASK_QUEUE_KIND_NORMAL
    assert scheduled_queue(event(task.history.events, 6)) == (worker.sticky_queue, STICKY, task_queue)
    assert event(task.history.events, 7).workflow_task_started_event_attributes.identity == worker.identity

    await worker.complete(task, [complete_command()], sticky=worker.sticky_attributes(timedelta(seconds=5)))
    history = await worker.history(wid)
    assert [t for _, t in ids_and_types(history)] == [t for _, t in FIRST_TASK + SIGNAL_TASK] + COMPLETED_TAIL
    assert scheduled_queue(event(history, 2)) == (task_queue, NORMAL, "")
    assert scheduled_queue(event(history, 6)) == (worker.sticky_queue, STICKY, task_queue)


async def test_without_sticky_poller_the_task_goes_to_the_normal_queue(
    client: Client, task_queue: str, new_id
) -> None:
    """Nobody ever polled the sticky queue: the task is dispatched to the normal queue at once,
    with full history, while its event still names the sticky queue."""
    wid = new_id("sticky-fallback")
    s2s = timedelta(seconds=5)
    worker = await sticky_run(client, task_queue, wid, s2s)
    await worker.signal(wid)
    started = time.monotonic()
    task = await worker.poll_task()
    assert time.monotonic() - started < s2s.total_seconds(), "fell back only after the sticky timeout"
    assert ids_and_types(task.history.events) == FIRST_TASK + SIGNAL_TASK
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (3, 7, 1)
    assert scheduled_queue(event(task.history.events, 6)) == (worker.sticky_queue, STICKY, task_queue)

    # A completion without sticky attributes: the next task is scheduled on the normal queue.
    await worker.complete(task)
    await worker.signal(wid)
    task = await worker.poll_task()
    assert ids_and_types(task.history.events)[-2:] == [(10, "WORKFLOW_TASK_SCHEDULED"), (11, "WORKFLOW_TASK_STARTED")]
    assert scheduled_queue(event(task.history.events, 10)) == (task_queue, NORMAL, "")
    await worker.complete(task, [complete_command()])


async def test_fallback_task_still_times_out_after_sticky_schedule_to_start(
    client: Client, task_queue: str, new_id
) -> None:
    """The fallen-back task keeps the sticky schedule-to-start timeout: nobody polls the normal
    queue in time, so it times out and a new task is scheduled on the normal queue."""
    wid = new_id("sticky-fallback-late")
    s2s = timedelta(seconds=1)
    worker = await sticky_run(client, task_queue, wid, s2s)
    await worker.signal(wid)
    # The behaviour under test is a timeout: nobody polls for twice the sticky timeout.
    await asyncio.sleep(2 * s2s.total_seconds())
    task = await worker.poll_task()
    assert ids_and_types(task.history.events) == FIRST_TASK + SIGNAL_TASK_AFTER_STICKY_TIMEOUT
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (3, 9, 1)
    assert_sticky_timeout(task.history.events, worker)
    await worker.complete(task, [complete_command()])


async def test_sticky_schedule_to_start_timeout(client: Client, task_queue: str, new_id) -> None:
    """The sticky worker polled a moment ago and then went away: the task waits in the sticky
    queue until the sticky schedule-to-start timeout, then comes from the normal queue."""
    wid = new_id("sticky-s2s")
    s2s = timedelta(seconds=1)
    worker = await sticky_run(client, task_queue, wid, s2s)
    gone = await worker.poll_empty(worker.sticky())
    assert not gone.task_token
    await worker.signal(wid)
    started = time.monotonic()
    task = await worker.poll_task()
    waited = time.monotonic() - started
    assert waited >= 0.8 * s2s.total_seconds(), f"normal queue got the task after {waited:.2f}s, before the timeout"
    assert ids_and_types(task.history.events) == FIRST_TASK + SIGNAL_TASK_AFTER_STICKY_TIMEOUT
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (3, 9, 1)
    assert_sticky_timeout(task.history.events, worker)

    await worker.complete(task, [complete_command()])
    history = await worker.history(wid)
    assert [t for _, t in ids_and_types(history)] == [
        t for _, t in FIRST_TASK + SIGNAL_TASK_AFTER_STICKY_TIMEOUT
    ] + COMPLETED_TAIL


async def test_reset_sticky_task_queue(client: Client, background: Background, task_queue: str, new_id) -> None:
    """After ResetStickyTaskQueue the next task is scheduled on the normal queue, even while the
    sticky worker is polling."""
    wid = new_id("sticky-reset")
    worker = await sticky_run(client, task_queue, wid, timedelta(seconds=5))
    sticky_poll = background(worker.poll(worker.sticky(), timedelta(seconds=4)))
    await worker.wait_for_sticky_poller()
    await worker.reset_sticky(wid)
    await worker.signal(wid)
    task = await worker.poll_task()
    assert ids_and_types(task.history.events) == FIRST_TASK + SIGNAL_TASK
    assert (task.previous_started_event_id, task.started_event_id) == (3, 7)
    assert scheduled_queue(event(task.history.events, 6)) == (task_queue, NORMAL, "")
    assert not (await sticky_poll).task_token, "the sticky poller got a task after ResetStickyTaskQueue"
    await worker.complete(task, [complete_command()])

    with pytest.raises(RPCError) as closed:
        await worker.reset_sticky(wid)
    assert closed.value.status == RPCStatusCode.NOT_FOUND
    assert closed.value.message == "workflow execution already completed"
    missing = new_id("never-started")
    with pytest.raises(RPCError) as unknown:
        await worker.reset_sticky(missing)
    assert unknown.value.status == RPCStatusCode.NOT_FOUND
    assert unknown.value.message == f"workflow not found for ID: {missing}"


async def test_shutdown_worker_sends_the_next_task_to_the_normal_queue(
    client: Client, task_queue: str, new_id
) -> None:
    """ShutdownWorker(sticky_task_queue) unloads the sticky queue: the next task falls back to the
    normal queue at once (no schedule-to-start timeout), with full history. The run itself stays
    sticky until a task starts, so the event still names the sticky queue."""
    wid = new_id("sticky-shutdown")
    s2s = timedelta(seconds=5)
    worker = await sticky_run(client, task_queue, wid, s2s)
    # A poll that ended a moment ago: without the shutdown the queue would count as alive for 10 s.
    assert not (await worker.poll_empty(worker.sticky())).task_token
    await worker.shutdown()
    await worker.signal(wid)
    started = time.monotonic()
    task = await worker.poll_task()
    assert time.monotonic() - started < s2s.total_seconds(), "the task waited for the sticky timeout"
    assert ids_and_types(task.history.events) == FIRST_TASK + SIGNAL_TASK
    assert scheduled_queue(event(task.history.events, 6)) == (worker.sticky_queue, STICKY, task_queue)
    await worker.complete(task, [complete_command()])
    assert not [e for e in await worker.history(wid) if e.event_type == WFT_TIMED_OUT]


async def test_query_is_answered_by_the_sticky_poller(
    client: Client, background: Background, task_queue: str, new_id
) -> None:
    """A legacy query on a sticky run goes to the sticky queue with an empty history; the run
    stays sticky afterwards."""
    wid = new_id("sticky-query")
    worker = await sticky_run(client, task_queue, wid, timedelta(seconds=5))
    sticky_poll = background(worker.poll(worker.sticky()))
    await worker.wait_for_sticky_poller()
    query = background(worker.query(wid, "state"))
    task = await sticky_poll
    assert task.task_token and task.HasField("query")
    assert task.query.query_type == "state"
    assert len(task.history.events) == 0
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (3, 0, 1)
    assert task.workflow_execution.workflow_id == wid
    await worker.answer_query(task, "sticky answer")
    answer = await query
    assert await client.data_converter.decode(answer.query_result.payloads) == ["sticky answer"]

    sticky_poll = background(worker.poll(worker.sticky()))
    await worker.signal(wid)
    task = await sticky_poll
    assert task.task_token and not task.HasField("query")
    assert ids_and_types(task.history.events) == SIGNAL_TASK
    await worker.complete(task, [complete_command()])


async def test_query_without_sticky_poller_clears_stickiness(
    client: Client, background: Background, task_queue: str, new_id
) -> None:
    """No sticky poller: the query falls back to the normal queue with the full history, and the
    server clears the stickiness, so the next task is scheduled on the normal queue."""
    wid = new_id("sticky-query-fallback")
    worker = await sticky_run(client, task_queue, wid, timedelta(seconds=5))
    query = background(worker.query(wid, "state"))
    task = await worker.poll_task()
    assert task.HasField("query") and task.query.query_type == "state"
    assert ids_and_types(task.history.events) == FIRST_TASK + [(4, "WORKFLOW_TASK_COMPLETED")]
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (3, 0, 1)
    await worker.answer_query(task, "normal answer")
    assert await client.data_converter.decode((await query).query_result.payloads) == ["normal answer"]

    await worker.signal(wid)
    task = await worker.poll_task()
    assert ids_and_types(task.history.events) == FIRST_TASK + SIGNAL_TASK
    assert scheduled_queue(event(task.history.events, 6)) == (task_queue, NORMAL, "")
    await worker.complete(task, [complete_command()])


async def test_return_new_workflow_task_carries_partial_history(client: Client, task_queue: str, new_id) -> None:
    """A signal during a task plus return_new_workflow_task: the completion response carries the
    next task, already started, with only the new events (even without sticky attributes)."""
    wid = new_id("return-new")
    worker = RawWorker(client, task_queue)
    first = await worker.start_and_poll(wid)
    await worker.signal(wid)
    resp = await worker.complete(first, return_new_workflow_task=True)
    task = resp.workflow_task
    assert task.task_token
    assert ids_and_types(task.history.events) == SIGNAL_TASK
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (3, 7, 1)
    assert scheduled_queue(event(task.history.events, 6)) == (task_queue, NORMAL, "")
    assert event(task.history.events, 7).workflow_task_started_event_attributes.identity == worker.identity
    assert not (await worker.poll_empty()).task_token, "the returned task was also dispatched to the queue"

    # force_create_new_workflow_task (a heartbeat) with sticky attributes: the new task is
    # scheduled on the sticky queue and returned inline.
    resp = await worker.complete(
        task,
        sticky=worker.sticky_attributes(timedelta(seconds=5)),
        force_create_new_workflow_task=True,
        return_new_workflow_task=True,
    )
    task = resp.workflow_task
    assert ids_and_types(task.history.events) == [
        (8, "WORKFLOW_TASK_COMPLETED"),
        (9, "WORKFLOW_TASK_SCHEDULED"),
        (10, "WORKFLOW_TASK_STARTED"),
    ]
    assert (task.previous_started_event_id, task.started_event_id) == (7, 10)
    assert scheduled_queue(event(task.history.events, 9)) == (worker.sticky_queue, STICKY, task_queue)

    # Without return_new_workflow_task and without sticky attributes the forced task goes
    # through the normal queue.
    resp = await worker.complete(task, force_create_new_workflow_task=True)
    assert not resp.HasField("workflow_task")
    task = await worker.poll_task()
    assert ids_and_types(task.history.events)[-3:] == [
        (11, "WORKFLOW_TASK_COMPLETED"),
        (12, "WORKFLOW_TASK_SCHEDULED"),
        (13, "WORKFLOW_TASK_STARTED"),
    ]
    assert scheduled_queue(event(task.history.events, 12)) == (task_queue, NORMAL, "")

    # Nothing new and no force: no new task even with return_new_workflow_task.
    resp = await worker.complete(task, return_new_workflow_task=True)
    assert not resp.HasField("workflow_task")
    await worker.signal(wid)
    await worker.complete(await worker.poll_task(), [complete_command()])


async def test_describe_a_sticky_run_and_its_sticky_queue(
    client: Client, background: Background, task_queue: str, new_id
) -> None:
    """DescribeWorkflowExecution shows the normal queue only (no sticky fields); DescribeTaskQueue
    with kind STICKY lists the sticky poller; the enhanced mode refuses sticky queues."""
    wid = new_id("sticky-describe")
    worker = await sticky_run(client, task_queue, wid, timedelta(seconds=5))
    sticky_poll = background(worker.poll(worker.sticky()))
    queue = await worker.wait_for_sticky_poller()
    assert [p.identity for p in queue.pollers] == [worker.identity]

    desc = await worker.describe(wid)
    assert desc.execution_config.task_queue.name == task_queue
    assert desc.execution_config.task_queue.kind == TaskQueueKind.TASK_QUEUE_KIND_NORMAL
    assert desc.workflow_execution_info.task_queue == task_queue
    assert not desc.HasField("pending_workflow_task")

    await worker.signal(wid)
    task = await sticky_poll
    desc = await worker.describe(wid)
    assert desc.pending_workflow_task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
    assert desc.pending_workflow_task.attempt == 1
    assert desc.execution_config.task_queue.name == task_queue
    assert desc.workflow_execution_info.task_queue == task_queue

    with pytest.raises(RPCError) as enhanced:
        await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=worker.sticky(),
                api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
            )
        )
    assert enhanced.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert enhanced.value.message == (
        "Enhanced DescribeTaskQueue is not valid for a sticky queue, use api_mode=UNSPECIFIED or a normal queue."
    )
    await worker.complete(task, [complete_command()])


# --- the Python SDK ------------------------------------------------------------------------------


def scheduled_queues(events) -> list[tuple[str, str, str]]:
    return [scheduled_queue(e) for e in events if e.event_type == WFT_SCHEDULED]


async def start_steps(client: Client, task_queue: str, wid: str, count: int) -> WorkflowHandle:
    """Starts StepsWorkflow; the first query returns once its first workflow task completed, so
    no signal is delivered with that task."""
    handle = await client.start_workflow(StepsWorkflow.run, count, id=wid, task_queue=task_queue)
    assert await asyncio.wait_for(handle.query(StepsWorkflow.steps), 30) == []
    return handle


async def signal_and_wait(handle: WorkflowHandle, value: str, expect: int) -> None:
    """One signal, then queries until the workflow has seen `expect` signals, so each signal gets
    its own workflow task."""
    await handle.signal(StepsWorkflow.step, value)
    await eventually(lambda: handle.query(StepsWorkflow.steps), lambda s: len(s) >= expect, what=f"{value} seen")


async def test_sdk_worker_tasks_go_to_its_sticky_queue(client: Client, task_queue: str, new_id) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow]):
        handle = await start_steps(client, task_queue, new_id("sdk-sticky"), 3)
        for i in range(3):
            await signal_and_wait(handle, f"s{i}", i + 1)
        assert await result_of(handle.result()) == ["s0", "s1", "s2"]
    queues = scheduled_queues((await handle.fetch_history()).events)
    assert len(queues) == 4
    assert queues[0] == (task_queue, NORMAL, "")
    sticky_names = {name for name, _, _ in queues[1:]}
    assert len(sticky_names) == 1 and task_queue not in sticky_names
    assert all(kind == STICKY and normal == task_queue for _, kind, normal in queues[1:])


async def test_sdk_cache_miss_on_a_sticky_task(client: Client, task_queue: str, new_id) -> None:
    """With room for one cached run, two runs evict each other: each sticky task (partial
    history) finds its run missing, so the worker fetches the full history and carries on."""
    async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow], max_cached_workflows=1):
        a = await start_steps(client, task_queue, new_id("sdk-cache-a"), 3)
        b = await start_steps(client, task_queue, new_id("sdk-cache-b"), 3)
        for i in range(3):
            await signal_and_wait(a, f"a{i}", i + 1)
            await signal_and_wait(b, f"b{i}", i + 1)
        assert await result_of(a.result()) == ["a0", "a1", "a2"]
        assert await result_of(b.result()) == ["b0", "b1", "b2"]
    for handle in (a, b):
        queues = scheduled_queues((await handle.fetch_history()).events)
        assert queues[0] == (task_queue, NORMAL, "")
        assert len(queues) == 4
        assert [kind for _, kind, _ in queues[1:]] == [STICKY] * 3


async def test_sdk_worker_without_cache_never_goes_sticky(client: Client, task_queue: str, new_id) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow], max_cached_workflows=0):
        handle = await start_steps(client, task_queue, new_id("sdk-nocache"), 3)
        for i in range(3):
            await signal_and_wait(handle, f"n{i}", i + 1)
        assert await result_of(handle.result()) == ["n0", "n1", "n2"]
    queues = scheduled_queues((await handle.fetch_history()).events)
    assert queues == [(task_queue, NORMAL, "")] * 4


async def test_sdk_restarted_worker_completes_a_sticky_workflow(client: Client, task_queue: str, new_id) -> None:
    """The first worker's shutdown (ShutdownWorker with its sticky queue) lets the task scheduled
    for its sticky queue go to the new worker through the normal queue without a timeout."""
    first_identity, second_identity = f"first-{uuid.uuid4().hex[:6]}", f"second-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow], identity=first_identity):
        handle = await start_steps(client, task_queue, new_id("sdk-restart"), 3)
        await signal_and_wait(handle, "1", 1)
    await handle.signal(StepsWorkflow.step, "2")
    async with Worker(client, task_queue=task_queue, workflows=[StepsWorkflow], identity=second_identity):
        await handle.signal(StepsWorkflow.step, "3")
        assert await result_of(handle.result()) == ["1", "2", "3"]
    events = (await handle.fetch_history()).events
    assert not [e for e in events if e.event_type == WFT_TIMED_OUT]
    started_by = {
        e.workflow_task_started_event_attributes.scheduled_event_id: e.workflow_task_started_event_attributes.identity
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    }
    tasks = [(scheduled_queue(e), started_by[e.event_id]) for e in events if e.event_type == WFT_SCHEDULED]
    assert tasks[0] == ((task_queue, NORMAL, ""), first_identity)
    (name, kind, normal), identity = tasks[1]
    assert (kind, normal, identity) == (STICKY, task_queue, first_identity) and name.startswith(first_identity)
    # The first task the second worker got had been scheduled on the first worker's sticky queue.
    by_second = [queue for queue, identity in tasks if identity == second_identity]
    assert by_second and by_second[0] == (name, STICKY, task_queue)
