#!/usr/bin/env bash
# Creates .venv and installs shopgen into it; re-runs only when pyproject.toml changes.
# torch 2.13.0 goes in first: on these machines it is a local CPU wheel, and installing it before
# the rest keeps pip from pulling a multi-GB CUDA build to satisfy the `torch` requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.shopgen-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev,airflow,shop]"
  echo "$want" > "$stamp"
fi
