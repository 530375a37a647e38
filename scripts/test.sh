#!/usr/bin/env bash
# Set up, lint, and run the whole test suite (CI runs exactly this through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check shopgen tests sample_data benchmarks
exec .venv/bin/python -m pytest "$@"
