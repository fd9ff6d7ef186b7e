"""HOG targets computed on the training device (the release's placement)."""
from typing import Optional

import torch
from torch import Tensor, nn

from mme_plugin.ops import (gather_tokens, hog_at_frame_points,
                            hog_at_points, l2_normalize_cells)
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
            point windows (about 5 MB per 224 x 224 frame of 784 points).
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
    def forward(self, frames: Tensor, points: Tensor, patch_size: int,
                token_idx: Optional[Tensor] = None) -> Tensor:
        """Compute the per-token targets.

        Args:
            frames (Tensor): ``[B, N, S, H, W, 3]`` uint8 frames (N tubes, S
                steps).
            points (Tensor): ``[B, N, S, gh, gw, 2]`` positions (x, y).
            patch_size (int): Spatial patch size of the ViT; each token
                holds ``k x k`` points with ``k = gh / (H / patch_size)``.
            token_idx (Tensor, optional): ``[B, M]`` int64 tokens to compute
                (the masked ones: the loss reads no other). Defaults to
                None: every token.

        Returns:
            Tensor: ``[B, N * H/p * W/p, S * k * k * D]`` (``[B, M, ...]``
            with ``token_idx``) in the ViT's token order, laid out ``(step,
            row, col, feature)`` like :class:`BuildMMETargets`.
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
            if token_idx is None:
                hog = hog_at_points(frames.flatten(0, 2),
                                    points.flatten(0, 2).float(),
                                    self.nbins, self.cell_size,
                                    self.channels, self.chunk)
                d = hog.shape[-1]
                hog = hog.reshape(b, n, s, gh, gw, d).permute(0, 1, 3, 4, 2,
                                                              5)
                hog = grid_to_tokens(hog, k, axis=1)  # b, tokens, k, k, s, d
            else:
                hog = self._selected(frames, points, token_idx, k,
                                     hp * wp)
                d = hog.shape[-1]
        if self.norm == 'l2':
            hog = l2_normalize_cells(hog, self.nbins, self.eps)
        return hog.permute(0, 1, 4, 2, 3, 5).reshape(b, hog.shape[1],
                                                      s * k * k * d)

    def _selected(self, frames: Tensor, points: Tensor, token_idx: Tensor,
                  k: int, per_tube: int) -> Tensor:
        """``[B, M, k, k, S, D]`` histograms of the tokens ``token_idx``,
        whole samples per pass (about ``chunk`` frames)."""
        b, n, s = frames.shape[:3]
        # [B, tokens, k, k, S, 2] -> the selected tokens' points
        pts = grid_to_tokens(points.permute(0, 1, 3, 4, 2, 5), k, axis=1)
        pts = gather_tokens(pts.float(), token_idx.to(points.device))
        m = pts.shape[1]
        # frame of each point within its sample: tube * S + step
        tube = torch.div(token_idx.to(frames.device), per_tube,
                         rounding_mode='floor')
        steps = torch.arange(s, device=frames.device)
        fidx = (tube.view(b, m, 1, 1, 1) * s + steps).expand(b, m, k, k, s)
        per_pass = max(1, (self.chunk or b * n * s) // (n * s))
        out = []
        for i in range(0, b, per_pass):
            j = min(b, i + per_pass)
            local = fidx[i:j] + (torch.arange(
                j - i, device=frames.device) * (n * s)).view(-1, 1, 1, 1, 1)
            out.append(hog_at_frame_points(
                frames[i:j].flatten(0, 2), pts[i:j].reshape(-1, 2),
                local.reshape(-1), self.nbins, self.cell_size,
                self.channels))
        hog = torch.cat(out)
        return hog.reshape(b, m, k, k, s, hog.shape[-1])

    def extra_repr(self) -> str:
        return (f'nbins={self.nbins}, cell_size={self.cell_size}, channels='
                f'{self.channels}, norm={self.norm}, eps={self.eps}')
