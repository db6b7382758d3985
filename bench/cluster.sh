#!/usr/bin/env bash
# A cluster of 1, 2 and 3 Uhrwerk nodes on one throwaway PostgreSQL, all on this machine:
# one-activity throughput and latency with the driver's connections spread over the nodes
# (uhrwerk-bench --address a,b,c), the time until a killed node's shards are served again, and
# the extra latency of a forwarded call (DescribeWorkflowExecution through the node that serves
# the workflow and through another). Markdown on stdout, progress on stderr.
#   bench/cluster.sh                        # 2,000 workflows at 100 in flight per size
#   bench/cluster.sh --workflows 5000       # more arguments go to uhrwerk-bench
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo build --release -p uhrwerk -p uhrwerk-bench >&2
work="$(mktemp -d /tmp/uhrwerk-cluster-bench.XXXXXX)"
pg_dir="$(mktemp -d /tmp/uhrwerk-pg.XXXXXX)"
pids=()
stop_nodes() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_nodes
    scripts/pg-throwaway stop "$pg_dir" >/dev/null 2>&1 || true
    rm -rf "$work" "$pg_dir"
}
trap cleanup EXIT
pg_url="$(scripts/pg-throwaway start "$pg_dir")"
python="$root/tests/compat/.venv/bin/python"
[[ -x "$python" ]] || python=python3
bench_args=("$@")
shards=64
lease=2s

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_cluster N DB: starts N nodes; sets frontends, metrics.
start_cluster() {
    local n="$1" db="$2"
    psql "$pg_url" -qc "CREATE DATABASE $db" >/dev/null
    frontends=()
    metrics=()
    for i in $(seq 0 $((n - 1))); do
        local port internal mport
        port="$(free_port)"
        internal="$(free_port)"
        mport="$(free_port)"
        target/release/uhrwerk server start --headless --database-url "${pg_url%/*}/$db" --ip 127.0.0.1 \
            --port "$port" --advertise-address "127.0.0.1:$internal" --cluster-shards "$shards" \
            --shard-lease "$lease" --metrics-port "$mport" --log-level warn 2>"$work/$db-node$i.log" &
        pids+=($!)
        frontends+=("127.0.0.1:$port")
        metrics+=("127.0.0.1:$mport")
    done
    # Settled: every node sees N members and the nodes hold every shard between them.
    "$python" - "$n" "$shards" "${metrics[@]}" <<'PY'
import sys, time, urllib.request
n, shards, endpoints = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
def metric(ep, name):
    text = urllib.request.urlopen(f"http://{ep}/metrics", timeout=2).read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name + " "))
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        if all(metric(ep, "uhrwerk_cluster_members") == n for ep in endpoints) and \
                sum(metric(ep, "uhrwerk_cluster_shards_owned") for ep in endpoints) == shards:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("the cluster did not settle within 120 s")
PY
}

echo "Uhrwerk cluster on one PostgreSQL ($(psql --version | head -1)), $(date -u +%Y-%m-%d), $(nproc) cores, $shards shards, lease $lease"
for n in 1 2 3; do
    echo "== $n node(s)" >&2
    start_cluster "$n" "bench_$n"
    echo
    echo "### $n node(s), driver connected to all"
    echo
    addresses="$(IFS=,; echo "${frontends[*]}")"
    target/release/uhrwerk-bench --address "$addresses" --workload one-activity --workflows 2000 --concurrency 100 \
        --sequential 200 --max-seconds 15 --warmup 10 --connections 6 "${bench_args[@]}"
    if [[ "$n" == 3 ]]; then
        echo
        echo "### forwarded calls and takeover (3 nodes)"
        echo
        "$python" "$root/bench/cluster_probe.py" "${frontends[*]}" "${metrics[*]}" "${pids[0]}" "$shards"
    fi
    stop_nodes
done
