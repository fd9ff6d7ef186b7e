#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv.
# Idempotent: reinstalls only when requirements.txt or setup.py changed.
# One pip call for torch, the stack and the project (a separate `pip install
# -e .` would resolve a multi-GB CUDA torch build; see docs/stack_notes.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BOOTSTRAP:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV with $($PY --version)"
    $PY -m venv "$VENV"
fi
STAMP="$VENV/.mme_requirements.sha"
WANT=$(cat requirements.txt setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "[setup] installing requirements.txt + mme_plugin (editable)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r requirements.txt -e . 2>&1 | grep -v "^WARNING: Location" || true
    "$VENV/bin/python" -W ignore -c "import mme_plugin, mmaction.models" \
        || { echo "[setup] import check failed" >&2; exit 1; }
    echo "$WANT" > "$STAMP"
fi
echo "[setup] environment ready: $VENV ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
