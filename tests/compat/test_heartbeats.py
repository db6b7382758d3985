"""Activity heartbeats: details carried into the next attempt, heartbeat timeouts, and
pending-activity details in describe()."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import PendingActivityState, RetryState, TimeoutType
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError as TemporalTimeoutError
from temporalio.worker import Worker

from compat_util import event_types, events_of, eventually, result_of

# Per-test events, keyed by the activity's input, that the test sets to let an activity go on.
RELEASE: dict[str, asyncio.Event] = {}


@dataclass
class HeartbeatReport:
    attempt: int
    previous_details: list[str] = field(default_factory=list)


@activity.defn
async def heartbeat_then_fail_once(key: str) -> HeartbeatReport:
    """Attempt 1 heartbeats twice and fails once the test saw the last details on the server;
    attempt 2 reports the details it inherited, then waits so the test can describe it."""
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat("step-1")
        activity.heartbeat("step-2")
        await RELEASE[key + "-1"].wait()
        raise ApplicationError("fails after heartbeating")
    report = HeartbeatReport(attempt=info.attempt, previous_details=[str(d) for d in info.heartbeat_details])
    await RELEASE[key + "-2"].wait()
    return report


@activity.defn
async def heartbeat_once_then_hang(key: str) -> str:
    activity.heartbeat("last words")
    # Never released: the server times the attempt out; worker shutdown cancels this.
    await RELEASE[key].wait()
    return "released"


@workflow.defn(sandboxed=False)
class HeartbeatRetryWorkflow:
    @workflow.run
    async def run(self, key: str) -> HeartbeatReport:
        return await workflow.execute_activity(
            heartbeat_then_fail_once,
            key,
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3),
        )


@workflow.defn(sandboxed=False)
class HeartbeatTimeoutWorkflow:
    @workflow.run
    async def run(self, key: str) -> list[str]:
        try:
            await workflow.execute_activity(
                heartbeat_once_then_hang,
                key,
                start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(seconds=1),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            cause = err.cause
            assert isinstance(cause, TemporalTimeoutError), repr(cause)
            return [
                type(cause).__name__,
                cause.type.name if cause.type else "",
                err.retry_state.name if err.retry_state else "",
                str(list(cause.last_heartbeat_details)),
            ]
        return ["no error"]


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[HeartbeatRetryWorkflow, HeartbeatTimeoutWorkflow],
        activities=[heartbeat_then_fail_once, heartbeat_once_then_hang],
    )


def _pending(desc):
    return desc.raw_description.pending_activities


def _details(pending) -> list[str]:
    return [json.loads(p.data) for p in pending.heartbeat_details.payloads]


async def test_second_attempt_sees_the_first_attempts_heartbeat_details(
    client: Client, task_queue: str, new_id
) -> None:
    key = new_id("hb-retry")
    RELEASE[key + "-1"] = asyncio.Event()
    RELEASE[key + "-2"] = asyncio.Event()
    async with worker(client, task_queue):
        handle = await client.start_workflow(HeartbeatRetryWorkflow.run, key, id=key, task_queue=task_queue)
        # Attempt 1: describe shows the running activity with its last recorded details.
        desc = await eventually(
            handle.describe,
            lambda d: bool(_pending(d)) and _details(_pending(d)[0]) == ["step-2"],
            what="attempt 1's last heartbeat recorded",
        )
        first = _pending(desc)[0]
        assert first.attempt == 1
        assert first.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        assert first.activity_type.name == "heartbeat_then_fail_once"
        assert first.last_heartbeat_time.seconds > 0
        RELEASE[key + "-1"].set()
        # Attempt 2 runs with the failure recorded and the first attempt's details kept.
        desc = await eventually(
            handle.describe,
            lambda d: bool(_pending(d))
            and _pending(d)[0].attempt == 2
            and _pending(d)[0].state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
            what="attempt 2 started",
        )
        second = _pending(desc)[0]
        assert _details(second) == ["step-2"]
        assert second.last_failure.message == "fails after heartbeating"
        RELEASE[key + "-2"].set()
        report = await result_of(handle.result())
    assert report.attempt == 2
    assert report.previous_details == ["step-2"]
    history = await handle.fetch_history()
    types = event_types(history)
    # Retries are not in the history: one scheduled, one started (attempt 2), one completed.
    assert types.count("ACTIVITY_TASK_SCHEDULED") == 1 and types.count("ACTIVITY_TASK_FAILED") == 0, types
    assert events_of(history, "ACTIVITY_TASK_STARTED")[0].activity_task_started_event_attributes.attempt == 2


async def test_heartbeat_timeout_fails_the_activity(client: Client, task_queue: str, new_id) -> None:
    key = new_id("hb-timeout")
    RELEASE[key] = asyncio.Event()
    async with worker(client, task_queue):
        handle = await client.start_workflow(HeartbeatTimeoutWorkflow.run, key, id=key, task_queue=task_queue)
        result = await result_of(handle.result())
    assert result == ["TimeoutError", "HEARTBEAT", "MAXIMUM_ATTEMPTS_REACHED", "['last words']"]
    history = await handle.fetch_history()
    types = event_types(history)
    assert "ACTIVITY_TASK_TIMED_OUT" in types, types
    timed_out = events_of(history, "ACTIVITY_TASK_TIMED_OUT")[0].activity_task_timed_out_event_attributes
    assert timed_out.failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    assert timed_out.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    scheduled = events_of(history, "ACTIVITY_TASK_SCHEDULED")[0]
    started = events_of(history, "ACTIVITY_TASK_STARTED")[0]
    assert (timed_out.scheduled_event_id, timed_out.started_event_id) == (scheduled.event_id, started.event_id)
    assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED", types
