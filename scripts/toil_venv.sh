#!/usr/bin/env bash
# Create (idempotently) a separate virtualenv holding Toil with its CWL and WDL runners and its WES
# server, for the real-engine integration tests (tests/integration/test_toil_wes*.py) and for local
# experiments. WDL needs Toil's `wdl` extra (miniwdl, which toil-wdl-runner is built on).
#
#   MEV_TOIL_VENV   where the venv lives (default /opt/mev-toil-venv)
#   MEV_TOIL_PYTHON the interpreter to build it with (default: python3.11 on PATH)
#
# It is a no-op when `$MEV_TOIL_VENV/bin/toil --version` already answers the pinned version and the
# venv can import miniwdl (`WDL`); a venv made before WDL was added only gets the missing extra.
set -euo pipefail

TOIL_VERSION="9.6.0"
TOIL_EXTRAS="cwl,wdl,server,aws"
VENV="${MEV_TOIL_VENV:-/opt/mev-toil-venv}"
PY="${MEV_TOIL_PYTHON:-python3.11}"

toil_ready() {
    [ -x "$VENV/bin/toil" ] && "$VENV/bin/toil" --version 2>/dev/null | grep -q "$TOIL_VERSION"
}

wdl_ready() {
    "$VENV/bin/python" -c "import WDL, toil.wdl.wdltoil" >/dev/null 2>&1
}

if toil_ready && wdl_ready; then
    echo "toil $TOIL_VERSION (CWL, WDL, server) already installed in $VENV"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    if ! command -v "$PY" >/dev/null 2>&1; then
        echo "error: $PY not found (set MEV_TOIL_PYTHON to a Python 3.11 interpreter)" >&2
        exit 1
    fi
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip wheel
fi

"$VENV/bin/python" -m pip install --quiet "toil[${TOIL_EXTRAS}]==${TOIL_VERSION}"
"$VENV/bin/toil" --version
if ! wdl_ready; then
    echo "error: toil-wdl-runner cannot import miniwdl in $VENV" >&2
    exit 1
fi
