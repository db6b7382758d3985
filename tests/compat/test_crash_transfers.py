"""Crash safety of work on other workflows: `kill -9` right after the commits that ask for it.

Three kinds of transitions ask for work on another workflow: a parent closes while its child
(TERMINATE policy) runs, a child closes while its parent waits for it, and a workflow signals
another one. The server is killed with SIGKILL as soon as the call is acknowledged, then
restarted on the same database; three rounds of each kind. Each piece of work must then be done
exactly once: the child terminated, the parent told once, the target signalled once and the
sender told once.

On Uhrwerk the test also proves that the kill hit the window it is about: before the restart it
reads the database and counts the rounds in which a transfer task of each kind was still there,
so it is not a test that passes because the work happened to finish before the kill.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from temporalio.api.command.v1 import (
    Command,
    SignalExternalWorkflowExecutionCommandAttributes,
    StartChildWorkflowExecutionCommandAttributes,
)
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType, EventType, ParentClosePolicy, TaskQueueKind
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client, WorkflowExecutionStatus

import compat_server
from compat_dispatch import RAW_WORKFLOW_TYPE, RawWorker, complete_command, ids_and_types
from compat_util import eventually

ROUNDS = 3
# uhrwerk_core::transfer::TransferKind
KINDS = {2: "notify-parent", 3: "parent-close-policy", 4: "signal"}


def start_child_command(workflow_id: str, task_queue: str) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        start_child_workflow_execution_command_attributes=StartChildWorkflowExecutionCommandAttributes(
            workflow_id=workflow_id,
            workflow_type=WorkflowType(name=RAW_WORKFLOW_TYPE),
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            parent_close_policy=ParentClosePolicy.PARENT_CLOSE_POLICY_TERMINATE,
        ),
    )


def signal_command(workflow_id: str) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
        signal_external_workflow_execution_command_attributes=SignalExternalWorkflowExecutionCommandAttributes(
            execution=WorkflowExecution(workflow_id=workflow_id), signal_name="ping"
        ),
    )


def pending_transfers(db_file: Path) -> Counter[str]:
    """The transfer tasks a killed Uhrwerk left in its database, by kind."""
    if compat_server.on_postgres():
        out = subprocess.run(
            ["psql", compat_server.postgres_database(db_file), "-Atc", "SELECT kind FROM transfer_tasks"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return Counter(KINDS.get(int(k), k) for k in out.split())
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT kind FROM transfer_tasks").fetchall()
    finally:
        conn.close()
    return Counter(KINDS.get(kind, str(kind)) for (kind,) in rows)


async def wait_until_answering(client: Client, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            await asyncio.wait_for(client.workflow_service.get_system_info(GetSystemInfoRequest()), 5)
            return
        except Exception:
            assert time.monotonic() < deadline, "client did not reconnect to the restarted server"
            await asyncio.sleep(0.2)


def count(events, event_type: int) -> int:
    return sum(1 for e in events if e.event_type == event_type)


async def start_and_poll(worker: RawWorker, workflow_id: str):
    await worker.start(workflow_id)
    task = await worker.poll_task()
    assert [t for _, t in ids_and_types(task.history.events)][-1] == "WORKFLOW_TASK_STARTED", ids_and_types(
        task.history.events
    )
    return task


async def one_round(srv, client: Client, task_queue: str, new_id, kind: str, hits: Counter[str]) -> None:
    """Sets up one kind of work, asks for it with one call and kills the server at its answer."""
    # Fresh queues each round: tasks left from an earlier round must not reach this one's polls.
    roles = ("parent", "child", "waiter", "done-child", "sender", "target")
    queues = {role: new_id(f"{task_queue}-{role}") for role in roles}
    w = {role: RawWorker(client, queue) for role, queue in queues.items()}
    ids = {role: new_id(f"xfer-{role}") for role in queues}

    if kind == "parent-close-policy":
        # A parent with a running child that its close will terminate.
        parent_task = await start_and_poll(w["parent"], ids["parent"])
        await w["parent"].complete(parent_task, [start_child_command(ids["child"], queues["child"])])
        await w["child"].complete(await w["child"].poll_task())
        parent_task = await w["parent"].poll_task()
        await w["parent"].complete(parent_task, [complete_command()])
    elif kind == "notify-parent":
        # A parent that waits for its child, and that child, completing.
        waiter_task = await start_and_poll(w["waiter"], ids["waiter"])
        await w["waiter"].complete(waiter_task, [start_child_command(ids["done-child"], queues["done-child"])])
        done_child_task = await w["done-child"].poll_task()
        await w["waiter"].complete(await w["waiter"].poll_task())
        await w["done-child"].complete(done_child_task, [complete_command()])
    else:
        # A target that waits, and a sender that signals it.
        await w["target"].complete(await start_and_poll(w["target"], ids["target"]))
        sender_task = await start_and_poll(w["sender"], ids["sender"])
        await w["sender"].complete(sender_task, [signal_command(ids["target"])])
    srv.kill9()
    if srv.kind == "uhrwerk":
        hits.update(pending_transfers(srv.db_file))
    srv.restart()
    await wait_until_answering(client)

    # Exactly once: no duplicate from carrying the work out again after the restart.
    if kind == "parent-close-policy":
        child = client.get_workflow_handle(ids["child"])
        await eventually(
            lambda: child.describe(),
            lambda d: d.status == WorkflowExecutionStatus.TERMINATED,
            what="the child terminated by its parent's close policy",
        )
        child_history = await w["child"].history(ids["child"])
        terminated = [e for e in child_history if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED]
        assert len(terminated) == 1
        assert terminated[0].workflow_execution_terminated_event_attributes.reason == "by parent close policy"
    elif kind == "notify-parent":
        waiter_history = await eventually(
            lambda: w["waiter"].history(ids["waiter"]),
            lambda events: count(events, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED) > 0,
            what="the waiting parent told that its child completed",
        )
        assert count(waiter_history, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED) == 1
    else:
        sender_history = await eventually(
            lambda: w["sender"].history(ids["sender"]),
            lambda events: count(events, EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED) > 0,
            what="the sender told that its signal was delivered",
        )
        assert count(sender_history, EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED) == 1
        target_history = await w["target"].history(ids["target"])
        assert count(target_history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) == 1


@pytest.mark.needs_managed_server
@pytest.mark.timeout(300)
async def test_kill9_right_after_work_on_other_workflows_is_committed(server_factory, task_queue: str, new_id) -> None:
    srv = server_factory("transfers")
    srv.start()
    client = await srv.wait_ready()
    hits: Counter[str] = Counter()
    for _ in range(ROUNDS):
        for kind in KINDS.values():
            await one_round(srv, client, task_queue, new_id, kind, hits)
    if srv.kind == "uhrwerk":
        # Each kind of work was still to be done at the moment of a kill at least once.
        assert set(hits) >= set(KINDS.values()), f"the kills never caught these kinds in flight: {hits}"
