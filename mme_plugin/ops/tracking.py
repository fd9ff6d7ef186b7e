"""Point trajectories tracked through chained optical flow.

A regular grid of points (spacing ``grid_step``, offset ``grid_step // 2``;
8 px / 4 px in the release, i.e. 2 x 2 points per 16 x 16 patch) is moved
through the L flows of each tube: ``p_{t+1} = p_t + flow_t(p_t)``
(release spec 2.3). Deviations from the release, each fixing a bug of
section 8 (``release_compat=True`` restores the released behaviour):

* flow is sampled bilinearly at the sub-pixel position and positions stay
  real-valued (release: nearest pixel and ``int()`` truncation, so motions
  under 1 px/frame vanish, 8.2);
* a point is valid only if every position ``p_0 .. p_L`` lies inside the
  frame; the release never checks the position after the last step (8.11).

Under ``release_compat`` the tracker also reports the release's per-step
displacement, the (truncated) flow read at the point's position clamped to
the frame (``traj_steps``): for a point that left the frame it differs from
the difference of the unclamped positions.
"""
from typing import Tuple

import numpy as np

__all__ = ['grid_points', 'sample_bilinear', 'sample_bilinear_batch',
           'sample_flow_at', 'track_points', 'track_all', 'inside_frame']


def grid_points(height: int, width: int, step: int = 8) -> np.ndarray:
    """Grid point coordinates ``[H // step, W // step, 2]`` as (x, y).

    Points sit at ``step // 2 + k * step``: the centres of the ``step`` x
    ``step`` cells in the convention of :func:`sample_bilinear` and the HOG
    cells of :mod:`.hog_numpy` (a point at x covers pixels ``x - step//2 ..
    x + step//2 - 1``).
    """
    ys = step // 2 + step * np.arange(height // step)
    xs = step // 2 + step * np.arange(width // step)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx, gy], -1).astype(np.float32)


def sample_bilinear(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear sampling of ``field`` [H, W, C] at float positions xy [..., 2].

    Positions are clamped to the frame (border replication).
    """
    return sample_bilinear_batch(field[None], xy[None])[0]


def sample_bilinear_batch(fields: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """:func:`sample_bilinear` of ``fields[i]`` at ``xy[i]`` for every i.

    Args:
        fields (np.ndarray): ``[N, H, W, C]``.
        xy (np.ndarray): ``[N, ..., 2]`` float positions (x, y).

    Returns:
        np.ndarray: ``[N, ..., C]`` float32.
    """
    n, h, w = fields.shape[:3]
    x = np.clip(xy[..., 0], 0, w - 1)
    y = np.clip(xy[..., 1], 0, h - 1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    wx = (x - x0)[..., None]
    wy = (y - y0)[..., None]
    # one flat gather per corner (much faster than 3-array fancy indexing)
    flat = fields.reshape(n * h * w, -1)
    row = (np.arange(n).reshape((n, ) + (1, ) * (xy.ndim - 2)) * h)
    r0, r1 = (row + y0) * w, (row + y1) * w

    def at(r, c):
        return np.take(flat, r + c, axis=0)

    top = at(r0, x0) * (1 - wx) + at(r0, x1) * wx
    bottom = at(r1, x0) * (1 - wx) + at(r1, x1) * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def inside_frame(xy: np.ndarray, h: int, w: int) -> np.ndarray:
    return ((xy[..., 0] >= 0) & (xy[..., 0] <= w - 1) & (xy[..., 1] >= 0)
            & (xy[..., 1] <= h - 1))


def track_points(flows: np.ndarray,
                 start: np.ndarray,
                 release_compat: bool = False,
                 return_steps: bool = False) -> Tuple[np.ndarray, ...]:
    """Track points through a chain of flows.

    Args:
        flows (np.ndarray): ``[L, H, W, 2]`` float flows (dx, dy) of
            consecutive frames.
        start (np.ndarray): ``[..., 2]`` start positions (x, y) in frame 0.
        release_compat (bool): Reproduce the release's tracker (nearest-pixel
            flow, ``int()`` truncation of flow, validity checked before each
            step only). Defaults to False.
        return_steps (bool): Also return the per-step displacements
            ``[L, ..., 2]``: the flow read at each step (at the clamped
            position under ``release_compat``, as the release records it),
            else the differences of consecutive positions. Defaults to False.

    Returns:
        tuple: positions ``[L + 1, ..., 2]`` (float32) and validity
        ``[...]`` (bool), then the steps if ``return_steps``.
    """
    num, h, w = flows.shape[:3]
    pos = start.astype(np.float32).copy()
    valid = np.ones(start.shape[:-1], bool)
    out = [pos.copy()]
    steps = []
    for t in range(num):
        if release_compat:
            valid &= inside_frame(pos, h, w)
            pos = np.stack([np.clip(pos[..., 0], 0, w - 1),
                            np.clip(pos[..., 1], 0, h - 1)], -1)
            ix = pos[..., 0].astype(np.int64)
            iy = pos[..., 1].astype(np.int64)
            step = np.trunc(flows[t][iy, ix])
        else:
            step = sample_bilinear(flows[t], pos)
        pos = (pos + step).astype(np.float32)
        steps.append(np.asarray(step, np.float32))
        if not release_compat:
            valid &= inside_frame(pos, h, w)
        out.append(pos.copy())
    if return_steps:
        return np.stack(out), valid, np.stack(steps)
    return np.stack(out), valid


def track_all(flows: np.ndarray, start: np.ndarray,
               size_wh: Tuple[int, int]) -> np.ndarray:
    """Track points of a W x H frame through the ``[N, L, h, w, 2]`` flows
    of all N tubes at once (as :func:`track_points` per tube).

    Flows of a reduced resolution (in its pixels) are sampled there, not
    upsampled: a frame position p maps to ``(p + 0.5) * s - 0.5`` (s = h/H,
    w/W: pixel centres, as ``cv2.resize``) and a displacement d to
    ``d / s``.

    Returns:
        np.ndarray: positions ``[N, L + 1, ..., 2]`` in frame pixels.
    """
    n = flows.shape[0]
    pos = np.broadcast_to(start, (n, ) + start.shape).astype(np.float32)
    out = [pos]
    for t in range(flows.shape[1]):
        step = sample_flow_at(flows[:, t], pos, size_wh)
        pos = (pos + step).astype(np.float32)
        out.append(pos)
    return np.stack(out, 1)


def sample_flow_at(flows: np.ndarray, pos: np.ndarray,
                   size_wh: Tuple[int, int]) -> np.ndarray:
    """Displacements of ``[N, h, w, 2]`` flows at frame positions ``pos``
    (``[N, ..., 2]``, pixels of a W x H frame), in frame pixels.

    Flows of a reduced resolution are sampled there (see
    :func:`track_all`), not upsampled.
    """
    fh, fw = flows.shape[1:3]
    if (fw, fh) == tuple(size_wh):
        return sample_bilinear_batch(flows, pos)
    s = np.array([fw / size_wh[0], fh / size_wh[1]], np.float32)
    return sample_bilinear_batch(flows, (pos + 0.5) * s - 0.5) / s
