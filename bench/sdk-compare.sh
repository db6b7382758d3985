#!/usr/bin/env bash
# The Python SDK benchmark (bench.py), Uhrwerk and the Temporal dev server side by side: starts
# each server in turn on a free port and a fresh temporary directory, runs bench.py against it
# with the same arguments, stops it, and prints both reports and the ratios. Never both servers
# at once. Defaults: 20 sequential workflows (--workflows 20 --concurrency 1 --worker-processes 1,
# SDK sandbox on, as a user's hello-activity worker runs); arguments after the options below are
# passed on to bench.py and override them.
#   bench/sdk-compare.sh                               # 20 sequential workflows
#   bench/sdk-compare.sh --temporal-db memory          # the dev server in memory (its default)
#   bench/sdk-compare.sh -- --workflows 2000 --concurrency 100 --worker-processes 2
# Options (before `--`):
#   --uhrwerk-bin PATH     default target/release/uhrwerk (built with cargo build --release if missing)
#   --temporal-db file|memory   the dev server on a SQLite file with WAL (default) or in memory
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

uhrwerk_bin=target/release/uhrwerk
temporal_db=file
while [[ $# -gt 0 ]]; do
    case "$1" in
        --uhrwerk-bin) uhrwerk_bin="$2"; shift 2 ;;
        --temporal-db) temporal_db="$2"; shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
case "$temporal_db" in file | memory) ;; *) echo "sdk-compare: --temporal-db is file or memory" >&2; exit 2 ;; esac

[[ -x "$uhrwerk_bin" ]] || cargo build --release -p uhrwerk >&2
tests/compat/ensure-venv.sh
py=tests/compat/.venv/bin/python
temporal=tests/compat/.venv/bin/temporal

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until the frontend answers GetSystemInfo (the server is ready), at most 60 s.
wait_ready() {
    "$py" - "$1" <<'EOF'
import asyncio, sys, time
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
async def main(address):
    deadline = time.monotonic() + 60
    while True:
        try:
            client = await Client.connect(address)
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
asyncio.run(main(sys.argv[1]))
EOF
}

# Runs bench.py against one server: label, then the server command (--ip and --port are added).
run_one() {
    local label="$1"
    shift
    local port
    port="$(free_port)"
    "$@" --ip 127.0.0.1 --port "$port" >"$work/$label.log" 2>&1 &
    server_pid=$!
    wait_ready "127.0.0.1:$port"
    echo "sdk-compare: $label on 127.0.0.1:$port" >&2
    "$py" bench/bench.py --address "127.0.0.1:$port" --label "$label" --json \
        --workflows 20 --concurrency 1 --worker-processes 1 --sandbox "${bench_args[@]}" >"$work/$label.json" || true
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

bench_args=("$@")
run_one uhrwerk "$uhrwerk_bin" server start-dev --db-filename "$work/uhrwerk.db" --metrics-port 0
if [[ "$temporal_db" == file ]]; then
    run_one temporal "$temporal" server start-dev --headless --db-filename "$work/temporal.db" \
        --sqlite-pragma journal_mode=wal
else
    run_one temporal "$temporal" server start-dev --headless
fi

"$py" - "$work/uhrwerk.json" "$work/temporal.json" "$temporal_db" <<'EOF'
import json, sys
u, t = (json.load(open(p)) for p in sys.argv[1:3])
print("| server | workflows | wall time (s) | workflows/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r, name in ((u, "Uhrwerk, SQLite file"),
                (t, f"temporal dev server {t['server_version']}, " + ("SQLite file (WAL)" if sys.argv[3] == "file" else "in memory"))):
    lat = r["latency_ms"]
    print(f"| {name} | {r['completed']}/{r['workflows']} | {r['wall_seconds']:.2f} | {r['workflows_per_second']:.1f} "
          f"| {lat['p50']:.1f} | {lat['p95']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} |")
print()
print(f"Uhrwerk is {t['wall_seconds'] / u['wall_seconds']:.1f}x as fast (wall time), p50 latency x{u['latency_ms']['p50'] / t['latency_ms']['p50']:.2f}")
sys.exit(0 if u["errors"] == 0 and t["errors"] == 0 else 1)
EOF
