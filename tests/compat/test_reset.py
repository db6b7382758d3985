"""ResetWorkflowExecution: a new run from a prefix of the history, the base run terminated,
signals after the reset point reapplied, and the SDK's random seed changed by the reset."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyExcludeType, WorkflowExecutionStatus, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from compat_util import event_types, events_of, eventually, result_of

CALLS: dict[str, int] = {}


@activity.defn
async def count_call(key: str) -> int:
    CALLS[key] = CALLS.get(key, 0) + 1
    return CALLS[key]


@workflow.defn(sandboxed=False)
class ResettableWorkflow:
    def __init__(self) -> None:
        self.seed_changes = 0
        self.notes: list[str] = []
        self.go = False
        self.ready = False

    @workflow.run
    async def run(self, key: str) -> dict:
        workflow.register_random_seed_callback(self._seed_changed)
        calls = await workflow.execute_activity(count_call, key, start_to_close_timeout=timedelta(seconds=10))
        self.ready = True
        await workflow.wait_condition(lambda: self.go)
        return {"calls": calls, "seed_changes": self.seed_changes, "notes": self.notes}

    def _seed_changed(self, _seed: int) -> None:
        self.seed_changes += 1

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.query
    def is_ready(self) -> bool:
        return self.ready


def _worker(client: Client, task_queue: str) -> Worker:
    # No cache: every task replays, as in the SDK's own reset test.
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ResettableWorkflow],
        activities=[count_call],
        max_cached_workflows=0,
    )


async def _reset_point(handle: WorkflowHandle) -> int:
    """The WorkflowTaskCompleted after the activity completed."""
    history = await handle.fetch_history()
    return events_of(history, "WORKFLOW_TASK_COMPLETED")[1].event_id


def _request(client: Client, handle: WorkflowHandle, finish: int, **kwargs) -> ResetWorkflowExecutionRequest:
    return ResetWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=handle.id),
        reason="compat reset",
        request_id=str(uuid.uuid4()),
        workflow_task_finish_event_id=finish,
        **kwargs,
    )


async def test_reset_starts_a_new_run_from_the_reset_point(client: Client, task_queue: str, new_id) -> None:
    key = new_id("reset")
    async with _worker(client, task_queue):
        handle = await client.start_workflow(ResettableWorkflow.run, key, id=key, task_queue=task_queue)
        await eventually(lambda: handle.query(ResettableWorkflow.is_ready), bool, what="activity done")
        base_run = (await handle.describe()).run_id
        finish = await _reset_point(handle)
        # A signal after the reset point is carried into the new run.
        await handle.signal(ResettableWorkflow.note, "after the point")
        await eventually(
            handle.fetch_history, lambda h: "WORKFLOW_EXECUTION_SIGNALED" in event_types(h), what="signal recorded"
        )
        request = _request(client, handle, finish)
        first = await client.workflow_service.reset_workflow_execution(request)
        assert first.run_id and first.run_id != base_run
        # As Temporal: the same request again resets the run the first one made.
        response = await client.workflow_service.reset_workflow_execution(request)
        assert response.run_id not in (first.run_id, base_run)
        first_desc = await client.get_workflow_handle(key, run_id=first.run_id).describe()
        assert first_desc.raw_description.workflow_execution_info.status == (
            WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED
        )

        reset = client.get_workflow_handle(key)
        assert (await reset.describe()).run_id == response.run_id
        await reset.signal(ResettableWorkflow.proceed)
        result = await result_of(reset.result())
    # The activity before the reset point is not run again; the reset changes the random seed.
    assert result == {"calls": 1, "seed_changes": 1, "notes": ["after the point"]}

    base = client.get_workflow_handle(key, run_id=base_run)
    base_desc = await base.describe()
    assert base_desc.raw_description.workflow_execution_info.status == (
        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED
    )
    base_history = await base.fetch_history()
    terminated = events_of(base_history, "WORKFLOW_EXECUTION_TERMINATED")[0].workflow_execution_terminated_event_attributes
    assert (terminated.reason, terminated.identity) == ("compat reset", "history-resetter")

    new_history = await client.get_workflow_handle(key, run_id=response.run_id).fetch_history()
    # The prefix is the base history up to the reset point's WorkflowTaskStarted.
    assert event_types(new_history)[: finish - 1] == event_types(base_history)[: finish - 1]
    failed = new_history.events[finish - 1]
    assert event_types([failed]) == ["WORKFLOW_TASK_FAILED"]
    attrs = failed.workflow_task_failed_event_attributes
    assert attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
    assert (attrs.base_run_id, attrs.new_run_id) == (first.run_id, response.run_id)
    assert attrs.failure.message == "compat reset"
    assert attrs.failure.HasField("reset_workflow_failure_info")
    assert attrs.started_event_id == finish - 1
    after = event_types(new_history)[finish:]
    assert after[:2] == ["WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"], after
    assert after[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_reset_can_leave_signals_behind(client: Client, task_queue: str, new_id) -> None:
    key = new_id("reset-nosignals")
    async with _worker(client, task_queue):
        handle = await client.start_workflow(ResettableWorkflow.run, key, id=key, task_queue=task_queue)
        await eventually(lambda: handle.query(ResettableWorkflow.is_ready), bool, what="activity done")
        finish = await _reset_point(handle)
        await handle.signal(ResettableWorkflow.note, "dropped")
        await eventually(
            handle.fetch_history, lambda h: "WORKFLOW_EXECUTION_SIGNALED" in event_types(h), what="signal recorded"
        )
        request = _request(
            client,
            handle,
            finish,
            reset_reapply_exclude_types=[ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL],
        )
        await client.workflow_service.reset_workflow_execution(request)
        reset = client.get_workflow_handle(key)
        await reset.signal(ResettableWorkflow.proceed)
        result = await result_of(reset.result())
    assert result["notes"] == []


async def test_reset_to_a_closed_run_and_bad_points(client: Client, task_queue: str, new_id) -> None:
    key = new_id("reset-closed")
    async with _worker(client, task_queue):
        handle = await client.start_workflow(ResettableWorkflow.run, key, id=key, task_queue=task_queue)
        await eventually(lambda: handle.query(ResettableWorkflow.is_ready), bool, what="activity done")
        await handle.signal(ResettableWorkflow.proceed)
        await result_of(handle.result())
        history = await handle.fetch_history()
        last = history.events[-1].event_id
        for finish in (1, last + 1):
            with pytest.raises(RPCError) as err:
                await client.workflow_service.reset_workflow_execution(_request(client, handle, finish))
            assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
            assert err.value.message == "Workflow task finish ID must be > 1 && <= workflow last event ID."
        # The event after a completed workflow task is not a reset point.
        first_completed = events_of(history, "WORKFLOW_TASK_COMPLETED")[0].event_id
        with pytest.raises(RPCError) as err:
            await client.workflow_service.reset_workflow_execution(_request(client, handle, first_completed + 2))
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert err.value.message.startswith("Can only reset workflow to event ID in range"), err.value.message
        # A completed run can be reset: the new run runs again from the point.
        response = await client.workflow_service.reset_workflow_execution(
            _request(client, handle, await _reset_point(handle))
        )
        reset = client.get_workflow_handle(key)
        assert (await reset.describe()).run_id == response.run_id
        await reset.signal(ResettableWorkflow.proceed)
        result = await result_of(reset.result())
    assert result["calls"] == 1
