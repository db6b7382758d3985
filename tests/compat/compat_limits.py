"""Workflows, activities and a Prometheus text parser for the limit and metric tests
(test_limits.py, test_metrics.py).

Kept free of pytest imports so the SDK's workflow sandbox can re-import the module. Workers for
these workflows run with eager activity execution disabled (`WORKER_KWARGS`), so every activity
goes through an activity poll on both servers (the real server would otherwise hand it to the
worker in the workflow task completion response).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

TIMEOUT = timedelta(seconds=10)
RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3)


@activity.defn
async def blob(size: int) -> str:
    """Returns `size` bytes (plus the JSON quotes) as its result."""
    return "x" * size


@activity.defn
async def echo(n: int) -> int:
    return n


async def _run(fn, arg) -> object:
    return await workflow.execute_activity(fn, arg, start_to_close_timeout=TIMEOUT, retry_policy=RETRY)


@dataclass
class GrowInput:
    steps: int
    result_size: int = 1


@workflow.defn
class GrowWorkflow:
    """Runs `steps` activities one after the other (six events each, each returning `result_size`
    bytes, which are not kept), then waits for `release` and returns the number of steps."""

    def __init__(self) -> None:
        self.done = 0
        self.released = False

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.query
    def steps_done(self) -> int:
        return self.done

    @workflow.run
    async def run(self, inp: GrowInput) -> int:
        for _ in range(inp.steps):
            await _run(blob, inp.result_size)
            self.done += 1
        await workflow.wait_condition(lambda: self.released)
        return self.done


@dataclass
class SuggestInput:
    steps: int
    # Continue as new (once) as soon as the server suggests it.
    follow: bool
    continued: bool = False
    # Bytes each activity returns (the results are not kept).
    result_size: int = 1


@dataclass
class SuggestResult:
    # The step before which the server first suggested continue-as-new, -1 if never.
    suggested_at: int
    steps: int
    continued: bool


@workflow.defn
class SuggestWorkflow:
    """Runs `steps` activities in sequence and checks `is_continue_as_new_suggested()` before each."""

    @workflow.run
    async def run(self, inp: SuggestInput) -> SuggestResult:
        suggested_at = -1
        for i in range(inp.steps):
            if workflow.info().is_continue_as_new_suggested():
                if suggested_at < 0:
                    suggested_at = i
                if inp.follow and not inp.continued:
                    workflow.continue_as_new(SuggestInput(steps=1, follow=True, continued=True))
            await _run(blob, inp.result_size)
        return SuggestResult(suggested_at, inp.steps, inp.continued)


@workflow.defn
class CollectWorkflow:
    """Collects the lengths of the strings it is signalled; returns them after `finish`."""

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.finished = False

    @workflow.signal
    def add(self, value: str) -> None:
        self.lengths.append(len(value))

    @workflow.signal
    def finish(self) -> None:
        self.finished = True

    @workflow.query
    def received(self) -> list[int]:
        return self.lengths

    @workflow.run
    async def run(self, note: str) -> list[int]:
        await workflow.wait_condition(lambda: self.finished)
        return self.lengths


# Task tokens of `complete_later` activities, by key, for tests that complete them with raw RPCs.
TASK_TOKENS: dict[str, asyncio.Future[bytes]] = {}


@activity.defn
async def complete_later(key: str) -> str:
    fut = TASK_TOKENS.get(key)
    if fut is not None and not fut.done():
        fut.set_result(activity.info().task_token)
    activity.raise_complete_async()


@dataclass
class BigResultInput:
    size: int
    # When set, the big activity is `complete_later(async_key)` and the test completes it.
    async_key: str = ""


@dataclass
class BigResultOutcome:
    before: int
    # "<exception class>: <message>" of the big activity's failure cause, or "" if it succeeded.
    error: str
    non_retryable: bool
    big: int
    after: int


@workflow.defn
class BigResultWorkflow:
    """A small activity, one whose result is `size` bytes, and another small one; the failure of the
    big one is caught and described, so the test sees what became of the result."""

    @workflow.run
    async def run(self, inp: BigResultInput) -> BigResultOutcome:
        before = len(str(await _run(blob, 3)))
        error, non_retryable, big = "", False, -1
        try:
            if inp.async_key:
                big = len(str(await _run(complete_later, inp.async_key)))
            else:
                big = len(str(await _run(blob, inp.size)))
        except ActivityError as e:
            cause = e.cause
            error = f"{type(cause).__name__}: {cause}"
            non_retryable = bool(getattr(cause, "non_retryable", False))
        after = len(str(await _run(blob, 5)))
        return BigResultOutcome(before=before, error=error, non_retryable=non_retryable, big=big, after=after)


@workflow.defn
class FanOutWorkflow:
    """Schedules `n` activities at once in one workflow task."""

    @workflow.run
    async def run(self, n: int) -> list[int]:
        return list(await asyncio.gather(*(_run(echo, i) for i in range(n))))


@workflow.defn
class TwoActivitiesWorkflow:
    """Two activities in sequence: 17 events."""

    @workflow.run
    async def run(self, n: int) -> int:
        a = await _run(echo, n)
        b = await _run(echo, a + 1)
        return b


@workflow.defn
class RaisingWorkflow:
    """Raises a plain exception in workflow code: the SDK fails the workflow task (and retries it)."""

    @workflow.run
    async def run(self, note: str) -> str:
        raise RuntimeError(f"bug in workflow code: {note}")


NDE_WORKFLOW = "LimitsNdeWorkflow"


@workflow.defn(name=NDE_WORKFLOW)
class NdeWorkflowV1:
    """v1: echo(1), wait for `proceed`, echo(2)."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, n: int) -> int:
        a = await _run(echo, n)
        await workflow.wait_condition(lambda: self.go)
        return a + await _run(echo, n + 1)


@workflow.defn(name=NDE_WORKFLOW)
class NdeWorkflowV2:
    """v2 without workflow.patched(): starts a timer where v1 scheduled an activity, so replaying
    v1's history fails with a non-determinism error."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.sleep(timedelta(milliseconds=1))
        await workflow.wait_condition(lambda: self.go)
        return n


LIMITS_WORKFLOWS: list[type] = [
    GrowWorkflow,
    SuggestWorkflow,
    CollectWorkflow,
    BigResultWorkflow,
    FanOutWorkflow,
    TwoActivitiesWorkflow,
    RaisingWorkflow,
]
LIMITS_ACTIVITIES = [blob, echo, complete_later]
# Worker options for every worker of these tests.
WORKER_KWARGS = {"disable_eager_activity_execution": True}

# --- Prometheus text format -------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(m.group(2) or "")}
        samples.append(Sample(m.group(1), labels, float(m.group(3))))
    return samples


def scrape(url: str) -> list[Sample]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return parse_metrics(resp.read().decode())


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def present(samples: list[Sample], name: str) -> bool:
    return any(s.name == name for s in samples)
