"""Mixed-precision policy of the AMP recipes.

* :func:`select_amp_dtype`: bf16 where the GPU supports it, else fp16 with a
  dynamic loss scale. Under fp16 autocast without loss scaling most
  gradients of a ViT-B MME step underflow to zero (measured: 166 of 185
  parameter tensors on CPU at batch 2); bf16 has fp32's exponent range, so
  it needs no scaler and matched fp32 (``tests/test_amp.py``).
* :func:`resolve_amp_dtype`: turns ``dtype='auto'`` / ``loss_scale='auto'``
  of an ``AmpOptimWrapper`` config into that choice and returns the log line.
* :func:`amp_fallback_without_accelerator`: fp32 ``OptimWrapper`` on a CPU.
"""
import warnings
from typing import Optional, Tuple

from mmengine.config import Config

__all__ = [
    'amp_fallback_without_accelerator', 'select_amp_dtype',
    'resolve_amp_dtype'
]

# Keys of AmpOptimWrapper that OptimWrapper does not take.
_AMP_ONLY = ('loss_scale', 'dtype', 'use_fsdp')
_AMP_TYPES = ('AmpOptimWrapper', 'mmengine.AmpOptimWrapper')
#: ``loss_scale`` that disables the GradScaler (bf16 needs none; a disabled
#: scaler also saves its per-step overflow check, a host sync).
NO_LOSS_SCALE = dict(enabled=False)


def select_amp_dtype(bf16_supported: Optional[bool] = None
                     ) -> Tuple[str, object, str]:
    """The autocast dtype and loss scale for this machine's GPU.

    Args:
        bf16_supported (bool, optional): Override of
            ``torch.cuda.is_bf16_supported()`` (tests). Defaults to None:
            ask the device.

    Returns:
        tuple: ``(dtype, loss_scale, reason)``: ``('bfloat16',
        {'enabled': False}, ...)`` on GPUs with bf16 (Ampere and later),
        ``('float16', 'dynamic', ...)`` otherwise (V100, T4).
    """
    if bf16_supported is None:
        import torch
        bf16_supported = bool(torch.cuda.is_available()
                              and torch.cuda.is_bf16_supported())
    if bf16_supported:
        return ('bfloat16', dict(NO_LOSS_SCALE),
                'the GPU supports bf16 (fp32 range: no loss scaling, no '
                'gradient underflow)')
    return ('float16', 'dynamic',
            'the GPU has no bf16: fp16 with a dynamic loss scale (the '
            'scaler skips overflowing steps; without it most fp16 '
            'gradients underflow to 0)')


def resolve_amp_dtype(cfg: Config,
                      bf16_supported: Optional[bool] = None
                      ) -> Optional[str]:
    """Resolve ``dtype='auto'`` / ``loss_scale='auto'`` of an AMP config.

    ``dtype='auto'`` becomes :func:`select_amp_dtype`'s choice;
    ``loss_scale='auto'`` becomes no scaling under bf16 and ``'dynamic'``
    under fp16 (also with an explicit dtype). An explicit fp16 without a
    loss scale is refused: its gradients underflow.

    Args:
        cfg (Config): The full config; ``cfg.optim_wrapper`` is edited in
            place.
        bf16_supported (bool, optional): See :func:`select_amp_dtype`.

    Returns:
        str or None: The log line naming the precision and why (None if the
        config has no ``AmpOptimWrapper``).

    Raises:
        ValueError: ``dtype='float16'`` with ``loss_scale`` disabled.
    """
    wrapper = cfg.get('optim_wrapper')
    if not wrapper or wrapper.get('type') not in _AMP_TYPES:
        return None
    dtype = wrapper.get('dtype', None)
    scale = wrapper.get('loss_scale', 'dynamic')
    if dtype == 'auto':
        dtype, auto_scale, why = select_amp_dtype(bf16_supported)
        if scale == 'auto':
            scale = auto_scale
    else:
        why = 'set in the config (optim_wrapper.dtype)'
        if dtype is None:
            dtype = 'float16'  # torch's default autocast dtype on CUDA
            why = ('no optim_wrapper.dtype: torch autocast defaults to '
                   "fp16 (set dtype='auto' for bf16 where supported)")
        if scale == 'auto':
            scale = 'dynamic' if dtype == 'float16' else dict(NO_LOSS_SCALE)
    if dtype == 'float16' and isinstance(scale, dict) and \
            scale.get('enabled') is False:
        raise ValueError(
            "optim_wrapper: dtype='float16' with the loss scaler disabled "
            "lets most gradients underflow to 0; use loss_scale='dynamic' "
            "(or dtype='auto')")
    wrapper.dtype = dtype
    wrapper.loss_scale = scale
    scaled = 'no loss scaling' if isinstance(scale, dict) and \
        scale.get('enabled') is False else f'loss scale {scale}'
    return f'Mixed precision: {dtype} autocast, {scaled}: {why}.'


def amp_fallback_without_accelerator(cfg: Config) -> bool:
    """Swap ``AmpOptimWrapper`` for the fp32 ``OptimWrapper`` on a CPU.

    mmengine's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU/MUSA device, so an
    AMP recipe (every ViT-B recipe here) cannot even start on a laptop or
    in CI. Without an accelerator this keeps the recipe as it is (optimizer,
    constructor, gradient clipping, accumulation) and trains in fp32, with a
    warning; on an accelerator nothing changes (see
    :func:`resolve_amp_dtype` for ``dtype='auto'``).

    Args:
        cfg (Config): The full config; ``cfg.optim_wrapper`` is edited in
            place.

    Returns:
        bool: Whether the config was changed.
    """
    from mmengine.device import get_device
    wrapper = cfg.get('optim_wrapper')
    if not wrapper or wrapper.get('type') not in _AMP_TYPES:
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
