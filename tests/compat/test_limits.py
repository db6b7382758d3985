"""Guardrails with Temporal's dynamic-config names, each lowered on a server of its own: history
count and size warn/error limits (termination), the continue-as-new suggestion, blob size (start,
signal, activity result), pending activities, signals per execution and memo size.

Events, codes and messages are asserted as the real dev server (temporal CLI 1.9.1, server 1.32.0)
produces them; the comments say what was observed there. The `uhrwerk_*` metrics exist only on
Uhrwerk, so those assertions are skipped with --reference-server.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import RetryState, SuggestContinueAsNewReason, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RespondActivityTaskCompletedRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import TerminatedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from compat_limits import (
    LIMITS_ACTIVITIES,
    LIMITS_WORKFLOWS,
    TASK_TOKENS,
    WORKER_KWARGS,
    BigResultInput,
    BigResultOutcome,
    BigResultWorkflow,
    CollectWorkflow,
    FanOutWorkflow,
    GrowInput,
    GrowWorkflow,
    SuggestInput,
    SuggestResult,
    SuggestWorkflow,
    scrape,
    total,
)
from compat_server import ServerProcess
from compat_util import event_types, events_of, eventually, result_of

pytestmark = [pytest.mark.needs_managed_server, pytest.mark.timeout(120)]


async def own_server(server_factory, name: str, *limits: str) -> tuple[ServerProcess, Client]:
    extra: list[str] = []
    for value in limits:
        extra += ["--dynamic-config-value", value]
    srv = server_factory(name, extra_args=tuple(extra))
    srv.start()
    return srv, await srv.wait_ready()


def is_uhrwerk(srv: ServerProcess) -> bool:
    return srv.kind == "uhrwerk"


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client, task_queue=task_queue, workflows=LIMITS_WORKFLOWS, activities=LIMITS_ACTIVITIES, **WORKER_KWARGS
    )


def fresh_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def counter(srv: ServerProcess, name: str, **labels: str) -> float:
    return total(scrape(srv.metrics_url), name, **labels)


async def wait_counter(srv: ServerProcess, name: str, want: float, **labels: str) -> None:
    await eventually(lambda: counter(srv, name, **labels), lambda v: v == want, what=f"{name}{labels} == {want}")


async def grown(handle: WorkflowHandle, steps: int):
    """The history once `steps` activities completed and the following workflow task completed."""
    return await eventually(
        handle.fetch_history,
        lambda h: len(events_of(h, "ACTIVITY_TASK_COMPLETED")) == steps
        and event_types(h)[-1] == "WORKFLOW_TASK_COMPLETED",
        timeout=60,
        what=f"{steps} steps",
    )


async def _warn_then_error(
    server_factory,
    task_queue: str,
    limits: tuple[str, ...],
    dimension: str,
    result_size: int,
    under_steps: int,
    over_steps: int,
) -> tuple[ServerProcess, WorkflowHandle]:
    """A run past the warn limit keeps running and completes; a second run that grows past the
    error limit is terminated. Returns the terminated run."""
    srv, client = await own_server(server_factory, dimension, *limits)
    warn = {"limit": f"limit.{dimension}.warn", "workflow_type": "GrowWorkflow"}
    error = {"limit": f"limit.{dimension}.error", "workflow_type": "GrowWorkflow"}
    async with worker(client, task_queue):
        under = await client.start_workflow(
            GrowWorkflow.run, GrowInput(under_steps, result_size), id=fresh_id("under"), task_queue=task_queue
        )
        history = await grown(under, under_steps)
        assert len(history.events) == 4 + 6 * under_steps
        assert (await under.describe()).status == WorkflowExecutionStatus.RUNNING
        if is_uhrwerk(srv):
            await wait_counter(srv, "uhrwerk_warn_limit_exceeded", 1, **warn)
            assert await counter(srv, "uhrwerk_history_limit_terminations", **error) == 0
        await under.signal(GrowWorkflow.release)
        assert await result_of(under.result()) == under_steps
        assert event_types(await under.fetch_history())[-1] == "WORKFLOW_EXECUTION_COMPLETED"

        over = await client.start_workflow(
            GrowWorkflow.run, GrowInput(over_steps, result_size), id=fresh_id("over"), task_queue=task_queue
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await result_of(over.result(), 60)
    assert isinstance(failure.value.cause, TerminatedError), repr(failure.value.cause)
    assert (await over.describe()).status == WorkflowExecutionStatus.TERMINATED
    if is_uhrwerk(srv):
        # Both runs crossed the warn limit; one was terminated.
        await wait_counter(srv, "uhrwerk_warn_limit_exceeded", 2, **warn)
        await wait_counter(srv, "uhrwerk_history_limit_terminations", 1, **error)
    return srv, over


def assert_terminated(history, reason: str) -> None:
    attrs = history.events[-1].workflow_execution_terminated_event_attributes
    assert event_types(history)[-1] == "WORKFLOW_EXECUTION_TERMINATED"
    assert (attrs.reason, attrs.identity) == (reason, "history-service")
    assert not attrs.HasField("details")


async def test_history_count_warn_keeps_running_and_error_terminates(server_factory, task_queue: str) -> None:
    _, over = await _warn_then_error(
        server_factory,
        task_queue,
        ("limit.historyCount.warn=30", "limit.historyCount.error=60"),
        "historyCount",
        result_size=1,
        under_steps=6,  # 40 events
        over_steps=20,
    )
    history = await over.fetch_history()
    print("observed:", len(history.events), event_types(history)[-4:])
    assert_terminated(history, "Workflow history count exceeds limit.")
    # Observed: the workflow task completed at event 58 scheduled the tenth activity (59); that
    # completion took the history to the limit and the termination is event 60.
    assert len(history.events) == 60
    assert event_types(history)[-3:] == [
        "WORKFLOW_TASK_COMPLETED",
        "ACTIVITY_TASK_SCHEDULED",
        "WORKFLOW_EXECUTION_TERMINATED",
    ]
    assert len(events_of(history, "ACTIVITY_TASK_COMPLETED")) == 9


async def test_history_size_warn_keeps_running_and_error_terminates(server_factory, task_queue: str) -> None:
    _, over = await _warn_then_error(
        server_factory,
        task_queue,
        ("limit.historySize.warn=100000", "limit.historySize.error=200000"),
        "historySize",
        result_size=20_000,
        under_steps=6,  # about 120 KB
        over_steps=15,
    )
    history = await over.fetch_history()
    print("observed:", len(history.events), event_types(history)[-4:])
    assert_terminated(history, "Workflow history size exceeds limit.")
    # Observed: the tenth 20 KB result takes the history past 200,000 bytes; the server terminates
    # the run as it records that activity's completion (before any worker sees the new task).
    assert len(history.events) == 63
    assert event_types(history)[-4:] == [
        "ACTIVITY_TASK_STARTED",
        "ACTIVITY_TASK_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_EXECUTION_TERMINATED",
    ]
    assert len(events_of(history, "ACTIVITY_TASK_COMPLETED")) == 10


def suggestions(history) -> list[tuple[int, list[int]]]:
    """(event id, reasons) of the WORKFLOW_TASK_STARTED events that suggest continue-as-new."""
    return [
        (e.event_id, list(e.workflow_task_started_event_attributes.suggest_continue_as_new_reasons))
        for e in events_of(history, "WORKFLOW_TASK_STARTED")
        if e.workflow_task_started_event_attributes.suggest_continue_as_new
    ]


async def test_continue_as_new_suggested_by_history_count(server_factory, task_queue: str) -> None:
    srv, client = await own_server(server_factory, "suggest", "limit.historyCount.suggestContinueAsNew=20")
    labels = {"workflow_type": "SuggestWorkflow"}
    too_many_events = SuggestContinueAsNewReason.SUGGEST_CONTINUE_AS_NEW_REASON_TOO_MANY_HISTORY_EVENTS
    async with worker(client, task_queue):
        # A run that follows the suggestion continues as new.
        follow = await client.start_workflow(
            SuggestWorkflow.run, SuggestInput(steps=20, follow=True), id=fresh_id("follow"), task_queue=task_queue
        )
        assert await result_of(follow.result()) == SuggestResult(suggested_at=-1, steps=1, continued=True)
        first = await client.get_workflow_handle(follow.id, run_id=follow.first_execution_run_id).fetch_history()
        print("observed follow:", len(first.events), suggestions(first))
        # Observed: the workflow task started as event 21 (20 events before it) carries the
        # suggestion; the run continues as new at event 23.
        assert suggestions(first) == [(21, [too_many_events])]
        assert len(first.events) == 23
        assert event_types(first)[-1] == "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
        if is_uhrwerk(srv):
            await wait_counter(srv, "uhrwerk_continue_as_new", 1, **labels)
            assert await counter(srv, "uhrwerk_continue_as_new_suggestion_ignored", **labels) == 0

        # A run that ignores it: every later workflow task repeats the suggestion.
        ignore = await client.start_workflow(
            SuggestWorkflow.run, SuggestInput(steps=20, follow=False), id=fresh_id("ignore"), task_queue=task_queue
        )
        result = await result_of(ignore.result(), 60)
        history = await ignore.fetch_history()
    print("observed ignore:", result, len(history.events), suggestions(history))
    assert result == SuggestResult(suggested_at=3, steps=20, continued=False)
    assert len(history.events) == 125
    assert suggestions(history) == [(event_id, [too_many_events]) for event_id in range(21, 124, 6)]
    if is_uhrwerk(srv):
        # 18 workflow tasks carried the suggestion: more than ten, counted once.
        await wait_counter(srv, "uhrwerk_continue_as_new_suggestion_ignored", 1, **labels)
        assert await counter(srv, "uhrwerk_continue_as_new", **labels) == 1


async def test_continue_as_new_suggested_by_history_size(server_factory, task_queue: str) -> None:
    srv, client = await own_server(server_factory, "suggest-size", "limit.historySize.suggestContinueAsNew=50000")
    too_large = SuggestContinueAsNewReason.SUGGEST_CONTINUE_AS_NEW_REASON_HISTORY_SIZE_TOO_LARGE
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            SuggestWorkflow.run,
            SuggestInput(steps=20, follow=True, result_size=20_000),
            id=fresh_id("follow-size"),
            task_queue=task_queue,
        )
        assert await result_of(handle.result()) == SuggestResult(suggested_at=-1, steps=1, continued=True)
        first = await client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).fetch_history()
    print("observed:", len(first.events), suggestions(first))
    # Observed: after three 20 KB results the next workflow task (event 21) carries the suggestion.
    assert suggestions(first) == [(21, [too_large])]
    assert event_types(first)[-1] == "WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
    if is_uhrwerk(srv):
        await wait_counter(srv, "uhrwerk_continue_as_new", 1, workflow_type="SuggestWorkflow")


# Temporal checks the error limit only for blobs above the warn limit, so both are lowered.
BLOB_LIMITS = ("limit.blobSize.warn=5120", "limit.blobSize.error=10240")


async def test_blob_over_limit_in_start_request(server_factory, task_queue: str) -> None:
    _, client = await own_server(server_factory, "blob-start", *BLOB_LIMITS)
    wid = fresh_id("blob-start")
    with pytest.raises(RPCError) as info:
        await client.start_workflow(CollectWorkflow.run, "x" * 20_000, id=wid, task_queue=task_queue)
    print("observed:", info.value.status.name, repr(info.value.message))
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert info.value.message == "Blob data size exceeds limit."
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(wid).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    # Just under the limit is accepted.
    handle = await client.start_workflow(CollectWorkflow.run, "x" * 9_000, id=wid, task_queue=task_queue)
    await handle.terminate("compat cleanup")


async def test_blob_error_limit_applies_only_above_the_warn_limit(server_factory, task_queue: str) -> None:
    """Temporal's CheckEventBlobSizeLimit tests the error limit only when a blob is over the warn
    limit (512 KiB by default): an error limit below the warn limit is effectively raised to it."""
    _, client = await own_server(server_factory, "blob-quirk", "limit.blobSize.error=10240")
    # Observed: a 20 KB input is accepted, a 600 KB one is rejected.
    handle = await client.start_workflow(CollectWorkflow.run, "x" * 20_000, id=fresh_id("quirk"), task_queue=task_queue)
    await handle.terminate("compat cleanup")
    with pytest.raises(RPCError) as info:
        await client.start_workflow(CollectWorkflow.run, "x" * 600_000, id=fresh_id("quirk"), task_queue=task_queue)
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert info.value.message == "Blob data size exceeds limit."


async def test_namespace_reports_the_blob_and_memo_limits(server_factory) -> None:
    """DescribeNamespace carries the error limits; SDK workers use them to fail oversized payloads."""
    _, client = await own_server(server_factory, "ns-limits", *BLOB_LIMITS, "limit.memoSize.error=1000")
    resp = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
    limits = resp.namespace_info.limits
    print("observed:", limits)
    assert (limits.blob_size_limit_error, limits.memo_size_limit_error) == (10240, 1000)


async def test_blob_over_limit_in_signal(server_factory, task_queue: str) -> None:
    _, client = await own_server(server_factory, "blob-signal", *BLOB_LIMITS)
    async with worker(client, task_queue):
        handle = await client.start_workflow(CollectWorkflow.run, "", id=fresh_id("blob-signal"), task_queue=task_queue)
        await handle.signal(CollectWorkflow.add, "a" * 10)
        with pytest.raises(RPCError) as info:
            await handle.signal(CollectWorkflow.add, "b" * 20_000)
        print("observed:", info.value.status.name, repr(info.value.message))
        assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert info.value.message == "Blob data size exceeds limit."
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await handle.signal(CollectWorkflow.add, "c" * 30)
        await handle.signal(CollectWorkflow.finish)
        assert await result_of(handle.result()) == [10, 30]
    assert len(events_of(await handle.fetch_history(), "WORKFLOW_EXECUTION_SIGNALED")) == 3


async def test_blob_over_limit_in_activity_result_from_a_worker(server_factory, task_queue: str) -> None:
    """The SDK worker reads the namespace's blob limit and fails the activity itself."""
    _, client = await own_server(server_factory, "blob-activity", *BLOB_LIMITS)
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            BigResultWorkflow.run, BigResultInput(20_000), id=fresh_id("blob-activity"), task_queue=task_queue
        )
        outcome = await result_of(handle.result(), 60)
    history = await handle.fetch_history()
    print("observed:", outcome, event_types(history))
    # Observed: each of the three attempts fails in the worker with PayloadsTooLarge; the other
    # activities' results arrive and the workflow completes.
    message = "[TMPRL1103] Attempted to upload payloads with size that exceeded the error limit."
    assert outcome == BigResultOutcome(
        before=3, error=f"ApplicationError: PayloadsTooLarge: {message}", non_retryable=False, big=-1, after=5
    )
    (failed,) = events_of(history, "ACTIVITY_TASK_FAILED")
    attrs = failed.activity_task_failed_event_attributes
    assert (attrs.failure.message, attrs.failure.application_failure_info.type) == (message, "PayloadsTooLarge")
    assert attrs.retry_state == RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
    assert event_types(history)[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    assert len(events_of(history, "ACTIVITY_TASK_COMPLETED")) == 2


async def test_blob_over_limit_in_activity_completion_request(server_factory, task_queue: str) -> None:
    """A completion whose result is over the limit, sent past the SDK's own check."""
    _, client = await own_server(server_factory, "blob-complete", *BLOB_LIMITS)
    key = fresh_id("big-complete")
    token = asyncio.get_running_loop().create_future()
    TASK_TOKENS[key] = token
    try:
        async with worker(client, task_queue):
            handle = await client.start_workflow(
                BigResultWorkflow.run, BigResultInput(20_000, key), id=key, task_queue=task_queue
            )
            task_token = await asyncio.wait_for(token, 30)
            payloads = await client.data_converter.encode(["y" * 20_000])
            req = RespondActivityTaskCompletedRequest(
                namespace=client.namespace, task_token=task_token, result=Payloads(payloads=payloads), identity="compat"
            )
            # Observed: the request succeeds; the server records a failure instead of the result.
            await client.workflow_service.respond_activity_task_completed(req)
            outcome = await result_of(handle.result(), 60)
    finally:
        TASK_TOKENS.pop(key, None)
    history = await handle.fetch_history()
    print("observed:", outcome, event_types(history))
    assert outcome == BigResultOutcome(
        before=3, error="ServerError: Complete result exceeds size limit.", non_retryable=True, big=-1, after=5
    )
    (failed,) = events_of(history, "ACTIVITY_TASK_FAILED")
    attrs = failed.activity_task_failed_event_attributes
    assert attrs.failure.message == "Complete result exceeds size limit."
    assert attrs.failure.HasField("server_failure_info") and attrs.failure.server_failure_info.non_retryable
    assert (attrs.identity, attrs.retry_state) == ("compat", RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE)
    assert event_types(history)[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    assert len(events_of(history, "ACTIVITY_TASK_COMPLETED")) == 2


async def test_pending_activities_limit_fails_the_workflow_task(server_factory, task_queue: str) -> None:
    srv, client = await own_server(server_factory, "pending", "limit.numPendingActivities.error=3")
    async with worker(client, task_queue):
        handle = await client.start_workflow(FanOutWorkflow.run, 5, id=fresh_id("fan-out"), task_queue=task_queue)
        history = await eventually(
            handle.fetch_history, lambda h: "WORKFLOW_TASK_FAILED" in event_types(h), what="workflow task failed"
        )
        await handle.terminate("compat cleanup")
    failed = events_of(history, "WORKFLOW_TASK_FAILED")[0].workflow_task_failed_event_attributes
    print("observed:", event_types(history), WorkflowTaskFailedCause.Name(failed.cause), repr(failed.failure.message))
    # Observed: the whole completion is rejected at the fourth ScheduleActivityTask command.
    assert event_types(history)[:4] == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_FAILED",
    ]
    assert failed.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_PENDING_ACTIVITIES_LIMIT_EXCEEDED
    assert failed.failure.message == (
        "PendingActivitiesLimitExceeded: the number of pending activities, 3, has reached the per-workflow limit of 3"
    )
    assert "ACTIVITY_TASK_SCHEDULED" not in event_types(history)
    if is_uhrwerk(srv):
        cause = "PENDING_ACTIVITIES_LIMIT_EXCEEDED"
        failures = await counter(srv, "uhrwerk_workflow_task_failures", workflow_type="FanOutWorkflow", cause=cause)
        assert failures >= 1


async def test_signals_per_execution_limit(server_factory, task_queue: str) -> None:
    _, client = await own_server(server_factory, "signals", "history.maximumSignalsPerExecution=3")
    async with worker(client, task_queue):
        handle = await client.start_workflow(CollectWorkflow.run, "", id=fresh_id("signals"), task_queue=task_queue)
        for i in range(1, 4):
            await handle.signal(CollectWorkflow.add, "s" * i)
        with pytest.raises(RPCError) as info:
            await handle.signal(CollectWorkflow.add, "s" * 4)
        print("observed:", info.value.status.name, repr(info.value.message), info.value.grpc_status.details)
        # Observed: INVALID_ARGUMENT 'exceeded workflow execution limit for signal events', no details.
        assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert info.value.message == "exceeded workflow execution limit for signal events"
        assert not info.value.grpc_status.details
        await eventually(lambda: handle.query(CollectWorkflow.received), lambda v: v == [1, 2, 3], what="3 signals")
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await handle.terminate("compat cleanup")
    assert len(events_of(await handle.fetch_history(), "WORKFLOW_EXECUTION_SIGNALED")) == 3


async def test_memo_over_limit_at_start(server_factory, task_queue: str) -> None:
    # As for blobs, the error limit applies only above the warn limit.
    _, client = await own_server(server_factory, "memo", "limit.memoSize.warn=500", "limit.memoSize.error=1000")
    wid = fresh_id("memo")
    with pytest.raises(RPCError) as info:
        await client.start_workflow(CollectWorkflow.run, "", id=wid, task_queue=task_queue, memo={"big": "m" * 2000})
    print("observed:", info.value.status.name, repr(info.value.message))
    assert info.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert info.value.message == "Memo size exceeds limit."
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(wid).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
