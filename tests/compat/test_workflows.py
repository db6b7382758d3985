"""Workflow execution semantics: activities, retries, failures, histories, replay, fan-out."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import RetryState
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

import compat_workflows as cw
from compat_util import ONE_ACTIVITY_HISTORY, event_types, events_of, make_worker, result_of


async def test_hello_world_history(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("hello")
    async with make_worker(client, task_queue):
        handle = await client.start_workflow(cw.HelloWorkflow.run, "Uhrwerk", id=wid, task_queue=task_queue)
        assert await result_of(handle.result()) == "Hello, Uhrwerk!"
    history = await handle.fetch_history()
    assert event_types(history) == ONE_ACTIVITY_HISTORY
    # Event ids are contiguous from 1.
    assert [e.event_id for e in history.events] == list(range(1, len(history.events) + 1))
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == "HelloWorkflow"
    assert started.task_queue.name == task_queue
    assert started.attempt == 1
    # The server fills in the default workflow task timeout of 10 s.
    assert started.workflow_task_timeout.ToSeconds() == 10
    wft_sched = history.events[1].workflow_task_scheduled_event_attributes
    assert wft_sched.task_queue.name == task_queue
    assert wft_sched.start_to_close_timeout.ToSeconds() == 10
    assert wft_sched.attempt == 1
    assert history.events[2].workflow_task_started_event_attributes.scheduled_event_id == 2
    wft_done = history.events[3].workflow_task_completed_event_attributes
    assert (wft_done.scheduled_event_id, wft_done.started_event_id) == (2, 3)
    assert history.events[8].workflow_task_started_event_attributes.scheduled_event_id == 8
    wft_done = history.events[9].workflow_task_completed_event_attributes
    assert (wft_done.scheduled_event_id, wft_done.started_event_id) == (8, 9)
    sched = events_of(history, "ACTIVITY_TASK_SCHEDULED")[0].activity_task_scheduled_event_attributes
    assert sched.activity_type.name == "say_hello"
    assert sched.workflow_task_completed_event_id == 4
    # Activities always get an effective retry policy (defaults: 1 s, 2.0, 100 s).
    assert sched.retry_policy.initial_interval.ToSeconds() == 1
    assert sched.retry_policy.backoff_coefficient == 2.0
    assert sched.retry_policy.maximum_interval.ToSeconds() == 100
    act_started = events_of(history, "ACTIVITY_TASK_STARTED")[0].activity_task_started_event_attributes
    assert act_started.scheduled_event_id == 5
    assert act_started.attempt == 1
    completed = events_of(history, "ACTIVITY_TASK_COMPLETED")[0].activity_task_completed_event_attributes
    assert (completed.scheduled_event_id, completed.started_event_id) == (5, 6)
    done = history.events[-1].workflow_execution_completed_event_attributes
    assert done.workflow_task_completed_event_id == 10


# Three activities, the second one failing twice before it succeeds.
ORDER_HISTORY = [
    "WORKFLOW_EXECUTION_STARTED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "ACTIVITY_TASK_SCHEDULED",  # calculate_discount
    "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_COMPLETED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "ACTIVITY_TASK_SCHEDULED",  # process_payment: retries write no events until the last attempt
    "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_COMPLETED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "ACTIVITY_TASK_SCHEDULED",  # create_shipment
    "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_COMPLETED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "WORKFLOW_EXECUTION_COMPLETED",
]


async def test_order_workflow_with_retries(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("order")
    order = cw.OrderInput(user_id="u42", cart_items=["book", "pen"], discount_code="SAVE10")
    async with make_worker(client, task_queue):
        result = await result_of(client.execute_workflow(cw.OrderWorkflow.run, order, id=wid, task_queue=task_queue))
    assert isinstance(result, cw.OrderResult)
    assert result == cw.OrderResult(
        order_id="order-u42-a3",
        tracking_number="track-order-u42-a3",
        charged_cents=1800,
        items=["book", "pen"],
    )
    history = await client.get_workflow_handle(wid).fetch_history()
    assert event_types(history) == ORDER_HISTORY
    scheduled = events_of(history, "ACTIVITY_TASK_SCHEDULED")
    assert [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled] == [
        "calculate_discount",
        "process_payment",
        "create_shipment",
    ]
    pay_sched = scheduled[1]
    policy = pay_sched.activity_task_scheduled_event_attributes.retry_policy
    assert policy.maximum_attempts == 5
    assert policy.initial_interval.ToMilliseconds() == 100
    pay_started = [
        e.activity_task_started_event_attributes
        for e in events_of(history, "ACTIVITY_TASK_STARTED")
        if e.activity_task_started_event_attributes.scheduled_event_id == pay_sched.event_id
    ]
    assert len(pay_started) == 1
    assert pay_started[0].attempt == 3
    assert pay_started[0].HasField("last_failure")
    assert pay_started[0].last_failure.message == "payment declined (attempt 2)"
    assert pay_started[0].last_failure.application_failure_info.type == "PaymentDeclined"
    # The other activities succeeded at once and carry no last_failure.
    for e in events_of(history, "ACTIVITY_TASK_STARTED"):
        if e.activity_task_started_event_attributes.scheduled_event_id != pay_sched.event_id:
            assert e.activity_task_started_event_attributes.attempt == 1
            assert not e.activity_task_started_event_attributes.HasField("last_failure")


# One activity that fails for good, after which the workflow completes normally.
FAILED_ACTIVITY_HISTORY = [
    "WORKFLOW_EXECUTION_STARTED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "ACTIVITY_TASK_SCHEDULED",
    "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_FAILED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "WORKFLOW_EXECUTION_COMPLETED",
]


async def test_non_retryable_activity_error(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("nonretry")
    async with make_worker(client, task_queue):
        report = await result_of(
            client.execute_workflow(cw.NonRetryableActivityWorkflow.run, "card stolen", id=wid, task_queue=task_queue)
        )
    assert report == cw.ActivityErrorReport(
        error="ActivityError",
        retry_state="NON_RETRYABLE_FAILURE",
        cause_type="Fatal",
        cause_message="card stolen",
    )
    history = await client.get_workflow_handle(wid).fetch_history()
    assert event_types(history) == FAILED_ACTIVITY_HISTORY
    (started,) = events_of(history, "ACTIVITY_TASK_STARTED")
    assert started.activity_task_started_event_attributes.attempt == 1
    assert not started.activity_task_started_event_attributes.HasField("last_failure")
    (failed,) = events_of(history, "ACTIVITY_TASK_FAILED")
    attrs = failed.activity_task_failed_event_attributes
    assert attrs.retry_state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE
    assert attrs.failure.message == "card stolen"
    assert attrs.failure.application_failure_info.non_retryable is True
    assert attrs.failure.application_failure_info.type == "Fatal"


async def test_retries_exhausted(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("exhausted")
    async with make_worker(client, task_queue):
        report = await result_of(
            client.execute_workflow(cw.ExhaustedRetriesWorkflow.run, "flaky", id=wid, task_queue=task_queue)
        )
    assert report == cw.ActivityErrorReport(
        error="ActivityError",
        retry_state="MAXIMUM_ATTEMPTS_REACHED",
        cause_type="Flaky",
        cause_message="flaky (attempt 3)",
    )
    history = await client.get_workflow_handle(wid).fetch_history()
    assert event_types(history) == FAILED_ACTIVITY_HISTORY
    (started,) = events_of(history, "ACTIVITY_TASK_STARTED")
    assert started.activity_task_started_event_attributes.attempt == 3
    assert started.activity_task_started_event_attributes.last_failure.message == "flaky (attempt 2)"
    (failed,) = events_of(history, "ACTIVITY_TASK_FAILED")
    attrs = failed.activity_task_failed_event_attributes
    assert attrs.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    assert attrs.failure.message == "flaky (attempt 3)"


FAILED_WORKFLOW_HISTORY = [
    "WORKFLOW_EXECUTION_STARTED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "WORKFLOW_EXECUTION_FAILED",
]


async def test_workflow_failure(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("fail")
    async with make_worker(client, task_queue):
        handle = await client.start_workflow(cw.FailingWorkflow.run, "out of stock", id=wid, task_queue=task_queue)
        with pytest.raises(WorkflowFailureError) as info:
            await result_of(handle.result())
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "order rejected: out of stock"
    assert cause.type == "OrderRejected"
    assert cause.details == ({"reason": "out of stock"},)
    history = await handle.fetch_history()
    assert event_types(history) == FAILED_WORKFLOW_HISTORY
    failed = history.events[-1].workflow_execution_failed_event_attributes
    assert failed.failure.message == "order rejected: out of stock"
    assert failed.failure.application_failure_info.type == "OrderRejected"
    assert failed.retry_state == RetryState.RETRY_STATE_RETRY_POLICY_NOT_SET
    assert failed.workflow_task_completed_event_id == 4
    desc = await handle.describe()
    assert desc.status is not None and desc.status.name == "FAILED"


@pytest.mark.timeout(90)
async def test_hundred_parallel_workflows(client: Client, task_queue: str, new_id) -> None:
    ids = [new_id(f"par{i}") for i in range(100)]
    async with make_worker(client, task_queue):
        handles = await asyncio.gather(
            *(
                client.start_workflow(cw.HelloWorkflow.run, f"n{i}", id=wid, task_queue=task_queue)
                for i, wid in enumerate(ids)
            )
        )
        results = await result_of(asyncio.gather(*(h.result() for h in handles)), timeout=75)
    assert results == [f"Hello, n{i}!" for i in range(100)]
    assert len({h.result_run_id for h in handles}) == 100


async def test_replay_history(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("replay")
    async with make_worker(client, task_queue):
        handle = await client.start_workflow(cw.HelloWorkflow.run, "replay", id=wid, task_queue=task_queue)
        await result_of(handle.result())
    history = await handle.fetch_history()
    assert history.workflow_id == wid

    ok = await Replayer(workflows=[cw.HelloWorkflow]).replay_workflow(history)
    assert ok.replay_failure is None

    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[cw.HelloWorkflowChanged]).replay_workflow(history)

    # The JSON form (what the CLI and UI export) replays too.
    from temporalio.client import WorkflowHistory

    again = WorkflowHistory.from_json(wid, history.to_json())
    assert (await Replayer(workflows=[cw.HelloWorkflow]).replay_workflow(again)).replay_failure is None
