"""Temporal's HTTP API (`--http-port`): the same requests against Uhrwerk and the dev server
(`--reference-server`) give the same statuses and JSON shapes: routes from the `google.api.http`
annotations, proto3 JSON with the payload shorthand, errors as `google.rpc.Status`."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from compat_server import free_port
from compat_util import event_types, eventually, result_of


@workflow.defn(name="HttpGreeting", sandboxed=False)
class HttpGreeting:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self, greeting: str) -> dict:
        await workflow.wait_condition(lambda: bool(self.names))
        return {"text": f"{greeting}, {self.names[0]}", "count": len(self.names)}

    @workflow.signal
    def name(self, name: str) -> None:
        self.names.append(name)


def call(
    base: str, method: str, path: str, body: Any = None, query: dict | None = None, headers: dict | None = None
) -> tuple[int, Any]:
    url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


async def http(
    base: str, method: str, path: str, body: Any = None, query: dict | None = None, headers: dict | None = None
) -> tuple[int, Any]:
    return await asyncio.to_thread(call, base, method, path, body, query, headers)


async def start_server(server_factory):
    port = free_port()
    srv = server_factory("http", extra_args=("--http-port", str(port)))
    srv.start()
    client = await srv.wait_ready()
    base = f"http://127.0.0.1:{port}"
    await eventually(
        lambda: asyncio.to_thread(lambda: _reachable(base)), bool, timeout=30, what="the HTTP API answers"
    )
    return client, base


def _reachable(base: str) -> bool:
    try:
        call(base, "GET", "/api/v1/namespaces/default")
        return True
    except OSError:
        return False


async def test_a_workflow_started_signalled_and_read_over_http(server_factory, task_queue: str, new_id) -> None:
    client, base = await start_server(server_factory)
    wid = new_id("http")
    ns = f"/api/v1/namespaces/{client.namespace}"
    status, started = await http(
        base,
        "POST",
        f"{ns}/workflows/{wid}",
        {"workflowType": {"name": "HttpGreeting"}, "taskQueue": {"name": task_queue}, "input": ["Hello"]},
    )
    assert status == 200, started
    run_id = started["runId"]
    assert started["started"] is True

    # The gRPC side sees what the HTTP side wrote: a json/plain payload.
    handle = client.get_workflow_handle(wid)
    history = await handle.fetch_history()
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert (payload.metadata["encoding"], json.loads(payload.data)) == (b"json/plain", "Hello")

    status, described = await http(base, "GET", f"{ns}/workflows/{wid}")
    assert status == 200, described
    info = described["workflowExecutionInfo"]
    assert info["execution"] == {"workflowId": wid, "runId": run_id}
    assert info["type"] == {"name": "HttpGreeting"}
    assert info["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    assert info["taskQueue"] == task_queue
    assert isinstance(info["historyLength"], str) and int(info["historyLength"]) >= 2
    config = described["executionConfig"]
    assert config["taskQueue"] == {"name": task_queue, "kind": "TASK_QUEUE_KIND_NORMAL"}
    assert config["defaultWorkflowTaskTimeout"] == "10s"
    # No run or execution timeout was set: absent, not "0s".
    assert "workflowRunTimeout" not in config and "workflowExecutionTimeout" not in config, config

    status, signalled = await http(
        base,
        "POST",
        f"{ns}/workflows/{wid}/signal/name",
        {"workflowExecution": {"runId": run_id}, "input": ["HTTP"]},
    )
    assert status == 200, signalled
    async with Worker(client, task_queue=task_queue, workflows=[HttpGreeting]):
        assert await result_of(handle.result()) == {"text": "Hello, HTTP", "count": 1}

    status, body = await http(base, "GET", f"{ns}/workflows/{wid}/history")
    assert status == 200, body
    events = body["history"]["events"]
    assert events[0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert events[0]["eventId"] == "1"
    # Payload shorthand: JSON payloads are their values.
    assert events[0]["workflowExecutionStartedEventAttributes"]["input"] == ["Hello"]
    signaled = next(e for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED")
    assert signaled["workflowExecutionSignaledEventAttributes"]["input"] == ["HTTP"]
    completed = events[-1]
    assert completed["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    assert completed["workflowExecutionCompletedEventAttributes"]["result"] == [{"text": "Hello, HTTP", "count": 1}]
    assert [e["eventType"].removeprefix("EVENT_TYPE_") for e in events] == event_types(await handle.fetch_history())

    # ?noPayloadShorthand gives proto3 JSON's payload objects.
    status, body = await http(base, "GET", f"{ns}/workflows/{wid}/history", query={"noPayloadShorthand": ""})
    raw = body["history"]["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    assert base64.b64decode(raw["metadata"]["encoding"]) == b"json/plain"
    assert json.loads(base64.b64decode(raw["data"])) == "Hello"

    # Query parameters fill the request of a method without a body.
    status, listed = await http(base, "GET", f"{ns}/workflows", query={"query": f"WorkflowId = '{wid}'"})
    assert status == 200, listed
    assert [e["execution"]["workflowId"] for e in listed["executions"]] == [wid]
    assert listed["executions"][0]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.COMPLETED


async def test_http_errors_are_rpc_statuses(server_factory, task_queue: str, new_id) -> None:
    client, base = await start_server(server_factory)
    ns = f"/api/v1/namespaces/{client.namespace}"
    status, body = await http(base, "GET", f"{ns}/workflows/{new_id('missing')}")
    assert status == 404
    assert body["code"] == 5
    assert body["details"][0]["@type"] == "type.googleapis.com/temporal.api.errordetails.v1.NotFoundFailure"

    wid = new_id("twice")
    start = {"workflowType": {"name": "HttpGreeting"}, "taskQueue": {"name": task_queue}}
    assert (await http(base, "POST", f"{ns}/workflows/{wid}", {**start, "requestId": "one"}))[0] == 200
    status, body = await http(base, "POST", f"{ns}/workflows/{wid}", {**start, "requestId": "two"})
    assert status == 409
    assert body["code"] == 6
    detail = body["details"][0]
    assert detail["@type"] == "type.googleapis.com/temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure"
    assert detail["runId"]

    assert await http(base, "GET", "/api/v1/no/such/path") == (404, {"code": 5, "message": "Not Found"})
    assert await http(base, "DELETE", f"{ns}/workflows") == (501, {"code": 12, "message": "Method Not Allowed"})
    status, body = await http(base, "POST", f"{ns}/workflows/{wid}/terminate", {"reason": "over http"})
    assert status == 200, body
    history = await client.get_workflow_handle(wid).fetch_history()
    terminated = history.events[-1].workflow_execution_terminated_event_attributes
    assert terminated.reason == "over http"
    await eventually(
        client.get_workflow_handle(wid).describe,
        lambda d: d.status == WorkflowExecutionStatus.TERMINATED,
        what="terminated",
    )


async def test_a_grpc_timeout_header_is_the_deadline_of_an_http_call(server_factory, task_queue: str, new_id) -> None:
    """As grpc-gateway: `Grpc-Timeout` bounds a call over HTTP. A query that no worker answers
    ends with DEADLINE_EXCEEDED (504) at that deadline instead of holding for the server's
    long-poll limit."""
    client, base = await start_server(server_factory)
    ns = f"/api/v1/namespaces/{client.namespace}"
    wid = new_id("deadline")
    handle = await client.start_workflow(HttpGreeting.run, "Hi", id=wid, task_queue=task_queue)
    # A worker runs the first workflow task, then leaves: nobody is left to answer a query.
    async with Worker(client, task_queue=task_queue, workflows=[HttpGreeting], max_cached_workflows=0):
        await eventually(handle.fetch_history, lambda h: len(h.events) >= 4, what="the first workflow task")
    # Without the header the call would hold for the long-poll limit (a minute), past this
    # client's 30 s timeout.
    status, body = await http(
        base, "POST", f"{ns}/workflows/{wid}/query/names", {"query": {}}, headers={"Grpc-Timeout": "2S"}
    )
    assert (status, body["code"]) == (504, 4), body
