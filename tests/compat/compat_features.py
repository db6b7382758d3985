"""Workflows for the timer and signal tests (chapter 13.1 entity workflows fed by signals).

Kept free of pytest imports so the SDK's workflow sandbox can re-import the module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow


@workflow.defn
class SleepWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(timedelta(seconds=seconds))
        return "woke up"


@dataclass
class SessionState:
    """Small state, as the chapter asks: counters, not the events themselves."""

    processed: int = 0
    total: int = 0
    seen: list[int] = field(default_factory=list)


@workflow.defn
class SessionWorkflow:
    """An entity workflow fed by signals; every event must be processed exactly once."""

    def __init__(self) -> None:
        self.state = SessionState()
        self.done = False

    @workflow.run
    async def run(self) -> SessionState:
        await workflow.wait_condition(lambda: self.done)
        return self.state

    @workflow.signal
    def add(self, value: int) -> None:
        self.state.processed += 1
        self.state.total += value
        self.state.seen.append(value)

    @workflow.signal
    def finish(self) -> None:
        self.done = True


@workflow.defn
class WaitOrTimeoutWorkflow:
    """`wait_condition` with a timeout: a signal before the timeout cancels the timer."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, timeout_seconds: float) -> str:
        try:
            await workflow.wait_condition(lambda: self.go, timeout=timedelta(seconds=timeout_seconds))
            return "signaled"
        except TimeoutError:
            return "timed out"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


FEATURE_WORKFLOWS: list[type] = [SleepWorkflow, SessionWorkflow, WaitOrTimeoutWorkflow]


# --- cancellation ---------------------------------------------------------------------------

from temporalio import activity  # noqa: E402
from temporalio.exceptions import ActivityError, CancelledError  # noqa: E402

import asyncio  # noqa: E402


@activity.defn
async def heartbeat_until_canceled(_: str) -> str:
    """Heartbeats until the server tells it the workflow asked to cancel."""
    while True:
        activity.heartbeat("alive")
        try:
            await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            raise


@workflow.defn
class CancellableWorkflow:
    """Runs a long activity; a cancel request reaches it through its heartbeats."""

    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            heartbeat_until_canceled,
            "x",
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=5),
            # Wait for the activity to confirm, so its ActivityTaskCanceled reaches the history.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )


@workflow.defn
class CancelUnstartedActivityWorkflow:
    """Schedules an activity on a queue nobody polls, then cancels it before it starts."""

    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            heartbeat_until_canceled,
            "x",
            task_queue="nobody-polls-" + workflow.info().workflow_id,
            start_to_close_timeout=timedelta(seconds=60),
        )
        await workflow.sleep(timedelta(milliseconds=100))
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                return "activity canceled"
            raise
        return "activity finished"


FEATURE_WORKFLOWS.extend([CancellableWorkflow, CancelUnstartedActivityWorkflow])
FEATURE_ACTIVITIES = [heartbeat_until_canceled]
