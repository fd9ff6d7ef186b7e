"""Ground-truth-free reliability measures of optical flow and trajectories.

Two classic checks need no ground truth:

* **Forward-backward consistency** (the occlusion test of Sundaram, Brox and
  Keutzer, "Dense point trajectories by GPU-accelerated large displacement
  optical flow", ECCV 2010, eq. 5): a point moved by the forward flow ``w``
  and then by the backward flow ``w_hat`` read at its new position should
  return to where it started. It is *inconsistent* when
  ``|w + w_hat|^2 > alpha * (|w|^2 + |w_hat|^2) + beta``; the tolerance
  grows with the motion because flow errors grow with it. Sundaram et al. use
  ``alpha = 0.01`` and ``beta = 0.5`` px^2. Points that become occluded, leave
  a moving object or sit where the flow failed fail this test.
* **Photometric (warping) error**: frame ``t + 1`` sampled at ``x + w(x)``
  should look like frame ``t`` at ``x``. Over a shot cut the flow between two
  unrelated frames cannot warp one onto the other, so most of the frame
  fails; the grey-level histogram usually jumps too.

Everything here is NumPy / OpenCV on one clip; the data pipeline calls it
through :class:`~mme_plugin.datasets.transforms.CheckTrajectoryReliability`
and ``tools/analysis/flow_report.py`` prints the same measures per flow
choice on a user's own videos.
"""
from typing import Dict, Tuple

import cv2
import numpy as np

__all__ = [
    'REJECT_REASONS', 'fb_inconsistent', 'fb_round_trip', 'warp_error',
    'histogram_distance', 'pair_cut_statistics'
]

#: Why a point's trajectory is invalid, in code order (code = index + 1;
#: 0 = valid), as recorded by ``CheckTrajectoryReliability`` and counted by
#: ``BuildMMETargets`` (which decides ``too_far`` itself).
REJECT_REASONS: Tuple[str, ...] = ('left_frame', 'fb_check', 'photo_check',
                                   'shot_cut', 'too_far')


def fb_round_trip(fwd: np.ndarray, bwd_at_target: np.ndarray) -> np.ndarray:
    """Round-trip error ``|w + w_hat|`` (pixels).

    Args:
        fwd (np.ndarray): ``[..., 2]`` forward displacements ``w``.
        bwd_at_target (np.ndarray): ``[..., 2]`` backward flow ``w_hat``
            read at the forward-moved positions.

    Returns:
        np.ndarray: ``[...]`` float32.
    """
    return np.linalg.norm(fwd + bwd_at_target, axis=-1).astype(np.float32)


def fb_inconsistent(fwd: np.ndarray, bwd_at_target: np.ndarray,
                    alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """Sundaram et al.'s forward-backward occlusion test.

    Args:
        fwd (np.ndarray): ``[..., 2]`` forward displacements ``w``.
        bwd_at_target (np.ndarray): ``[..., 2]`` backward flow ``w_hat``
            at the forward-moved positions.
        alpha (float): Relative tolerance. Defaults to 0.01.
        beta (float): Absolute tolerance in squared pixels. Defaults to 0.5.

    Returns:
        np.ndarray: ``[...]`` bool, True where the test fails.
    """
    err2 = np.square(fwd + bwd_at_target).sum(-1)
    mag2 = np.square(fwd).sum(-1) + np.square(bwd_at_target).sum(-1)
    return err2 > alpha * mag2 + beta


def _gray(img: np.ndarray, size_wh) -> np.ndarray:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    if (gray.shape[1], gray.shape[0]) != tuple(size_wh):
        gray = cv2.resize(gray, tuple(size_wh), interpolation=cv2.INTER_AREA)
    return gray.astype(np.float32)


def _warp_errors(prev: np.ndarray, nxt: np.ndarray,
                 flows: np.ndarray) -> np.ndarray:
    """``|nxt(x + flow(x)) - prev(x)|`` of ``[P, h, w]`` float32 grey pairs
    and ``[P, h, w, 2]`` flows; NaN where ``x + flow(x)`` leaves the
    frame."""
    p, h, w = prev.shape
    gx = np.arange(w, dtype=np.float32)[None, None, :]
    gy = np.arange(h, dtype=np.float32)[None, :, None]
    mx = gx + flows[..., 0]
    my = gy + flows[..., 1]
    err = np.empty((p, h, w), np.float32)
    for k in range(p):
        warped = cv2.remap(nxt[k], mx[k], my[k], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        np.subtract(warped, prev[k], out=err[k])
    np.abs(err, out=err)
    err[(mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)] = np.nan
    return err


def warp_error(prev: np.ndarray, nxt: np.ndarray,
               flow: np.ndarray) -> np.ndarray:
    """Per-pixel photometric error of warping ``nxt`` back onto ``prev``.

    Frames are converted to grey (and resized to the flow's resolution if the
    flow was computed at a reduced scale).

    Args:
        prev (np.ndarray): Frame t (``H x W x 3`` uint8 RGB or grey).
        nxt (np.ndarray): Frame t + 1.
        flow (np.ndarray): ``h x w x 2`` flow t -> t + 1 in pixels of its own
            resolution.

    Returns:
        np.ndarray: ``h x w`` float32 ``|I_{t+1}(x + w(x)) - I_t(x)|`` in grey
        levels (0-255); pixels whose target lies outside the frame are NaN.
    """
    h, w = flow.shape[:2]
    return _warp_errors(_gray(prev, (w, h))[None], _gray(nxt, (w, h))[None],
                        flow[None])[0]


def _histograms(grays: np.ndarray, bins: int) -> np.ndarray:
    """Normalised ``bins``-bin histograms of ``[P, h, w]`` grey images."""
    p = grays.shape[0]
    idx = (np.clip(grays, 0, 255).astype(np.int64) * bins) // 256
    idx += np.arange(p)[:, None, None] * bins
    hist = np.bincount(idx.ravel(), minlength=p * bins).reshape(p, bins)
    return hist / max(1, grays[0].size)


def histogram_distance(prev: np.ndarray, nxt: np.ndarray,
                       bins: int = 32) -> float:
    """L1 distance of the normalised grey-level histograms (0 = identical,
    2 = disjoint)."""
    g = [cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) if i.ndim == 3 else i
         for i in (prev, nxt)]
    hist = _histograms(np.stack(g).astype(np.float32), bins)
    return float(np.abs(hist[0] - hist[1]).sum())


def cut_statistics(prev: np.ndarray, nxt: np.ndarray, flows: np.ndarray,
                   warp_threshold: float = 25.0,
                   bins: int = 32) -> Dict[str, np.ndarray]:
    """Shot-cut evidence of P frame pairs at once.

    Args:
        prev (np.ndarray): ``[P, h, w]`` float32 grey frames t, at the
            flows' resolution.
        nxt (np.ndarray): ``[P, h, w]`` grey frames t + 1.
        flows (np.ndarray): ``[P, h, w, 2]`` flows t -> t + 1.
        warp_threshold (float): A pixel fails to warp above this grey-level
            error. Defaults to 25 (about 10 % of the range).
        bins (int): Histogram bins. Defaults to 32.

    Returns:
        dict: ``[P]`` arrays ``warp_fail`` (fraction of in-frame pixels that
        fail to warp; 1 if none stays in frame), ``warp_error`` (their mean
        error) and ``hist_distance`` (L1 distance of the grey histograms,
        0-2).
    """
    err = _warp_errors(prev, nxt, flows).reshape(prev.shape[0], -1)
    inside = np.isfinite(err)
    count = inside.sum(1)
    fail = np.where(inside, err > warp_threshold, False).sum(1)
    total = np.where(inside, err, 0).sum(1)
    with np.errstate(invalid='ignore', divide='ignore'):
        warp_fail = np.where(count > 0, fail / np.maximum(count, 1), 1.0)
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    hp, hn = _histograms(prev, bins), _histograms(nxt, bins)
    return dict(warp_fail=warp_fail, warp_error=mean,
                hist_distance=np.abs(hp - hn).sum(1))


def pair_cut_statistics(prev: np.ndarray, nxt: np.ndarray, flow: np.ndarray,
                        warp_threshold: float = 25.0) -> Dict[str, float]:
    """:func:`cut_statistics` of one pair of RGB (or grey) frames of any
    size, converted to grey at the flow's resolution.

    Returns:
        dict: ``warp_fail``, ``warp_error`` and ``hist_distance`` (floats).
    """
    h, w = flow.shape[:2]
    st = cut_statistics(_gray(prev, (w, h))[None], _gray(nxt, (w, h))[None],
                        flow[None], warp_threshold)
    return {k: float(v[0]) for k, v in st.items()}
