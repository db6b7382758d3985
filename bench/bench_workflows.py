"""The benchmark's workflow: one activity, as small as possible, so the server dominates the cost."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def bench_activity(n: int) -> int:
    return n + 1


@workflow.defn
class BenchWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(bench_activity, n, start_to_close_timeout=timedelta(seconds=30))
