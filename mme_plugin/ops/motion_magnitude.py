"""How far a clip's valid points move: the measure of a motionless clip.

A clip without motion (a still image repeated, a frozen stream) yields
trajectory targets of zero everywhere: every point's per-step displacement
is zero (or flow noise), so ``BuildMMETargets`` turns it into targets that
carry nothing to learn. It is not an error (the targets are valid, and a
few such clips do no harm), but a dataset full of them is. This measure is
shared by ``BuildMMETargets`` (the ``motionless`` monitor and its warning)
and ``tools/analysis/check_dataset.py`` (the pre-flight report), so both
judge a clip by the same number.
"""
from typing import Sequence

import numpy as np

__all__ = ['DEFAULT_MIN_MOTION', 'motion_magnitude']

#: Default ``min_motion`` (pixels of the decoded video per frame): below it a
#: clip's targets are counted as near zero. Measured with the pipeline of
#: ``configs/mme/pretrain_tiny_synthetic.py`` (Farneback flow, 2026-12-04):
#: a still image repeated (lossless or crf 12) 0.000-0.003 px; the same with
#: Gaussian pixel noise of std 3 / 6 grey levels in every frame 0.01 / 0.04
#: px (flow noise: not caught at this default); the slowest built-in
#: synthetic clips (a small sprite rotating or scaling over a static
#: background) 0.015-0.06 px, translating ones 0.1-0.4 px. The mean is over
#: all valid points, so a small moving object over a still background
#: measures low: raise the threshold with care.
DEFAULT_MIN_MOTION = 0.01


def motion_magnitude(disp: np.ndarray, valid: np.ndarray,
                     scale_factor: Sequence[float] = (1.0, 1.0)) -> float:
    """Mean length of the per-step displacements of the valid points.

    Args:
        disp (np.ndarray): ``[N, L, gh, gw, 2]`` per-step displacements
            (x, y) in pixels of the current frame.
        valid (np.ndarray): ``[N, gh, gw]`` bool, the points to count.
        scale_factor (Sequence[float]): The resize's (x, y) factor from the
            decoded video to the current frame. Defaults to (1, 1).

    Returns:
        float: Pixels of the decoded video per frame step; NaN when no point
        is valid.
    """
    valid = np.asarray(valid, bool)
    if not valid.any():
        return float('nan')
    scale = np.asarray(scale_factor, np.float64).reshape(-1)[:2]
    step = np.asarray(disp, np.float64) / scale  # decoded-video pixels
    length = np.sqrt(np.square(step).sum(-1))  # [N, L, gh, gw]
    return float(length.mean(1)[valid].mean())
