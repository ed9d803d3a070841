#!/usr/bin/env bash
# Create (idempotently) a separate virtualenv holding Toil with its CWL runner and WES server, for the
# real-engine integration test (tests/integration/test_toil_wes.py) and for local experiments.
#
#   MEV_TOIL_VENV   where the venv lives (default /opt/mev-toil-venv)
#   MEV_TOIL_PYTHON the interpreter to build it with (default: python3.11 on PATH)
#
# It is a no-op when `$MEV_TOIL_VENV/bin/toil --version` already answers the pinned version.
set -euo pipefail

TOIL_VERSION="9.6.0"
VENV="${MEV_TOIL_VENV:-/opt/mev-toil-venv}"
PY="${MEV_TOIL_PYTHON:-python3.11}"

if [ -x "$VENV/bin/toil" ] && "$VENV/bin/toil" --version 2>/dev/null | grep -q "$TOIL_VERSION"; then
    echo "toil $TOIL_VERSION already installed in $VENV"
    exit 0
fi

if ! command -v "$PY" >/dev/null 2>&1; then
    echo "error: $PY not found (set MEV_TOIL_PYTHON to a Python 3.11 interpreter)" >&2
    exit 1
fi

"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip wheel
"$VENV/bin/python" -m pip install --quiet "toil[cwl,server,aws]==${TOIL_VERSION}"
"$VENV/bin/toil" --version
