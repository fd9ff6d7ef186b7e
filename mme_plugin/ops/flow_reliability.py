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
    a = _gray(prev, (w, h))
    b = _gray(nxt, (w, h))
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32),
                         np.arange(h, dtype=np.float32))
    mx = gx + flow[..., 0]
    my = gy + flow[..., 1]
    warped = cv2.remap(b, mx, my, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    err = np.abs(warped - a)
    outside = (mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)
    err[outside] = np.nan
    return err


def histogram_distance(prev: np.ndarray, nxt: np.ndarray,
                       bins: int = 32) -> float:
    """L1 distance of the normalised grey-level histograms (0 = identical,
    2 = disjoint)."""
    out = []
    for img in (prev, nxt):
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
        hist = np.bincount((gray.reshape(-1).astype(np.int64) * bins) // 256,
                           minlength=bins).astype(np.float64)
        out.append(hist / max(1.0, hist.sum()))
    return float(np.abs(out[0] - out[1]).sum())


def pair_cut_statistics(prev: np.ndarray, nxt: np.ndarray, flow: np.ndarray,
                        warp_threshold: float = 25.0) -> Dict[str, float]:
    """Shot-cut evidence of one frame pair.

    Args:
        prev (np.ndarray): Frame t.
        nxt (np.ndarray): Frame t + 1.
        flow (np.ndarray): Flow t -> t + 1 (its own resolution and pixels).
        warp_threshold (float): A pixel fails to warp above this grey-level
            error. Defaults to 25 (about 10 % of the range).

    Returns:
        dict: ``warp_fail`` (fraction of in-frame pixels that fail to warp),
        ``warp_error`` (their mean error, grey levels) and ``hist_distance``
        (:func:`histogram_distance`).
    """
    err = warp_error(prev, nxt, flow)
    inside = np.isfinite(err)
    e = err[inside]
    return dict(
        warp_fail=float((e > warp_threshold).mean()) if e.size else 1.0,
        warp_error=float(e.mean()) if e.size else float('nan'),
        hist_distance=histogram_distance(prev, nxt))
