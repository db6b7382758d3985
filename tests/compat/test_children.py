"""Child workflows and external signals (phase 3): fan-out, child failure, id conflicts,
parent close policies, and signals from one workflow to another."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import (
    ContinueAsNewInitiator,
    ParentClosePolicy,
    SignalExternalWorkflowExecutionFailedCause,
    StartChildWorkflowExecutionFailedCause,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.worker import Worker

from compat_more import (
    CHILD_WORKFLOWS,
    AbandonInput,
    DuplicateChildParentWorkflow,
    FanOutParentWorkflow,
    LeaveChildBehindWorkflow,
    ParentOfFailingChildWorkflow,
    SignalReceiverWorkflow,
    SignalSenderWorkflow,
    WaitForReleaseWorkflow,
)
from compat_util import event_types, events_of, eventually, result_of


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=CHILD_WORKFLOWS)


async def _status(client: Client, wid: str, run_id: str | None = None) -> WorkflowExecutionStatus | None:
    return (await client.get_workflow_handle(wid, run_id=run_id).describe()).status


async def test_child_fan_out_sums_results_and_links_events(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("parent")
    async with worker(client, task_queue):
        handle = await client.start_workflow(FanOutParentWorkflow.run, 5, id=wid, task_queue=task_queue)
        assert await result_of(handle.result()) == sum(2 * i for i in range(5))
    history = await handle.fetch_history()
    types = event_types(history)
    assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    initiated = events_of(history, "START_CHILD_WORKFLOW_EXECUTION_INITIATED")
    started = events_of(history, "CHILD_WORKFLOW_EXECUTION_STARTED")
    completed = events_of(history, "CHILD_WORKFLOW_EXECUTION_COMPLETED")
    assert (len(initiated), len(started), len(completed)) == (5, 5, 5), types
    child_ids = {f"{wid}-child-{i}" for i in range(5)}

    by_id = {}
    for ev in initiated:
        a = ev.start_child_workflow_execution_initiated_event_attributes
        assert a.workflow_type.name == "DoubleChildWorkflow"
        assert a.task_queue.name == task_queue, "the child inherits the parent's task queue"
        assert a.workflow_task_completed_event_id < ev.event_id
        by_id[a.workflow_id] = ev.event_id
    assert set(by_id) == child_ids

    started_ids = {}
    for ev in started:
        a = ev.child_workflow_execution_started_event_attributes
        assert a.initiated_event_id == by_id[a.workflow_execution.workflow_id]
        assert a.initiated_event_id < ev.event_id
        assert a.workflow_type.name == "DoubleChildWorkflow"
        assert a.workflow_execution.run_id
        started_ids[a.workflow_execution.workflow_id] = (ev.event_id, a.workflow_execution.run_id)

    for ev in completed:
        a = ev.child_workflow_execution_completed_event_attributes
        cid = a.workflow_execution.workflow_id
        assert a.initiated_event_id == by_id[cid]
        assert (a.started_event_id, a.workflow_execution.run_id) == started_ids[cid]
        assert a.started_event_id < ev.event_id
        assert len(a.result.payloads) == 1

    # Each child knows its parent (and root) and the parent's initiated event.
    for cid in sorted(child_ids):
        child = client.get_workflow_handle(cid, run_id=started_ids[cid][1])
        child_history = await child.fetch_history()
        assert event_types(child_history)[-1] == "WORKFLOW_EXECUTION_COMPLETED"
        s = child_history.events[0].workflow_execution_started_event_attributes
        assert s.parent_workflow_execution.workflow_id == wid
        assert s.parent_workflow_execution.run_id == handle.result_run_id
        assert s.parent_initiated_event_id == by_id[cid]
        assert s.parent_workflow_namespace == client.namespace
        assert s.root_workflow_execution.workflow_id == wid
        assert s.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_UNSPECIFIED
        desc = await child.describe()
        assert desc.parent_id == wid
        assert desc.parent_run_id == handle.result_run_id


async def test_child_failure_surfaces_as_child_workflow_error(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("parent")
    async with worker(client, task_queue):
        handle = await client.start_workflow(ParentOfFailingChildWorkflow.run, id=wid, task_queue=task_queue)
        assert await result_of(handle.result()) == "ChildWorkflowError: ChildBroke: child says no"
    history = await handle.fetch_history()
    failed = events_of(history, "CHILD_WORKFLOW_EXECUTION_FAILED")
    assert len(failed) == 1, event_types(history)
    a = failed[0].child_workflow_execution_failed_event_attributes
    assert a.workflow_execution.workflow_id == f"{wid}-child"
    assert a.failure.message == "child says no"
    assert a.failure.application_failure_info.type == "ChildBroke"
    assert a.initiated_event_id == events_of(history, "START_CHILD_WORKFLOW_EXECUTION_INITIATED")[0].event_id
    assert a.started_event_id == events_of(history, "CHILD_WORKFLOW_EXECUTION_STARTED")[0].event_id
    child = await client.get_workflow_handle(f"{wid}-child").describe()
    assert child.status == WorkflowExecutionStatus.FAILED


async def test_child_id_already_running_fails_the_start(client: Client, task_queue: str, new_id) -> None:
    taken = new_id("taken")
    blocker = await client.start_workflow(WaitForReleaseWorkflow.run, id=taken, task_queue=task_queue)
    try:
        async with worker(client, task_queue):
            handle = await client.start_workflow(
                DuplicateChildParentWorkflow.run, taken, id=new_id("parent"), task_queue=task_queue
            )
            assert await result_of(handle.result()) == f"WorkflowAlreadyStartedError: {taken}"
        history = await handle.fetch_history()
        types = event_types(history)
        assert "CHILD_WORKFLOW_EXECUTION_STARTED" not in types, types
        failed = events_of(history, "START_CHILD_WORKFLOW_EXECUTION_FAILED")
        assert len(failed) == 1, types
        a = failed[0].start_child_workflow_execution_failed_event_attributes
        assert a.cause == StartChildWorkflowExecutionFailedCause.Value(
            "START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS"
        )
        assert a.workflow_id == taken
        assert a.workflow_type.name == "WaitForReleaseWorkflow"
        assert a.initiated_event_id == events_of(history, "START_CHILD_WORKFLOW_EXECUTION_INITIATED")[0].event_id
        # The running workflow was not touched.
        assert await _status(client, taken) == WorkflowExecutionStatus.RUNNING
        assert (await blocker.describe()).run_id == blocker.result_run_id
    finally:
        await blocker.terminate(reason="test cleanup")


async def test_parent_close_policy_terminate_is_the_default(client: Client, task_queue: str, new_id) -> None:
    child_id = new_id("child")
    async with worker(client, task_queue):
        parent = await client.start_workflow(
            LeaveChildBehindWorkflow.run, AbandonInput(child_id, ""), id=new_id("parent"), task_queue=task_queue
        )
        child_run_id = await result_of(parent.result())
        assert child_run_id
        await eventually(
            lambda: _status(client, child_id, child_run_id),
            lambda s: s == WorkflowExecutionStatus.TERMINATED,
            what="child terminated by the parent close policy",
        )
    parent_history = await parent.fetch_history()
    initiated = events_of(parent_history, "START_CHILD_WORKFLOW_EXECUTION_INITIATED")[0]
    assert (
        initiated.start_child_workflow_execution_initiated_event_attributes.parent_close_policy
        == ParentClosePolicy.PARENT_CLOSE_POLICY_TERMINATE
    )
    assert event_types(parent_history)[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    child_history = await client.get_workflow_handle(child_id, run_id=child_run_id).fetch_history()
    assert event_types(child_history)[-1] == "WORKFLOW_EXECUTION_TERMINATED"
    terminated = child_history.events[-1].workflow_execution_terminated_event_attributes
    # As the real server writes it (identity "history-service"). If the child's workflow task was
    # in flight, it first writes WorkflowTaskFailed with cause FORCE_CLOSE_COMMAND.
    assert terminated.reason == "by parent close policy"


async def test_parent_close_policy_abandon_leaves_the_child_running(client: Client, task_queue: str, new_id) -> None:
    child_id = new_id("child")
    try:
        async with worker(client, task_queue):
            parent = await client.start_workflow(
                LeaveChildBehindWorkflow.run,
                AbandonInput(child_id, "ABANDON"),
                id=new_id("parent"),
                task_queue=task_queue,
            )
            child_run_id = await result_of(parent.result())
            assert (await parent.describe()).status == WorkflowExecutionStatus.COMPLETED
            child = client.get_workflow_handle(child_id, run_id=child_run_id)
            # The abandoned child still runs: it takes a signal and completes on its own.
            await child.signal(WaitForReleaseWorkflow.release, "the test")
            assert await result_of(child.result()) == "released by the test"
        assert (await child.describe()).status == WorkflowExecutionStatus.COMPLETED
        parent_history = await parent.fetch_history()
        initiated = events_of(parent_history, "START_CHILD_WORKFLOW_EXECUTION_INITIATED")[0]
        assert (
            initiated.start_child_workflow_execution_initiated_event_attributes.parent_close_policy
            == ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON
        )
        # The parent closed first, so it never learns of the child's completion.
        assert "CHILD_WORKFLOW_EXECUTION_COMPLETED" not in event_types(parent_history)
    finally:
        try:
            await client.get_workflow_handle(child_id).terminate(reason="test cleanup")
        except RPCError:
            pass  # already closed (the test passed) or never started


async def test_external_signal_reaches_the_target(client: Client, task_queue: str, new_id) -> None:
    target_id, sender_id = new_id("receiver"), new_id("sender")
    async with worker(client, task_queue):
        target = await client.start_workflow(SignalReceiverWorkflow.run, id=target_id, task_queue=task_queue)
        sender = await client.start_workflow(SignalSenderWorkflow.run, target_id, id=sender_id, task_queue=task_queue)
        assert await result_of(sender.result()) == "sent"
        assert await result_of(target.result()) == ["hello from afar"]
    history = await sender.fetch_history()
    types = event_types(history)
    initiated = events_of(history, "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED")
    signaled = events_of(history, "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED")
    assert (len(initiated), len(signaled)) == (1, 1), types
    ia = initiated[0].signal_external_workflow_execution_initiated_event_attributes
    assert ia.workflow_execution.workflow_id == target_id
    assert ia.signal_name == "ping"
    assert len(ia.input.payloads) == 1
    sa = signaled[0].external_workflow_execution_signaled_event_attributes
    assert sa.initiated_event_id == initiated[0].event_id
    assert sa.workflow_execution.workflow_id == target_id
    assert types.index("EXTERNAL_WORKFLOW_EXECUTION_SIGNALED") < types.index("WORKFLOW_EXECUTION_COMPLETED")

    target_history = await target.fetch_history()
    received = events_of(target_history, "WORKFLOW_EXECUTION_SIGNALED")
    assert len(received) == 1
    ra = received[0].workflow_execution_signaled_event_attributes
    assert ra.signal_name == "ping"
    assert ra.external_workflow_execution.workflow_id == sender_id
    assert ra.external_workflow_execution.run_id == sender.result_run_id


async def test_external_signal_to_missing_workflow_fails_in_the_sender(client: Client, task_queue: str, new_id) -> None:
    missing = new_id("nobody")
    async with worker(client, task_queue):
        sender = await client.start_workflow(
            SignalSenderWorkflow.run, missing, id=new_id("sender"), task_queue=task_queue
        )
        result = await result_of(sender.result())
    # Core turns SignalExternalWorkflowExecutionFailed into an ApplicationError in the sender.
    assert result == (
        "failed: ApplicationError: ExternalWorkflowExecutionNotFound: "
        "Unable to signal external workflow because it was not found"
    ), result
    history = await sender.fetch_history()
    types = event_types(history)
    assert "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED" not in types, types
    failed = events_of(history, "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED")
    assert len(failed) == 1, types
    a = failed[0].signal_external_workflow_execution_failed_event_attributes
    assert a.cause == SignalExternalWorkflowExecutionFailedCause.Value(
        "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND"
    )
    assert a.workflow_execution.workflow_id == missing
    assert a.initiated_event_id == events_of(history, "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED")[0].event_id


@pytest.mark.parametrize("policy", ["TERMINATE", "REQUEST_CANCEL"])
async def test_explicit_close_policy_ends_the_child(client: Client, task_queue: str, new_id, policy: str) -> None:
    child_id = new_id("child")
    want = {
        "TERMINATE": WorkflowExecutionStatus.TERMINATED,
        "REQUEST_CANCEL": WorkflowExecutionStatus.CANCELED,
    }[policy]
    async with worker(client, task_queue):
        parent = await client.start_workflow(
            LeaveChildBehindWorkflow.run, AbandonInput(child_id, policy), id=new_id("parent"), task_queue=task_queue
        )
        child_run_id = await result_of(parent.result())
        await eventually(
            lambda: _status(client, child_id, child_run_id), lambda s: s == want, what=f"child closed by {policy}"
        )
