"""The built-in web UI (`--ui-port`), read over HTTP as a browser would get it: the workflow
list (query, errors in place, status filters and counts), a run's page (summary, input, history
paged), and every value from a workflow escaped. Uhrwerk only: the dev server's UI is another
program."""

from __future__ import annotations

import asyncio
import html
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from compat_server import free_port
from compat_util import eventually, result_of

HOSTILE = "<script>alert('x')</script>&\"quote\""


@workflow.defn(name="UiEcho", sandboxed=False)
class UiEcho:
    @workflow.run
    async def run(self, value: dict) -> dict:
        return value


@workflow.defn(name="UiSignals", sandboxed=False)
class UiSignals:
    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self, wanted: int) -> int:
        await workflow.wait_condition(lambda: self.count >= wanted)
        return self.count

    @workflow.signal
    def bump(self) -> None:
        self.count += 1


def text(value: str) -> str:
    """`value` as the pages write text: &, <, > and " escaped."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


async def fetch(url: str) -> tuple[int, str]:
    return await asyncio.to_thread(get, url)


@pytest.fixture
def uhrwerk_only(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--reference-server"):
        pytest.skip("the dev server's web UI is Temporal's own program")


async def start(server_factory) -> tuple[Client, str]:
    port = free_port()
    srv = server_factory("ui", extra_args=("--ui-port", str(port)))
    srv.start()
    client = await srv.wait_ready()
    base = f"http://127.0.0.1:{port}"
    await eventually(lambda: asyncio.to_thread(_up, base), bool, timeout=30, what="the UI answers")
    return client, base


def _up(base: str) -> bool:
    try:
        return get(base + "/")[0] == 200
    except OSError:
        return False


def rows(page: str, table_id: str) -> list[str]:
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert table, f"no table {table_id}"
    return re.findall(r"<tr>(.*?)</tr>", table.group(1).split("<tbody>", 1)[1], re.S)


async def test_list_and_run_pages_show_the_workflow_escaped(
    server_factory, uhrwerk_only, task_queue: str, new_id
) -> None:
    client, base = await start(server_factory)
    wid = new_id("ui") + HOSTILE
    async with Worker(client, task_queue=task_queue, workflows=[UiEcho]):
        handle = await client.start_workflow(UiEcho.run, {"html": HOSTILE}, id=wid, task_queue=task_queue)
        await result_of(handle.result())
    ns = f"{base}/namespaces/{client.namespace}/workflows"

    status, page = await fetch(ns)
    assert status == 200
    # Everything from the workflow is text: the id appears escaped, never as markup.
    assert text(wid) in page
    assert "<script>alert" not in page
    listed = rows(page, "workflows")
    assert any(text(wid) in r and "Completed" in r and "UiEcho" in r for r in listed), listed

    # The query language filters; the status filter and its count agree.
    status, page = await fetch(ns + "?" + urllib.parse.urlencode({"query": "WorkflowType = 'UiEcho'", "status": "Completed"}))
    assert status == 200
    assert len(rows(page, "workflows")) == 1
    assert re.search(r'class="on"[^>]*>Completed \(1\)', page), page
    status, page = await fetch(ns + "?" + urllib.parse.urlencode({"query": "WorkflowType = 'UiEcho'", "status": "Running"}))
    assert 'id="no-workflows"' in page
    # A bad query shows the server's error, with its position, in place of the list.
    status, page = await fetch(ns + "?" + urllib.parse.urlencode({"query": "WorkflowType ="}))
    error = re.search(r'<div class="error" id="query-error">(.*?)</div>', page, re.S)
    assert error and "invalid query" in error.group(1) and "position" in error.group(1), page

    # The run's page: summary, decoded input, the history with every event.
    link = re.search(r'<a href="(/namespaces/[^"]+)">' + re.escape(text(wid)), page_of_list := (await fetch(ns))[1])
    assert link, page_of_list
    status, page = await fetch(base + html.unescape(link.group(1)))
    assert status == 200
    assert f"<h1>{text(wid)}</h1>" in page
    assert "Completed" in re.search(r'<dl class="summary" id="summary">(.*?)</dl>', page, re.S).group(1)
    # The growth chart has a point per event.
    points = re.search(r'<polyline class="growth" fill="none" points="([^"]*)"', page).group(1).split()
    assert len(points) == len((await handle.fetch_history()).events)
    input_text = html.unescape(re.search(r'<pre id="input">(.*?)</pre>', page, re.S).group(1))
    assert '"html"' in input_text and HOSTILE.replace('"', '\\"') in input_text
    assert "<script>alert" not in page
    history = await handle.fetch_history()
    assert len(rows(page, "history")) == len(history.events)


async def test_a_long_history_opens_page_by_page(server_factory, uhrwerk_only, task_queue: str, new_id) -> None:
    client, base = await start(server_factory)
    wid = new_id("ui-long")
    async with Worker(client, task_queue=task_queue, workflows=[UiSignals]):
        handle = await client.start_workflow(UiSignals.run, 260, id=wid, task_queue=task_queue)
        for _ in range(260):
            await handle.signal(UiSignals.bump)
        assert await result_of(handle.result()) == 260
    total = len((await handle.fetch_history()).events)
    assert total > 260
    url = f"{base}/namespaces/{client.namespace}/workflows/{urllib.parse.quote(wid)}/{handle.result_run_id}"
    seen = 0
    pages = 0
    while url:
        status, page = await fetch(url)
        assert status == 200
        events = rows(page, "history")
        assert 0 < len(events) <= 200
        first_id = int(re.search(r'<td class="num">(\d+)</td>', events[0]).group(1))
        assert first_id == seen + 1
        seen += len(events)
        pages += 1
        nxt = re.search(r'<a class="button" href="([^"]+)">Next events</a>', page)
        url = base + html.unescape(nxt.group(1)) if nxt else ""
    assert (seen, pages) == (total, -(-total // 200))


@activity.defn(name="ui_step")
async def ui_step(n: int) -> int:
    return n


@workflow.defn(name="UiSteps", sandboxed=False)
class UiSteps:
    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self, steps: int) -> list[str]:
        for i in range(steps):
            await workflow.execute_activity(ui_step, i, start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: False)
        return self.notes

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.query
    def notes_so_far(self) -> list[str]:
        return self.notes


class Browserless:
    """A cookie-keeping client for the UI's forms."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(), _NoRedirect())

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        data = urllib.parse.urlencode(fields).encode()
        try:
            with self.opener.open(urllib.request.Request(self.base + path, data=data, method="POST"), timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        return None


async def test_timeline_and_actions_on_a_run(server_factory, uhrwerk_only, task_queue: str, new_id) -> None:
    client, base = await start(server_factory)
    wid = new_id("ui-act")
    run_path = ""
    async with Worker(client, task_queue=task_queue, workflows=[UiSteps], activities=[ui_step]):
        handle = await client.start_workflow(UiSteps.run, 3, id=wid, task_queue=task_queue)
        await eventually(
            lambda: handle.fetch_history(),
            lambda h: sum(1 for e in h.events if e.HasField("activity_task_completed_event_attributes")) == 3,
            what="three activities done",
        )
        run_path = f"/namespaces/{client.namespace}/workflows/{urllib.parse.quote(wid)}/{handle.result_run_id}"
        ui = Browserless(base)
        status, page = await asyncio.to_thread(ui.get, run_path)
        assert status == 200
        # One bar per activity, each completed.
        assert len(re.findall(r'<rect class="bar activity completed"', page)) == 3, page
        # The compact view: a row per activity with its outcome.
        compact = re.findall(r'<tr class="compact activity">(.*?)</tr>', page, re.S)
        assert len(compact) == 3 and all("ui_step" in r and "completed" in r for r in compact), compact
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)

        # A signal from the page reaches the workflow; a query from the page runs on the worker.
        status, page = await asyncio.to_thread(ui.post, run_path + "/signal", {"csrf": token, "name": "note", "input": '"from the UI"'})
        assert status == 303, page
        status, page = await asyncio.to_thread(ui.post, run_path + "/query", {"csrf": token, "name": "notes_so_far", "input": ""})
        assert status == 200, page
        assert json.loads(html.unescape(re.search(r'<pre id="query-result">(.*?)</pre>', page, re.S).group(1))) == ["from the UI"]

        # Terminate refuses a wrong token and a missing confirmation, then works.
        status, _ = await asyncio.to_thread(ui.post, run_path + "/terminate", {"csrf": "forged", "confirm": "yes"})
        assert status == 403
        other = Browserless(base)  # a browser without the cookie, replaying the token
        status, _ = await asyncio.to_thread(other.post, run_path + "/terminate", {"csrf": token, "confirm": "yes"})
        assert status == 403
        status, _ = await asyncio.to_thread(ui.post, run_path + "/terminate", {"csrf": token, "reason": "from the UI"})
        assert status == 400
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        status, _ = await asyncio.to_thread(ui.post, run_path + "/terminate", {"csrf": token, "confirm": "yes", "reason": "from the UI"})
        assert status == 303
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.TERMINATED
    history = await handle.fetch_history()
    assert history.events[-1].workflow_execution_terminated_event_attributes.reason == "from the UI"
    assert any(e.HasField("workflow_execution_signaled_event_attributes") for e in history.events)


async def test_health_shows_limits_bars_and_the_doctors_findings(
    server_factory, uhrwerk_only, task_queue: str, new_id
) -> None:
    port = free_port()
    srv = server_factory(
        "health",
        extra_args=(
            "--ui-port", str(port),
            "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=30",
            "--dynamic-config-value", "limit.historyCount.warn=50",
            "--dynamic-config-value", "limit.historyCount.error=400",
        ),
    )  # fmt: skip
    srv.start()
    client = await srv.wait_ready()
    base = f"http://127.0.0.1:{port}"
    big, small = new_id("ui-big"), new_id("ui-small")
    async with Worker(client, task_queue=task_queue, workflows=[UiSignals]):
        handle = await client.start_workflow(UiSignals.run, 1000, id=big, task_queue=task_queue)
        await client.start_workflow(UiSignals.run, 1000, id=small, task_queue=task_queue)
        for _ in range(60):
            await handle.signal(UiSignals.bump)
        await eventually(
            handle.describe, lambda d: d.raw_description.workflow_execution_info.history_length >= 60, what="60+ events"
        )
        # The run went on for workflow tasks after the suggestion: the doctor's DR103, marked on its bar.
        status, page = await eventually(
            lambda: fetch(f"{base}/namespaces/{client.namespace}/health"),
            lambda r: "can-ignored" in r[1],
            what="continue-as-new marked as ignored",
        )
    assert status == 200, page
    # The limits in force are the server's own.
    limits = dict(re.findall(r'<td class="mono">([^<]+)</td><td class="num">(-?\d+)</td>', page))
    assert limits["limit.historyCount.warn"] == "50" and limits["limit.historyCount.error"] == "400"
    # The big run is past the warn limit, the small one is fine.
    by_length = page.split("Largest open runs by history length", 1)[1].split("Largest open runs by history size", 1)[0]
    bar_rows = re.findall(r'<tr class="limit-bar [^"]+">.*?</tr>', by_length, re.S)
    rows_by_id = {text(wid): r for wid in (big, small) for r in bar_rows if text(wid) in r}
    assert 'class="limit-bar over-warn"' in rows_by_id[text(big)], rows_by_id
    assert 'class="limit-bar fine"' in rows_by_id[text(small)], rows_by_id
    assert re.search(r'class="can-ignored">suggested at event \d+, ignored for \d+', rows_by_id[text(big)]), rows_by_id
    assert "can-" not in rows_by_id[text(small)], rows_by_id
    # The big run's page draws its growth against the warn limit (50) it has crossed.
    run_link = re.search(r'<a href="([^"]+)">' + re.escape(text(big)), by_length).group(1)
    status, run_page = await fetch(base + html.unescape(run_link))
    growth = re.search(r'<svg id="growth".*?</svg>', run_page, re.S).group(0)
    assert "warn 50" in growth and "<polyline" in growth, growth
    # The doctor, run against this server, reports the big run, linking to it.
    findings = re.findall(r'<tr class="finding sev-(\w+)">(.*?)</tr>', page, re.S)
    history = [(sev, body) for sev, body in findings if "DR101" in body or "DR102" in body]
    section = page.split("Findings of uhrwerk doctor", 1)[1].split("Largest open runs", 1)[0]
    assert history and text(big) in history[0][1], section


def section(page: str, kind: str) -> str:
    return re.search(rf'<section id="queue-{kind}">(.*?)</section>', page, re.S).group(1)


def chart(queue_section: str, kind: str) -> list[str]:
    """The titles of the bars in one of a queue's last-hour charts."""
    figure = re.search(rf'<figure class="minute-chart {kind}">(.*?)</figure>', queue_section, re.S).group(1)
    return re.findall(r'<rect class="minute"[^>]*><title>([^<]*)</title>', figure)


async def test_task_queue_and_namespace_pages(server_factory, uhrwerk_only, task_queue: str, new_id) -> None:
    client, base = await start(server_factory)
    ns = f"{base}/namespaces/{client.namespace}"
    # A run nobody picks up: a backlog without pollers.
    idle_queue = task_queue + "-idle"
    await client.start_workflow(UiSignals.run, 1, id=new_id("ui-idle"), task_queue=idle_queue)
    # The task reaches its queue after the start is acknowledged (in a cluster, over the network
    # to the queue's node), as in Temporal: the page shows it soon, not necessarily at once.
    status, page = await eventually(
        lambda: fetch(f"{ns}/task-queues/{urllib.parse.quote(idle_queue)}"),
        lambda r: '<dd class="backlog">1 task' in r[1],
        what="the task in the backlog",
    )
    assert status == 200
    workflow_section = re.search(r'<section id="queue-workflow">(.*?)</section>', page, re.S).group(1)
    assert "warning-no-pollers" in workflow_section, workflow_section
    assert re.search(r'<dd class="backlog">1 task', workflow_section), workflow_section
    # The last hour: the backlog of one task this minute, and nothing dispatched yet.
    assert len(chart(workflow_section, "backlog")) == 1, workflow_section
    assert chart(workflow_section, "schedule-to-start") == [], workflow_section
    # A worker comes: the task it takes waited, which the schedule-to-start chart shows.
    async with Worker(client, task_queue=idle_queue, workflows=[UiSignals]):
        page = await eventually(
            lambda: fetch(f"{ns}/task-queues/{urllib.parse.quote(idle_queue)}"),
            lambda r: chart(section(r[1], "workflow"), "schedule-to-start"),
            what="the wait charted",
        )
    waits = chart(section(page[1], "workflow"), "schedule-to-start")
    assert len(waits) == 1 and "1 dispatched" in waits[0], waits

    async with Worker(client, task_queue=task_queue, workflows=[UiSignals], identity="only-worker@ui"):
        await client.start_workflow(UiSignals.run, 1, id=new_id("ui-busy"), task_queue=task_queue)
        page = await eventually(
            lambda: fetch(f"{ns}/task-queues/{urllib.parse.quote(task_queue)}"),
            lambda r: "only-worker@ui" in r[1],
            what="the worker listed as a poller",
        )
    workflow_section = re.search(r'<section id="queue-workflow">(.*?)</section>', page[1], re.S).group(1)
    assert "warning-single-worker" in workflow_section, workflow_section

    status, page = await fetch(f"{ns}/task-queues")
    assert status == 200
    listed = re.findall(r'<li><a href="[^"]+">([^<]+)</a></li>', page)
    assert {task_queue, idle_queue} <= set(listed), listed

    status, page = await fetch(f"{base}/namespaces")
    assert status == 200
    table = re.search(r'<table id="namespaces">(.*?)</table>', page, re.S).group(1)
    assert f">{client.namespace}</a>" in table and "REGISTERED" in table, table


async def test_schedule_pages_pause_unpause_and_trigger(server_factory, uhrwerk_only, task_queue: str, new_id) -> None:
    from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleIntervalSpec, ScheduleSpec

    client, base = await start(server_factory)
    sid = new_id("ui-sched")
    handle = await client.create_schedule(
        sid,
        Schedule(
            action=ScheduleActionStartWorkflow(UiSignals.run, 0, id=sid + "-wf", task_queue=task_queue),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        ),
    )
    ns = f"/namespaces/{client.namespace}"
    status, page = await fetch(f"{base}{ns}/schedules")
    assert status == 200
    row = next(r for r in rows(page, "schedules") if sid in r)
    assert "every 1.0 h" in row and "Active" in row, row

    ui = Browserless(base)
    path = f"{ns}/schedules/{urllib.parse.quote(sid)}"
    status, page = await asyncio.to_thread(ui.get, path)
    assert status == 200
    assert len(re.findall(r"<li>", re.search(r'<ul id="next-times">(.*?)</ul>', page, re.S).group(1))) >= 3
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert (await asyncio.to_thread(ui.post, path + "/pause", {"csrf": "forged"}))[0] == 403
    assert (await asyncio.to_thread(ui.post, path + "/pause", {"csrf": token}))[0] == 303
    assert (await handle.describe()).schedule.state.paused
    status, page = await asyncio.to_thread(ui.get, path)
    assert '<dd class="state">Paused</dd>' in page and 'id="unpause-form"' in page
    assert (await asyncio.to_thread(ui.post, path + "/unpause", {"csrf": token}))[0] == 303
    assert not (await handle.describe()).schedule.state.paused
    assert (await asyncio.to_thread(ui.post, path + "/trigger", {"csrf": token}))[0] == 303
    desc = await eventually(handle.describe, lambda d: d.info.num_actions == 1, what="the triggered action")
    status, page = await asyncio.to_thread(ui.get, path)
    started = desc.info.recent_actions[0].action.workflow_id
    assert text(started) in re.search(r'<table id="recent-actions">(.*?)</table>', page, re.S).group(1)
    await handle.delete()


async def test_history_download_is_the_clis_json(server_factory, uhrwerk_only, task_queue: str, new_id) -> None:
    from compat_server import temporal_cli

    port = free_port()
    srv = server_factory("download", extra_args=("--ui-port", str(port)))
    srv.start()
    client = await srv.wait_ready()
    base = f"http://127.0.0.1:{port}"
    wid = new_id("ui-download")
    async with Worker(client, task_queue=task_queue, workflows=[UiEcho]):
        handle = await client.start_workflow(UiEcho.run, {"n": 1, "s": "x"}, id=wid, task_queue=task_queue)
        await result_of(handle.result())
    run_path = f"/namespaces/{client.namespace}/workflows/{urllib.parse.quote(wid)}/{handle.result_run_id}"
    status, page = await fetch(base + run_path)
    link = re.search(r'<a id="download-history" href="([^"]+)"', page).group(1)
    status, downloaded = await fetch(base + html.unescape(link))
    assert status == 200
    proc = await asyncio.create_subprocess_exec(
        str(temporal_cli()), "workflow", "show", "-w", wid, "-r", handle.result_run_id or "",
        "--address", srv.address, "--namespace", client.namespace, "-o", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    # Byte for byte what the CLI writes, so replay tests can load either.
    assert downloaded.strip() == out.decode().strip()
