"""HOG targets computed on the training device (the release's placement)."""
from typing import Optional

import torch
from torch import Tensor, nn

from mme_plugin.ops import hog_at_points, l2_normalize_cells
from mme_plugin.ops.token_layout import grid_to_tokens
from mme_plugin.registry import MODELS

__all__ = ['PointHOG']


@MODELS.register_module()
class PointHOG(nn.Module):
    """Per-token HOG targets from frames and points packed by the pipeline.

    The counterpart of :class:`~mme_plugin.datasets.transforms.ComputeHOG`
    followed by :class:`~mme_plugin.datasets.transforms.BuildMMETargets` for
    pipelines that end with
    :class:`~mme_plugin.datasets.transforms.PrepareHOGInputs`: the same
    histograms (``tests/test_hog.py`` checks they agree), computed batched on
    the device of the model. Set it as the hog target's ``device_hog=dict(
    type='PointHOG', ...)`` (:class:`HOGTarget`); its settings replace
    ``ComputeHOG``'s.

    Args:
        nbins (int): Orientation bins. Defaults to 9.
        cell_size (int): Cell size in pixels. Defaults to 8.
        channels (str): ``'rgb'`` or ``'gray'``. Defaults to ``'rgb'``.
        norm (str): ``'l2'`` (per cell and channel) or ``'none'``.
            Defaults to ``'l2'``.
        eps (float): L2 epsilon. Defaults to 0.02.
        chunk (int, optional): Frames per pass; bounds the memory of the
            per-pixel maps (64 frames x 27 x 224 x 224 floats = 350 MB).
            Defaults to 64.
    """

    def __init__(self,
                 nbins: int = 9,
                 cell_size: int = 8,
                 channels: str = 'rgb',
                 norm: str = 'l2',
                 eps: float = 0.02,
                 chunk: Optional[int] = 64) -> None:
        super().__init__()
        if channels not in ('rgb', 'gray') or norm not in ('l2', 'none'):
            raise ValueError('channels must be rgb|gray and norm l2|none')
        self.nbins = nbins
        self.cell_size = cell_size
        self.channels = channels
        self.norm = norm
        self.eps = eps
        self.chunk = chunk

    @torch.no_grad()
    def forward(self, frames: Tensor, points: Tensor,
                patch_size: int) -> Tensor:
        """Compute the per-token targets.

        Args:
            frames (Tensor): ``[B, N, S, H, W, 3]`` uint8 frames (N tubes, S
                steps).
            points (Tensor): ``[B, N, S, gh, gw, 2]`` positions (x, y).
            patch_size (int): Spatial patch size of the ViT; each token
                holds ``k x k`` points with ``k = gh / (H / patch_size)``.

        Returns:
            Tensor: ``[B, N * H/p * W/p, S * k * k * D]`` in the ViT's token
            order, laid out ``(step, row, col, feature)`` like
            :class:`BuildMMETargets`.
        """
        b, n, s, h, w = frames.shape[:5]
        gh, gw = points.shape[3:5]
        if points.shape[:3] != frames.shape[:3]:
            raise ValueError(f'hog_points {tuple(points.shape)} and '
                             f'hog_frames {tuple(frames.shape)} disagree')
        hp, wp = h // patch_size, w // patch_size
        if gh % hp or gw % wp or gh // hp != gw // wp:
            raise ValueError(f'point grid {gh}x{gw} does not tile into the '
                             f'{hp}x{wp} patches of {h}x{w} frames')
        k = gh // hp
        # Targets in float32 even inside the AMP step (fp16 Sobel gradients
        # of [0, 1] pixels would lose the small ones).
        with torch.autocast(device_type=frames.device.type, enabled=False):
            hog = hog_at_points(frames.flatten(0, 2),
                                points.flatten(0, 2).float(), self.nbins,
                                self.cell_size, self.channels, self.chunk)
        if self.norm == 'l2':
            hog = l2_normalize_cells(hog, self.nbins, self.eps)
        d = hog.shape[-1]
        hog = hog.reshape(b, n, s, gh, gw, d).permute(0, 1, 3, 4, 2, 5)
        hog = grid_to_tokens(hog, k, axis=1)  # b, tokens, k, k, s, d
        return hog.permute(0, 1, 4, 2, 3, 5).reshape(b, n * hp * wp,
                                                      s * k * k * d)

    def extra_repr(self) -> str:
        return (f'nbins={self.nbins}, cell_size={self.cell_size}, channels='
                f'{self.channels}, norm={self.norm}, eps={self.eps}')
