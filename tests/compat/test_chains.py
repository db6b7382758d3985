"""Run chains: continue-as-new (the chapter's 13.1 entity workflow), workflow retry, start delay
and run timeouts. Clients follow `new_execution_run_id` from run to run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.worker import Worker

from compat_features import (
    FEATURE_ACTIVITIES,
    FEATURE_WORKFLOWS,
    CountdownWorkflow,
    FlakyWorkflow,
    SessionInput,
    SessionWorkflow,
    SleepWorkflow,
    UserSessionWorkflow,
)
from compat_util import event_types, events_of, eventually, result_of


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS, activities=FEATURE_ACTIVITIES)


async def test_continue_as_new_chain_is_followed_by_result(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("countdown")
    async with worker(client, task_queue):
        handle = await client.start_workflow(CountdownWorkflow.run, 3, id=wid, task_queue=task_queue)
        assert await result_of(handle.result()) == "done after True"
    first = client.get_workflow_handle(wid, run_id=handle.first_execution_run_id)
    first_history = await first.fetch_history()
    assert event_types(first_history)[-1] == "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    new_run_id = first_history.events[-1].workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    second = await client.get_workflow_handle(wid, run_id=new_run_id).fetch_history()
    started = second.events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id == handle.first_execution_run_id
    assert started.first_execution_run_id == handle.first_execution_run_id
    assert started.original_execution_run_id == new_run_id
    latest = await client.get_workflow_handle(wid).describe()
    assert latest.status == WorkflowExecutionStatus.COMPLETED
    assert latest.run_id not in (handle.first_execution_run_id, new_run_id), "four runs in the chain"
    assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW


async def _feed_session(client: Client, task_queue: str, wid: str, state: SessionInput, n_events: int) -> SessionInput:
    async with worker(client, task_queue):
        handle = await client.start_workflow(UserSessionWorkflow.run, state, id=wid, task_queue=task_queue)
        for value in range(1, n_events + 1):
            # Signals name the workflow id only: each reaches whichever run is current.
            await client.get_workflow_handle(wid).signal(UserSessionWorkflow.event, value)
            # Let the worker take each event on its own, so the history grows event by event
            # (a fast server would otherwise hand all signals to one workflow task).
            await eventually(
                lambda: client.get_workflow_handle(wid).describe(),
                lambda d: not d.raw_description.HasField("pending_workflow_task"),
                what="signal processed",
            )
        await client.get_workflow_handle(wid).signal(UserSessionWorkflow.close)
        return await result_of(handle.result(), timeout=60)


async def test_entity_workflow_continues_as_new_on_history_length(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("session")
    result = await _feed_session(client, task_queue, wid, SessionInput(max_history=20), 30)
    assert (result.processed, result.total) == (30, sum(range(1, 31))), "every event processed exactly once"
    assert result.runs >= 2, "the session continued as new"
    latest = await client.get_workflow_handle(wid).describe()
    assert latest.run_id != latest.raw_description.workflow_execution_info.first_run_id, "the latest run is a successor"


@pytest.mark.needs_managed_server
@pytest.mark.timeout(120)
async def test_entity_workflow_follows_the_servers_suggestion(server_factory, task_queue: str) -> None:
    srv = server_factory("suggest", extra_args=("--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=15"))
    srv.start()
    client = await srv.wait_ready()
    result = await _feed_session(client, task_queue, f"suggest-{task_queue}", SessionInput(use_server_suggestion=True), 25)
    assert (result.processed, result.total) == (25, sum(range(1, 26)))
    assert result.runs >= 2, "the lowered threshold made the server suggest continue-as-new"
    srv.terminate()


async def test_workflow_retry_policy_runs_new_attempts(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("flaky")
    policy = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)
    async with worker(client, task_queue):
        handle = await client.start_workflow(FlakyWorkflow.run, id=wid, task_queue=task_queue, retry_policy=policy)
        assert await result_of(handle.result()) == "ok on attempt 3"
    first = await client.get_workflow_handle(wid, run_id=handle.first_execution_run_id).fetch_history()
    failed = first.events[-1]
    assert event_types(first)[-1] == "WORKFLOW_EXECUTION_FAILED"
    assert failed.workflow_execution_failed_event_attributes.new_execution_run_id
    from temporalio.api.enums.v1 import RetryState

    assert failed.workflow_execution_failed_event_attributes.retry_state == RetryState.RETRY_STATE_IN_PROGRESS
    second = await client.get_workflow_handle(
        wid, run_id=failed.workflow_execution_failed_event_attributes.new_execution_run_id
    ).fetch_history()
    started = second.events[0].workflow_execution_started_event_attributes
    assert started.attempt == 2
    assert started.continued_failure.message == "attempt 1 fails"
    assert started.first_workflow_task_backoff.ToMilliseconds() >= 100


async def test_start_delay_postpones_the_first_task(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            SleepWorkflow.run, 0.01, id=new_id("delayed"), task_queue=task_queue, start_delay=timedelta(seconds=1)
        )
        assert await result_of(handle.result()) == "woke up"
    history = await handle.fetch_history()
    started = history.events[0]
    assert started.workflow_execution_started_event_attributes.first_workflow_task_backoff.ToSeconds() == 1
    first_task = events_of(history, "WORKFLOW_TASK_SCHEDULED")[0]
    delay = first_task.event_time.ToDatetime() - started.event_time.ToDatetime()
    assert delay.total_seconds() >= 1.0, f"first workflow task came after {delay}"


async def test_signal_with_start_honours_the_start_delay(client: Client, task_queue: str, new_id) -> None:
    """Signal-with-start with a start delay: the run starts with the signal in its history and its
    first workflow task waits out the delay, as with a plain start."""
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            SessionWorkflow.run,
            id=new_id("delayed-sws"),
            task_queue=task_queue,
            start_signal="add",
            start_signal_args=[5],
            start_delay=timedelta(seconds=1),
        )
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        assert started.first_workflow_task_backoff.ToSeconds() == 1
        assert event_types(history)[:2] == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_EXECUTION_SIGNALED"]
        assert "WORKFLOW_TASK_SCHEDULED" not in event_types(history), "no task before the delay"
        await handle.signal(SessionWorkflow.finish)
        assert (await result_of(handle.result())).total == 5
    history = await handle.fetch_history()
    first_task = events_of(history, "WORKFLOW_TASK_SCHEDULED")[0]
    delay = first_task.event_time.ToDatetime() - history.events[0].event_time.ToDatetime()
    assert delay.total_seconds() >= 1.0, f"first workflow task came after {delay}"


async def test_run_timeout_times_the_run_out(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            SleepWorkflow.run, 30.0, id=new_id("timeout"), task_queue=task_queue, run_timeout=timedelta(seconds=1)
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await result_of(handle.result())
    assert isinstance(failure.value.cause, TemporalTimeoutError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.TIMED_OUT
    assert event_types(await handle.fetch_history())[-1] == "WORKFLOW_EXECUTION_TIMED_OUT"
