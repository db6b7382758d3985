"""The `temporal` CLI's visibility, operator, task-queue and schedule commands against the session server.

Each command's output (JSON where the CLI offers it) is checked as the real dev server
(temporal CLI 1.9.1, server 1.32.0) produces it; visibility reads are polled with `eventually`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import Worker

import compat_visibility as cv
from compat_server import temporal_cli
from compat_util import eventually, result_of

WORKFLOWS = [cv.VisWorkflow]


async def cli(*args: str, timeout: float = 30.0) -> tuple[int, str, str]:
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


class Cli:
    """Runs the CLI against the session server and namespace."""

    def __init__(self, server, namespace: str | None = None) -> None:
        # `operator namespace` commands name their namespace with -n, which --namespace would override.
        self.conn = ["--address", server.address]
        if namespace:
            self.conn += ["--namespace", namespace]

    async def run(self, *args: str) -> tuple[int, str, str]:
        return await cli(*args, *self.conn)

    async def ok(self, *args: str) -> str:
        code, out, err = await self.run(*args)
        assert code == 0, f"temporal {' '.join(args)} exited {code}: {err}"
        return out

    async def json(self, *args: str) -> Any:
        return json.loads(await self.ok(*args, "-o", "json"))

    async def fails(self, *args: str) -> str:
        code, out, err = await self.run(*args)
        assert code != 0, f"temporal {' '.join(args)} succeeded: {out}"
        return err


@pytest.fixture
def t(server) -> Cli:
    return Cli(server, server.namespace)


@pytest.fixture
def t_ns(server) -> Cli:
    """For `operator namespace` commands."""
    return Cli(server)


@pytest.fixture(scope="module")
async def uw_keyword(server) -> None:
    """Registers the UwKeyword attribute through the CLI; registering it again is a no-op."""
    out = await Cli(server, server.namespace).ok(
        "operator", "search-attribute", "create", "--name", "UwKeyword", "--type", "Keyword"
    )
    assert "Search attributes have been added" in out


def payload_value(payload: dict) -> Any:
    return json.loads(base64.b64decode(payload["data"]))


def search_attribute(entity: dict, name: str) -> Any:
    return payload_value(entity["searchAttributes"]["indexedFields"][name])


def event_types(history: dict) -> list[str]:
    return [e["eventType"].removeprefix("EVENT_TYPE_") for e in history["events"]]


async def tagged_runs(client: Client, task_queue: str, tag: str) -> list[str]:
    """Three runs tagged UwKeyword = tag: two completed (ids ...-0, ...-1) and one running (...-2)."""
    attrs = TypedSearchAttributes([SearchAttributePair(cv.UW_KEYWORD, tag)])
    ids = [f"{tag}-{i}" for i in range(3)]
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        for wid in ids[:2]:
            await result_of(
                client.execute_workflow(cv.VisWorkflow.run, id=wid, task_queue=task_queue, search_attributes=attrs)
            )
        await client.start_workflow(
            cv.VisWorkflow.run, "wait", id=ids[2], task_queue="nobody-polls-" + tag, search_attributes=attrs
        )
    return ids


# --- workflow visibility commands ---------------------------------------------------------------


async def test_workflow_list_and_count(client: Client, t: Cli, uw_keyword: None, task_queue: str) -> None:
    tag = f"cli-{uuid.uuid4()}"
    ids = await tagged_runs(client, task_queue, tag)
    query = f"UwKeyword = '{tag}'"

    rows = await eventually(
        lambda: t.json("workflow", "list", "--query", query),
        lambda r: len(r) == 3 and r[-1]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED",
        what="tagged runs in `workflow list`",
    )
    # Newest first: the open run, then the completed ones by close time.
    assert [r["execution"]["workflowId"] for r in rows] == [ids[2], ids[1], ids[0]]
    assert [r["status"] for r in rows] == [
        "WORKFLOW_EXECUTION_STATUS_RUNNING",
        "WORKFLOW_EXECUTION_STATUS_COMPLETED",
        "WORKFLOW_EXECUTION_STATUS_COMPLETED",
    ]
    assert all(r["type"]["name"] == "VisWorkflow" for r in rows)
    assert all(search_attribute(r, "UwKeyword") == tag for r in rows)
    assert rows[1]["taskQueue"] == task_queue and rows[1]["historyLength"] == "5"
    assert "closeTime" in rows[1] and "closeTime" not in rows[0]

    text = await t.ok("workflow", "list", "--query", query)
    lines = {wid: next(line for line in text.splitlines() if wid in line) for wid in ids}
    assert "Running" in lines[ids[2]] and "Completed" in lines[ids[0]]

    assert await t.json("workflow", "count", "--query", query) == {"count": "3"}
    assert (await t.ok("workflow", "count", "--query", query)).strip() == "Total: 3"
    running = await t.json("workflow", "count", "--query", f"{query} AND ExecutionStatus = 'Running'")
    assert running == {"count": "1"}

    grouped = await t.json("workflow", "count", "--query", f"{query} GROUP BY ExecutionStatus")
    assert grouped["count"] == "3"
    assert sorted((g["groupValues"], g["count"]) for g in grouped["groups"]) == [
        (["Completed"], "2"),
        (["Running"], "1"),
    ]
    text = await t.ok("workflow", "count", "--query", f"{query} GROUP BY ExecutionStatus")
    assert text.splitlines()[0] == "Total: 3"
    assert sorted(text.splitlines()[1:]) == [
        "Group total: 1, values: Running",
        "Group total: 2, values: Completed",
    ]

    err = await t.fails("workflow", "list", "--query", "NoSuchAttr = 'x'")
    assert "invalid query: invalid search attribute: NoSuchAttr" in err
    await client.get_workflow_handle(ids[2]).terminate()


async def test_workflow_describe_and_show(client: Client, t: Cli, uw_keyword: None, task_queue: str) -> None:
    tag = f"cli-{uuid.uuid4()}"
    ids = await tagged_runs(client, task_queue, tag)
    run_id = (await client.get_workflow_handle(ids[0]).describe()).run_id

    desc = await t.json("workflow", "describe", "-w", ids[0])
    info = desc["workflowExecutionInfo"]
    assert info["execution"] == {"workflowId": ids[0], "runId": run_id}
    assert info["type"]["name"] == "VisWorkflow"
    assert info["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    assert info["taskQueue"] == task_queue
    assert info["historyLength"] == "5"
    assert search_attribute(info, "UwKeyword") == tag
    assert desc["result"] == "now"
    assert desc["closeEvent"]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    assert desc["executionConfig"]["taskQueue"]["name"] == task_queue

    running = await t.json("workflow", "describe", "-w", ids[2])
    assert running["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    assert "closeTime" not in running["workflowExecutionInfo"]

    history = await t.json("workflow", "show", "-w", ids[0])
    assert event_types(history) == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    assert search_attribute(started, "UwKeyword") == tag
    text = await t.ok("workflow", "show", "-w", ids[0])
    assert "WorkflowExecutionStarted" in text and "WorkflowExecutionCompleted" in text
    await client.get_workflow_handle(ids[2]).terminate()


async def test_workflow_delete(client: Client, t: Cli, new_id) -> None:
    wid = new_id("cli-delete")
    # A running run: the server terminates and deletes it.
    await client.start_workflow(cv.VisWorkflow.run, "wait", id=wid, task_queue="nobody-polls-" + wid)
    out = await t.ok("workflow", "delete", "-w", wid, "--yes")
    assert "Delete workflow succeeded" in out

    async def describe_error() -> str:
        code, _, err = await t.run("workflow", "describe", "-w", wid)
        return err if code != 0 else ""

    err = await eventually(describe_error, bool, what="deleted run not found")
    assert f"workflow not found for ID: {wid}" in err
    err = await t.fails("workflow", "delete", "-w", wid, "--yes")
    assert f"workflow not found for ID: {wid}" in err


# --- operator commands --------------------------------------------------------------------------


async def test_search_attribute_create_list_remove(t: Cli) -> None:
    name = "UwCliKeyword"
    out = await t.ok("operator", "search-attribute", "create", "--name", name, "--type", "Keyword")
    assert out.strip() == "Search attributes have been added"
    listed = await t.json("operator", "search-attribute", "list")
    assert listed["customAttributes"][name] == "INDEXED_VALUE_TYPE_KEYWORD"
    assert listed["systemAttributes"]["WorkflowId"] == "INDEXED_VALUE_TYPE_KEYWORD"
    assert listed["systemAttributes"]["ExecutionStatus"] == "INDEXED_VALUE_TYPE_KEYWORD"
    assert name not in listed["systemAttributes"]
    text = await t.ok("operator", "search-attribute", "list")
    assert [line.split() for line in text.splitlines() if name in line] == [[name, "Keyword"]]
    # The attribute is usable in queries right away.
    assert await t.json("workflow", "list", "--query", f"{name} = 'nothing'") == []

    err = await t.fails("operator", "search-attribute", "create", "--name", "WorkflowId", "--type", "Keyword")
    assert "Search attribute WorkflowId is reserved by system." in err

    out = await t.ok("operator", "search-attribute", "remove", "--name", name, "--yes")
    assert "Search attributes have been removed" in out
    listed = await t.json("operator", "search-attribute", "list")
    assert name not in listed["customAttributes"]
    err = await t.fails("workflow", "list", "--query", f"{name} = 'nothing'")
    assert f"invalid query: invalid search attribute: {name}" in err


async def test_namespace_list_and_describe(t_ns: Cli, server) -> None:
    namespaces = await t_ns.json("operator", "namespace", "list")
    by_name = {ns["namespaceInfo"]["name"]: ns for ns in namespaces}
    assert {"default", server.namespace} <= set(by_name)
    assert by_name["default"]["namespaceInfo"]["state"] == "NAMESPACE_STATE_REGISTERED"

    desc = await t_ns.json("operator", "namespace", "describe", "-n", "default")
    assert desc["namespaceInfo"]["name"] == "default"
    assert desc["namespaceInfo"]["state"] == "NAMESPACE_STATE_REGISTERED"
    assert desc["namespaceInfo"]["id"] == by_name["default"]["namespaceInfo"]["id"]
    assert desc["config"]["workflowExecutionRetentionTtl"] == "86400s"
    assert desc["replicationConfig"]["activeClusterName"] == "active"

    err = await t_ns.fails("operator", "namespace", "describe", "-n", "no-such-namespace")
    assert "Namespace no-such-namespace is not found." in err


async def test_namespace_create(t_ns: Cli) -> None:
    name = f"cli-ns-{uuid.uuid4().hex[:12]}"
    out = await t_ns.ok("operator", "namespace", "create", "-n", name)
    assert out.strip() == f"Namespace {name} successfully registered."
    desc = await t_ns.json("operator", "namespace", "describe", "-n", name)
    assert desc["namespaceInfo"]["name"] == name
    assert desc["namespaceInfo"]["state"] == "NAMESPACE_STATE_REGISTERED"
    # The CLI's default retention is 72h.
    assert desc["config"]["workflowExecutionRetentionTtl"] == "259200s"
    names = [ns["namespaceInfo"]["name"] for ns in await t_ns.json("operator", "namespace", "list")]
    assert name in names
    # The new namespace serves visibility requests.
    assert await t_ns.json("workflow", "list", "--namespace", name) == []

    err = await t_ns.fails("operator", "namespace", "create", "-n", name)
    assert f'unable to create namespace {name}: Namespace "{name}" already exists' in err

    other = f"cli-ns-{uuid.uuid4().hex[:12]}"
    await t_ns.ok("operator", "namespace", "create", "-n", other, "--retention", "48h", "--description", "two days")
    desc = await t_ns.json("operator", "namespace", "describe", "-n", other)
    assert desc["config"]["workflowExecutionRetentionTtl"] == "172800s"
    assert desc["namespaceInfo"]["description"] == "two days"


async def test_namespace_update(t_ns: Cli) -> None:
    name = f"cli-ns-{uuid.uuid4().hex[:12]}"
    await t_ns.ok("operator", "namespace", "create", "-n", name, "--retention", "48h")
    out = await t_ns.ok(
        "operator", "namespace", "update", "-n", name, "--retention", "96h", "--description", "four days", "--data", "team=orders"
    )
    assert out.strip() == f"Namespace {name} update succeeded."
    desc = await t_ns.json("operator", "namespace", "describe", "-n", name)
    assert desc["config"]["workflowExecutionRetentionTtl"] == "345600s"
    assert desc["namespaceInfo"]["description"] == "four days"
    assert desc["namespaceInfo"]["data"] == {"team": "orders"}
    assert desc["namespaceInfo"]["supportsSchedules"] is True


async def test_cluster_health(t: Cli) -> None:
    assert await t.json("operator", "cluster", "health") == {"status": "SERVING"}
    assert (await t.ok("operator", "cluster", "health")).strip() == "SERVING"


async def test_cluster_describe(t: Cli) -> None:
    info = await t.json("operator", "cluster", "describe")
    assert info["serverVersion"]
    assert info["clusterId"]
    # The cluster namespaces name as their active cluster.
    assert info["clusterName"] == "active"
    assert info["historyShardCount"] >= 1
    assert "temporal-cli" in info["supportedClients"]


async def test_cluster_system(t: Cli) -> None:
    info = await t.json("operator", "cluster", "system")
    assert info["serverVersion"]
    caps = info["capabilities"]
    for cap in ("supportsSchedules", "countGroupByExecutionStatus", "upsertMemo", "signalAndQueryHeader"):
        assert caps.get(cap) is True, cap


async def test_task_queue_describe(client: Client, t: Cli, task_queue: str) -> None:
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        await result_of(client.execute_workflow(cv.VisWorkflow.run, id=f"tq-{uuid.uuid4()}", task_queue=task_queue))
        desc = await eventually(
            lambda: t.json("task-queue", "describe", "--task-queue", task_queue),
            lambda d: any(p["taskQueueType"] == "workflow" for p in d.get("pollers") or []),
            what="workflow poller listed",
        )
    pollers = [p for p in desc["pollers"] if p["taskQueueType"] == "workflow"]
    assert [p["identity"] for p in pollers] == [client.identity]
    assert "lastAccessTime" in pollers[0]
    stats = {s["taskQueueType"]: s for s in desc["stats"]}
    assert set(stats) == {"workflow", "activity"}
    assert stats["workflow"]["approximateBacklogCount"] == 0


# --- schedule commands --------------------------------------------------------------------------


class Schedule:
    def __init__(self, t: Cli, task_queue: str) -> None:
        self.t = t
        self.id = f"cli-sched-{uuid.uuid4().hex[:12]}"
        self.workflow_id = f"wf-{self.id}"
        self.task_queue = task_queue

    def action(self, workflow_type: str = "VisWorkflow") -> list[str]:
        return ["--workflow-id", self.workflow_id, "--type", workflow_type, "--task-queue", self.task_queue]

    async def create(self, *extra: str) -> str:
        return await self.t.ok(
            "schedule", "create", "--schedule-id", self.id, "--interval", "1h", *self.action(), *extra
        )

    async def describe(self) -> dict:
        return await self.t.json("schedule", "describe", "--schedule-id", self.id)

    async def listed(self) -> dict | None:
        return next((s for s in await self.t.json("schedule", "list") if s["scheduleId"] == self.id), None)

    async def delete(self) -> None:
        await self.t.ok("schedule", "delete", "--schedule-id", self.id)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_every(times: list[str], step: timedelta) -> None:
    parsed = [parse_time(v) for v in times]
    assert parsed[0].minute == parsed[0].second == 0, times
    assert all(b - a == step for a, b in zip(parsed, parsed[1:], strict=False)), times


async def test_schedule_create_and_describe(t: Cli, task_queue: str) -> None:
    s = Schedule(t, task_queue)
    await s.create()
    err = await t.fails("schedule", "create", "--schedule-id", s.id, "--interval", "1h", *s.action())
    assert "schedule with this ID is already registered" in err

    desc = await s.describe()
    sched = desc["schedule"]
    assert sched["spec"]["interval"] == [{"interval": "3600s", "phase": "0s"}]
    start = sched["action"]["startWorkflow"]
    assert start["workflowId"] == s.workflow_id
    assert start["workflowType"]["name"] == "VisWorkflow"
    assert start["taskQueue"]["name"] == task_queue
    assert sched["policies"]["overlapPolicy"] == "SCHEDULE_OVERLAP_POLICY_SKIP"
    # The server fills in the default catch-up window of one year.
    assert sched["policies"]["catchupWindow"] == "31536000s"
    assert not sched["state"].get("paused")
    assert len(desc["info"]["futureActionTimes"]) == 10
    assert_every(desc["info"]["futureActionTimes"], timedelta(hours=1))
    assert "actionCount" not in desc["info"]

    text = await t.ok("schedule", "describe", "--schedule-id", s.id)
    assert "CatchupWindow     365d 0h 0m 0s" in text
    await s.delete()


async def test_schedule_list(t: Cli, task_queue: str) -> None:
    s = Schedule(t, task_queue)
    await s.create()
    desc = await s.describe()
    entry = await eventually(s.listed, lambda e: e is not None, what="schedule in `schedule list`")
    assert entry["info"]["workflowType"]["name"] == "VisWorkflow"
    assert entry["info"]["spec"]["interval"] == [{"interval": "3600s", "phase": "0s"}]
    assert entry["info"]["futureActionTimes"] == desc["info"]["futureActionTimes"][:5]
    text = await t.ok("schedule", "list")
    assert any(line.split()[:1] == [s.id] for line in text.splitlines())
    await s.delete()


# (query, whether the schedule matches, or the error the CLI prints)
SCHEDULE_QUERIES = [
    ("ScheduleId = '{id}'", True),
    ("TemporalSchedulePaused = false AND ScheduleId = '{id}'", True),
    ("TemporalSchedulePaused = true AND ScheduleId = '{id}'", False),
    ("WorkflowId = '{id}'", 'invalid query filter for schedules: cannot filter on "WorkflowId"'),
    ("WorkflowType = 'VisWorkflow'", 'invalid query filter for schedules: cannot filter on "WorkflowType"'),
    ("NoSuchAttr = 'x'", "invalid query: invalid search attribute: NoSuchAttr"),
]


@pytest.mark.parametrize(("query", "outcome"), SCHEDULE_QUERIES, ids=[q for q, _ in SCHEDULE_QUERIES])
async def test_schedule_list_query(t: Cli, task_queue: str, query: str, outcome: bool | str) -> None:
    s = Schedule(t, task_queue)
    await s.create()
    await eventually(s.listed, lambda e: e is not None, what="schedule listed")
    args = ("schedule", "list", "--query", query.format(id=s.id))
    if isinstance(outcome, str):
        assert outcome in await t.fails(*args)
    else:
        assert [e["scheduleId"] for e in await t.json(*args)] == ([s.id] if outcome else [])
    await s.delete()


async def test_schedule_toggle(t: Cli, task_queue: str) -> None:
    s = Schedule(t, task_queue)
    await s.create()
    assert await t.ok("schedule", "toggle", "--schedule-id", s.id, "--pause", "--reason", "r-pause") == ""
    state = (await s.describe())["schedule"]["state"]
    assert state == {"notes": "r-pause", "paused": True}
    await eventually(s.listed, lambda e: e is not None and e["info"].get("paused") is True, what="listed as paused")

    await t.ok("schedule", "toggle", "--schedule-id", s.id, "--unpause", "--reason", "r-unpause")
    state = (await s.describe())["schedule"]["state"]
    assert state == {"notes": "r-unpause"}
    await eventually(s.listed, lambda e: e is not None and not e["info"].get("paused"), what="listed as unpaused")
    await s.delete()


async def test_schedule_trigger(client: Client, t: Cli, task_queue: str) -> None:
    s = Schedule(t, task_queue)
    # Paused, so only the trigger starts a run; a trigger ignores the pause.
    await s.create("--paused", "--notes", "created paused")
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        assert (await t.ok("schedule", "trigger", "--schedule-id", s.id)).strip() == "Trigger request sent"
        desc = await eventually(s.describe, lambda d: d["info"].get("actionCount") == "1", what="triggered action")
        actions = desc["info"]["recentActions"]
        assert len(actions) == 1
        wid = actions[0]["startWorkflowResult"]["workflowId"]
        assert wid.startswith(s.workflow_id + "-")
        assert await result_of(client.get_workflow_handle(wid).result()) == "now"
    assert desc["schedule"]["state"] == {"notes": "created paused", "paused": True}
    rows = await eventually(
        lambda: t.json("workflow", "list", "--query", f"TemporalScheduledById = '{s.id}'"),
        lambda r: len(r) == 1,
        what="scheduled run listed by TemporalScheduledById",
    )
    assert rows[0]["execution"]["workflowId"] == wid
    await s.delete()


async def test_schedule_update(t: Cli, task_queue: str) -> None:
    s = Schedule(t, task_queue)
    await s.create()
    out = await t.ok("schedule", "update", "--schedule-id", s.id, "--interval", "2h", *s.action("OtherWorkflow"))
    assert out == ""
    desc = await s.describe()
    assert desc["schedule"]["spec"]["interval"] == [{"interval": "7200s", "phase": "0s"}]
    assert desc["schedule"]["action"]["startWorkflow"]["workflowType"]["name"] == "OtherWorkflow"
    assert_every(desc["info"]["futureActionTimes"], timedelta(hours=2))
    assert parse_time(desc["info"]["futureActionTimes"][0]).hour % 2 == 0
    assert "updateTime" in desc["info"]
    await eventually(
        s.listed,
        lambda e: e is not None and e["info"]["workflowType"]["name"] == "OtherWorkflow",
        what="update visible in `schedule list`",
    )
    await s.delete()


async def test_schedule_backfill(client: Client, t: Cli, task_queue: str) -> None:
    s = Schedule(t, task_queue)
    await s.create("--paused")
    async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS):
        out = await t.ok(
            "schedule",
            "backfill",
            "--schedule-id",
            s.id,
            "--start-time",
            "2024-01-01T00:00:00Z",
            "--end-time",
            "2024-01-01T03:00:00Z",
            "--overlap-policy",
            "AllowAll",
        )
        assert out.strip() == "Backfill request sent"
        # Both ends of the range are included, and a backfill runs while paused.
        want = [f"2024-01-01T0{h}:00:00Z" for h in range(4)]
        desc = await eventually(s.describe, lambda d: d["info"].get("actionCount") == "4", what="backfilled actions")
        actions = desc["info"]["recentActions"]
        assert [a["scheduleTime"] for a in actions] == want
        assert [a["startWorkflowResult"]["workflowId"] for a in actions] == [f"{s.workflow_id}-{w}" for w in want]
        for a in actions:
            handle = client.get_workflow_handle(a["startWorkflowResult"]["workflowId"])
            assert await result_of(handle.result()) == "now"
    await s.delete()


async def test_schedule_delete(t: Cli, task_queue: str) -> None:
    s = Schedule(t, task_queue)
    await s.create()
    await eventually(s.listed, lambda e: e is not None, what="schedule listed")
    assert (await t.ok("schedule", "delete", "--schedule-id", s.id)).strip() == "Schedule deleted"
    err = await t.fails("schedule", "describe", "--schedule-id", s.id)
    assert "schedule not found" in err
    await eventually(s.listed, lambda e: e is None, what="schedule gone from `schedule list`")
