"""Collapse measures of an encoder: is its output input-independent?

A pretrained encoder whose probe sits at chance may have collapsed: its
output became (nearly) the same for every clip and token. Three measures,
each one number (or one number per block):

* ``constant_share``: ``||mu|| / sqrt(mean_i ||f_i||^2)`` of token features
  ``f_i`` (``[..., C]``, every leading index is one sample: clips x tokens),
  with ``mu`` the mean of ``f_i`` over all samples. It lies in ``[0, 1]``:
  0 when the features have no constant part (zero mean over clips and
  tokens), 1 when every clip and token has the same feature (fully
  input-independent). Its square is the fraction of the features' mean
  squared norm that the constant vector explains
  (``||mu||^2 = mean ||f||^2 - total variance``). For zero-mean isotropic
  noise on ``n`` samples it is about ``1 / sqrt(n)``; for a constant ``c``
  plus noise of RMS norm ``s`` it is ``||c|| / sqrt(||c||^2 + s^2)``.
* ``participation_ratio``: of the clips' pooled ``[N, C]`` features
  (:func:`~mme_plugin.evaluation.feature_spread`): ``(sum l)^2 / sum l^2``
  of the eigenvalues ``l`` of their covariance across clips, the number of
  directions they vary along (1 = one direction, up to ``min(C, N - 1)`` for
  isotropic variation, 0 when they do not vary at all). It is
  scale-invariant: a constant plus tiny isotropic noise has a high ratio and
  a constant share near 1, so the share is the measure of the constant part
  and the ratio the measure of how many directions the rest uses.
* ``sv_ratio``: per block, the largest ``top / median`` singular value ratio
  over the block's 2-D weight matrices (attention qkv and projection, MLP
  layers), from ``torch.linalg.svdvals``. A trunc-normal(0.02) initialised
  128 x 128 matrix is about 2; a matrix that grew one dominant direction is
  far larger (the synthetic benchmark's MME encoders reached a block-0
  attention projection top singular value of 1.14 against a median of 0.18).
  An all-zero matrix gives 0.

An encoder is flagged ``collapsed`` when ``constant_share > share_max``
(default :data:`SHARE_MAX` = 0.9: the constant carries over 81 % of the mean
squared norm) or ``participation_ratio < pr_min`` (default :data:`PR_MIN` =
1.5: the clips' features vary along about one direction at most).
"""
from typing import Dict, Iterable, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .feature_spread import feature_spread

__all__ = [
    'SHARE_MAX', 'PR_MIN', 'ConstantShareMeter', 'constant_share',
    'block_sv_ratios', 'collapse_measures', 'is_collapsed'
]

#: ``constant_share`` above which an encoder counts as collapsed.
SHARE_MAX = 0.9
#: ``participation_ratio`` below which an encoder counts as collapsed.
PR_MIN = 1.5


class ConstantShareMeter:
    """Streaming :func:`constant_share`: feed token features batch by batch
    (e.g. from a forward hook over a whole dataset) without keeping them.

    Sums are kept in float64 on the features' device; :attr:`value` copies
    one number to the host.
    """

    def __init__(self) -> None:
        self.total: Optional[Tensor] = None
        self.sq = 0.0
        self.count = 0

    def update(self, feats: Tensor) -> None:
        """Add ``[..., C]`` features (every leading index is one sample).

        Returns None, so ``lambda m, i, o: meter.update(o)`` can be a
        forward hook (a hook returning a value replaces the output).

        Args:
            feats (Tensor): Token or pooled features.
        """
        f = feats.detach().reshape(-1, feats.shape[-1]).double()
        s = f.sum(0)
        if self.total is not None and self.total.shape != s.shape:
            raise ValueError(f'ConstantShareMeter: features of {s.shape[0]} '
                             f'channels after {self.total.shape[0]}; use one '
                             'meter per encoder')
        self.total = s if self.total is None else self.total + s
        self.sq = self.sq + f.pow(2).sum()
        self.count += f.shape[0]

    @property
    def value(self) -> float:
        """``||mean f|| / sqrt(mean ||f||^2)``; 0 for all-zero features."""
        if self.total is None:
            raise ValueError('ConstantShareMeter: no features were added')
        mean = self.total / self.count
        rms = (torch.as_tensor(self.sq) / self.count).sqrt()
        return float(mean.norm() / rms.clamp(min=1e-300))


def constant_share(feats: Tensor) -> float:
    """The input-independent share of ``[..., C]`` features (see the module
    docstring): 0 = no constant part, 1 = the same for every sample.

    Args:
        feats (Tensor): ``[..., C]`` features; every leading index is one
            sample (e.g. ``[clips, tokens, C]``).

    Returns:
        float: ``||mean f|| / sqrt(mean ||f||^2)`` in ``[0, 1]``.
    """
    meter = ConstantShareMeter()
    meter.update(feats)
    return meter.value


def _matrices(block: Union[nn.Module, Sequence[Tensor]]) -> List[Tensor]:
    if isinstance(block, nn.Module):
        return [p for n, p in block.named_parameters()
                if p.ndim == 2 and n.endswith('weight')]
    return [w for w in block if w.ndim == 2]


@torch.no_grad()
def block_sv_ratios(blocks: Iterable[Union[nn.Module, Sequence[Tensor]]]
                    ) -> List[float]:
    """Per block, the largest ``top / median`` singular value ratio of its
    2-D weight matrices.

    The singular values are computed on the weights' device (float32 at
    least), and all ratios are copied to the host at once.

    Args:
        blocks (Iterable[nn.Module | Sequence[Tensor]]): Transformer blocks
            (their 2-D ``*weight`` parameters are used) or lists of weight
            matrices.

    Returns:
        list[float]: One ratio per block (at most 1e12, for a median of
        0); 0 for a block whose matrices are all zero or that has none.
    """
    ratios = []
    for block in blocks:
        best = None
        for w in _matrices(block):
            sv = torch.linalg.svdvals(w.detach().float())
            # capped at 1e12 (a rank-deficient matrix has median 0)
            floor = torch.maximum(sv.median(), sv[0] * 1e-12)
            r = sv[0] / floor.clamp(min=1e-30)
            best = r if best is None else torch.maximum(best, r)
        ratios.append(best if best is not None else torch.zeros(()))
    if not ratios:
        return []
    return [float(r) for r in torch.stack([r.cpu() for r in ratios])]


def is_collapsed(share: float, pr: float, share_max: float = SHARE_MAX,
                 pr_min: float = PR_MIN) -> bool:
    """Whether the measures flag a collapsed encoder.

    Args:
        share (float): :func:`constant_share`.
        pr (float): Participation ratio across clips.
        share_max (float): Defaults to :data:`SHARE_MAX`.
        pr_min (float): Defaults to :data:`PR_MIN`.

    Returns:
        bool: ``share > share_max or pr < pr_min``.
    """
    return share > share_max or pr < pr_min


def collapse_measures(features: Tensor,
                      blocks: Iterable = (),
                      tokens: Optional[Tensor] = None,
                      share_max: float = SHARE_MAX,
                      pr_min: float = PR_MIN) -> Dict:
    """Constant share, participation ratio, per-block singular value ratios
    and the collapse flag of an encoder's output (module docstring).

    Args:
        features (Tensor): ``[N, C]`` pooled features of N >= 2 clips, or
            ``[N, T, C]`` token features (pooled here by the mean over T).
        blocks (Iterable): The encoder's blocks for :func:`block_sv_ratios`;
            empty: no ``sv_ratio``. Defaults to ().
        tokens (Tensor, optional): ``[..., C]`` features for the constant
            share (e.g. the last block's tokens); default: ``features``.
        share_max (float): Defaults to :data:`SHARE_MAX`.
        pr_min (float): Defaults to :data:`PR_MIN`.

    Returns:
        dict: ``constant_share`` (float), ``participation_ratio`` (float),
        ``sv_ratio`` (list[float], one per block) and ``collapsed`` (bool).

    Raises:
        ValueError: ``features`` is not ``[N >= 2, C]`` or ``[N >= 2, T,
            C]``.
    """
    if features.ndim not in (2, 3) or features.shape[0] < 2:
        raise ValueError('collapse_measures needs [N >= 2, C] or [N >= 2, T, '
                         f'C] features, got {tuple(features.shape)}')
    pooled = features.mean(1) if features.ndim == 3 else features
    share = constant_share(features if tokens is None else tokens)
    pr = feature_spread(pooled)['participation_ratio']
    return dict(constant_share=share, participation_ratio=pr,
                sv_ratio=block_sv_ratios(blocks),
                collapsed=is_collapsed(share, pr, share_max, pr_min))
