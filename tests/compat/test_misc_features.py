"""Local activities (chapter 13.7.2) and workflow-task heartbeats, replay of the chapter's
FraudCheckWorkflow (13.2), memo upserts, and cron chains."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.enums.v1 import ContinueAsNewInitiator, HistoryEventFilterType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, WorkflowContinuedAsNewError, WorkflowExecutionStatus, WorkflowHistory
from temporalio.converter import default as default_converter
from temporalio.worker import Replayer, Worker

import compat_more as cm
from compat_util import event_types, events_of, eventually, result_of


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=cm.MORE_WORKFLOWS, activities=cm.MORE_ACTIVITIES)


def _decode(payload: Payload):
    return default_converter().payload_converter.from_payloads([payload])[0]


async def test_local_activity_with_idempotency_key_is_a_marker(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("payment")
    async with worker(client, task_queue):
        handle = await client.start_workflow(cm.PaymentWorkflow.run, 100.0, id=wid, task_queue=task_queue)
        assert await result_of(handle.result()) == f"{wid}-payment"
    assert cm.CHARGES[f"{wid}-payment"] == 100.0
    history = await handle.fetch_history()
    types = event_types(history)
    assert "ACTIVITY_TASK_SCHEDULED" not in types, "a local activity never becomes an activity task"
    assert types == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "MARKER_RECORDED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ], types
    marker = events_of(history, "MARKER_RECORDED")[0].marker_recorded_event_attributes
    assert marker.marker_name == "core_local_activity"
    assert marker.workflow_task_completed_event_id == events_of(history, "WORKFLOW_TASK_COMPLETED")[0].event_id
    assert _decode(marker.details["result"].payloads[0]) == f"{wid}-payment"
    data = _decode(marker.details["data"].payloads[0])
    assert data["activity_type"] == "charge_credit_card_idempotent"
    # The marker replays: the local activity is not run again.
    assert (await Replayer(workflows=[cm.PaymentWorkflow]).replay_workflow(history)).replay_failure is None


@pytest.mark.timeout(60)
async def test_slow_local_activity_heartbeats_the_workflow_task(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            cm.SlowLocalActivityWorkflow.run,
            3.0,
            id=new_id("slow-la"),
            task_queue=task_queue,
            task_timeout=timedelta(seconds=2),
        )
        assert await result_of(handle.result()) == "slept 3.0"
    history = await handle.fetch_history()
    types = event_types(history)
    assert "WORKFLOW_TASK_TIMED_OUT" not in types and "WORKFLOW_TASK_FAILED" not in types, types
    assert history.events[0].workflow_execution_started_event_attributes.workflow_task_timeout.ToSeconds() == 2
    # A heartbeat is a completion with force_create_new_workflow_task: Completed directly followed
    # by Scheduled, with no command in between.
    heartbeats = [
        i
        for i in range(len(types) - 1)
        if types[i] == "WORKFLOW_TASK_COMPLETED" and types[i + 1] == "WORKFLOW_TASK_SCHEDULED"
    ]
    assert heartbeats, types
    # Real server, 3 s local activity and 2 s task timeout: one heartbeat at about 1.6 s, i.e.
    # Started, (WftScheduled, WftStarted, WftCompleted) x 2, Marker, Completed.
    head, middle, tail = types[:1], types[1:-2], types[-2:]
    assert head == ["WORKFLOW_EXECUTION_STARTED"], types
    assert tail == ["MARKER_RECORDED", "WORKFLOW_EXECUTION_COMPLETED"], types
    assert len(middle) % 3 == 0 and len(middle) >= 6, types
    task = ["WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED"]
    assert middle == task * (len(middle) // 3), types
    assert len(events_of(history, "MARKER_RECORDED")) == 1
    # Each heartbeat completion came before the 2 s task timeout ran out.
    for started, completed in zip(
        events_of(history, "WORKFLOW_TASK_STARTED"), events_of(history, "WORKFLOW_TASK_COMPLETED"), strict=True
    ):
        took = completed.event_time.ToDatetime() - started.event_time.ToDatetime()
        assert took.total_seconds() < 2.0, took
    assert (await Replayer(workflows=[cm.SlowLocalActivityWorkflow]).replay_workflow(history)).replay_failure is None


async def test_fraud_check_workflow_replays(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            cm.FraudCheckWorkflow.run, "tx-42", id=new_id("fraud"), task_queue=task_queue
        )
        result = await result_of(handle.result())
    assert isinstance(result, cm.FraudCheckResult)
    assert result.approved
    assert result.checks == ["device:ok", "ip:ok", "location:ok"], "sorted iteration"
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events_of(history, "ACTIVITY_TASK_SCHEDULED")
    ]
    assert scheduled == [
        "calculate_risk_score",
        "get_time_based_modifier",
        "generate_audit_id",
        "run_fraud_check",
        "run_fraud_check",
        "run_fraud_check",
    ]
    # workflow.now() is the start time of the workflow task that produced the result.
    last_task_started = events_of(history, "WORKFLOW_TASK_STARTED")[-1].event_time.ToDatetime()
    checked_at = datetime.fromisoformat(result.checked_at).replace(tzinfo=None)
    assert abs((checked_at - last_task_started).total_seconds()) < 1.0, (checked_at, last_task_started)
    assert (await Replayer(workflows=[cm.FraudCheckWorkflow]).replay_workflow(history)).replay_failure is None
    # The JSON export replays too.
    again = WorkflowHistory.from_json(history.workflow_id, history.to_json())
    assert (await Replayer(workflows=[cm.FraudCheckWorkflow]).replay_workflow(again)).replay_failure is None


async def test_upsert_memo_modifies_workflow_properties(client: Client, task_queue: str, new_id) -> None:
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            cm.MemoWorkflow.run,
            "shipped",
            id=new_id("memo"),
            task_queue=task_queue,
            memo={"owner": "alice", "stage": "new", "obsolete": "x"},
        )
        # The workflow sees its own upsert: stage replaced, obsolete removed, owner kept.
        assert await result_of(handle.result()) == {"owner": "alice", "stage": "shipped"}
    history = await handle.fetch_history()
    types = event_types(history)
    modified = events_of(history, "WORKFLOW_PROPERTIES_MODIFIED")
    assert len(modified) == 1, types
    assert types.index("WORKFLOW_PROPERTIES_MODIFIED") == types.index("WORKFLOW_TASK_COMPLETED") + 1
    fields = modified[0].workflow_properties_modified_event_attributes.upserted_memo.fields
    assert _decode(fields["stage"]) == "shipped"
    assert "obsolete" in fields, "a removal is sent as a null payload"
    assert _decode(fields["obsolete"]) is None
    assert (
        modified[0].workflow_properties_modified_event_attributes.workflow_task_completed_event_id
        == events_of(history, "WORKFLOW_TASK_COMPLETED")[0].event_id
    )
    started_memo = history.events[0].workflow_execution_started_event_attributes.memo.fields
    assert _decode(started_memo["stage"]) == "new", "the started event keeps the original memo"
    desc = await handle.describe()
    assert await desc.memo() == {"owner": "alice", "stage": "shipped"}


@pytest.mark.timeout(60)
async def test_cron_workflow_runs_again(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("cron")
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            cm.CronCounterWorkflow.run, id=wid, task_queue=task_queue, cron_schedule="@every 2s"
        )
        try:
            first = client.get_workflow_handle(wid, run_id=handle.first_execution_run_id)
            # The real server answers the client's CLOSE_EVENT long poll for a completed cron run
            # with a synthesized WorkflowExecutionContinuedAsNew (new_execution_run_id,
            # last_completion_result), so `result(follow_runs=False)` raises instead of returning.
            with pytest.raises(WorkflowContinuedAsNewError) as continued:
                await result_of(first.result(follow_runs=False))
            first_history = await first.fetch_history()
            first_started = first_history.events[0].workflow_execution_started_event_attributes
            assert first_started.cron_schedule == "@every 2s"
            # The first run is a cron run too: it waits for the schedule.
            assert first_started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
            assert first_started.first_workflow_task_backoff.ToNanoseconds() > 0
            # The stored history keeps the real close event, with the successor's run id.
            assert event_types(first_history) == [
                "WORKFLOW_EXECUTION_STARTED",
                "WORKFLOW_TASK_SCHEDULED",
                "WORKFLOW_TASK_STARTED",
                "WORKFLOW_TASK_COMPLETED",
                "WORKFLOW_EXECUTION_COMPLETED",
            ]
            completed = first_history.events[-1].workflow_execution_completed_event_attributes
            assert _decode(completed.result.payloads[0]) == 1
            next_run_id = completed.new_execution_run_id
            assert next_run_id
            assert continued.value.new_execution_run_id == next_run_id
            close_only = await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecution(workflow_id=wid, run_id=handle.first_execution_run_id),
                    history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
                )
            )
            assert event_types(close_only.history.events) == ["WORKFLOW_EXECUTION_CONTINUED_AS_NEW"]
            synthesized = close_only.history.events[0]
            assert synthesized.event_id == first_history.events[-1].event_id
            assert synthesized.workflow_execution_continued_as_new_event_attributes.new_execution_run_id == next_run_id
            last = synthesized.workflow_execution_continued_as_new_event_attributes.last_completion_result
            assert _decode(last.payloads[0]) == 1

            second = client.get_workflow_handle(wid, run_id=next_run_id)
            await eventually(
                lambda: second.describe(),
                lambda d: d.status == WorkflowExecutionStatus.COMPLETED,
                what="second cron run",
            )
            second_history = await second.fetch_history()
            s = second_history.events[0].workflow_execution_started_event_attributes
            assert s.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
            assert s.continued_execution_run_id == handle.first_execution_run_id
            assert s.first_execution_run_id == handle.first_execution_run_id
            assert s.cron_schedule == "@every 2s"
            assert _decode(s.last_completion_result.payloads[0]) == 1
            assert s.first_workflow_task_backoff.ToNanoseconds() > 0
            second_completed = second_history.events[-1].workflow_execution_completed_event_attributes
            assert _decode(second_completed.result.payloads[0]) == 2, "the next run saw the last result"
            assert second_completed.new_execution_run_id
        finally:
            await client.get_workflow_handle(wid).terminate(reason="stop the cron chain")
    latest = await eventually(
        lambda: client.get_workflow_handle(wid).describe(),
        lambda d: d.status == WorkflowExecutionStatus.TERMINATED,
        what="cron chain terminated",
    )
    assert latest.run_id not in (handle.first_execution_run_id, next_run_id)
    last_history = await client.get_workflow_handle(wid, run_id=latest.run_id).fetch_history()
    assert event_types(last_history)[-1] == "WORKFLOW_EXECUTION_TERMINATED"
    # Terminate ends the chain: no successor.
    terminated = last_history.events[-1].workflow_execution_terminated_event_attributes
    assert terminated.reason == "stop the cron chain"


async def test_worker_build_id_is_recorded_on_its_workflow_tasks(client: Client, task_queue: str, new_id) -> None:
    """A worker with a build id (no worker versioning): its polls carry it, and the Started and
    Completed events of its workflow tasks record it, as `workflow.info().get_current_build_id()`
    reads it back."""
    from temporalio.worker import Worker as SdkWorker

    from compat_features import FEATURE_WORKFLOWS, BuildIdWorkflow

    async with SdkWorker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS, build_id="uw-build-7"):
        handle = await client.start_workflow(BuildIdWorkflow.run, id=new_id("build-id"), task_queue=task_queue)
        assert await result_of(handle.result()) == "uw-build-7"
    history = await handle.fetch_history()
    started = events_of(history, "WORKFLOW_TASK_STARTED")[0].workflow_task_started_event_attributes
    assert started.worker_version.build_id == "uw-build-7"
    completed = events_of(history, "WORKFLOW_TASK_COMPLETED")[0].workflow_task_completed_event_attributes
    assert completed.worker_version.build_id == "uw-build-7"


async def test_user_metadata_on_start_and_on_commands(client: Client, task_queue: str, new_id) -> None:
    """A start's static summary and details are kept for DescribeWorkflowExecution and put on the
    Started event; a command's metadata (a timer's summary) goes on the event it produced."""
    from temporalio.worker import Worker as SdkWorker

    from compat_features import FEATURE_WORKFLOWS, SummarizedTimerWorkflow

    async with SdkWorker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS):
        handle = await client.start_workflow(
            SummarizedTimerWorkflow.run,
            id=new_id("summary"),
            task_queue=task_queue,
            static_summary="order 42",
            static_details="details of order 42",
        )
        assert await result_of(handle.result()) == "rested"
    desc = await handle.describe()
    assert await desc.static_summary() == "order 42"
    assert await desc.static_details() == "details of order 42"
    history = await handle.fetch_history()
    converter = default_converter()
    started = history.events[0]
    assert converter.payload_converter.from_payload(started.user_metadata.summary) == "order 42"
    timer = events_of(history, "TIMER_STARTED")[0]
    assert converter.payload_converter.from_payload(timer.user_metadata.summary) == "short nap"
    completed = events_of(history, "WORKFLOW_EXECUTION_COMPLETED")[0]
    assert not completed.HasField("user_metadata")


async def test_child_gets_the_summary_of_its_start_command(client: Client, task_queue: str, new_id) -> None:
    """The StartChildWorkflowExecution command's summary and details become the child's own."""
    from temporalio.worker import Worker as SdkWorker

    from compat_features import FEATURE_WORKFLOWS, SummarizedParentWorkflow

    child_id = new_id("summary-child")
    async with SdkWorker(client, task_queue=task_queue, workflows=FEATURE_WORKFLOWS):
        handle = await client.start_workflow(
            SummarizedParentWorkflow.run, child_id, id=new_id("summary-parent"), task_queue=task_queue
        )
        assert await result_of(handle.result()) == "rested"
    child = await client.get_workflow_handle(child_id).describe()
    assert await child.static_summary() == "the child"
    assert await child.static_details() == "child details"
    initiated = events_of(await handle.fetch_history(), "START_CHILD_WORKFLOW_EXECUTION_INITIATED")[0]
    assert default_converter().payload_converter.from_payload(initiated.user_metadata.summary) == "the child"
