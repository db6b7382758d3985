"""Measures, on a running 3-node cluster, the extra latency of a forwarded call and the time
until a killed node's workflows are served again (bench/cluster.sh runs it).

Arguments: "FRONTEND FRONTEND FRONTEND" "METRICS METRICS METRICS" PID-OF-NODE-0 SHARDS.
"""

import asyncio
import os
import signal
import statistics
import sys
import time
import urllib.request
import uuid

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client

FORWARDED = 'uhrwerk_cluster_forwarded_calls_total{method="DescribeWorkflowExecution"}'


def metric(endpoint, name):
    text = urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=2).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def describe(client, workflow_id):
    req = DescribeWorkflowExecutionRequest(namespace="default", execution=WorkflowExecution(workflow_id=workflow_id))
    await client.workflow_service.describe_workflow_execution(req)


async def main():
    frontends, metrics = sys.argv[1].split(), sys.argv[2].split()
    node0_pid, shards = int(sys.argv[3]), int(sys.argv[4])
    clients = [await Client.connect(f) for f in frontends]
    ids = [f"probe-{uuid.uuid4().hex[:8]}-{i}" for i in range(60)]
    for wid in ids:
        await clients[0].start_workflow("Probe", id=wid, task_queue="probe-nobody-polls")
    # Which node serves each workflow: the one whose call was not forwarded.
    owner = {}
    for wid in ids:
        for i, client in enumerate(clients):
            before = metric(metrics[i], FORWARDED)
            await describe(client, wid)
            if metric(metrics[i], FORWARDED) == before:
                owner[wid] = i
    local, forwarded = [], []
    for _ in range(5):
        for wid in ids:
            home = owner[wid]
            for i, client in enumerate(clients):
                t0 = time.perf_counter()
                await describe(client, wid)
                (local if i == home else forwarded).append((time.perf_counter() - t0) * 1000)

    def q(xs, p):
        return statistics.quantiles(xs, n=100)[p - 1]

    print("| DescribeWorkflowExecution through | calls | p50 | p99 |")
    print("| --- | --- | --- | --- |")
    print(f"| the node that serves the workflow | {len(local)} | {q(local, 50):.2f} ms | {q(local, 99):.2f} ms |")
    print(f"| another node (forwarded) | {len(forwarded)} | {q(forwarded, 50):.2f} ms | {q(forwarded, 99):.2f} ms |")
    print()
    print(f"Extra latency of a forwarded call, p50: {q(forwarded, 50) - q(local, 50):.2f} ms.")
    print()
    # Takeover: kill -9 node 0; time until the others hold every shard, and until a workflow
    # node 0 served answers again through node 1.
    victim = next(wid for wid, home in owner.items() if home == 0)
    os.kill(node0_pid, signal.SIGKILL)
    t0 = time.monotonic()
    served_again = None
    while time.monotonic() - t0 < 120:
        try:
            await describe(clients[1], victim)
            served_again = served_again or time.monotonic() - t0
        except Exception:  # noqa: BLE001 - UNAVAILABLE while the shard moves
            pass
        try:
            held = sum(metric(m, "uhrwerk_cluster_shards_owned") for m in metrics[1:])
        except OSError:
            held = 0
        if held == shards and served_again is not None:
            break
        await asyncio.sleep(0.05)
    all_held = time.monotonic() - t0
    print(f"After `kill -9` of one node (lease 2s): its workflow answered again through another node after "
          f"{served_again:.2f} s; the two others held all {shards} shards after {all_held:.2f} s.")


asyncio.run(main())
