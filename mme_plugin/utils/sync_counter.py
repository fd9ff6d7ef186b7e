"""Count the operations of a piece of PyTorch code that would wait for a GPU.

A host sync stalls the CPU until the device has finished its queue, and each
one breaks a ``torch.compile`` graph. They hide in innocent code: ``x[mask]``
with a bool mask (the output size is data dependent), ``int(t)``, ``bool(t)``
(``if t:``), ``t.item()``, ``torch.equal``, ``nonzero``, a device-to-host
copy. :class:`SyncCounter` records them with the PyTorch dispatcher, so it
also works on the CPU, where nothing actually waits: it counts what *would*
sync on CUDA. Host tensors created inside the code (``torch.tensor(...)``,
``x.new_tensor(...)``: a host-to-device copy on CUDA) are counted apart.

Example:
    >>> with SyncCounter() as counter:
    ...     model.train_step(data, optim_wrapper)
    >>> counter.syncs, counter.summary()
"""
import traceback
from collections import Counter
from typing import Dict, List, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ['SyncCounter', 'CopyCounter']

aten = torch.ops.aten

#: Ops whose result needs a value computed on the device.
_SCALAR_OPS = {
    aten._local_scalar_dense, aten.is_nonzero, aten.item, aten.equal,
    aten.nonzero, aten.masked_select, aten.unique_consecutive,
    aten._unique2, aten.unique_dim
}
_INDEX_OPS = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}
_HOST_TENSOR_OPS = {aten.lift_fresh, aten.lift_fresh_copy}


def _has_bool_index(indices) -> bool:
    return any(
        isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
        for i in (indices or ()) if i is not None)


class SyncCounter(TorchDispatchMode):
    """Dispatch mode that records would-be host syncs and host tensors.

    Args:
        where (bool): Also record the innermost project frame of each
            event (slower). Defaults to True.
        cpu_tensors (bool): Count ops on CPU tensors too (what would sync
            if they were on the GPU). False counts only ops that read a
            device tensor (e.g. not an optimizer's CPU step counter).
            Defaults to True.

    Attributes:
        events (list[tuple[str, str, str]]): ``(kind, op, place)`` per event,
            kind ``'sync'`` or ``'host_tensor'``.
    """

    def __init__(self, where: bool = True, cpu_tensors: bool = True) -> None:
        super().__init__()
        self.where = where
        self.cpu_tensors = cpu_tensors
        self.events: List[tuple] = []

    def _place(self) -> str:
        if not self.where:
            return ''
        frames = traceback.extract_stack()[:-3]
        for fr in reversed(frames):
            f = fr.filename.replace('\\', '/')
            if '/torch/' in f or 'sync_counter' in f:
                continue
            return f'{"/".join(f.split("/")[-3:])}:{fr.lineno}'
        return '?'

    def _record(self, kind: str, op: str, args=()) -> None:
        if kind == 'sync' and not self.cpu_tensors and not any(
                isinstance(a, torch.Tensor) and a.device.type != 'cpu'
                for a in args):
            return
        self.events.append((kind, op, self._place()))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func.overloadpacket
        if packet in _SCALAR_OPS:
            self._record('sync', packet.__name__, args)
        elif packet in _INDEX_OPS and _has_bool_index(args[1] if len(args) >
                                                      1 else None):
            self._record('sync', f'{packet.__name__}(bool mask)', args)
        elif packet is aten.repeat_interleave and \
                kwargs.get('output_size') is None and any(
                    isinstance(a, torch.Tensor) for a in args[1:2]) or (
                    packet is aten.repeat_interleave and len(args) == 1
                    and kwargs.get('output_size') is None):
            self._record('sync', 'repeat_interleave(tensor repeats)', args)
        elif packet in _HOST_TENSOR_OPS:
            self._record('host_tensor', packet.__name__)
        elif packet is aten._to_copy and isinstance(args[0], torch.Tensor):
            dev = kwargs.get('device')
            if dev is not None and torch.device(dev).type == 'cpu' and \
                    args[0].device.type != 'cpu':
                self._record('sync', 'copy to host', args)
        return func(*args, **kwargs)

    @property
    def syncs(self) -> int:
        """Number of would-be host syncs."""
        return sum(1 for e in self.events if e[0] == 'sync')

    @property
    def host_tensors(self) -> int:
        """Number of tensors created from host data."""
        return sum(1 for e in self.events if e[0] == 'host_tensor')

    def summary(self, kind: Optional[str] = 'sync') -> Dict[str, int]:
        """``'op @ place' -> count`` of the events of ``kind``."""
        return dict(
            Counter(f'{op} @ {place}' for k, op, place in self.events
                    if kind is None or k == kind))


class CopyCounter:
    """Counts ``Tensor.to`` calls that name a device (host-to-device copies
    on a GPU), while active as a context manager."""

    def __init__(self) -> None:
        self.calls = 0
        self._orig = torch.Tensor.to

    def __enter__(self) -> 'CopyCounter':
        orig = self._orig

        def counting(t, *args, **kwargs):
            first = args[0] if args else None
            if 'device' in kwargs or isinstance(first, (str, torch.device)):
                self.calls += 1
            return orig(t, *args, **kwargs)

        torch.Tensor.to = counting
        return self

    def __exit__(self, *exc) -> None:
        torch.Tensor.to = self._orig
