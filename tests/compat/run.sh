#!/usr/bin/env bash
# Runs the Python compatibility suite against Uhrwerk (or, with --server / --reference-server,
# against another server). Extra arguments are passed to pytest.
#
#   tests/compat/run.sh                                  # uhrwerk from UHRWERK_BIN or target/debug/uhrwerk
#   tests/compat/run.sh --reference-server               # the real Temporal dev server (the oracle)
#   tests/compat/run.sh --server 127.0.0.1:7233 -k hello # an already running server
#
# It does not build the binary; scripts/test builds first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
"$here/ensure-venv.sh"

external=0
for arg in "$@"; do
    case "$arg" in
        --server | --server=* | --reference-server) external=1 ;;
    esac
done

if [[ $external -eq 0 ]]; then
    bin="${UHRWERK_BIN:-$repo/target/debug/uhrwerk}"
    if [[ ! -x "$bin" ]]; then
        echo "compat: uhrwerk binary not found at $bin (build it, set UHRWERK_BIN, or pass --server HOST:PORT / --reference-server)" >&2
        exit 2
    fi
    export UHRWERK_BIN="$bin"
fi

cd "$here"
set +e
"$venv/bin/python" -m pytest "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
    echo "compat: pytest collected no tests (exit 5)" >&2
fi
exit $code
