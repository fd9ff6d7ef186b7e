#!/usr/bin/env bash
# Slurm training. Usage:
#   [GPUS=16] [GPUS_PER_NODE=8] [CPUS_PER_TASK=10] tools/slurm_train.sh \
#       PARTITION JOB_NAME CONFIG [train.py args...]
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-10}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=${@:4}
DIR="$(cd "$(dirname "$0")" && pwd)"
PYTHONPATH="$DIR/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    python -u "$DIR/train.py" ${CONFIG} --launcher="slurm" ${PY_ARGS}
