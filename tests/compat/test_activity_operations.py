"""Operator actions on pending activities: PauseActivity, UnpauseActivity, ResetActivity and
UpdateActivityOptions, as the `temporal activity` commands and the SDK's tests use them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio import activity, workflow
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.common.v1 import RetryPolicy as RetryPolicyProto
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflowservice.v1 import (
    PauseActivityRequest,
    ResetActivityRequest,
    UnpauseActivityRequest,
    UpdateActivityOptionsRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from compat_util import event_types, eventually, result_of

# Per-test events, keyed by activity id, that let an activity go on.
RELEASE: dict[str, asyncio.Event] = {}


@activity.defn
async def heartbeat_until_told() -> str:
    """Heartbeats until the server's answer cancels it; reports why (paused, reset)."""
    try:
        while True:
            activity.heartbeat("beat")
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        details = activity.cancellation_details()
        assert details is not None
        return f"paused={details.paused} reset={details.reset}"


@activity.defn
async def fail_when_paused_then_succeed() -> str:
    """Attempt 1 heartbeats until the pause cancels it and lets the cancel fail the attempt;
    later attempts report their number."""
    info = activity.info()
    if info.attempt == 1:
        while True:
            activity.heartbeat("first")
            await asyncio.sleep(0.1)
    return f"attempt {info.attempt}"


@activity.defn
async def wait_for_release() -> str:
    await RELEASE[activity.info().activity_id].wait()
    return f"attempt {activity.info().attempt}"


@workflow.defn(sandboxed=False)
class OneActivityWorkflow:
    @workflow.run
    async def run(self, name: str, max_attempts: int) -> str:
        return await workflow.execute_activity(
            name,
            activity_id="op-target",
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=max_attempts),
            result_type=str,
        )


def _worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[OneActivityWorkflow],
        activities=[heartbeat_until_told, fail_when_paused_then_succeed, wait_for_release],
    )


def _execution(handle: WorkflowHandle) -> WorkflowExecution:
    return WorkflowExecution(workflow_id=handle.id, run_id=handle.result_run_id or "")


async def _pending(handle: WorkflowHandle):
    desc = await handle.describe()
    return list(desc.raw_description.pending_activities)


def _target(pending):
    return next((p for p in pending if p.activity_id == "op-target"), None)


async def _started(handle: WorkflowHandle):
    pending = await eventually(
        lambda: _pending(handle),
        lambda p: _target(p) is not None
        and _target(p).state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
        what="activity started",
    )
    return _target(pending)


async def test_pause_tells_the_running_attempt_through_its_heartbeat(
    client: Client, task_queue: str, new_id
) -> None:
    async with _worker(client, task_queue):
        handle = await client.start_workflow(
            OneActivityWorkflow.run, args=["heartbeat_until_told", 1], id=new_id("pause"), task_queue=task_queue
        )
        await _started(handle)
        await client.workflow_service.pause_activity(
            PauseActivityRequest(
                namespace=client.namespace,
                execution=_execution(handle),
                id="op-target",
                identity="operator-1",
                reason="looking into it",
                request_id="pause-1",
            )
        )
        # The same request again is fine; another one is refused while paused.
        await client.workflow_service.pause_activity(
            PauseActivityRequest(
                namespace=client.namespace, execution=_execution(handle), id="op-target", request_id="pause-1"
            )
        )
        pending = _target(await _pending(handle))
        if pending is not None:
            with pytest.raises(RPCError) as err:
                await client.workflow_service.pause_activity(
                    PauseActivityRequest(
                        namespace=client.namespace, execution=_execution(handle), id="op-target", request_id="other"
                    )
                )
            assert err.value.status == RPCStatusCode.FAILED_PRECONDITION
            assert err.value.message == "activity is already paused"
            if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSE_REQUESTED:
                assert pending.paused
                assert pending.pause_info.manual.identity == "operator-1"
                assert pending.pause_info.manual.reason == "looking into it"
                assert pending.pause_info.pause_time.seconds > 0
        result = await result_of(handle.result())
    assert result == "paused=True reset=False"


async def test_a_paused_attempt_that_fails_waits_for_the_unpause(client: Client, task_queue: str, new_id) -> None:
    async with _worker(client, task_queue):
        # One attempt only: while paused, a failure counts the attempt but does not end the activity.
        handle = await client.start_workflow(
            OneActivityWorkflow.run,
            args=["fail_when_paused_then_succeed", 1],
            id=new_id("pause-fail"),
            task_queue=task_queue,
        )
        await _started(handle)
        await client.workflow_service.pause_activity(
            PauseActivityRequest(namespace=client.namespace, execution=_execution(handle), id="op-target")
        )
        pending = await eventually(
            lambda: _pending(handle),
            lambda p: _target(p) is not None
            and _target(p).state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED,
            what="failed attempt parked as paused",
        )
        parked = _target(pending)
        assert parked.paused and parked.attempt == 2, parked
        assert parked.last_failure.message != ""
        assert [p.data for p in parked.heartbeat_details.payloads] == [b'"first"']
        # Nothing runs while paused: the activity stays parked at attempt 2.
        assert _target(await _pending(handle)).attempt == 2
        await client.workflow_service.unpause_activity(
            UnpauseActivityRequest(namespace=client.namespace, execution=_execution(handle), id="op-target")
        )
        result = await result_of(handle.result())
    assert result == "attempt 2"
    history = await handle.fetch_history()
    assert event_types(history)[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_reset_tells_the_running_attempt_and_restarts_the_count(
    client: Client, task_queue: str, new_id
) -> None:
    async with _worker(client, task_queue):
        handle = await client.start_workflow(
            OneActivityWorkflow.run, args=["heartbeat_until_told", 1], id=new_id("reset"), task_queue=task_queue
        )
        await _started(handle)
        await client.workflow_service.reset_activity(
            ResetActivityRequest(namespace=client.namespace, execution=_execution(handle), id="op-target")
        )
        result = await result_of(handle.result())
    assert result == "paused=False reset=True"


async def test_reset_of_a_paused_activity_unpauses_it_at_attempt_one(client: Client, task_queue: str, new_id) -> None:
    async with _worker(client, task_queue):
        handle = await client.start_workflow(
            OneActivityWorkflow.run,
            args=["fail_when_paused_then_succeed", 5],
            id=new_id("reset-paused"),
            task_queue=task_queue,
        )
        await _started(handle)
        await client.workflow_service.pause_activity(
            PauseActivityRequest(namespace=client.namespace, execution=_execution(handle), id="op-target")
        )
        await eventually(
            lambda: _pending(handle),
            lambda p: _target(p) is not None and _target(p).attempt == 2 and _target(p).paused,
            what="parked at attempt 2",
        )
        # keep_paused leaves it parked, with its count back at 1.
        await client.workflow_service.reset_activity(
            ResetActivityRequest(
                namespace=client.namespace, execution=_execution(handle), id="op-target", keep_paused=True
            )
        )
        parked = _target(await _pending(handle))
        assert parked.paused and parked.attempt == 1, parked
        assert parked.state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED
        await client.workflow_service.unpause_activity(
            UnpauseActivityRequest(
                namespace=client.namespace, execution=_execution(handle), id="op-target", jitter=Duration(nanos=50_000_000)
            )
        )
        assert (await _started(handle)).attempt == 1
        # A reset of the running attempt: its heartbeat answer cancels it, the cancel fails the
        # attempt, and the retry (attempt 2) completes.
        await client.workflow_service.reset_activity(
            ResetActivityRequest(namespace=client.namespace, execution=_execution(handle), id="op-target")
        )
        result = await result_of(handle.result())
    assert result == "attempt 2"


async def test_update_options_changes_and_restores_a_pending_activity(
    client: Client, task_queue: str, new_id
) -> None:
    key = new_id("update-options")
    RELEASE["op-target"] = asyncio.Event()
    async with _worker(client, task_queue):
        handle = await client.start_workflow(
            OneActivityWorkflow.run, args=["wait_for_release", 3], id=key, task_queue=task_queue
        )
        before = await _started(handle)
        assert before.activity_options.start_to_close_timeout.seconds == 30
        assert before.activity_options.retry_policy.maximum_attempts == 3
        response = await client.workflow_service.update_activity_options(
            UpdateActivityOptionsRequest(
                namespace=client.namespace,
                execution=_execution(handle),
                id="op-target",
                activity_options=ActivityOptions(
                    start_to_close_timeout=Duration(seconds=20),
                    retry_policy=RetryPolicyProto(maximum_attempts=7),
                ),
                update_mask=FieldMask(paths=["start_to_close_timeout", "retry_policy.maximum_attempts"]),
            )
        )
        assert response.activity_options.start_to_close_timeout.seconds == 20
        assert response.activity_options.retry_policy.maximum_attempts == 7
        # Fields the mask does not name keep their values.
        assert response.activity_options.heartbeat_timeout.seconds == 5
        assert response.activity_options.task_queue.name == task_queue
        updated = _target(await _pending(handle))
        assert updated.activity_options.start_to_close_timeout.seconds == 20
        assert updated.maximum_attempts == 7
        restored = await client.workflow_service.update_activity_options(
            UpdateActivityOptionsRequest(
                namespace=client.namespace, execution=_execution(handle), id="op-target", restore_original=True
            )
        )
        assert restored.activity_options.start_to_close_timeout.seconds == 30
        assert restored.activity_options.retry_policy.maximum_attempts == 3
        RELEASE["op-target"].set()
        assert await result_of(handle.result()) == "attempt 1"


async def test_operator_actions_refuse_what_they_cannot_find(client: Client, task_queue: str, new_id) -> None:
    RELEASE["op-target"] = asyncio.Event()
    async with _worker(client, task_queue):
        handle = await client.start_workflow(
            OneActivityWorkflow.run, args=["wait_for_release", 1], id=new_id("op-errors"), task_queue=task_queue
        )
        await _started(handle)
        with pytest.raises(RPCError) as err:
            await client.workflow_service.pause_activity(
                PauseActivityRequest(namespace=client.namespace, execution=_execution(handle), id="no-such")
            )
        assert err.value.status == RPCStatusCode.NOT_FOUND
        assert "Can't find pending activity" in err.value.message
        with pytest.raises(RPCError) as err:
            await client.workflow_service.pause_activity(
                PauseActivityRequest(namespace=client.namespace, execution=_execution(handle))
            )
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        with pytest.raises(RPCError) as err:
            await client.workflow_service.update_activity_options(
                UpdateActivityOptionsRequest(
                    namespace=client.namespace,
                    execution=_execution(handle),
                    id="op-target",
                    activity_options=ActivityOptions(),
                )
            )
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        RELEASE["op-target"].set()
        await result_of(handle.result())
        with pytest.raises(RPCError) as err:
            await client.workflow_service.unpause_activity(
                UnpauseActivityRequest(namespace=client.namespace, execution=_execution(handle), id="op-target")
            )
        assert err.value.status == RPCStatusCode.NOT_FOUND
