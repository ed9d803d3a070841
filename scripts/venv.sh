#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the project (plus extras given as $1, e.g. "test").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=${1:-}
spec="."
[ -n "$extras" ] && spec=".[$extras]"
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras:-base}"
if [ ! -f "$stamp" ]; then
  log=.venv/install.log
  echo "Installing into .venv (log: $log)..."
  if ! { .venv/bin/python -m pip install --upgrade pip setuptools wheel \
         && .venv/bin/python -m pip install -e "$spec"; } >"$log" 2>&1; then
    tail -30 "$log"; echo "venv.sh: the installation failed; the whole log is $log" >&2; exit 1
  fi
  touch "$stamp"
fi
