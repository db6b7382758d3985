"""`uhrwerk doctor` against a live server: one scenario per finding, each asserting the finding's
code, its severity and the doctor's exit code, and a clean workload that produces no finding.

Each scenario starts its own server (server_factory), so runs and task queues of other tests
cannot leak into the findings, and runs `uhrwerk doctor --format json` as a subprocess.

Limits: the history scenarios lower the server's limits with `--dynamic-config-value` and pass the
same overrides to the doctor, so they pass whether or not the server publishes its limits on its
metrics endpoint. `test_limits_are_read_from_the_metrics_endpoint` checks that path alone; it is
skipped while the server publishes no `uhrwerk_limit` gauges.

The doctor is Uhrwerk's command, but it only reads the standard API: with --reference-server the
same scenarios run against the real dev server (which publishes no `uhrwerk_limit` gauges, so the
metrics scenario skips there).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.api.enums.v1 import DescribeTaskQueueMode, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, DescribeTaskQueueResponse
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

import compat_doctor as cd
from compat_server import ServerProcess, free_port, uhrwerk_binary
from compat_util import event_types, events_of, eventually, result_of

pytestmark = [pytest.mark.needs_managed_server, pytest.mark.timeout(120)]

KINDS = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
TWO_WORKERS = ("doctor-worker-a", "doctor-worker-b")


@dataclass
class Env:
    srv: ServerProcess
    client: Client
    metrics_url: str
    # --dynamic-config-value settings the doctor gets too.
    overrides: tuple[str, ...]

    async def doctor(self, *args: str) -> tuple[int, list[dict[str, Any]]]:
        binary = uhrwerk_binary()
        assert binary is not None, "build target/debug/uhrwerk first"
        cmd = [
            str(binary),
            "doctor",
            "--address",
            self.srv.address,
            "--namespace",
            self.client.namespace,
            "--format",
            "json",
            "--metrics-url",
            self.metrics_url,
        ]
        for value in self.overrides:
            cmd += ["--dynamic-config-value", value]
        cmd += list(args)
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode in (0, 1), f"doctor exited {proc.returncode}: {err.decode()}"
        findings = json.loads(out)
        assert isinstance(findings, list)
        return proc.returncode, findings


async def start_env(server_factory, name: str, limits: Sequence[str] = (), doctor_overrides: bool = True) -> Env:
    extra: list[str] = []
    for value in limits:
        extra += ["--dynamic-config-value", value]
    srv = server_factory(name, extra_args=tuple(extra))
    srv.start()
    client = await srv.wait_ready()
    # The server's Prometheus endpoint; where there is none, nothing listens on a free port and
    # the doctor falls back to Temporal's defaults plus the overrides.
    url = getattr(srv, "metrics_url", None) or f"http://127.0.0.1:{free_port()}/metrics"
    return Env(srv, client, url, tuple(limits) if doctor_overrides else ())


def published_limits(url: str) -> str:
    """The `uhrwerk_limit` lines of the server's metrics, or "" without an endpoint."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return ""
    return "\n".join(line for line in text.splitlines() if line.startswith("uhrwerk_limit{"))


async def describe_queue(client: Client, task_queue: str, kind: TaskQueueType.ValueType) -> DescribeTaskQueueResponse:
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind, report_stats=True
        )
    )


async def poller_identities(client: Client, task_queue: str, kind: TaskQueueType.ValueType) -> set[str]:
    """Poller identities as the doctor sees them: the legacy answer (on Temporal, the root
    partition's pollers) merged with the enhanced one (all partitions)."""
    legacy = await describe_queue(client, task_queue, kind)
    enhanced = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
            report_pollers=True,
            task_queue_types=[kind],
        )
    )
    identities = {p.identity for p in legacy.pollers}
    for version in enhanced.versions_info.values():
        if kind in version.types_info:
            identities |= {p.identity for p in version.types_info[kind].pollers}
    return identities


@asynccontextmanager
async def workers(
    env: Env, task_queue: str, identities: Sequence[str] = TWO_WORKERS, **kwargs: Any
) -> AsyncIterator[None]:
    """Stand-ins for worker processes: one client connection and Worker per identity (the SDK
    allows one worker per queue and client), and waits until every identity has polled both queue
    types, so the doctor sees them all."""
    kwargs.setdefault("workflows", cd.DOCTOR_WORKFLOWS)
    kwargs.setdefault("activities", cd.DOCTOR_ACTIVITIES)
    async with AsyncExitStack() as stack:
        for identity in identities:
            client = await Client.connect(env.srv.address, namespace=env.client.namespace, identity=identity)
            await stack.enter_async_context(Worker(client, task_queue=task_queue, **kwargs))
        for kind in KINDS:
            await eventually(
                lambda kind=kind: poller_identities(env.client, task_queue, kind),
                lambda seen: seen >= set(identities),
                what=f"pollers {identities} on {task_queue}",
            )
        yield


def only(findings: list[dict[str, Any]], code: str) -> dict[str, Any]:
    """The single finding with `code`, after asserting that no other check reported anything."""
    assert {f["code"] for f in findings} == {code}, json.dumps(findings, indent=1)
    assert len(findings) == 1, json.dumps(findings, indent=1)
    return findings[0]


def fresh_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def test_clean_workload_has_no_findings(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "clean")
    async with workers(env, task_queue):
        for i in range(5):
            result = await result_of(
                env.client.execute_workflow(
                    cd.CleanOrderWorkflow.run, cd.OrderInput(f"o{i}"), id=fresh_id("clean"), task_queue=task_queue
                )
            )
            assert result == f"reserved o{i}"
        # One run stays open, so the open-run path is covered too.
        handle = await env.client.start_workflow(
            cd.WaitForSignalWorkflow.run, cd.OrderInput("open"), id=fresh_id("open"), task_queue=task_queue
        )
        await eventually(
            handle.describe,
            lambda d: not d.raw_description.HasField("pending_workflow_task"),
            what="first workflow task done",
        )
        code, findings = await env.doctor()
    assert findings == [], json.dumps(findings, indent=1)
    assert code == 0


async def test_backlog_without_pollers_is_an_error(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "no-pollers")
    await env.client.start_workflow(
        cd.WaitForSignalWorkflow.run, cd.OrderInput("o1"), id=fresh_id("nobody"), task_queue=task_queue
    )
    await eventually(
        lambda: describe_queue(env.client, task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        lambda r: r.stats.approximate_backlog_count >= 1,
        what="backlog",
    )
    code, findings = await env.doctor()
    f = only(findings, "DR301")
    assert f["severity"] == "error"
    assert (f["task_queue"], f["task_queue_type"], f["section"]) == (task_queue, "workflow", "13.5")
    assert f["data"]["backlog"] >= 1
    assert code == 1


async def test_single_poller_is_a_warning(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "single")
    async with workers(env, task_queue, identities=("the-only-worker",)):
        handle = await env.client.start_workflow(
            cd.WaitForSignalWorkflow.run, cd.OrderInput("o1"), id=fresh_id("single"), task_queue=task_queue
        )
        await eventually(
            handle.describe,
            lambda d: not d.raw_description.HasField("pending_workflow_task"),
            what="first workflow task done",
        )
        code, findings = await env.doctor()
    f = only(findings, "DR302")
    assert f["severity"] == "warning"
    assert (f["task_queue"], f["task_queue_type"]) == (task_queue, "workflow")
    assert f["data"]["identity"] == "the-only-worker"
    assert code == 0


async def test_slow_schedule_to_start_is_a_warning(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "slow-start")
    handles = [
        await env.client.start_workflow(
            cd.CleanOrderWorkflow.run, cd.OrderInput(f"o{i}"), id=fresh_id("late"), task_queue=task_queue
        )
        for i in range(2)
    ]
    # The workers arrive after the tasks have waited 1.5 s: the chapter's "> 1 s" case.
    await eventually(
        lambda: describe_queue(env.client, task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        lambda r: r.stats.approximate_backlog_count >= 2 and r.stats.approximate_backlog_age.ToMilliseconds() >= 1500,
        timeout=20,
        what="backlog older than 1.5 s",
    )
    async with workers(env, task_queue):
        for h in handles:
            await result_of(h.result())
        code, findings = await env.doctor()
    f = only(findings, "DR303")
    assert f["severity"] == "warning"
    assert (f["task_queue"], f["task_queue_type"]) == (task_queue, "workflow")
    assert f["data"]["p95_ms"] >= 1500
    assert code == 0


async def test_nondeterminism_is_an_error(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "nde")
    acts = [cd.step_a, cd.step_b]
    async with workers(env, task_queue, workflows=[cd.NdeWorkflowV1], activities=acts):
        handle = await env.client.start_workflow(cd.NDE_WORKFLOW, 1, id=fresh_id("nde"), task_queue=task_queue)
        await eventually(
            handle.fetch_history,
            lambda h: "ACTIVITY_TASK_COMPLETED" in event_types(h) and event_types(h)[-1] == "WORKFLOW_TASK_COMPLETED",
            what="v1 waiting for the signal",
        )
    # v2 changed the activity order without workflow.patched(): its replay of the v1 history fails.
    async with workers(env, task_queue, workflows=[cd.NdeWorkflowV2Bad], activities=acts):
        await handle.signal(cd.NdeWorkflowV2Bad.proceed)
        history = await eventually(
            handle.fetch_history, lambda h: "WORKFLOW_TASK_FAILED" in event_types(h), what="workflow task failed"
        )
        code, findings = await env.doctor()
    failed = events_of(history, "WORKFLOW_TASK_FAILED")
    f = only(findings, "DR201")
    assert f["severity"] == "error"
    assert (f["workflow_type"], f["workflow_id"], f["run_id"]) == (cd.NDE_WORKFLOW, handle.id, handle.result_run_id)
    assert f["event_id"] >= failed[0].event_id
    assert f["data"]["stuck"] is True
    # The Python SDK (sdk-core) reports the replay mismatch with Temporal's cause.
    assert f["data"]["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR", f["data"]
    assert f["section"] == "13.2"
    assert code == 1


async def test_workflow_task_failing_again_and_again_is_a_warning(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "buggy")
    async with workers(env, task_queue):
        handle = await env.client.start_workflow(
            cd.BuggyWorkflow.run, cd.OrderInput("o1"), id=fresh_id("buggy"), task_queue=task_queue
        )
        await eventually(
            handle.describe,
            lambda d: d.raw_description.pending_workflow_task.attempt >= 3,
            timeout=30,
            what="third workflow task attempt",
        )
        code, findings = await env.doctor()
    f = only(findings, "DR202")
    assert f["severity"] == "warning"
    assert f["run_id"] == handle.result_run_id
    assert f["data"]["attempt"] >= 3
    assert "bug while handling o1" in f["data"]["message"]
    assert code == 0


async def _grow(env: Env, task_queue: str, steps: int):
    """A GrowingWorkflow that has run `steps` activities (about six events each) and waits open."""
    handle = await env.client.start_workflow(cd.GrowingWorkflow.run, steps, id=fresh_id("grow"), task_queue=task_queue)
    await eventually(
        lambda: handle.query(cd.GrowingWorkflow.steps_done), lambda n: n == steps, timeout=60, what=f"{steps} steps"
    )
    return handle


async def test_history_heading_for_the_hard_limit_is_an_error(server_factory, task_queue: str) -> None:
    # About 95 events in a few seconds, warn 50, error 400: termination is seconds away.
    env = await start_env(server_factory, "hard-limit", ("limit.historyCount.warn=50", "limit.historyCount.error=400"))
    async with workers(env, task_queue):
        handle = await _grow(env, task_queue, 15)
        code, findings = await env.doctor()
    f = only(findings, "DR101")
    assert f["severity"] == "error"
    assert f["run_id"] == handle.result_run_id
    assert f["data"]["dimension"] == "length"
    assert 50 <= f["data"]["history_length"] < 400
    assert 0 < f["data"]["projected_ms_to_termination"] < 86_400_000
    assert f["section"] == "13.6"
    assert code == 1


async def test_run_terminated_by_the_history_limit_is_an_error(server_factory, task_queue: str) -> None:
    # The server terminates the run at 60 events; a closed run gets no DR101/DR102, but DR104.
    env = await start_env(server_factory, "terminated", ("limit.historyCount.warn=50", "limit.historyCount.error=60"))
    async with workers(env, task_queue):
        handle = await env.client.start_workflow(cd.GrowingWorkflow.run, 15, id=fresh_id("grow"), task_queue=task_queue)
        await eventually(
            handle.describe,
            lambda d: d.status == WorkflowExecutionStatus.TERMINATED,
            timeout=60,
            what="terminated at the history count limit",
        )
        code, findings = await env.doctor()
    terminated = events_of(await handle.fetch_history(), "WORKFLOW_EXECUTION_TERMINATED")[0]
    assert terminated.workflow_execution_terminated_event_attributes.reason == "Workflow history count exceeds limit."
    f = only(findings, "DR104")
    assert f["severity"] == "error"
    assert f["run_id"] == handle.result_run_id
    assert f["event_id"] == terminated.event_id
    assert f["data"]["dimension"] == "length"
    assert f["section"] == "13.6"
    assert code == 1


async def test_history_over_the_warn_limit_is_a_warning(server_factory, task_queue: str) -> None:
    # Over the warn limit, but at this growth rate the (raised) error limit is weeks away.
    env = await start_env(
        server_factory, "warn-limit", ("limit.historyCount.warn=50", "limit.historyCount.error=100000000")
    )
    async with workers(env, task_queue):
        handle = await _grow(env, task_queue, 15)
        code, findings = await env.doctor()
    f = only(findings, "DR102")
    assert f["severity"] == "warning"
    assert f["run_id"] == handle.result_run_id
    assert f["data"]["history_length"] >= 50
    assert f["data"]["projected_ms_to_termination"] > 86_400_000
    assert code == 0


async def test_limits_are_read_from_the_metrics_endpoint(server_factory, task_queue: str) -> None:
    # The doctor gets no overrides: it must learn warn 50 / error 400 from the server's gauges.
    env = await start_env(
        server_factory,
        "metrics-limits",
        ("limit.historyCount.warn=50", "limit.historyCount.error=400"),
        doctor_overrides=False,
    )
    published = await asyncio.to_thread(published_limits, env.metrics_url)
    if 'name="limit.historyCount.error"} 400' not in published:
        pytest.skip(f"the server does not publish its limits on {env.metrics_url} yet")
    async with workers(env, task_queue):
        await _grow(env, task_queue, 15)
        code, findings = await env.doctor()
    f = only(findings, "DR101")
    assert f["data"]["limit_error"] == 400
    assert code == 1


async def test_ignored_continue_as_new_suggestion_is_a_warning(server_factory, task_queue: str) -> None:
    # The server suggests continue-as-new from 20 events on; the workflow goes on for ~100 more.
    # The raised error limit keeps DR101 (fast growth towards termination) out of this scenario.
    env = await start_env(
        server_factory,
        "ignored-can",
        ("limit.historyCount.suggestContinueAsNew=20", "limit.historyCount.error=100000000"),
    )
    async with workers(env, task_queue):
        handle = await _grow(env, task_queue, 20)
        code, findings = await env.doctor()
    history = await handle.fetch_history()
    suggested = [
        e.event_id
        for e in events_of(history, "WORKFLOW_TASK_STARTED")
        if e.workflow_task_started_event_attributes.suggest_continue_as_new
    ]
    assert suggested, "the server suggested continue-as-new"
    f = only(findings, "DR103")
    assert f["severity"] == "warning"
    assert f["run_id"] == handle.result_run_id
    assert f["event_id"] == suggested[0]
    assert f["data"]["workflow_tasks_since"] >= 10
    assert f["section"] == "13.1"
    assert code == 0


async def test_activity_without_start_to_close_timeout_is_a_warning(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "no-stc")
    async with workers(env, task_queue):
        await result_of(
            env.client.execute_workflow(
                cd.NoStartToCloseWorkflow.run, cd.OrderInput("o1"), id=fresh_id("nostc"), task_queue=task_queue
            )
        )
        code, findings = await env.doctor()
    f = only(findings, "DR401")
    assert f["severity"] == "warning"
    assert (f["workflow_type"], f["activity_type"]) == ("NoStartToCloseWorkflow", "reserve")
    assert f["data"]["start_to_close_ms"] == f["data"]["schedule_to_close_ms"] == 300_000
    assert code == 0


async def test_activity_retrying_without_limit_is_a_warning(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "retry-forever")
    async with workers(env, task_queue):
        handle = await env.client.start_workflow(
            cd.RetryForeverWorkflow.run, cd.OrderInput("o1"), id=fresh_id("forever"), task_queue=task_queue
        )
        await eventually(
            handle.describe,
            lambda d: any(a.attempt >= 2 for a in d.raw_description.pending_activities),
            timeout=30,
            what="second activity attempt",
        )
        code, findings = await env.doctor()
    f = only(findings, "DR402")
    assert f["severity"] == "warning"
    assert (f["workflow_type"], f["activity_type"]) == ("RetryForeverWorkflow", "flaky_forever")
    assert f["data"]["maximum_attempts"] == 0
    assert f["data"]["current_attempt"] >= 2
    assert code == 0


async def test_positional_inputs_are_info(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "positional")
    async with workers(env, task_queue):
        result = await result_of(
            env.client.execute_workflow(
                cd.PositionalOrderWorkflow.run, args=["u1", "p1", 2], id=fresh_id("pos"), task_queue=task_queue
            )
        )
        assert result == "u1:p1:2"
        code, findings = await env.doctor()
    f = only(findings, "DR501")
    assert f["severity"] == "info"
    assert f["workflow_type"] == "PositionalOrderWorkflow"
    assert f["data"]["input_payloads"] == 3
    assert code == 0


async def test_large_payloads_in_history_are_a_warning(server_factory, task_queue: str) -> None:
    env = await start_env(server_factory, "big-state")
    async with workers(env, task_queue):
        result = await result_of(
            env.client.execute_workflow(
                cd.BigStateWorkflow.run, cd.OrderInput("o1"), id=fresh_id("big"), task_queue=task_queue
            )
        )
        assert result == 4096
        code, findings = await env.doctor()
    f = only(findings, "DR601")
    assert f["severity"] == "warning"
    assert f["workflow_type"] == "BigStateWorkflow"
    assert f["data"]["largest_payload_bytes"] >= 4096
    assert f["section"] == "13.3"
    assert code == 0


async def test_unreachable_server_is_exit_2() -> None:
    binary = uhrwerk_binary()
    assert binary is not None
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "doctor",
        "--address",
        f"127.0.0.1:{port}",
        "--metrics-url",
        f"http://127.0.0.1:{port}/metrics",
        "--format",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, (out, err)
    assert b"cannot connect" in err
    assert out == b""
