"""The ViT token layout, in one place.

The encoder numbers its tokens ``(t, h, w)``: row-major over tubes (temporal
patches), patch rows and patch columns. Every per-token target is built by
cutting a per-position array into ``k x k`` blocks that line up with the
patches and flattening the blocks in that order; :func:`grid_to_tokens`
does it for NumPy arrays and PyTorch tensors alike, so the pipeline's
targets (``BuildMMETargets``), the model's on-device HOG (``PointHOG``) and
the pixel targets (``pixel_targets``) cannot disagree on the order.
"""
from typing import Any

__all__ = ['grid_to_tokens']


def _permute(x: Any, axes) -> Any:
    """``np.transpose`` or ``Tensor.permute``."""
    if hasattr(x, 'permute'):
        return x.permute(*axes)
    return x.transpose(axes)


def grid_to_tokens(x: Any, k: int, axis: int = 0) -> Any:
    """Group a per-position array into tokens of ``k x k`` positions.

    Args:
        x: NumPy array or tensor ``[*B, N, gh, gw, *F]`` whose axis ``axis``
            is ``N`` (temporal token positions), followed by a ``gh x gw``
            grid of positions (points, cells or pixels), then features.
        k (int): Grid positions per patch side (``gh`` and ``gw`` must be
            multiples of it).
        axis (int): Index of the ``N`` axis (``len(B)``). Defaults to 0.

    Returns:
        ``[*B, N * (gh / k) * (gw / k), k, k, *F]``: tokens in the ViT's
        ``(t, h, w)`` order, each block's rows and columns next. Pure
        reshapes and one transpose: values are moved, never computed.
    """
    shape = tuple(x.shape)
    pre, (n, gh, gw), feats = shape[:axis], shape[axis:axis + 3], \
        shape[axis + 3:]
    if gh % k or gw % k:
        raise ValueError(f'a {gh} x {gw} grid does not tile into {k} x {k} '
                         'blocks: use a frame size that is a multiple of the '
                         'patch size')
    x = x.reshape(*pre, n, gh // k, k, gw // k, k, *feats)
    p = len(pre)
    axes = (list(range(p)) + [p, p + 1, p + 3, p + 2, p + 4] +
            list(range(p + 5, p + 5 + len(feats))))
    x = _permute(x, axes)
    return x.reshape(*pre, n * (gh // k) * (gw // k), k, k, *feats)
