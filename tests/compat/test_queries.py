"""Queries (chapter 13.3: read-only query handlers): legacy query tasks and queries attached to
workflow tasks, failed queries, queries on closed workflows, reject conditions."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.common import QueryRejectCondition
from temporalio.worker import Worker

from compat_features import FEATURE_ACTIVITIES, FEATURE_WORKFLOWS, SessionWorkflow
from compat_util import eventually, result_of


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS, activities=FEATURE_ACTIVITIES)


async def test_query_reads_while_signals_mutate(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(SessionWorkflow.run, id=new_id("query"), task_queue=task_queue)
        assert await asyncio.wait_for(handle.query(SessionWorkflow.total), 20) == 0
        seen = []
        for value in range(1, 11):
            # Signals and queries interleave: some queries find a workflow task in flight
            # (attached to the next task), others an idle workflow (legacy query task).
            signal = asyncio.create_task(handle.signal(SessionWorkflow.add, value))
            seen.append(await asyncio.wait_for(handle.query(SessionWorkflow.total), 20))
            await signal
        final = await asyncio.wait_for(handle.query(SessionWorkflow.total), 20)
        assert final == sum(range(1, 11))
        assert seen == sorted(seen), "a query never sees state going backwards"
        assert all(0 <= s <= final for s in seen)
        await handle.signal(SessionWorkflow.finish)
        state = await result_of(handle.result())
        assert state.total == final
        # The workflow is closed; the query still goes to a worker, with the full history.
        assert await asyncio.wait_for(handle.query(SessionWorkflow.total), 20) == final
        with pytest.raises(WorkflowQueryRejectedError):
            await handle.query(SessionWorkflow.total, reject_condition=QueryRejectCondition.NOT_OPEN)


async def test_failing_query_is_reported(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(SessionWorkflow.run, id=new_id("query-fail"), task_queue=task_queue)
        with pytest.raises(WorkflowQueryFailedError) as failure:
            await asyncio.wait_for(handle.query(SessionWorkflow.broken), 20)
        assert "fails on purpose" in str(failure.value)
        await handle.signal(SessionWorkflow.finish)
        await result_of(handle.result())


async def test_query_on_a_run_that_continued_as_new(client: Client, task_queue: str, new_id) -> None:
    """As Temporal: a query naming an earlier run of the workflow id (closed by continue-as-new)
    is answered from that run's history; without a run id it goes to the latest run."""
    from temporalio.worker import Worker as SdkWorker

    from compat_features import FEATURE_WORKFLOWS, QueryableCountdownWorkflow

    async with SdkWorker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS):
        handle = await client.start_workflow(QueryableCountdownWorkflow.run, 1, id=new_id("q-can"), task_queue=task_queue)
        first_run = handle.result_run_id
        latest = client.get_workflow_handle(handle.id)
        await eventually(lambda: latest.describe(), lambda d: d.run_id != first_run, what="the run continued as new")
        assert await eventually(lambda: latest.query(QueryableCountdownWorkflow.current), lambda n: n == 0) == 0
        old = client.get_workflow_handle(handle.id, run_id=first_run)
        assert await old.query(QueryableCountdownWorkflow.current) == 1
        await latest.terminate()
