"""Workflows and activities for the `uhrwerk doctor` scenarios (test_doctor.py): a clean workload
that follows the chapter, and one workload per anti-pattern the doctor reports.

Kept free of pytest imports so the SDK's workflow sandbox can re-import the module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

# Bounded retries and a start-to-close timeout: what the chapter asks of every activity.
GOOD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3)
GOOD_TIMEOUT = timedelta(seconds=10)


@dataclass
class OrderInput:
    """13.1: one input object."""

    order_id: str
    quantity: int = 1


@activity.defn
async def reserve(order_id: str) -> str:
    return f"reserved {order_id}"


@activity.defn
async def step(n: int) -> int:
    return n + 1


@activity.defn
async def fetch_report(size: int) -> str:
    """Returns `size` bytes: a workflow that keeps the result carries it in its history (13.3)."""
    return "r" * size


@activity.defn
async def flaky_forever(order_id: str) -> str:
    raise ApplicationError(f"downstream unavailable for {order_id}")


@activity.defn
async def step_a(n: int) -> str:
    return f"a{n}"


@activity.defn
async def step_b(n: int) -> str:
    return f"b{n}"


@workflow.defn
class CleanOrderWorkflow:
    """Single input object, one activity with a timeout and bounded retries, small state."""

    @workflow.run
    async def run(self, order: OrderInput) -> str:
        return await workflow.execute_activity(
            reserve, order.order_id, start_to_close_timeout=GOOD_TIMEOUT, retry_policy=GOOD_RETRY
        )


@workflow.defn
class WaitForSignalWorkflow:
    """Stays open until signalled; keeps its run (and its task queue) visible to the doctor."""

    def __init__(self) -> None:
        self.released = False

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.run
    async def run(self, order: OrderInput) -> str:
        await workflow.wait_condition(lambda: self.released)
        return order.order_id


@workflow.defn
class GrowingWorkflow:
    """Runs `steps` activities one after the other (about six events each), then waits open.

    It never checks `is_continue_as_new_suggested()`: the anti-pattern of 13.1.
    """

    def __init__(self) -> None:
        self.done = 0
        self.released = False

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.query
    def steps_done(self) -> int:
        return self.done

    @workflow.run
    async def run(self, steps: int) -> int:
        for i in range(steps):
            await workflow.execute_activity(step, i, start_to_close_timeout=GOOD_TIMEOUT, retry_policy=GOOD_RETRY)
            self.done = i + 1
        await workflow.wait_condition(lambda: self.released)
        return self.done


NDE_WORKFLOW = "DoctorNdeWorkflow"


@workflow.defn(name=NDE_WORKFLOW)
class NdeWorkflowV1:
    """v1: step_a, wait for the signal, step_b."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, n: int) -> str:
        a = await workflow.execute_activity(step_a, n, start_to_close_timeout=GOOD_TIMEOUT, retry_policy=GOOD_RETRY)
        await workflow.wait_condition(lambda: self.go)
        b = await workflow.execute_activity(step_b, n, start_to_close_timeout=GOOD_TIMEOUT, retry_policy=GOOD_RETRY)
        return a + b


@workflow.defn(name=NDE_WORKFLOW)
class NdeWorkflowV2Bad:
    """v2 deployed without workflow.patched(): the activity order changed (13.2)."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, n: int) -> str:
        b = await workflow.execute_activity(step_b, n, start_to_close_timeout=GOOD_TIMEOUT, retry_policy=GOOD_RETRY)
        await workflow.wait_condition(lambda: self.go)
        a = await workflow.execute_activity(step_a, n, start_to_close_timeout=GOOD_TIMEOUT, retry_policy=GOOD_RETRY)
        return a + b


@workflow.defn
class BuggyWorkflow:
    """Raises a plain exception in workflow code: the SDK fails the workflow task, again and again."""

    @workflow.run
    async def run(self, order: OrderInput) -> str:
        raise RuntimeError(f"bug while handling {order.order_id}")


@workflow.defn
class NoStartToCloseWorkflow:
    """Only a schedule-to-close timeout: one hung attempt would use the whole budget."""

    @workflow.run
    async def run(self, order: OrderInput) -> str:
        return await workflow.execute_activity(
            reserve, order.order_id, schedule_to_close_timeout=timedelta(minutes=5), retry_policy=GOOD_RETRY
        )


@workflow.defn
class RetryForeverWorkflow:
    """No retry policy and no schedule-to-close timeout: the failing activity is retried forever."""

    @workflow.run
    async def run(self, order: OrderInput) -> str:
        return await workflow.execute_activity(flaky_forever, order.order_id, start_to_close_timeout=GOOD_TIMEOUT)


@workflow.defn
class PositionalOrderWorkflow:
    """13.1's anti-pattern: several positional arguments."""

    @workflow.run
    async def run(self, user_id: str, product_id: str, quantity: int) -> str:
        return f"{user_id}:{product_id}:{quantity}"


@workflow.defn
class BigStateWorkflow:
    """Keeps a 4 KB activity result in its state (and so in its history)."""

    @workflow.run
    async def run(self, order: OrderInput) -> int:
        report = await workflow.execute_activity(
            fetch_report, 4096, start_to_close_timeout=GOOD_TIMEOUT, retry_policy=GOOD_RETRY
        )
        return len(report)


DOCTOR_WORKFLOWS: list[type] = [
    CleanOrderWorkflow,
    WaitForSignalWorkflow,
    GrowingWorkflow,
    BuggyWorkflow,
    NoStartToCloseWorkflow,
    RetryForeverWorkflow,
    PositionalOrderWorkflow,
    BigStateWorkflow,
]
DOCTOR_ACTIVITIES = [reserve, step, fetch_report, flaky_forever, step_a, step_b]
