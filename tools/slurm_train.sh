#!/usr/bin/env bash
# Slurm training. Usage:
#   [GPUS=16] [GPUS_PER_NODE=8] [CPUS_PER_TASK=10] tools/slurm_train.sh \
#       PARTITION JOB_NAME CONFIG [train.py args...]
# PYTHON defaults to the project's .venv/bin/python if it exists.
# Each task fails at start-up if it sees no usable CUDA (naming torch's
# build and the fix) unless MME_ALLOW_CPU_DIST=1.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-10}
SRUN_ARGS=${SRUN_ARGS:-""}
DIR="$(cd "$(dirname "$0")" && pwd)"
source "$DIR/python_env.sh"
# SRUN_ARGS is a list of srun options: split on spaces on purpose.
# shellcheck disable=SC2086
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$DIR/train.py" "$CONFIG" --launcher=slurm "${@:4}"
