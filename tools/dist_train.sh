#!/usr/bin/env bash
# Distributed training with torchrun (mmaction2's env interface).
# Usage: tools/dist_train.sh CONFIG GPUS [train.py args...]
# Env: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500),
#      PYTHON (default: the project's .venv/bin/python if it exists, else
#      the python on PATH).
# Without usable CUDA it fails, naming torch's build and the fix; with
# MME_ALLOW_CPU_DIST=1 it runs GPUS CPU processes over gloo instead (slow,
# fp32; what the tests do; see mme_plugin/utils/cuda_setup.py).
set -e
CONFIG=$1
GPUS=$2
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
    "$DIR/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
