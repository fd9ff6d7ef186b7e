#!/usr/bin/env bash
# Distributed testing with torchrun (mmaction2's env interface).
# Usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Env: as tools/dist_train.sh (PYTHON defaults to the project's .venv;
# without usable CUDA it fails unless MME_ALLOW_CPU_DIST=1).
set -e
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
DIR="$(cd "$(dirname "$0")" && pwd)"
source "$DIR/python_env.sh"
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$DIR/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
