"""Load checkpoints without running code from them.

A ``.pth`` file is a pickle: loaded with ``torch.load(weights_only=False)``
it can run any code it carries, and users download official MME / VideoMAE
checkpoints from file hosts. Every checkpoint this project loads (mmengine's
``load_from``, ``--resume``, ``tools/test.py``, ``Pretrained`` init, both
converters) goes through :func:`safe_torch_load`, which uses torch's
restricted unpickler (``weights_only=True``) with an allow-list of exactly
what legitimate checkpoints hold:

* tensors and plain containers (torch's own allow-list);
* mmengine's training state: ``HistoryBuffer`` (the message hub's logs),
  which pickles its statistics methods as ``getattr(buffer, 'min')``, hence
  ``builtins.getattr`` (torch's unpickler only *calls* allow-listed
  callables, so an attribute fetched this way cannot be invoked);
* numpy arrays, scalars and dtypes (log values, seeds);
* ``argparse.Namespace`` (the release's ``save_model`` stores ``args``).

Anything else is refused with :class:`UnsafeCheckpointError`, naming the
offending globals and the explicit opt-in: ``--trust-checkpoint`` on the
tools, or ``MME_TRUST_CHECKPOINTS=1`` for stock mmengine entry points, which
loads with ``weights_only=False`` after a warning.
"""
import argparse
import importlib
import os
import pickle
import warnings
from typing import Any, List

import numpy as np
import torch

__all__ = ['UnsafeCheckpointError', 'safe_torch_load', 'SAFE_GLOBALS',
           'TRUST_ENV', 'trust_checkpoints']

#: Environment variable that opts in to full (code-running) unpickling.
TRUST_ENV = 'MME_TRUST_CHECKPOINTS'


def _safe_globals() -> List[Any]:
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = importlib.import_module(
        'numpy.core.multiarray' if np.__version__ < '2' else
        'numpy._core.multiarray')
    found = [
        HistoryBuffer, getattr, argparse.Namespace, np.ndarray, np.dtype,
        multiarray.scalar, multiarray._reconstruct
    ]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25: dtype classes
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes)
                  if n.endswith('DType')]
    return found


SAFE_GLOBALS = _safe_globals()


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects outside the allow-list."""


def trust_checkpoints() -> None:
    """Opt in to full unpickling for this process (``--trust-checkpoint``)."""
    os.environ[TRUST_ENV] = '1'


def _unsafe_globals(path: str) -> List[str]:
    try:
        from torch.serialization import get_unsafe_globals_in_checkpoint
        allowed = {f'{g.__module__}.{g.__qualname__}' for g in SAFE_GLOBALS}
        return [g for g in get_unsafe_globals_in_checkpoint(path)
                if g not in allowed]
    except Exception:  # noqa: BLE001 - best effort, for the message only
        return []


def safe_torch_load(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` that refuses code-running pickles unless trusted.

    Args:
        path (str): Local checkpoint path.
        map_location (Any): As :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        Any: The loaded object.

    Raises:
        UnsafeCheckpointError: Naming the globals outside the allow-list and
            how to opt in.
    """
    if os.environ.get(TRUST_ENV) == '1':
        warnings.warn(f'{TRUST_ENV}=1: loading {path} with '
                      'weights_only=False; a malicious file can run code.')
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as e:
        names = _unsafe_globals(path) or [str(e).splitlines()[0][:300]]
        raise UnsafeCheckpointError(
            f'{path}: refused to load: it holds {names}, which checkpoints '
            'of this project, mmengine and the official MME/VideoMAE '
            'releases do not contain, and unpickling it could run code. If '
            'you trust the file, pass --trust-checkpoint to the tool, or set '
            f'{TRUST_ENV}=1 for stock mmengine entry points.') from None
