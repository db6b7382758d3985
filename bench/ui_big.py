"""Big data in the web UI: how a run with many events and a list with many runs open, in the
server (time until the page's HTML arrives) and in a headless Chromium (time until the page has
loaded, and how many DOM elements it holds).

Two measurements, each against a server it starts itself on free ports:

  big-run   a run grown to --events events (batches of --batch concurrent activities, then open,
            waiting): its page, a history page further on, the timeline, the download.
  list      an existing database (--db-filename, e.g. one left by
            `uhrwerk-bench --workload open-timers --workflows 1000000 --keep-data`): the
            workflow list, a status filter, a query, the next page.

Run with the compat suite's venv (it has the SDK and Playwright):
  tests/compat/.venv/bin/python bench/ui_big.py big-run --events 50000
  tests/compat/.venv/bin/python bench/ui_big.py list --db-filename /path/to/uhrwerk.db
Progress goes to stderr, the report (markdown, or JSON with --json) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@activity.defn(name="ui_big_step")
async def ui_big_step(n: int) -> int:
    return n


@workflow.defn(name="UiBigHistory", sandboxed=False)
class UiBigHistory:
    @workflow.run
    async def run(self, events: int, batch: int) -> None:
        n = 0
        while workflow.info().get_current_history_length() < events:
            await asyncio.gather(
                *(
                    workflow.execute_activity(ui_big_step, n + i, start_to_close_timeout=timedelta(seconds=30))
                    for i in range(batch)
                )
            )
            n += batch
        await workflow.wait_condition(lambda: False)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: Path, db: Path, logs: Path, extra: list[str]) -> None:
        self.port, self.ui_port = free_port(), free_port()
        self.log = open(logs / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(binary), "server", "start-dev", "--db-filename", str(db), "--port", str(self.port),
             "--ui-port", str(self.ui_port), "--log-format", "json", *extra],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.ui = f"http://127.0.0.1:{self.ui_port}"

    def wait_ui(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.ui + "/namespaces", timeout=5):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the UI did not answer within 120 s")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def fetch(url: str) -> tuple[float, int, str]:
    """Seconds until the whole response arrived, its size and its text."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as resp:
        body = resp.read()
    return time.perf_counter() - t0, len(body), body.decode(errors="replace")


def timed(url: str, repeat: int) -> dict:
    times, size, body = [], 0, ""
    for _ in range(repeat):
        t, size, body = fetch(url)
        times.append(t)
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000, "bytes": size, "body": body}


async def in_browser(urls: dict[str, str]) -> dict[str, dict]:
    from playwright.async_api import async_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        log("no chromium on PATH: browser timings left out")
        return {}
    out = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1300, "height": 900})
        for name, url in urls.items():
            t0 = time.perf_counter()
            await page.goto(url, wait_until="load", timeout=300_000)
            loaded = time.perf_counter() - t0
            # One frame after load: the page is laid out and painted.
            await page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            painted = time.perf_counter() - t0
            nodes = await page.evaluate("() => document.getElementsByTagName('*').length")
            out[name] = {"load_ms": loaded * 1000, "painted_ms": painted * 1000, "dom_elements": nodes}
        await browser.close()
    return out


async def big_run(args: argparse.Namespace, work: Path) -> dict:
    extra = ["--dynamic-config-value", f"limit.historyCount.error={args.events * 4}",
             "--dynamic-config-value", f"limit.historyCount.warn={args.events * 2}"]  # fmt: skip
    server = Server(args.uhrwerk_bin, work / "big.db", work, extra)
    try:
        server.wait_ui()
        client = await Client.connect(f"127.0.0.1:{server.port}")
        t0 = time.perf_counter()
        async with Worker(
            client, task_queue="ui-big", workflows=[UiBigHistory], activities=[ui_big_step],
            max_concurrent_activities=args.batch,
        ):  # fmt: skip
            handle = await client.start_workflow(UiBigHistory.run, args=[args.events, args.batch], id="ui-big", task_queue="ui-big")
            last = 0
            while True:
                length = (await handle.describe()).raw_description.workflow_execution_info.history_length
                if length >= args.events:
                    break
                if length - last >= args.events // 10:
                    log(f"  {length:,} events")
                    last = length
                await asyncio.sleep(1)
        log(f"run grown to {length:,} events in {time.perf_counter() - t0:.1f} s")
        base = f"{server.ui}/namespaces/default/workflows/ui-big/{handle.result_run_id}"
        first = timed(base, args.repeat)
        # A page further on: follow the "next" link of the first page.
        nxt = re.search(r'href="([^"]*\?next=[^"]+)"', first["body"])
        later_url = server.ui + nxt.group(1).replace("&amp;", "&") if nxt else base
        server_side = {
            "run page (first 200 events, timeline, growth)": first,
            "next history page": timed(later_url, args.repeat),
            "history download (JSON)": timed(base + "/history.json", 1),
        }
        browser = await in_browser({"run page": base, "next history page": later_url})
        await handle.terminate("measured")
        return {"events": length, "server": server_side, "browser": browser}
    finally:
        server.stop()


async def big_list(args: argparse.Namespace, work: Path) -> dict:
    server = Server(args.uhrwerk_bin, Path(args.db_filename), work, [])
    try:
        t0 = time.perf_counter()
        server.wait_ui()
        log(f"server up on the database in {time.perf_counter() - t0:.1f} s")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.ui_port}/namespaces", timeout=30):
            pass
        base = f"{server.ui}/namespaces/default/workflows"
        first = timed(base, args.repeat)
        nxt = re.search(r'href="([^"]*next=[0-9a-f]+[^"]*)"', first["body"])
        counts = re.findall(r'>(\w+) \((\d+)\)</a>', first["body"])
        urls = {
            "list, first page": base,
            "list, status Running": base + "?status=Running",
            "list, a query (ExecutionStatus = 'Failed')": base + "?query=" + urllib.parse.quote("ExecutionStatus = 'Failed'"),
            "list, a query matching nothing": base + "?query=" + urllib.parse.quote("WorkflowId = 'nobody'"),
        }
        if nxt:
            urls["list, next page"] = server.ui + nxt.group(1).replace("&amp;", "&")
        server_side = {name: timed(url, args.repeat) for name, url in urls.items()}
        browser = await in_browser(urls)
        return {"counts": counts, "server": server_side, "browser": browser}
    finally:
        server.stop()


def report(result: dict) -> str:
    lines = []
    if "events" in result:
        lines.append(f"Run with {result['events']:,} events.\n")
    if result.get("counts"):
        lines.append("Counts on the list page: " + ", ".join(f"{k} {int(v):,}" for k, v in result["counts"]) + ".\n")
    lines.append("| page | server: HTML complete, median (max) | HTML size | browser: loaded / painted | DOM elements |")
    lines.append("| --- | --- | --- | --- | --- |")
    for name, s in result["server"].items():
        b = next((v for k, v in result["browser"].items() if name.startswith(k) or k.startswith(name)), None)
        shown = f"{b['load_ms']:,.0f} / {b['painted_ms']:,.0f} ms" if b else "-"
        elements = f"{b['dom_elements']:,}" if b else "-"
        lines.append(
            f"| {name} | {s['median_ms']:,.1f} ms ({s['max_ms']:,.1f}) | {s['bytes'] / 1024:,.0f} KiB | {shown} | {elements} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["big-run", "list"])
    parser.add_argument("--uhrwerk-bin", type=Path, default=ROOT / "target/release/uhrwerk")
    parser.add_argument("--events", type=int, default=50_000, help="events in the big run (default 50,000)")
    parser.add_argument("--batch", type=int, default=100, help="concurrent activities per batch (default 100)")
    parser.add_argument("--db-filename", help="for list: the database to open (it is not changed by reads)")
    parser.add_argument("--repeat", type=int, default=5, help="server-side requests per page (default 5)")
    parser.add_argument("--json", action="store_true", help="JSON report on stdout")
    args = parser.parse_args()
    if args.what == "list" and not args.db_filename:
        parser.error("list needs --db-filename")
    with tempfile.TemporaryDirectory(prefix="uhrwerk-ui-big-") as tmp:
        result = asyncio.run(big_run(args, Path(tmp)) if args.what == "big-run" else big_list(args, Path(tmp)))
    for s in result["server"].values():
        s.pop("body")
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
