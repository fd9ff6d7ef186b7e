"""How much pooled features vary between clips: a collapse diagnostic.

A probe at chance has two readings: the features vary between clips but not
with the class, or they hardly vary at all (the encoder became nearly
input-independent, "collapse"). Two numbers tell them apart:

* ``relative_spread``: the per-dimension standard deviation across clips,
  averaged over dimensions and scaled by sqrt(C), over the mean feature
  norm. For features that are a constant vector plus clip-dependent noise it
  is about the noise's share of the norm; 0 for identical features.
* ``participation_ratio``: ``(sum λ)^2 / sum λ^2`` of the eigenvalues λ of
  the features' covariance across clips, the effective number of directions
  they vary along (1 for variation along one direction, C for isotropic
  variation; Gao, Trautmann et al., "A theory of multineuronal
  dimensionality, dynamics and measurement", 2017).
"""
from typing import Dict

import torch
from torch import Tensor

__all__ = ['feature_spread']


def feature_spread(feats: Tensor) -> Dict[str, float]:
    """Relative spread and participation ratio of ``[N, C]`` features.

    Args:
        feats (Tensor): ``[N, C]`` features of N clips (N >= 2).

    Returns:
        dict: ``relative_spread`` and ``participation_ratio`` (floats).
    """
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f'feature_spread needs [N >= 2, C] features, got '
                         f'{tuple(feats.shape)}')
    f = feats.detach().double()
    norm = f.norm(dim=1).mean()
    spread = f.std(0).mean() * f.shape[1]**0.5 / norm.clamp(min=1e-12)
    ev = torch.linalg.eigvalsh(torch.cov(f.T)).clamp(min=0)
    pr = ev.sum()**2 / (ev**2).sum().clamp(min=1e-300)
    return dict(relative_spread=float(spread), participation_ratio=float(pr))
