"""Shim: ``AmpOptimWrapper`` understands ``dtype='auto'`` / ``loss_scale='auto'``.

The shipped configs ask for ``dtype='auto', loss_scale='auto'``: bf16
without loss scaling where the GPU supports it, else fp16 with a dynamic
scale (:func:`mme_plugin.utils.amp.select_amp_dtype`). ``tools/train.py``
resolves this before building the runner and logs the choice. A stock
entry point (``mim train``, a bare ``Runner.from_cfg``) would hand the
string ``'auto'`` to mmengine's wrapper, which fails in
``getattr(torch, 'auto')``. This shim resolves it in the wrapper itself,
with the same rule and the same log line.
"""
from typing import Any

__all__ = ['patch_amp_auto']

_ORIG: dict = {}


def patch_amp_auto() -> None:
    """Wrap ``AmpOptimWrapper.__init__`` to resolve ``'auto'`` (idempotent).
    """
    from mmengine.config import ConfigDict
    from mmengine.logging import print_log
    from mmengine.optim import AmpOptimWrapper

    from mme_plugin.utils.amp import resolve_amp_dtype
    if 'init' in _ORIG:
        return
    orig = AmpOptimWrapper.__init__
    _ORIG['init'] = orig

    def __init__(self, loss_scale: Any = 'dynamic', dtype: Any = None,
                 *args: Any, **kwargs: Any) -> None:
        if dtype == 'auto' or loss_scale == 'auto':
            cfg = ConfigDict(optim_wrapper=dict(
                type='AmpOptimWrapper', dtype=dtype, loss_scale=loss_scale))
            note = resolve_amp_dtype(cfg)
            dtype = cfg.optim_wrapper.dtype
            loss_scale = cfg.optim_wrapper.loss_scale
            if isinstance(loss_scale, ConfigDict):
                loss_scale = loss_scale.to_dict()
            print_log(note, logger='current')
        orig(self, loss_scale, dtype, *args, **kwargs)

    AmpOptimWrapper.__init__ = __init__
