# Sourced by the launchers: choose the Python that has the project's stack.
# $PYTHON if set; else the project's .venv (made by tools/setup_env.sh) if it
# exists; else the python on PATH. Fails early, naming the fix, when that
# Python cannot import torch.
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$DIR/../.venv/bin/python" ]; then
        PYTHON="$DIR/../.venv/bin/python"
    else
        PYTHON=python
    fi
fi
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    echo "error: $PYTHON cannot import torch. Run 'bash tools/setup_env.sh'" \
         "(creates .venv, which the launchers then use), activate your own" \
         "environment, or set PYTHON=/path/to/python." >&2
    exit 1
fi
