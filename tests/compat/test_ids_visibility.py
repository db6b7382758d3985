"""Workflow id reuse and conflict policies; describe, list and count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

import compat_workflows as cw
from compat_util import eventually, make_worker, result_of


async def test_duplicate_workflow_id(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("dup")
    # No worker polls the queue yet, so the first run stays RUNNING.
    first = await client.start_workflow(cw.HelloWorkflow.run, "one", id=wid, task_queue=task_queue)
    run1 = first.result_run_id
    assert run1

    with pytest.raises(WorkflowAlreadyStartedError) as info:
        await client.start_workflow(cw.HelloWorkflow.run, "two", id=wid, task_queue=task_queue)
    assert info.value.workflow_id == wid
    assert info.value.run_id == run1

    # USE_EXISTING returns the running run instead of failing.
    existing = await client.start_workflow(
        cw.HelloWorkflow.run,
        "three",
        id=wid,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    assert existing.result_run_id == run1

    async with make_worker(client, task_queue):
        # The first run's input wins, the USE_EXISTING start did not replace it.
        assert await result_of(first.result()) == "Hello, one!"

        with pytest.raises(WorkflowAlreadyStartedError) as info:
            await client.start_workflow(
                cw.HelloWorkflow.run,
                "four",
                id=wid,
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        assert info.value.run_id == run1

        again = await client.start_workflow(
            cw.HelloWorkflow.run,
            "five",
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        assert again.result_run_id and again.result_run_id != run1
        assert await result_of(again.result()) == "Hello, five!"

    # The handle without run id follows the latest run.
    latest = await client.get_workflow_handle(wid).describe()
    assert latest.run_id == again.result_run_id
    old = await client.get_workflow_handle(wid, run_id=run1).describe()
    assert old.status == WorkflowExecutionStatus.COMPLETED


async def test_describe_list_count(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("vis")
    handle = await client.start_workflow(cw.HelloWorkflow.run, "vis", id=wid, task_queue=task_queue)
    desc = await handle.describe()
    assert desc.id == wid
    assert desc.run_id == handle.result_run_id
    assert desc.workflow_type == "HelloWorkflow"
    assert desc.task_queue == task_queue
    assert desc.status == WorkflowExecutionStatus.RUNNING
    assert desc.close_time is None

    running = await eventually(
        lambda: _list(client, f"WorkflowId = '{wid}' AND ExecutionStatus = 'Running'"),
        lambda r: len(r) == 1,
        what="running workflow visible",
    )
    assert running[0].status == WorkflowExecutionStatus.RUNNING

    others = [new_id("vis") for _ in range(2)]
    async with make_worker(client, task_queue):
        assert await result_of(handle.result()) == "Hello, vis!"
        for other in others:
            await result_of(client.execute_workflow(cw.HelloWorkflow.run, "x", id=other, task_queue=task_queue))

    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED
    assert desc.close_time is not None and desc.close_time >= desc.start_time
    assert desc.history_length == 11

    found = await eventually(
        lambda: _list(client, f"WorkflowId = '{wid}'"),
        lambda r: len(r) == 1 and r[0].status == WorkflowExecutionStatus.COMPLETED,
        what="completed workflow visible",
    )
    assert found[0].id == wid
    assert found[0].run_id == handle.result_run_id
    assert found[0].workflow_type == "HelloWorkflow"
    assert found[0].task_queue == task_queue

    by_type = await _list(client, f"WorkflowType = 'HelloWorkflow' AND WorkflowId = '{wid}'")
    assert [w.id for w in by_type] == [wid]
    assert await _list(client, f"WorkflowType = 'OrderWorkflow' AND WorkflowId = '{wid}'") == []
    completed = await _list(client, f"ExecutionStatus = 'Completed' AND WorkflowId = '{wid}'")
    assert [w.id for w in completed] == [wid]
    assert await _list(client, f"ExecutionStatus = 'Running' AND WorkflowId = '{wid}'") == []

    all_three = [wid, *others]
    query = " OR ".join(f"WorkflowId = '{w}'" for w in all_three)
    listed = await eventually(lambda: _list(client, query), lambda r: len(r) == 3, what="three workflows visible")
    assert sorted(w.id for w in listed) == sorted(all_three)
    count = await eventually(
        lambda: client.count_workflows(f"TaskQueue = '{task_queue}'"),
        lambda c: c.count == 3,
        what="count by task queue",
    )
    assert count.count == 3
    count = await client.count_workflows(f"ExecutionStatus = 'Completed' AND ({query})")
    assert count.count == 3
    assert (await client.count_workflows(f"ExecutionStatus = 'Failed' AND ({query})")).count == 0


async def _list(client: Client, query: str) -> list:
    return [w async for w in client.list_workflows(query)]


async def test_list_open_and_closed_workflow_executions(client: Client, task_queue: str, new_id) -> None:
    """The older filter-based list APIs: open runs by workflow id, closed ones by status and type."""
    from temporalio.api.enums.v1 import WorkflowExecutionStatus as Status
    from temporalio.api.filter.v1 import StartTimeFilter, StatusFilter, WorkflowExecutionFilter, WorkflowTypeFilter
    from temporalio.api.workflowservice.v1 import (
        ListClosedWorkflowExecutionsRequest,
        ListOpenWorkflowExecutionsRequest,
    )

    wid = new_id("legacy-list")
    handle = await client.start_workflow(cw.HelloWorkflow.run, "x", id=wid, task_queue=task_queue)
    service = client.workflow_service

    async def open_ids() -> list[str]:
        resp = await service.list_open_workflow_executions(
            ListOpenWorkflowExecutionsRequest(
                namespace=client.namespace,
                maximum_page_size=10,
                execution_filter=WorkflowExecutionFilter(workflow_id=wid),
            )
        )
        return [e.execution.workflow_id for e in resp.executions]

    async def closed(**filters) -> list[tuple[str, int]]:
        resp = await service.list_closed_workflow_executions(
            ListClosedWorkflowExecutionsRequest(namespace=client.namespace, maximum_page_size=100, **filters)
        )
        return [(e.execution.workflow_id, e.status) for e in resp.executions]

    assert await eventually(open_ids, lambda ids: ids == [wid], what="listed as open") == [wid]
    await handle.terminate("done with it")
    await eventually(open_ids, lambda ids: ids == [], what="no longer open")
    terminated = await eventually(
        lambda: closed(status_filter=StatusFilter(status=Status.WORKFLOW_EXECUTION_STATUS_TERMINATED)),
        lambda rows: (wid, Status.WORKFLOW_EXECUTION_STATUS_TERMINATED) in rows,
        what="listed as terminated",
    )
    assert all(status == Status.WORKFLOW_EXECUTION_STATUS_TERMINATED for _, status in terminated)
    by_id = await closed(execution_filter=WorkflowExecutionFilter(workflow_id=wid))
    assert by_id == [(wid, Status.WORKFLOW_EXECUTION_STATUS_TERMINATED)]
    by_type = await closed(type_filter=WorkflowTypeFilter(name="HelloWorkflow"))
    assert (wid, Status.WORKFLOW_EXECUTION_STATUS_TERMINATED) in by_type
    # A start time window that ends before the run started finds nothing.
    started = (await handle.describe()).start_time
    window = StartTimeFilter()
    window.latest_time.FromDatetime(started - timedelta(hours=1))
    assert await closed(execution_filter=WorkflowExecutionFilter(workflow_id=wid), start_time_filter=window) == []
