"""Workflows for the `uhrwerk workflow export` test (test_export.py): a workflow with activities,
a timer and a signal, and a reordered variant of it under the same name for the replay check.

They live in their own module, free of pytest imports, so the SDK's workflow sandbox can
re-import it cheaply.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

EXPORT_WORKFLOW = "ExportOrderWorkflow"


@activity.defn
async def export_step(what: str) -> str:
    return f"done: {what}"


@workflow.defn(name=EXPORT_WORKFLOW)
class ExportOrderWorkflow:
    """Reserve (activity), cool down (timer), wait for approval (signal), charge (activity)."""

    def __init__(self) -> None:
        self._approved_by: str | None = None

    @workflow.signal
    def approve(self, by: str) -> None:
        self._approved_by = by

    @workflow.run
    async def run(self, order: str) -> str:
        reserved = await workflow.execute_activity(
            export_step, f"reserve {order}", start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(timedelta(milliseconds=200))
        await workflow.wait_condition(lambda: self._approved_by is not None)
        charged = await workflow.execute_activity(
            export_step, f"charge {order}", start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{reserved}; {charged}; approved by {self._approved_by}"


@workflow.defn(name=EXPORT_WORKFLOW)
class ExportOrderWorkflowReordered:
    """The same workflow type with the timer moved before the first activity: replaying a history
    of ExportOrderWorkflow must fail with a nondeterminism error."""

    def __init__(self) -> None:
        self._approved_by: str | None = None

    @workflow.signal
    def approve(self, by: str) -> None:
        self._approved_by = by

    @workflow.run
    async def run(self, order: str) -> str:
        await workflow.sleep(timedelta(milliseconds=200))
        reserved = await workflow.execute_activity(
            export_step, f"reserve {order}", start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self._approved_by is not None)
        charged = await workflow.execute_activity(
            export_step, f"charge {order}", start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{reserved}; {charged}; approved by {self._approved_by}"
