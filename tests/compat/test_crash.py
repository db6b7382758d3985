"""Crash safety: kill -9 the server twice while workflows run, restart it on the same db file.

Needs its own server process, so it is skipped with --server. Validate it
against the real dev server with --reference-server.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus

import compat_workflows as cw
from compat_util import event_types, eventually, make_worker

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
