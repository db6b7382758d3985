#!/usr/bin/env bash
# The chaos test's long form: 500 workflows (activities, timers, signals, updates, children,
# continue-as-new) and a schedule, 10 kill -9s of the server at random moments (at least one in
# its start-up recovery), each followed by a restart on the same database; then every result,
# run chain, signal, update, side effect and scheduled start is checked (tests/compat/test_chaos.py).
#
#   bench/chaos.sh                                  # 500 workflows, 10 kills, a random seed (printed)
#   UHRWERK_CHAOS_SEED=1234 bench/chaos.sh          # replay a seed's plan (workload, pacing, kill moments)
#   UHRWERK_CHAOS_WORKFLOWS=1000 UHRWERK_CHAOS_KILLS=20 bench/chaos.sh
#   UHRWERK_COMPAT_DATABASE_URL=postgres://... bench/chaos.sh   # on PostgreSQL (scripts/pg-throwaway)
#   bench/chaos.sh -x --reference-server            # more arguments go to pytest (here: the Temporal dev server)
#
# It runs target/debug/uhrwerk (or $UHRWERK_BIN) and does not build it. The server's log, its
# database, the side-effect file and chaos.txt (seed, plan, kill moments) are in
# tests/compat/test_output/<session>/test_chaos_kill9_at_random_moments/. Exit code: pytest's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UHRWERK_CHAOS_WORKFLOWS="${UHRWERK_CHAOS_WORKFLOWS:-500}"
export UHRWERK_CHAOS_KILLS="${UHRWERK_CHAOS_KILLS:-10}"
exec "$root/tests/compat/run.sh" test_chaos.py -s "$@"
