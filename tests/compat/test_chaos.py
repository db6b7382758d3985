"""Chaos: many `kill -9`s at random moments while a mixed workload runs; nothing acknowledged is
lost or done twice.

N workflows (`UHRWERK_CHAOS_WORKFLOWS`, default 60) each run 1-3 activities (side effects appended
to a file: workflow id, run, step, attempt), a durable timer of 1-2 s, wait for 1-3 signals (fixed
request ids) and 0-2 updates (fixed update ids), and some start a child workflow or continue as new
2-3 times carrying their state. One schedule (every 2 s, a limited number of actions) runs
alongside. The starter, signaller and updater go on through the kills, retrying UNAVAILABLE,
dropped connections and timeouts with the same request or update id; the SDK worker stays up and
reconnects by itself. Some starts, signals and updates are also sent twice on purpose, and after
its result each workflow's first signal and update are sent again to its first run (by then
completed or continued as new), as a client does whose answer a kill swallowed: Temporal answers
them as the first time (OK, the update's outcome) and applies nothing again.

K kills (`UHRWERK_CHAOS_KILLS`, default 6) at seeded random moments (`UHRWERK_CHAOS_SEED` replays
the plan: workload, pacing and kill moments, not the thread interleavings), each followed by a
restart on the same database; at least one lands in the start-up recovery (the restarted process
has its database open, its port is still closed), others a random 3-200 ms after a restart.
Afterwards every workflow has exactly its expected result (which encodes its signals, updates,
child result and continue-as-new count), one run chain ending in one completion, each signal and
update in the history once, its timer fired after it waited; every activity step ran at least once
and no step whose completion the server had recorded before a kill ran again after it; the
schedule took all its actions, each nominal time once; the log has no panic and the server stops
cleanly on SIGTERM; calls sent again were answered as the first time.

The long form: `bench/chaos.sh` (500 workflows, 10 kills). Each run writes `chaos.txt` (seed,
plan, kill moments) next to the server's log in the test's output directory. Skipped in cluster
mode (test_cluster.py kills the nodes of a cluster).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import socket
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import EventType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.service import RetryConfig, RPCError, RPCStatusCode
from temporalio.worker import Worker

import compat_cluster
import compat_server
from compat_util import event_types, eventually

T = TypeVar("T")
UTC = timezone.utc

WORKFLOWS = int(os.environ.get("UHRWERK_CHAOS_WORKFLOWS", "60"))
KILLS = int(os.environ.get("UHRWERK_CHAOS_KILLS", "6"))
SEED_ENV = os.environ.get("UHRWERK_CHAOS_SEED", "").strip()
# A generous outer bound; the CI form takes well under 90 s.
TIMEOUT_S = 180 + WORKFLOWS + 20 * KILLS

SCHEDULE_EVERY_S = 2
SCHEDULE_ACTIONS = KILLS + 4  # so that the schedule runs through most of the kills
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

pytestmark = [
    pytest.mark.needs_managed_server,
    pytest.mark.timeout(TIMEOUT_S),
    pytest.mark.skipif(
        compat_cluster.enabled(),
        reason="cluster mode: test_cluster.py kills the nodes of clusters; this test kills one server process "
        "and watches its start-up",
    ),
]

# For the worker's client: a task completion is retried across a restart (the SDK's default gives
# up after 10 s, and a kill during start-up recovery can keep the server away longer).
WORKER_RETRY = RetryConfig(max_elapsed_time_millis=120_000, max_retries=1_000)


# --- workflows and activities (in this process; no sandbox) -------------------------------------


@dataclass
class StepInput:
    path: str
    workflow_id: str
    run: int
    seq: int
    delay_ms: int


@activity.defn(name="chaos_step")
async def chaos_step(inp: StepInput) -> str:
    """Appends `workflow_id,run,seq,attempt` to the side-effect file, then works a little."""
    line = f"{inp.workflow_id},{inp.run},{inp.seq},{activity.info().attempt}\n"
    # O_APPEND writes of one short line are atomic: concurrent activities do not interleave.
    fd = os.open(inp.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    await asyncio.sleep(inp.delay_ms / 1000)
    return f"{inp.workflow_id}#{inp.seq}"


STEP_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=5),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=1)),
}


@dataclass
class ChildInput:
    path: str
    value: int
    delay_ms: int


@workflow.defn(name="ChaosChild", sandboxed=False)
class ChaosChild:
    @workflow.run
    async def run(self, inp: ChildInput) -> int:
        wid = workflow.info().workflow_id
        await workflow.execute_activity(chaos_step, StepInput(inp.path, wid, 0, 0, inp.delay_ms), **STEP_OPTIONS)
        return inp.value * 7 + 1


@workflow.defn(name="ChaosTick", sandboxed=False)
class ChaosTick:
    """What the schedule starts: one activity."""

    @workflow.run
    async def run(self, path: str) -> str:
        wid = workflow.info().workflow_id
        await workflow.execute_activity(chaos_step, StepInput(path, wid, 0, 0, 50), **STEP_OPTIONS)
        return wid


@dataclass
class ChaosInput:
    path: str
    acts: int  # activities in the first run
    timer_ms: int
    signals: int  # signals the first run waits for
    updates: int  # updates the first run waits for
    child: int  # the child's input, -1 for no child
    continues: int  # times the workflow continues as new
    delay_ms: int  # each activity's work
    # Carried from run to run.
    run: int = 0
    steps: list[str] = field(default_factory=list)
    got_signals: list[int] = field(default_factory=list)
    got_updates: list[int] = field(default_factory=list)
    child_result: int | None = None
    waited_ms: int = 0


@dataclass
class ChaosResult:
    runs: int
    steps: list[str]
    signals: list[int]
    updates: list[int]
    child_result: int | None
    waited_ms: int


@workflow.defn(name="ChaosWorkflow", sandboxed=False)
class ChaosWorkflow:
    """Run 0: activities, a timer, its signals and updates, a child; then 0-3 continued runs of
    one activity each. The result carries everything it saw."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.updates: list[int] = []

    @workflow.run
    async def run(self, inp: ChaosInput) -> ChaosResult:
        wid = workflow.info().workflow_id
        steps = list(inp.steps)

        async def step(seq: int) -> str:
            return await workflow.execute_activity(
                chaos_step, StepInput(inp.path, wid, inp.run, seq, inp.delay_ms), **STEP_OPTIONS
            )

        if inp.run == 0:
            for seq in range(inp.acts):
                steps.append(await step(seq))
            before = workflow.now()
            await workflow.sleep(timedelta(milliseconds=inp.timer_ms))
            waited_ms = int((workflow.now() - before) / timedelta(milliseconds=1))
            # Every run 0 waits for at least one signal, sent after its start was acknowledged:
            # so a retried start (same request id) always finds this run still open.
            await workflow.wait_condition(
                lambda: len(self.signals) >= inp.signals and len(self.updates) >= inp.updates
            )
            child_result = None
            if inp.child >= 0:
                child_result = await workflow.execute_child_workflow(
                    ChaosChild.run, ChildInput(inp.path, inp.child, inp.delay_ms), id=f"{wid}-child"
                )
            carried = dataclasses.replace(
                inp,
                steps=steps,
                got_signals=sorted(self.signals),
                got_updates=sorted(self.updates),
                child_result=child_result,
                waited_ms=waited_ms,
            )
        else:
            steps.append(await step(inp.acts + inp.run - 1))
            carried = dataclasses.replace(inp, steps=steps)
        if inp.run < inp.continues:
            workflow.continue_as_new(dataclasses.replace(carried, run=inp.run + 1))
        return ChaosResult(
            runs=inp.run + 1,
            steps=carried.steps,
            signals=carried.got_signals,
            updates=carried.got_updates,
            child_result=carried.child_result,
            waited_ms=carried.waited_ms,
        )

    @workflow.signal(name="put")
    def put(self, value: int) -> None:
        self.signals.append(value)

    @workflow.update(name="add")
    def add(self, value: int) -> int:
        self.updates.append(value)
        return value + 1000


# --- the plan (all random choices, from the seed) ------------------------------------------------


@dataclass
class Plan:
    wid: str
    inp: ChaosInput
    signal_values: list[int]
    update_values: list[int]
    start_at: float  # server uptime (s) after which the workflow is started
    signal_after: list[float]  # wall-clock delays after the start was acknowledged
    update_after: list[float]
    resend_start: bool
    resend_signal: int  # index of a signal sent twice on purpose, -1 for none
    resend_update: int

    def expected(self) -> ChaosResult:
        i = self.inp
        return ChaosResult(
            runs=i.continues + 1,
            steps=[f"{self.wid}#{seq}" for seq in range(i.acts + i.continues)],
            signals=sorted(self.signal_values),
            updates=sorted(self.update_values),
            child_result=None if i.child < 0 else i.child * 7 + 1,
            waited_ms=-1,  # checked on its own: at least the timer
        )

    def effect_keys(self) -> set[tuple[str, int]]:
        keys = {(self.wid, seq) for seq in range(self.inp.acts + self.inp.continues)}
        if self.inp.child >= 0:
            keys.add((f"{self.wid}-child", 0))
        return keys


@dataclass
class Kill:
    kind: str  # "serving": the server had answered; "start-up": a few ms after a restart
    delay_s: float  # after the server answered, or after the restart
    # A start-up kill at the first moment the database is seen open (instead of after delay_s).
    in_recovery: bool = False
    at_s: float = 0.0  # since the chaos began
    after_restart_ms: float | None = None
    stage: str = ""  # STARTING, RECOVERING or ANSWERING for start-up kills
    in_flight: int = 0

    def phase(self) -> str:
        if self.after_restart_ms is None:
            return "serving"
        how = "at the database's opening" if self.in_recovery else "at a random moment"
        return f"{self.after_restart_ms:.1f} ms after the restart ({how}): {self.stage}"


def make_plans(rng: random.Random, prefix: str, path: str, uptime_span: float) -> list[Plan]:
    plans = []
    for i in range(WORKFLOWS):
        shape = rng.random()
        n_signals = rng.randint(1, 3)
        n_updates = rng.randint(0, 2)
        inp = ChaosInput(
            path=path,
            acts=rng.randint(1, 3),
            timer_ms=rng.randint(10, 20) * 100,
            signals=n_signals,
            updates=n_updates,
            child=i if shape < 0.35 else -1,
            continues=rng.randint(2, 3) if 0.3 <= shape < 0.65 else 0,
            delay_ms=rng.randint(50, 150),
        )
        plans.append(
            Plan(
                wid=f"{prefix}-{i}",
                inp=inp,
                signal_values=[100 * i + j for j in range(n_signals)],
                update_values=[100 * i + 50 + j for j in range(n_updates)],
                start_at=0.0 if i == 0 else rng.uniform(0, uptime_span),
                signal_after=[rng.uniform(0, 1.5) for _ in range(n_signals)],
                update_after=[rng.uniform(0, 1.5) for _ in range(n_updates)],
                resend_start=rng.random() < 0.25,
                resend_signal=rng.randrange(n_signals) if rng.random() < 0.25 else -1,
                resend_update=rng.randrange(n_updates) if n_updates and rng.random() < 0.25 else -1,
            )
        )
    return plans


def make_kills(rng: random.Random) -> list[Kill]:
    """K kills: the first of a running server; at least one other in the start-up recovery (as
    soon as the restarted server has its database open), some others a random 3-200 ms after a
    restart, the rest at random moments of a server that answers."""
    assert KILLS >= 2, "UHRWERK_CHAOS_KILLS must be at least 2 (one of them during start-up)"
    kinds = ["serving"] + ["start-up" if rng.random() < 0.25 else "serving" for _ in range(KILLS - 1)]
    in_recovery = rng.randrange(1, KILLS)
    kinds[in_recovery] = "start-up"
    return [
        Kill(kind, rng.uniform(0.3, 3.0) if kind == "serving" else rng.uniform(0.003, 0.2), k == in_recovery)
        for k, kind in enumerate(kinds)
    ]


# --- clients that go on through the kills ---------------------------------------------------------


def retriable(e: BaseException) -> bool:
    """What a client sees while the server is down or starting: UNAVAILABLE, a connection dropped
    under a call, a deadline (the RPC's or our own per-attempt bound), an update call timing out."""
    if isinstance(e, RPCError):
        if e.status == RPCStatusCode.UNKNOWN and e.message == "transport error":
            return True  # the connection dropped under a call: its outcome is unknown
        return e.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(e, WorkflowUpdateRPCTimeoutOrCancelledError | TimeoutError)


def error_kind(e: BaseException) -> str:
    return e.status.name if isinstance(e, RPCError) and e.status is not None else type(e).__name__


def not_found(e: BaseException) -> bool:
    return isinstance(e, RPCError) and e.status == RPCStatusCode.NOT_FOUND


def update_lost(e: BaseException) -> bool:
    """PollWorkflowExecutionUpdate's NOT_FOUND for an update id the run does not know."""
    message = e.message.lower() if isinstance(e, RPCError) else ""
    return not_found(e) and "update" in message and "workflow execution" not in message


class Retrier:
    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self.errors: Counter[str] = Counter()
        self.retried_calls: Counter[str] = Counter()
        # Signals and updates answered NOT_FOUND: each names a run that exists, and was sent
        # again with the same request or update id (after an attempt whose outcome is unknown,
        # within the SDK's own retries, or on purpose) once the run had its signals and updates
        # and closed or continued as new. Temporal answers a signal's request id it has seen with
        # OK and an update id with its outcome, also after the run closed or continued as new.
        self.refused: list[str] = []

    async def call(
        self,
        call: Callable[[], Awaitable[T]],
        what: str,
        kind: str,
        per_attempt_s: float = 30.0,
        sent_before: bool = False,
    ) -> T | None:
        """`call()` until it succeeds, retrying retriable errors with the same request. A signal
        or update answered NOT_FOUND is recorded in `refused` and ends the call (None): the
        workflow's result and history tell whether it took effect once. `sent_before`: the call
        was answered once already."""
        deadline = time.monotonic() + self.deadline_s
        failed = False
        while True:
            try:
                return await asyncio.wait_for(call(), per_attempt_s)
            except Exception as e:
                if kind == "update" and update_lost(e):
                    # Admitted, not accepted, and lost with the server (Temporal keeps admitted
                    # updates in memory only): the same update id again admits it again.
                    pass
                elif kind in ("signal", "update") and not_found(e):
                    how = "sent again" if sent_before else "retried after a failed attempt" if failed else "first call"
                    self.refused.append(f"{what} ({how}): {e!r}")
                    return None
                elif not retriable(e):
                    raise AssertionError(f"{what}: {e!r} (not retriable; an attempt failed before: {failed})") from e
                if not failed:
                    self.retried_calls[kind] += 1
                failed = True
                self.errors[error_kind(e)] += 1
                if time.monotonic() > deadline:
                    raise AssertionError(f"{what} kept failing for {self.deadline_s}s: {e!r}") from e
                await asyncio.sleep(0.2)


# --- the server --------------------------------------------------------------------------------


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


STARTING, RECOVERING, ANSWERING = (
    "starting (database not open yet)",
    "recovering (database open, port closed)",
    "answering (port open)",
)


def database_open(pid: int, db_file: Path) -> bool:
    """The process has its database open: the SQLite file, or on PostgreSQL a connection (the
    only connection a server makes before its port opens)."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:  # gone, or an fd closed while we looked
        return False
    if not compat_server.on_postgres():
        return str(db_file.resolve()) in links
    inodes = {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and fields[9] in inodes:  # ESTABLISHED
                    return True
    return False


def startup_stage(srv: Any) -> str:
    if port_open(srv.port):
        return ANSWERING
    return RECOVERING if database_open(srv.proc.pid, srv.db_file) else STARTING


def recoveries(log_file: Path) -> list[str]:
    """What each start's recovery found, from the banner lines (Uhrwerk only)."""
    text = log_file.read_text(errors="replace")
    return [line.split("recovered:", 1)[1].strip() for line in text.splitlines() if "recovered:" in line]


class Uptime:
    """Time the server has been answering since the chaos began: the starter paces by it, so
    that the starts spread over the kills even when restarts are slow."""

    def __init__(self) -> None:
        self.served = 0.0
        self.since: float | None = None

    def up(self) -> None:
        self.since = time.monotonic()

    def down(self) -> None:
        if self.since is not None:
            self.served += time.monotonic() - self.since
            self.since = None

    def now(self) -> float:
        return self.served + (time.monotonic() - self.since if self.since is not None else 0.0)


# --- effects and histories ---------------------------------------------------------------------


def read_effects(path: Path) -> list[tuple[str, int, int, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        wid, run, seq, attempt = line.split(",")
        rows.append((wid, int(run), int(seq), int(attempt)))
    return rows


def acknowledged_steps(rows: list[tuple[str, int, int, int]]) -> set[tuple[str, int]]:
    """Steps whose completion the server had recorded: a workflow's activities run one after the
    other, so once step k+1 ran (across continue-as-new too), step k's completion was committed."""
    seen = {(w, s) for w, _, s, _ in rows}
    return {(w, s) for (w, s) in seen if (w, s + 1) in seen}


def payload_value(payloads) -> Any:
    return json.loads(payloads.payloads[0].data)


async def run_chain(client: Client, plan: Plan, run0: str) -> list[list[Any]]:
    """The histories of the workflow's runs, from run 0 along its continue-as-new links."""
    chain, run_id = [], run0
    while run_id:
        history = await client.get_workflow_handle(plan.wid, run_id=run_id).fetch_history()
        events = list(history.events)
        chain.append(events)
        last = events[-1]
        run_id = ""
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        assert len(chain) <= plan.inp.continues + 1, (plan.wid, "more runs than planned", len(chain))
    return chain


def check_chain(plan: Plan, chain: list[list[Any]]) -> None:
    wid, inp = plan.wid, plan.inp
    assert len(chain) == inp.continues + 1, (wid, [event_types(events)[-1] for events in chain])
    for r, events in enumerate(chain):
        types = event_types(events)
        counts = Counter(types)
        where = (wid, r, types)
        assert [e.event_id for e in events] == list(range(1, len(events) + 1)), where
        assert types[0] == "WORKFLOW_EXECUTION_STARTED" and counts["WORKFLOW_EXECUTION_STARTED"] == 1, where
        closing = "WORKFLOW_EXECUTION_CONTINUED_AS_NEW" if r < inp.continues else "WORKFLOW_EXECUTION_COMPLETED"
        assert types[-1] == closing, where
        closes = [t for t in types if t.startswith("WORKFLOW_EXECUTION_") and t != "WORKFLOW_EXECUTION_STARTED"]
        closes = [t for t in closes if not t.startswith(("WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_EXECUTION_UPDATE"))]
        assert closes == [closing], where
        assert counts["ACTIVITY_TASK_COMPLETED"] == (inp.acts if r == 0 else 1), where
        assert counts["ACTIVITY_TASK_SCHEDULED"] == counts["ACTIVITY_TASK_COMPLETED"], where
        if r > 0:
            assert not counts["TIMER_STARTED"] and not counts["WORKFLOW_EXECUTION_SIGNALED"], where
            continue
        # The timer started and fired once.
        assert counts["TIMER_STARTED"] == 1 and counts["TIMER_FIRED"] == 1, where
        # Each signal once (fixed request ids: retried and re-sent signals deduplicated).
        signaled = sorted(
            payload_value(e.workflow_execution_signaled_event_attributes.input)
            for e in events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        )
        assert signaled == sorted(plan.signal_values), (wid, "signals in the history", signaled)
        # Each update accepted and completed once.
        accepted = sorted(
            e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
            for e in events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        )
        assert accepted == sorted(f"{wid}-u{j}" for j in range(inp.updates)), (wid, "updates accepted", accepted)
        assert counts["WORKFLOW_EXECUTION_UPDATE_COMPLETED"] == inp.updates, where
        children = 1 if inp.child >= 0 else 0
        assert counts["START_CHILD_WORKFLOW_EXECUTION_INITIATED"] == children, where
        assert counts["CHILD_WORKFLOW_EXECUTION_STARTED"] == children, where
        assert counts["CHILD_WORKFLOW_EXECUTION_COMPLETED"] == children, where


def nominal_time_of(action_id: str, workflow_id: str) -> datetime:
    """A scheduled workflow's id is `<action id>-<nominal time, RFC 3339 to the second, Z>`."""
    assert workflow_id.startswith(action_id + "-"), (action_id, workflow_id)
    return datetime.strptime(workflow_id[len(action_id) + 1 :], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def collect(items: Any) -> list[Any]:
    return [item async for item in items]


# --- the test ---------------------------------------------------------------------------------------


async def test_chaos_kill9_at_random_moments(server_factory, test_dir: Path, task_queue: str, new_id) -> None:
    seed = int(SEED_ENV) if SEED_ENV else random.SystemRandom().randrange(1 << 32)
    print(f"\nchaos: seed {seed} (UHRWERK_CHAOS_SEED={seed} replays it), {WORKFLOWS} workflows, {KILLS} kills")
    rng = random.Random(seed)
    kills = make_kills(rng)
    # The starts spread over the server's uptime until the last kill.
    uptime_span = sum(k.delay_s for k in kills if k.kind == "serving")
    effects = test_dir / "side_effects.csv"
    prefix = new_id("chaos")
    plans = make_plans(rng, prefix, str(effects), 0.95 * uptime_span)
    (test_dir / "chaos.txt").write_text(
        f"seed {seed}\nworkflows {WORKFLOWS}\nkills {[dataclasses.asdict(k) for k in kills]}\n"
        + "".join(f"{p.wid} {dataclasses.asdict(p.inp) | {'start_at': p.start_at}}\n" for p in plans)
    )

    srv = server_factory("chaos")
    srv.start()
    client = await srv.wait_ready()
    worker_client = await Client.connect(srv.address, namespace=client.namespace, retry_config=WORKER_RETRY)
    retrier = Retrier(deadline_s=TIMEOUT_S / 2)
    uptime = Uptime()
    began = time.monotonic()
    started: set[str] = set()
    done: set[str] = set()
    run0s: dict[str, str] = {}
    snapshots: list[tuple[int, set[tuple[str, int]]]] = []  # (effect lines at a kill, acknowledged steps)
    ready_after: list[float] = []  # restart to answering, for the kills followed by one
    resends: Counter[str] = Counter()
    chaos_took: list[float] = []

    async def start(plan: Plan) -> str:
        req = StartWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_id=plan.wid,
            workflow_type=WorkflowType(name="ChaosWorkflow"),
            task_queue=TaskQueue(name=task_queue),
            input=Payloads(payloads=await client.data_converter.encode([plan.inp])),
            identity=client.identity,
            request_id=f"{plan.wid}-start",
        )

        async def attempt() -> str:
            service = client.workflow_service
            return (await service.start_workflow_execution(req, retry=False, timeout=timedelta(seconds=10))).run_id

        run_id = await retrier.call(attempt, f"start {plan.wid}", "start")
        assert run_id
        if plan.resend_start:
            # A client that lost the answer sends the same request again: the same run.
            again = await retrier.call(attempt, f"start {plan.wid} again", "start")
            assert again == run_id, (plan.wid, run_id, again)
            resends["start"] += 1
        return run_id

    async def send_signal(plan: Plan, run0: str, j: int, what: str, sent_before: bool = False) -> None:
        req = SignalWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=plan.wid, run_id=run0),
            signal_name="put",
            input=Payloads(payloads=await client.data_converter.encode([plan.signal_values[j]])),
            identity=client.identity,
            request_id=f"{plan.wid}-put-{j}",
        )

        async def attempt() -> None:
            await client.workflow_service.signal_workflow_execution(req, retry=False, timeout=timedelta(seconds=10))

        await retrier.call(attempt, f"{what} {plan.wid}/{j}", "signal", sent_before=sent_before)

    async def send_update(plan: Plan, run0: str, j: int, what: str, sent_before: bool = False) -> None:
        handle = client.get_workflow_handle_for(ChaosWorkflow.run, plan.wid, run_id=run0)
        value = plan.update_values[j]

        async def attempt() -> int:
            return await handle.execute_update(ChaosWorkflow.add, value, id=f"{plan.wid}-u{j}")

        outcome = await retrier.call(attempt, f"{what} {plan.wid}/{j}", "update", sent_before=sent_before)
        assert outcome in (value + 1000, None), (what, plan.wid, j, outcome)

    async def signal(plan: Plan, run0: str, j: int) -> None:
        await asyncio.sleep(plan.signal_after[j])
        await send_signal(plan, run0, j, "signal")
        if j == plan.resend_signal:
            # The same request again, as by a client that lost the answer: deduplicated.
            await send_signal(plan, run0, j, "signal sent again", sent_before=True)
            resends["signal"] += 1

    async def update(plan: Plan, run0: str, j: int) -> None:
        await asyncio.sleep(plan.update_after[j])
        await send_update(plan, run0, j, "update")
        if j == plan.resend_update:
            # The same update id again: its outcome, not a second application.
            await send_update(plan, run0, j, "update sent again", sent_before=True)
            resends["update"] += 1

    async def drive(plan: Plan) -> ChaosResult:
        deadline = time.monotonic() + TIMEOUT_S / 2
        while uptime.now() < plan.start_at:
            assert time.monotonic() < deadline, "the server never served long enough to start every workflow"
            await asyncio.sleep(0.05)
        started.add(plan.wid)
        run0 = await start(plan)
        run0s[plan.wid] = run0
        await asyncio.gather(
            *(signal(plan, run0, j) for j in range(plan.inp.signals)),
            *(update(plan, run0, j) for j in range(plan.inp.updates)),
        )
        handle = client.get_workflow_handle_for(ChaosWorkflow.run, plan.wid, run_id=run0)
        result = await retrier.call(handle.result, f"result of {plan.wid}", "result", per_attempt_s=60)
        done.add(plan.wid)
        # What a client whose answer was lost in a kill does after run 0 closed (completed or
        # continued as new): the same signal request and update id again, to run 0. Temporal
        # answers OK and the update's outcome; nothing is applied again (the history says).
        await send_signal(plan, run0, 0, "signal sent again after run 0 closed", sent_before=True)
        if plan.inp.updates:
            await send_update(plan, run0, 0, "update sent again after run 0 closed", sent_before=True)
        resends["after run 0 closed"] += 1
        return result

    async def chaos() -> None:
        uptime.up()
        restarted_at = 0.0
        k = 0
        while k < len(kills):
            kill = kills[k]
            if kill.kind == "serving":
                await asyncio.sleep(kill.delay_s)  # a random moment of a server that answers
            else:
                # The previous kill's restart just happened. The loop blocks (0.5 s at most) to
                # keep the moment precise: a random one, or the first at which the database is open.
                if kill.in_recovery:
                    while startup_stage(srv) == STARTING and time.monotonic() < restarted_at + 0.5:
                        time.sleep(0.0002)
                else:
                    time.sleep(max(0.0, restarted_at + kill.delay_s - time.monotonic()))
                kill.stage = startup_stage(srv)
                kill.after_restart_ms = (time.monotonic() - restarted_at) * 1000
                if kill.in_recovery and kill.stage == ANSWERING and k < KILLS + 5:
                    # The start-up outran the look at it (a busy machine): one more try.
                    kills.insert(k + 1, Kill("start-up", 0.0, in_recovery=True))
            srv.kill9()
            uptime.down()
            kill.at_s = time.monotonic() - began
            kill.in_flight = len(started - done)
            rows = read_effects(effects)
            snapshots.append((len(rows), acknowledged_steps(rows)))
            srv.restart()
            restarted_at = time.monotonic()
            k += 1
            if k < len(kills) and kills[k].kind == "start-up":
                continue
            await srv.wait_ready(deadline_s=60)
            ready_after.append(time.monotonic() - restarted_at)
            uptime.up()
        chaos_took.append(time.monotonic() - began)
        with (test_dir / "chaos.txt").open("a") as f:
            f.writelines(f"kill at {x.at_s:.3f} s: {x.phase()}, {x.in_flight} in flight\n" for x in kills)

    async with Worker(
        worker_client,
        task_queue=task_queue,
        workflows=[ChaosWorkflow, ChaosChild, ChaosTick],
        activities=[chaos_step],
        max_concurrent_activities=50,
    ):
        sid, aid = f"{prefix}-schedule", f"{prefix}-tick"
        schedule = await client.create_schedule(
            sid,
            Schedule(
                action=ScheduleActionStartWorkflow(ChaosTick.run, str(effects), id=aid, task_queue=task_queue),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=SCHEDULE_EVERY_S))]),
                # ALLOW_ALL: no nominal time is skipped for a run still in flight.
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
                state=ScheduleState(limited_actions=True, remaining_actions=SCHEDULE_ACTIONS),
            ),
        )
        chaos_task = asyncio.ensure_future(chaos())
        drivers = [asyncio.ensure_future(drive(p)) for p in plans]
        try:
            # A failed driver stops everything at once (gather alone would leave the rest running).
            results = (await asyncio.gather(chaos_task, *drivers))[1:]
        except BaseException:
            for task in (chaos_task, *drivers):
                task.cancel()
            await asyncio.gather(chaos_task, *drivers, return_exceptions=True)
            if srv.proc is not None and srv.proc.poll() is not None:
                srv.restart()  # for the worker's shutdown; the fixture stops it
            raise
        workload_s = time.monotonic() - began

        # The schedule took all its actions.
        desc = await eventually(
            lambda: retrier.call(schedule.describe, "describe the schedule", "describe"),
            lambda d: d.info.num_actions >= SCHEDULE_ACTIONS and not d.info.running_actions,
            timeout=SCHEDULE_EVERY_S * SCHEDULE_ACTIONS + 60,
            interval=0.3,
            what=f"{SCHEDULE_ACTIONS} scheduled actions done",
        )
        ticks = await eventually(
            lambda: collect(client.list_workflows(f"TemporalScheduledById = '{sid}'")),
            lambda rs: len(rs) >= SCHEDULE_ACTIONS
            and all(wf.status == WorkflowExecutionStatus.COMPLETED for wf in rs),
            timeout=30,
            what="the scheduled runs completed",
        )

    # The summary first, so that it is there when a check fails.
    startup_kills = [k for k in kills if k.kind == "start-up"]
    found = recoveries(srv.log_file) if srv.kind == "uhrwerk" else []
    print(
        f"chaos: seed {seed}: {WORKFLOWS} workflows ({sum(p.inp.child >= 0 for p in plans)} with a child, "
        f"{sum(p.inp.continues > 0 for p in plans)} continuing as new), a schedule of {SCHEDULE_ACTIONS} actions; "
        f"{len(kills)} kills ({len(startup_kills)} during start-up) in {chaos_took[0]:.1f} s, "
        f"workload done after {workload_s:.1f} s"
    )
    for n, k in enumerate(kills, 1):
        print(f"  kill {n} at {k.at_s:6.2f} s: {k.phase()}, {k.in_flight} workflows in flight")
    if ready_after:
        print(
            f"  restart to answering: {min(ready_after):.2f} s to {max(ready_after):.2f} s "
            f"(median {statistics.median(ready_after):.2f} s)"
        )
    print(f"  recoveries ({len(found)} starts got that far): " + "; ".join(found))
    print(
        f"  client errors retried: {dict(retrier.errors)}; calls retried: {dict(retrier.retried_calls)}; "
        f"sent again on purpose: {dict(resends)}"
    )

    # --- every workflow: its exact result, one run chain, each signal and update once ---
    failures = []
    for plan, result in zip(plans, results):
        expected = plan.expected()
        got = dataclasses.replace(result, waited_ms=-1)
        if got != expected:
            failures.append((plan.wid, "result", got, expected))
        # The timer fired after the workflow waited for it.
        if result.waited_ms < plan.inp.timer_ms:
            failures.append((plan.wid, "waited", result.waited_ms, plan.inp.timer_ms))
    assert not failures, f"{len(failures)} workflows with a wrong result (seed {seed}): {failures[:5]}"

    sem = asyncio.Semaphore(16)

    async def chain_of(plan: Plan) -> list[list[Any]]:
        async with sem:
            return await run_chain(client, plan, run0s[plan.wid])

    chains = await asyncio.gather(*(chain_of(p) for p in plans))
    for plan, chain in zip(plans, chains):
        check_chain(plan, chain)
    for plan in plans:
        if plan.inp.child >= 0:
            async with sem:
                child = await client.get_workflow_handle(f"{plan.wid}-child").fetch_history()
            counts = Counter(event_types(child))
            assert counts["WORKFLOW_EXECUTION_COMPLETED"] == 1 and counts["WORKFLOW_EXECUTION_STARTED"] == 1, counts

    # Visibility: each workflow id one chain (continued runs, then one completion); each child
    # and each scheduled run one completed run.
    expected_runs: dict[str, list[str]] = {}
    for plan in plans:
        expected_runs[plan.wid] = sorted(["CONTINUED_AS_NEW"] * plan.inp.continues + ["COMPLETED"])
        if plan.inp.child >= 0:
            expected_runs[f"{plan.wid}-child"] = ["COMPLETED"]
    for wf in ticks:
        expected_runs[wf.id] = ["COMPLETED"]

    async def listed() -> dict[str, list[str]]:
        runs: dict[str, list[str]] = {}
        for wf in await collect(client.list_workflows(f"TaskQueue = '{task_queue}'")):
            runs.setdefault(wf.id, []).append(wf.status.name if wf.status else "?")
        return {wid: sorted(statuses) for wid, statuses in runs.items()}

    seen_runs = await eventually(listed, lambda r: r == expected_runs, timeout=30, interval=0.5, what="runs listed")
    assert seen_runs == expected_runs

    # --- the schedule: all its actions, each nominal time once ---
    tick_ids = [wf.id for wf in ticks]
    assert len(tick_ids) == SCHEDULE_ACTIONS == len(set(tick_ids)), Counter(tick_ids).most_common(3)
    nominal = sorted(nominal_time_of(aid, wid) for wid in tick_ids)
    assert len(set(nominal)) == SCHEDULE_ACTIONS, nominal
    assert sorted(wf.typed_search_attributes.get(SCHEDULED_START_TIME) for wf in ticks) == nominal
    assert desc.info.num_actions == SCHEDULE_ACTIONS
    assert desc.schedule.state.remaining_actions == 0
    recent = [a.action.workflow_id for a in desc.info.recent_actions]
    assert len(recent) == len(set(recent)), recent

    # --- side effects: every step at least once; nothing recorded as done ran again ---
    rows = read_effects(effects)
    counts = Counter((w, s) for w, _, s, _ in rows)
    expected_keys = set().union(*(p.effect_keys() for p in plans)) | {(wid, 0) for wid in tick_ids}
    missing, unexpected = sorted(expected_keys - set(counts)), sorted(set(counts) - expected_keys)
    assert not missing and not unexpected, f"steps missing: {missing[:5]}; steps not planned: {unexpected[:5]}"
    for n_before, acknowledged in snapshots:
        rerun = [row for row in rows[n_before:] if (row[0], row[2]) in acknowledged]
        assert not rerun, f"steps recorded as completed before a kill ran again after it (seed {seed}): {rerun[:5]}"
    # At least once: only work in flight at a kill may repeat.
    assert max(counts.values()) <= 1 + len(kills), counts.most_common(3)
    reruns = sum(n - 1 for n in counts.values())

    # --- the kills ---
    assert any(k.stage == RECOVERING for k in startup_kills), (
        f"no kill landed in the start-up recovery: {[k.phase() for k in startup_kills]}"
    )
    # Every kill of a serving server caught work in flight (with a few workflows only, some may not).
    idle = [k for k in kills if k.kind == "serving" and k.in_flight == 0]
    assert WORKFLOWS < 20 or not idle, f"kills with no workflow in flight: {idle}"

    assert not srv.panics(), srv.panics()[:5]
    code = srv.terminate()
    assert code == 0, f"server exited with {code} after SIGTERM"

    print(
        f"  activity steps: {len(counts)}, extra runs (unacknowledged at a kill): {reruns}; "
        f"test {time.monotonic() - began:.1f} s"
    )
    # Last, so that every other check has run: signals and updates sent again with the same id
    # were answered as the first time (Temporal's dev server does, also for a run that has closed
    # or continued as new), not with NOT_FOUND.
    refused = Counter(what.split(" chaos-", 1)[0] for what in retrier.refused)
    # Those in the chaos first, then those sent again on purpose; all of them in refused.txt.
    examples = sorted(retrier.refused, key=lambda what: "(sent again)" in what)
    (test_dir / "refused.txt").write_text("".join(f"{what}\n" for what in examples))
    assert not retrier.refused, (
        f"{len(retrier.refused)} signals and updates sent again with the same request/update id were answered "
        f"NOT_FOUND instead of as the first time (seed {seed}): {dict(refused)}; {examples[:4]}"
    )
