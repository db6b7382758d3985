"""Helpers for the dispatch tests (sticky queues, transient workflow-task attempts, eager dispatch).

`RawWorker` is a hand-written workflow worker on raw RPCs (`client.workflow_service`): a test
decides exactly which queue is polled when, what `sticky_attributes` a completion carries, when
a task fails or is left to time out, and when a worker is gone. The workflows and activities at
the end are for the SDK-level tests of the same features (no pytest imports here, so the workflow
sandbox re-imports this module cheaply).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from google.protobuf.duration_pb2 import Duration
from temporalio import activity, workflow
from temporalio.api.command.v1 import (
    Command,
    CompleteWorkflowExecutionCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
)
from temporalio.api.common.v1 import ActivityType, Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import (
    CommandType,
    EventType,
    QueryResultType,
    TaskQueueKind,
    WorkflowTaskFailedCause,
)
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.taskqueue.v1 import StickyExecutionAttributes, TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeTaskQueueResponse,
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryRequest,
    PollActivityTaskQueueRequest,
    PollActivityTaskQueueResponse,
    PollWorkflowTaskQueueRequest,
    PollWorkflowTaskQueueResponse,
    QueryWorkflowRequest,
    QueryWorkflowResponse,
    ResetStickyTaskQueueRequest,
    RespondActivityTaskCompletedRequest,
    RespondQueryTaskCompletedRequest,
    RespondWorkflowTaskCompletedRequest,
    RespondWorkflowTaskCompletedResponse,
    RespondWorkflowTaskFailedRequest,
    ShutdownWorkerRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
    StartWorkflowExecutionResponse,
)
from temporalio.client import Client

# A poll that expects a task: long enough for any dispatch, bounded so a bug fails instead of hanging.
TASK_POLL_TIMEOUT = timedelta(seconds=30)
# A poll that expects no task. The real server rejects long polls with a deadline under 2 s and
# answers with an empty response about 1 s before the deadline.
EMPTY_POLL_TIMEOUT = timedelta(seconds=3)

T = TypeVar("T")

RAW_WORKFLOW_TYPE = "RawDispatchWorkflow"
RAW_ACTIVITY_TYPE = "raw_activity"

WFT_SCHEDULED = EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
WFT_STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
WFT_TIMED_OUT = EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT

# The history every raw test starts from: the first task, as the poll of attempt 1 returns it.
FIRST_TASK = [(1, "WORKFLOW_EXECUTION_STARTED"), (2, "WORKFLOW_TASK_SCHEDULED"), (3, "WORKFLOW_TASK_STARTED")]


def ids_and_types(events: Sequence[HistoryEvent]) -> list[tuple[int, str]]:
    """(event id, event type without the EVENT_TYPE_ prefix) for each event."""
    return [(e.event_id, EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")) for e in events]


def event(events: Sequence[HistoryEvent], event_id: int) -> HistoryEvent:
    found = [e for e in events if e.event_id == event_id]
    assert len(found) == 1, f"event {event_id} not in {ids_and_types(events)}"
    return found[0]


def scheduled_queue(e: HistoryEvent) -> tuple[str, str, str]:
    """(name, kind, normal_name) of a WorkflowTaskScheduled event's task queue."""
    assert e.event_type == WFT_SCHEDULED, ids_and_types([e])
    tq = e.workflow_task_scheduled_event_attributes.task_queue
    return tq.name, TaskQueueKind.Name(tq.kind), tq.normal_name


def scheduled_attempt(e: HistoryEvent) -> int:
    assert e.event_type == WFT_SCHEDULED, ids_and_types([e])
    return e.workflow_task_scheduled_event_attributes.attempt


def complete_command() -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
        complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(),
    )


def schedule_activity_command(activity_id: str, task_queue: str, *, eager: bool) -> Command:
    return Command(
        command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
        schedule_activity_task_command_attributes=ScheduleActivityTaskCommandAttributes(
            activity_id=activity_id,
            activity_type=ActivityType(name=RAW_ACTIVITY_TYPE),
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            start_to_close_timeout=Duration(seconds=30),
            request_eager_execution=eager,
        ),
    )


def duration(td: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(td)
    return d


@dataclass
class RawWorker:
    """One raw worker identity on one normal task queue, with its own sticky queue name."""

    client: Client
    task_queue: str
    identity: str = field(default_factory=lambda: f"raw-worker-{uuid.uuid4().hex[:8]}")
    sticky_queue: str = field(default_factory=lambda: f"sticky-{uuid.uuid4()}")

    @property
    def namespace(self) -> str:
        return self.client.namespace

    @property
    def service(self) -> Any:
        return self.client.workflow_service

    def normal(self) -> TaskQueue:
        return TaskQueue(name=self.task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL)

    def sticky(self) -> TaskQueue:
        return TaskQueue(
            name=self.sticky_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=self.task_queue
        )

    def sticky_attributes(self, schedule_to_start: timedelta) -> StickyExecutionAttributes:
        return StickyExecutionAttributes(
            worker_task_queue=self.sticky(), schedule_to_start_timeout=duration(schedule_to_start)
        )

    # --- workflows -----------------------------------------------------------------------------

    def start_request(self, workflow_id: str, **overrides: Any) -> StartWorkflowExecutionRequest:
        fields: dict[str, Any] = dict(
            namespace=self.namespace,
            workflow_id=workflow_id,
            workflow_type=WorkflowType(name=RAW_WORKFLOW_TYPE),
            task_queue=self.normal(),
            request_id=str(uuid.uuid4()),
            identity=self.identity,
        )
        fields.update(overrides)
        return StartWorkflowExecutionRequest(**fields)

    async def start(self, workflow_id: str, **overrides: Any) -> StartWorkflowExecutionResponse:
        return await self.service.start_workflow_execution(self.start_request(workflow_id, **overrides))

    async def start_and_poll(self, workflow_id: str, **overrides: Any) -> PollWorkflowTaskQueueResponse:
        """Starts a workflow and takes its first task from the normal queue."""
        await self.start(workflow_id, **overrides)
        task = await self.poll_task()
        assert ids_and_types(task.history.events) == FIRST_TASK
        return task

    async def signal(self, workflow_id: str, name: str = "go") -> None:
        await self.service.signal_workflow_execution(
            SignalWorkflowExecutionRequest(
                namespace=self.namespace,
                workflow_execution=WorkflowExecution(workflow_id=workflow_id),
                signal_name=name,
                identity=self.identity,
                request_id=str(uuid.uuid4()),
            )
        )

    async def history(self, workflow_id: str) -> list[HistoryEvent]:
        """GetWorkflowExecutionHistory through the Python client, all pages."""
        events: list[HistoryEvent] = []
        token = b""
        while True:
            resp = await self.service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=self.namespace,
                    execution=WorkflowExecution(workflow_id=workflow_id),
                    next_page_token=token,
                )
            )
            events.extend(resp.history.events)
            token = resp.next_page_token
            if not token:
                return events

    async def describe(self, workflow_id: str) -> DescribeWorkflowExecutionResponse:
        return await self.service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=self.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
            )
        )

    # --- workflow tasks ------------------------------------------------------------------------

    async def poll(
        self, queue: TaskQueue | None = None, timeout: timedelta = TASK_POLL_TIMEOUT
    ) -> PollWorkflowTaskQueueResponse:
        """One poll; an empty response (no task_token) when nothing came before the deadline."""
        return await self.service.poll_workflow_task_queue(
            PollWorkflowTaskQueueRequest(
                namespace=self.namespace, task_queue=queue or self.normal(), identity=self.identity
            ),
            timeout=timeout,
        )

    async def poll_task(self, queue: TaskQueue | None = None) -> PollWorkflowTaskQueueResponse:
        """A poll that must return a task."""
        task = await self.poll(queue)
        assert task.task_token, f"no task on {queue or self.normal()} within {TASK_POLL_TIMEOUT}"
        return task

    async def poll_empty(self, queue: TaskQueue | None = None) -> PollWorkflowTaskQueueResponse:
        """A short poll, for when no task should come (the caller asserts that)."""
        return await self.poll(queue, EMPTY_POLL_TIMEOUT)

    async def wait_for_sticky_poller(self) -> DescribeTaskQueueResponse:
        """Until DescribeTaskQueue(kind STICKY) lists this worker as a poller of its sticky queue."""
        from compat_util import eventually  # not at module level: the workflow sandbox imports this module

        return await eventually(
            lambda: self.service.describe_task_queue(
                DescribeTaskQueueRequest(namespace=self.namespace, task_queue=self.sticky())
            ),
            lambda resp: any(p.identity == self.identity for p in resp.pollers),
            what=f"{self.identity} polling {self.sticky_queue}",
        )

    async def complete(
        self,
        task: PollWorkflowTaskQueueResponse,
        commands: Sequence[Command] = (),
        *,
        sticky: StickyExecutionAttributes | None = None,
        return_new_workflow_task: bool = False,
        force_create_new_workflow_task: bool = False,
    ) -> RespondWorkflowTaskCompletedResponse:
        req = RespondWorkflowTaskCompletedRequest(
            namespace=self.namespace,
            task_token=task.task_token,
            commands=list(commands),
            identity=self.identity,
            return_new_workflow_task=return_new_workflow_task,
            force_create_new_workflow_task=force_create_new_workflow_task,
        )
        if sticky is not None:
            req.sticky_attributes.CopyFrom(sticky)
        return await self.service.respond_workflow_task_completed(req)

    async def fail(self, task: PollWorkflowTaskQueueResponse, message: str = "raw worker fails this task") -> None:
        req = RespondWorkflowTaskFailedRequest(
            namespace=self.namespace,
            task_token=task.task_token,
            cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
            identity=self.identity,
        )
        req.failure.message = message
        await self.service.respond_workflow_task_failed(req)

    async def answer_query(self, task: PollWorkflowTaskQueueResponse, answer: str) -> None:
        payloads = await self.client.data_converter.encode([answer])
        await self.service.respond_query_task_completed(
            RespondQueryTaskCompletedRequest(
                namespace=self.namespace,
                task_token=task.task_token,
                completed_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED,
                query_result=Payloads(payloads=payloads),
            )
        )

    async def query(self, workflow_id: str, query_type: str = "state") -> QueryWorkflowResponse:
        req = QueryWorkflowRequest(namespace=self.namespace, execution=WorkflowExecution(workflow_id=workflow_id))
        req.query.query_type = query_type
        return await self.service.query_workflow(req, timeout=TASK_POLL_TIMEOUT)

    async def reset_sticky(self, workflow_id: str) -> None:
        await self.service.reset_sticky_task_queue(
            ResetStickyTaskQueueRequest(namespace=self.namespace, execution=WorkflowExecution(workflow_id=workflow_id))
        )

    async def shutdown(self) -> None:
        await self.service.shutdown_worker(
            ShutdownWorkerRequest(
                namespace=self.namespace, sticky_task_queue=self.sticky_queue, identity=self.identity, reason="test"
            )
        )

    # --- activity tasks ------------------------------------------------------------------------

    async def poll_activity(self, timeout: timedelta = TASK_POLL_TIMEOUT) -> PollActivityTaskQueueResponse:
        return await self.service.poll_activity_task_queue(
            PollActivityTaskQueueRequest(namespace=self.namespace, task_queue=self.normal(), identity=self.identity),
            timeout=timeout,
        )

    async def complete_activity(self, task_token: bytes, result: str, identity: str | None = None) -> None:
        payloads = await self.client.data_converter.encode([result])
        await self.service.respond_activity_task_completed(
            RespondActivityTaskCompletedRequest(
                namespace=self.namespace,
                task_token=task_token,
                result=Payloads(payloads=payloads),
                identity=identity or self.identity,
            )
        )


class Background:
    """Runs polls and queries as tasks next to the test body; on exit, tasks still running (the
    test failed before awaiting them) are cancelled instead of lingering on the session's loop."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    def __call__(self, aw: Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(aw)
        self._tasks.append(task)
        return task

    async def __aenter__(self) -> Background:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def cli_event_types(address: str, namespace: str, workflow_id: str) -> list[tuple[int, str]]:
    """(event id, type) of `temporal workflow show -o json`, i.e. what the CLI gets from the server."""
    from compat_server import temporal_cli  # not at module level: the workflow sandbox imports this module

    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    proc = await asyncio.create_subprocess_exec(
        str(temporal_cli()),
        *("workflow", "show", "--address", address, "--namespace", namespace, "-w", workflow_id, "-o", "json"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    events = json.loads(out)["events"]
    return [(int(e["eventId"]), e["eventType"].removeprefix("EVENT_TYPE_")) for e in events]


# --- workflows and activities for the SDK-level tests ------------------------------------------------


@workflow.defn
class StepsWorkflow:
    """Collects `count` 'step' signals and returns them; the query 'steps' shows them so far."""

    def __init__(self) -> None:
        self._steps: list[str] = []

    @workflow.run
    async def run(self, count: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self._steps) >= count)
        return self._steps

    @workflow.signal
    def step(self, value: str) -> None:
        self._steps.append(value)

    @workflow.query
    def steps(self) -> list[str]:
        return self._steps


# Workflow id -> how many times FlakyTaskWorkflow's code ran; shared with the workflow only when
# the worker uses the unsandboxed runner (the sandbox would re-import this module per run).
FLAKY_RUNS: dict[str, int] = {}


@workflow.defn
class FlakyTaskWorkflow:
    """Fails its workflow task `failures` times (a plain exception fails the task, not the workflow)."""

    @workflow.run
    async def run(self, failures: int) -> int:
        wid = workflow.info().workflow_id
        FLAKY_RUNS[wid] = FLAKY_RUNS.get(wid, 0) + 1
        if FLAKY_RUNS[wid] <= failures:
            raise RuntimeError(f"flaky task, run {FLAKY_RUNS[wid]}")
        return FLAKY_RUNS[wid]


@activity.defn
async def echo(value: str) -> str:
    return f"echo {value}"


@workflow.defn
class EchoActivitiesWorkflow:
    """Runs `count` echo activities one after another on the workflow's own task queue."""

    @workflow.run
    async def run(self, count: int) -> list[str]:
        out = []
        for i in range(count):
            out.append(await workflow.execute_activity(echo, str(i), start_to_close_timeout=timedelta(seconds=30)))
        return out
