"""Training state as plain data: mmengine's log buffers without objects.

mmengine saves the message hub's ``log_scalars`` as ``HistoryBuffer``
objects, whose pickle names ``HistoryBuffer`` and ``getattr`` (for its
statistics functions). This project writes them as plain dicts of tensors
instead (:func:`plain_message_hub`), so a checkpoint it writes needs
nothing from the loader's allow-list beyond tensors and plain data; the
loader turns them back into ``HistoryBuffer`` (:func:`restore_message_hub`)
before mmengine's ``MessageHub.load_state_dict`` sees them. Checkpoints
written by stock mmengine still load through the restricted unpickler.
"""
from typing import Any

import numpy as np
import torch

__all__ = ['plain_message_hub', 'restore_message_hub', 'PLAIN_TAG']

#: Key that marks a log buffer saved as plain data.
PLAIN_TAG = '__mme_history_buffer__'


def _tensor(values: Any) -> torch.Tensor:
    arr = np.asarray(values)
    if arr.dtype.kind not in 'biuf':
        arr = arr.astype(np.float64)
    return torch.from_numpy(arr.copy())


def plain_message_hub(checkpoint: Any) -> Any:
    """A copy of ``checkpoint`` whose message-hub buffers are plain data.

    Args:
        checkpoint (Any): What mmengine's runner is about to save.

    Returns:
        Any: The same object if it holds no message hub, else a shallow copy
        with ``message_hub.log_scalars`` as ``{name: {PLAIN_TAG: 1,
        'log_history': tensor, 'count_history': tensor, 'max_length':
        int}}``.
    """
    from mmengine.logging import HistoryBuffer
    hub = checkpoint.get('message_hub') if isinstance(checkpoint,
                                                      dict) else None
    if not isinstance(hub, dict) or not isinstance(hub.get('log_scalars'),
                                                   dict):
        return checkpoint
    scalars = {}
    for key, buf in hub['log_scalars'].items():
        if isinstance(buf, HistoryBuffer):
            logs, counts = buf.data
            buf = {
                PLAIN_TAG: 1,
                'log_history': _tensor(logs),
                'count_history': _tensor(counts),
                'max_length': int(buf.max_length)
            }
        scalars[key] = buf
    return dict(checkpoint, message_hub=dict(hub, log_scalars=scalars))


def restore_message_hub(checkpoint: Any) -> Any:
    """Turn buffers saved by :func:`plain_message_hub` back into objects.

    Args:
        checkpoint (Any): A loaded checkpoint.

    Returns:
        Any: ``checkpoint`` with ``HistoryBuffer`` objects (in place).
    """
    hub = checkpoint.get('message_hub') if isinstance(checkpoint,
                                                      dict) else None
    scalars = hub.get('log_scalars') if isinstance(hub, dict) else None
    if not isinstance(scalars, dict):
        return checkpoint
    from mmengine.logging import HistoryBuffer
    for key, buf in list(scalars.items()):
        if isinstance(buf, dict) and buf.get(PLAIN_TAG) == 1:
            scalars[key] = HistoryBuffer(
                buf['log_history'].numpy(), buf['count_history'].numpy(),
                int(buf['max_length']))
    return checkpoint
