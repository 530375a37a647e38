#!/usr/bin/env bash
# The first thing to run: set up, then fit the `fast` preset on sample_data/, sample, validate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/shopgen demo "$@"
