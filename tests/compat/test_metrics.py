"""Prometheus metrics at --metrics-port /metrics, scraped before and after a known workload on a
fresh server: request, poll, schedule-to-start and history metrics with Temporal's names, request
errors, and Uhrwerk's own gauges and counters (limits, pollers, backlog, workflow task failures,
non-determinism).

The real dev server exports Temporal's names with more labels (service_name, partition, ...) and
with '-' in task queue names written as '_'; where the sums over those series mean the same thing
(service_requests of the frontend, poll_success, task_schedule_to_start_latency) the assertions
run on both servers. history_count/history_size are observed per operation there, not per closed
run, and service_errors and uhrwerk_* do not exist there: those assertions are Uhrwerk only.
"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import pytest
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import compat_limits as cl
from compat_limits import Sample, scrape, total
from compat_server import ServerProcess
from compat_util import event_types, events_of, eventually, result_of

pytestmark = [pytest.mark.needs_managed_server, pytest.mark.timeout(120)]

# Temporal's defaults, as Uhrwerk publishes them in uhrwerk_limit{name}.
DEFAULT_LIMITS = {
    "limit.historyCount.error": 51_200,
    "limit.historyCount.warn": 10_240,
    "limit.historySize.error": 50 * 1024 * 1024,
    "limit.historySize.warn": 10 * 1024 * 1024,
    "limit.historyCount.suggestContinueAsNew": 4_096,
    "limit.historySize.suggestContinueAsNew": 4 * 1024 * 1024,
    "limit.blobSize.error": 2 * 1024 * 1024,
    "limit.blobSize.warn": 512 * 1024,
    "limit.memoSize.error": 2 * 1024 * 1024,
    "limit.memoSize.warn": 2 * 1024,
    "limit.numPendingActivities.error": 2_000,
    "limit.numPendingChildExecutions.error": 2_000,
    "limit.numPendingSignals.error": 2_000,
    "limit.numPendingCancelRequests.error": 2_000,
    "limit.maxIDLength": 1_000,
    "history.maximumSignalsPerExecution": 10_000,
}


async def fresh_server(server_factory, name: str, *limits: str) -> tuple[ServerProcess, Client]:
    extra: list[str] = []
    for value in limits:
        extra += ["--dynamic-config-value", value]
    srv = server_factory(name, extra_args=tuple(extra))
    srv.start()
    return srv, await srv.wait_ready()


def is_uhrwerk(srv: ServerProcess) -> bool:
    return srv.kind == "uhrwerk"


def frontend(srv: ServerProcess, namespace: str) -> dict[str, str]:
    """Labels that pick the test's series of service_* metrics: the real server also counts the
    requests its frontend makes to its history and matching services, and its system workflows."""
    return {} if is_uhrwerk(srv) else {"service_name": "frontend", "namespace": namespace}


def queue_label(srv: ServerProcess, task_queue: str) -> str:
    return task_queue if is_uhrwerk(srv) else task_queue.replace("-", "_")


async def metrics(srv: ServerProcess) -> list[Sample]:
    return scrape(srv.metrics_url)


def delta(before: list[Sample], after: list[Sample], name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@asynccontextmanager
async def worker(client: Client, task_queue: str, **kwargs):
    kwargs.setdefault("workflows", cl.LIMITS_WORKFLOWS)
    kwargs.setdefault("activities", cl.LIMITS_ACTIVITIES)
    async with Worker(client, task_queue=task_queue, **cl.WORKER_KWARGS, **kwargs) as w:
        yield w


def fresh_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def test_workload_moves_the_counters_by_exact_amounts(server_factory, task_queue: str) -> None:
    srv, client = await fresh_server(server_factory, "workload")
    wtype = {"workflow_type": "TwoActivitiesWorkflow"}
    queue = {"taskqueue": queue_label(srv, task_queue)}
    before = await metrics(srv)
    async with worker(client, task_queue):
        handles = [
            await client.start_workflow(cl.TwoActivitiesWorkflow.run, n, id=fresh_id("two"), task_queue=task_queue)
            for n in range(3)
        ]
        assert [await result_of(h.result()) for h in handles] == [n + 1 for n in range(3)]
    histories = [await h.fetch_history() for h in handles]
    lengths = [len(h.events) for h in histories]
    assert lengths == [17, 17, 17]
    workflow_tasks = sum(len(events_of(h, "WORKFLOW_TASK_STARTED")) for h in histories)
    start = {"operation": "StartWorkflowExecution", **frontend(srv, client.namespace)}
    if is_uhrwerk(srv):
        # Histograms of closed runs: observed when each run closes.
        after = await eventually(
            lambda: metrics(srv),
            lambda m: delta(before, m, "history_count_count", **wtype) == 3,
            what="three closed runs in history_count",
        )
    else:
        # The real server reports its counters to the exporter periodically.
        after = await eventually(
            lambda: metrics(srv),
            lambda m: delta(before, m, "poll_success", task_type="Activity", **queue) >= 6
            and delta(before, m, "poll_success", task_type="Workflow", **queue) >= workflow_tasks
            and delta(before, m, "task_schedule_to_start_latency_count", **queue) >= 6 + workflow_tasks
            and delta(before, m, "service_requests", **start) >= 3,
            timeout=20,
            what="the workload in the exported counters",
        )
    assert delta(before, after, "service_requests", **start) == 3
    assert delta(before, after, "service_latency_count", **start) == 3
    # Each activity reached its worker through one poll (eager execution is off).
    assert delta(before, after, "poll_success", task_type="Activity", **queue) == 6
    assert delta(before, after, "task_schedule_to_start_latency_count", task_type="Activity", **queue) == 6
    # Every started workflow task was handed out by a successful poll (sticky queue included).
    assert delta(before, after, "poll_success", task_type="Workflow", **queue) >= workflow_tasks
    assert delta(before, after, "task_schedule_to_start_latency_count", task_type="Workflow", **queue) >= workflow_tasks
    if not is_uhrwerk(srv):
        return
    assert delta(before, after, "service_requests", operation="RespondActivityTaskCompleted") == 6
    assert delta(before, after, "service_requests", operation="RespondWorkflowTaskCompleted") == workflow_tasks
    assert delta(before, after, "history_count_count", **wtype) == 3
    assert delta(before, after, "history_count_sum", **wtype) == sum(lengths)
    assert delta(before, after, "history_count_bucket", le="+Inf", **wtype) == 3
    # 17 events fall in the (8, 32] bucket.
    assert delta(before, after, "history_count_bucket", le="8", **wtype) == 0
    assert delta(before, after, "history_count_bucket", le="32", **wtype) == 3
    assert delta(before, after, "history_size_count", **wtype) == 3
    # A run's size at close is at least what its last workflow task was told.
    last_sizes = [
        events_of(h, "WORKFLOW_TASK_STARTED")[-1].workflow_task_started_event_attributes.history_size_bytes
        for h in histories
    ]
    assert all(size > 0 for size in last_sizes), last_sizes
    assert delta(before, after, "history_size_sum", **wtype) >= sum(last_sizes)


async def test_failed_request_counts_an_error(server_factory, task_queue: str) -> None:
    srv, client = await fresh_server(server_factory, "errors")
    before = await metrics(srv)
    req = StartWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_id=fresh_id("bad"),
        workflow_type=WorkflowType(name=""),
        task_queue=TaskQueue(name=task_queue),
        request_id=str(uuid.uuid4()),
    )
    with pytest.raises(RPCError) as info:
        await client.workflow_service.start_workflow_execution(req)
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
    start = {"operation": "StartWorkflowExecution", **frontend(srv, client.namespace)}
    after = await eventually(
        lambda: metrics(srv),
        lambda m: delta(before, m, "service_requests", **start) >= 1,
        timeout=20,
        what="the request counted",
    )
    assert delta(before, after, "service_requests", **start) == 1
    if not is_uhrwerk(srv):
        pytest.skip("the real server has no service_errors metric (it counts service_error_with_type)")
    errors = [s for s in after if s.name == "service_errors" and s.labels["operation"] == "StartWorkflowExecution"]
    assert delta(before, after, "service_errors", operation="StartWorkflowExecution") == 1
    assert len(errors) == 1
    # The gRPC status code by name, as gRPC metrics label it.
    assert errors[0].labels["status_code"] in ("INVALID_ARGUMENT", "InvalidArgument"), errors[0].labels


async def test_limit_gauges_show_defaults_and_overrides(server_factory) -> None:
    overrides = {
        "limit.historyCount.error": 1_234,
        "limit.blobSize.warn": 4_096,
        "limit.numPendingActivities.error": 7,
        "history.maximumSignalsPerExecution": 9,
    }
    srv, _ = await fresh_server(server_factory, "gauges", *(f"{k}={v}" for k, v in overrides.items()))
    if not is_uhrwerk(srv):
        pytest.skip("uhrwerk_limit is Uhrwerk's")
    samples = await metrics(srv)
    published = {s.labels["name"]: s.value for s in samples if s.name == "uhrwerk_limit"}
    assert published == {**DEFAULT_LIMITS, **overrides}


async def test_pollers_and_backlog(server_factory, task_queue: str) -> None:
    srv, client = await fresh_server(server_factory, "pollers")
    if not is_uhrwerk(srv):
        pytest.skip("uhrwerk_pollers is Uhrwerk's; the real server labels backlog gauges per partition")
    queue = {"taskqueue": task_queue}
    before = await metrics(srv)
    assert total(before, "uhrwerk_pollers", **queue) == 0
    # A workflow task for a queue nobody polls: one task without pollers, waiting in the backlog.
    handle = await client.start_workflow(cl.TwoActivitiesWorkflow.run, 1, id=fresh_id("backlog"), task_queue=task_queue)
    waiting = await metrics(srv)
    assert delta(before, waiting, "no_poller_tasks", task_type="Workflow", **queue) == 1
    assert total(waiting, "approximate_backlog_count", task_type="Workflow", **queue) == 1
    async with worker(client, task_queue):
        assert await result_of(handle.result()) == 2
        polling = await eventually(
            lambda: metrics(srv),
            lambda m: total(m, "uhrwerk_pollers", task_type="Workflow", **queue) >= 1
            and total(m, "uhrwerk_pollers", task_type="Activity", **queue) >= 1,
            what="pollers on both task types",
        )
    assert total(polling, "approximate_backlog_count", task_type="Workflow", **queue) == 0
    assert total(polling, "approximate_backlog_count", task_type="Activity", **queue) == 0
    # The worker was polling when the activities were scheduled.
    assert delta(before, polling, "no_poller_tasks", task_type="Activity", **queue) == 0


async def test_nondeterminism_failure_is_counted(server_factory, task_queue: str) -> None:
    srv, client = await fresh_server(server_factory, "nde")
    labels = {"workflow_type": cl.NDE_WORKFLOW}
    before = await metrics(srv)
    acts = [cl.echo]
    async with worker(client, task_queue, workflows=[cl.NdeWorkflowV1], activities=acts):
        handle = await client.start_workflow(cl.NDE_WORKFLOW, 1, id=fresh_id("nde"), task_queue=task_queue)
        await eventually(
            handle.fetch_history,
            lambda h: "ACTIVITY_TASK_COMPLETED" in event_types(h) and event_types(h)[-1] == "WORKFLOW_TASK_COMPLETED",
            what="v1 waiting for the signal",
        )
    # v2 starts a timer where v1 scheduled an activity: its replay of v1's history fails.
    async with worker(client, task_queue, workflows=[cl.NdeWorkflowV2], activities=acts):
        await handle.signal(cl.NdeWorkflowV2.proceed)
        history = await eventually(
            handle.fetch_history, lambda h: "WORKFLOW_TASK_FAILED" in event_types(h), what="workflow task failed"
        )
        failed = events_of(history, "WORKFLOW_TASK_FAILED")[0].workflow_task_failed_event_attributes
        assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
        if is_uhrwerk(srv):
            after = await eventually(
                lambda: metrics(srv),
                lambda m: delta(before, m, "uhrwerk_nondeterminism_failures", **labels) >= 1,
                what="uhrwerk_nondeterminism_failures",
            )
            nde = delta(before, after, "uhrwerk_workflow_task_failures", cause="NON_DETERMINISTIC_ERROR", **labels)
            assert nde >= 1
            # No other cause was counted for this workflow type.
            assert delta(before, after, "uhrwerk_workflow_task_failures", **labels) == nde
        await handle.terminate("compat cleanup")


async def test_unhandled_workflow_exception_is_counted_by_cause(server_factory, task_queue: str) -> None:
    srv, client = await fresh_server(server_factory, "wft-failure")
    labels = {"workflow_type": "RaisingWorkflow"}
    before = await metrics(srv)
    async with worker(client, task_queue):
        handle = await client.start_workflow(cl.RaisingWorkflow.run, "x", id=fresh_id("raise"), task_queue=task_queue)
        history = await eventually(
            handle.fetch_history, lambda h: "WORKFLOW_TASK_FAILED" in event_types(h), what="workflow task failed"
        )
        failed = events_of(history, "WORKFLOW_TASK_FAILED")[0].workflow_task_failed_event_attributes
        assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE
        assert "bug in workflow code: x" in failed.failure.message
        if is_uhrwerk(srv):
            cause = "WORKFLOW_WORKER_UNHANDLED_FAILURE"
            after = await eventually(
                lambda: metrics(srv),
                lambda m: delta(before, m, "uhrwerk_workflow_task_failures", cause=cause, **labels) >= 1,
                what="uhrwerk_workflow_task_failures",
            )
            assert delta(before, after, "uhrwerk_nondeterminism_failures", **labels) == 0
        await handle.terminate("compat cleanup")
