"""Small, documented shims for the OpenMMLab stack this plugin is pinned to.

The one home of every patch this project applies to mmengine / mmaction /
torch. Imported first by :mod:`mme_plugin`, which calls :func:`apply_all`.
Every shim is idempotent, fixes exactly one known breakage listed in
``docs/stack_notes.md`` and is covered by a test that fails without it.
One module per shim, applied in this order:

1. :mod:`.missing_drn` (:func:`patch_missing_drn`) - placeholder modules
   for the ``drn`` localizer the mmaction2 1.2.0 wheel lacks, so
   ``import mmaction.models`` works.
2. :mod:`.checkpoint_loader` (:func:`patch_checkpoint_loader`) - every
   checkpoint scheme (local and remote) loads with the restricted unpickler
   of :mod:`mme_plugin.engine.safe_load` (torch >= 2.6 rejected mmengine's
   own checkpoints; a remote one could run code).
3. :mod:`.cpu_distributed` (:func:`patch_cpu_distributed`) - the
   ``pytorch`` launcher calls the CUDA guard of
   :mod:`mme_plugin.utils.cuda_setup`, and uses gloo and CPU DDP only with
   ``MME_ALLOW_CPU_DIST=1``.
4. :mod:`.checkpoint_safety` (:func:`patch_checkpoint_safety`) - atomic
   checkpoint writes, delete-after-save, resume from the newest checkpoint
   that loads (:mod:`mme_plugin.engine.safe_checkpoint`).
5. :mod:`.checkpoint_fit` (:func:`patch_checkpoint_fit`) - refuse
   checkpoints that do not fit the model
   (:mod:`mme_plugin.engine.checkpoint_fit`).
6. :mod:`.workdir_lock` (:func:`patch_workdir_lock`) - one training run
   per work dir (:mod:`mme_plugin.engine.workdir_lock`).
7. :mod:`.resource_checks` (:func:`patch_resource_checks`) - open-file
   limit and ``/dev/shm`` checks when training starts; no
   ``prefetch_factor`` with ``num_workers=0``
   (:mod:`mme_plugin.utils.resources`).
8. :mod:`.amp_auto` (:func:`patch_amp_auto`) - ``AmpOptimWrapper`` resolves
   the configs' ``dtype='auto'`` / ``loss_scale='auto'`` itself, so stock
   entry points (``mim train``, ``Runner.from_cfg``) work, not only
   ``tools/train.py``.

A new shim gets its own module here, a line above, a call in
:func:`apply_all`, a test and an entry in ``docs/stack_notes.md``. Where the
replacement code is an engine component, it stays under
:mod:`mme_plugin.engine` and the compat module only installs it.
"""
from .amp_auto import patch_amp_auto
from .checkpoint_fit import patch_checkpoint_fit
from .checkpoint_loader import (_load_local, _load_url, _SafeTorchProxy,
                                patch_checkpoint_loader)
from .checkpoint_safety import patch_checkpoint_safety
from .cpu_distributed import (_ORIG, _init_dist_pytorch_cpu_aware,
                              patch_cpu_distributed)
from .missing_drn import patch_missing_drn
from .resource_checks import patch_resource_checks
from .workdir_lock import patch_workdir_lock

__all__ = [
    'patch_missing_drn', 'patch_checkpoint_loader', 'patch_cpu_distributed',
    'patch_checkpoint_safety', 'patch_checkpoint_fit', 'patch_workdir_lock',
    'patch_resource_checks', 'patch_amp_auto', 'apply_all'
]


def apply_all() -> None:
    """Apply every shim, in the order listed above (idempotent)."""
    patch_missing_drn()
    patch_checkpoint_loader()
    patch_cpu_distributed()
    patch_checkpoint_safety()
    patch_checkpoint_fit()
    patch_workdir_lock()
    patch_resource_checks()
    patch_amp_auto()
