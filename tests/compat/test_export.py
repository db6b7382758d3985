"""`uhrwerk workflow export` (handbook 13.8, replay tests in CI): the exported history files replay
with the Python SDK's Replayer, and they are what `temporal workflow show --output json` prints.

`test_show_json_replays` runs on every server and pins the format the export must match: the CLI's
JSON, read by `WorkflowHistory.from_json`, replays with the same code and fails with reordered code.
`test_export_replays` runs the uhrwerk binary's export command, so it is skipped with
--reference-server.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

import compat_export as ce
from compat_server import temporal_cli, uhrwerk_binary
from compat_util import eventually, make_worker, result_of


async def _run(program: str, *args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    proc = await asyncio.create_subprocess_exec(
        program,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(), err.decode()


async def _show_json(server, workflow_id: str, run_id: str) -> dict[str, Any]:
    code, out, err = await _run(
        str(temporal_cli()),
        "workflow",
        "show",
        "-w",
        workflow_id,
        "-r",
        run_id,
        "--address",
        server.address,
        "--namespace",
        server.namespace,
        "-o",
        "json",
    )
    assert code == 0, err
    return json.loads(out)


async def _run_orders(client: Client, task_queue: str, new_id, count: int) -> list[WorkflowHandle]:
    """Runs `count` ExportOrderWorkflows to completion, each approved by a signal."""
    handles = []
    async with make_worker(client, task_queue, workflows=[ce.ExportOrderWorkflow], activities=[ce.export_step]):
        for i in range(count):
            handle = await client.start_workflow(
                ce.ExportOrderWorkflow.run, f"order-{i}", id=new_id("export"), task_queue=task_queue
            )
            await handle.signal(ce.ExportOrderWorkflow.approve, f"approver-{i}")
            handles.append(handle)
        for i, handle in enumerate(handles):
            result = await result_of(handle.result())
            assert result == f"done: reserve order-{i}; done: charge order-{i}; approved by approver-{i}"
    return handles


async def _iterate(histories: Iterable[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


async def _assert_replays(histories: list[WorkflowHistory]) -> None:
    """Same code replays every history; the reordered code fails every one with a nondeterminism error."""
    ok = await Replayer(workflows=[ce.ExportOrderWorkflow]).replay_workflows(
        _iterate(histories), raise_on_replay_failure=False
    )
    assert dict(ok.replay_failures) == {}
    bad = await Replayer(workflows=[ce.ExportOrderWorkflowReordered]).replay_workflows(
        _iterate(histories), raise_on_replay_failure=False
    )
    assert set(bad.replay_failures) == {h.run_id for h in histories}
    for run_id, failure in bad.replay_failures.items():
        assert isinstance(failure, NondeterminismError), f"run {run_id}: {failure!r}"


def _event_ids_and_types(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["eventId"], e["eventType"]) for e in doc["events"]]


def _missing(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` lacks or differs from what `expected` holds (extra keys in `actual` are fine:
    the export may know newer proto fields than the CLI)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: missing")
            else:
                out += _missing(value, actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items instead of {len(expected)}"]
        pairs = enumerate(zip(expected, actual, strict=True))
        return [m for i, (e, a) in pairs for m in _missing(e, a, f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: {actual!r} instead of {expected!r}"]


async def test_show_json_replays(client: Client, server, task_queue: str, new_id) -> None:
    """The oracle of the export format: the CLI's history JSON replays with the SDK's Replayer."""
    handles = await _run_orders(client, task_queue, new_id, 2)
    histories = []
    for handle in handles:
        doc = await _show_json(server, handle.id, handle.result_run_id or "")
        assert doc["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
        types = {e["eventType"] for e in doc["events"]}
        assert {"EVENT_TYPE_TIMER_FIRED", "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"} <= types
        assert [int(i) for i, _ in _event_ids_and_types(doc)] == list(range(1, len(doc["events"]) + 1))
        history = WorkflowHistory.from_json(handle.id, doc)
        assert history.run_id == handle.result_run_id
        histories.append(history)
    await _assert_replays(histories)


async def test_export_replays(
    request: pytest.FixtureRequest, client: Client, server, task_queue: str, new_id, test_dir: Path
) -> None:
    if request.config.getoption("--reference-server"):
        pytest.skip("`uhrwerk workflow export` is Uhrwerk's command; its format oracle is test_show_json_replays")
    binary = uhrwerk_binary()
    if binary is None or not binary.exists():
        if request.config.getoption("--server"):
            pytest.skip("uhrwerk binary not found (set UHRWERK_BIN)")
        pytest.fail("uhrwerk binary not found: set UHRWERK_BIN or build target/debug/uhrwerk", pytrace=False)
    handles = await _run_orders(client, task_queue, new_id, 3)
    runs = {h.result_run_id: h.id for h in handles}
    query = f"WorkflowType = '{ce.EXPORT_WORKFLOW}' AND TaskQueue = '{task_queue}' AND ExecutionStatus = 'Completed'"
    await eventually(lambda: client.count_workflows(query), lambda c: c.count == 3, what="3 completed runs listed")

    out_dir = test_dir / "histories"
    conn = ["--address", server.address, "--namespace", server.namespace]
    # A page size of 2 makes the command page through both the listing and every history.
    export = [str(binary), "workflow", "export", *conn, "--query", query, "--out", str(out_dir), "--page-size", "2"]
    code, out, err = await _run(*export)
    assert code == 0, err
    assert "exported 3 of 3 run(s)" in err, err
    files = sorted(out_dir.iterdir())
    assert sorted(f.name for f in files) == sorted(f"{wid}_{rid}.json" for rid, wid in runs.items())

    histories = []
    for f in files:
        run_id = f.stem.rsplit("_", 1)[1]
        text = f.read_text()
        history = WorkflowHistory.from_json(runs[run_id], text)
        assert history.run_id == run_id
        histories.append(history)
        # The export is what `temporal workflow show --output json` prints for the run.
        shown = await _show_json(server, runs[run_id], run_id)
        exported = json.loads(text)
        assert _event_ids_and_types(exported) == _event_ids_and_types(shown)
        assert _missing(shown, exported) == []
    await _assert_replays(histories)

    # Files are not replaced without --overwrite: that run fails (exit 1) and is reported.
    code, _, err = await _run(*export, "--limit", "1")
    assert code == 1, err
    assert "already exists" in err and "1 run(s) could not be exported" in err, err
    code, _, err = await _run(*export, "--overwrite")
    assert code == 0, err
    assert len(list(out_dir.iterdir())) == 3

    # A query the server rejects is a usage error (exit 2), before anything is written.
    rejected = ["--query", "Nope ===", "--out", str(test_dir / "x")]
    code, _, err = await _run(str(binary), "workflow", "export", *conn, *rejected)
    assert code == 2, err
    assert "cannot list the runs" in err, err
    assert not (test_dir / "x").exists()
