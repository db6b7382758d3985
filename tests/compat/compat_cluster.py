"""A cluster of Uhrwerk nodes on one PostgreSQL database: `Cluster` starts N nodes on free ports,
kills (SIGKILL), pauses (SIGSTOP/SIGCONT), stops (SIGTERM) and restarts them one by one, scrapes
their metrics and reads their logs (test_cluster.py). `ClusterServer` and the hooks below are the
suite's cluster mode: with UHRWERK_COMPAT_CLUSTER=N and UHRWERK_COMPAT_DATABASE_URL, every Uhrwerk
server the suite starts is N nodes on one database, and SDK workers poll through another node
than their client's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import ConnectConfig, ServiceClient
from temporalio.worker import Worker

import compat_server
from compat_limits import Sample, parse_metrics
from compat_server import ServerProcess, free_port, postgres_database, uhrwerk_binary

# Every cluster of the suite: 16 shards, and leases short enough that a dead node's shards move
# within seconds.
SHARDS = 16
LEASE = "2s"

# Flags whose value is a port of the process: a node other than the first gets its own.
PORT_FLAGS = ("--ui-port", "--http-port", "--metrics-port")


def free_ports(n: int) -> list[int]:
    """`n` distinct ports that were free a moment ago on 127.0.0.1 (all bound at once)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def fresh_database(server_url: str | None = None) -> str:
    """The URL of a new, empty database on the PostgreSQL server `server_url` (default: the suite's)."""
    server_url = server_url or compat_server.POSTGRES_URL
    if not server_url:
        raise RuntimeError("a cluster needs PostgreSQL: set UHRWERK_COMPAT_DATABASE_URL")
    name = "uw_cluster_" + uuid.uuid4().hex[:16]
    # Found as compat_server finds it.
    psql = shutil.which("psql") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), None)
    if psql is None:
        raise RuntimeError("a cluster needs psql to create its database, and psql is not installed")
    out = subprocess.run(
        [str(psql), server_url, "-v", "ON_ERROR_STOP=1", "-qc", f"CREATE DATABASE {name}"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"could not create database {name}: {out.stderr.strip()}")
    base, _, query = server_url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


_CLUSTER_SUPPORT: dict[Path, bool] = {}


def binary_has_cluster_mode(binary: Path) -> bool:
    if binary not in _CLUSTER_SUPPORT:
        out = subprocess.run([str(binary), "server", "start", "--help"], capture_output=True, text=True, timeout=30)
        _CLUSTER_SUPPORT[binary] = "--advertise-address" in out.stdout
    return _CLUSTER_SUPPORT[binary]


def own_ports(args: Sequence[str]) -> tuple[str, ...]:
    """`args` with a fresh port for each flag in PORT_FLAGS (`--flag N` and `--flag=N`)."""
    out: list[str] = []
    replace_next = False
    for arg in args:
        if replace_next:
            out.append(str(free_port()))
            replace_next = False
        elif arg in PORT_FLAGS:
            out.append(arg)
            replace_next = True
        elif arg.split("=", 1)[0] in PORT_FLAGS and "=" in arg:
            out.append(f"{arg.split('=', 1)[0]}={free_port()}")
        else:
            out.append(arg)
    return tuple(out)


class Node(ServerProcess):
    """One node: `uhrwerk server start` on the cluster's database, with its frontend on `port`
    and its internal gRPC endpoint (also its id) on `internal_port`; same ports on a restart."""

    def __init__(self, cluster: Cluster, index: int, log_file: Path, ports: Sequence[int], extra_args: Sequence[str]):
        port, internal_port, metrics_port = ports
        super().__init__(
            "uhrwerk",
            log_file.with_suffix(".db"),
            log_file,
            port=port,
            namespaces=cluster.namespaces,
            extra_args=tuple(extra_args),
        )
        self.metrics_port = metrics_port
        self.cluster = cluster
        self.index = index
        self.internal_port = internal_port
        self.stopped = False

    @property
    def advertise_address(self) -> str:
        return f"127.0.0.1:{self.internal_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        binary = uhrwerk_binary()
        if binary is None or not binary.exists():
            raise RuntimeError("uhrwerk binary not found: set UHRWERK_BIN or build target/debug/uhrwerk")
        if not binary_has_cluster_mode(binary):
            raise RuntimeError(f"{binary} has no cluster mode (`server start --advertise-address`); build it first")
        headless = [] if any(a.split("=", 1)[0] == "--ui-port" for a in self.extra_args) else ["--headless"]
        cmd = [str(binary), "server", "start", *headless, "--database-url", self.cluster.database_url]
        cmd += ["--ip", "127.0.0.1", "--port", str(self.port), "--advertise-address", self.advertise_address]
        cmd += ["--cluster-shards", str(self.cluster.shards), "--shard-lease", self.cluster.lease]
        cmd += ["--metrics-port", str(self.metrics_port)]
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        # Last, so that a test's flags win (the last occurrence of a flag counts).
        return [*cmd, *self.extra_args, "--log-level", "info"]

    def start(self) -> None:
        self.stopped = False
        super().start()

    def stop(self) -> None:
        assert self.running and not self.stopped
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self) -> None:
        assert self.proc is not None and self.stopped
        self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def kill9(self) -> None:
        super().kill9()
        self.stopped = False

    def terminate(self, timeout_s: float = 30.0) -> int:
        if self.stopped and self.running:
            self.cont()
        self.stopped = False
        return super().terminate(timeout_s)


class Cluster:
    """`size` nodes sharing one PostgreSQL database (a fresh one on `server_url`, the suite's by
    default, unless `database_url` names one), each on free ports of its own. Node i's log is
    `log_files[i]` (default `directory/node<i>.log`)."""

    def __init__(
        self,
        directory: Path,
        size: int = 3,
        *,
        server_url: str | None = None,
        database_url: str | None = None,
        shards: int = SHARDS,
        lease: str = LEASE,
        namespaces: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        port: int | None = None,
        log_files: Sequence[Path] | None = None,
    ):
        assert size >= 1
        self.directory = directory
        self.database_url = database_url or fresh_database(server_url)
        self.shards = shards
        self.lease = lease
        self.namespaces = tuple(namespaces)
        logs = list(log_files) if log_files is not None else [directory / f"node{i}.log" for i in range(size)]
        assert len(logs) == size
        ports = free_ports(3 * size)
        if port is not None:
            ports[0] = port
        self.nodes = [
            Node(self, i, logs[i], ports[3 * i : 3 * i + 3], extra_args if i == 0 else own_ports(extra_args))
            for i in range(size)
        ]

    # --- addresses and processes ------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def addresses(self) -> list[str]:
        """The frontend address `127.0.0.1:P` of each node."""
        return [n.address for n in self.nodes]

    def address(self, i: int) -> str:
        return self.nodes[i].address

    def live(self) -> list[int]:
        """The nodes whose process runs and is not paused."""
        return [n.index for n in self.nodes if n.running and not n.stopped]

    def start(self, i: int | None = None) -> None:
        for node in self._pick(i):
            node.start()

    async def wait_node(self, i: int, deadline_s: float = 60.0) -> None:
        """Polls until node i answers `Client.connect` (compat_server's readiness probe)."""
        await self.nodes[i].wait_ready(deadline_s=deadline_s)

    async def wait_ready(self, deadline_s: float = 90.0) -> None:
        """Every running node answers, and the cluster settled (see `wait_settled`)."""
        started = time.monotonic()
        # The last node first: in the suite's cluster mode a client of node 0 also connects to
        # the node its workers use.
        for i in reversed(self.live()):
            await self.wait_node(i, deadline_s)
        await self.wait_settled(timeout=max(10.0, deadline_s - (time.monotonic() - started)))

    async def connect(self, i: int, namespace: str = "default", **kwargs: Any) -> Client:
        return await Client.connect(self.address(i), namespace=namespace, **kwargs)

    def kill(self, i: int) -> None:
        """SIGKILL and reap node i."""
        self.nodes[i].kill9()

    def kill_all(self) -> None:
        """SIGKILL every running node at once, then reap them."""
        running = [n for n in self.nodes if n.running]
        for n in running:
            assert n.proc is not None
            n.proc.send_signal(signal.SIGKILL)
        for n in running:
            n.kill9()

    def stop(self, i: int) -> None:
        """SIGSTOP node i: it keeps its sockets and connections but does nothing."""
        self.nodes[i].stop()

    def cont(self, i: int) -> None:
        """SIGCONT node i."""
        self.nodes[i].cont()

    def restart(self, i: int | None = None) -> None:
        """Starts node i (every node when None) again with the same ports and flags."""
        for node in self._pick(i):
            assert not node.running, f"node {node.index} is still running"
            node.start()

    def terminate(self, i: int, timeout_s: float = 30.0) -> int:
        """SIGTERM node i and wait; returns its exit code."""
        return self.nodes[i].terminate(timeout_s)

    def terminate_all(self, timeout_s: float = 30.0) -> dict[int, int | str]:
        """SIGTERM every running node at once (continuing paused ones) and wait for each: node ->
        exit code, or why there is none (killed after `timeout_s`)."""
        running = [n for n in self.nodes if n.running]
        for n in running:
            if n.stopped:
                n.cont()
            assert n.proc is not None
            n.proc.send_signal(signal.SIGTERM)
        codes: dict[int, int | str] = {}
        deadline = time.monotonic() + timeout_s
        for n in running:
            assert n.proc is not None
            try:
                codes[n.index] = n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(timeout=10)
                codes[n.index] = f"did not exit within {timeout_s}s of SIGTERM (killed)"
            n._close_log()
        return codes

    def close(self) -> dict[int, int | str]:
        """Ends every process still running (continuing paused ones first); what terminate_all returns."""
        return self.terminate_all()

    def log(self, i: int) -> str:
        """Node i's stdout and stderr so far (of every start)."""
        path = self.nodes[i].log_file
        return path.read_text(errors="replace") if path.exists() else ""

    def panics(self) -> list[str]:
        return [line for n in self.nodes for line in n.panics()]

    def _pick(self, i: int | None) -> list[Node]:
        return list(self.nodes) if i is None else [self.nodes[i]]

    # --- metrics ----------------------------------------------------------------------------------

    def samples(self, i: int) -> list[Sample]:
        """Node i's metrics as parsed samples (fails on a paused node: it would not answer)."""
        import urllib.request

        node = self.nodes[i]
        assert not node.stopped, f"node {i} is paused"
        with urllib.request.urlopen(node.metrics_url, timeout=5) as resp:
            return parse_metrics(resp.read().decode())

    def metrics(self, i: int) -> dict[str, float]:
        """Node i's metrics, summed per metric name over their labels."""
        out: dict[str, float] = {}
        for s in self.samples(i):
            out[s.name] = out.get(s.name, 0.0) + s.value
        return out

    async def scrape(self, i: int) -> dict[str, float] | None:
        """`metrics(i)` off the event loop; None while the node does not answer."""
        try:
            return await asyncio.to_thread(self.metrics, i)
        except OSError:
            return None

    async def scrape_all(self, nodes: Sequence[int] | None = None) -> dict[int, dict[str, float] | None]:
        nodes = self.live() if nodes is None else nodes
        return {i: await self.scrape(i) for i in nodes}

    @staticmethod
    def settled(
        seen: dict[int, dict[str, float] | None], shards: int, balanced: bool = True, members: int | None = None
    ) -> bool:
        """Each node of `seen` sees `members` (default: len(seen)) members and together they own
        every shard; `balanced`: each owns at least one."""
        members = len(seen) if members is None else members
        if any(m is None for m in seen.values()):
            return False
        owned = [m.get("uhrwerk_cluster_shards_owned", 0.0) for m in seen.values() if m is not None]
        return (
            all(m.get("uhrwerk_cluster_members") == members for m in seen.values() if m is not None)
            and sum(owned) == shards
            and (not balanced or all(o > 0 for o in owned))
        )

    async def wait_settled(
        self, nodes: Sequence[int] | None = None, timeout: float = 60.0, balanced: bool = True
    ) -> dict[int, dict[str, float] | None]:
        """Polls the metrics of `nodes` (default: the live ones) until `settled`."""
        nodes = self.live() if nodes is None else list(nodes)
        deadline = time.monotonic() + timeout
        while True:
            seen = await self.scrape_all(nodes)
            if self.settled(seen, self.shards, balanced):
                return seen
            if time.monotonic() > deadline:
                summary = {
                    i: m and {k: v for k, v in m.items() if k.startswith("uhrwerk_cluster_")} for i, m in seen.items()
                }
                raise AssertionError(f"nodes {nodes} did not settle within {timeout}s: {summary}")
            await asyncio.sleep(0.2)


# --- the suite's cluster mode ---------------------------------------------------------------------


def cluster_size() -> int:
    """UHRWERK_COMPAT_CLUSTER as a number of nodes (0 when unset)."""
    raw = os.environ.get("UHRWERK_COMPAT_CLUSTER", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"UHRWERK_COMPAT_CLUSTER must be a number of nodes, not {raw!r}")
    return int(raw)


def enabled(kind: str = "uhrwerk") -> bool:
    """The suite's Uhrwerk servers are clusters: UHRWERK_COMPAT_CLUSTER and a PostgreSQL server."""
    return kind == "uhrwerk" and cluster_size() > 0 and compat_server.on_postgres()


def worker_node() -> int:
    """The node SDK workers poll through (UHRWERK_COMPAT_CLUSTER_WORKER_NODE, default 1; 0: the
    client's own node)."""
    raw = os.environ.get("UHRWERK_COMPAT_CLUSTER_WORKER_NODE", "1").strip()
    return min(int(raw), cluster_size() - 1)


def report_header() -> list[str]:
    if not cluster_size():
        return []
    if not compat_server.on_postgres():
        return ["UHRWERK_COMPAT_CLUSTER is ignored: it needs UHRWERK_COMPAT_DATABASE_URL"]
    workers = f"through node {worker_node()}" if worker_node() else "through the client's node"
    return [
        f"cluster mode: every Uhrwerk server is {cluster_size()} nodes ({SHARDS} shards, lease {LEASE}); "
        f"clients use node 0, SDK workers poll {workers}"
    ]


# Tests that cannot pass on a cluster, with the reason (matched on the node id, up to a '[').
CLUSTER_SKIPS = {
    "test_metrics.py": "metrics are per node in a cluster; the exact deltas are those of one server",
    "test_cluster.py": "it starts clusters of its own, and ran in the PostgreSQL pass already",
    "test_cluster_security.py": "it starts clusters of its own, and ran in the PostgreSQL pass already",
    "test_tls.py": "the cluster harness waits for its nodes over plaintext; TLS is tested on single servers",
    "test_auth.py": "the cluster harness waits for its nodes over plaintext; authorization is tested on single servers",
    "test_jwt.py": "the cluster harness waits for its nodes over plaintext; JWTs are tested on single servers",
    **{
        f"test_limits.py::{name}": "reads counters of one node; in a cluster the run's shard may be on another"
        for name in (
            "test_history_count_warn_keeps_running_and_error_terminates",
            "test_history_size_warn_keeps_running_and_error_terminates",
            "test_continue_as_new_suggested_by_history_count",
            "test_continue_as_new_suggested_by_history_size",
            "test_pending_activities_limit_fails_the_workflow_task",
        )
    },
}
# Only while workers poll through another node than their client's.
REDIRECT_SKIPS = {
    "test_eager.py::test_sdk_eager_workflow_start": (
        "the SDK starts eagerly only with a worker on the client's own connection, and workers poll "
        "through another node here (UHRWERK_COMPAT_CLUSTER_WORKER_NODE=0 keeps them together)"
    ),
}


def skip_reason(nodeid: str, kind: str) -> str | None:
    if not enabled(kind):
        return None
    test = nodeid.split("[", 1)[0]
    module = test.split("::", 1)[0]
    skips = {**CLUSTER_SKIPS, **(REDIRECT_SKIPS if worker_node() else {})}
    return skips.get(test) or skips.get(module)


class _AnyRunning:
    """`proc` of a ClusterServer: running while any node runs (conftest terminates it then)."""

    def __init__(self, cluster: Cluster):
        self._cluster = cluster

    def poll(self) -> int | None:
        if any(n.running for n in self._cluster.nodes):
            return None
        return self.returncode

    @property
    def returncode(self) -> int | None:
        proc = self._cluster.nodes[0].proc
        return None if proc is None else proc.returncode


class ClusterServer:
    """A cluster standing in for one ServerProcess (its interface): node 0 is the address tests
    get; kill9/restart/terminate act on every node at once, like the crash of one server. Its
    database is the one compat_server names after `db_file`, so a test that reads a server's
    database finds it; node 0 logs to `log_file`, node i to `<log_file stem>.node<i>.log`."""

    def __init__(
        self,
        kind: str,
        db_file: Path,
        log_file: Path,
        port: int | None = None,
        namespaces: tuple[str, ...] = (),
        extra_args: tuple[str, ...] = (),
    ):
        assert kind == "uhrwerk", kind
        size = cluster_size()
        self.kind = kind
        self.db_file = db_file
        self.log_file = log_file
        self.extra_args = extra_args
        self.namespaces = tuple(ns for ns in namespaces if ns != "default")
        self.client_namespace = namespaces[0] if namespaces else "default"
        logs = [log_file] + [log_file.with_name(f"{log_file.stem}.node{i}{log_file.suffix}") for i in range(1, size)]
        self.cluster = Cluster(
            log_file.parent,
            size,
            database_url=postgres_database(db_file),
            namespaces=namespaces,
            extra_args=extra_args,
            port=port,
            log_files=logs,
        )
        self.proc = _AnyRunning(self.cluster)
        if worker_node():
            route_workers(self.address, self.cluster.nodes[worker_node()])

    @property
    def node0(self) -> Node:
        return self.cluster.nodes[0]

    @property
    def address(self) -> str:
        return self.node0.address

    @property
    def port(self) -> int:
        return self.node0.port

    @property
    def metrics_port(self) -> int:
        return self.node0.metrics_port

    @property
    def metrics_url(self) -> str:
        return self.node0.metrics_url

    def start(self) -> None:
        self.cluster.start()

    async def wait_ready(self, deadline_s: float = 90.0, namespace: str | None = None) -> Client:
        await self.cluster.wait_ready(deadline_s)
        return await Client.connect(self.address, namespace=namespace or self.client_namespace)

    def kill9(self) -> None:
        self.cluster.kill_all()

    def restart(self) -> None:
        self.cluster.restart()

    def terminate(self, timeout_s: float = 30.0) -> int:
        _WORKER_ROUTES.pop(self.address, None)
        codes = self.cluster.terminate_all(timeout_s)
        bad = {i: c for i, c in codes.items() if c != 0}
        if any(isinstance(c, str) for c in bad.values()):
            raise AssertionError(f"cluster nodes did not stop on SIGTERM: {bad}")
        return next(iter(bad.values()), 0)  # type: ignore[return-value]

    def panics(self) -> list[str]:
        return self.cluster.panics()


def server_process(
    kind: str,
    db_file: Path,
    log_file: Path,
    port: int | None = None,
    namespaces: tuple[str, ...] = (),
    extra_args: tuple[str, ...] = (),
) -> ServerProcess | ClusterServer:
    """What conftest starts for one server: a ServerProcess, or in cluster mode a ClusterServer."""
    if enabled(kind):
        return ClusterServer(kind, db_file, log_file, port=port, namespaces=namespaces, extra_args=extra_args)
    return ServerProcess(kind, db_file, log_file, port=port, namespaces=namespaces, extra_args=extra_args)


# --- workers through another node -----------------------------------------------------------------
#
# Tests hand their one client to Worker(...). In cluster mode, a client connected to node 0 also
# connects the same settings to the worker node (`route_workers`), and Worker(client) polls with
# a copy of the client on that connection. Nothing is patched unless a ClusterServer routes.

_WORKER_ROUTES: dict[str, ServerProcess] = {}
_SIBLING = "_compat_cluster_worker_service"
_original_connect = ServiceClient.connect
_original_worker_init = Worker.__init__


async def _connect_with_sibling(config: ConnectConfig) -> ServiceClient:
    service = await _original_connect(config)
    node = _WORKER_ROUTES.get(config.target_host)
    # Not for a node that is down for good (its cluster was killed and not restarted).
    if node is not None and node.proc is not None and node.proc.poll() is None and not config.lazy:
        sibling = await _original_connect(dataclasses.replace(config, target_host=node.address))
        setattr(service, _SIBLING, sibling)
    return service


def _worker_init(self: Worker, client: Client, *args: Any, **kwargs: Any) -> None:
    sibling = getattr(client.service_client, _SIBLING, None)
    if sibling is not None:
        config = client.config()
        config["service_client"] = sibling
        client = Client(**config)
    _original_worker_init(self, client, *args, **kwargs)


def route_workers(client_address: str, node: ServerProcess) -> None:
    """From now on, workers built on a client of `client_address` poll through `node` (while it
    runs when the client connects)."""
    _WORKER_ROUTES[client_address] = node
    ServiceClient.connect = staticmethod(_connect_with_sibling)  # type: ignore[method-assign]
    Worker.__init__ = _worker_init  # type: ignore[method-assign]
