#!/usr/bin/env bash
# The main job on the built-in default: set up .venv, generate the synthetic
# motion dataset, pretrain a tiny ViT with MME and with pixel targets
# (VideoMAE) for 3 seeds, compare every loss with its trivial level, probe
# the frozen encoders (class and exact motion) and fine-tune them on 5
# labelled clips per class (each next to a random-init one), report the
# collapse measures, train the supervised baseline, and print the tables
# (tools/synthetic_benchmark.py). CPU.
# Extra arguments go to tools/synthetic_benchmark.py (e.g. --seeds 0 1 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# Idle OpenMP threads sleep instead of spinning, leaving the cores to the
# data loader's workers: same weights, MME pretraining 1.5x faster on 2
# cores (benchmarks/cpu_threads.py, docs/benchmarks.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec .venv/bin/python tools/synthetic_benchmark.py "$@"
