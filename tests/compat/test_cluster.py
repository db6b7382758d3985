"""Uhrwerk's cluster mode, three nodes on one PostgreSQL database (compat_cluster.Cluster: 16 shards,
2 s leases): any node serves any call; the workflows, timers, signals, updates, children and
schedules of a node killed with SIGKILL carry on elsewhere, each piece of work done once; a node
paused past its lease has its late commits refused by the shard fence and rejoins; a rolling
restart under load shows clients nothing but retriable errors.

PostgreSQL pass only (UHRWERK_COMPAT_DATABASE_URL, set by ./scripts/test); each test starts a
cluster of its own on a fresh database.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, SignalWorkflowExecutionRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RetryConfig, RPCError, RPCStatusCode
from temporalio.worker import Worker

import compat_server
from compat_cluster import Cluster
from compat_util import event_types, eventually

pytestmark = [
    pytest.mark.skipif(
        not compat_server.on_postgres(),
        reason="a cluster needs PostgreSQL: the PostgreSQL pass sets UHRWERK_COMPAT_DATABASE_URL (./scripts/test)",
    ),
    pytest.mark.skipif("config.getoption('--reference-server')", reason="the cluster mode is Uhrwerk's own"),
    pytest.mark.needs_managed_server,
    pytest.mark.timeout(300),
]

T = TypeVar("T")
NODES = 3
SHARDS = 16

# --- workflows and activities (in this process, so executions can be counted) ---------------------

RUNS: Counter[str] = Counter()  # activity executions per workflow id


@activity.defn(name="cluster_double")
async def cluster_double(n: int) -> int:
    RUNS[activity.info().workflow_id] += 1
    return 2 * n


@dataclass
class FlowInput:
    n: int
    timer_s: float


@dataclass
class FlowResult:
    n: int
    doubled: int
    child: int
    signals: int
    updates: int


@workflow.defn(name="ClusterChild", sandboxed=False)
class ClusterChild:
    @workflow.run
    async def run(self, n: int) -> int:
        return n + 1000


@workflow.defn(name="ClusterFlow", sandboxed=False)
class ClusterFlow:
    """An activity, a durable timer, then (once it has a signal and an update) a child."""

    def __init__(self) -> None:
        self.signals = 0
        self.updates = 0

    @workflow.run
    async def run(self, inp: FlowInput) -> FlowResult:
        doubled = await workflow.execute_activity(cluster_double, inp.n, start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(inp.timer_s)
        await workflow.wait_condition(lambda: self.signals > 0 and self.updates > 0)
        child = await workflow.execute_child_workflow(
            ClusterChild.run, inp.n, id=f"{workflow.info().workflow_id}-child"
        )
        return FlowResult(inp.n, doubled, child, self.signals, self.updates)

    @workflow.signal(name="go")
    def go(self) -> None:
        self.signals += 1

    @workflow.update(name="bump")
    def bump(self, k: int) -> int:
        self.updates += 1
        return k + 1

    @workflow.query(name="seen")
    def seen(self) -> int:
        return self.signals


@workflow.defn(name="ClusterPing", sandboxed=False)
class ClusterPing:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


@workflow.defn(name="ClusterTick", sandboxed=False)
class ClusterTick:
    """What the schedule starts."""

    @workflow.run
    async def run(self) -> str:
        return workflow.info().workflow_id


@workflow.defn(name="ClusterSleeper", sandboxed=False)
class ClusterSleeper:
    @workflow.run
    async def run(self, due: float) -> float:
        """One durable timer until `due` (Unix seconds); returns its length."""
        delay = max(0.5, due - workflow.now().timestamp())
        await workflow.sleep(delay)
        return delay


@workflow.defn(name="ClusterWork", sandboxed=False)
class ClusterWork:
    @workflow.run
    async def run(self, n: int) -> int:
        doubled = await workflow.execute_activity(cluster_double, n, start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(0.5)
        return doubled


WORKFLOWS = [ClusterFlow, ClusterChild, ClusterPing, ClusterTick, ClusterSleeper, ClusterWork]
# For the clients of workers: a task completion is retried across a node's restart or a shard's
# move (the SDK's default gives up after 10 s, and a lost activity completion runs it again).
WORKER_RETRY = RetryConfig(max_elapsed_time_millis=120_000, max_retries=1_000)


def worker(client: Client, task_queue: str, identity: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=[cluster_double], identity=identity)


# --- helpers ----------------------------------------------------------------------------------------


@pytest.fixture
async def cluster(test_dir: Path) -> AsyncIterator[Cluster]:
    """Three nodes on a fresh database, settled; every node still running is stopped with SIGTERM
    at the end and must exit 0, and no log may contain a panic."""
    c = Cluster(test_dir, NODES, shards=SHARDS)
    try:
        c.start()
    except RuntimeError as e:  # no binary, or one without the cluster mode
        c.close()
        pytest.fail(str(e), pytrace=False)
    try:
        await c.wait_ready()
    except BaseException:
        c.close()
        raise
    try:
        yield c
    finally:
        codes = c.close()
    assert not c.panics(), f"node logs in {test_dir} contain panics: {c.panics()[:5]}"
    assert all(code == 0 for code in codes.values()), f"nodes did not exit 0 on SIGTERM: {codes}; logs in {test_dir}"


def retriable(e: BaseException) -> bool:
    """What a client may see while shards move: UNAVAILABLE, DEADLINE_EXCEEDED (an RPC's or our
    own per-attempt bound), an update call timing out."""
    if isinstance(e, RPCError):
        return e.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(e, WorkflowUpdateRPCTimeoutOrCancelledError | TimeoutError)


def error_kind(e: BaseException) -> str:
    return e.status.name if isinstance(e, RPCError) and e.status is not None else type(e).__name__


async def retrying(
    call: Callable[[int], Awaitable[T]], what: str, errors: Counter[str], deadline_s: float = 120.0
) -> T:
    """`call(attempt)` until it succeeds, retrying only retriable errors (counted in `errors`)."""
    deadline = time.monotonic() + deadline_s
    attempt = 0
    while True:
        try:
            return await asyncio.wait_for(call(attempt), 30)
        except Exception as e:
            if not retriable(e):
                raise
            errors[error_kind(e)] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} kept failing for {deadline_s}s: {e!r}") from e
            attempt += 1
            await asyncio.sleep(0.2)


async def start_once(
    clients: Sequence[Client], wf: Any, arg: Any, workflow_id: str, task_queue: str, errors: Counter[str]
) -> None:
    """Starts `workflow_id` through clients[0], retrying retriable errors through the next client;
    a retry finds the run an earlier attempt may have started (and never starts a second)."""

    async def attempt(k: int) -> None:
        try:
            await clients[k % len(clients)].start_workflow(
                wf,
                arg,
                id=workflow_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            if k == 0:
                raise

    await retrying(attempt, f"start {workflow_id}", errors)


async def result_through(clients: Sequence[Client], run: Any, workflow_id: str, errors: Counter[str]) -> Any:
    return await retrying(
        lambda k: clients[k % len(clients)].get_workflow_handle_for(run, workflow_id).result(),
        f"result of {workflow_id}",
        errors,
        deadline_s=180,
    )


async def signal_once(client: Client, workflow_id: str) -> None:
    """Signal `go` with a request id of its own: retries of it are deduplicated by the server."""
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            signal_name="go",
            identity=client.identity,
            request_id=f"{workflow_id}-go",
        ),
        retry=True,
        timeout=timedelta(seconds=20),
    )


async def pollers(client: Client, task_queue: str) -> set[str]:
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return {p.identity for p in resp.pollers}


async def metric(cluster: Cluster, i: int, name: str) -> float | None:
    seen = await cluster.scrape(i)
    return None if seen is None else seen.get(name, 0.0)


async def owned_by(cluster: Cluster, nodes: Sequence[int]) -> float | None:
    """The shards `nodes` own together (None while one does not answer)."""
    seen = await cluster.scrape_all(nodes)
    if any(m is None for m in seen.values()):
        return None
    return sum(m.get("uhrwerk_cluster_shards_owned", 0.0) for m in seen.values() if m is not None)


async def busiest(cluster: Cluster) -> tuple[int, float]:
    """The node owning the most shards (the one whose loss moves the most work), and how many."""
    seen = await cluster.scrape_all()
    owned = {i: (m or {}).get("uhrwerk_cluster_shards_owned", 0.0) for i, m in seen.items()}
    node = max(owned, key=lambda i: owned[i])
    assert owned[node] > 0, owned
    return node, owned[node]


async def count_of(values: Callable[[], int]) -> int:
    return values()


async def collect(items: Any) -> list[Any]:
    return [item async for item in items]


def assert_ran_once(ids: Sequence[str]) -> None:
    runs = {wid: RUNS[wid] for wid in ids}
    assert runs == dict.fromkeys(ids, 1), {wid: n for wid, n in runs.items() if n != 1}


# --- tests ------------------------------------------------------------------------------------------


async def test_any_node_serves_any_call(cluster: Cluster, task_queue: str, new_id) -> None:
    c0, c1, c2 = [await cluster.connect(i) for i in range(NODES)]
    identity = f"cluster-worker-on-node1-{new_id('w')}"
    ids = [new_id("basics") for _ in range(6)]
    errors: Counter[str] = Counter()
    async with worker(c1, task_queue, identity):
        for n, wid in enumerate(ids):
            await c0.start_workflow(ClusterFlow.run, FlowInput(n, 0.2), id=wid, task_queue=task_queue)
        # The worker polls through node 1; node 2 describes the queue wherever it lives.
        await eventually(
            lambda: pollers(c2, task_queue), lambda ps: identity in ps, timeout=30, what="the poller seen by node 2"
        )
        for wid in ids:
            await c2.get_workflow_handle(wid).signal(ClusterFlow.go)
        for wid in ids:
            await eventually(
                lambda wid=wid: c0.get_workflow_handle(wid).query(ClusterFlow.seen),
                lambda seen: seen == 1,
                timeout=30,
                what=f"{wid} answering a query through node 0",
            )
        for n, wid in enumerate(ids):
            assert await c1.get_workflow_handle(wid).execute_update(ClusterFlow.bump, n, id=f"{wid}-bump") == n + 1
        results = [await result_through([c2], ClusterFlow.run, wid, errors) for wid in ids]
    assert results == [FlowResult(n, 2 * n, n + 1000, 1, 1) for n in range(len(ids))]
    assert_ran_once(ids)
    assert not errors, errors

    # Every node sees three members; together they own every shard, each some.
    seen = await cluster.wait_settled(timeout=30)
    acquired = sum((m or {}).get("uhrwerk_cluster_shard_acquisitions_total", 0.0) for m in seen.values())
    assert acquired >= SHARDS, seen
    await eventually(
        lambda: cluster.scrape_all(),
        lambda s: all(m is not None and m.get("uhrwerk_cluster_lease_renewals_total", 0) > 0 for m in s.values()),
        timeout=30,
        what="every node renewing its leases",
    )
    # Starts through node 0, signals through node 2 and polls through node 1 cannot all have
    # been local: some calls were forwarded, counted by method.
    forwarded = [
        s
        for i in range(NODES)
        for s in await asyncio.to_thread(cluster.samples, i)
        if s.name == "uhrwerk_cluster_forwarded_calls_total" and s.value > 0
    ]
    assert forwarded, "no node counted a forwarded call"
    assert all(s.labels.get("method") for s in forwarded), forwarded


FLOWS = 40
TIMER_S = 5.0
PINGS = 24


async def test_a_killed_nodes_work_carries_on_elsewhere(cluster: Cluster, task_queue: str, new_id) -> None:
    # The victim is the node with the most shards; clients and workers use the other two.
    victim, owned = await busiest(cluster)
    alive = [i for i in range(NODES) if i != victim]
    c1, c2 = [await cluster.connect(i) for i in alive]
    w1, w2 = [await cluster.connect(i, retry_config=WORKER_RETRY) for i in alive]
    survivors = [c1, c2]
    prefix = new_id("death")
    ids = [f"{prefix}-{i}" for i in range(FLOWS)]
    errors: Counter[str] = Counter()
    async with worker(w1, task_queue, f"node{alive[0]}-worker"), worker(w2, task_queue, f"node{alive[1]}-worker"):
        sid, aid = f"{prefix}-schedule", f"{prefix}-tick"
        schedule = await c1.create_schedule(
            sid,
            Schedule(
                action=ScheduleActionStartWorkflow(ClusterTick.run, id=aid, task_queue=task_queue),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
                # ALLOW_ALL: no nominal time is skipped for a run still in flight.
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
            ),
        )
        for i, wid in enumerate(ids):
            await c1.start_workflow(ClusterFlow.run, FlowInput(i, TIMER_S), id=wid, task_queue=task_queue)
        # Kill once half the activities ran: the rest are in flight or queued, timers are armed,
        # and no workflow can finish (each waits for its signal).
        await eventually(
            lambda: count_of(lambda: sum(RUNS[w] for w in ids)),
            lambda n: n >= FLOWS // 2,
            timeout=60,
            what="half the activities run",
        )
        at_kill = await eventually(
            schedule.describe, lambda d: d.info.num_actions >= 2, timeout=30, what="2 scheduled actions"
        )
        cluster.kill(victim)
        killed, killed_at = time.monotonic(), datetime.now(UTC)

        async def ping(k: int) -> float:
            wid = f"{prefix}-ping-{k}"
            await start_once(survivors[k % 2 :] + survivors[: k % 2], ClusterPing.run, k, wid, task_queue, errors)
            assert await result_through(survivors, ClusterPing.run, wid, errors) == k
            return time.monotonic() - killed

        async def drive(i: int, wid: str) -> None:
            """The signal through one survivor, the update through the other."""
            await retrying(lambda k: signal_once(survivors[(i + k) % 2], wid), f"signal {wid}", errors)
            updated = await retrying(
                lambda k: (
                    survivors[(i + k + 1) % 2]
                    .get_workflow_handle_for(ClusterFlow.run, wid)
                    .execute_update(ClusterFlow.bump, i, id=f"{wid}-bump")
                ),
                f"update {wid}",
                errors,
            )
            assert updated == i + 1

        pings = asyncio.gather(*(ping(k) for k in range(PINGS)))
        await asyncio.gather(*(drive(i, wid) for i, wid in enumerate(ids)))
        results = await asyncio.gather(*(result_through(survivors, ClusterFlow.run, wid, errors) for wid in ids))
        took = await pings

        after = await eventually(
            lambda: retrying(lambda k: survivors[k % 2].get_schedule_handle(sid).describe(), "describe", errors),
            lambda d: (
                d.info.num_actions >= at_kill.info.num_actions + 4
                and any(a.scheduled_at > killed_at for a in d.info.recent_actions)
            ),
            timeout=60,
            what="the schedule taking actions after the kill",
        )
        await retrying(lambda k: survivors[k % 2].get_schedule_handle(sid).delete(), "delete the schedule", errors)

    assert results == [FlowResult(i, 2 * i, i + 1000, 1, 1) for i in range(FLOWS)]
    assert_ran_once(ids)
    for wid in ids:
        types = event_types(await c2.get_workflow_handle(wid).fetch_history())
        counts = Counter(types)
        assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED", (wid, types)
        for kind in (
            "ACTIVITY_TASK_COMPLETED",
            "TIMER_FIRED",
            "WORKFLOW_EXECUTION_SIGNALED",
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
            "CHILD_WORKFLOW_EXECUTION_COMPLETED",
            "WORKFLOW_EXECUTION_COMPLETED",
        ):
            assert counts[kind] == 1, (wid, kind, types)

    # Each nominal time was started once: a second start of one would be a second run of its id.
    recent = [a.action.workflow_id for a in after.info.recent_actions]
    assert len(recent) == len(set(recent)), recent
    runs = await eventually(
        lambda: retrying(
            lambda k: collect(survivors[k % 2].list_workflows(f"TemporalScheduledById = '{sid}'")), "list", errors
        ),
        lambda rs: len(rs) >= after.info.num_actions,
        timeout=30,
        what="the scheduled runs listed",
    )
    per_id = Counter(wf.id for wf in runs)
    assert max(per_id.values()) == 1, per_id.most_common(3)

    # The slowest of the new workflows waited for a shard of the dead node, unless none of them
    # hashed to one (the chance printed).
    missed = ((SHARDS - owned) / SHARDS) ** PINGS
    print(
        f"kill -9 of node {victim} (it owned {owned:.0f} of {SHARDS} shards): {PINGS} workflows started after it "
        f"completed {min(took):.1f}s to {max(took):.1f}s after the kill (median {statistics.median(took):.1f}s; "
        f"none on a shard of the dead node: p={missed:.1g}); the schedule took "
        f"{after.info.num_actions - at_kill.info.num_actions} actions since; retried errors: {dict(errors)}"
    )


SLEEPERS = 20
PAUSE_DUE_S = 15.0
AFTER_REJOIN_S = 15.0


async def test_a_paused_node_is_fenced_and_rejoins(cluster: Cluster, task_queue: str, new_id) -> None:
    # The paused node is the one with the most shards; the workers poll through the other two.
    paused, owned = await busiest(cluster)
    alive = [i for i in range(NODES) if i != paused]
    cp, c1, c2 = [await cluster.connect(i) for i in (paused, *alive)]
    w1, w2 = [await cluster.connect(i, retry_config=WORKER_RETRY) for i in alive]
    others = [c1, c2]
    assert await metric(cluster, paused, "uhrwerk_cluster_fenced_commits_total") == 0
    ids = [new_id("sleeper") for _ in range(SLEEPERS)]
    errors: Counter[str] = Counter()
    async with worker(w1, task_queue, f"node{alive[0]}-worker"), worker(w2, task_queue, f"node{alive[1]}-worker"):
        due = time.time() + PAUSE_DUE_S
        for wid in ids:
            await cp.start_workflow(ClusterSleeper.run, due, id=wid, task_queue=task_queue)

        async def armed() -> int:
            histories = [await c1.get_workflow_handle(wid).fetch_history() for wid in ids]
            return sum("TIMER_STARTED" in event_types(h) for h in histories)

        await eventually(
            armed, lambda n: n == SLEEPERS, timeout=PAUSE_DUE_S / 2, interval=0.3, what="every timer armed"
        )
        assert time.time() < due - 4, "the timers were armed too late to pause the node before they are due"
        cluster.stop(paused)
        stopped = time.monotonic()
        try:
            await eventually(
                lambda: owned_by(cluster, alive), lambda n: n == SHARDS, timeout=30, what="the others own every shard"
            )
            took_over = time.monotonic() - stopped
            # The new owners fire the timers (past their due time) and the runs complete while
            # the paused node still holds its copies of them.
            results = await asyncio.gather(*(result_through(others, ClusterSleeper.run, wid, errors) for wid in ids))
            assert time.time() > due
        finally:
            cluster.cont(paused)
        fenced = await eventually(
            lambda: metric(cluster, paused, "uhrwerk_cluster_fenced_commits_total"),
            lambda v: v is not None and v > 0,
            timeout=30,
            what="a commit of the paused node refused",
        )
        await eventually(
            lambda: asyncio.to_thread(cluster.log, paused),
            lambda text: "refused by the shard fence" in text,
            timeout=10,
            what="the fence's WARN line",
        )
        # It rejoins: three members everywhere, every shard owned, some by it again.
        await cluster.wait_settled(timeout=60)
        # And serves again: workflows started through it complete, each in a moment (not after
        # a long poll parked where its task queue no longer is has timed out).
        slow = {}
        for k in range(8):
            wid = f"{ids[0]}-after-{k}"
            begun = time.monotonic()
            await start_once([cp, c1], ClusterPing.run, k, wid, task_queue, errors)
            assert await result_through([cp], ClusterPing.run, wid, errors) == k
            if time.monotonic() - begun > AFTER_REJOIN_S:
                slow[wid] = round(time.monotonic() - begun, 1)
        assert not slow, f"workflows started through the rejoined node took over {AFTER_REJOIN_S}s: {slow}"

    assert all(r > 0 for r in results), results
    for wid in ids:
        types = event_types(await c1.get_workflow_handle(wid).fetch_history())
        counts = Counter(types)
        assert (counts["TIMER_STARTED"], counts["TIMER_FIRED"]) == (1, 1), (wid, types)
        assert counts["WORKFLOW_EXECUTION_COMPLETED"] == 1 and types[-1] == "WORKFLOW_EXECUTION_COMPLETED", types
    print(
        f"node {paused} paused owning {owned:.0f} shards: the others owned all {SHARDS} after {took_over:.1f}s; "
        f"{fenced:.0f} of its commits refused after SIGCONT; retried errors: {dict(errors)}"
    )


LOAD_INTERVAL_S = 0.25


async def test_rolling_restart_under_load(cluster: Cluster, task_queue: str, new_id) -> None:
    clients = [await cluster.connect(i) for i in range(NODES)]
    worker_clients = [await cluster.connect(i, retry_config=WORKER_RETRY) for i in range(NODES)]
    prefix = new_id("rolling")
    started: list[str] = []
    unexpected: list[str] = []
    errors: Counter[str] = Counter()
    handovers: list[float] = []
    stop = asyncio.Event()

    async def start(n: int) -> None:
        wid = f"{prefix}-{n}"
        rotated = clients[n % NODES :] + clients[: n % NODES]
        try:
            await start_once(rotated, ClusterWork.run, n, wid, task_queue, errors)
            started.append(wid)
        except Exception as e:  # noqa: BLE001 - every error that reaches the caller is reported
            unexpected.append(f"start of {wid} through node {n % NODES}: {e!r}")

    async def load() -> None:
        """A start every LOAD_INTERVAL_S, round-robin over the nodes, none waiting for another."""
        pending = []
        n = 0
        while not stop.is_set():
            pending.append(asyncio.create_task(start(n)))
            n += 1
            try:
                await asyncio.wait_for(stop.wait(), LOAD_INTERVAL_S)
            except TimeoutError:
                pass
        await asyncio.gather(*pending)

    async def started_at_least(n: int, what: str) -> None:
        await eventually(lambda: count_of(lambda: len(started)), lambda k: k >= n, timeout=60, what=what)

    loader = asyncio.create_task(load())
    try:
        async with (
            worker(worker_clients[0], task_queue, "node0-worker"),
            worker(worker_clients[1], task_queue, "node1-worker"),
            worker(worker_clients[2], task_queue, "node2-worker"),
        ):
            await started_at_least(10, "10 starts before the first restart")
            for i in range(NODES):
                others = [j for j in range(NODES) if j != i]
                code = await asyncio.to_thread(cluster.terminate, i)
                assert code == 0, f"node {i} exited with {code} on SIGTERM"
                stopped = time.monotonic()
                await eventually(
                    lambda others=others: owned_by(cluster, others),
                    lambda n: n == SHARDS,
                    timeout=30,
                    what=f"the shards of node {i} taken over",
                )
                handovers.append(time.monotonic() - stopped)
                mark = len(started)
                cluster.restart(i)
                await cluster.wait_node(i)
                await cluster.wait_settled(timeout=60)
                await started_at_least(mark + 10, f"10 more starts after the restart of node {i}")
            stop.set()
            await loader
            results = await asyncio.gather(*(result_through(clients, ClusterWork.run, wid, errors) for wid in started))
    finally:
        stop.set()
        await asyncio.gather(loader, return_exceptions=True)

    assert not unexpected, unexpected[:10]
    assert results == [2 * int(wid.rsplit("-", 1)[1]) for wid in started]
    assert_ran_once(started)
    print(
        f"rolling restart: {len(started)} workflows started and completed; shards handed over "
        f"{', '.join(f'{t:.1f}s' for t in handovers)} after each SIGTERM; retried errors: {dict(errors)}"
    )
