"""Small, documented shims for the OpenMMLab stack this plugin is pinned to.

Imported first by :mod:`mme_plugin`. Every shim is idempotent, fixes exactly
one known breakage listed in ``docs/stack_notes.md`` and is
covered by a test in ``tests/test_compat.py`` that fails without it.

1. :func:`patch_missing_drn` - the mmaction2 1.2.0 wheel lacks
   ``mmaction/models/localizers/drn`` (upstream issue
   open-mmlab/mmaction2#2714), so ``import mmaction.models`` fails. We insert
   placeholder modules, only when the real package is missing.
2. :func:`patch_checkpoint_loader` - mmengine 0.10.7 calls ``torch.load`` with
   torch's default ``weights_only=True`` (torch >= 2.6), which rejects
   mmengine's own ``HistoryBuffer`` objects: resume, ``load_from``,
   ``tools/test.py CKPT`` and ``Pretrained`` init fail. Every scheme
   (local and remote) loads with this project's restricted unpickler, which
   can build only tensors and plain data, and refuses truncated files and
   non-finite weights (:mod:`mme_plugin.engine.safe_load`).
3. :func:`patch_cpu_distributed` - mmengine's ``init_dist('pytorch')`` calls
   ``torch.cuda.set_device`` unconditionally and the runner wraps models with
   ``DistributedDataParallel(device_ids=[LOCAL_RANK])``; both fail on a
   CPU-only torch. Without CUDA we use the gloo backend, skip ``set_device``
   and give DDP ``device_ids=None`` for CPU modules, only when
   ``MME_ALLOW_CPU_DIST=1`` opts in: otherwise the launch fails naming
   torch's build and the fix (:mod:`mme_plugin.utils.cuda_setup`). CUDA
   machines are untouched.
4. :func:`patch_checkpoint_safety` - mmengine deletes the oldest kept
   checkpoint before writing the new one, writes in place and resumes from
   whatever ``last_checkpoint`` names; ``max_keep_ckpts=None`` raises a
   TypeError. See :mod:`mme_plugin.engine.safe_checkpoint`.
5. :func:`patch_checkpoint_fit` - mmengine loads ``load_from`` and test
   checkpoints non-strictly and only logs what did not load, so a wrong
   checkpoint trains from scratch or tests at chance with exit code 0. See
   :mod:`mme_plugin.engine.checkpoint_fit`.
6. :func:`patch_workdir_lock` - two runs started in one work dir both ran
   and overwrote each other's checkpoints. ``Runner.train`` now holds a lock
   file in the work dir and refuses a second run. See
   :mod:`mme_plugin.engine.workdir_lock`.
7. :func:`patch_resource_checks` - under the usual ``ulimit -n`` of 1024
   the dataloader ran out of open files and hung, and a container's 64 MB
   ``/dev/shm`` failed at the first batch. Building the train loop now
   raises the soft open-file limit to the hard one and fails early when
   ``/dev/shm`` is too small; ``prefetch_factor`` is dropped from loaders
   with ``num_workers=0`` (torch refuses it). See
   :mod:`mme_plugin.utils.resources`.
"""
import importlib.util
import os
import sys
import types
from typing import Any

import torch

__all__ = [
    'patch_missing_drn', 'patch_checkpoint_loader', 'patch_cpu_distributed',
    'patch_checkpoint_safety', 'patch_checkpoint_fit', 'patch_workdir_lock',
    'patch_resource_checks', 'apply_all'
]

_DRN_MODULES = ('mmaction.models.localizers.drn',
                'mmaction.models.localizers.drn.drn')


def _real_drn_missing() -> bool:
    """Whether the installed mmaction lacks the ``drn`` localizer package.

    Looks at the files only: ``find_spec`` of a submodule would import
    ``mmaction.models``, which is exactly what fails.
    """
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    for root in spec.submodule_search_locations:
        localizers = os.path.join(root, 'models', 'localizers')
        if os.path.isdir(localizers):
            return not os.path.isdir(os.path.join(localizers, 'drn'))
    return False


def patch_missing_drn() -> bool:
    """Register placeholder ``drn`` modules if mmaction's wheel lacks them.

    Returns:
        bool: True if placeholders were inserted, False if nothing was needed.
    """
    if _DRN_MODULES[1] in sys.modules or not _real_drn_missing():
        return False

    class DRN:  # noqa: D401 - placeholder
        """Placeholder for mmaction's DRN localizer (absent from the wheel)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError(
                'mmaction.models.localizers.drn is missing from the mmaction2 '
                '1.2.0 wheel (open-mmlab/mmaction2#2714); install mmaction2 '
                'from source to use DRN.')

    pkg = types.ModuleType(_DRN_MODULES[0])
    pkg.__path__ = []  # mark as package
    mod = types.ModuleType(_DRN_MODULES[1])
    mod.DRN = DRN
    pkg.drn = mod
    pkg.DRN = DRN
    sys.modules[_DRN_MODULES[0]] = pkg
    sys.modules[_DRN_MODULES[1]] = mod
    return True


def _load_local(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint without running code from it
    (:func:`~mme_plugin.engine.safe_load.safe_torch_load`).

    Args:
        filename (str): Path of the checkpoint.
        map_location (Any): Same as :func:`torch.load`.

    Returns:
        Any: The loaded object.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint {filename} can not be found: check the path given '
            'to --resume / load_from / tools/test.py.')
    from mme_plugin.engine.safe_load import safe_torch_load
    return safe_torch_load(filename, map_location=map_location)


class _SafeTorchProxy(types.ModuleType):
    """``torch`` as mmengine's checkpoint modules see it: ``load`` is the
    safe loader, every other attribute is torch's own."""

    def __init__(self) -> None:
        super().__init__('torch')

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    @staticmethod
    def load(f: Any, map_location: Any = None, *args: Any,
             **kwargs: Any) -> Any:
        """Safe load of what mmengine's remote schemes fetched."""
        from mme_plugin.engine.safe_load import safe_torch_load
        return safe_torch_load(f, map_location=map_location)


def _load_url(url: str, model_dir: Any = None, map_location: Any = None,
              progress: bool = True, **kwargs: Any) -> Any:
    """mmengine's ``load_url`` (used by the ``http(s)://``, ``open-mmlab://``
    and ``torchvision://`` schemes), loading with the safe loader.

    torch's ``load_state_dict_from_url``, which mmengine calls, unpickles
    with ``weights_only=False``: a checkpoint URL could run code.
    """
    from urllib.parse import urlparse

    from torch.hub import download_url_to_file, get_dir

    from mme_plugin.engine.safe_load import safe_torch_load
    model_dir = model_dir or os.path.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = os.path.join(model_dir, os.path.basename(urlparse(url).path))
    if not os.path.exists(cached):
        download_url_to_file(url, cached, None, progress=progress)
    return safe_torch_load(cached, map_location=map_location)


def patch_checkpoint_loader() -> None:
    """Every mmengine checkpoint scheme loads through the safe loader.

    The local scheme is re-registered with :func:`_load_local`; the URL
    schemes download with torch's downloader and load with
    :func:`_load_url`; the others (``s3://``/petrel, ``pavi://``) call
    ``torch.load`` inside ``mmengine.runner.checkpoint``, which gets a
    ``torch`` whose ``load`` is
    :func:`~mme_plugin.engine.safe_load.safe_torch_load`.
    """
    import mmengine.runner.checkpoint as ckpt_mod
    ckpt_mod.CheckpointLoader.register_scheme(
        prefixes='', force=True)(_load_local)
    ckpt_mod.load_url = _load_url
    if not isinstance(ckpt_mod.torch, _SafeTorchProxy):
        ckpt_mod.torch = _SafeTorchProxy()


def _init_dist_pytorch_cpu_aware(backend: str = 'nccl',
                                 init_backend: str = 'torch',
                                 **kwargs: Any) -> None:
    """mmengine's pytorch launcher init, falling back to gloo without CUDA
    only if ``MME_ALLOW_CPU_DIST=1`` (else
    :class:`~mme_plugin.utils.cuda_setup.NoCudaError` naming the fix)."""
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


_ORIG: dict = {}


def patch_cpu_distributed() -> None:
    """Make mmengine's ``pytorch`` launcher and DDP wrapper work on CPU."""
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


def patch_checkpoint_safety() -> None:
    """Atomic checkpoint writes, delete-after-save, resume from the newest
    checkpoint that loads (:mod:`mme_plugin.engine.safe_checkpoint`)."""
    from mme_plugin.engine.safe_checkpoint import patch_all
    patch_all()


def patch_checkpoint_fit() -> None:
    """Refuse checkpoints that do not fit the model
    (:mod:`mme_plugin.engine.checkpoint_fit`)."""
    from mme_plugin.engine.checkpoint_fit import patch_runner
    patch_runner()


def patch_workdir_lock() -> None:
    """One training run per work dir
    (:mod:`mme_plugin.engine.workdir_lock`)."""
    from mme_plugin.engine.workdir_lock import patch_runner
    patch_runner()


def patch_resource_checks() -> None:
    """Open-file limit and ``/dev/shm`` checks when training starts
    (:mod:`mme_plugin.utils.resources`)."""
    from mme_plugin.utils.resources import patch_runner
    patch_runner()


def apply_all() -> None:
    """Apply every shim (idempotent)."""
    patch_missing_drn()
    patch_checkpoint_loader()
    patch_cpu_distributed()
    patch_checkpoint_safety()
    patch_checkpoint_fit()
    patch_workdir_lock()
    patch_resource_checks()
