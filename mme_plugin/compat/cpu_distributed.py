"""Shim: mmengine's ``pytorch`` launcher and DDP wrapper on a CPU-only torch.

mmengine's ``init_dist('pytorch')`` calls ``torch.cuda.set_device``
unconditionally and the runner wraps models with
``DistributedDataParallel(device_ids=[LOCAL_RANK])``; both fail on a
CPU-only torch. The launcher first calls the CUDA guard
(:func:`~mme_plugin.utils.cuda_setup.require_cuda_for_launcher`): without
usable CUDA the launch fails naming torch's build and the fix, unless
``MME_ALLOW_CPU_DIST=1`` opts in; then the gloo backend is used,
``set_device`` is skipped and CPU modules get DDP ``device_ids=None``. CUDA
machines are untouched (``docs/stack_notes.md``, breakage 3).
"""
import os
from typing import Any

import torch

__all__ = ['patch_cpu_distributed']

#: Saved originals of what :func:`patch_cpu_distributed` replaced, by name
#: (originals only; no runtime state).
_ORIG: dict = {}


def _init_dist_pytorch_cpu_aware(backend: str = 'nccl',
                                 init_backend: str = 'torch',
                                 **kwargs: Any) -> None:
    """mmengine's pytorch launcher init, falling back to gloo without CUDA
    only if ``MME_ALLOW_CPU_DIST=1``.

    Args:
        backend (str): Backend asked for (used as is with CUDA).
        init_backend (str): mmengine's init backend.
        **kwargs: Passed to the process-group init.

    Raises:
        NoCudaError: (:class:`~mme_plugin.utils.cuda_setup.NoCudaError`)
            No usable CUDA and no opt-in; the message names the fix.
    """
    import torch.distributed as dist

    from mme_plugin.utils.cuda_setup import require_cuda_for_launcher
    require_cuda_for_launcher('pytorch')
    if torch.cuda.is_available():
        return _ORIG['init_dist_pytorch'](
            backend, init_backend=init_backend, **kwargs)
    dist.init_process_group(
        backend='gloo',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def patch_cpu_distributed() -> None:
    """Make mmengine's ``pytorch`` launcher and DDP wrapper work on CPU
    (idempotent)."""
    import mmengine.dist.utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel
    if 'init_dist_pytorch' not in _ORIG:
        _ORIG['init_dist_pytorch'] = dist_utils._init_dist_pytorch
        dist_utils._init_dist_pytorch = _init_dist_pytorch_cpu_aware
    if 'ddp_init' not in _ORIG:
        orig_init = MMDistributedDataParallel.__init__
        _ORIG['ddp_init'] = orig_init

        def __init__(self, module: torch.nn.Module, *args: Any,
                     **kwargs: Any) -> None:
            devices = {p.device.type for p in module.parameters()}
            if devices <= {'cpu'}:
                kwargs['device_ids'] = None
                kwargs.pop('output_device', None)
            orig_init(self, module, *args, **kwargs)

        MMDistributedDataParallel.__init__ = __init__
