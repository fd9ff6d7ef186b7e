"""fp32 fallback for AMP recipes on machines without an accelerator."""
import warnings

from mmengine.config import Config

__all__ = ['amp_fallback_without_accelerator']

# Keys of AmpOptimWrapper that OptimWrapper does not take.
_AMP_ONLY = ('loss_scale', 'dtype', 'use_fsdp')


def amp_fallback_without_accelerator(cfg: Config) -> bool:
    """Swap ``AmpOptimWrapper`` for the fp32 ``OptimWrapper`` on a CPU.

    mmengine's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU/MUSA device, so an
    AMP recipe (every ViT-B recipe here) cannot even start on a laptop or
    in CI. Without an accelerator this keeps the recipe as it is (optimizer,
    constructor, gradient clipping, accumulation) and trains in fp32, with a
    warning; on an accelerator nothing changes.

    Args:
        cfg (Config): The full config; ``cfg.optim_wrapper`` is edited in
            place.

    Returns:
        bool: Whether the config was changed.
    """
    from mmengine.device import get_device
    wrapper = cfg.get('optim_wrapper')
    if not wrapper or wrapper.get('type') not in ('AmpOptimWrapper',
                                                  'mmengine.AmpOptimWrapper'):
        return False
    device = get_device()
    if device != 'cpu':
        return False
    wrapper.type = 'OptimWrapper'
    for key in _AMP_ONLY:
        wrapper.pop(key, None)
    warnings.warn(
        'No accelerator found: AmpOptimWrapper (mixed precision) needs one, '
        'so this run trains in fp32 with OptimWrapper (same optimizer and '
        'schedule). On a GPU the config is used as written.')
    return True
