"""Token selection by index instead of by boolean mask.

Indexing with a boolean mask (``x[mask]``) has a data-dependent output
size, so on a GPU it waits for the device to count the True entries (a host
sync) and breaks a ``torch.compile`` graph. Tube masking hides the same
number of tokens in every sample, so the pipeline (:class:`TubeMasking`)
hands the model the sorted indices of the visible and of the masked tokens,
and every selection is a :func:`gather_tokens` with a fixed output size.
:func:`indices_from_mask` derives those indices from a boolean mask for
callers that only have the mask (one host sync, and a check that every
sample has the same count).
"""
from typing import Tuple

import torch
from torch import Tensor

__all__ = ['gather_tokens', 'indices_from_mask']


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """Tokens ``idx`` of every sample.

    Args:
        x (Tensor): ``[B, N, *F]`` per-token values (or ``[B, N]``).
        idx (Tensor): ``[B, M]`` int64 token indices.

    Returns:
        Tensor: ``[B, M, *F]``: ``out[b, m] = x[b, idx[b, m]]``.
    """
    if idx.dim() != 2 or idx.shape[0] != x.shape[0]:
        raise ValueError(f'token indices {tuple(idx.shape)} do not match '
                         f'values {tuple(x.shape)}: expected [B, M]')
    feats = x.shape[2:]
    index = idx.reshape(idx.shape + (1, ) * len(feats)).expand(
        idx.shape + feats)
    return torch.gather(x, 1, index)


def indices_from_mask(mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Sorted visible and masked token indices of a ``[B, N]`` bool mask.

    Args:
        mask (Tensor): ``[B, N]`` bool, True = masked.

    Returns:
        tuple[Tensor, Tensor]: ``[B, N_visible]`` and ``[B, N_masked]``
        int64, increasing within each sample.

    Raises:
        ValueError: If the samples do not mask the same number of tokens.
    """
    mask = mask.bool()
    counts = mask.sum(1)
    # One host sync: this path is for callers without pipeline indices.
    lo, hi = torch.stack([counts.min(), counts.max()]).tolist()
    if lo != hi:
        n = mask.shape[1]
        raise ValueError('every sample must have the same number of '
                         f'visible tokens (got {n - hi} to {n - lo} of {n}); '
                         'use tube masking (TubeMasking)')
    n = mask.shape[1]
    # A stable sort puts the visible (False) tokens first, each group in
    # increasing token order.
    order = torch.sort(mask.to(torch.uint8), dim=1, stable=True).indices
    return order[:, :n - lo], order[:, n - lo:]
