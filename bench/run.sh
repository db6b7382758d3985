#!/usr/bin/env bash
# Runs bench/bench.py with the compat suite's venv (created on first use).
#   bench/run.sh --address 127.0.0.1:7233 [--workflows 2000] [--concurrency 100] [--worker-processes 2] [--json]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
compat="$here/../tests/compat"
"$compat/ensure-venv.sh"
exec "$compat/.venv/bin/python" "$here/bench.py" "$@"
