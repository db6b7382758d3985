"""Workflows and activities started by schedules in test_schedules.py.

Kept free of pytest imports so the SDK's workflow sandbox can re-import the module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError


@workflow.defn
class ScheduledEchoWorkflow:
    """Completes at once with its input and its own id, so the test sees which input an action got."""

    @workflow.run
    async def run(self, value: str) -> str:
        return f"{workflow.info().workflow_id}:{value}"


@dataclass
class RecordInput:
    path: str


@dataclass
class RecordLine:
    path: str
    workflow_id: str


@activity.defn
async def append_workflow_id(input: RecordLine) -> None:
    """Appends `workflow_id` as one line to a file the test owns (the side effect)."""
    fd = os.open(input.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{input.workflow_id}\n".encode())
    finally:
        os.close(fd)


@workflow.defn
class ScheduledRecordWorkflow:
    """Writes its workflow id to a file through one activity, then completes."""

    @workflow.run
    async def run(self, input: RecordInput) -> str:
        wid = workflow.info().workflow_id
        await workflow.execute_activity(
            append_workflow_id,
            RecordLine(path=input.path, workflow_id=wid),
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=1)
            ),
        )
        return wid


@workflow.defn
class ScheduledBlockingWorkflow:
    """Runs until it gets the `release` signal, so scheduled actions overlap."""

    def __init__(self) -> None:
        self.released = False

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.run
    async def run(self, value: str) -> str:
        await workflow.wait_condition(lambda: self.released)
        return value


@workflow.defn
class ScheduledFailingWorkflow:
    """Fails its first (and only) run: the schedule's pause_on_failure must react."""

    @workflow.run
    async def run(self, value: str) -> str:
        raise ApplicationError(f"scheduled failure {value}", non_retryable=True)


@workflow.defn
class ScheduledCounterWorkflow:
    """Returns one more than the last completed scheduled run returned (0 for the first)."""

    @workflow.run
    async def run(self, _: str) -> int:
        last = workflow.get_last_completion_result(int) if workflow.has_last_completion_result() else 0
        return (last or 0) + 1


SCHEDULE_WORKFLOWS: list[type] = [
    ScheduledCounterWorkflow,
    ScheduledEchoWorkflow,
    ScheduledRecordWorkflow,
    ScheduledBlockingWorkflow,
    ScheduledFailingWorkflow,
]
SCHEDULE_ACTIVITIES = [append_workflow_id]
