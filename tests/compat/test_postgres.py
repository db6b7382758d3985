"""Uhrwerk on PostgreSQL (`--database-url`): bad configurations each give one clear line and exit
code 1 without showing a password; `uhrwerk db status` and `db migrate`; and a PostgreSQL
restart or outage under load: calls fail with UNAVAILABLE while it is down, nothing
acknowledged is lost or runs twice, and Uhrwerk carries on by itself when it is back.

Runs in the suite's PostgreSQL pass (`UHRWERK_COMPAT_DATABASE_URL`, set by ./scripts/test);
the outage test starts a PostgreSQL of its own with scripts/pg-throwaway, so it can stop it.
The kill -9 crash tests (test_crash*.py) run on PostgreSQL in that pass too."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import compat_server
from compat_server import REPO_ROOT, ServerProcess, free_port, uhrwerk_binary
from compat_util import eventually

pytestmark = pytest.mark.skipif(
    not compat_server.on_postgres(), reason="the PostgreSQL pass sets UHRWERK_COMPAT_DATABASE_URL (./scripts/test)"
)

PG_THROWAWAY = REPO_ROOT / "scripts" / "pg-throwaway"


def psql(url: str, sql: str) -> str:
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-Atc", sql], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def with_database(url: str, name: str, user: str | None = None, password: str | None = None) -> str:
    """`url` for another database, and optionally another role."""
    base = url.split("?", 1)[0].rsplit("/", 1)[0]
    scheme, rest = base.split("://", 1)
    hostport = rest.split("@", 1)[1]
    who = user or rest.split("@", 1)[0].split(":", 1)[0]
    if password is not None:
        who += f":{password}"
    return f"{scheme}://{who}@{hostport}/{name}"


def uhrwerk(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    binary = uhrwerk_binary()
    assert binary is not None and binary.exists(), "uhrwerk binary not built"
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def start_dev(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return uhrwerk(
        "server", "start-dev", "--headless", "--port", str(free_port()), "--metrics-port", "0",
        "--database-url", url, "--log-level", "warn", *extra,
    )  # fmt: skip


def error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed start writes: `error: ...`."""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def test_bad_database_configurations_give_one_clear_line_each() -> None:
    admin = compat_server.POSTGRES_URL
    suffix = uuid.uuid4().hex[:8]
    # A role with a password, and one without rights on a database it may connect to.
    psql(admin, f"CREATE ROLE uw_pw_{suffix} LOGIN PASSWORD 'right-secret'")
    psql(admin, f"CREATE ROLE uw_none_{suffix} LOGIN PASSWORD 'none-secret'")
    psql(admin, f"CREATE DATABASE uw_locked_{suffix}")

    line = error_line(start_dev("mysql://app@localhost/db"))
    assert "must start with postgres://" in line, line

    line = error_line(start_dev("postgres://app:port-secret@127.0.0.1:notaport/db"))
    assert "not valid" in line and "port-secret" not in line, line

    missing = with_database(admin, f"uw_missing_{suffix}")
    line = error_line(start_dev(missing))
    assert f'database "uw_missing_{suffix}" does not exist' in line, line

    refused = "postgres://app:refused-secret@127.0.0.1:1/db?connect_timeout=3"
    line = error_line(start_dev(refused))
    assert "postgres://app@127.0.0.1:1/db" in line and "refused-secret" not in line, line
    assert "connect" in line.lower(), line

    wrong = with_database(admin, "uhrwerk", f"uw_pw_{suffix}", "wrong-secret")
    line = error_line(start_dev(wrong))
    assert "password authentication failed" in line and "wrong-secret" not in line, line

    no_rights = with_database(admin, f"uw_locked_{suffix}", f"uw_none_{suffix}", "none-secret")
    line = error_line(start_dev(no_rights))
    assert "permission denied" in line and "none-secret" not in line, line

    line = error_line(uhrwerk("server", "start", "--headless", "--port", str(free_port())))
    assert "--database-url" in line and "--db-filename" in line, line


def test_db_status_and_migrate(tmp_path: Path) -> None:
    admin = compat_server.POSTGRES_URL
    name = f"uw_migrate_{uuid.uuid4().hex[:8]}"
    psql(admin, f"CREATE DATABASE {name}")
    url = with_database(admin, name)
    before = uhrwerk("db", "status", "--database-url", url)
    assert before.returncode == 3, before
    assert "schema version 0" in before.stdout and "uhrwerk db migrate" in before.stdout, before.stdout
    # A server told not to migrate refuses the database, pointing at `db migrate`.
    line = error_line(start_dev(url, "--skip-migrations"))
    assert "uhrwerk db migrate" in line, line
    migrated = uhrwerk("db", "migrate", "--database-url", url)
    assert migrated.returncode == 0 and "applied schema version(s) 1" in migrated.stdout, migrated
    after = uhrwerk("db", "status", "--database-url", url)
    assert after.returncode == 0 and "up to date" in after.stdout, after
    again = uhrwerk("db", "migrate", "--database-url", url)
    assert again.returncode == 0 and "nothing to apply" in again.stdout, again
    # The password comes from a file when the URL has none, and never shows.
    role = f"uw_file_{uuid.uuid4().hex[:8]}"
    psql(admin, f"CREATE ROLE {role} LOGIN PASSWORD 'file-secret'")
    psql(url, f"GRANT SELECT ON uhrwerk_schema TO {role}")
    (tmp_path / "pw").write_text("file-secret\n")
    status = uhrwerk(
        "db", "status", "--database-url", with_database(admin, name, role), "--database-password-file", str(tmp_path / "pw")
    )
    assert status.returncode == 0 and f"postgres://{role}@" in status.stdout, status
    assert "file-secret" not in status.stdout + status.stderr


def test_foreign_and_newer_databases_are_refused_untouched() -> None:
    """As a corrupt, foreign or newer SQLite file (test_disk.py): a database whose schema holds
    another application's tables, or a newer Uhrwerk's schema, is refused with one clear line
    and left as it was; Uhrwerk's tables are not added to another application's database."""
    admin = compat_server.POSTGRES_URL
    suffix = uuid.uuid4().hex[:8]
    tables = "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"

    foreign = f"uw_foreign_{suffix}"
    psql(admin, f"CREATE DATABASE {foreign}")
    foreign_url = with_database(admin, foreign)
    psql(foreign_url, "CREATE TABLE customers (id serial PRIMARY KEY, name text); INSERT INTO customers (name) VALUES ('Ada')")
    for attempt in (start_dev(foreign_url), uhrwerk("db", "migrate", "--database-url", foreign_url)):
        line = error_line(attempt)
        assert "another application" in line and "left unchanged" in line, line
    assert psql(foreign_url, tables).strip() == "customers"
    assert psql(foreign_url, "SELECT name FROM customers").strip() == "Ada"

    newer = f"uw_newer_{suffix}"
    psql(admin, f"CREATE DATABASE {newer}")
    newer_url = with_database(admin, newer)
    assert uhrwerk("db", "migrate", "--database-url", newer_url).returncode == 0
    psql(newer_url, "INSERT INTO uhrwerk_schema (version) VALUES (999)")
    before = psql(newer_url, tables), psql(newer_url, "SELECT version FROM uhrwerk_schema ORDER BY version")
    line = error_line(start_dev(newer_url))
    assert "newer than this binary" in line and "999" in line, line
    assert (psql(newer_url, tables), psql(newer_url, "SELECT version FROM uhrwerk_schema ORDER BY version")) == before


# --- a PostgreSQL outage under load -------------------------------------------------------------

RUNS: dict[str, int] = {}


@activity.defn(name="pg_double")
async def pg_double(n: int) -> int:
    key = activity.info().workflow_id
    RUNS[key] = RUNS.get(key, 0) + 1
    return n * 2


@workflow.defn(name="PgOutage", sandboxed=False)
class PgOutage:
    @workflow.run
    async def run(self, n: int) -> int:
        a = await workflow.execute_activity(pg_double, n, start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(0.2)
        return await workflow.execute_activity(pg_double, a, start_to_close_timeout=timedelta(seconds=30))


class OwnPostgres:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def run(self, command: str) -> str:
        out = subprocess.run([str(PG_THROWAWAY), command, str(self.dir)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


@pytest.fixture
def own_postgres():
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="uhrwerk-pg-test."))
    pg = OwnPostgres(directory)
    try:
        yield pg
    finally:
        subprocess.run([str(PG_THROWAWAY), "stop", str(directory)], capture_output=True, timeout=120)
        subprocess.run(["rm", "-rf", str(directory)])


async def test_a_postgres_restart_and_outage_under_load_lose_nothing(own_postgres, test_dir: Path) -> None:
    url = own_postgres.run("start")
    # The last --database-url wins: this server's database is on the PostgreSQL of its own.
    server = ServerProcess("uhrwerk", test_dir / "pg.db", test_dir / "pg.log", extra_args=("--database-url", url))
    server.start()
    client = await server.wait_ready()
    task_queue = f"pg-{uuid.uuid4()}"
    prefix = f"pg-outage-{uuid.uuid4().hex[:8]}"
    try:
        async with Worker(client, task_queue=task_queue, workflows=[PgOutage], activities=[pg_double]):
            # Starts keep coming while PostgreSQL restarts; the client retries what is refused.
            async def start(i: int):
                return await client.start_workflow(PgOutage.run, i, id=f"{prefix}-{i}", task_queue=task_queue)

            first = [await start(i) for i in range(15)]
            restart = asyncio.create_task(asyncio.to_thread(own_postgres.run, "restart"))
            more = await asyncio.gather(*(start(i) for i in range(15, 40)))
            await restart
            handles = first + list(more)
            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=120)
            assert results == [i * 4 for i in range(40)]

            # PostgreSQL down: a call fails with UNAVAILABLE (the SDKs retry that), the server stays up.
            await asyncio.to_thread(own_postgres.run, "stop")
            with pytest.raises(RPCError) as refused:
                await client.workflow_service.start_workflow_execution(
                    StartWorkflowExecutionRequest(
                        namespace="default",
                        workflow_id=f"{prefix}-refused",
                        workflow_type=WorkflowType(name="PgOutage"),
                        task_queue=TaskQueue(name=task_queue),
                        request_id=str(uuid.uuid4()),
                    ),
                    retry=False,
                    timeout=timedelta(seconds=30),
                )
            assert refused.value.status == RPCStatusCode.UNAVAILABLE, refused.value
            assert server.proc is not None and server.proc.poll() is None
            # Back up: Uhrwerk reconnects by itself; new work and old work both go on.
            await asyncio.to_thread(own_postgres.run, "start")
            late = await eventually(
                lambda: start(40), lambda h: h is not None, timeout=60, what="a start after PostgreSQL is back"
            )
            assert await asyncio.wait_for(late.result(), timeout=60) == 160
        # Every workflow ran each of its two activities exactly once.
        for i in range(41):
            assert RUNS.get(f"{prefix}-{i}") == 2, (i, RUNS.get(f"{prefix}-{i}"))
        assert f"{prefix}-refused" not in RUNS
    finally:
        server.terminate()
    assert server.panics() == []
