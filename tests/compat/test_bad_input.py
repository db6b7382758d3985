"""Bad input through raw RPCs: the server must answer with Temporal's error codes and stay up.

Codes and messages were recorded against the real dev server (temporal CLI
1.9.1, server 1.32.0). Messages are asserted by a key substring only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import Payload, Payloads, RetryPolicy, WorkflowExecution, WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetSystemInfoRequest,
    ListWorkflowExecutionsRequest,
    RespondActivityTaskCompletedRequest,
    RespondActivityTaskFailedRequest,
    RespondWorkflowTaskCompletedRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

import compat_workflows as cw
from compat_util import make_worker, result_of

DETAIL_PREFIX = "type.googleapis.com/temporal.api.errordetails.v1."


@dataclass
class Ctx:
    client: Client
    namespace: str
    task_queue: str
    cleanup: list[str]


Call = Callable[[Ctx], Awaitable[Any]]


def start_req(ctx: Ctx, **overrides: Any) -> StartWorkflowExecutionRequest:
    fields: dict[str, Any] = dict(
        namespace=ctx.namespace,
        workflow_id=f"bad-{uuid.uuid4()}",
        workflow_type=WorkflowType(name="HelloWorkflow"),
        task_queue=TaskQueue(name=ctx.task_queue),
        request_id=str(uuid.uuid4()),
    )
    fields.update(overrides)
    return StartWorkflowExecutionRequest(**{k: v for k, v in fields.items() if v is not None})


def start(**overrides: Any) -> Call:
    async def call(ctx: Ctx) -> Any:
        req = start_req(ctx, **overrides)
        ctx.cleanup.append(req.workflow_id)
        return await ctx.client.workflow_service.start_workflow_execution(req)

    return call


async def garbage_activity_completed(ctx: Ctx) -> Any:
    req = RespondActivityTaskCompletedRequest(namespace=ctx.namespace, task_token=b"garbage", identity="compat")
    return await ctx.client.workflow_service.respond_activity_task_completed(req)


async def garbage_activity_failed(ctx: Ctx) -> Any:
    req = RespondActivityTaskFailedRequest(namespace=ctx.namespace, task_token=b"garbage", identity="compat")
    return await ctx.client.workflow_service.respond_activity_task_failed(req)


async def empty_activity_token(ctx: Ctx) -> Any:
    req = RespondActivityTaskCompletedRequest(namespace=ctx.namespace, task_token=b"", identity="compat")
    return await ctx.client.workflow_service.respond_activity_task_completed(req)


async def garbage_workflow_task_completed(ctx: Ctx) -> Any:
    req = RespondWorkflowTaskCompletedRequest(namespace=ctx.namespace, task_token=b"garbage", identity="compat")
    return await ctx.client.workflow_service.respond_workflow_task_completed(req)


def stale_activity_token(workflow_open: bool) -> Call:
    """Completes an activity through its task token, then completes it again with the same token.

    The workflow runs two async-completed activities in sequence, so the
    second completion of the first token hits either an open workflow (while
    the second activity is pending) or a closed one.
    """

    async def call(ctx: Ctx) -> Any:
        wid = f"stale-{uuid.uuid4()}"
        loop = asyncio.get_running_loop()
        tokens = {wid: loop.create_future(), wid + "-2": loop.create_future()}
        cw.TASK_TOKENS.update(tokens)

        async def complete(token: bytes, value: str) -> RespondActivityTaskCompletedRequest:
            payload = await ctx.client.data_converter.encode([value])
            req = RespondActivityTaskCompletedRequest(
                namespace=ctx.namespace, task_token=token, result=Payloads(payloads=payload), identity="compat"
            )
            await ctx.client.workflow_service.respond_activity_task_completed(req)
            return req

        try:
            async with make_worker(ctx.client, ctx.task_queue):
                handle = await ctx.client.start_workflow(
                    cw.AsyncCompletionWorkflow.run, wid, id=wid, task_queue=ctx.task_queue
                )
                first = await complete(await asyncio.wait_for(tokens[wid], 20), "a")
                # The second activity's start proves the first completion was recorded.
                second_token = await asyncio.wait_for(tokens[wid + "-2"], 20)
                if workflow_open:
                    try:
                        return await ctx.client.workflow_service.respond_activity_task_completed(first)
                    finally:
                        await complete(second_token, "b")
                        assert await result_of(handle.result()) == "a+b"
                await complete(second_token, "b")
                assert await result_of(handle.result()) == "a+b"
        finally:
            for k in tokens:
                cw.TASK_TOKENS.pop(k, None)
        return await ctx.client.workflow_service.respond_activity_task_completed(first)

    return call


async def describe_missing(ctx: Ctx) -> Any:
    req = DescribeWorkflowExecutionRequest(
        namespace=ctx.namespace, execution=WorkflowExecution(workflow_id=f"missing-{uuid.uuid4()}")
    )
    return await ctx.client.workflow_service.describe_workflow_execution(req)


async def list_unknown_attribute(ctx: Ctx) -> Any:
    req = ListWorkflowExecutionsRequest(namespace=ctx.namespace, query="NoSuchAttribute = 'x'")
    return await ctx.client.workflow_service.list_workflow_executions(req)


@dataclass
class Case:
    id: str
    call: Call
    code: RPCStatusCode
    message: str
    detail: str | None = None


INVALID = RPCStatusCode.INVALID_ARGUMENT
TOO_BIG = Payloads(payloads=[Payload(metadata={"encoding": b"binary/plain"}, data=b"a" * (2 * 1024 * 1024 + 10))])

CASES = [
    # Observed: INVALID_ARGUMENT 'WorkflowId is not set on request.'
    Case("missing-workflow-id", start(workflow_id=None), INVALID, "WorkflowId is not set"),
    # Observed: INVALID_ARGUMENT 'WorkflowType is not set on request.'
    Case("missing-workflow-type", start(workflow_type=None), INVALID, "WorkflowType is not set"),
    # Observed: INVALID_ARGUMENT 'WorkflowType is not set on request.'
    Case("empty-workflow-type", start(workflow_type=WorkflowType(name="")), INVALID, "WorkflowType is not set"),
    # Observed: INVALID_ARGUMENT 'taskQueue is not set'
    Case("missing-task-queue", start(task_queue=None), INVALID, "taskQueue is not set"),
    # Observed: NOT_FOUND 'Namespace <ns> is not found.' + NamespaceNotFoundFailure
    Case(
        "unknown-namespace",
        start(namespace=f"no-such-ns-{uuid.uuid4().hex}"),
        RPCStatusCode.NOT_FOUND,
        "is not found",
        "NamespaceNotFoundFailure",
    ),
    # Observed: INVALID_ARGUMENT 'BackoffCoefficient cannot be less than 1 on retry policy.'
    Case(
        "retry-backoff-below-1",
        start(retry_policy=RetryPolicy(backoff_coefficient=0.5)),
        INVALID,
        "BackoffCoefficient cannot be less than 1",
    ),
    # Observed: INVALID_ARGUMENT 'MaximumInterval cannot be less than InitialInterval on retry policy.'
    Case(
        "retry-max-below-initial",
        start(retry_policy=RetryPolicy(initial_interval=Duration(seconds=10), maximum_interval=Duration(seconds=1))),
        INVALID,
        "MaximumInterval cannot be less than InitialInterval",
    ),
    # Observed: INVALID_ARGUMENT 'MaximumAttempts cannot be negative on retry policy.'
    Case(
        "retry-negative-attempts",
        start(retry_policy=RetryPolicy(maximum_attempts=-1)),
        INVALID,
        "MaximumAttempts cannot be negative",
    ),
    # Observed: INVALID_ARGUMENT 'An invalid WorkflowRunTimeoutSeconds is set on request. cause: negative duration'
    Case(
        "negative-run-timeout",
        start(workflow_run_timeout=Duration(seconds=-5)),
        INVALID,
        "WorkflowRunTimeout",
    ),
    # Observed: INVALID_ARGUMENT 'WorkflowId exceeds maximum allowed length (1001/1000)'
    Case("workflow-id-too-long", start(workflow_id="x" * 1001), INVALID, "WorkflowId exceeds maximum allowed length"),
    # Observed: INVALID_ARGUMENT 'Blob data size exceeds limit.'
    Case("payload-over-2mib", start(input=TOO_BIG), INVALID, "Blob data size exceeds limit."),
    # Observed: INVALID_ARGUMENT 'Error deserializing task token.'
    Case("garbage-token-activity-completed", garbage_activity_completed, INVALID, "Error deserializing task token"),
    Case("garbage-token-activity-failed", garbage_activity_failed, INVALID, "Error deserializing task token"),
    Case(
        "garbage-token-workflow-task-completed",
        garbage_workflow_task_completed,
        INVALID,
        "Error deserializing task token",
    ),
    # Observed: INVALID_ARGUMENT 'Task token not set on request.'
    Case("empty-token-activity-completed", empty_activity_token, INVALID, "Task token not set"),
    # Observed: NOT_FOUND 'invalid activityID or activity already timed out or invoking workflow is completed'
    # + NotFoundFailure
    Case(
        "stale-activity-token-open-workflow",
        stale_activity_token(workflow_open=True),
        RPCStatusCode.NOT_FOUND,
        "invalid activityID or activity already timed out",
        "NotFoundFailure",
    ),
    # Observed: NOT_FOUND 'workflow execution already completed' + NotFoundFailure
    Case(
        "stale-activity-token-closed-workflow",
        stale_activity_token(workflow_open=False),
        RPCStatusCode.NOT_FOUND,
        "workflow execution already completed",
        "NotFoundFailure",
    ),
    # Observed: NOT_FOUND 'workflow not found for ID: <id>' + NotFoundFailure
    Case(
        "describe-missing-workflow",
        describe_missing,
        RPCStatusCode.NOT_FOUND,
        "workflow not found for ID",
        "NotFoundFailure",
    ),
    # Observed: INVALID_ARGUMENT 'invalid query: invalid search attribute: NoSuchAttribute'
    Case("list-unknown-search-attribute", list_unknown_attribute, INVALID, "NoSuchAttribute"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input(client: Client, server, task_queue: str, case: Case) -> None:
    ctx = Ctx(client=client, namespace=server.namespace, task_queue=task_queue, cleanup=[])
    try:
        with pytest.raises(RPCError) as info:
            await asyncio.wait_for(case.call(ctx), 40)
    finally:
        # A case that unexpectedly started a workflow must not leave it running.
        for wid in ctx.cleanup:
            try:
                await client.get_workflow_handle(wid).terminate("compat cleanup")
            except RPCError:
                pass
    err = info.value
    print(f"observed: {err.status.name} {err.message!r}")
    assert err.status == case.code, f"{err.status!r} {err.message!r}"
    assert case.message in err.message, err.message
    details = err.grpc_status.details
    if case.detail:
        assert details, f"expected {case.detail} in details, got none ({err.message!r})"
        assert details[0].type_url == DETAIL_PREFIX + case.detail
    # The server still answers after each bad request.
    await client.workflow_service.get_system_info(GetSystemInfoRequest())


async def test_workflow_id_at_limit_is_accepted(client: Client, server, task_queue: str) -> None:
    """The 1,000-character limit is inclusive."""
    ctx = Ctx(client=client, namespace=server.namespace, task_queue=task_queue, cleanup=[])
    wid = "y" * 990 + uuid.uuid4().hex[:10]
    resp = await client.workflow_service.start_workflow_execution(start_req(ctx, workflow_id=wid))
    assert resp.run_id
    await client.get_workflow_handle(wid).terminate("compat cleanup")


async def test_server_survives_bad_input(client: Client, server) -> None:
    resp = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert resp.capabilities.sdk_metadata
    if server.log_file is not None:
        from compat_server import scan_log_for_panics

        assert scan_log_for_panics(server.log_file) == []


async def test_request_over_the_grpc_message_limit_is_refused_at_the_transport(client: Client, new_id) -> None:
    """A request over 4 MiB (grpc-go's default receive limit, which Temporal's frontend keeps) is
    refused before any handler runs, with grpc-go's status and words; one under it but over the
    blob limit gets the blob error instead."""
    with pytest.raises(RPCError) as blob:
        await client.start_workflow("Nope", "x" * 3_000_000, id=new_id("blob"), task_queue="tq-never-polled")
    assert blob.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert blob.value.message == "Blob data size exceeds limit."
    with pytest.raises(RPCError) as big:
        await client.start_workflow("Nope", "x" * 5_000_000, id=new_id("big"), task_queue="tq-never-polled")
    assert big.value.status == RPCStatusCode.RESOURCE_EXHAUSTED
    # The SDK compresses its requests; grpc-go then reports the limit after decompression.
    assert big.value.message == "grpc: received message after decompression larger than max 4194304"
