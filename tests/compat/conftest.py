"""Fixtures for the Temporal compatibility suite.

Modes:
- default: start the Uhrwerk binary (`UHRWERK_BIN` or `<repo>/target/debug/uhrwerk`)
  on a free port with a fresh SQLite file under `test_output/<session>/`;
- `--reference-server`: the same, but start the real Temporal dev server from
  the venv's `temporal` CLI (the oracle), including for the crash test;
- `--server HOST:PORT`: use an already running server; tests that kill or
  restart a server are skipped;
- UHRWERK_COMPAT_CLUSTER=N with UHRWERK_COMPAT_DATABASE_URL: each Uhrwerk server
  is N nodes on one database (compat_cluster.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

import compat_cluster
import compat_util
from compat_server import TEST_OUTPUT, ServerProcess


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("compat")
    group.addoption(
        "--server",
        metavar="HOST:PORT",
        default=None,
        help="Use an already running server (external mode); crash tests are skipped.",
    )
    group.addoption(
        "--reference-server",
        action="store_true",
        default=False,
        help="Start the real Temporal dev server (temporal CLI from the venv) instead of uhrwerk.",
    )
    group.addoption("--namespace", default="default", help="Namespace to run the tests in.")


def _session_dir(config: pytest.Config) -> Path:
    d = getattr(config, "_compat_session_dir", None)
    if d is None:
        d = TEST_OUTPUT / (time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
        d.mkdir(parents=True, exist_ok=True)
        config._compat_session_dir = d  # type: ignore[attr-defined]
    return d


def _server_kind(config: pytest.Config) -> str:
    return "reference" if config.getoption("--reference-server") else "uhrwerk"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [] if config.getoption("--server") else compat_cluster.report_header()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--server"):
        skip = pytest.mark.skip(reason="needs to kill/restart its own server; not possible with --server")
        for item in items:
            if "needs_managed_server" in item.keywords:
                item.add_marker(skip)
        return
    for item in items:
        reason = compat_cluster.skip_reason(item.nodeid, _server_kind(config))
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"cluster mode: {reason}"))


class ServerInfo:
    def __init__(self, address: str, namespace: str, process: ServerProcess | None):
        self.address = address
        self.namespace = namespace
        self.process = process

    @property
    def external(self) -> bool:
        return self.process is None

    @property
    def log_file(self) -> Path | None:
        return self.process.log_file if self.process else None


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the whole run: no API key, token or private key a test used appears in any server
    log the run produced."""
    yield
    if not compat_util.SECRETS:
        return
    d = _session_dir(request.config)
    leaked = []
    for log in sorted(d.rglob("*.log")):
        text = log.read_text(errors="replace")
        found = sum(1 for s in compat_util.SECRETS if s in text)
        if found:
            leaked.append(f"{log.relative_to(d)}: {found} secret(s)")
    assert not leaked, f"secrets appear in server logs (not shown here): {leaked}"
    print(f"\nno secret in server logs: {len(compat_util.SECRETS)} secrets, {len(list(d.rglob('*.log')))} logs read")


@pytest.fixture(scope="session")
async def server(request: pytest.FixtureRequest) -> AsyncIterator[ServerInfo]:
    config = request.config
    namespace = config.getoption("--namespace")
    external = config.getoption("--server")
    if external:
        yield ServerInfo(external, namespace, None)
        return
    d = _session_dir(config)
    proc = compat_cluster.server_process(
        _server_kind(config), d / "server.db", d / "server.log", namespaces=(namespace,)
    )
    try:
        proc.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        client = await proc.wait_ready(namespace=namespace)
        del client
        yield ServerInfo(proc.address, namespace, proc)
    finally:
        code = proc.terminate()
        panics = proc.panics()
    assert not panics, f"server log {proc.log_file} contains panics: {panics[:5]}"
    assert code == 0, f"server exited with {code} after SIGTERM; see {proc.log_file}"


@pytest.fixture(scope="session")
async def client(server: ServerInfo) -> Client:
    return await Client.connect(server.address, namespace=server.namespace)


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def new_id() -> Callable[[str], str]:
    def make(prefix: str = "wf") -> str:
        return f"{prefix}-{uuid.uuid4()}"

    return make


@pytest.fixture
def test_dir(request: pytest.FixtureRequest) -> Path:
    """A per-test directory under test_output/<session>/ for logs and db files."""
    name = request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    d = _session_dir(request.config) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def server_factory(request: pytest.FixtureRequest, test_dir: Path):
    """Creates separate server processes, each on its own db file, for tests that kill them."""
    if request.config.getoption("--server"):
        pytest.skip("needs to kill/restart its own server; not possible with --server")
    created: list[ServerProcess] = []
    kind = _server_kind(request.config)
    namespace = request.config.getoption("--namespace")

    def make(name: str = "own", extra_args: tuple[str, ...] = ()) -> ServerProcess:
        p = compat_cluster.server_process(
            kind, test_dir / f"{name}.db", test_dir / f"{name}.log", namespaces=(namespace,), extra_args=extra_args
        )
        created.append(p)
        return p

    yield make
    for p in created:
        if p.proc is not None and p.proc.poll() is None:
            p.terminate()
        panics = p.panics()
        assert not panics, f"server log {p.log_file} contains panics: {panics[:5]}"
