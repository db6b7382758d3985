"""Cancellation (workflow and activities), terminate, and async activity completion by id."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError, TerminatedError
from temporalio.worker import Worker

from compat_features import (
    FEATURE_ACTIVITIES,
    FEATURE_WORKFLOWS,
    CancellableWorkflow,
    CancelUnstartedActivityWorkflow,
    SessionWorkflow,
)
from compat_util import event_types, events_of, eventually, result_of
import compat_workflows as cw


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS, activities=FEATURE_ACTIVITIES)


async def test_cancel_reaches_a_running_activity_through_heartbeats(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(CancellableWorkflow.run, id=new_id("cancel"), task_queue=task_queue)
        await eventually(
            lambda: handle.describe(),
            lambda d: bool(d.raw_description.pending_activities) and d.raw_description.pending_activities[0].last_heartbeat_time.seconds > 0,
            what="activity heartbeating",
        )
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await result_of(handle.result())
    assert isinstance(failure.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    types = event_types(await handle.fetch_history())
    for expected in ("WORKFLOW_EXECUTION_CANCEL_REQUESTED", "ACTIVITY_TASK_CANCEL_REQUESTED", "ACTIVITY_TASK_CANCELED", "WORKFLOW_EXECUTION_CANCELED"):
        assert expected in types, types
    assert types[-1] == "WORKFLOW_EXECUTION_CANCELED"


async def test_cancel_of_an_unstarted_activity_is_immediate(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(CancelUnstartedActivityWorkflow.run, id=new_id("cancel-act"), task_queue=task_queue)
        assert await result_of(handle.result()) == "activity canceled"
    history = await handle.fetch_history()
    types = event_types(history)
    idx = types.index("ACTIVITY_TASK_CANCEL_REQUESTED")
    assert types[idx + 1] == "ACTIVITY_TASK_CANCELED", types
    canceled = events_of(history, "ACTIVITY_TASK_CANCELED")[0].activity_task_canceled_event_attributes
    assert canceled.started_event_id == 0
    assert canceled.latest_cancel_requested_event_id == history.events[idx].event_id


async def test_terminate_closes_the_run(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(SessionWorkflow.run, id=new_id("term"), task_queue=task_queue)
        await handle.terminate("detail", reason="enough")
        with pytest.raises(WorkflowFailureError) as failure:
            await result_of(handle.result())
    assert isinstance(failure.value.cause, TerminatedError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    history = await handle.fetch_history()
    assert event_types(history)[-1] == "WORKFLOW_EXECUTION_TERMINATED", event_types(history)
    assert history.events[-1].workflow_execution_terminated_event_attributes.reason == "enough"


async def test_async_completion_by_id(client: Client, task_queue: str, new_id) -> None:
    key = new_id("by-id")
    wid = new_id("async")
    loop = asyncio.get_running_loop()
    cw.TASK_TOKENS[key] = loop.create_future()
    cw.TASK_TOKENS[key + "-2"] = loop.create_future()
    async with Worker(client, task_queue=task_queue, workflows=[cw.AsyncCompletionWorkflow], activities=[cw.complete_later]):
        handle = await client.start_workflow(cw.AsyncCompletionWorkflow.run, key, id=wid, task_queue=task_queue)
        await asyncio.wait_for(cw.TASK_TOKENS[key], 30)
        by_id = client.get_async_activity_handle(workflow_id=wid, run_id=handle.first_execution_run_id, activity_id="1")
        await by_id.heartbeat("half way")
        await by_id.complete("first")
        await asyncio.wait_for(cw.TASK_TOKENS[key + "-2"], 30)
        by_id = client.get_async_activity_handle(workflow_id=wid, run_id=None, activity_id="2")
        await by_id.complete("second")
        assert await result_of(handle.result()) == "first+second"


async def test_cancel_request_on_a_closed_workflow_succeeds_and_changes_nothing(
    client: Client, task_queue: str, new_id
) -> None:
    """As Temporal: RequestCancelWorkflowExecution on a workflow that already completed is a
    success, and its history stays as it was."""
    handle = await client.start_workflow(CancellableWorkflow.run, id=new_id("cancel-closed"), task_queue=task_queue)
    await handle.terminate("finished before the cancel")
    before = event_types(await handle.fetch_history())
    await handle.cancel()
    assert event_types(await handle.fetch_history()) == before
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
