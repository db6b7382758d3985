"""Throughput and latency benchmark for any Temporal-compatible server.

Starts N one-activity workflows with bounded concurrency against --address,
served by one or more worker processes, and reports completed workflows per
second (wall time from the first start to the last result) and the
start-to-result latency percentiles. The same tool runs against Uhrwerk and
the Temporal dev server so that the numbers are comparable; see README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from typing import Any

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_workflows import BenchWorkflow, bench_activity  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default="127.0.0.1:7233", help="server HOST:PORT (default %(default)s)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--workflows", type=int, default=2000, help="workflows to run (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=100, help="workflows in flight at once (default %(default)s)")
    p.add_argument("--worker-processes", type=int, default=2, help="worker processes (default %(default)s)")
    p.add_argument("--task-queue", default=None, help="task queue (default: a fresh random one)")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="run workflows in the SDK sandbox (default: unsandboxed, so the worker costs less CPU)",
    )
    p.add_argument("--label", default=None, help="a name for this run in the report (e.g. uhrwerk)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    return p.parse_args(argv)


# --- worker processes ---------------------------------------------------------


def worker_process(address: str, namespace: str, task_queue: str, sandbox: bool, ready: Any, stop: Any) -> None:
    asyncio.run(_worker_main(address, namespace, task_queue, sandbox, ready, stop))


async def _worker_main(address: str, namespace: str, task_queue: str, sandbox: bool, ready: Any, stop: Any) -> None:
    client = await Client.connect(address, namespace=namespace)
    kwargs: dict[str, Any] = {}
    if not sandbox:
        kwargs["workflow_runner"] = UnsandboxedWorkflowRunner()
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[BenchWorkflow],
        activities=[bench_activity],
        max_concurrent_workflow_tasks=500,
        max_concurrent_activities=500,
        max_concurrent_workflow_task_polls=10,
        max_concurrent_activity_task_polls=10,
        max_cached_workflows=2000,
        **kwargs,
    )
    async with worker:
        ready.set()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait)


# --- driver ------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def drive(args: argparse.Namespace, task_queue: str) -> dict[str, Any]:
    client = await Client.connect(args.address, namespace=args.namespace)
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    sem = asyncio.Semaphore(args.concurrency)
    latencies: list[float] = []
    errors: list[str] = []

    async def one(i: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            try:
                result = await client.execute_workflow(BenchWorkflow.run, i, id=f"{prefix}-{i}", task_queue=task_queue)
                if result != i + 1:
                    raise AssertionError(f"workflow {i} returned {result!r}")
                latencies.append(time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(f"{i}: {type(e).__name__}: {e}")

    t_start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(args.workflows))), args.timeout)
    wall = time.perf_counter() - t_start
    latencies.sort()
    return {
        "label": args.label or args.address,
        "address": args.address,
        "server_version": info.server_version,
        "workflows": args.workflows,
        "completed": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:5],
        "concurrency": args.concurrency,
        "worker_processes": args.worker_processes,
        "sandbox": args.sandbox,
        "wall_seconds": round(wall, 3),
        "workflows_per_second": round(len(latencies) / wall, 2) if wall > 0 else 0.0,
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p95": round(percentile(latencies, 95) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "max": round(latencies[-1] * 1000, 1) if latencies else float("nan"),
        },
    }


def format_table(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    rows = [
        ("server", f"{r['label']} (version {r['server_version'] or '?'})"),
        ("workflows", f"{r['completed']}/{r['workflows']} completed, {r['errors']} errors"),
        ("concurrency", str(r["concurrency"])),
        ("worker processes", f"{r['worker_processes']} ({'sandboxed' if r['sandbox'] else 'unsandboxed'})"),
        ("wall time", f"{r['wall_seconds']:.2f} s"),
        ("throughput", f"{r['workflows_per_second']:.1f} workflows/s"),
        ("latency p50", f"{lat['p50']:.1f} ms"),
        ("latency p95", f"{lat['p95']:.1f} ms"),
        ("latency p99", f"{lat['p99']:.1f} ms"),
        ("latency max", f"{lat['max']:.1f} ms"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"error: {e}" for e in r["first_errors"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    task_queue = args.task_queue or f"bench-{uuid.uuid4()}"
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs = []
    readies = []
    for _ in range(args.worker_processes):
        ready = ctx.Event()
        p = ctx.Process(
            target=worker_process,
            args=(args.address, args.namespace, task_queue, args.sandbox, ready, stop),
            daemon=True,
        )
        p.start()
        procs.append(p)
        readies.append(ready)
    try:
        deadline = time.monotonic() + 60
        for p, ready in zip(procs, readies, strict=False):
            while not ready.wait(0.2):
                if not p.is_alive():
                    print(f"bench: worker process exited with {p.exitcode} before it was ready", file=sys.stderr)
                    return 2
                if time.monotonic() > deadline:
                    print("bench: worker processes not ready after 60 s", file=sys.stderr)
                    return 2
        print(
            f"bench: {args.workflows} workflows, concurrency {args.concurrency}, "
            f"{args.worker_processes} worker processes, task queue {task_queue}",
            file=sys.stderr,
        )
        report = asyncio.run(drive(args, task_queue))
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
