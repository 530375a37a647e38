#!/usr/bin/env bash
# Set up, lint, and run the whole test suite (CI runs exactly this through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check shopgen tests sample_data benchmarks pipelines
# Headless Chromium renders the HTML report in tests/test_report.py: Debian's package, installed here once.
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
exec .venv/bin/python -m pytest --durations=15 "$@"
