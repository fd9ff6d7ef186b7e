#!/usr/bin/env bash
# Set up the environment and run the default test suite (what CI runs).
# Extra arguments go to pytest, e.g. `tools/run_tests.sh -m slow`.
#
# The tests run in parallel worker processes (pytest-xdist), one per core
# up to 4, each worker taking a whole test file at a time (--dist loadfile:
# a module's fixtures, such as the real-size recipe runs, run once). The
# files with the longest runs go first (tests/conftest.py orders them;
# --no-loadscope-reorder keeps that order). Each worker gets an equal share
# of the cores for its OpenMP threads. MME_TEST_WORKERS=0 runs every test
# in one process with every core's threads (e.g. to debug one); `-n N`
# after this script also changes the workers but not the threads (set
# OMP_NUM_THREADS yourself then).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
CORES=$(.venv/bin/python -c 'import os; print(len(os.sched_getaffinity(0)))')
WORKERS=${MME_TEST_WORKERS:-$(( CORES < 4 ? CORES : 4 ))}
if ! [[ $WORKERS =~ ^[0-9]+$ ]]; then
    echo "tools/run_tests.sh: MME_TEST_WORKERS must be a whole number of" \
         "worker processes (0: none), got '$WORKERS'" >&2
    exit 2
fi
WORKERS=$(( 10#$WORKERS ))  # "08" is eight, not a bad octal number
THREADS=$(( WORKERS > 0 ? CORES / WORKERS : CORES ))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( THREADS > 0 ? THREADS : 1 ))}
# Idle OpenMP threads sleep instead of spinning (docs/benchmarks.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec .venv/bin/python -m pytest tests -p no:cacheprovider \
    -n "$WORKERS" --dist loadfile --no-loadscope-reorder "$@"
