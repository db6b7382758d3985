"""Time skipping: `WorkflowEnvironment.start_time_skipping(test_server_existing_path=...)` with
`uhrwerk-test-server`, and with --reference-server the Java test server (`temporal-test-server`
from the venv) under the same expectations.

The SDK launches `<exe> <port>`, time skipping starts locked, and the SDK unlocks it while it
waits for a workflow's result (and in `env.sleep()`): then workflow time jumps to the next timer
or timeout whenever no workflow task or activity is outstanding.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import compat_time as ct
from compat_server import REPO_ROOT

DAY = 86_400


def uhrwerk_test_server() -> Path:
    env = os.environ.get("UHRWERK_TEST_SERVER_BIN")
    if env:
        return Path(env)
    uhrwerk = os.environ.get("UHRWERK_BIN")
    if uhrwerk:
        return Path(uhrwerk).with_name("uhrwerk-test-server")
    return REPO_ROOT / "target" / "debug" / "uhrwerk-test-server"


@pytest.fixture
async def env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    if request.config.getoption("--server"):
        pytest.skip("launches its own test server; not with --server")
    if request.config.getoption("--reference-server"):
        path = Path(sys.executable).parent / "temporal-test-server"
    else:
        path = uhrwerk_test_server()
    if not path.exists():
        pytest.fail(f"test server binary not found at {path}", pytrace=False)
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(path))
    try:
        yield environment
    finally:
        await environment.shutdown()


def worker(env: WorkflowEnvironment, task_queue: str) -> Worker:
    return Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ct.LongSleepWorkflow, ct.NowOnSignalWorkflow, ct.HeartbeatTimeoutWorkflow],
        activities=[ct.sleep_without_heartbeat],
    )


async def test_thirty_day_sleep_skips_ahead(env: WorkflowEnvironment) -> None:
    start = await env.get_current_time()
    assert abs((start - datetime.now(timezone.utc)).total_seconds()) < 30, "starts at the wall clock's time"
    task_queue = f"tq-{uuid.uuid4()}"
    wall = time.monotonic()
    async with worker(env, task_queue):
        before, after = await env.client.execute_workflow(
            ct.LongSleepWorkflow.run, 30.0 * DAY, id=f"sleep-{uuid.uuid4()}", task_queue=task_queue
        )
    wall = time.monotonic() - wall
    slept = ct.parse(after) - ct.parse(before)
    assert slept >= timedelta(days=30), slept
    assert slept < timedelta(days=30, minutes=1), f"skipped past the timer: {slept}"
    assert await env.get_current_time() >= start + timedelta(days=30)
    # Without skipping this would take a month; it must not take even a minute.
    assert wall < 60, wall


async def test_manual_sleep_moves_workflow_now(env: WorkflowEnvironment) -> None:
    task_queue = f"tq-{uuid.uuid4()}"
    async with worker(env, task_queue):
        handle = await env.client.start_workflow(
            ct.NowOnSignalWorkflow.run, id=f"now-{uuid.uuid4()}", task_queue=task_queue
        )
        before = await env.get_current_time()
        await env.sleep(timedelta(seconds=1000))
        after_sleep = await env.get_current_time()
        assert after_sleep - before >= timedelta(seconds=1000)
        await handle.signal(ct.NowOnSignalWorkflow.go)
        now = ct.parse(await handle.result())
    assert now >= before + timedelta(seconds=1000)


async def test_heartbeat_timeout_fires_in_skipped_time(env: WorkflowEnvironment) -> None:
    ct.SLEEP_IN_ACTIVITY[:] = [env.sleep]
    task_queue = f"tq-{uuid.uuid4()}"
    async with worker(env, task_queue):
        with pytest.raises(WorkflowFailureError) as failure:
            await env.client.execute_workflow(
                ct.HeartbeatTimeoutWorkflow.run, id=f"hb-{uuid.uuid4()}", task_queue=task_queue
            )
    cause = failure.value.cause
    assert isinstance(cause, ActivityError), cause
    assert isinstance(cause.cause, TimeoutError), cause.cause
    assert cause.cause.type == TimeoutType.HEARTBEAT


async def test_auto_time_skipping_disabled_follows_the_wall_clock(env: WorkflowEnvironment) -> None:
    task_queue = f"tq-{uuid.uuid4()}"
    async with worker(env, task_queue):
        with env.auto_time_skipping_disabled():
            wall = time.monotonic()
            before, after = await env.client.execute_workflow(
                ct.LongSleepWorkflow.run, 2.0, id=f"wall-{uuid.uuid4()}", task_queue=task_queue
            )
            wall = time.monotonic() - wall
    slept = (ct.parse(after) - ct.parse(before)).total_seconds()
    # Workflow time went at the wall clock's pace: the 2 s timer took 2 s of real time.
    assert slept >= 2.0
    assert wall >= slept - 0.5, (wall, slept)


async def test_unbalanced_unlock_is_refused(env: WorkflowEnvironment) -> None:
    """As in the Java test server the lock is one counter, and with nothing scheduled it holds
    two: the start's lock and the one of the empty timer queue. Only an unlock below zero fails."""
    from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
    from temporalio.service import RPCError

    test_service = env.client.service_client.test_service
    await test_service.unlock_time_skipping(UnlockTimeSkippingRequest())  # the start's lock
    await test_service.unlock_time_skipping(UnlockTimeSkippingRequest())  # the empty queue's
    with pytest.raises(RPCError):
        await test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
    await test_service.lock_time_skipping(LockTimeSkippingRequest())
    await test_service.lock_time_skipping(LockTimeSkippingRequest())
