"""Eager dispatch: the first workflow task in the StartWorkflowExecution response, and activity
tasks in the RespondWorkflowTaskCompleted response.

Recorded against the real dev server (temporal CLI 1.9.1, server 1.32.0), where both
`system.enableEagerWorkflowStart` and `system.enableActivityEagerExecution` default to true:
- GetSystemInfo and DescribeNamespace advertise eager_workflow_start (nothing advertises eager
  activities);
- request_eager_execution on a start returns `eager_workflow_task`: the first task already
  started (events 1-3, the Started event carrying the start's identity and request id), which
  never goes through the task queue; a retry with the same request id returns it again; a start
  delay denies it; an eager task nobody completes times out like any other;
- every ScheduleActivityTask command with request_eager_execution comes back in `activity_tasks`
  as an activity task started by the completing worker; the server checks neither the task queue
  nor a count (the SDK asks only for activities on its own task queue, at most 3 per task).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from compat_dispatch import (
    FIRST_TASK,
    RAW_ACTIVITY_TYPE,
    RAW_WORKFLOW_TYPE,
    Background,
    EchoActivitiesWorkflow,
    RawWorker,
    complete_command,
    duration,
    echo,
    event,
    ids_and_types,
    schedule_activity_command,
    scheduled_attempt,
)
from compat_util import event_types, result_of

EAGERLY_STARTED = "__temporal_eagerly_started"  # set by the Python client from the start response


@pytest.fixture
async def background() -> AsyncIterator[Background]:
    async with Background() as tasks:
        yield tasks


async def test_eager_start_is_advertised(client: Client) -> None:
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.capabilities.eager_workflow_start
    ns = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    assert ns.namespace_info.capabilities.eager_workflow_start


async def test_eager_workflow_start_returns_the_first_task(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("eager-start")
    worker = RawWorker(client, task_queue)
    req = worker.start_request(wid, request_eager_execution=True)
    resp = await client.workflow_service.start_workflow_execution(req)
    assert resp.started and resp.HasField("eager_workflow_task")
    task = resp.eager_workflow_task
    assert task.task_token
    assert ids_and_types(task.history.events) == FIRST_TASK
    assert (task.previous_started_event_id, task.started_event_id, task.attempt) == (0, 3, 1)
    assert (task.workflow_execution.workflow_id, task.workflow_execution.run_id) == (wid, resp.run_id)
    assert task.workflow_type.name == RAW_WORKFLOW_TYPE
    assert task.workflow_execution_task_queue.name == task_queue
    assert task.HasField("scheduled_time") and task.HasField("started_time")
    started_attrs = event(task.history.events, 1).workflow_execution_started_event_attributes
    assert started_attrs.eager_execution_accepted
    wft_started = event(task.history.events, 3).workflow_task_started_event_attributes
    assert (wft_started.identity, wft_started.request_id) == (worker.identity, req.request_id)

    assert not (await worker.poll_empty()).task_token, "the eager task was also dispatched to the queue"
    # A retried start (same request id) gets the same run and the same eager task again.
    again = await client.workflow_service.start_workflow_execution(req)
    assert again.run_id == resp.run_id
    assert again.eager_workflow_task.started_event_id == 3
    assert ids_and_types(again.eager_workflow_task.history.events) == FIRST_TASK

    await worker.complete(task, [complete_command()])
    history = await worker.history(wid)
    assert ids_and_types(history) == FIRST_TASK + [(4, "WORKFLOW_TASK_COMPLETED"), (5, "WORKFLOW_EXECUTION_COMPLETED")]


async def test_eager_start_is_denied_with_a_start_delay(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("eager-delayed")
    worker = RawWorker(client, task_queue)
    resp = await worker.start(wid, request_eager_execution=True, workflow_start_delay=duration(timedelta(seconds=1)))
    assert resp.started and not resp.HasField("eager_workflow_task")
    history = await worker.history(wid)
    assert ids_and_types(history) == [(1, "WORKFLOW_EXECUTION_STARTED")]
    assert not history[0].workflow_execution_started_event_attributes.eager_execution_accepted
    task = await worker.poll_task()
    assert ids_and_types(task.history.events) == FIRST_TASK
    await worker.complete(task, [complete_command()])


async def test_uncompleted_eager_task_times_out(client: Client, task_queue: str, new_id) -> None:
    """The eager task is an ordinary started task: left alone it times out (start-to-close) and
    attempt 2 comes from the normal queue."""
    wid = new_id("eager-timeout")
    worker = RawWorker(client, task_queue)
    resp = await worker.start(wid, request_eager_execution=True, workflow_task_timeout=duration(timedelta(seconds=1)))
    assert resp.eager_workflow_task.started_event_id == 3
    task = await worker.poll_task()
    assert ids_and_types(task.history.events) == FIRST_TASK + [
        (4, "WORKFLOW_TASK_TIMED_OUT"),
        (5, "WORKFLOW_TASK_SCHEDULED"),
        (6, "WORKFLOW_TASK_STARTED"),
    ]
    assert event(task.history.events, 4).workflow_task_timed_out_event_attributes.timeout_type == (
        TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
    )
    assert (task.started_event_id, task.attempt) == (6, 2)
    assert scheduled_attempt(event(task.history.events, 5)) == 2
    await worker.complete(task, [complete_command()])


async def test_sdk_eager_workflow_start(client: Client, task_queue: str, new_id) -> None:
    """With a worker for the task queue on the same client, request_eager_start hands the first
    task straight to it; without one, the client does not ask."""
    async with Worker(client, task_queue=task_queue, workflows=[EchoActivitiesWorkflow], activities=[echo]):
        handle = await client.start_workflow(
            EchoActivitiesWorkflow.run, 1, id=new_id("sdk-eager"), task_queue=task_queue, request_eager_start=True
        )
        assert getattr(handle, EAGERLY_STARTED) is True
        assert await result_of(handle.result()) == ["echo 0"]
    history = await handle.fetch_history()
    assert event(history.events, 1).workflow_execution_started_event_attributes.eager_execution_accepted
    # The eagerly started task was started by the start request (the client's identity).
    assert event(history.events, 3).workflow_task_started_event_attributes.identity == client.identity

    lonely = await client.start_workflow(
        EchoActivitiesWorkflow.run,
        1,
        id=new_id("sdk-eager-no-worker"),
        task_queue=task_queue + "-none",
        request_eager_start=True,
    )
    assert getattr(lonely, EAGERLY_STARTED) is False
    history = await lonely.fetch_history()
    assert event_types(history) == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    assert not event(history.events, 1).workflow_execution_started_event_attributes.eager_execution_accepted
    await lonely.terminate()


async def test_eager_activities_in_the_completion_response(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("eager-activity")
    worker = RawWorker(client, task_queue)
    first = await worker.start_and_poll(wid)
    other_queue = task_queue + "-other"
    resp = await worker.complete(
        first,
        [
            schedule_activity_command("a1", task_queue, eager=True),
            schedule_activity_command("a2", task_queue, eager=False),
            schedule_activity_command("a3", other_queue, eager=True),
        ],
    )
    assert [t.activity_id for t in resp.activity_tasks] == ["a1", "a3"]
    eager = resp.activity_tasks[0]
    assert eager.task_token
    assert eager.activity_type.name == RAW_ACTIVITY_TYPE
    assert (eager.workflow_execution.workflow_id, eager.workflow_type.name) == (wid, RAW_WORKFLOW_TYPE)
    assert eager.workflow_namespace == client.namespace
    assert eager.attempt == 1
    assert eager.start_to_close_timeout.ToTimedelta() == timedelta(seconds=30)
    assert eager.HasField("scheduled_time") and eager.HasField("started_time")

    # Only a2 goes through the task queue.
    polled = await worker.poll_activity()
    assert polled.activity_id == "a2"
    assert not (await worker.poll_activity(timedelta(seconds=3))).task_token

    history = await worker.history(wid)
    assert ids_and_types(history)[3:] == [
        (4, "WORKFLOW_TASK_COMPLETED"),
        (5, "ACTIVITY_TASK_SCHEDULED"),
        (6, "ACTIVITY_TASK_SCHEDULED"),
        (7, "ACTIVITY_TASK_SCHEDULED"),
    ]
    await worker.complete_activity(eager.task_token, "eager result", identity="activity-completer")
    history = await worker.history(wid)
    assert ids_and_types(history)[7:] == [
        (8, "ACTIVITY_TASK_STARTED"),
        (9, "ACTIVITY_TASK_COMPLETED"),
        (10, "WORKFLOW_TASK_SCHEDULED"),
    ]
    started = event(history, 8).activity_task_started_event_attributes
    assert (started.scheduled_event_id, started.attempt) == (5, 1)
    # Started on behalf of the worker that completed the workflow task, not the one completing it.
    assert started.identity == worker.identity
    await worker.complete(await worker.poll_task(), [complete_command()])


async def test_sdk_requests_eager_activities(client: Client, background: Background, task_queue: str, new_id) -> None:
    """The SDK asks for eager execution of activities on its own task queue by itself. Raw
    pollers compete for the activity queue with the worker's single activity poller; eagerly
    dispatched activities never reach the queue, so the raw pollers get none."""
    decoy = RawWorker(client, task_queue, identity="decoy")
    decoys = [background(decoy.poll_activity(timedelta(seconds=6))) for _ in range(4)]
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[EchoActivitiesWorkflow],
        activities=[echo],
        identity="eager-worker",
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(1),
    ):
        handle = await client.start_workflow(
            EchoActivitiesWorkflow.run, 3, id=new_id("sdk-eager-act"), task_queue=task_queue
        )
        stolen = [t for t in await asyncio.gather(*decoys) if t.task_token]
        for t in stolen:  # let the workflow finish even when the server dispatched through the queue
            await decoy.complete_activity(t.task_token, "decoy")
        assert [t.activity_id for t in stolen] == [], "activities went through the task queue"
        assert await result_of(handle.result()) == ["echo 0", "echo 1", "echo 2"]
    history = await handle.fetch_history()
    identities = [
        e.activity_task_started_event_attributes.identity
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert identities == ["eager-worker"] * 3
