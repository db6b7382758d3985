"""Disks that fail under the server (Uhrwerk on SQLite): a full file system, a failing `fsync`, a
file system gone read-only, and database files that are corrupt, foreign or from a newer version.

- A full disk: the database lives on a small tmpfs the test mounts (so it needs root, as CI has;
  skipped otherwise). Each episode starts workflows, fills the file system until ENOSPC, keeps
  starting workflows while it is full (refused with UNAVAILABLE, retried by the client), frees the
  space, and starts more; every workflow started before, during and after completes with its
  right result, without a restart of the server. `UHRWERK_DISK_EPISODES` sets the number of
  episodes (the stranding this guards against was timing dependent), `UHRWERK_DISK_FAILURES`
  how many failed commits each lasts at least and `UHRWERK_DISK_HOLD` how many seconds more.
  Afterwards the file passes SQLite's integrity check, and after a kill -9 a new server reads
  every result back.
- A failing `fsync` (EIO) and a file system gone read-only (writes fail with EROFS): the same
  episodes, the failures injected with libfiu (`fiu-run`, Debian's fiu-utils; skipped when it is
  not installed). A real device failure may also lose what the page cache held; that needs a
  block device that fails (dm-flakey) and is not simulated here.
- A read-only file system at start, a file of random bytes, a truncated database, another
  application's SQLite file and a database of a newer Uhrwerk: a clear message, a non-zero exit,
  no panic, and the file unchanged.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from compat_server import ServerProcess, on_postgres, uhrwerk_binary

EPISODES = int(os.environ.get("UHRWERK_DISK_EPISODES", "3"))
# How long an episode lasts: until the server failed this many commits, then HOLD seconds more.
FAILURES = int(os.environ.get("UHRWERK_DISK_FAILURES", "50"))
HOLD = float(os.environ.get("UHRWERK_DISK_HOLD", "0"))
PER_PHASE = 8


@pytest.fixture
def uhrwerk_sqlite(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--reference-server") or request.config.getoption("--server"):
        pytest.skip("starts Uhrwerk on files of its own")
    if on_postgres():
        pytest.skip("the database is a SQLite file here; PostgreSQL's disk is PostgreSQL's")


@pytest.fixture
def small_disk(test_dir: Path):
    """A 48 MiB tmpfs mounted for the test, unmounted after."""
    mount_point = test_dir / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


EFFECTS: list[str] = []


@activity.defn(name="disk_step")
async def disk_step(name: str) -> str:
    EFFECTS.append(name)
    return f"{name} done"


@workflow.defn(name="DiskFlow")
class DiskFlow:
    @workflow.run
    async def run(self, name: str) -> str:
        first = await workflow.execute_activity(disk_step, f"{name}/1", start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(0.3)
        second = await workflow.execute_activity(disk_step, f"{name}/2", start_to_close_timeout=timedelta(seconds=30))
        return f"{first}, {second}"


def fill(path: Path) -> int:
    """Writes zeros to `path` until the file system is full; the bytes written."""
    written = 0
    chunk = b"\0" * (256 * 1024)
    # Unbuffered: no rest of a chunk is left to flush (and fail) when the file is closed.
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                written += f.write(chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return written


class Starter:
    """Starts workflows until each is acknowledged, retrying while the server says UNAVAILABLE."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.unavailable = 0
        self.started: dict[str, str] = {}

    async def start(self, name: str, deadline_s: float = 120) -> None:
        deadline = time.monotonic() + deadline_s
        # A fixed request id: a start that was committed but whose answer was lost is not doubled.
        request_id = str(uuid.uuid4())
        while True:
            try:
                await self.client.workflow_service.start_workflow_execution(
                    start_request(self.client, name, self.task_queue, request_id), timeout=timedelta(seconds=30))
                self.started[name] = name
                return
            except RPCError as e:
                assert e.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED), \
                    f"start of {name}: {e.status} {e.message}"
                self.unavailable += 1
                assert time.monotonic() < deadline, f"{name} was never acknowledged: {e.message}"
                await asyncio.sleep(0.05)


def start_request(client: Client, name: str, task_queue: str, request_id: str):
    from temporalio.api.common.v1 import Payloads, WorkflowType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest

    payloads = client.data_converter.payload_converter.to_payloads([name])
    return StartWorkflowExecutionRequest(
        namespace=client.namespace, workflow_id=name, workflow_type=WorkflowType(name="DiskFlow"),
        task_queue=TaskQueue(name=task_queue), input=Payloads(payloads=payloads), request_id=request_id,
        identity="disk-test")


@pytest.fixture
def own_server(test_dir: Path):
    """Server processes the test makes by hand (their database on the test's disk), stopped after."""
    made: list[ServerProcess] = []

    def make(db: Path, wrap: tuple[str, ...] = ()) -> ServerProcess:
        srv = ServerProcess("uhrwerk", db, test_dir / "server.log", wrap=wrap)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.kill9()


class Fault:
    """A way the disk fails under a running server: `begin` and `end` an episode; `message` is
    what the server logs for each commit that failed of it."""

    message = ""

    def begin(self) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


class FullDisk(Fault):
    message = "database or disk is full"

    def __init__(self, disk: Path) -> None:
        self.filler = disk / "filler"

    def begin(self) -> None:
        fill(self.filler)

    def end(self) -> None:
        self.filler.unlink()


class Libfiu(Fault):
    """Failure points of libfiu's POSIX preload library (Debian's fiu-utils), which the server
    runs under (`fiu-run -x`): its functions fail with `errno` while the points are enabled,
    switched at run time through the process's control pipe (`fiu-ctrl`). The server's only
    `fsync`, `pwrite` and `ftruncate` calls are SQLite's on its database files."""

    message = "disk I/O error"

    def __init__(self, ctrl: Path, points: list[str], errno_: int) -> None:
        self.ctrl = ctrl
        self.points = points
        self.errno = errno_
        self.pid = 0

    def wrap(self) -> tuple[str, ...]:
        return ("fiu-run", "-x", "-f", str(self.ctrl))

    def _ctrl(self, *commands: str) -> None:
        args = [a for c in commands for a in ("-c", c)]
        done = subprocess.run(["fiu-ctrl", "-f", str(self.ctrl), *args, str(self.pid)],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"fiu-ctrl {commands}: {done.stderr}"

    def begin(self) -> None:
        self._ctrl(*(f"enable name={p},failinfo={self.errno}" for p in self.points))

    def end(self) -> None:
        self._ctrl(*(f"disable name={p}" for p in self.points))


@pytest.fixture
def libfiu(test_dir: Path):
    if shutil.which("fiu-run") is None or shutil.which("fiu-ctrl") is None:
        pytest.skip("libfiu's fiu-run is not installed (Debian's fiu-utils; scripts/test installs it as root)")
    return test_dir / "fiu"


def failed_commits(srv: ServerProcess, fault: Fault) -> int:
    """Commits the server logged as failed of `fault`."""
    return srv.log_file.read_text(errors="replace").count(fault.message)


async def strands_nothing(srv: ServerProcess, fault: Fault, what: str) -> None:
    """Runs EPISODES episodes of `fault` under `srv` while workflows start and run. Every
    workflow started before, during and after an episode completes with its right result,
    without a restart of the server; afterwards the database passes SQLite's integrity check
    and a server started again on it after a kill -9 reads every result back."""
    client = await srv.wait_ready()
    task_queue = f"disk-{uuid.uuid4().hex[:8]}"
    starter = Starter(client, task_queue)
    names: list[str] = []
    pid = srv.proc.pid
    episodes_failed: list[int] = []
    EFFECTS.clear()
    async with Worker(client, task_queue=task_queue, workflows=[DiskFlow], activities=[disk_step],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        for episode in range(EPISODES):
            before = [f"disk-{episode}-before-{i}-{uuid.uuid4().hex[:6]}" for i in range(PER_PHASE)]
            for name in before:
                await starter.start(name)
            names += before
            failed_before = failed_commits(srv, fault)
            fault.begin()
            # While the disk fails: starts are refused (or, on a full disk, fit in the WAL's
            # free pages) and retried; the workflows already started try to go on (polls,
            # timers, completions) and fail their commits. The episode lasts until the server
            # failed FAILURES commits.
            during = [f"disk-{episode}-during-{i}-{uuid.uuid4().hex[:6]}" for i in range(PER_PHASE)]
            pending = [asyncio.create_task(starter.start(name)) for name in during]
            deadline = time.monotonic() + 30
            while failed_commits(srv, fault) < failed_before + FAILURES:
                assert time.monotonic() < deadline, f"{what}: no commit failed"
                await asyncio.sleep(0.05)
            # A longer episode (the long form): work waits on timeouts and retries meanwhile.
            await asyncio.sleep(HOLD)
            episodes_failed.append(failed_commits(srv, fault) - failed_before)
            fault.end()
            await asyncio.gather(*pending)
            names += during
            after = [f"disk-{episode}-after-{i}-{uuid.uuid4().hex[:6]}" for i in range(PER_PHASE)]
            for name in after:
                await starter.start(name)
            names += after

        # Every workflow completes, without a restart.
        async def result(name: str) -> tuple[str, str | BaseException]:
            try:
                return name, await asyncio.wait_for(client.get_workflow_handle(name).result(), 90)
            except BaseException as e:  # noqa: BLE001 - reported below with the name
                return name, e

        results = dict(await asyncio.gather(*(result(n) for n in names)))
    wrong = {n: r for n, r in results.items() if r != f"{n}/1 done, {n}/2 done"}
    assert not wrong, f"{len(wrong)} of {len(names)} workflows did not complete right: {dict(list(wrong.items())[:5])}"
    assert srv.proc.pid == pid and srv.proc.poll() is None, "the server restarted"
    for name in names:
        assert f"{name}/1" in EFFECTS and f"{name}/2" in EFFECTS
    print(f"\n{EPISODES} episodes of {what} ({episodes_failed} commits failed in each), {len(names)} workflows "
          f"all completed; {starter.unavailable} starts refused with UNAVAILABLE meanwhile")

    # Nothing half-written is read back: after a kill -9 the file is whole and every result is there.
    srv.kill9()
    conn = sqlite3.connect(srv.db_file)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    srv.start()
    client = await srv.wait_ready()
    for name in names:
        assert await client.get_workflow_handle(name).result() == f"{name}/1 done, {name}/2 done"
    assert srv.terminate() == 0
    assert not srv.panics()


@pytest.mark.timeout(60 + EPISODES * (20 + HOLD))
async def test_a_full_disk_strands_nothing(small_disk: Path, own_server, uhrwerk_sqlite) -> None:
    srv = own_server(small_disk / "uhrwerk.db")
    srv.start()
    await strands_nothing(srv, FullDisk(small_disk), "a full disk")


@pytest.mark.timeout(60 + EPISODES * (20 + HOLD))
async def test_a_failing_fsync_strands_nothing(test_dir: Path, own_server, libfiu: Path, uhrwerk_sqlite) -> None:
    """`fsync` and `fdatasync` fail with EIO, as on a failing device: SQLite's commits fail
    (with synchronous=FULL each commit syncs its WAL), and the server goes on once they work."""
    fault = Libfiu(libfiu, ["posix/io/sync/fsync", "posix/io/sync/fdatasync"], errno.EIO)
    srv = own_server(test_dir / "uhrwerk.db", wrap=fault.wrap())
    srv.start()
    fault.pid = srv.proc.pid
    await strands_nothing(srv, fault, "failing fsync")


@pytest.mark.timeout(60 + EPISODES * (20 + HOLD))
async def test_a_file_system_gone_read_only_strands_nothing(
    test_dir: Path, own_server, libfiu: Path, uhrwerk_sqlite
) -> None:
    """Writes to the database files fail with EROFS, as after the kernel remounted their file
    system read-only on an error (a real remount is refused while SQLite holds the file open for
    writing, so the failure is injected), and work again after."""
    fault = Libfiu(libfiu, ["posix/io/rw/pwrite", "posix/io/rw/ftruncate"], errno.EROFS)
    srv = own_server(test_dir / "uhrwerk.db", wrap=fault.wrap())
    srv.start()
    fault.pid = srv.proc.pid
    await strands_nothing(srv, fault, "a read-only file system")


# --- Files the server must refuse at start, unchanged.

def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_on(db: Path, log: Path) -> tuple[int, str]:
    binary = uhrwerk_binary()
    assert binary is not None
    out = subprocess.run([str(binary), "server", "start", "--port", "0", "--metrics-port", "0", "--headless",
                          "--db-filename", str(db)], capture_output=True, text=True, timeout=60)
    log.write_text(out.stdout + out.stderr)
    return out.returncode, out.stderr


async def test_bad_database_files_are_refused_untouched(server_factory, test_dir: Path, uhrwerk_sqlite) -> None:
    # A database of this version, to break in several ways.
    srv = server_factory("made")
    srv.start()
    await srv.wait_ready()
    assert srv.terminate() == 0
    good = srv.db_file

    cases: dict[str, tuple[Path, str]] = {}
    noise = test_dir / "noise.db"
    noise.write_bytes(os.urandom(64 * 1024))
    cases["random bytes"] = (noise, "not a Uhrwerk database")
    truncated = test_dir / "truncated.db"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    cases["a truncated database"] = (truncated, "")
    foreign = test_dir / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.commit()
    conn.close()
    cases["another application's database"] = (foreign, "another application")
    newer = test_dir / "newer.db"
    shutil.copy(good, newer)
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    assert not Path(f"{newer}-wal").exists()
    cases["a newer Uhrwerk's database"] = (newer, "newer")

    for what, (db, expected) in cases.items():
        before = digest(db)
        code, err = start_on(db, test_dir / f"{db.stem}.log")
        assert code != 0, f"{what}: the server started"
        assert "panicked" not in err, f"{what}: {err}"
        assert expected.lower() in err.lower(), f"{what}: {err}"
        assert str(db) in err, f"{what}: the message names no file: {err}"
        assert digest(db) == before, f"{what}: the file was changed"
        print(f"\n{what}: exit {code}: {err.strip()}")
        assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0, f"{what}: a WAL was written"


async def test_a_read_only_file_system_is_refused_at_start(
    small_disk: Path, test_dir: Path, own_server, uhrwerk_sqlite
) -> None:
    srv = own_server(small_disk / "uhrwerk.db")
    srv.start()
    await srv.wait_ready()
    assert srv.terminate() == 0
    before = digest(small_disk / "uhrwerk.db")
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    assert remounted.returncode == 0, remounted.stderr
    try:
        code, err = start_on(small_disk / "uhrwerk.db", test_dir / "ro.log")
        assert code != 0 and "panicked" not in err, err
        assert "read-only" in err.lower() or "readonly" in err.lower(), err
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], capture_output=True)
    assert digest(small_disk / "uhrwerk.db") == before
