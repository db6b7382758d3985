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

    @workflow.query
    def total(self) -> int:
        """Read-only, as the chapter demands (13.3)."""
        return self.state.total

    @workflow.query
    def broken(self) -> int:
        raise ValueError("this query fails on purpose")


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
            # Wait for the server's ActivityTaskCanceled: with the default TRY_CANCEL the SDK resolves the
            # activity locally and completes the run in the same task, and the real server then records only
            # ActivityTaskCancelRequested (no ActivityTaskCanceled) before WorkflowExecutionCompleted.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
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


# --- continue-as-new, retry, start delay, timeouts (13.1, 13.6) -----------------------------------

from temporalio.exceptions import ApplicationError  # noqa: E402


@dataclass
class SessionInput:
    """The state a session carries into its next run."""

    total: int = 0
    processed: int = 0
    runs: int = 1
    max_history: int = 0
    use_server_suggestion: bool = False


@workflow.defn
class UserSessionWorkflow:
    """The chapter's entity workflow: fed by signals, continues as new before its history grows
    too long, carrying only small state."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.done = False

    @workflow.run
    async def run(self, state: SessionInput) -> SessionInput:
        while True:
            await workflow.wait_condition(lambda: bool(self.pending) or self.done)
            while self.pending:
                state.total += self.pending.pop(0)
                state.processed += 1
            if self.done:
                return state
            info = workflow.info()
            too_long = (
                info.is_continue_as_new_suggested()
                if state.use_server_suggestion
                else info.get_current_history_length() > state.max_history
            )
            if too_long:
                await workflow.wait_condition(workflow.all_handlers_finished)
                state.runs += 1
                workflow.continue_as_new(state)

    @workflow.signal
    def event(self, value: int) -> None:
        self.pending.append(value)

    @workflow.signal
    def close(self) -> None:
        self.done = True


@workflow.defn
class CountdownWorkflow:
    @workflow.run
    async def run(self, n: int) -> str:
        if n > 0:
            workflow.continue_as_new(n - 1)
        return f"done after {workflow.info().continued_run_id is not None}"


@workflow.defn
class FlakyWorkflow:
    """Fails its first two attempts; the server's workflow retry policy brings a third."""

    @workflow.run
    async def run(self) -> str:
        attempt = workflow.info().attempt
        if attempt < 3:
            raise ApplicationError(f"attempt {attempt} fails")
        return f"ok on attempt {attempt}"


FEATURE_WORKFLOWS.extend([UserSessionWorkflow, CountdownWorkflow, FlakyWorkflow])


# --- updates (13.3: validators reject bad input before it reaches the workflow) ---------------


@workflow.defn
class CartWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.checked_out = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.checked_out)
        return self.items

    @workflow.update
    async def add_item(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @add_item.validator
    def validate_add_item(self, item: str) -> None:
        if not item:
            raise ValueError("empty items are rejected by the validator")

    @workflow.update
    def checkout(self) -> int:
        self.checked_out = True
        return len(self.items)


FEATURE_WORKFLOWS.append(CartWorkflow)


@workflow.defn
class UnfinishedUpdateWorkflow:
    """Its update handler accepts and never finishes; the run completes on the `finish` signal."""

    def __init__(self) -> None:
        self.finished = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.finished)
        return "done"

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def hang(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "never"

    @workflow.signal
    def finish(self) -> None:
        self.finished = True


FEATURE_WORKFLOWS.append(UnfinishedUpdateWorkflow)


@workflow.defn
class BuildIdWorkflow:
    """Returns the build id the SDK reads from its workflow task's Started event."""

    @workflow.run
    async def run(self) -> str:
        return workflow.info().get_current_build_id()


FEATURE_WORKFLOWS.append(BuildIdWorkflow)


@workflow.defn
class SummarizedTimerWorkflow:
    """Sleeps on a timer with a summary (user metadata on the StartTimer command)."""

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.01, summary="short nap")
        return "rested"


FEATURE_WORKFLOWS.append(SummarizedTimerWorkflow)


@workflow.defn
class SummarizedParentWorkflow:
    """Runs SummarizedTimerWorkflow as a child with a static summary."""

    @workflow.run
    async def run(self, child_id: str) -> str:
        return await workflow.execute_child_workflow(
            SummarizedTimerWorkflow.run, id=child_id, static_summary="the child", static_details="child details"
        )


FEATURE_WORKFLOWS.append(SummarizedParentWorkflow)


@workflow.defn
class QueryableCountdownWorkflow:
    """Continues as new down to 0 (after a short timer each time), then waits; `current` answers n."""

    def __init__(self) -> None:
        self.n = -1

    @workflow.run
    async def run(self, n: int) -> str:
        self.n = n
        if n > 0:
            await workflow.sleep(0.05)
            workflow.continue_as_new(n - 1)
        await workflow.wait_condition(lambda: False)
        return "never"

    @workflow.query
    def current(self) -> int:
        return self.n


FEATURE_WORKFLOWS.append(QueryableCountdownWorkflow)
