"""HOG cell histograms in PyTorch, batched and device-agnostic.

The same recipe as the NumPy reference in
:mod:`mme_plugin.ops.hog_numpy` (release spec 2.7 with the fixes
of section 8: no random Sobel bias, votes that always sum to the magnitude):
3 x 3 Sobel gradients scaled by 1/8 with replicated borders, unsigned
orientation in ``nbins`` bins over pi, the magnitude shared linearly between
the two nearest bins, ``cell x cell`` average pooling centred on each pixel
(``out[y, x]`` averages rows ``y - cell//2 .. y + cell//2 - 1``, zeros
outside the frame), per colour channel. The release computes its HOG on the
GPU inside the training step (``engine.py:80-103``); :func:`hog_at_points`
does the same here, on any device.

Only the histograms at the points are computed (:func:`hog_at_frame_points`):
a cell histogram sampled bilinearly at ``(x, y)`` is a weighted sum of the
votes of the ``(cell + 1)^2`` pixels around the point, with separable
weights (the two overlapping boxes of each axis, weighted by the bilinear
fractions), so no per-pixel ``C * nbins`` map is built. Everything is
elementwise arithmetic, ``index_select`` and sums: no convolution or matrix
product (so no TF32 on a GPU, and the same numbers as on the CPU to float
rounding), no constant copied from the host, and no host sync.
:func:`hog_cell_maps` keeps the per-pixel maps for tests and comparison.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    'hog_cell_maps', 'hog_at_points', 'hog_at_frame_points',
    'l2_normalize_cells'
]

# ITU-R BT.601 luma, as cv2.COLOR_RGB2GRAY.
_GRAY = (0.299, 0.587, 0.114)


def _orientation(frames: Tensor, nbins: int,
                 channels: str) -> Tuple[Tensor, Tensor]:
    """Gradient magnitude and orientation position of every pixel.

    Args:
        frames (Tensor): ``[F, H, W, 3]`` uint8 RGB (or float in [0, 255]).
        nbins (int): Orientation bins over pi.
        channels (str): ``'rgb'`` or ``'gray'``.

    Returns:
        tuple[Tensor, Tensor]: ``[F, C, H, W]`` float32 magnitude and
        orientation in bin units (``[0, nbins]``).
    """
    if channels not in ('rgb', 'gray'):
        raise ValueError(f"channels must be 'rgb' or 'gray': {channels}")
    x = frames.permute(0, 3, 1, 2).float()
    if channels == 'gray':
        x = (x[:, 0:1] * _GRAY[0] + x[:, 1:2] * _GRAY[1] +
             x[:, 2:3] * _GRAY[2]).round()
    x = x / 255.0
    p = F.pad(x, (1, 1, 1, 1), mode='replicate')
    # Sobel / 8 as differences of shifted slices (cross-correlation, as
    # conv2d with [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8 and its
    # transpose).
    dx = p[..., 2:] - p[..., :-2]  # [F, C, H + 2, W]
    gx = (dx[..., :-2, :] + 2 * dx[..., 1:-1, :] + dx[..., 2:, :]) / 8
    dy = p[..., 2:, :] - p[..., :-2, :]  # [F, C, H, W + 2]
    gy = (dy[..., :-2] + 2 * dy[..., 1:-1] + dy[..., 2:]) / 8
    mag = torch.sqrt(gx * gx + gy * gy)
    ang = torch.remainder(torch.atan2(gy, gx), math.pi)
    return mag, ang / (math.pi / nbins)


def _split_votes(pos: Tensor, nbins: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Lower bin, upper bin and the upper bin's share of each vote."""
    lo = torch.floor(pos)
    frac = pos - lo
    lo = lo.long() % nbins
    return lo, (lo + 1) % nbins, frac


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
    mag, pos = _orientation(frames, nbins, channels)
    b, c, h, w = mag.shape
    mag, pos = mag.reshape(b * c, 1, h, w), pos.reshape(b * c, 1, h, w)
    lo, hi, frac = _split_votes(pos, nbins)
    votes = mag.new_zeros(b * c, nbins, h, w)
    votes.scatter_(1, lo, mag * (1 - frac))
    votes.scatter_add_(1, hi, mag * frac)
    half = cell // 2
    votes = F.pad(votes, (half, cell - half - 1, half, cell - half - 1))
    # Separable box (8 + 8 reads per output instead of 64).
    maps = F.avg_pool2d(F.avg_pool2d(votes, (cell, 1), stride=1), (1, cell),
                        stride=1)
    return maps.reshape(b, c * nbins, h, w)


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


def _axis_window(coord: Tensor, size: int, cell: int,
                 offsets: Tensor) -> Tuple[Tensor, Tensor]:
    """Pixel indices and weights along one axis of the window of a point.

    A cell map sampled bilinearly at ``coord`` (clamped to the frame, as
    ``grid_sample(padding_mode='border', align_corners=True)``) mixes the
    maps at ``i0 = floor(coord)`` (weight ``1 - f``) and ``i0 + 1``
    (weight ``f``); each averages the ``cell`` pixels from ``i - cell // 2``.
    Pixel ``i0 - cell // 2 + j`` (``j = 0 .. cell``) thus weighs ``((1 - f) *
    [j < cell] + f * [j >= 1]) / cell``, and 0 outside the frame (zero
    padding).

    Returns:
        tuple[Tensor, Tensor]: ``[Q, cell + 1]`` indices (clamped into the
        frame) and weights.
    """
    c = coord.clamp(0, size - 1)
    i0 = torch.floor(c)
    f = (c - i0).unsqueeze(1)
    idx = i0.long().unsqueeze(1) - cell // 2 + offsets
    wgt = ((1 - f) * (offsets < cell) + f * (offsets >= 1)) / cell
    wgt = wgt * ((idx >= 0) & (idx < size))
    return idx.clamp(0, size - 1), wgt


def hog_at_frame_points(frames: Tensor,
                        points: Tensor,
                        frame_idx: Tensor,
                        nbins: int = 9,
                        cell: int = 8,
                        channels: str = 'rgb') -> Tensor:
    """HOG cell histograms at sub-pixel points, each in its own frame.

    Equals :func:`hog_cell_maps` sampled bilinearly at the points
    (positions clamped to the frame), computed from the ``(cell + 1)^2``
    pixels around each point only.

    Args:
        frames (Tensor): ``[F, H, W, 3]`` uint8 RGB frames.
        points (Tensor): ``[Q, 2]`` positions (x, y) in pixels.
        frame_idx (Tensor): ``[Q]`` int64 frame of each point.
        nbins (int): Orientation bins. Defaults to 9.
        cell (int): Cell size. Defaults to 8.
        channels (str): ``'rgb'`` or ``'gray'``. Defaults to ``'rgb'``.

    Returns:
        Tensor: ``[Q, C * nbins]`` float32, channel-major.
    """
    h, w = frames.shape[1:3]
    mag, pos = _orientation(frames, nbins, channels)
    c = mag.shape[1]
    pts = points.to(frames.device, torch.float32)
    offsets = torch.arange(cell + 1, device=frames.device)
    cols, wx = _axis_window(pts[:, 0], w, cell, offsets)
    rows, wy = _axis_window(pts[:, 1], h, cell, offsets)
    q = pts.shape[0]
    pix = (frame_idx.to(frames.device).long().view(q, 1, 1) * (h * w) +
           rows.unsqueeze(2) * w + cols.unsqueeze(1)).reshape(-1)
    wgt = (wy.unsqueeze(2) * wx.unsqueeze(1)).reshape(1, q, -1)
    # [C, Q, (cell + 1)^2] magnitudes and orientations of the windows
    mag = mag.transpose(0, 1).reshape(c, -1).index_select(1, pix)
    pos = pos.transpose(0, 1).reshape(c, -1).index_select(1, pix)
    mag = mag.view(c, q, -1) * wgt
    # bins as float (exact small integers): no int64 copies of the windows
    lo = torch.floor(pos.view(c, q, -1))
    frac = pos.view(c, q, -1) - lo
    del pos
    lo = torch.remainder(lo, nbins)
    hi = torch.remainder(lo + 1, nbins)
    v_lo, v_hi = mag * (1 - frac), mag * frac
    del mag, frac
    zero = v_lo.new_zeros(())
    # One bin at a time: sums in a fixed order (no atomics), small temps.
    hist = torch.stack([
        (torch.where(lo == b, v_lo, zero) +
         torch.where(hi == b, v_hi, zero)).sum(-1) for b in range(nbins)
    ], -1)  # [C, Q, nbins]
    return hist.transpose(0, 1).reshape(q, c * nbins)


def hog_at_points(frames: Tensor,
                  points: Tensor,
                  nbins: int = 9,
                  cell: int = 8,
                  channels: str = 'rgb',
                  chunk: Optional[int] = 64) -> Tensor:
    """HOG cell histograms sampled bilinearly at sub-pixel points.

    Equals :func:`~mme_plugin.ops.tracking.sample_bilinear`
    of the cell-histogram map (positions clamped to the frame).

    Args:
        frames (Tensor): ``[B, H, W, 3]`` uint8 RGB frames.
        points (Tensor): ``[B, ..., 2]`` positions (x, y) in pixels, one set
            per frame.
        nbins (int): Orientation bins. Defaults to 9.
        cell (int): Cell size. Defaults to 8.
        channels (str): ``'rgb'`` or ``'gray'``. Defaults to ``'rgb'``.
        chunk (int, optional): Frames per pass (bounds the memory of the
            point windows). None: all at once. Defaults to 64.

    Returns:
        Tensor: ``[B, ..., C * nbins]`` float32 on the frames' device.
    """
    b = frames.shape[0]
    if points.shape[0] != b or points.shape[-1] != 2:
        raise ValueError(f'points {tuple(points.shape)} do not match frames '
                         f'{tuple(frames.shape)}: expected [B, ..., 2]')
    inner = points.shape[1:-1]
    pts = points.reshape(b, -1, 2)
    per = pts.shape[1]
    step = b if not chunk else chunk
    out = []
    for s in range(0, b, step):
        n = min(step, b - s)
        fidx = torch.arange(n, device=frames.device).repeat_interleave(per)
        out.append(hog_at_frame_points(frames[s:s + n],
                                       pts[s:s + n].reshape(-1, 2), fidx,
                                       nbins, cell, channels))
    res = torch.cat(out)
    return res.reshape(b, *inner, res.shape[-1])
