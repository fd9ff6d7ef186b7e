#!/usr/bin/env bash
# Set up the environment and run the default test suite (what CI runs).
# Extra arguments go to pytest, e.g. `tools/run_tests.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec .venv/bin/python -m pytest tests -p no:cacheprovider "$@"
