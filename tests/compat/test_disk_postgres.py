"""A full disk under Uhrwerk's PostgreSQL: the guarantee test_disk.py gives on SQLite.

The test starts a PostgreSQL of its own with scripts/pg-throwaway (whatever
UHRWERK_COMPAT_DATABASE_URL says) and moves its data directory onto a small tmpfs it mounts (so
it needs root, as CI has; skipped otherwise). The log and the socket stay on the ordinary disk,
so PostgreSQL's own account of the full disk survives it. Each episode starts workflows, fills
the tmpfs until ENOSPC, keeps starting workflows while it is full (the client retries
UNAVAILABLE and DEADLINE_EXCEEDED with a fixed request id), waits until Uhrwerk has visibly hit
the full disk, frees the space and starts more. Every workflow started before, during and after
completes with its right result, each activity having run, and the Uhrwerk process is the one
started first: Uhrwerk is never restarted.

The episodes take turns at the ways a full disk reaches PostgreSQL (as observed with PostgreSQL
15, which scripts/pg-throwaway runs):

- "relation": a table or index must grow. PostgreSQL refuses the statement ("ERROR: could not
  extend file "base/...": No space left on device"), the transaction aborts, PostgreSQL stays up.
  Uhrwerk logs the commit as failed, answers UNAVAILABLE, and goes on once there is space. The
  episode lasts until Uhrwerk failed `UHRWERK_DISK_FAILURES` commits so.
- "wal": WAL that cannot be written. The test commits and switches to the next WAL segment
  (pg_switch_wal(); a busy server gets there by itself) until a segment file must be created
  (earlier checkpoints leave recycled ones) and the next WAL flush cannot make it: PANIC
  ("could not write to file "pg_wal/xlogtemp.N": No space left on device"), in whichever
  backend, often Uhrwerk's own commit, or in the checkpointer. The postmaster kills every backend
  and reinitialises; crash recovery cannot write WAL either ("FATAL: could not write to file
  "pg_wal/xlogtemp.N"") and the postmaster shuts down ("shutting down due to startup process
  failure"). PostgreSQL does not come back by itself: once the space is freed the test starts it
  again on the same port, as an operator or a service manager would, and it recovers. (When a
  recycled segment is left for recovery, it comes back by itself, as in "checkpoint".)
- "checkpoint": a checkpoint while the disk is full (forced with CHECKPOINT; PostgreSQL also runs
  one every checkpoint_timeout and after max_wal_size of WAL). The checkpointer PANICs ("could
  not write to file "pg_logical/replorigin_checkpoint.tmp""), the postmaster reinitialises, and
  crash recovery usually succeeds by itself (it deletes the relcache init files, which frees
  enough for its end-of-recovery checkpoint): PostgreSQL restarts itself under Uhrwerk, which
  sees its connections closed and "the database system is in recovery mode" meanwhile.

A crash episode lasts until PostgreSQL's crash has played out (shut down, or accepting
connections again) and Uhrwerk failed `UHRWERK_DISK_FAILURES` store calls since the PANIC (or
some, and 2 s passed). Any
episode may meet another kind's behaviour; the test copes with each in each and reports what
PostgreSQL did. With the default two episodes CI sees "relation" and "wal"; three or more also
"checkpoint".

Some work may wait for its timeout and then go on, as on Temporal: a completion the SDK stopped
retrying while the disk was full (a workflow task then times out after 10 s, an activity after 30 s
and runs again), a workflow task whose start was committed just as PostgreSQL crashed while its
poller got an error, a sticky workflow task not polled in time. The summary counts these by the
episode their task started in; one that started while disk and PostgreSQL were fine fails the test
(the histories are in timeouts.txt in the test's folder, with server.log and postgres.log).

`UHRWERK_DISK_EPISODES` (2), `UHRWERK_DISK_FAILURES` (50), `UHRWERK_DISK_HOLD` (0: seconds more
of full disk per episode; the longer, the more completions the SDK gives up on) and
`UHRWERK_DISK_PG_SIZE` (128m, the tmpfs; the cluster takes ~46 MiB, its WAL up to 48 MiB more).
"""

from __future__ import annotations

import asyncio
import errno
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from compat_server import REPO_ROOT, ServerProcess, uhrwerk_binary

EPISODES = int(os.environ.get("UHRWERK_DISK_EPISODES", "2"))
FAILURES = int(os.environ.get("UHRWERK_DISK_FAILURES", "50"))
HOLD = float(os.environ.get("UHRWERK_DISK_HOLD", "0"))
DISK_SIZE = os.environ.get("UHRWERK_DISK_PG_SIZE", "128m")
PER_PHASE = 8
KINDS = ("relation", "wal", "checkpoint")

PG_THROWAWAY = REPO_ROOT / "scripts" / "pg-throwaway"
PG_OS_USER = "uhrwerk-pg"  # scripts/pg-throwaway runs the server as this user when started as root
# Appended to the cluster's postgresql.conf (after pg-throwaway's include, which sets neither):
# few WAL segments kept for reuse, so that the WAL of many episodes fits the tmpfs (with the
# defaults, each "wal" episode left one more 16 MiB segment behind).
PG_SETTINGS = "min_wal_size = 32MB\nmax_wal_size = 64MB\n"

# In Uhrwerk's log: PostgreSQL's message when a table or index cannot grow.
DISK_ERROR = "No space left on device"


# --- Workflows of this test.

EFFECTS: list[str] = []


@activity.defn(name="pg_disk_step")
async def pg_disk_step(name: str) -> str:
    EFFECTS.append(name)
    return f"{name} done"


@workflow.defn(name="PgDiskFlow")
class PgDiskFlow:
    @workflow.run
    async def run(self, name: str) -> str:
        first = await workflow.execute_activity(
            pg_disk_step, f"{name}/1", start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(0.3)
        second = await workflow.execute_activity(
            pg_disk_step, f"{name}/2", start_to_close_timeout=timedelta(seconds=30))
        return f"{first}, {second}"


def start_request(client: Client, name: str, task_queue: str, request_id: str):
    from temporalio.api.common.v1 import Payloads, WorkflowType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest

    payloads = client.data_converter.payload_converter.to_payloads([name])
    return StartWorkflowExecutionRequest(
        namespace=client.namespace, workflow_id=name, workflow_type=WorkflowType(name="PgDiskFlow"),
        task_queue=TaskQueue(name=task_queue), input=Payloads(payloads=payloads), request_id=request_id,
        identity="pg-disk-test")


class Starter:
    """Starts workflows until each is acknowledged, retrying UNAVAILABLE and DEADLINE_EXCEEDED."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.refused: dict[str, int] = {}

    async def start(self, name: str, deadline_s: float = 60 + HOLD) -> None:
        deadline = time.monotonic() + deadline_s
        # A fixed request id: a start that was committed but whose answer was lost is not doubled.
        request_id = str(uuid.uuid4())
        while True:
            try:
                await self.client.workflow_service.start_workflow_execution(
                    start_request(self.client, name, self.task_queue, request_id),
                    retry=False, timeout=timedelta(seconds=10))
                return
            except RPCError as e:
                assert e.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED), \
                    f"start of {name}: {e.status!r} {e.message}"
                code = RPCStatusCode(e.status).name
                self.refused[code] = self.refused.get(code, 0) + 1
                assert time.monotonic() < deadline, f"{name} was never acknowledged: {e.message}"
                await asyncio.sleep(0.05)


# --- The PostgreSQL of this test, its data directory on a tmpfs.

def fill(path: Path) -> int:
    """Writes zeros to `path` until the file system is full; the bytes written."""
    written = 0
    chunk = b"\0" * (256 * 1024)
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                written += f.write(chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return written


def throwaway(command: str, directory: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(PG_THROWAWAY), command, str(directory)], capture_output=True, text=True,
                         timeout=180)
    if check:
        assert out.returncode == 0, f"pg-throwaway {command}: {out.stderr}"
    return out


def pg_binary(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    return str(found[-1]) if found else (shutil.which(name) or name)


class PgOnTmpfs:
    """scripts/pg-throwaway's server in `dir`, its data directory `dir/data` a tmpfs."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.filler = self.data / "uhrwerk-disk-filler"
        self.url = ""
        self.mounted = False

    def used(self) -> tuple[int, int]:
        """MiB used on the tmpfs, and by the WAL."""
        st = os.statvfs(self.data)
        wal = sum(f.stat().st_size for f in (self.data / "pg_wal").iterdir() if f.is_file())
        return (st.f_blocks - st.f_bfree) * st.f_frsize >> 20, wal >> 20

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def running(self) -> bool:
        return throwaway("status", self.dir, check=False).returncode == 0

    def answers(self) -> bool:
        out = subprocess.run([pg_binary("psql"), "-X", "-Atc", "SELECT 1", self.url], capture_output=True,
                             text=True, timeout=30, env=no_pg_env())
        return out.returncode == 0

    def superuser_sql(self, *statements: str) -> subprocess.CompletedProcess[str]:
        """Statements, each in a transaction of its own, as the cluster's superuser (the server's OS
        user, over the Unix socket), in Uhrwerk's database: a new session needs the relcache init
        file of its database, which PostgreSQL deletes in crash recovery and a session rewrites, and
        on a full disk cannot ("FATAL: could not write init file"); Uhrwerk's sessions rewrote it."""
        sockdir = self.dir / "socketdir"
        host = sockdir.read_text().strip() if sockdir.exists() else str(self.dir)
        port = (self.dir / "port").read_text().strip()
        database = self.url.rsplit("/", 1)[1].split("?")[0]
        commands = [arg for sql in statements for arg in ("-c", sql)]
        return subprocess.run(
            ["runuser", "-u", PG_OS_USER, "--", pg_binary("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", host,
             "-p", port, "-d", database, "-At", *commands], capture_output=True, text=True, timeout=60,
            env=no_pg_env())

    def force_new_wal_segment(self, log_at: int) -> str:
        """Makes PostgreSQL create a WAL segment file: a small commit, then a switch to the next
        segment, until one is not there yet (earlier checkpoints leave recycled ones) and the
        commit cannot be flushed. What happened, for the summary."""
        failed = ""
        for switches in range(1, 16):
            out = self.superuser_sql("SELECT txid_current()", "SELECT pg_switch_wal()")
            failed = one_line(out.stderr) if out.returncode != 0 else ""
            if "PANIC:" in text_since(self.log, log_at):
                return f"{switches} pg_switch_wal(): {failed or 'PANIC in another process'}"
            time.sleep(0.02)
        return f"{switches} pg_switch_wal() without a PANIC ({failed or 'no error'})"

    def set_up(self) -> None:
        # A first start makes the cluster, the role and the database on the ordinary disk (and,
        # on a fresh machine, the server's OS user); then the data directory moves to the tmpfs.
        throwaway("start", self.dir)
        throwaway("stop", self.dir)
        user = pwd.getpwnam(PG_OS_USER)
        on_disk = self.dir / "data.on-disk"
        self.data.rename(on_disk)
        self.data.mkdir(mode=0o700)
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700,uid={user.pw_uid},gid={user.pw_gid}",
             "tmpfs", str(self.data)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
        self.mounted = True
        copied = subprocess.run(["cp", "-a", f"{on_disk}/.", f"{self.data}/"], capture_output=True, text=True)
        assert copied.returncode == 0, copied.stderr
        shutil.rmtree(on_disk)
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\n# tests/compat/test_disk_postgres.py\n" + PG_SETTINGS)
        self.url = throwaway("start", self.dir).stdout.strip()

    def tear_down(self, keep_log_in: Path) -> None:
        try:
            if self.mounted and self.filler.exists():
                self.filler.unlink()
            throwaway("stop", self.dir, check=False)
        finally:
            if self.log.exists():
                shutil.copy(self.log, keep_log_in / "postgres.log")
            if self.mounted:
                if subprocess.run(["umount", str(self.data)], capture_output=True).returncode != 0:
                    subprocess.run(["umount", "-l", str(self.data)], capture_output=True)
            shutil.rmtree(self.dir, ignore_errors=True)


def no_pg_env() -> dict[str, str]:
    """The environment without libpq's PG* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


@pytest.fixture
def pg_on_tmpfs(request: pytest.FixtureRequest, test_dir: Path):
    if request.config.getoption("--reference-server") or request.config.getoption("--server"):
        pytest.skip("starts Uhrwerk and a PostgreSQL of its own")
    if os.geteuid() != 0 or shutil.which("mount") is None or shutil.which("runuser") is None:
        pytest.skip("mounting a small file system needs root")
    # Under /tmp: the server's OS user must reach it, and the socket path must be short.
    pg = PgOnTmpfs(Path(tempfile.mkdtemp(prefix="uwpgdisk.", dir="/tmp")))
    try:
        pg.set_up()
        yield pg
    finally:
        pg.tear_down(test_dir)


class UhrwerkOnPostgres(ServerProcess):
    """The Uhrwerk dev server on a given PostgreSQL URL (not the suite's)."""

    def __init__(self, url: str, log_file: Path) -> None:
        super().__init__("uhrwerk", log_file.with_suffix(".db"), log_file)
        self.url = url

    def command(self) -> list[str]:
        binary = uhrwerk_binary()
        assert binary is not None and binary.exists(), "uhrwerk binary not built"
        return [str(binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(self.port),
                "--metrics-port", str(self.metrics_port), "--database-url", self.url, "--log-level", "info"]


@pytest.fixture
def uhrwerk_on(test_dir: Path):
    made: list[UhrwerkOnPostgres] = []

    def make(url: str) -> UhrwerkOnPostgres:
        srv = UhrwerkOnPostgres(url, test_dir / "server.log")
        made.append(srv)
        return srv

    yield make
    for srv in made:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.kill9()


# --- Reading the logs.

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def text_since(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return ANSI.sub("", f.read().decode(errors="replace"))


def blur(text: str) -> str:
    text = re.sub(r'\\?"[^"\\]*\\?"', '"…"', text)
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "UUID", text)
    return re.sub(r"\d+", "N", text)


def one_line(text: str) -> str:
    return " ".join(text.split())[:100]


def store_failures(log: str) -> tuple[int, int, int]:
    """Uhrwerk's failed store calls: commits refused for want of space, other failed commits
    (lost or refused connections), and failed calls of every kind."""
    space = commits = calls = 0
    for line in log.splitlines():
        if "failed to commit" in line:
            if DISK_ERROR in line:
                space += 1
            else:
                commits += 1
        if " ERROR " in line or " WARN " in line:
            calls += "store unavailable" in line or "failed to access the store" in line
    return space, commits, calls


def uhrwerk_kinds(log: str) -> dict[str, int]:
    """Uhrwerk's ERROR and WARN lines, numbers, ids and names blurred, counted."""
    kinds: dict[str, int] = {}
    for line in log.splitlines():
        m = re.search(r" (ERROR|WARN) (\S+): (.*)$", line)
        if m:
            key = blur(f"{m[1]} {m[2]}: {m[3]}")[:200]
            kinds[key] = kinds.get(key, 0) + 1
    return kinds


PG_EVENTS = ("terminated by signal", "reinitializing", "terminating any other", "ready to accept",
             "not properly shut down", "shutting down due to", "database system is shut down", "exited with")


def crash_story(log: str) -> str:
    """PostgreSQL's PANICs, the processes that died and the writes recovery could not make."""
    story = []
    for line in log.splitlines():
        if "PANIC:" in line or "terminated by signal" in line or ("FATAL:" in line and "could not write" in line) \
                or "shutting down due to" in line:
            story.append(re.sub(r"\d+", "N", line.split("] ", 1)[-1]))
    return " / ".join(" ".join(s.split()) for s in story)


def pg_kinds(log: str) -> dict[str, int]:
    """PostgreSQL's ERROR, PANIC and FATAL lines and its crashes and restarts, blurred, counted."""
    kinds: dict[str, int] = {}
    for line in log.splitlines():
        m = re.search(r"\] (ERROR|PANIC|FATAL|LOG):  (.*)$", line)
        if not m or (m[1] == "LOG" and not any(w in m[2] for w in PG_EVENTS)):
            continue
        key = blur(f"{m[1]}: {m[2]}")
        kinds[key] = kinds.get(key, 0) + 1
    return kinds


@dataclass
class Episode:
    kind: str
    window: tuple[float, float] = (0.0, 0.0)  # wall clock: the disk filled, PostgreSQL answering again
    forced: str = ""
    used: tuple[int, int] = (0, 0)
    filled: int = 0
    to_first_error_s: float = 0.0
    full_s: float = 0.0
    back_s: float = 0.0
    recover_s: float = 0.0
    space: int = 0
    commits: int = 0
    calls: int = 0
    pg_panics: int = 0
    pg_panic: str = ""
    pg_restarts: int = 0
    pg_gave_up: bool = False
    restarted_by_test: bool = False
    uhrwerk: dict[str, int] = field(default_factory=dict)
    pg: dict[str, int] = field(default_factory=dict)


# --- The test.

def describe_history(name: str, history) -> str:
    """One line per event: seconds since the start, type, and what a timeout or start says."""
    first = history.events[0].event_time.ToDatetime()
    lines = [name]
    for e in history.events:
        what = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
        at = (e.event_time.ToDatetime() - first).total_seconds()
        detail = ""
        if e.HasField("workflow_task_timed_out_event_attributes"):
            a = e.workflow_task_timed_out_event_attributes
            detail = f"scheduled={a.scheduled_event_id} started={a.started_event_id} type={a.timeout_type}"
        elif e.HasField("workflow_task_started_event_attributes"):
            a = e.workflow_task_started_event_attributes
            detail = f"scheduled={a.scheduled_event_id} identity={a.identity} request={a.request_id}"
        elif e.HasField("activity_task_timed_out_event_attributes"):
            detail = str(e.activity_task_timed_out_event_attributes.failure.message)
        lines.append(f"  {e.event_id:3d} +{at:7.3f}s {what} {detail}")
    return "\n".join(lines)


def exited(srv: ServerProcess) -> str:
    signalled = "shutting down" in text_since(srv.log_file, 0)
    return (f"Uhrwerk exited with {srv.proc.returncode}"
            + (" after it logged 'shutting down' (it got SIGTERM or SIGINT)" if signalled else "")
            + f"; see {srv.log_file}")


@pytest.mark.timeout(90 + EPISODES * (40 + HOLD))
async def test_a_full_disk_under_postgres_strands_nothing(
    pg_on_tmpfs: PgOnTmpfs, uhrwerk_on, test_dir: Path
) -> None:
    pg = pg_on_tmpfs
    began = time.monotonic()
    srv = uhrwerk_on(pg.url)
    srv.start()
    client = await srv.wait_ready()
    pid = srv.proc.pid
    task_queue = f"pgdisk-{uuid.uuid4().hex[:8]}"
    starter = Starter(client, task_queue)
    names: list[str] = []
    episodes: list[Episode] = []
    EFFECTS.clear()
    async with Worker(client, task_queue=task_queue, workflows=[PgDiskFlow], activities=[pg_disk_step],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        for n in range(EPISODES):
            ep = Episode(KINDS[n % len(KINDS)])
            before = [f"pgdisk-{n}-before-{i}-{uuid.uuid4().hex[:6]}" for i in range(PER_PHASE)]
            for name in before:
                await starter.start(name)
            names += before
            log_at, pg_log_at = srv.log_file.stat().st_size, pg.log_size()
            ep.used = pg.used()
            full_at, full_wall = time.monotonic(), time.time()
            ep.filled = fill(pg.filler)
            # While the disk is full: starts are refused and retried, and the workflows already
            # started try to go on (polls, timers, completions) and fail their commits.
            # Half of the starts come at once, half once Uhrwerk has hit the full disk (or the crash).
            during = [f"pgdisk-{n}-during-{i}-{uuid.uuid4().hex[:6]}" for i in range(PER_PHASE)]
            pending = [asyncio.create_task(starter.start(name)) for name in during[: PER_PHASE // 2]]
            if ep.kind == "wal":
                # WAL must go to a new segment file, which cannot be made.
                ep.forced = await asyncio.to_thread(pg.force_new_wal_segment, pg_log_at)
            if ep.kind == "checkpoint":
                # PANICs the checkpointer, and so cuts this session's connection.
                forced = await asyncio.to_thread(pg.superuser_sql, "CHECKPOINT")
                ep.forced = "CHECKPOINT: " + one_line(forced.stdout + forced.stderr)
            deadline = time.monotonic() + 30
            panic_at: int | None = None  # where Uhrwerk's log was when PostgreSQL's showed the PANIC
            settled_at: float | None = None
            while True:
                ep.space, ep.commits, ep.calls = store_failures(text_since(srv.log_file, log_at))
                if ep.calls and not ep.to_first_error_s:
                    ep.to_first_error_s = time.monotonic() - full_at
                pg_log = text_since(pg.log, pg_log_at)
                if ep.kind == "relation" and ep.space >= FAILURES:
                    break
                if panic_at is None and "PANIC:" in pg_log:
                    panic_at = srv.log_file.stat().st_size
                if panic_at is not None:
                    # The crash played out (PostgreSQL shut down, or is back by itself) and Uhrwerk
                    # failed FAILURES store calls since, or some and 2 s passed (PostgreSQL back by
                    # itself may leave Uhrwerk less to fail). A "relation" episode may crash too.
                    after_panic = pg_log[pg_log.index("PANIC:"):]
                    if settled_at is None and ("database system is shut down" in after_panic
                                               or "ready to accept" in after_panic):
                        settled_at = time.monotonic()
                    since = store_failures(text_since(srv.log_file, panic_at))[2]
                    if settled_at is not None and (
                        since >= FAILURES or (since and time.monotonic() > settled_at + 2)
                    ):
                        break
                assert srv.proc.poll() is None, exited(srv)
                assert time.monotonic() < deadline, (
                    f"{ep.kind} episode: the full disk did not reach Uhrwerk within 30s ({ep.space} commits "
                    f"refused for space, {ep.calls} failed store calls, PANIC in PostgreSQL's log: "
                    f"{'PANIC:' in pg_log}); see {srv.log_file} and {pg.log}")
                await asyncio.sleep(0.05)
            pending += [asyncio.create_task(starter.start(name)) for name in during[PER_PHASE // 2 :]]
            await asyncio.sleep(max(HOLD, 0.2))
            pg.filler.unlink()
            ep.full_s = time.monotonic() - full_at
            freed_at = time.monotonic()
            # PostgreSQL either carried on, or is still recovering by itself, or gave up after a
            # PANIC (its startup process could not write either): then it is started again, as an
            # operator would once there is space.
            while not await asyncio.to_thread(pg.answers):
                if not await asyncio.to_thread(pg.running):
                    await asyncio.to_thread(throwaway, "start", pg.dir)
                    ep.restarted_by_test = True
                assert time.monotonic() < freed_at + 30, f"PostgreSQL did not come back; see {pg.log}"
                await asyncio.sleep(0.1)
            ep.back_s = time.monotonic() - freed_at
            ep.window = (full_wall, time.time())
            done, _ = await asyncio.wait(pending, timeout=60)
            assert len(done) == len(pending), (
                f"{len(pending) - len(done)} starts made while the disk was full still unacknowledged 60s after it "
                f"was freed; see {srv.log_file}")
            for t in done:
                t.result()
            names += during
            after = [f"pgdisk-{n}-after-{i}-{uuid.uuid4().hex[:6]}" for i in range(PER_PHASE)]
            for name in after:
                await starter.start(name)
            names += after
            ep.recover_s = time.monotonic() - freed_at
            log = text_since(srv.log_file, log_at)
            ep.space, ep.commits, ep.calls = store_failures(log)
            ep.uhrwerk = uhrwerk_kinds(log)
            pg_log = text_since(pg.log, pg_log_at)
            ep.pg_panics = pg_log.count("PANIC:")
            ep.pg_panic = crash_story(pg_log)
            ep.pg_restarts = pg_log.count("all server processes terminated; reinitializing")
            ep.pg_gave_up = "shutting down due to startup process failure" in pg_log
            ep.pg = pg_kinds(pg_log)
            episodes.append(ep)
            assert srv.proc.poll() is None, exited(srv)

        # Every workflow completes, without a restart of Uhrwerk.
        async def result(name: str) -> tuple[str, str | BaseException]:
            try:
                return name, await asyncio.wait_for(client.get_workflow_handle(name).result(), 60)
            except BaseException as e:  # noqa: BLE001 - reported below with the name
                return name, e

        waited_at = time.monotonic()
        results = dict(await asyncio.gather(*(result(n) for n in names)))
        completed_s = time.monotonic() - waited_at

        # Work that waited for a timeout (a task whose start was committed but whose poller got an
        # error, or whose completion was given up on): each placed in the episode during which its
        # task started; the histories are kept in timeouts.txt.
        def episode_of(at: float) -> str:
            """The episode whose window holds `at`, else the nearest within a second."""
            gaps = [(max(ep.window[0] - at, at - ep.window[1], 0.0), i) for i, ep in enumerate(episodes)]
            gap, i = min(gaps, default=(float("inf"), -1))
            return f"{i}:{episodes[i].kind}" if gap <= 1 else "outside"

        async def timeouts(name: str) -> tuple[list[str], str]:
            history = await client.get_workflow_handle(name).fetch_history()
            at = {e.event_id: e.event_time.ToDatetime().replace(tzinfo=UTC).timestamp() for e in history.events}
            where = []
            for e in history.events:
                # Placed by the start, or for a task never started (a sticky task's schedule-to-start
                # timeout) by its scheduling.
                if e.HasField("workflow_task_timed_out_event_attributes"):
                    a = e.workflow_task_timed_out_event_attributes
                    what = "workflow task" if a.started_event_id else "sticky workflow task not started"
                    where.append(f"{what} {episode_of(at[a.started_event_id or a.scheduled_event_id])}")
                elif e.HasField("activity_task_timed_out_event_attributes"):
                    a = e.activity_task_timed_out_event_attributes
                    what = "activity" if a.started_event_id else "activity not started"
                    where.append(f"{what} {episode_of(at[a.started_event_id or a.scheduled_event_id])}")
            return where, describe_history(name, history) if where else ""

        found = dict(zip(names, await asyncio.gather(*(timeouts(n) for n in names)), strict=True))
        timed_out = {n: where for n, (where, _) in found.items() if where}
        if timed_out:
            (test_dir / "timeouts.txt").write_text("\n".join(text for _, text in found.values() if text))
        places = [w for where in timed_out.values() for w in where]
        timeout_places = {w: places.count(w) for w in sorted(set(places))}
    wrong = {n: r for n, r in results.items() if r != f"{n}/1 done, {n}/2 done"}
    assert not wrong, (f"{len(wrong)} of {len(names)} workflows did not complete right (see {srv.log_file}): "
                       f"{dict(list(wrong.items())[:5])}")
    assert srv.proc.pid == pid and srv.proc.poll() is None, "Uhrwerk restarted"
    # A task may wait for its timeout when the disk was full or PostgreSQL crashed as it started
    # (the SDK gave up completing it, or the commit of its start succeeded but the poller got an
    # error); never when both were fine.
    lost = {n: where for n, where in timed_out.items() if any("outside" in w for w in where)}
    assert not lost, (f"tasks that started while disk and PostgreSQL were fine waited for their timeouts: {lost}; "
                      f"see {test_dir / 'timeouts.txt'} and {srv.log_file}")
    missing = [n for n in names if f"{n}/1" not in EFFECTS or f"{n}/2" not in EFFECTS]
    assert not missing, f"activities that never ran: {missing[:5]}"
    again = sorted({e for e in EFFECTS if EFFECTS.count(e) > 1})

    print(f"\n{EPISODES} full-disk episodes under Uhrwerk's PostgreSQL (its data directory on a {DISK_SIZE} tmpfs): "
          f"{len(names)} workflows all completed right with the one Uhrwerk process, the last "
          f"{completed_s:.1f}s after the last start, {time.monotonic() - began:.1f}s in all; starts refused while "
          f"full: {starter.refused or 'none'}; activities run more than once: {len(again)} {again[:4]}; "
          f"tasks that waited for their timeout, by the episode they started in: {timeout_places or 'none'}")
    for i, ep in enumerate(episodes):
        if not ep.pg_panics and not ep.restarted_by_test:
            pg_did = "stayed up"
        else:
            pg_did = f"{ep.pg_panics} PANIC, {ep.pg_restarts} reinitialisations, " + (
                "gave up (startup process failure) and was started again by the test" if ep.pg_gave_up
                else "was down and started again by the test" if ep.restarted_by_test
                else "recovered by itself")
        print(f"  episode {i} ({ep.kind}): {ep.used[0]} MiB used ({ep.used[1]} MiB WAL), {ep.filled >> 20} MiB "
              f"filler, Uhrwerk's first store error {ep.to_first_error_s:.2f}s after, full {ep.full_s:.1f}s, "
              f"PostgreSQL answering {ep.back_s:.1f}s after the space was freed, every start acknowledged "
              f"{ep.recover_s:.1f}s after; Uhrwerk: {ep.space} commits refused for space, {ep.commits} other "
              f"failed commits, {ep.calls} failed store calls; "
              f"PostgreSQL: {pg_did}" + (f"; {ep.forced}" if ep.forced else ""))
        if ep.pg_panic:
            print(f"    PostgreSQL's crash: {ep.pg_panic}")
        for what, kinds in (("PostgreSQL", ep.pg), ("Uhrwerk", ep.uhrwerk)):
            shown = {k: c for k, c in kinds.items() if "current transaction is aborted" not in k}
            for kind, count in sorted(shown.items(), key=lambda kv: -kv[1])[:3]:
                print(f"    {what}: {count:4d} x {kind[:150]}")
    assert srv.terminate() == 0
    assert not srv.panics()
