#!/usr/bin/env bash
# Soak: an hour of mixed load against one release-built Uhrwerk that uhrwerk-bench starts on a
# fresh SQLite file in a temporary directory: one-activity, timer (1 s), signal and ten-activity
# workflows in turn at 50 in flight, the workers and starts moving to a new task queue name every
# 30 s (the old names go idle and the server must prune them and their metric series). Every 60 s
# a row: workflows, throughput, p50/p95/p99 start-to-result latency, the server's RSS, open file
# descriptors, CPU, database size and the `taskqueue` label values of its /metrics. At the end a
# markdown table of the rows and a verdict on stdout: "flat" if the last third of the run stays
# within the stated tolerances of the first row after the 10-minute warm-up, else "grew".
# Exit code 0 if every workflow completed with the right result, 1 if any failed, 2 on setup errors.
# It builds nothing: run `cargo build --release -p uhrwerk -p uhrwerk-bench` first.
#   bench/soak.sh                                    # 60 minutes
#   SOAK_DURATION=3h bench/soak.sh > soak.md          # longer (90s, 20m, 1h30m: units ms, s, m, h)
#   bench/soak.sh --concurrency 100 --soak-queue-every 10s --json-out soak.json
# Arguments go to uhrwerk-bench after the defaults and override them (--soak, --soak-interval,
# --soak-queue-every, --soak-warmup, --concurrency, --workload one-activity,signal, --keep-data, ...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for bin in target/release/uhrwerk-bench target/release/uhrwerk; do
    if [[ ! -x "$bin" ]]; then
        echo "$bin not found: cargo build --release -p uhrwerk -p uhrwerk-bench" >&2
        exit 2
    fi
done

exec target/release/uhrwerk-bench \
    --uhrwerk-bin target/release/uhrwerk \
    --soak "${SOAK_DURATION:-60m}" --soak-interval 60s --soak-queue-every 30s --soak-warmup 10m \
    --concurrency 50 \
    "$@"
