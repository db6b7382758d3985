#!/usr/bin/env bash
# Uhrwerk on SQLite and on PostgreSQL, side by side on this machine: builds the release binaries,
# starts a throwaway PostgreSQL (scripts/pg-throwaway), then measures one Uhrwerk on a fresh
# SQLite file and one on a fresh PostgreSQL database, one after the other, with uhrwerk-bench
# against the running server (--address, --server-pid: the server's own CPU and memory).
# Arguments go to uhrwerk-bench and override the defaults:
#   bench/pg-compare.sh                                   # one-activity, markdown on stdout
#   bench/pg-compare.sh --workload one-activity,signal --workflows 5000
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo build --release -p uhrwerk -p uhrwerk-bench >&2
work="$(mktemp -d /tmp/uhrwerk-pg-compare.XXXXXX)"
# Its own directory: as root, PostgreSQL runs as another user, who must reach it.
pg_dir="$(mktemp -d /tmp/uhrwerk-pg.XXXXXX)"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    scripts/pg-throwaway stop "$pg_dir" >/dev/null 2>&1 || true
    rm -rf "$work" "$pg_dir"
}
trap cleanup EXIT
pg_url="$(scripts/pg-throwaway start "$pg_dir")"

bench_args=("$@")
run() { # LABEL, persistence flags...
    local label="$1"
    shift
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    target/release/uhrwerk server start-dev --headless --ip 127.0.0.1 --port "$port" --metrics-port 0 \
        --log-level warn "$@" 2>"$work/$label.log" &
    server_pid=$!
    echo "== $label (pid $server_pid, port $port)" >&2
    python3 - "$port" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("the server did not listen within 60 s")
PY
    echo
    echo "### $label"
    echo
    target/release/uhrwerk-bench --address "127.0.0.1:$port" --server-pid "$server_pid" \
        --workload one-activity --workflows 2000 --concurrency 100 --sequential 200 --max-seconds 15 --warmup 10 \
        "${bench_args[@]}"
    kill "$server_pid"
    wait "$server_pid" || true
    server_pid=""
}

echo "Uhrwerk on SQLite and on PostgreSQL ($(psql --version 2>/dev/null | head -1 || echo PostgreSQL)), $(date -u +%Y-%m-%d), $(nproc) cores"
run sqlite --db-filename "$work/uhrwerk.db"
run postgres --database-url "$pg_url"
