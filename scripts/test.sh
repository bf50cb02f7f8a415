#!/usr/bin/env bash
# The test command: installs what is missing, then runs the whole suite (session, server, cache,
# FUSE mounts, reliability) and the benchmark smoke run. Long variants: ORIONFS_LONG=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python -m pytest -q -ra "$@"
if [ -f scripts/bench.py ] && [ $# -eq 0 ]; then
  .venv/bin/python scripts/bench.py --quick --check
fi
