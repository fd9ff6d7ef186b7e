"""Pixel targets (VideoMAE), for comparison and combination."""
from typing import List, Optional, Tuple

from torch import Tensor

from mme_plugin.ops.token_layout import grid_to_tokens
from mme_plugin.registry import MODELS

from .base import MMETarget

__all__ = ['PixelTarget', 'pixel_targets']


def pixel_targets(video: Tensor, patch_size: int, tubelet_size: int,
                  normalize: bool = True, eps: float = 1e-6) -> Tensor:
    """VideoMAE pixel targets: per-token patches, optionally normalised.

    Args:
        video (Tensor): ``[B, C, T, H, W]`` clip in [0, 1] (un-normalised).
        patch_size (int): Spatial patch size.
        tubelet_size (int): Temporal patch size.
        normalize (bool): Normalise each token's pixels per channel to zero
            mean and unit variance (VideoMAE's ``norm_pix_loss``).
        eps (float): Added to the variance.

    Returns:
        Tensor: ``[B, N, tubelet * p * p * C]`` in ``(t, h, w)`` token order,
        each token laid out ``(frame, row, column, channel)``.
    """
    b, c, t, h, w = video.shape
    q = tubelet_size
    # [B, T/q, H, W, q, C]: tubes as the token time axis, pixels as the grid
    x = video.reshape(b, c, t // q, q, h, w).permute(0, 2, 4, 5, 3, 1)
    x = grid_to_tokens(x, patch_size, axis=1)  # [B, N, p, p, q, C]
    x = x.permute(0, 1, 4, 2, 3, 5)
    x = x.reshape(b, x.shape[1], q * patch_size * patch_size, c)
    if normalize:
        mean = x.mean(2, keepdim=True)
        var = x.var(2, unbiased=True, keepdim=True)
        x = (x - mean) / (var + eps).sqrt()
    return x.flatten(2)


@MODELS.register_module()
class PixelTarget(MMETarget):
    """The masked tubes' pixels (VideoMAE's target), computed from the
    input clip on its device. Size: tubelet x patch x patch x 3.

    Args:
        normalize (bool): Per-token, per-channel normalisation (VideoMAE's
            ``norm_pix_loss``). Defaults to True.
        weight (float): Loss weight. Defaults to 1.0.
        feat_dim (int, optional): Override of the derived size.
    """
    key = 'pixel'

    def __init__(self, normalize: bool = True, weight: float = 1.0,
                 feat_dim: Optional[int] = None) -> None:
        super().__init__(weight, feat_dim)
        self.normalize = normalize

    def derived_dim(self) -> int:
        """``tubelet * patch^2 * 3``."""
        return self.tubelet_size * self.patch_size**2 * 3

    def compute(self, model, inputs: Tensor, data_samples: List
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """Pixels of the un-normalised input; every token valid."""
        return pixel_targets(model.unnormalize(inputs), self.patch_size,
                             self.tubelet_size, self.normalize), None

    def extra_repr(self) -> str:
        return f'normalize={self.normalize}, ' + super().extra_repr()
