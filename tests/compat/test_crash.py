"""Crash safety: kill -9 the server twice while workflows run, restart it on the same db file.

Needs its own server process, so it is skipped with --server. Validate it
against the real dev server with --reference-server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus

import compat_workflows as cw
from compat_util import event_types, events_of, eventually, make_worker

WORKFLOWS = 50
STEPS = 6
KILLS = 2


def read_side_effects(path: Path) -> list[tuple[str, int, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        wid, step, attempt = line.split(",")
        rows.append((wid, int(step), int(attempt)))
    return rows


async def wait_for_lines(path: Path, at_least: int, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while len(read_side_effects(path)) < at_least:
        assert time.monotonic() < deadline, f"no progress: fewer than {at_least} side effects after {deadline_s}s"
        await asyncio.sleep(0.05)


async def wait_until_answering(client: Client, deadline_s: float) -> None:
    """The old client object must reconnect on its own once the server is back."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            await asyncio.wait_for(client.workflow_service.get_system_info(GetSystemInfoRequest()), 5)
            return
        except Exception:
            assert time.monotonic() < deadline, "client did not reconnect to the restarted server"
            await asyncio.sleep(0.2)


@pytest.mark.needs_managed_server
@pytest.mark.timeout(240)
async def test_kill9_twice_loses_nothing(server_factory, test_dir: Path, task_queue: str, new_id) -> None:
    srv = server_factory("crash")
    srv.start()
    client = await srv.wait_ready()
    effects = test_dir / "side_effects.csv"
    ids = [new_id(f"crash{i}") for i in range(WORKFLOWS)]
    # Pre-kill snapshots: (line count at the kill, completed (wid, step) pairs proven acknowledged).
    snapshots: list[tuple[int, set[tuple[str, int]]]] = []

    async with make_worker(client, task_queue, max_concurrent_activities=10):
        handles = []
        for wid in ids:
            handles.append(
                await client.start_workflow(
                    cw.CrashWorkflow.run,
                    cw.CrashInput(path=str(effects), steps=STEPS, delay_ms=100),
                    id=wid,
                    task_queue=task_queue,
                )
            )
        # Every start was acknowledged with a run id.
        assert all(h.result_run_id for h in handles)

        for _kill in range(KILLS):
            before = len(read_side_effects(effects))
            await wait_for_lines(effects, before + 30, deadline_s=60)
            rows = read_side_effects(effects)
            assert len({(w, s) for w, s, _ in rows}) < WORKFLOWS * STEPS, "work finished before the kill"
            srv.kill9()
            seen = {(w, s) for w, s, _ in rows}
            # If step k+1 has started, the server had recorded step k's completion.
            acknowledged = {(w, s) for (w, s) in seen if (w, s + 1) in seen}
            snapshots.append((len(rows), acknowledged))
            srv.restart()
            await srv.wait_ready()
            await wait_until_answering(client, deadline_s=30)

        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 150)

    expected = [f"{wid}:" + "-".join(f"s{s}" for s in range(STEPS)) for wid in ids]
    assert results == expected

    rows = read_side_effects(effects)
    counts = Counter((w, s) for w, s, _ in rows)
    for wid in ids:
        for step in range(STEPS):
            assert counts[(wid, step)] >= 1, f"{wid} step {step} never ran"
    # Nothing acknowledged is lost: a step whose successor had started before a
    # kill must never run again after that kill.
    for n_before, acknowledged in snapshots:
        rerun = [(w, s, a) for (w, s, a) in rows[n_before:] if (w, s) in acknowledged]
        assert not rerun, f"acknowledged activities ran again after a restart: {rerun[:5]}"
    # At-least-once activities: only work in flight at a kill may repeat.
    assert max(counts.values()) <= 1 + KILLS, counts.most_common(3)

    for wid in ids:
        handle = client.get_workflow_handle(wid)
        history = await handle.fetch_history()
        types = event_types(history)
        # Each workflow produced its final result exactly once, each step completed once.
        assert types.count("WORKFLOW_EXECUTION_COMPLETED") == 1
        assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"
        assert types.count("ACTIVITY_TASK_COMPLETED") == STEPS
        assert [e.event_id for e in history.events] == list(range(1, len(history.events) + 1))
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.COMPLETED
        assert desc.run_id == handles[ids.index(wid)].result_run_id

    # Exactly one run per workflow id.
    runs = await eventually(
        lambda: client.count_workflows(f"TaskQueue = '{task_queue}'"),
        lambda c: c.count == WORKFLOWS,
        what="visibility count after restarts",
        timeout=30,
    )
    assert runs.count == WORKFLOWS

    code = srv.terminate()
    assert code == 0, f"server exited with {code} after SIGTERM"


# --- timers and signals in flight ------------------------------------------------

TS_WORKFLOWS = 20
TS_STEPS = 5
# Kill once this many steps (of TS_WORKFLOWS * TS_STEPS) have been observed as processed.
TS_KILL_AT = (20, 55)


async def retrying(call, deadline_s: float, what: str):
    """Calls `call()` until it succeeds; returns (result, attempts). Each attempt is a new RPC."""
    deadline = time.monotonic() + deadline_s
    attempts = 0
    while True:
        attempts += 1
        try:
            return await asyncio.wait_for(call(), 10), attempts
        except Exception as e:  # noqa: BLE001 - the server may be down or just restarted
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} kept failing for {deadline_s}s: {e!r}") from e
            await asyncio.sleep(0.2)


@pytest.mark.needs_managed_server
@pytest.mark.timeout(120)
async def test_kill9_twice_with_timers_and_signals_in_flight(server_factory, task_queue: str, new_id) -> None:
    srv = server_factory("crash-ts")
    srv.start()
    client = await srv.wait_ready()
    ids = [new_id(f"crash-ts{i}") for i in range(TS_WORKFLOWS)]
    # Signal attempts per (workflow, value), and the values whose signal call was acknowledged.
    attempts: dict[tuple[str, int], int] = {}
    acknowledged: set[tuple[str, int]] = set()
    progress = Counter()  # observed processed steps per workflow
    reached = asyncio.Event()
    threshold = [TS_KILL_AT[0]]

    def observe(wid: str, n: int) -> None:
        progress[wid] = max(progress[wid], n)
        if sum(progress.values()) >= threshold[0]:
            reached.set()

    async def drive(handle) -> None:
        """Sends signal k once the workflow has processed k steps; retries across restarts."""
        for k in range(TS_STEPS):
            _, n = await retrying(
                lambda k=k: handle.signal(cw.TimerSignalCrashWorkflow.step_done, k), 60, f"signal {k}"
            )
            attempts[(handle.id, k)] = n
            acknowledged.add((handle.id, k))
            # Wait for the step to be processed before the next signal, so that signals and
            # timers (the next step's sleep) stay in flight throughout the run.
            async def processed() -> int:
                n, _ = await retrying(lambda: handle.query(cw.TimerSignalCrashWorkflow.progress), 60, "query")
                return n

            done = await eventually(
                processed, lambda n, k=k: n > k, timeout=60, interval=0.1, what=f"{handle.id} step {k}"
            )
            observe(handle.id, done)

    async with make_worker(client, task_queue, workflows=[cw.TimerSignalCrashWorkflow], activities=[]):
        handles = [
            await client.start_workflow(
                cw.TimerSignalCrashWorkflow.run, cw.TimerSignalInput(steps=TS_STEPS), id=wid, task_queue=task_queue
            )
            for wid in ids
        ]
        assert all(h.result_run_id for h in handles)
        drivers = asyncio.gather(*(drive(h) for h in handles))
        kills_at = []
        for at in TS_KILL_AT:
            threshold[0] = at
            reached.clear()
            if sum(progress.values()) >= at:
                reached.set()
            await asyncio.wait_for(reached.wait(), 40)
            seen = sum(progress.values())
            assert seen < TS_WORKFLOWS * TS_STEPS, "work finished before the kill"
            srv.kill9()
            kills_at.append(seen)
            srv.restart()
            await srv.wait_ready()
            await wait_until_answering(client, deadline_s=30)
        await asyncio.wait_for(drivers, 60)
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 30)

    for wid, res in zip(ids, results):
        assert res.workflow_id == wid
        # Each signal value was processed exactly once, in order.
        assert res.processed == list(range(TS_STEPS)), res
        # A value reaches the workflow more than once only if the test had to re-send it.
        deliveries = Counter(res.deliveries)
        for k in range(TS_STEPS):
            assert 1 <= deliveries[k] <= attempts[(wid, k)], (wid, k, deliveries, attempts[(wid, k)])

    total_resends = sum(n - 1 for n in attempts.values())
    for wid, handle, res in zip(ids, handles, results):
        history = await handle.fetch_history()
        types = event_types(history)
        assert types.count("WORKFLOW_EXECUTION_COMPLETED") == 1 and types[-1] == "WORKFLOW_EXECUTION_COMPLETED"
        assert [e.event_id for e in history.events] == list(range(1, len(history.events) + 1))
        # Each timer started once and fired exactly once, with the durations the workflow drew.
        started = events_of(history, "TIMER_STARTED")
        fired = events_of(history, "TIMER_FIRED")
        assert len(started) == TS_STEPS == len(fired), types
        assert sorted(e.timer_fired_event_attributes.started_event_id for e in fired) == [e.event_id for e in started]
        assert [
            e.timer_started_event_attributes.start_to_fire_timeout.ToMilliseconds() for e in started
        ] == res.slept_ms
        # Every acknowledged signal is in the history; a value appears more than once only if re-sent.
        signaled = [
            json.loads(e.workflow_execution_signaled_event_attributes.input.payloads[0].data)
            for e in events_of(history, "WORKFLOW_EXECUTION_SIGNALED")
        ]
        assert Counter(signaled) == Counter(res.deliveries), (signaled, res.deliveries)
        for k in range(TS_STEPS):
            assert (wid, k) in acknowledged and signaled.count(k) >= 1
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.COMPLETED
        assert desc.run_id == handle.result_run_id
    assert len(kills_at) == len(TS_KILL_AT)
    print(f"kills after {kills_at} processed steps; {total_resends} signal re-sends")

    runs = await eventually(
        lambda: client.count_workflows(f"TaskQueue = '{task_queue}'"),
        lambda c: c.count == TS_WORKFLOWS,
        what="visibility count after restarts",
        timeout=30,
    )
    assert runs.count == TS_WORKFLOWS

    code = srv.terminate()
    assert code == 0, f"server exited with {code} after SIGTERM"
