"""Per-batch target checks of the MME model without a host sync per step.

The model refuses two kinds of batches, naming the samples: a batch whose
targets hold a NaN / inf (a data problem), and a batch in which no masked
token has a valid target (``NoValidTargetsError``). It also stops on a
non-finite loss of finite targets, except under fp16 autocast, where the
loss scaler skips such an overflowing step and
:class:`~mme_plugin.engine.nonfinite_hook.NonFiniteLossHook` decides when
skips become divergence.

Reading a device flag in Python (``if not torch.isfinite(loss)``) waits for
the GPU, so on an accelerator the flags are kept on the device with the
batch's description (iteration, files: host strings) and read together every
``interval`` batches; the first bad batch of the window is reported. On the
CPU reading costs nothing, and every batch is checked at once.
"""
from typing import List, Tuple, Type

import torch
from torch import Tensor

__all__ = ['BatchChecks', 'fp16_autocast_active']


def fp16_autocast_active(device_type: str) -> bool:
    """Whether fp16 autocast is on for ``device_type`` (the loss scaler then
    skips overflowing steps)."""
    try:
        return (torch.is_autocast_enabled(device_type)
                and torch.get_autocast_dtype(device_type) == torch.float16)
    except (TypeError, RuntimeError):  # old torch / unknown device type
        return False


class BatchChecks:
    """Deferred checks of per-batch device flags.

    Args:
        interval (int): On an accelerator, read the flags once every this
            many batches. Defaults to 10.
        eager_on_cpu (bool): Read CPU flags at once (free there). False
            gives the accelerator schedule on the CPU (tests). Defaults to
            True.
    """

    def __init__(self, interval: int = 10, eager_on_cpu: bool = True) -> None:
        if interval < 1:
            raise ValueError(f'check interval must be >= 1, got {interval}')
        self.interval = interval
        self.eager_on_cpu = eager_on_cpu
        self._pending: List[Tuple[Tensor, List[Tuple[Type[Exception],
                                                     str]]]] = []

    def record(self, flags: List[Tensor],
               errors: List[Tuple[Type[Exception], str]]) -> None:
        """Queue one batch's flags (True = bad) and the error each raises.

        Args:
            flags (list[Tensor]): 0-dim bool tensors on one device.
            errors (list[tuple]): ``(exception class, message)`` per flag.

        Raises:
            Exception: The first flagged error, when the flags are read.
        """
        if not flags:
            return
        self._pending.append((torch.stack(flags), errors))
        if (self.eager_on_cpu and flags[0].device.type == 'cpu') or \
                len(self._pending) >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Read every queued flag (one host sync) and raise the first
        error."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        read = torch.cat([f for f, _ in pending]).cpu().tolist()
        k = 0
        for flags, errors in pending:
            for bad, (cls, msg) in zip(read[k:k + len(flags)], errors):
                if bad:
                    raise cls(msg)
            k += len(flags)
