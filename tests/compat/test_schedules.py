"""Schedules through the Python SDK: create, describe, update, pause/unpause, trigger, backfill, list, delete.

Exact spec forms, matching times and boundaries are asserted as the real dev server (the oracle,
`--reference-server`) returns them. Every wait for a schedule's nominal times to pass polls
describe() or visibility with `eventually`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from google.protobuf import text_format
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.schedule.v1 import Range, StructuredCalendarSpec
from temporalio.api.schedule.v1 import ScheduleSpec as ProtoScheduleSpec
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest, ListScheduleMatchingTimesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecution,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import compat_schedules as cs
from compat_util import event_types, eventually, result_of

UTC = timezone.utc
SCHEDULED_BY_ID = SearchAttributeKey.for_keyword("TemporalScheduledById")
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
ONE_SECOND = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))])


# --- helpers -------------------------------------------------------------------------------------


def schedule_worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=cs.SCHEDULE_WORKFLOWS, activities=cs.SCHEDULE_ACTIVITIES)


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def nominal_time_of(action_id: str, workflow_id: str) -> datetime:
    """A scheduled workflow's id is `<action id>-<nominal time, RFC 3339 to the second, Z>`."""
    assert workflow_id.startswith(action_id + "-"), (action_id, workflow_id)
    return datetime.strptime(workflow_id[len(action_id) + 1 :], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def ts(t: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(t)
    return out


def r(start: int, end: int | None = None, step: int = 1) -> Range:
    """A Range as the reference server canonicalises it: end = start when unset, step 1 when unset."""
    return Range(start=start, end=start if end is None else end, step=step)


def spec_text(spec: ProtoScheduleSpec) -> str:
    return text_format.MessageToString(spec)


async def scheduled_runs(client: Client, schedule_id: str) -> list[WorkflowExecution]:
    return [wf async for wf in client.list_workflows(f"TemporalScheduledById = '{schedule_id}'")]


async def describe_until(
    handle: ScheduleHandle, ok: Callable[[ScheduleDescription], bool], what: str, timeout: float = 20.0
) -> ScheduleDescription:
    return await eventually(handle.describe, ok, timeout=timeout, interval=0.2, what=what)


async def wait_nominal_times_pass(handle: ScheduleHandle, seconds: float, what: str) -> ScheduleDescription:
    """Polls describe() until the wall clock is `seconds` past the next action time first seen.

    A paused schedule on the reference server does not advance its next_action_times, so the
    clock, not the description, tells when the nominal times have passed.
    """
    first = (await handle.describe()).info.next_action_times[0]
    until = max(first, datetime.now(UTC)) + timedelta(seconds=seconds)
    return await describe_until(handle, lambda d: datetime.now(UTC) >= until, what=what)


async def cleanup(client: Client, handle: ScheduleHandle) -> None:
    """Deletes the schedule and terminates whatever it left running."""
    await handle.delete()
    for wf in await scheduled_runs(client, handle.id):
        if wf.status == WorkflowExecutionStatus.RUNNING:
            try:
                await client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate("test cleanup")
            except RPCError:
                pass


def expected_calendar_times(after: datetime, n: int, tz: ZoneInfo, match: Callable[[datetime], bool]) -> list[datetime]:
    """The first n whole minutes (UTC) after `after` whose local time in tz satisfies `match`."""
    t = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    out: list[datetime] = []
    while len(out) < n:
        if match(t.astimezone(tz)):
            out.append(t)
        t += timedelta(minutes=1)
    return out


def start_action(workflow, arg, action_id: str, task_queue: str) -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(workflow, arg, id=action_id, task_queue=task_queue)


# --- limited actions -----------------------------------------------------------------------------


async def test_limited_actions_start_exactly_three(client: Client, task_queue: str, new_id) -> None:
    sid, aid = new_id("sched-limited"), new_id("limited")
    async with schedule_worker(client, task_queue):
        handle = await client.create_schedule(
            sid,
            Schedule(
                action=start_action(cs.ScheduledEchoWorkflow.run, "tick", aid, task_queue),
                spec=ONE_SECOND,
                # ALLOW_ALL, so that no nominal time is skipped for a run still in flight.
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
                state=ScheduleState(limited_actions=True, remaining_actions=3),
            ),
        )
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 3, "3 actions")
        runs = await eventually(
            lambda: scheduled_runs(client, sid), lambda rs: len(rs) >= 3, timeout=20, what="3 scheduled runs listed"
        )
        ids = sorted(wf.id for wf in runs)
        assert len(ids) == 3 == len(set(ids)), ids
        nominal = [nominal_time_of(aid, wid) for wid in ids]
        assert [b - a for a, b in zip(nominal, nominal[1:])] == [timedelta(seconds=1)] * 2, nominal
        for wf, t in zip(sorted(runs, key=lambda w: w.id), nominal):
            assert wf.typed_search_attributes.get(SCHEDULED_BY_ID) == sid
            assert wf.typed_search_attributes.get(SCHEDULED_START_TIME) == t
            assert wf.workflow_type == "ScheduledEchoWorkflow"
            assert await result_of(client.get_workflow_handle(wf.id).result()) == f"{wf.id}:tick"
            described = await client.get_workflow_handle(wf.id).describe()
            assert described.typed_search_attributes.get(SCHEDULED_BY_ID) == sid
            assert described.typed_search_attributes.get(SCHEDULED_START_TIME) == t

        assert desc.info.num_actions == 3
        assert [a.action.workflow_id for a in desc.info.recent_actions] == ids
        assert [a.scheduled_at for a in desc.info.recent_actions] == nominal
        assert all(a.started_at >= a.scheduled_at for a in desc.info.recent_actions)
        assert desc.info.next_action_times == []
        assert desc.schedule.state.limited_actions
        assert desc.schedule.state.remaining_actions == 0
        # Two more nominal times pass (polling describe): still 3 actions, still 3 runs.
        after = await describe_until(
            handle,
            lambda d: datetime.now(UTC) > nominal[-1] + timedelta(seconds=3),
            "two more nominal times to pass",
        )
        assert after.info.num_actions == 3
        assert len(await scheduled_runs(client, sid)) == 3
        await handle.delete()


# --- restart -------------------------------------------------------------------------------------


async def wait_until_answering(client: Client, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            await asyncio.wait_for(client.workflow_service.get_system_info(GetSystemInfoRequest()), 5)
            return
        except Exception:
            assert time.monotonic() < deadline, "client did not reconnect to the restarted server"
            await asyncio.sleep(0.2)


async def describe_retrying(handle: ScheduleHandle) -> ScheduleDescription | None:
    try:
        return await asyncio.wait_for(handle.describe(), 5)
    except Exception:  # noqa: BLE001 - the server may just have restarted
        return None


@pytest.mark.needs_managed_server
@pytest.mark.timeout(120)
async def test_schedule_survives_kill9_without_duplicates(server_factory, test_dir: Path, new_id) -> None:
    srv = server_factory("sched-crash")
    srv.start()
    client = await srv.wait_ready()
    task_queue = new_id("tq-sched-crash")
    effects = test_dir / "scheduled_side_effects.txt"
    sid, aid = new_id("sched-crash"), new_id("crashed")
    async with schedule_worker(client, task_queue):
        handle = await client.create_schedule(
            sid,
            Schedule(
                action=start_action(cs.ScheduledRecordWorkflow.run, cs.RecordInput(path=str(effects)), aid, task_queue),
                spec=ONE_SECOND,
                state=ScheduleState(limited_actions=True, remaining_actions=6),
            ),
        )
        before = await describe_until(handle, lambda d: d.info.num_actions >= 2, "2 actions before the kill")
        assert before.info.num_actions < 6, "schedule finished before the kill"
        srv.kill9()
        killed_at = datetime.now(UTC)
        srv.restart()
        await srv.wait_ready()
        await wait_until_answering(client, deadline_s=30)

        await eventually(
            lambda: describe_retrying(handle),
            lambda d: d is not None and d.info.num_actions >= 6 and not d.info.running_actions,
            timeout=60,
            interval=0.3,
            what="6 actions done after the restart",
        )
        runs = await eventually(
            lambda: scheduled_runs(client, sid),
            lambda rs: len(rs) >= 6 and all(wf.status == WorkflowExecutionStatus.COMPLETED for wf in rs),
            timeout=30,
            what="6 completed scheduled runs",
        )
        desc = await handle.describe()

    ids = [wf.id for wf in runs]
    assert len(ids) == 6, sorted(ids)
    assert len(set(ids)) == 6, Counter(ids).most_common(3)
    nominal = sorted(nominal_time_of(aid, wid) for wid in ids)
    assert len(set(nominal)) == 6, nominal
    start_times = sorted(wf.typed_search_attributes.get(SCHEDULED_START_TIME) for wf in runs)
    assert start_times == nominal
    assert desc.info.num_actions == 6
    assert desc.info.next_action_times == []
    assert desc.schedule.state.remaining_actions == 0

    for wid in ids:
        history = await client.get_workflow_handle(wid).fetch_history()
        types = event_types(history)
        assert types.count("WORKFLOW_EXECUTION_STARTED") == 1
        assert types.count("WORKFLOW_EXECUTION_COMPLETED") == 1 and types[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    lines = Counter(effects.read_text().splitlines())
    assert set(lines) == set(ids), (sorted(lines), sorted(ids))
    # An activity in flight at the kill may run twice (at least once); nothing started after it may.
    repeated = {wid for wid, n in lines.items() if n > 1 and nominal_time_of(aid, wid) > killed_at}
    assert not repeated, lines
    assert max(lines.values()) <= 2, lines

    code = srv.terminate()
    assert code == 0, f"server exited with {code} after SIGTERM"


# --- pause, trigger, unpause ---------------------------------------------------------------------


async def test_paused_schedule_starts_nothing_until_triggered_or_unpaused(
    client: Client, task_queue: str, new_id
) -> None:
    sid, aid = new_id("sched-paused"), new_id("paused")
    async with schedule_worker(client, task_queue):
        handle = await client.create_schedule(
            sid,
            Schedule(
                action=start_action(cs.ScheduledEchoWorkflow.run, "p", aid, task_queue),
                spec=ONE_SECOND,
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
                state=ScheduleState(paused=True, note="created paused"),
            ),
        )
        desc = await wait_nominal_times_pass(handle, 2.5, "3 nominal times to pass while paused")
        assert desc.info.num_actions == 0
        assert desc.info.recent_actions == []
        assert desc.schedule.state.paused
        assert desc.schedule.state.note == "created paused"
        assert await scheduled_runs(client, sid) == []

        # A trigger starts one workflow although the schedule stays paused.
        await handle.trigger()
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 1, "the triggered action")
        assert desc.info.num_actions == 1
        assert desc.schedule.state.paused
        triggered = desc.info.recent_actions[0].action.workflow_id
        assert await result_of(client.get_workflow_handle(triggered).result()) == f"{triggered}:p"
        desc = await wait_nominal_times_pass(handle, 2.5, "3 more nominal times to pass while paused")
        assert desc.info.num_actions == 1

        await handle.unpause(note="resumed by test")
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 3, "actions after unpause")
        assert not desc.schedule.state.paused
        assert desc.schedule.state.note == "resumed by test"

        await handle.pause(note="paused again")
        desc = await handle.describe()
        assert desc.schedule.state.paused and desc.schedule.state.note == "paused again"
        # Patches (trigger, pause, unpause) are not updates: the reference leaves update_time unset.
        assert desc.info.last_updated_at is None
        await cleanup(client, handle)


# --- overlap policies ----------------------------------------------------------------------------


async def blocking_schedule(client: Client, task_queue: str, new_id, overlap: ScheduleOverlapPolicy):
    sid, aid = new_id(f"sched-{overlap.name.lower()}"), new_id(overlap.name.lower())
    handle = await client.create_schedule(
        sid,
        Schedule(
            action=start_action(cs.ScheduledBlockingWorkflow.run, "blocked", aid, task_queue),
            spec=ONE_SECOND,
            policy=SchedulePolicy(overlap=overlap),
        ),
    )
    return handle, aid


async def test_next_run_gets_the_last_completion_result(client: Client, task_queue: str, new_id) -> None:
    """As Temporal's scheduler: each scheduled run is started with the result of the last one that
    completed (`workflow.get_last_completion_result()`)."""
    sid, aid = new_id("sched-chain"), new_id("chain")
    async with schedule_worker(client, task_queue):
        handle = await client.create_schedule(
            sid,
            Schedule(
                action=start_action(cs.ScheduledCounterWorkflow.run, "c", aid, task_queue),
                spec=ONE_SECOND,
                state=ScheduleState(paused=True),
            ),
        )
        results = []
        for n in range(1, 4):
            await handle.trigger()
            desc = await describe_until(handle, lambda d, n=n: d.info.num_actions >= n, f"action {n}")
            workflow_id = desc.info.recent_actions[-1].action.workflow_id
            results.append(await result_of(client.get_workflow_handle(workflow_id).result()))
            # The schedule notices the close before the next trigger.
            await describe_until(handle, lambda d: not d.info.running_actions, f"run {n} seen closed")
        assert results == [1, 2, 3]
        await handle.delete()


async def test_overlap_skip(client: Client, task_queue: str, new_id) -> None:
    async with schedule_worker(client, task_queue):
        handle, aid = await blocking_schedule(client, task_queue, new_id, ScheduleOverlapPolicy.SKIP)
        desc = await describe_until(handle, lambda d: d.info.num_actions_skipped_overlap >= 2, "2 skipped actions")
        assert desc.info.num_actions == 1
        assert len(desc.info.running_actions) == 1
        first = desc.info.running_actions[0].workflow_id
        assert desc.info.recent_actions[0].action.workflow_id == first
        assert desc.raw_description.info.buffer_size == 0
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

        # Once the running one completes, the next nominal time starts a new one.
        await client.get_workflow_handle(first).signal(cs.ScheduledBlockingWorkflow.release)
        assert await result_of(client.get_workflow_handle(first).result()) == "blocked"
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 2, "an action after the release")
        second = desc.info.recent_actions[1].action.workflow_id
        # The schedule watched the first run to its end.
        statuses = [a.start_workflow_status for a in desc.raw_description.info.recent_actions]
        assert statuses[:2] == [WorkflowExecutionStatus.COMPLETED.value, WorkflowExecutionStatus.RUNNING.value]
        assert nominal_time_of(aid, second) > nominal_time_of(aid, first) + timedelta(seconds=1)
        await cleanup(client, handle)


async def test_overlap_buffer_one(client: Client, task_queue: str, new_id) -> None:
    async with schedule_worker(client, task_queue):
        handle, aid = await blocking_schedule(client, task_queue, new_id, ScheduleOverlapPolicy.BUFFER_ONE)
        # Running one, one buffered, the rest dropped as overlap skips.
        desc = await describe_until(handle, lambda d: d.info.num_actions_skipped_overlap >= 2, "2 skipped actions")
        assert desc.info.num_actions == 1
        assert len(desc.info.running_actions) == 1
        assert desc.raw_description.info.buffer_size == 1
        first = desc.info.running_actions[0].workflow_id
        t_first = nominal_time_of(aid, first)

        await client.get_workflow_handle(first).signal(cs.ScheduledBlockingWorkflow.release)
        assert await result_of(client.get_workflow_handle(first).result()) == "blocked"
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 2, "the buffered action")
        second = desc.info.recent_actions[1].action.workflow_id
        # The buffered start is the first one that overlapped: the nominal time right after the first.
        assert nominal_time_of(aid, second) == t_first + timedelta(seconds=1)
        assert desc.info.recent_actions[1].scheduled_at == t_first + timedelta(seconds=1)
        assert [a.workflow_id for a in desc.info.running_actions] == [second]

        # While the second blocks, exactly one more is buffered again and the rest are skipped.
        skipped = desc.info.num_actions_skipped_overlap
        desc = await describe_until(
            handle, lambda d: d.info.num_actions_skipped_overlap >= skipped + 2, "2 more skipped actions"
        )
        assert desc.info.num_actions == 2
        assert [a.workflow_id for a in desc.info.running_actions] == [second]
        assert desc.raw_description.info.buffer_size == 1
        assert desc.raw_description.info.buffer_dropped == 0
        await cleanup(client, handle)


async def test_overlap_allow_all(client: Client, task_queue: str, new_id) -> None:
    async with schedule_worker(client, task_queue):
        handle, aid = await blocking_schedule(client, task_queue, new_id, ScheduleOverlapPolicy.ALLOW_ALL)
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 3, "3 actions")
        assert desc.info.num_actions_skipped_overlap == 0
        assert desc.info.num_actions == len(desc.info.recent_actions)
        started = [a.action.workflow_id for a in desc.info.recent_actions]
        nominal = [nominal_time_of(aid, wid) for wid in started]
        assert [b - a for a, b in zip(nominal, nominal[1:])] == [timedelta(seconds=1)] * (len(nominal) - 1), nominal
        # None of them was released, so they all run at once.
        for wid in started:
            assert (await client.get_workflow_handle(wid).describe()).status == WorkflowExecutionStatus.RUNNING
        await cleanup(client, handle)


# --- backfill ------------------------------------------------------------------------------------


async def test_backfill_past_range_on_paused_schedule(client: Client, task_queue: str, new_id) -> None:
    sid, aid = new_id("sched-backfill"), new_id("backfill")
    async with schedule_worker(client, task_queue):
        handle = await client.create_schedule(
            sid,
            Schedule(
                action=start_action(cs.ScheduledEchoWorkflow.run, "b", aid, task_queue),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=1))]),
                state=ScheduleState(paused=True, note="backfill only"),
            ),
        )
        base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
        # The reference server includes both ends of a backfill range: [base, base + 4:59] holds the
        # 5 nominal times base .. base + 4 min, (base + 10:00, base + 15:00] holds base + 11 .. base + 15.
        await handle.backfill(
            ScheduleBackfill(
                start_at=base, end_at=base + timedelta(minutes=4, seconds=59), overlap=ScheduleOverlapPolicy.ALLOW_ALL
            )
        )
        first = [base + timedelta(minutes=i) for i in range(5)]
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 5, "5 backfilled actions")
        assert desc.info.num_actions == 5
        assert sorted(a.scheduled_at for a in desc.info.recent_actions) == first
        runs = await eventually(
            lambda: scheduled_runs(client, sid), lambda rs: len(rs) >= 5, timeout=20, what="5 backfilled runs"
        )
        assert sorted(wf.id for wf in runs) == [f"{aid}-{rfc3339(t)}" for t in first]

        await handle.backfill(
            ScheduleBackfill(
                start_at=base + timedelta(minutes=10, seconds=1),
                end_at=base + timedelta(minutes=15),
                overlap=ScheduleOverlapPolicy.ALLOW_ALL,
            )
        )
        second = [base + timedelta(minutes=i) for i in range(11, 16)]
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 10, "5 more backfilled actions")
        assert desc.info.num_actions == 10
        runs = await eventually(
            lambda: scheduled_runs(client, sid),
            lambda rs: len(rs) >= 10 and all(wf.status == WorkflowExecutionStatus.COMPLETED for wf in rs),
            timeout=20,
            what="10 completed backfilled runs",
        )
        assert sorted(wf.id for wf in runs) == [f"{aid}-{rfc3339(t)}" for t in first + second]
        for wf in runs:
            assert wf.typed_search_attributes.get(SCHEDULED_START_TIME) == nominal_time_of(aid, wf.id)
            assert wf.typed_search_attributes.get(SCHEDULED_BY_ID) == sid
            assert await result_of(client.get_workflow_handle(wf.id).result()) == f"{wf.id}:b"
        assert sorted(a.scheduled_at for a in desc.info.recent_actions) == first + second
        assert desc.schedule.state.paused
        # A backfill is a patch, not an update: the reference leaves update_time unset.
        assert desc.info.last_updated_at is None
        await cleanup(client, handle)


# --- specs ---------------------------------------------------------------------------------------


async def create_paused(client: Client, new_id, spec: ScheduleSpec) -> tuple[ScheduleHandle, datetime]:
    sid = new_id("sched-spec")
    created = datetime.now(UTC)
    handle = await client.create_schedule(
        sid,
        Schedule(
            action=start_action(cs.ScheduledEchoWorkflow.run, "s", new_id("spec"), "tq-never-polled"),
            spec=spec,
            state=ScheduleState(paused=True),
        ),
    )
    return handle, created


def assert_times(actual: list[datetime], created: datetime, compute: Callable[[datetime], list[datetime]]) -> None:
    """The times computed after `created`, or just after now if a nominal time passed while describing."""
    assert actual in (compute(created), compute(datetime.now(UTC))), actual


async def test_cron_spec_is_canonicalised_into_calendars(client: Client, new_id) -> None:
    handle, created = await create_paused(client, new_id, ScheduleSpec(cron_expressions=["0 12 * * MON-FRI"]))
    desc = await handle.describe()
    expected = ProtoScheduleSpec(
        structured_calendar=[
            StructuredCalendarSpec(
                second=[r(0)],
                minute=[r(0)],
                hour=[r(12)],
                day_of_month=[r(1, 31)],
                month=[r(1, 12)],
                day_of_week=[r(1, 5)],
            )
        ]
    )
    assert spec_text(desc.raw_description.schedule.spec) == spec_text(expected)
    assert list(desc.schedule.spec.cron_expressions) == []
    assert len(desc.info.next_action_times) == 10
    assert_times(
        desc.info.next_action_times,
        created,
        lambda after: expected_calendar_times(
            after, 10, ZoneInfo("UTC"), lambda t: t.weekday() < 5 and (t.hour, t.minute) == (12, 0)
        ),
    )
    await handle.delete()


async def test_cron_spec_steps_lists_and_cron_tz(client: Client, new_id) -> None:
    handle, created = await create_paused(
        client,
        new_id,
        ScheduleSpec(cron_expressions=["CRON_TZ=Europe/Berlin */15 3 1,15 * *", "CRON_TZ=Europe/Berlin 30 8 * * *"]),
    )
    desc = await handle.describe()
    # Both crons name the same time zone, which moves into timezone_name (a cron without
    # CRON_TZ next to one with it is "conflicting timezone names", see below).
    expected = ProtoScheduleSpec(
        structured_calendar=[
            StructuredCalendarSpec(
                second=[r(0)],
                minute=[r(0, 59, 15)],
                hour=[r(3)],
                day_of_month=[r(1), r(15)],
                month=[r(1, 12)],
                day_of_week=[r(0, 6)],
            ),
            StructuredCalendarSpec(
                second=[r(0)],
                minute=[r(30)],
                hour=[r(8)],
                day_of_month=[r(1, 31)],
                month=[r(1, 12)],
                day_of_week=[r(0, 6)],
            ),
        ],
        timezone_name="Europe/Berlin",
    )
    assert spec_text(desc.raw_description.schedule.spec) == spec_text(expected)
    berlin = ZoneInfo("Europe/Berlin")
    assert_times(
        desc.info.next_action_times,
        created,
        lambda after: expected_calendar_times(
            after,
            10,
            berlin,
            lambda t: (t.day in (1, 15) and t.hour == 3 and t.minute % 15 == 0) or (t.hour, t.minute) == (8, 30),
        ),
    )
    await handle.delete()


async def test_calendar_spec_in_time_zone(client: Client, new_id) -> None:
    calendar = ScheduleCalendarSpec(
        hour=(ScheduleRange(9),),
        minute=(ScheduleRange(30),),
        day_of_week=(ScheduleRange(1, 5),),
        comment="weekdays 9:30",
    )
    handle, created = await create_paused(
        client, new_id, ScheduleSpec(calendars=[calendar], time_zone_name="America/New_York")
    )
    desc = await handle.describe()
    expected = ProtoScheduleSpec(
        structured_calendar=[
            StructuredCalendarSpec(
                second=[r(0)],
                minute=[r(30)],
                hour=[r(9)],
                day_of_month=[r(1, 31)],
                month=[r(1, 12)],
                day_of_week=[r(1, 5)],
                comment="weekdays 9:30",
            )
        ],
        timezone_name="America/New_York",
    )
    assert spec_text(desc.raw_description.schedule.spec) == spec_text(expected)
    assert desc.schedule.spec.calendars == [calendar]
    assert desc.schedule.spec.time_zone_name == "America/New_York"
    assert_times(
        desc.info.next_action_times,
        created,
        lambda after: expected_calendar_times(
            after, 10, ZoneInfo("America/New_York"), lambda t: t.weekday() < 5 and (t.hour, t.minute) == (9, 30)
        ),
    )
    await handle.delete()


# Every hour at :15, in 2030-01-01 only, not between 00:00 and 05:59.
BOUNDED_START = datetime(2030, 1, 1, tzinfo=UTC)
BOUNDED_END = datetime(2030, 1, 2, tzinfo=UTC)
NIGHT = ScheduleCalendarSpec(second=[ScheduleRange(0, 59)], minute=[ScheduleRange(0, 59)], hour=[ScheduleRange(0, 5)])
BOUNDED_TIMES = [BOUNDED_START + timedelta(hours=h, minutes=15) for h in range(6, 24)]


def bounded_spec(jitter: timedelta | None = None) -> ScheduleSpec:
    return ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=15))],
        skip=[NIGHT],
        start_at=BOUNDED_START,
        end_at=BOUNDED_END,
        jitter=jitter,
    )


async def test_interval_offset_skip_start_end_and_jitter(client: Client, new_id) -> None:
    handle, _ = await create_paused(client, new_id, bounded_spec())
    desc = await handle.describe()
    expected = ProtoScheduleSpec(
        interval=[{"interval": {"seconds": 3600}, "phase": {"seconds": 900}}],
        exclude_structured_calendar=[
            StructuredCalendarSpec(
                second=[r(0, 59)],
                minute=[r(0, 59)],
                hour=[r(0, 5)],
                day_of_month=[r(1, 31)],
                month=[r(1, 12)],
                day_of_week=[r(0, 6)],
            )
        ],
        start_time=ts(BOUNDED_START),
        end_time=ts(BOUNDED_END),
    )
    assert spec_text(desc.raw_description.schedule.spec) == spec_text(expected)
    hourly_at_15 = ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=15))
    assert desc.schedule.spec.intervals == [hourly_at_15]
    assert desc.schedule.spec.start_at == BOUNDED_START and desc.schedule.spec.end_at == BOUNDED_END
    assert desc.info.next_action_times == BOUNDED_TIMES[:10]
    await handle.delete()

    # With jitter: each time lies in [nominal, nominal + jitter).
    handle, _ = await create_paused(client, new_id, bounded_spec(jitter=timedelta(seconds=30)))
    desc = await handle.describe()
    expected.jitter.FromTimedelta(timedelta(seconds=30))
    assert spec_text(desc.raw_description.schedule.spec) == spec_text(expected)
    assert desc.schedule.spec.jitter == timedelta(seconds=30)
    times = desc.info.next_action_times
    assert len(times) == 10
    for t, nominal in zip(times, BOUNDED_TIMES):
        assert nominal <= t < nominal + timedelta(seconds=30), (t, nominal)
    await handle.delete()


async def test_invalid_specs_are_rejected(client: Client, new_id) -> None:
    with pytest.raises(RPCError) as info:
        await create_paused(
            client, new_id, ScheduleSpec(cron_expressions=["0 12 * * MON-FRI", "CRON_TZ=Europe/Berlin 0 1 * * *"])
        )
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert "conflicting timezone names" in info.value.message
    with pytest.raises(RPCError) as info:
        await create_paused(client, new_id, ScheduleSpec(cron_expressions=["not a cron"]))
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT


# --- ListScheduleMatchingTimes -------------------------------------------------------------------


async def matching_times(client: Client, schedule_id: str, start: datetime, end: datetime) -> list[datetime]:
    resp = await client.workflow_service.list_schedule_matching_times(
        ListScheduleMatchingTimesRequest(
            namespace=client.namespace, schedule_id=schedule_id, start_time=ts(start), end_time=ts(end)
        )
    )
    return [t.ToDatetime().replace(tzinfo=UTC) for t in resp.start_time]


async def test_list_schedule_matching_times(client: Client, new_id) -> None:
    day = datetime(2030, 3, 1, tzinfo=UTC)
    spec = ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timedelta(minutes=10), offset=timedelta(minutes=3))],
        calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(12)], minute=[ScheduleRange(5)])],
        skip=[ScheduleCalendarSpec(hour=[ScheduleRange(12)], minute=[ScheduleRange(33)])],
    )
    handle, _ = await create_paused(client, new_id, spec)
    at = lambda h, m: day.replace(hour=h, minute=m)  # noqa: E731
    # The reference server excludes the start of the range and includes its end.
    assert await matching_times(client, handle.id, at(11, 53), at(12, 43)) == [
        at(12, 3),
        at(12, 5),
        at(12, 13),
        at(12, 23),
        at(12, 43),
    ]
    assert await matching_times(client, handle.id, at(11, 52), at(12, 42)) == [
        at(11, 53),
        at(12, 3),
        at(12, 5),
        at(12, 13),
        at(12, 23),
    ]
    assert await matching_times(client, handle.id, at(12, 33), at(12, 33)) == []
    await handle.delete()

    # start_at, end_at and skip bound the matching times; the empty night yields nothing.
    handle, _ = await create_paused(client, new_id, bounded_spec())
    wide = await matching_times(client, handle.id, BOUNDED_START - timedelta(days=1), BOUNDED_END + timedelta(days=1))
    assert wide == BOUNDED_TIMES
    assert await matching_times(client, handle.id, BOUNDED_START, BOUNDED_START + timedelta(hours=6)) == []
    await handle.delete()


# --- update --------------------------------------------------------------------------------------


async def test_update_changes_interval_and_input(client: Client, task_queue: str, new_id) -> None:
    sid, aid = new_id("sched-update"), new_id("update")
    async with schedule_worker(client, task_queue):
        handle = await client.create_schedule(
            sid,
            Schedule(
                action=start_action(cs.ScheduledEchoWorkflow.run, "before", aid, task_queue),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                state=ScheduleState(note="v1"),
            ),
        )
        created = await handle.describe()
        assert created.info.last_updated_at is None
        assert [b - a for a, b in zip(created.info.next_action_times, created.info.next_action_times[1:])] == [
            timedelta(hours=1)
        ] * 9

        def updater(input: ScheduleUpdateInput) -> ScheduleUpdate:
            sched = input.description.schedule
            assert isinstance(sched.action, ScheduleActionStartWorkflow)
            action = dataclasses.replace(sched.action)
            action.args = ["after"]
            return ScheduleUpdate(
                schedule=dataclasses.replace(
                    sched,
                    action=action,
                    spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=90))]),
                    state=ScheduleState(note="v2"),
                )
            )

        await handle.update(updater)
        desc = await handle.describe()
        assert desc.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(minutes=90))]
        assert isinstance(desc.schedule.action, ScheduleActionStartWorkflow)
        assert await client.data_converter.decode(desc.schedule.action.args) == ["after"]
        assert desc.schedule.action.id == aid
        assert desc.schedule.action.workflow == "ScheduledEchoWorkflow"
        assert desc.schedule.state.note == "v2"
        assert desc.info.created_at == created.info.created_at
        assert desc.info.last_updated_at is not None and desc.info.last_updated_at >= desc.info.created_at
        period = timedelta(minutes=90)
        times = desc.info.next_action_times
        assert [b - a for a, b in zip(times, times[1:])] == [period] * 9
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        assert all((t - epoch) % period == timedelta(0) for t in times), times

        # The next action runs with the new input.
        await handle.trigger()
        desc = await describe_until(handle, lambda d: d.info.num_actions >= 1, "the triggered action")
        wid = desc.info.recent_actions[0].action.workflow_id
        assert await result_of(client.get_workflow_handle(wid).result()) == f"{wid}:after"
        await handle.delete()


# --- describe and list, field by field ----------------------------------------------------------

# DescribeSchedule of a fresh paused schedule as the reference server returns it, without the
# times (future_action_times, create_time) and the opaque conflict token: the defaults it fills in
# (task queue kind, overlap policy, one-year catchup window), the memo, and no search attributes.
EXPECTED_DESCRIBE = """schedule {
  spec {
    interval {
      interval {
        seconds: 3600
      }
    }
  }
  action {
    start_workflow {
      workflow_id: "%(action_id)s"
      workflow_type {
        name: "ScheduledEchoWorkflow"
      }
      task_queue {
        name: "tq-never-polled"
        kind: TASK_QUEUE_KIND_NORMAL
      }
      input {
        payloads {
          metadata {
            key: "encoding"
            value: "json/plain"
          }
          data: "\\"d\\""
        }
      }
      priority {
      }
    }
  }
  policies {
    overlap_policy: SCHEDULE_OVERLAP_POLICY_SKIP
    catchup_window {
      seconds: 31536000
    }
  }
  state {
    notes: "n"
    paused: true
  }
}
info {
}
memo {
  fields {
    key: "m"
    value {
      metadata {
        key: "encoding"
        value: "json/plain"
      }
      data: "1"
    }
  }
}
"""

# The ListSchedules entry of the same schedule, without its future_action_times.
EXPECTED_LIST_ENTRY = """schedule_id: "%(schedule_id)s"
memo {
  fields {
    key: "m"
    value {
      metadata {
        key: "encoding"
        value: "json/plain"
      }
      data: "1"
    }
  }
}
info {
  spec {
    interval {
      interval {
        seconds: 3600
      }
    }
  }
  workflow_type {
    name: "ScheduledEchoWorkflow"
  }
  notes: "n"
  paused: true
}
"""


async def test_describe_and_list_entry_field_by_field(client: Client, new_id) -> None:
    sid, aid = new_id("sched-raw"), new_id("raw")
    handle = await client.create_schedule(
        sid,
        Schedule(
            action=start_action(cs.ScheduledEchoWorkflow.run, "d", aid, "tq-never-polled"),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            state=ScheduleState(paused=True, note="n"),
        ),
        memo={"m": 1},
    )
    desc = await handle.describe()
    raw = type(desc.raw_description)()
    raw.CopyFrom(desc.raw_description)
    future = list(raw.info.future_action_times)
    assert len(future) == 10
    assert raw.info.HasField("create_time")
    raw.info.ClearField("future_action_times")
    raw.info.ClearField("create_time")
    raw.ClearField("conflict_token")
    assert text_format.MessageToString(raw) == EXPECTED_DESCRIBE % {"action_id": aid}
    assert desc.schedule.policy.catchup_window == timedelta(days=365)
    assert len(desc.typed_search_attributes) == 0, desc.typed_search_attributes
    assert await desc.memo() == {"m": 1}

    entries = await eventually(
        lambda: listed(client, sid), lambda ls: len(ls) == 1, timeout=20, interval=0.3, what="schedule listed"
    )
    entry = type(entries[0].raw_entry)()
    entry.CopyFrom(entries[0].raw_entry)
    # The list entry carries the first 5 future action times.
    assert list(entry.info.future_action_times) == future[:5]
    entry.info.ClearField("future_action_times")
    assert text_format.MessageToString(entry) == EXPECTED_LIST_ENTRY % {"schedule_id": sid}
    assert len(entries[0].typed_search_attributes) == 0
    await handle.delete()


# --- errors --------------------------------------------------------------------------------------


async def test_duplicate_create_and_missing_schedule(client: Client, new_id) -> None:
    handle, _ = await create_paused(client, new_id, ONE_SECOND)
    with pytest.raises(ScheduleAlreadyRunningError):
        await client.create_schedule(
            handle.id,
            Schedule(
                action=start_action(cs.ScheduledEchoWorkflow.run, "dup", new_id("dup"), "tq-never-polled"),
                spec=ONE_SECOND,
                state=ScheduleState(paused=True),
            ),
        )
    # The first schedule is unchanged by the failed create.
    desc = await handle.describe()
    assert await client.data_converter.decode(desc.schedule.action.args) == ["s"]
    await handle.delete()

    for missing in (handle, client.get_schedule_handle(new_id("never-created"))):
        for op in (missing.describe, missing.delete, missing.trigger, missing.pause):
            with pytest.raises(RPCError) as info:
                await op()
            assert info.value.status == RPCStatusCode.NOT_FOUND, (op.__name__, info.value)
    with pytest.raises(RPCError) as info:
        await matching_times(client, new_id("never-created"), BOUNDED_START, BOUNDED_END)
    assert info.value.status == RPCStatusCode.NOT_FOUND


# --- list ----------------------------------------------------------------------------------------


async def listed(client: Client, schedule_id: str):
    return [s async for s in await client.list_schedules() if s.id == schedule_id]


async def test_list_schedules_then_delete(client: Client, new_id) -> None:
    handle, _ = await create_paused(
        client, new_id, ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))])
    )
    await handle.pause(note="listed note")
    found = await eventually(
        lambda: listed(client, handle.id),
        lambda ls: len(ls) == 1 and ls[0].schedule is not None and ls[0].schedule.state.note == "listed note",
        timeout=20,
        interval=0.3,
        what="schedule in list_schedules",
    )
    entry = found[0]
    assert entry.schedule is not None and entry.info is not None
    assert entry.schedule.action.workflow == "ScheduledEchoWorkflow"  # type: ignore[attr-defined]
    assert entry.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(hours=1))]
    assert entry.schedule.state.paused
    desc = await handle.describe()
    assert entry.info.next_action_times
    assert entry.info.next_action_times == desc.info.next_action_times[: len(entry.info.next_action_times)]
    assert entry.info.recent_actions == []

    await handle.delete()
    await eventually(lambda: listed(client, handle.id), lambda ls: ls == [], timeout=20, interval=0.3, what="gone")
    with pytest.raises(RPCError) as info:
        await handle.describe()
    assert info.value.status == RPCStatusCode.NOT_FOUND


# --- pause on failure ----------------------------------------------------------------------------


async def test_pause_on_failure(client: Client, task_queue: str, new_id) -> None:
    sid, aid = new_id("sched-fail"), new_id("fail")
    async with schedule_worker(client, task_queue):
        handle = await client.create_schedule(
            sid,
            Schedule(
                action=start_action(cs.ScheduledFailingWorkflow.run, "x", aid, task_queue),
                spec=ONE_SECOND,
                policy=SchedulePolicy(pause_on_failure=True),
            ),
        )
        assert (await handle.describe()).schedule.policy.pause_on_failure
        desc = await describe_until(handle, lambda d: d.schedule.state.paused, "paused after the failure")
        assert desc.info.num_actions >= 1
        failed = desc.info.recent_actions[0].action.workflow_id
        status = (await client.get_workflow_handle(failed).describe()).status
        assert status == WorkflowExecutionStatus.FAILED
        assert desc.raw_description.info.recent_actions[0].start_workflow_status == WorkflowExecutionStatus.FAILED.value
        assert desc.schedule.state.note == f"paused due to workflow failure: {failed}: scheduled failure x"
        # Paused: no more actions while nominal times pass.
        count = desc.info.num_actions
        desc = await wait_nominal_times_pass(handle, 2.5, "nominal times to pass after the pause")
        assert desc.info.num_actions == count
        assert desc.schedule.state.paused
        await handle.delete()

