"""Small helpers shared by the compat tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

import compat_workflows as cw

T = TypeVar("T")

ALL_WORKFLOWS: list[type] = [
    cw.HelloWorkflow,
    cw.OrderWorkflow,
    cw.NonRetryableActivityWorkflow,
    cw.ExhaustedRetriesWorkflow,
    cw.FailingWorkflow,
    cw.AsyncCompletionWorkflow,
    cw.CrashWorkflow,
]
ALL_ACTIVITIES: list[Callable[..., Any]] = [
    cw.say_hello,
    cw.calculate_discount,
    cw.process_payment,
    cw.create_shipment,
    cw.fail_non_retryable,
    cw.always_fail,
    cw.complete_later,
    cw.record_step,
]

# Result waits are bounded; pytest-timeout is the outer guard.
RESULT_TIMEOUT = 30.0


def make_worker(client: Client, task_queue: str, **kwargs: Any) -> Worker:
    kwargs.setdefault("workflows", ALL_WORKFLOWS)
    kwargs.setdefault("activities", ALL_ACTIVITIES)
    return Worker(client, task_queue=task_queue, **kwargs)


def event_types(history: WorkflowHistory | Sequence[HistoryEvent]) -> list[str]:
    """Event types without the EVENT_TYPE_ prefix, e.g. 'WORKFLOW_EXECUTION_STARTED'."""
    events = history.events if isinstance(history, WorkflowHistory) else history
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]


def events_of(history: WorkflowHistory, type_name: str) -> list[HistoryEvent]:
    want = EventType.Value("EVENT_TYPE_" + type_name)
    return [e for e in history.events if e.event_type == want]


async def result_of(awaitable: Awaitable[T], timeout: float = RESULT_TIMEOUT) -> T:
    return await asyncio.wait_for(awaitable, timeout)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    *,
    timeout: float = 10.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Polls `probe` until `ok(value)`; for eventually consistent reads such as visibility."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


# The event sequence of a workflow with one successful activity, as the real
# Temporal dev server (CLI 1.9.1, server 1.32.0) writes it.
ONE_ACTIVITY_HISTORY = [
    "WORKFLOW_EXECUTION_STARTED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "ACTIVITY_TASK_SCHEDULED",
    "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_COMPLETED",
    "WORKFLOW_TASK_SCHEDULED",
    "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED",
    "WORKFLOW_EXECUTION_COMPLETED",
]


# Secrets the tests hand to servers and clients (API keys, JWTs, private keys): the session's
# last check (conftest.py) reads every server log of the run and fails if one appears there.
SECRETS: set[str] = set()


def secret(value: str) -> str:
    """Registers `value` as a secret that no server log may contain; returns it."""
    if len(value) >= 16:
        SECRETS.add(value)
    return value
