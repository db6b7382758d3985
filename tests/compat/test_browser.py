"""The web UI in a real headless Chromium (Debian's `chromium`, driven by Playwright): the list
finds the run and filters by query, a run's page draws a bar per activity and terminates the run
from its form, and a hostile workflow id stays text (no script runs). Screenshots of each page go
to the test's output directory. Uhrwerk only; skipped when no Chromium is installed (./scripts/test
installs it)."""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker

from compat_server import free_port
from compat_util import eventually

playwright_api = pytest.importorskip("playwright.async_api")

# The flags this machine's Chromium needs headless without a network (see the tool notes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@activity.defn(name="browser_step")
async def browser_step(n: int) -> int:
    return n


@workflow.defn(name="BrowserSteps", sandboxed=False)
class BrowserSteps:
    @workflow.run
    async def run(self, steps: int) -> None:
        for i in range(steps):
            await workflow.execute_activity(browser_step, i, start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: False)


HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>&amp;"


@activity.defn(name="browser_fail")
async def browser_fail(message: str) -> None:
    raise RuntimeError(message)


@workflow.defn(name="BrowserHostile", sandboxed=False)
class BrowserHostile:
    """Grows its history with signals; its pending activity keeps failing with a hostile message."""

    def __init__(self) -> None:
        self.bumps = 0

    @workflow.run
    async def run(self, value: dict) -> None:
        workflow.start_activity(browser_fail, value["text"], start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def bump(self) -> None:
        self.bumps += 1


@pytest.fixture
def uhrwerk_only(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--reference-server"):
        pytest.skip("the dev server's web UI is Temporal's own program")


@pytest.fixture
async def page(test_dir: Path) -> AsyncIterator:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on PATH (./scripts/test installs Debian's chromium package)")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1300, "height": 900})
        page = await context.new_page()
        page.dialogs = []  # type: ignore[attr-defined]
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
        yield page
        await browser.close()


async def start(server_factory, *extra: str):
    port = free_port()
    srv = server_factory("browser", extra_args=("--ui-port", str(port), *extra))
    srv.start()
    client = await srv.wait_ready()
    return client, f"http://127.0.0.1:{port}"


async def test_find_a_run_read_its_timeline_and_terminate_it(
    server_factory, uhrwerk_only, page, test_dir: Path, task_queue: str, new_id
) -> None:
    client, base = await start(server_factory)
    wid = new_id("browser") + "<img src=x onerror=alert(1)>"
    async with Worker(client, task_queue=task_queue, workflows=[BrowserSteps], activities=[browser_step]):
        handle = await client.start_workflow(BrowserSteps.run, 4, id=wid, task_queue=task_queue)
        await eventually(
            handle.fetch_history,
            lambda h: sum(1 for e in h.events if e.HasField("activity_task_completed_event_attributes")) == 4,
            what="four activities done",
        )
        other = await client.start_workflow(BrowserSteps.run, 0, id=new_id("other"), task_queue=task_queue)

        await page.goto(base + "/")
        await page.screenshot(path=str(test_dir / "workflows.png"), full_page=True)
        rows = page.locator("table#workflows tbody tr")
        assert await rows.count() == 2
        # The hostile id is text in the page, and no script ran.
        assert await page.get_by_role("link", name=wid).count() == 1
        # A query typed into the search box filters the list.
        await page.fill("input[name=query]", f"WorkflowId = '{other.id}'")
        await page.click("form.search button[type=submit]")
        await page.wait_for_load_state()
        assert await rows.count() == 1
        assert await rows.first.locator("td").nth(1).inner_text() == other.id
        # A bad query shows the server's error in place.
        await page.fill("input[name=query]", "WorkflowId =")
        await page.click("form.search button[type=submit]")
        assert "invalid query" in await page.locator("#query-error").inner_text()

        run_url = f"{base}/namespaces/{client.namespace}/workflows/{urllib.parse.quote(wid)}/{handle.result_run_id}"
        await page.goto(run_url)
        assert await page.locator("h1").inner_text() == wid
        assert await page.locator("svg#timeline rect.bar.activity").count() == 4
        assert await page.locator("table#history tbody tr").count() == len((await handle.fetch_history()).events)
        await page.screenshot(path=str(test_dir / "run.png"), full_page=True)

        await page.fill("#terminate-form input[name=reason]", "from the browser")
        await page.check("#terminate-form input[name=confirm]")
        await page.click("#terminate-form button[type=submit]")
        await page.wait_for_load_state()
        assert await page.locator("#summary .status").inner_text() == "Terminated"
        await page.screenshot(path=str(test_dir / "terminated.png"), full_page=True)
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert page.dialogs == []  # type: ignore[attr-defined]


async def test_every_page_keeps_hostile_values_as_text_and_health_shows_the_limits(
    server_factory, uhrwerk_only, page, test_dir: Path, task_queue: str, new_id
) -> None:
    from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleIntervalSpec, ScheduleSpec

    client, base = await start(
        server_factory,
        "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=20",
        "--dynamic-config-value", "limit.historyCount.warn=40",
        "--dynamic-config-value", "limit.historyCount.error=400",
    )  # fmt: skip
    wid = new_id("hostile") + HOSTILE
    value = {"text": HOSTILE}
    async with Worker(client, task_queue=task_queue, workflows=[BrowserHostile], activities=[browser_fail]):
        handle = await client.start_workflow(
            BrowserHostile.run, value, id=wid, task_queue=task_queue, memo={"note": HOSTILE}
        )
        for _ in range(40):
            await handle.signal(BrowserHostile.bump)
        await eventually(
            handle.describe,
            lambda d: d.raw_description.workflow_execution_info.history_length >= 40
            and any(a.last_failure.message for a in d.raw_description.pending_activities),
            what="past the warn limit with a failed attempt",
        )
        schedule_id = new_id("sched") + HOSTILE
        await client.create_schedule(
            schedule_id,
            Schedule(
                action=ScheduleActionStartWorkflow("BrowserHostile", value, id=wid + "-s", task_queue=task_queue),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            ),
        )
        ns = f"{base}/namespaces/{client.namespace}"
        q = urllib.parse.quote
        pages = {
            "list": f"{ns}/workflows",
            "run": f"{ns}/workflows/{q(wid, safe='')}/{handle.result_run_id}",
            "health": f"{ns}/health",
            "task-queues": f"{ns}/task-queues",
            "task-queue": f"{ns}/task-queues/{q(task_queue)}",
            "schedules": f"{ns}/schedules",
            "schedule": f"{ns}/schedules/{q(schedule_id, safe='')}",
            "namespaces": f"{base}/namespaces",
        }
        for name, url in pages.items():
            response = await page.goto(url)
            assert response is not None and response.status == 200, (name, url)
            await page.screenshot(path=str(test_dir / f"{name}.png"), full_page=True)
            # Nothing from the workflow became markup: no image, only the UI's own script.
            assert await page.locator("main img").count() == 0, name
            assert await page.locator("script").count() == 1, name
            if name not in ("task-queues", "task-queue", "namespaces"):
                assert HOSTILE in await page.locator("main").inner_text(), name

        # The health page: the run's bar is past the warn limit, and the doctor names it.
        await page.goto(pages["health"])
        bar = page.locator("tr.limit-bar", has=page.get_by_role("link", name=wid)).first
        assert "over-warn" in (await bar.get_attribute("class") or "")
        width = await bar.locator(".fill").evaluate("e => e.getBoundingClientRect().width")
        track = await bar.locator(".track").evaluate("e => e.getBoundingClientRect().width")
        assert 0 < width < track
        assert await page.locator("table#findings tr", has=page.get_by_role("link", name=wid)).count() >= 1
        # The run page shows the decoded input and the activity's last failure as text.
        await page.goto(pages["run"])
        assert HOSTILE in await page.locator("#pending-activities").inner_text()
        await client.get_schedule_handle(schedule_id).delete()
        await handle.terminate("done")
    assert page.dialogs == []  # type: ignore[attr-defined]
