"""The SDK's own test environment launching the server: `WorkflowEnvironment.start_local(
dev_server_existing_path=...)`, as a user's test suite does.

The SDK runs `<exe> server start-dev --port P --namespace default --ip 127.0.0.1 --log-format
pretty --log-level warn --dynamic-config-value ... --headless [--search-attribute K=T ...]
[extra args]`, waits until GetSystemInfo answers (5 s at most) and stops the server with SIGKILL.
A server launched that way is a throwaway: it must not write into the user's persistent default
database, several must run side by side (pytest-xdist), and nothing of one is seen by another.
With --reference-server the same tests launch the `temporal` CLI, so every expectation about the
SDK's side is also checked against the real dev server; the checks on Uhrwerk's own files only
run against Uhrwerk.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from compat_server import temporal_cli, uhrwerk_binary
from compat_util import eventually
from compat_workflows import HelloWorkflow, say_hello

CUSTOMER = SearchAttributeKey.for_keyword("CustomerKw")


@pytest.fixture
def executable(request: pytest.FixtureRequest) -> Path:
    if request.config.getoption("--server"):
        pytest.skip("launches its own servers through the SDK; not with --server")
    if request.config.getoption("--reference-server"):
        return temporal_cli()
    binary = uhrwerk_binary()
    if binary is None or not binary.exists():
        pytest.fail("uhrwerk binary not found: set UHRWERK_BIN or build target/debug/uhrwerk", pytrace=False)
    return binary


@pytest.fixture
def reference(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--reference-server"))


@pytest.fixture
def isolated_home(test_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Where a server launched now would put its persistent default database (XDG_DATA_HOME)
    and its temporary files (TMPDIR): both inherited by the child the SDK starts."""
    data, tmp = test_dir / "xdg-data", test_dir / "tmp"
    data.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setenv("HOME", str(test_dir / "home"))
    monkeypatch.setenv("TMPDIR", str(tmp))
    return data, tmp


async def run_hello(client: Client, name: str) -> str:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[HelloWorkflow], activities=[say_hello]):
        return await client.execute_workflow(HelloWorkflow.run, name, id=f"hello-{name}", task_queue=task_queue)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


async def test_two_environments_side_by_side_are_throwaway(
    executable: Path, reference: bool, isolated_home: tuple[Path, Path]
) -> None:
    data, tmp = isolated_home
    first, second = await asyncio.gather(
        WorkflowEnvironment.start_local(dev_server_existing_path=str(executable)),
        WorkflowEnvironment.start_local(dev_server_existing_path=str(executable)),
    )
    try:
        results = await asyncio.gather(run_hello(first.client, "first"), run_hello(second.client, "second"))
        assert results == ["Hello, first!", "Hello, second!"]
        # Separate stores: neither sees the other's workflow.
        with pytest.raises(RPCError, match="not found"):
            await first.client.get_workflow_handle("hello-second").describe()
        assert (await second.client.get_workflow_handle("hello-second").describe()).id == "hello-second"
    finally:
        await first.shutdown()
        await second.shutdown()
    assert files_under(data) == [], "a throwaway server wrote into the persistent default location"
    if reference:
        return
    # The SDK stops its server with SIGKILL, so the two servers' throwaway files are still there;
    # the next start removes those of servers that are gone.
    left = files_under(tmp)
    assert left and all(name.startswith("uhrwerk-ephemeral-") for name in left), left
    third = await WorkflowEnvironment.start_local(dev_server_existing_path=str(executable))
    try:
        assert await run_hello(third.client, "third") == "Hello, third!"
        remaining = files_under(tmp)
        assert not set(left) & set(remaining), f"files of killed servers remain: {remaining}"
        assert remaining, "the running server's own database is missing"
    finally:
        await third.shutdown()


async def test_environment_beside_a_persistent_server(executable: Path, client: Client) -> None:
    """A test environment next to the suite's own server (started by hand on a database file):
    each keeps its own workflows."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=str(executable))
    try:
        assert await run_hello(env.client, "beside") == "Hello, beside!"
        assert await run_hello(client, "persistent") == "Hello, persistent!"
        with pytest.raises(RPCError, match="not found"):
            await client.get_workflow_handle("hello-beside").describe()
        with pytest.raises(RPCError, match="not found"):
            await env.client.get_workflow_handle("hello-persistent").describe()
    finally:
        await env.shutdown()


async def test_search_attributes_and_overridden_flags(executable: Path, isolated_home: tuple[Path, Path]) -> None:
    """Search attributes registered through `search_attributes=`, and extra arguments that repeat
    a flag the SDK already passes (the last one wins, as in the `temporal` CLI)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(executable),
        search_attributes=[CUSTOMER],
        dev_server_extra_args=["--log-level", "error", "--sqlite-pragma", "journal_mode=wal"],
    )
    try:
        task_queue = f"tq-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=task_queue, workflows=[HelloWorkflow], activities=[say_hello]):
            result = await env.client.execute_workflow(
                HelloWorkflow.run,
                "attrs",
                id="hello-attrs",
                task_queue=task_queue,
                search_attributes=TypedSearchAttributes([SearchAttributePair(CUSTOMER, "customer-7")]),
            )
        assert result == "Hello, attrs!"

        async def listed() -> list[str]:
            return [wf.id async for wf in env.client.list_workflows("CustomerKw = 'customer-7'")]

        ids = await eventually(listed, bool, what="the workflow listed by its search attribute")
        assert ids == ["hello-attrs"]
    finally:
        await env.shutdown()
