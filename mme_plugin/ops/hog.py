"""HOG cell histograms in PyTorch, batched and device-agnostic.

The same recipe as the NumPy reference in
:mod:`mme_plugin.ops.hog_numpy` (release spec 2.7 with the fixes
of section 8: no random Sobel bias, votes that always sum to the magnitude):
3 x 3 Sobel gradients scaled by 1/8 with replicated borders, unsigned
orientation in ``nbins`` bins over pi, the magnitude shared linearly between
the two nearest bins, ``cell x cell`` average pooling centred on each pixel
(``out[y, x]`` averages rows ``y - cell//2 .. y + cell//2 - 1``), per colour
channel. The release computes its HOG on the GPU inside the training step
(``engine.py:80-103``); :func:`hog_at_points` does the same here, on any
device, for every tracked point of a batch of dense frames at once.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['hog_cell_maps', 'hog_at_points', 'l2_normalize_cells']

# ITU-R BT.601 luma, as cv2.COLOR_RGB2GRAY.
_GRAY = (0.299, 0.587, 0.114)


def hog_cell_maps(frames: Tensor, nbins: int = 9, cell: int = 8,
                  channels: str = 'rgb') -> Tensor:
    """Cell histograms centred on every pixel.

    Args:
        frames (Tensor): ``[B, H, W, 3]`` uint8 RGB frames (or float in
            [0, 255]).
        nbins (int): Orientation bins over 180 degrees. Defaults to 9.
        cell (int): Cell size in pixels. Defaults to 8.
        channels (str): ``'rgb'`` (per colour channel) or ``'gray'``.
            Defaults to ``'rgb'``.

    Returns:
        Tensor: ``[B, C * nbins, H, W]`` float32 (C = 3 or 1), channel-major
        (``c * nbins + bin``).
    """
    if channels not in ('rgb', 'gray'):
        raise ValueError(f"channels must be 'rgb' or 'gray': {channels}")
    x = frames.permute(0, 3, 1, 2).float()
    if channels == 'gray':
        w = x.new_tensor(_GRAY).view(1, 3, 1, 1)
        x = (x * w).sum(1, keepdim=True).round()
    x = x / 255.0
    b, c, h, w_ = x.shape
    x = x.reshape(b * c, 1, h, w_)
    sobel = x.new_tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]]) / 8
    kernel = torch.stack([sobel, sobel.t()]).unsqueeze(1)  # [2, 1, 3, 3]
    grad = F.conv2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), kernel)
    gx, gy = grad[:, 0], grad[:, 1]
    mag = torch.sqrt(gx * gx + gy * gy)
    ang = torch.remainder(torch.atan2(gy, gx), math.pi)
    pos = ang / (math.pi / nbins)
    lo = torch.floor(pos)
    frac = pos - lo
    lo = lo.long() % nbins
    hi = (lo + 1) % nbins
    votes = x.new_zeros(b * c, nbins, h, w_)
    votes.scatter_(1, lo.unsqueeze(1), (mag * (1 - frac)).unsqueeze(1))
    votes.scatter_add_(1, hi.unsqueeze(1), (mag * frac).unsqueeze(1))
    half = cell // 2
    votes = F.pad(votes, (half, cell - half - 1, half, cell - half - 1))
    # Separable box (8 + 8 reads per output instead of 64).
    maps = F.avg_pool2d(F.avg_pool2d(votes, (cell, 1), stride=1), (1, cell),
                        stride=1)
    return maps.reshape(b, c * nbins, h, w_)


def l2_normalize_cells(hist: Tensor, nbins: int, eps: float) -> Tensor:
    """L2-normalize each group of ``nbins`` values of the last axis.

    Args:
        hist (Tensor): ``[..., C * nbins]`` histograms.
        nbins (int): Bins per group.
        eps (float): Added to the norm.

    Returns:
        Tensor: Same shape.
    """
    h = hist.unflatten(-1, (-1, nbins))
    h = h / (h.norm(dim=-1, keepdim=True) + eps)
    return h.flatten(-2)


def hog_at_points(frames: Tensor,
                  points: Tensor,
                  nbins: int = 9,
                  cell: int = 8,
                  channels: str = 'rgb',
                  chunk: Optional[int] = 64) -> Tensor:
    """HOG cell histograms sampled bilinearly at sub-pixel points.

    Equals :func:`~mme_plugin.datasets.transforms.trajectory.sample_bilinear`
    of the cell-histogram map (positions clamped to the frame).

    Args:
        frames (Tensor): ``[B, H, W, 3]`` uint8 RGB frames.
        points (Tensor): ``[B, ..., 2]`` positions (x, y) in pixels, one set
            per frame.
        nbins (int): Orientation bins. Defaults to 9.
        cell (int): Cell size. Defaults to 8.
        channels (str): ``'rgb'`` or ``'gray'``. Defaults to ``'rgb'``.
        chunk (int, optional): Frames per pass (bounds the memory of the
            per-pixel maps: ``chunk x C x nbins x H x W`` floats). None: all
            at once. Defaults to 64.

    Returns:
        Tensor: ``[B, ..., C * nbins]`` float32 on the frames' device.
    """
    b, h, w = frames.shape[:3]
    if points.shape[0] != b or points.shape[-1] != 2:
        raise ValueError(f'points {tuple(points.shape)} do not match frames '
                         f'{tuple(frames.shape)}: expected [B, ..., 2]')
    inner = points.shape[1:-1]
    pts = points.reshape(b, 1, -1, 2).to(frames.device, torch.float32)
    # Normalised coordinates for align_corners=True: -1 and 1 are the centres
    # of the first and last pixels; 'border' padding clamps like the
    # reference.
    scale = pts.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)])
    grid = pts * scale - 1
    step = b if not chunk else chunk
    out = []
    for s in range(0, b, step):
        maps = hog_cell_maps(frames[s:s + step], nbins, cell, channels)
        out.append(F.grid_sample(maps, grid[s:s + step], mode='bilinear',
                                 padding_mode='border', align_corners=True))
    res = torch.cat(out)[:, :, 0]  # [B, D, P]
    return res.transpose(1, 2).reshape(b, *inner, res.shape[1])
