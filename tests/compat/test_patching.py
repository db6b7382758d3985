"""Patching (chapter 13.2, "Workflow-Code-Order nie ändern"): a v1 history replays against
v2-good (the reorder is behind `workflow.patched()`), not against v2-bad; a live v2-good run
records the patch marker and the TemporalChangeVersion search attribute."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import default as default_converter
from temporalio.worker import Replayer, Worker
from temporalio.workflow import NondeterminismError

from compat_more import (
    ONBOARDING,
    ONBOARDING_ACTIVITIES,
    REORDER_PATCH,
    OnboardingWorkflowV1,
    OnboardingWorkflowV2Bad,
    OnboardingWorkflowV2Good,
)
from compat_util import event_types, events_of, result_of


def worker(client: Client, task_queue: str, workflow: type) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[workflow], activities=ONBOARDING_ACTIVITIES)


def _decode(payload: Payload):
    return default_converter().payload_converter.from_payloads([payload])[0]


def _scheduled_activity_types(history: WorkflowHistory) -> list[str]:
    scheduled = events_of(history, "ACTIVITY_TASK_SCHEDULED")
    return [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled]


async def _run(client: Client, task_queue: str, wid: str, workflow: type) -> tuple[list[str], WorkflowHistory]:
    async with worker(client, task_queue, workflow):
        handle = await client.start_workflow(ONBOARDING, "u-1", id=wid, task_queue=task_queue, result_type=list)
        result = await result_of(handle.result())
    return result, await handle.fetch_history()


async def test_v1_history_replays_on_v2_good_but_not_on_v2_bad(client: Client, task_queue: str, new_id) -> None:
    result, history = await _run(client, task_queue, new_id("onboarding"), OnboardingWorkflowV1)
    assert result == ["validated u-1", "account for u-1"]
    assert history.events[0].workflow_execution_started_event_attributes.workflow_type.name == ONBOARDING
    assert _scheduled_activity_types(history) == ["validate_user", "create_account"]
    assert "MARKER_RECORDED" not in event_types(history)

    assert (await Replayer(workflows=[OnboardingWorkflowV1]).replay_workflow(history)).replay_failure is None
    # v2-good: no patch marker in the old history, so `patched()` is False and the old order replays.
    assert (await Replayer(workflows=[OnboardingWorkflowV2Good]).replay_workflow(history)).replay_failure is None
    # v2-bad: the first command is now ScheduleActivity(create_account), the history says validate_user.
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[OnboardingWorkflowV2Bad]).replay_workflow(history)
    # The same, collected instead of raised.
    bad = await Replayer(workflows=[OnboardingWorkflowV2Bad]).replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(bad.replay_failure, NondeterminismError)


async def test_v2_good_live_run_records_the_patch(client: Client, task_queue: str, new_id) -> None:
    result, history = await _run(client, task_queue, new_id("onboarding"), OnboardingWorkflowV2Good)
    assert result == ["account for u-1", "validated u-1"], "a new run takes the patched path"
    assert _scheduled_activity_types(history) == ["create_account", "validate_user"]
    types = event_types(history)
    # Run 1 on the real server: the patch marker and the search attribute upsert come first in the
    # first task's commands, before the first activity is scheduled.
    assert types[:7] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "MARKER_RECORDED",
        "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
        "ACTIVITY_TASK_SCHEDULED",
    ], types

    markers = events_of(history, "MARKER_RECORDED")
    assert len(markers) == 1
    m = markers[0].marker_recorded_event_attributes
    assert m.marker_name == "core_patch"
    assert m.workflow_task_completed_event_id == events_of(history, "WORKFLOW_TASK_COMPLETED")[0].event_id
    patch_data = _decode(m.details["patch-data"].payloads[0])
    assert patch_data == {"id": REORDER_PATCH, "deprecated": False}

    upserts = events_of(history, "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES")
    assert len(upserts) == 1
    fields = upserts[0].upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    assert "TemporalChangeVersion" in fields
    change_version = fields["TemporalChangeVersion"]
    assert _decode(change_version) == [REORDER_PATCH]
    assert change_version.metadata["type"] == b"KeywordList"

    # The v2-good history replays against v2-good; against v1 it does not (the marker has no match).
    assert (await Replayer(workflows=[OnboardingWorkflowV2Good]).replay_workflow(history)).replay_failure is None
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[OnboardingWorkflowV1]).replay_workflow(history)


async def test_patched_run_is_visible_by_change_version(client: Client, task_queue: str, new_id) -> None:
    wid = new_id("onboarding")
    await _run(client, task_queue, wid, OnboardingWorkflowV2Good)
    desc = await client.get_workflow_handle(wid).describe()
    sa = desc.raw_description.workflow_execution_info.search_attributes.indexed_fields
    assert _decode(sa["TemporalChangeVersion"]) == [REORDER_PATCH]
