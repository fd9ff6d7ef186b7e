"""Point tracking and trajectory reliability measures as batched tensor code.

The PyTorch twin of :mod:`.tracking` and of the checks of
:class:`~mme_plugin.datasets.transforms.CheckTrajectoryReliability`
(:mod:`.flow_reliability`): the same rules, written once for any device and
batched over a leading dimension ``M`` of tubes (clips x tubes flattened by
the caller). Nothing here leaves the device: no ``.item()``, no boolean-mask
indexing, no Python loops over points or pixels (only over the L steps of a
tube), so it can run on the training GPU or, on CPU tensors, in a data
worker.

Sub-pixel sampling matches :func:`~mme_plugin.ops.sample_bilinear_batch`
exactly in its rules: positions are clamped to ``[0, W - 1] x [0, H - 1]``
(border replication), the four corners are gathered and weighted by the
fractional parts; it is written with gathers, not ``grid_sample``. The NumPy
sampler computes the weights in float64, this one in the input's dtype
(float32 normally): tracked positions agree to about 1e-5 px
(``tests/test_targets_torch.py`` states the measured differences).

Parts that stay approximate: :func:`gray_blur_torch` (OpenCV's fixed-point
Gaussian blur rounds differently, +-1 grey level) and the warp of
:func:`cut_statistics_torch` (``cv2.remap`` quantizes positions to 1/32 px);
the shot-cut decision they feed is a fraction over most of the frame and
agrees on the known-answer cases (measured: warp-fail fractions within
1.4e-3 of OpenCV's).
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

__all__ = [
    'grid_points_torch', 'sample_bilinear_torch', 'sample_flow_at_torch',
    'inside_frame_torch', 'track_points_torch', 'fb_failures_torch',
    'gray_blur_torch', 'photo_failures_torch', 'cut_statistics_torch',
    'cut_pairs_torch', 'reliability_torch'
]

Scale = Union[Sequence[float], torch.Tensor]


def grid_points_torch(height: int, width: int, step: int = 8,
                      device: Optional[torch.device] = None) -> torch.Tensor:
    """Grid point coordinates ``[H // step, W // step, 2]`` (x, y), float32,
    as :func:`~mme_plugin.ops.grid_points`."""
    ys = step // 2 + step * torch.arange(height // step, device=device)
    xs = step // 2 + step * torch.arange(width // step, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([gx, gy], -1).float()


def sample_bilinear_torch(fields: torch.Tensor,
                          xy: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of ``fields[i]`` at ``xy[i]`` (border replication).

    Args:
        fields (torch.Tensor): ``[M, H, W, C]`` (any real dtype).
        xy (torch.Tensor): ``[M, ..., 2]`` float positions (x, y).

    Returns:
        torch.Tensor: ``[M, ..., C]`` in ``xy``'s dtype.
    """
    m, h, w, c = fields.shape
    x = xy[..., 0].clamp(0, w - 1)
    y = xy[..., 1].clamp(0, h - 1)
    x0f, y0f = torch.floor(x), torch.floor(y)
    x0, y0 = x0f.long(), y0f.long()
    x1 = (x0 + 1).clamp(max=w - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    wx = (x - x0f).unsqueeze(-1)
    wy = (y - y0f).unsqueeze(-1)
    flat = fields.reshape(m, h * w, c).to(xy.dtype)
    shape = x.shape

    def at(r, col):
        idx = (r * w + col).reshape(m, -1, 1).expand(-1, -1, c)
        return flat.gather(1, idx).reshape(*shape, c)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def _scale_xy(xy: torch.Tensor, sx: float, sy: float,
              shift: float = 0.0) -> torch.Tensor:
    """``(xy + shift) * (sx, sy) - shift`` with Python scalars (a tensor of
    the factors would be a host-to-device copy, which synchronizes)."""
    return torch.stack([(xy[..., 0] + shift) * sx - shift,
                        (xy[..., 1] + shift) * sy - shift], -1)


def sample_flow_at_torch(flows: torch.Tensor, pos: torch.Tensor,
                         size_wh: Tuple[int, int]) -> torch.Tensor:
    """Displacements of ``[M, h, w, 2]`` flows at frame positions
    ``[M, ..., 2]`` of a W x H frame, in frame pixels (reduced-resolution
    flows are sampled there, as :func:`~mme_plugin.ops.sample_flow_at`)."""
    fh, fw = flows.shape[1:3]
    if (fw, fh) == tuple(size_wh):
        return sample_bilinear_torch(flows, pos)
    sx, sy = fw / size_wh[0], fh / size_wh[1]
    return _scale_xy(sample_bilinear_torch(flows, _scale_xy(pos, sx, sy, 0.5)),
                     1 / sx, 1 / sy)


def inside_frame_torch(xy: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``[...]`` bool: the position lies in ``[0, w - 1] x [0, h - 1]``."""
    return ((xy[..., 0] >= 0) & (xy[..., 0] <= w - 1) & (xy[..., 1] >= 0)
            & (xy[..., 1] <= h - 1))


def track_points_torch(
        flows: torch.Tensor,
        start: torch.Tensor,
        size_wh: Optional[Tuple[int, int]] = None,
        release_compat: bool = False
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Track points through the flows of M tubes at once.

    The rules of ``ComputeTrajectories`` (:mod:`.tracking`): bilinear flow at
    real-valued positions, a point valid when every position ``p_0 .. p_L``
    is in the frame; under ``release_compat`` the release's tracker
    (nearest pixel at the clamped position, ``int()``-truncated flow,
    validity checked before each step only).

    Args:
        flows (torch.Tensor): ``[M, L, h, w, 2]`` flows (dx, dy).
        start (torch.Tensor): ``[..., 2]`` start positions (x, y) in frame
            pixels, shared by all tubes (:func:`grid_points_torch`).
        size_wh (tuple[int, int], optional): Frame (W, H) when the flows are
            at a reduced resolution. Defaults to the flows' size.
        release_compat (bool): The release's tracker; needs full-size flows.
            Defaults to False.

    Returns:
        tuple: positions ``[M, L + 1, ..., 2]``, validity ``[M, ...]`` (bool)
        and per-step displacements ``[M, L, ..., 2]`` (the position
        differences; under ``release_compat`` the flow the release records,
        see :func:`~mme_plugin.ops.track_points`).

    Raises:
        ValueError: ``release_compat`` with reduced-resolution flows.
    """
    m, num, fh, fw = flows.shape[:4]
    w, h = size_wh if size_wh is not None else (fw, fh)
    pos = start.to(device=flows.device, dtype=torch.float32).expand(
        m, *start.shape)
    if release_compat:
        if (fh, fw) != (h, w):
            raise ValueError('track_points_torch(release_compat=True) needs '
                             'full-size flows: use ComputeFlow(full_res=True)')
        valid = torch.ones(pos.shape[:-1], dtype=torch.bool,
                           device=pos.device)
        out, steps = [pos], []
        for t in range(num):
            valid = valid & inside_frame_torch(pos, h, w)
            pos = torch.stack([pos[..., 0].clamp(0, w - 1),
                               pos[..., 1].clamp(0, h - 1)], -1)
            ix, iy = pos[..., 0].long(), pos[..., 1].long()
            flat = flows[:, t].reshape(m, fh * fw, 2)
            idx = (iy * fw + ix).reshape(m, -1, 1).expand(-1, -1, 2)
            step = torch.trunc(flat.gather(1, idx)).reshape(pos.shape)
            pos = pos + step
            out.append(pos)
            steps.append(step)
        return torch.stack(out, 1), valid, torch.stack(steps, 1)
    out = [pos]
    for t in range(num):
        pos = pos + sample_flow_at_torch(flows[:, t], pos, (w, h))
        out.append(pos)
    positions = torch.stack(out, 1)
    valid = inside_frame_torch(positions, h, w).all(1)
    return positions, valid, positions[:, 1:] - positions[:, :-1]


def _mean_scale(scale_factor: Optional[Scale], m: int,
                like: torch.Tensor) -> torch.Tensor:
    """``[M]`` mean of each tube's (x, y) scale factor."""
    if scale_factor is None:
        return torch.ones(m, dtype=like.dtype, device=like.device)
    s = torch.as_tensor(scale_factor, dtype=like.dtype, device=like.device)
    return s.reshape(-1, 2).mean(-1).expand(m)


def fb_failures_torch(positions: torch.Tensor, flows_bwd: torch.Tensor,
                      size_wh: Optional[Tuple[int, int]] = None,
                      alpha: float = 0.01, beta: float = 0.5,
                      scale_factor: Optional[Scale] = None) -> torch.Tensor:
    """Sundaram et al.'s forward-backward test of every step.

    Args:
        positions (torch.Tensor): ``[M, L + 1, ..., 2]`` tracked positions.
        flows_bwd (torch.Tensor): ``[M, L, h, w, 2]`` backward flows
            (t + 1 -> t).
        size_wh (tuple[int, int], optional): Frame (W, H). Defaults to the
            flows' size.
        alpha (float): Relative tolerance. Defaults to 0.01.
        beta (float): Absolute tolerance, squared pixels of the decoded
            video (scaled by the mean ``scale_factor`` squared). Defaults to
            0.5.
        scale_factor: ``(2,)`` or ``[M, 2]`` resize factors (a tensor on
            the flows' device avoids a synchronizing copy). Defaults to 1.

    Returns:
        torch.Tensor: ``[M, L, ...]`` bool, True where the step fails.
    """
    m, num = flows_bwd.shape[:2]
    if size_wh is None:
        size_wh = (flows_bwd.shape[3], flows_bwd.shape[2])
    back = torch.stack([sample_flow_at_torch(flows_bwd[:, t],
                                             positions[:, t + 1], size_wh)
                        for t in range(num)], 1)
    fwd = positions[:, 1:] - positions[:, :-1]
    err2 = (fwd + back).square().sum(-1)
    mag2 = fwd.square().sum(-1) + back.square().sum(-1)
    scale = _mean_scale(scale_factor, m, positions)
    tol = beta * scale.square().reshape((m, ) + (1, ) * (err2.dim() - 1))
    return err2 > alpha * mag2 + tol


def gray_blur_torch(frames: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Grey levels of ``[..., H, W, 3]`` uint8 RGB frames, Gaussian-blurred.

    The grey conversion is OpenCV's fixed-point ``RGB2GRAY`` (exact); the
    blur uses OpenCV's kernel (size ``2 ceil(2 sigma) + 1``, reflect-101
    border) in floating point and rounds, so it may differ from
    ``cv2.GaussianBlur`` on uint8 by one grey level.

    Returns:
        torch.Tensor: ``[..., H, W]`` float32 grey levels (integers 0-255).
    """
    lead, (h, w) = frames.shape[:-3], frames.shape[-3:-1]
    # OpenCV 4's fixed-point weights of 0.299, 0.587, 0.114 (15 bits),
    # rounded; the integer sums stay below 2^24, so float32 is exact
    wts = torch.empty(3, device=frames.device)  # filled, not copied
    wts[0], wts[1], wts[2] = 9798., 19235., 3735.
    g = torch.floor((frames.to(torch.float32) @ wts + 16384) / 32768)
    g = g.reshape(-1, 1, h, w)
    if sigma > 0:
        r = int(math.ceil(2 * sigma))
        x = torch.arange(-r, r + 1, dtype=torch.float64)
        k = torch.exp(-x.square() / (2 * sigma * sigma))
        k = (k / k.sum()).tolist()  # host constants, not device values
        # separable, as sums of shifted slices (a 1-channel conv2d with a
        # tiny kernel is several times slower on a CPU)
        p = F.pad(g, (r, r, 0, 0), mode='reflect')
        g = p[..., :w] * k[0]
        for i in range(1, 2 * r + 1):
            g.add_(p[..., i:i + w], alpha=k[i])
        p = F.pad(g, (0, 0, r, r), mode='reflect')
        g = p[..., :h, :] * k[0]
        for i in range(1, 2 * r + 1):
            g.add_(p[..., i:i + h, :], alpha=k[i])
        g = torch.round(g).clamp(0, 255)
    return g.reshape(*lead, h, w)


def photo_failures_torch(grays: torch.Tensor, positions: torch.Tensor,
                         threshold: float = 10.0) -> torch.Tensor:
    """``[M, L, ...]`` bool: the grey level at the point's new position
    differs from the one it left by more than ``threshold``.

    Args:
        grays (torch.Tensor): ``[M, L + 1, H, W]`` grey frames (blurred as
            the checker does, :func:`gray_blur_torch`).
        positions (torch.Tensor): ``[M, L + 1, ..., 2]``.
        threshold (float): Grey levels. Defaults to 10.
    """
    vals = torch.stack([
        sample_bilinear_torch(grays[:, t, ..., None], positions[:, t])[..., 0]
        for t in range(grays.shape[1])], 1)
    return (vals[:, 1:] - vals[:, :-1]).abs() > threshold


def _histograms(grays: torch.Tensor, bins: int) -> torch.Tensor:
    """Normalised histograms of ``[P, h, w]`` grey images -> ``[P, bins]``."""
    p = grays.shape[0]
    idx = (grays.clamp(0, 255).long() * bins) // 256
    hist = torch.zeros(p, bins, dtype=torch.float32, device=grays.device)
    hist.scatter_add_(1, idx.reshape(p, -1),
                      torch.ones_like(idx.reshape(p, -1), dtype=torch.float32))
    return hist / max(1, grays[0].numel())


def cut_statistics_torch(prev: torch.Tensor, nxt: torch.Tensor,
                         flows: torch.Tensor, warp_threshold: float = 25.0,
                         bins: int = 32) -> Dict[str, torch.Tensor]:
    """Shot-cut evidence of P frame pairs, as
    :func:`~mme_plugin.ops.cut_statistics`.

    Args:
        prev (torch.Tensor): ``[P, h, w]`` float grey frames t.
        nxt (torch.Tensor): ``[P, h, w]`` grey frames t + 1.
        flows (torch.Tensor): ``[P, h, w, 2]`` flows t -> t + 1.
        warp_threshold (float): Defaults to 25.
        bins (int): Defaults to 32.

    Returns:
        dict: ``[P]`` tensors ``warp_fail``, ``warp_error`` (NaN where no
        pixel stays in frame) and ``hist_distance``.
    """
    p, h, w = prev.shape
    gy, gx = torch.meshgrid(
        torch.arange(h, dtype=flows.dtype, device=flows.device),
        torch.arange(w, dtype=flows.dtype, device=flows.device),
        indexing='ij')
    target = torch.stack([gx, gy], -1) + flows  # [P, h, w, 2]
    warped = sample_bilinear_torch(nxt[..., None].to(flows.dtype),
                                   target)[..., 0]
    err = (warped - prev).abs().reshape(p, -1)
    inside = inside_frame_torch(target, h, w).reshape(p, -1)
    count = inside.sum(1)
    fail = (inside & (err > warp_threshold)).sum(1)
    total = torch.where(inside, err, torch.zeros_like(err)).sum(1)
    denom = count.clamp(min=1).to(err.dtype)
    warp_fail = torch.where(count > 0, fail / denom, torch.ones_like(denom))
    mean = torch.where(count > 0, total / denom,
                       torch.full_like(denom, float('nan')))
    hist = (_histograms(prev, bins) - _histograms(nxt, bins)).abs().sum(1)
    return dict(warp_fail=warp_fail, warp_error=mean, hist_distance=hist)


def cut_pairs_torch(grays: torch.Tensor, flows: torch.Tensor,
                    cut_size: int = 64, warp_threshold: float = 25.0,
                    warp_fraction: float = 0.4,
                    hist_distance: float = 0.5) -> torch.Tensor:
    """``[M, L]`` bool: the frame pair (t, t + 1) looks like a shot cut.

    As ``CheckTrajectoryReliability.cut_pairs``: grey frames reduced to at
    most ``cut_size`` pixels per side (area averaging, rounded to grey
    levels; equal to ``cv2.INTER_AREA`` when the factor divides the size),
    flows resized bilinearly (half-pixel centres, equal to
    ``cv2.INTER_LINEAR``) and rescaled, then :func:`cut_statistics_torch`.

    Args:
        grays (torch.Tensor): ``[M, L + 1, H, W]`` grey frames.
        flows (torch.Tensor): ``[M, L, h, w, 2]`` forward flows.
    """
    m, s, gh, gw = grays.shape
    num = flows.shape[1]
    f = int(math.ceil(max(gh, gw) / cut_size))
    sw, sh = max(8, gw // f), max(8, gh // f)
    g = grays.reshape(m * s, 1, gh, gw).to(torch.float32)
    if (sw, sh) != (gw, gh):
        # round half up, as OpenCV's INTER_AREA on uint8 (exact for an
        # integer factor; an approximation of its weights otherwise)
        g = torch.floor(F.interpolate(g, size=(sh, sw), mode='area') + 0.5)
    small = g.reshape(m, s, sh, sw)
    fl = flows.reshape(m * num, *flows.shape[2:]).to(torch.float32)
    fh, fw = fl.shape[1:3]
    if (fh, fw) != (sh, sw):
        fl = F.interpolate(fl.permute(0, 3, 1, 2), size=(sh, sw),
                           mode='bilinear', align_corners=False)
        fl = _scale_xy(fl.permute(0, 2, 3, 1), sw / fw, sh / fh)
    st = cut_statistics_torch(small[:, :-1].reshape(-1, sh, sw),
                              small[:, 1:].reshape(-1, sh, sw), fl,
                              warp_threshold)
    cuts = (st['warp_fail'] > warp_fraction) | (
        (st['hist_distance'] > hist_distance)
        & (st['warp_fail'] > warp_fraction / 2))
    return cuts.reshape(m, num)


def reliability_torch(positions: torch.Tensor,
                      valid: torch.Tensor,
                      flows: torch.Tensor,
                      flows_bwd: Optional[torch.Tensor] = None,
                      grays: Optional[torch.Tensor] = None,
                      size_wh: Optional[Tuple[int, int]] = None,
                      scale_factor: Optional[Scale] = None,
                      fb_check: bool = True,
                      fb_alpha: float = 0.01,
                      fb_beta: float = 0.5,
                      photo_check: bool = True,
                      photo_threshold: float = 10.0,
                      cut_check: bool = True,
                      cut_warp_threshold: float = 25.0,
                      cut_warp_fraction: float = 0.4,
                      cut_hist_distance: float = 0.5,
                      cut_size: int = 64,
                      release_compat: bool = False
                      ) -> Dict[str, torch.Tensor]:
    """All checks of ``CheckTrajectoryReliability`` on M tubes at once.

    Args:
        positions (torch.Tensor): ``[M, L + 1, gh, gw, 2]``.
        valid (torch.Tensor): ``[M, gh, gw]`` bool (in-frame validity).
        flows (torch.Tensor): ``[M, L, h, w, 2]`` forward flows.
        flows_bwd (torch.Tensor, optional): Backward flows (``fb_check``).
        grays (torch.Tensor, optional): ``[M, L + 1, H, W]`` blurred grey
            frames (``photo_check``, ``cut_check``; :func:`gray_blur_torch`).
        Others: as ``CheckTrajectoryReliability``.

    Returns:
        dict: ``valid`` (``[M, gh, gw]`` bool, unchanged under
        ``release_compat``), ``reason`` (``[M, gh, gw]`` uint8 codes of
        :data:`~mme_plugin.ops.REJECT_REASONS`), ``cut_pairs`` (``[M, L]``)
        and the per-check failures ``fb``, ``photo``, ``cut``
        (``[M, gh, gw]`` bool, all False for a check that is off).

    Raises:
        ValueError: A check is on without its input.
    """
    m, num = flows.shape[:2]
    if size_wh is None:
        size_wh = (flows.shape[3], flows.shape[2])
    if fb_check and flows_bwd is None:
        raise ValueError('reliability_torch(fb_check=True) needs flows_bwd: '
                         'compute backward flows or set fb_check=False')
    if (photo_check or cut_check) and grays is None:
        raise ValueError('reliability_torch(photo_check/cut_check) needs '
                         'grays (gray_blur_torch of the dense frames)')
    valid = valid.bool()
    none = torch.zeros_like(valid)
    reason = torch.where(valid, 0, 1).to(torch.uint8)
    fb = photo = cut = none
    cut_pairs = torch.zeros(m, num, dtype=torch.bool, device=valid.device)
    if fb_check:
        fb = fb_failures_torch(positions, flows_bwd, size_wh, fb_alpha,
                               fb_beta, scale_factor).any(1)
        reason = torch.where(valid & fb, 2, reason).to(torch.uint8)
    if photo_check:
        photo = photo_failures_torch(grays, positions,
                                     photo_threshold).any(1)
        reason = torch.where(valid & (reason == 0) & photo, 3,
                             reason).to(torch.uint8)
    if cut_check:
        cut_pairs = cut_pairs_torch(grays, flows, cut_size,
                                    cut_warp_threshold, cut_warp_fraction,
                                    cut_hist_distance)
        cut = cut_pairs.any(1)[:, None, None].expand_as(valid)
        reason = torch.where(valid & cut, 4, reason).to(torch.uint8)
    out_valid = valid if release_compat else valid & ~(fb | photo | cut)
    return dict(valid=out_valid, reason=reason, cut_pairs=cut_pairs, fb=fb,
                photo=photo, cut=cut)
