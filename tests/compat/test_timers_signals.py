"""Timers and signals: `workflow.sleep`, `wait_condition` timeouts (CancelTimer), signals,
signal-with-start, and a timer that survives a server crash."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from compat_features import FEATURE_WORKFLOWS, SessionState, SessionWorkflow, SleepWorkflow, WaitOrTimeoutWorkflow
from compat_util import event_types, events_of, eventually, result_of


def feature_worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS)


async def test_sleep_fires_once_and_not_early(client: Client, task_queue: str, new_id) -> None:
    async with feature_worker(client, task_queue):
        handle = await client.start_workflow(SleepWorkflow.run, 1.0, id=new_id("sleep"), task_queue=task_queue)
        assert await result_of(handle.result()) == "woke up"
    history = await handle.fetch_history()
    assert event_types(history) == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "TIMER_STARTED",
        "TIMER_FIRED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    started = events_of(history, "TIMER_STARTED")[0]
    fired = events_of(history, "TIMER_FIRED")[0]
    assert fired.timer_fired_event_attributes.started_event_id == started.event_id
    assert fired.timer_fired_event_attributes.timer_id == started.timer_started_event_attributes.timer_id
    elapsed = fired.event_time.ToDatetime() - started.event_time.ToDatetime()
    assert elapsed.total_seconds() >= 1.0, f"timer fired early, after {elapsed}"


async def test_zero_duration_sleep_is_a_timer_that_fires_at_once(client: Client, task_queue: str, new_id) -> None:
    """`workflow.sleep(0)`: Temporal accepts a zero (or missing) StartToFireTimeout and fires the
    timer at once; only a negative one fails the workflow task."""
    async with feature_worker(client, task_queue):
        handle = await client.start_workflow(SleepWorkflow.run, 0.0, id=new_id("sleep0"), task_queue=task_queue)
        assert await result_of(handle.result()) == "woke up"
    history = await handle.fetch_history()
    assert "WORKFLOW_TASK_FAILED" not in event_types(history)
    started = events_of(history, "TIMER_STARTED")
    fired = events_of(history, "TIMER_FIRED")
    assert len(started) == len(fired) == 1, event_types(history)
    assert started[0].timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds() == 0


async def test_wait_condition_signal_cancels_the_timer(client: Client, task_queue: str, new_id) -> None:
    async with feature_worker(client, task_queue):
        handle = await client.start_workflow(WaitOrTimeoutWorkflow.run, 60.0, id=new_id("wait"), task_queue=task_queue)
        await eventually(lambda: handle.fetch_history(), lambda h: bool(events_of(h, "TIMER_STARTED")), what="timer started")
        await handle.signal(WaitOrTimeoutWorkflow.proceed)
        assert await result_of(handle.result()) == "signaled"
    history = await handle.fetch_history()
    types = event_types(history)
    assert "TIMER_CANCELED" in types and "TIMER_FIRED" not in types, types
    canceled = events_of(history, "TIMER_CANCELED")[0].timer_canceled_event_attributes
    assert canceled.started_event_id == events_of(history, "TIMER_STARTED")[0].event_id


async def test_wait_condition_times_out(client: Client, task_queue: str, new_id) -> None:
    async with feature_worker(client, task_queue):
        handle = await client.start_workflow(WaitOrTimeoutWorkflow.run, 0.5, id=new_id("wait"), task_queue=task_queue)
        assert await result_of(handle.result()) == "timed out"


async def test_entity_workflow_processes_every_signal_once(client: Client, task_queue: str, new_id) -> None:
    values = list(range(1, 31))
    async with feature_worker(client, task_queue):
        handle = await client.start_workflow(SessionWorkflow.run, id=new_id("session"), task_queue=task_queue)
        await asyncio.gather(*(handle.signal(SessionWorkflow.add, v) for v in values))
        await handle.signal(SessionWorkflow.finish)
        state = await result_of(handle.result())
    assert isinstance(state, SessionState)
    assert state.processed == len(values)
    assert state.total == sum(values)
    assert sorted(state.seen) == values
    history = await handle.fetch_history()
    assert len(events_of(history, "WORKFLOW_EXECUTION_SIGNALED")) == len(values) + 1
    # Core's replay rule: a started workflow task is directly followed by its outcome.
    types = event_types(history)
    for idx, t in enumerate(types[:-1]):
        if t == "WORKFLOW_TASK_STARTED":
            assert types[idx + 1] in ("WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_FAILED", "WORKFLOW_TASK_TIMED_OUT"), types


async def test_signal_with_start_starts_then_signals_the_same_run(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("sws")
    async with feature_worker(client, task_queue):
        first = await client.start_workflow(
            SessionWorkflow.run, id=wid, task_queue=task_queue, start_signal="add", start_signal_args=[5]
        )
        second = await client.start_workflow(
            SessionWorkflow.run, id=wid, task_queue=task_queue, start_signal="add", start_signal_args=[7]
        )
        assert second.result_run_id == first.result_run_id, "signal-with-start reuses the open run"
        await first.signal(SessionWorkflow.finish)
        state = await result_of(first.result())
    assert (state.processed, state.total) == (2, 12)
    history = await first.fetch_history()
    assert event_types(history)[:3] == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]


async def test_signal_to_missing_or_closed_workflow_is_not_found(client: Client, task_queue: str, new_id) -> None:
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(new_id("nope")).signal("add", 1)
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    async with feature_worker(client, task_queue):
        handle = await client.start_workflow(SleepWorkflow.run, 0.01, id=new_id("sleep"), task_queue=task_queue)
        await result_of(handle.result())
    with pytest.raises(RPCError) as closed:
        await handle.signal("add", 1)
    assert closed.value.status == RPCStatusCode.NOT_FOUND
    assert "already completed" in closed.value.message


@pytest.mark.needs_managed_server
@pytest.mark.timeout(120)
async def test_timer_survives_kill9(server_factory, task_queue: str) -> None:
    srv = server_factory("timer-crash")
    srv.start()
    client = await srv.wait_ready()
    wid = f"sleep-{uuid.uuid4()}"
    handle = await client.start_workflow(SleepWorkflow.run, 3.0, id=wid, task_queue=task_queue)
    async with feature_worker(client, task_queue):
        await eventually(lambda: handle.fetch_history(), lambda h: bool(events_of(h, "TIMER_STARTED")), what="timer started")
    # The worker is gone; kill the server with the timer armed and restart it on the same file.
    srv.kill9()
    srv.restart()
    client = await srv.wait_ready()
    handle = client.get_workflow_handle(wid)
    async with feature_worker(client, task_queue):
        assert await result_of(handle.result(), timeout=60) == "woke up"
    history = await handle.fetch_history()
    assert len(events_of(history, "TIMER_FIRED")) == 1
    srv.terminate()
