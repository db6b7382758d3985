"""Workflows of the time-skipping tests (test_time_skipping.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@workflow.defn
class LongSleepWorkflow:
    """Sleeps for `seconds` of workflow time and returns workflow.now() before and after."""

    @workflow.run
    async def run(self, seconds: float) -> list[str]:
        before = workflow.now()
        await workflow.sleep(seconds)
        return [before.isoformat(), workflow.now().isoformat()]


@workflow.defn
class NowOnSignalWorkflow:
    """Waits for a signal, then returns workflow.now() of the task that carried it."""

    def __init__(self) -> None:
        self._signalled = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._signalled)
        return workflow.now().isoformat()

    @workflow.signal
    def go(self) -> None:
        self._signalled = True


# The activity of HeartbeatTimeoutWorkflow waits on this hook (set by the test to the
# environment's sleep) instead of heartbeating, so that its heartbeat timeout fires.
SLEEP_IN_ACTIVITY: list = []


@activity.defn
async def sleep_without_heartbeat(seconds: float) -> str:
    await SLEEP_IN_ACTIVITY[0](timedelta(seconds=seconds))
    return "woke"


@workflow.defn
class HeartbeatTimeoutWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            sleep_without_heartbeat,
            40.0,
            schedule_to_close_timeout=timedelta(seconds=1000),
            heartbeat_timeout=timedelta(seconds=20),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)
