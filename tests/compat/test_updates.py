"""Updates: accepted and completed updates in the history, validator rejections that leave no
trace, deduplication by update id, update-with-start."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from compat_features import FEATURE_ACTIVITIES, FEATURE_WORKFLOWS, CartWorkflow, UnfinishedUpdateWorkflow
from compat_util import event_types, result_of


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS, activities=FEATURE_ACTIVITIES)


async def test_update_validator_rejects_and_updates_complete(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(CartWorkflow.run, id=new_id("cart"), task_queue=task_queue)
        assert await asyncio.wait_for(handle.execute_update(CartWorkflow.add_item, "apple"), 20) == 1
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await asyncio.wait_for(handle.execute_update(CartWorkflow.add_item, ""), 20)
        assert "rejected by the validator" in str(rejected.value.cause)
        assert await asyncio.wait_for(handle.execute_update(CartWorkflow.add_item, "pear"), 20) == 2
        assert await asyncio.wait_for(handle.execute_update(CartWorkflow.checkout), 20) == 2
        assert await result_of(handle.result()) == ["apple", "pear"]
    types = event_types(await handle.fetch_history())
    assert types.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 3, types
    assert types.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") == 3, types
    assert "WORKFLOW_EXECUTION_UPDATE_REJECTED" not in types


async def test_update_is_deduplicated_by_id(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(CartWorkflow.run, id=new_id("cart"), task_queue=task_queue)
        first = await asyncio.wait_for(handle.execute_update(CartWorkflow.add_item, "apple", id="add-1"), 20)
        again = await asyncio.wait_for(handle.execute_update(CartWorkflow.add_item, "apple", id="add-1"), 20)
        assert first == again == 1, "the same update id runs once"
        await asyncio.wait_for(handle.execute_update(CartWorkflow.checkout), 20)
        assert await result_of(handle.result()) == ["apple"]


async def test_update_with_start(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("cart-uws")
    async with worker(client, task_queue):
        for n, item in enumerate(["apple", "pear"], start=1):
            start = WithStartWorkflowOperation(
                CartWorkflow.run, id=wid, task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
            )
            count = await asyncio.wait_for(
                client.execute_update_with_start_workflow(CartWorkflow.add_item, item, start_workflow_operation=start), 20
            )
            assert count == n, "the second call updates the run the first one started"
        handle = client.get_workflow_handle(wid)
        await asyncio.wait_for(handle.execute_update(CartWorkflow.checkout), 20)
        assert await result_of(handle.result()) == ["apple", "pear"]


async def test_update_with_start_attaches_to_an_update_with_its_id(client: Client, task_queue: str, new_id) -> None:
    """As Temporal: update-with-start first looks for an update with its id in the workflow's
    latest run, completed or in flight, and answers from it before the start's conflict policy
    (FAIL here, which would otherwise refuse the running workflow) or reuse policy applies."""
    wid = new_id("cart-attach")
    async with worker(client, task_queue):

        def start(policy: WorkflowIDConflictPolicy) -> WithStartWorkflowOperation:
            return WithStartWorkflowOperation(CartWorkflow.run, id=wid, task_queue=task_queue, id_conflict_policy=policy)

        first = start(WorkflowIDConflictPolicy.FAIL)
        count = await asyncio.wait_for(
            client.execute_update_with_start_workflow(
                CartWorkflow.add_item, "apple", id="add-apple", start_workflow_operation=first
            ),
            20,
        )
        assert count == 1
        run_id = (await first.workflow_handle()).first_execution_run_id
        again = start(WorkflowIDConflictPolicy.FAIL)
        count = await asyncio.wait_for(
            client.execute_update_with_start_workflow(
                CartWorkflow.add_item, "apple", id="add-apple", start_workflow_operation=again
            ),
            20,
        )
        assert count == 1, "the completed update's outcome, not a second add"
        assert (await again.workflow_handle()).first_execution_run_id == run_id
        handle = client.get_workflow_handle(wid)
        assert await asyncio.wait_for(handle.execute_update(CartWorkflow.checkout), 20) == 1
        assert await result_of(handle.result()) == ["apple"]
        # The run is closed now: the completed update still answers, from the closed run.
        closed = start(WorkflowIDConflictPolicy.FAIL)
        count = await asyncio.wait_for(
            client.execute_update_with_start_workflow(
                CartWorkflow.add_item, "apple", id="add-apple", start_workflow_operation=closed
            ),
            20,
        )
        assert count == 1
    types = event_types(await handle.fetch_history())
    assert types.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 2, types


async def test_accepted_update_fails_when_the_run_completes_first(client: Client, task_queue: str, new_id) -> None:
    """As Temporal: an accepted update still running when its workflow completes gets a failure
    outcome (`AcceptedUpdateCompletedWorkflow`, non-retryable), not NOT_FOUND."""
    async with worker(client, task_queue):
        handle = await client.start_workflow(UnfinishedUpdateWorkflow.run, id=new_id("unfinished"), task_queue=task_queue)
        update = await asyncio.wait_for(
            handle.start_update(UnfinishedUpdateWorkflow.hang, wait_for_stage=WorkflowUpdateStage.ACCEPTED), 20
        )
        await handle.signal(UnfinishedUpdateWorkflow.finish)
        assert await result_of(handle.result()) == "done"
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await asyncio.wait_for(update.result(), 20)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == "AcceptedUpdateCompletedWorkflow"
    assert cause.non_retryable
    assert cause.message == "Workflow Update failed because the Workflow completed before the Update completed."
