"""Disks that fail under the server (Uhrwerk on SQLite): a full file system, a read-only one, and
database files that are corrupt, foreign or from a newer version.

- A full disk: the database lives on a small tmpfs the test mounts (so it needs root, as CI has;
  skipped otherwise). Each episode starts workflows, fills the file system until ENOSPC, keeps
  starting workflows while it is full (refused with UNAVAILABLE, retried by the client), frees the
  space, and starts more; every workflow started before, during and after completes with its
  right result, without a restart of the server. `UHRWERK_DISK_EPISODES` sets the number of
  episodes (the stranding this guards against was timing dependent), `UHRWERK_DISK_FAILURES`
  how many failed commits each lasts at least and `UHRWERK_DISK_HOLD` how many seconds more.
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


def failed_commits(srv: ServerProcess) -> int:
    """Commits the server logged as failed because the disk was full."""
    return srv.log_file.read_text(errors="replace").count("database or disk is full")


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

    def make(db: Path) -> ServerProcess:
        srv = ServerProcess("uhrwerk", db, test_dir / "server.log")
        made.append(srv)
        return srv

    yield make
    for srv in made:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.kill9()


@pytest.mark.timeout(60 + EPISODES * (20 + HOLD))
async def test_a_full_disk_strands_nothing(small_disk: Path, own_server, uhrwerk_sqlite) -> None:
    srv = own_server(small_disk / "uhrwerk.db")
    srv.start()
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
            filler = small_disk / "filler"
            failed_before = failed_commits(srv)
            fill(filler)
            # While the disk is full: starts are refused (or fit in the WAL's free pages) and
            # retried; the workflows already started try to go on (polls, timers, completions)
            # and fail their commits. The episode lasts until the server failed FAILURES commits.
            during = [f"disk-{episode}-during-{i}-{uuid.uuid4().hex[:6]}" for i in range(PER_PHASE)]
            pending = [asyncio.create_task(starter.start(name)) for name in during]
            deadline = time.monotonic() + 30
            while failed_commits(srv) < failed_before + FAILURES:
                assert time.monotonic() < deadline, "the full disk failed no commit"
                await asyncio.sleep(0.05)
            # A longer episode (the long form): work waits on timeouts and retries meanwhile.
            await asyncio.sleep(HOLD)
            episodes_failed.append(failed_commits(srv) - failed_before)
            filler.unlink()
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
    log = srv.log_file.read_text(errors="replace")
    assert "database or disk is full" in log, "the episodes never reached the database"
    print(f"\n{EPISODES} full-disk episodes ({episodes_failed} commits failed in each), {len(names)} workflows "
          f"all completed; {starter.unavailable} starts refused with UNAVAILABLE while full")
    assert srv.terminate() == 0
    assert not srv.panics()


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
