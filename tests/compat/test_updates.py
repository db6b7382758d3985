"""Updates: accepted and completed updates in the history, validator rejections that leave no
trace, deduplication by update id, update-with-start, and the answers of updates a run never
accepted before it continued as new."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.command.v1 import Command, ContinueAsNewWorkflowExecutionCommandAttributes
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType, ResourceExhaustedCause, ResourceExhaustedScope
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage as Stage
from temporalio.api.errordetails.v1 import ResourceExhaustedFailure
from temporalio.api.update.v1 import Input, Meta, UpdateRef, WaitPolicy
from temporalio.api.update.v1 import Request as UpdateRequest
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest, UpdateWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from compat_dispatch import RAW_WORKFLOW_TYPE, RawWorker
from compat_features import FEATURE_ACTIVITIES, FEATURE_WORKFLOWS, CartWorkflow, UnfinishedUpdateWorkflow
from compat_util import event_types, eventually, result_of


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


def update_request(client: Client, workflow_id: str, run_id: str, stage: Stage) -> UpdateWorkflowExecutionRequest:
    return UpdateWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
        wait_policy=WaitPolicy(lifecycle_stage=stage),
        request=UpdateRequest(meta=Meta(update_id="u1", identity="test"), input=Input(name="add")),
    )


async def test_waiting_only_for_admission_is_refused(client: Client, task_queue: str, new_id) -> None:
    """As Temporal: an update call may wait for ACCEPTED or COMPLETED, not for ADMITTED."""
    raw = RawWorker(client, task_queue)
    wid = new_id("admitted")
    started = await raw.start(wid)
    with pytest.raises(RPCError) as refused:
        await client.workflow_service.update_workflow_execution(
            update_request(client, wid, started.run_id, Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED),
            timeout=timedelta(seconds=10),
        )
    assert refused.value.status == RPCStatusCode.PERMISSION_DENIED
    assert refused.value.message == (
        "UpdateWorkflowExecution issued asynchronously and waiting on update admitted is not supported."
    )
    assert [d.type_url.rsplit(".", 1)[-1] for d in refused.value.grpc_status.details] == ["PermissionDeniedFailure"]


async def test_an_update_the_run_never_accepted_before_it_continued_as_new(
    client: Client, task_queue: str, new_id
) -> None:
    """As Temporal: an update admitted while a workflow task ran that continued as new (the
    worker never saw it) ends for its caller with RESOURCE_EXHAUSTED (BUSY_WORKFLOW) "workflow
    is closing", which clients retry; the same answer comes to the update sent again to that run
    and to a poll of it there. Nothing of it is in the closed run's history."""
    raw = RawWorker(client, task_queue)
    wid = new_id("closing")
    started = await raw.start(wid)
    task = await raw.poll_task()
    accepted = Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED
    waiting = asyncio.create_task(
        client.workflow_service.update_workflow_execution(
            update_request(client, wid, started.run_id, accepted), timeout=timedelta(seconds=20)
        )
    )
    update_ref = UpdateRef(workflow_execution=WorkflowExecution(workflow_id=wid, run_id=started.run_id), update_id="u1")

    async def stage_reached() -> int:
        # Without a wait policy a poll answers at once with the stage reached, or NOT_FOUND.
        try:
            polled = await client.workflow_service.poll_workflow_execution_update(
                PollWorkflowExecutionUpdateRequest(namespace=client.namespace, update_ref=update_ref),
                timeout=timedelta(seconds=10),
            )
        except RPCError as e:
            assert e.status == RPCStatusCode.NOT_FOUND, (e.status, e.message)
            return 0
        return polled.stage

    # Admitted while the task runs (the worker has not seen it).
    await eventually(
        stage_reached, lambda s: s == Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED, what="admitted"
    )
    continue_as_new = Command(
        command_type=CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
        continue_as_new_workflow_execution_command_attributes=ContinueAsNewWorkflowExecutionCommandAttributes(
            workflow_type=WorkflowType(name=RAW_WORKFLOW_TYPE), task_queue=raw.normal()
        ),
    )
    await raw.complete(task, [continue_as_new])

    def closing(e: BaseException) -> None:
        assert isinstance(e, RPCError), e
        assert e.status == RPCStatusCode.RESOURCE_EXHAUSTED, (e.status, e.message)
        assert e.message == "workflow operation can not be applied because workflow is closing"
        [detail] = e.grpc_status.details
        failure = ResourceExhaustedFailure()
        assert detail.Unpack(failure)
        assert failure.cause == ResourceExhaustedCause.RESOURCE_EXHAUSTED_CAUSE_BUSY_WORKFLOW
        assert failure.scope == ResourceExhaustedScope.RESOURCE_EXHAUSTED_SCOPE_NAMESPACE

    with pytest.raises(RPCError) as first:
        await waiting
    closing(first.value)
    with pytest.raises(RPCError) as again:
        await client.workflow_service.update_workflow_execution(
            update_request(client, wid, started.run_id, accepted), timeout=timedelta(seconds=10)
        )
    closing(again.value)
    with pytest.raises(RPCError) as polled:
        await client.workflow_service.poll_workflow_execution_update(
            PollWorkflowExecutionUpdateRequest(
                namespace=client.namespace,
                update_ref=update_ref,
                wait_policy=WaitPolicy(lifecycle_stage=accepted),
            ),
            timeout=timedelta(seconds=10),
        )
    closing(polled.value)
    first_run = await client.get_workflow_handle(wid, run_id=started.run_id).fetch_history()
    assert event_types(first_run)[-1] == "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    assert not [t for t in event_types(first_run) if "UPDATE" in t]
