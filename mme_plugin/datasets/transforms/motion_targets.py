"""Per-token MME targets from trajectories and HOG features.

Token order is the ViT's (``t, h, w``, row-major over tubes, patch rows and
patch columns), so ``targets[mask]`` matches the decoder's masked outputs.

Trajectory target per token (``docs/release_spec.md`` 2.6): the per-step
displacements ``p_{t+1} - p_t`` of the ``k x k`` points of the patch (k =
patch_size / grid_step; 2 in the release), laid out ``(coord, step, row,
col)`` = 2 x L x k x k values (32 in the release). Normalisation:

* ``'patch_std'`` (release ``PatchStd``): for each (coord, step), subtract
  the mean over the patch's points and divide by their unbiased std plus
  ``std_eps``. The common translation of the patch is removed; what is left
  is how the points move relative to each other. The release adds 1e-6 to
  the std of displacements already divided by 20 px, i.e. ``std_eps = 2e-5``
  px here; with real-valued tracking that turns float noise of a uniformly
  moving patch into targets of +-1, so ``std_eps`` defaults to 0.1 px and
  deformations far below a pixel are damped instead of amplified;
* ``'none'``: displacements divided by ``traj_scale`` pixels (absolute
  motion kept).

A token's trajectory target is valid when all its points are valid
(``token_valid='all'``; the release uses ``'any'``, which with PatchStd mixes
clamped out-of-frame points into the statistics).

Implausible steps: the release clamps every per-step displacement to +-20 px
of the decoded video (its stored flow is bounded there too). A step that
large is far more often a flow failure or a shot cut than real motion
(flow between two unrelated frames gives displacements of tens of pixels),
so by default a point with any step beyond ``max_step`` is made *invalid*
(``step_overflow='invalid'``) instead of training on a saturated, wrong
target; ``'clamp'`` is the release's behaviour. ``max_step`` is in pixels of
the decoded video: it is converted to the current frame with the resize's
``scale_factor``.

``release_compat=True`` selects the release's choices at once, for parity
runs against the official code: ``token_valid='any'``, ``std_eps=2e-5``,
``step_overflow='clamp'``, and the displacements the release records
(``traj_steps`` of ``ComputeTrajectories(release_compat=True)``: the flow
read at the clamped position, also for a point that left the frame).

HOG target per token: the features of its points (and of every dense step in
``'trajectory'`` mode), laid out ``(step, row, col, feature)``.
"""
import warnings
from typing import Dict, Optional, Set

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mme_plugin.ops.flow_reliability import REJECT_REASONS
from mme_plugin.ops.motion_magnitude import (DEFAULT_MIN_MOTION,
                                             motion_magnitude)
from mme_plugin.ops.token_layout import grid_to_tokens
from mme_plugin.registry import TRANSFORMS

__all__ = ['BuildMMETargets', 'UnusableTargetsError', 'patch_std']


class UnusableTargetsError(RuntimeError):
    """A clip whose trajectory targets are refused (too few valid tokens,
    non-finite values): a data problem of that clip, which training may skip
    (:mod:`mme_plugin.datasets.skip_bad_samples`)."""


#: Videos already warned about as motionless, in this process (each
#: dataloader worker warns once per video; the ``motionless`` monitor counts
#: every motionless sample).
_WARNED_MOTIONLESS: Set[str] = set()


def patch_std(values: np.ndarray, eps: float) -> np.ndarray:
    """Standardize over the last axis (the points of a patch).

    Args:
        values (np.ndarray): ``[..., P]`` values of the P points of a patch.
        eps (float): Added to the unbiased standard deviation.

    Returns:
        np.ndarray: ``(v - mean) / (std + eps)``, same shape.
    """
    mean = values.mean(-1, keepdims=True)
    std = values.std(-1, ddof=1, keepdims=True)
    return (values - mean) / (std + eps)


def _tokens(x: np.ndarray, k: int) -> np.ndarray:
    """``[N, S, gh, gw, C]`` per-point values -> ``[T, S, k, k, C]``
    per token (:func:`grid_to_tokens`, T = N gh/k gw/k)."""
    tok = grid_to_tokens(x.transpose(0, 2, 3, 1, 4), k)  # T, k, k, S, C
    return tok.transpose(0, 3, 1, 2, 4)


@TRANSFORMS.register_module()
class BuildMMETargets(BaseTransform):
    """Build per-token trajectory and HOG targets.

    Required keys: ``traj_positions`` (``[N, L + 1, gh, gw, 2]``),
    ``traj_valid`` (``[N, gh, gw]``), ``traj_grid_step``; ``hog`` if
    ``with_hog``. Added keys (torch tensors): ``traj_target`` (``[T, 2Lk^2]``),
    ``traj_valid`` (``[T]`` bool), ``hog_target`` (``[T, S k^2 D]``) and
    ``hog_valid`` (``[T]`` bool), with T = N * (H/patch) * (W/patch) tokens,
    and ``traj_reject`` (``[4]`` float32: the fraction of the clip's points
    rejected for each reason of :data:`REJECT_REASONS`; pack it to have the
    model log ``reject_<reason>``), ``traj_motionless`` (``[]`` float32: 1
    if the clip's valid points move less than ``min_motion``, i.e. its
    trajectory targets are near zero; the model logs its batch mean as
    ``motionless``) and ``traj_motion`` (float, that motion in pixels of the
    decoded video per frame, :func:`~mme_plugin.ops.motion_magnitude`; not
    packed, read by ``tools/analysis/check_dataset.py``). A motionless clip
    is warned about once per video and process, and trained on as it is
    (its targets are not changed).
    After :class:`PrepareHOGInputs` (HOG computed by the model) there is no
    ``hog`` and only ``hog_valid`` is added; ``hog_frames`` and
    ``hog_points`` stay for the model.
    Large intermediates (``dense_imgs``, ``flows``, ``hog``,
    ``traj_positions``) are dropped; ``traj_positions`` is kept if
    ``keep_positions`` (visualisation).

    Args:
        patch_size (int): Spatial patch size of the ViT. Defaults to 16.
        norm (str): ``'patch_std'`` or ``'none'``. Defaults to
            ``'patch_std'``.
        std_eps (float, optional): See module doc. Defaults to 0.1 (pixels);
            2e-5 under ``release_compat``.
        traj_scale (float): Divisor for ``norm='none'``. Defaults to 4.0.
        token_valid (str, optional): ``'all'`` or ``'any'`` (release).
            Defaults to ``'all'``; ``'any'`` under ``release_compat``.
        max_step (float): Largest plausible per-step displacement, pixels of
            the decoded video. Defaults to 20 (the release's bound).
        step_overflow (str, optional): ``'invalid'`` (a point with a larger
            step is invalid) or ``'clamp'`` (release). Defaults to
            ``'invalid'``; ``'clamp'`` under ``release_compat``.
        release_compat (bool): The release's target choices, see module doc.
            Defaults to False.
        with_hog (bool): Build HOG targets. Defaults to True.
        min_valid_fraction (float): Raise if fewer than this fraction of the
            clip's tokens have valid trajectories; this catches broken flow
            (the release silently trains on zero targets). Defaults to 0.05.
        keep_positions (bool): Keep ``traj_positions``. Defaults to False.
        min_motion (float): A clip whose valid points move less than this
            (mean step length, pixels of the decoded video) counts as
            motionless; 0 turns the count and the warning off. Defaults to
            :data:`~mme_plugin.ops.motion_magnitude.DEFAULT_MIN_MOTION`.
    """

    def __init__(self,
                 patch_size: int = 16,
                 norm: str = 'patch_std',
                 std_eps: Optional[float] = None,
                 traj_scale: float = 4.0,
                 token_valid: Optional[str] = None,
                 with_hog: bool = True,
                 min_valid_fraction: float = 0.05,
                 keep_positions: bool = False,
                 max_step: float = 20.0,
                 step_overflow: Optional[str] = None,
                 release_compat: bool = False,
                 min_motion: float = DEFAULT_MIN_MOTION) -> None:
        rc = release_compat
        std_eps = (2e-5 if rc else 0.1) if std_eps is None else std_eps
        token_valid = token_valid or ('any' if rc else 'all')
        step_overflow = step_overflow or ('clamp' if rc else 'invalid')
        if norm not in ('patch_std', 'none'):
            raise ValueError(f"norm must be 'patch_std' or 'none': {norm}")
        if token_valid not in ('all', 'any'):
            raise ValueError("token_valid must be 'all' or 'any'")
        if step_overflow not in ('invalid', 'clamp'):
            raise ValueError("step_overflow must be 'invalid' or 'clamp'")
        self.patch_size = patch_size
        self.norm = norm
        self.std_eps = std_eps
        self.traj_scale = traj_scale
        self.token_valid = token_valid
        self.max_step = max_step
        self.step_overflow = step_overflow
        self.release_compat = release_compat
        self.with_hog = with_hog
        self.min_valid_fraction = min_valid_fraction
        self.keep_positions = keep_positions
        self.min_motion = min_motion

    def transform(self, results: Dict) -> Dict:
        """Build the targets."""
        pos = results['traj_positions']
        step = int(results['traj_grid_step'])
        if self.patch_size % step:
            raise ValueError(f'patch_size {self.patch_size} is not a multiple '
                             f'of the trajectory grid step {step}')
        k = self.patch_size // step
        n, s, gh, gw, _ = pos.shape
        if gh % k or gw % k:
            raise ValueError(f'point grid {gh}x{gw} does not tile into '
                             f'{k}x{k} points per patch: use a frame size '
                             f'that is a multiple of {self.patch_size}')
        if self.release_compat:
            if 'traj_steps' not in results:
                raise KeyError('BuildMMETargets(release_compat=True) needs '
                               'ComputeTrajectories(release_compat=True)')
            disp = results.pop('traj_steps')
        else:
            results.pop('traj_steps', None)
            disp = pos[:, 1:] - pos[:, :-1]  # [N, L, gh, gw, 2]
        # the bound in pixels of the current frame, per axis (x, y)
        bound = self.max_step * np.asarray(
            results.get('scale_factor', (1.0, 1.0)), np.float32)
        too_far = (np.abs(disp) > bound).any(-1).any(1)  # [N, gh, gw]
        if self.step_overflow == 'clamp':
            disp = np.clip(disp, -bound, bound)
            too_far[:] = False
        point_valid = results['traj_valid'] & ~too_far
        reject = self._reject_fractions(results, too_far)
        # set before the refusal below: the dataset checker reads it either way
        results['traj_motion'] = motion_magnitude(
            disp, point_valid, results.get('scale_factor', (1.0, 1.0)))
        # -> [T, L, k, k, 2] -> (coord, step, k*k points)
        num_tokens = n * (gh // k) * (gw // k)
        d = _tokens(disp, k).transpose(0, 4, 1, 2, 3)
        d = d.reshape(num_tokens, 2, s - 1, k * k)
        if self.norm == 'patch_std':
            d = patch_std(d, self.std_eps)
        else:
            d = d / self.traj_scale
        traj_target = d.reshape(num_tokens, -1).astype(np.float32)

        valid_pts = point_valid[:, None, ..., None]
        v = _tokens(valid_pts, k).reshape(num_tokens, -1)
        tok_valid = v.all(-1) if self.token_valid == 'all' else v.any(-1)
        frac = float(tok_valid.mean())
        if frac < self.min_valid_fraction:
            raise UnusableTargetsError(
                f"{results.get('filename', '<clip>')}: only {frac:.1%} of the "
                'tokens have valid trajectories (points left the frame, or '
                f'{float(too_far.mean()):.1%} of the points stepped more than '
                f'{self.max_step} px in a frame; rejected points by reason: '
                + ', '.join(f'{r} {v:.1%}' for r, v in zip(REJECT_REASONS,
                                                          reject)) +
                '). The flow is probably broken (e.g. quantized flow not '
                'de-quantized, a wrong cache, a flow backend that fails on '
                'these frames, a shot cut); refusing to train on empty '
                'targets. Lower min_valid_fraction only if this clip really '
                'is that fast.')
        if not np.isfinite(traj_target).all():
            raise UnusableTargetsError(
                f"{results.get('filename')}: non-finite trajectory targets "
                '(check the flow backend)')
        results['traj_target'] = torch.from_numpy(traj_target)
        results['traj_valid'] = torch.from_numpy(tok_valid)
        results['traj_reject'] = torch.from_numpy(reject)
        results['traj_motionless'] = torch.tensor(
            float(self._motionless(results)))

        if self.with_hog:
            if 'hog' in results:
                hog_tok = _tokens(results['hog'], k).reshape(num_tokens, -1)
                results['hog_target'] = torch.from_numpy(
                    np.ascontiguousarray(hog_tok, dtype=np.float32))
            elif 'hog_frames' not in results:
                raise KeyError(
                    'BuildMMETargets(with_hog=True) needs "hog" (ComputeHOG) '
                    'or "hog_frames" (PrepareHOGInputs, HOG computed by the '
                    "hog target's device_hog) earlier in the pipeline")
            # Trajectory-HOG of points that left the frame is read at a
            # clamped position: use the trajectory validity for it.
            hog_valid = tok_valid if results.get(
                'hog_mode') == 'trajectory' else np.ones_like(tok_valid)
            results['hog_valid'] = torch.from_numpy(hog_valid)
        for key in ('dense_imgs', 'flows', 'flows_bwd', 'hog',
                    'traj_cut_pairs'):
            results.pop(key, None)
        if not self.keep_positions:
            results.pop('traj_point_reason', None)
        if not self.keep_positions:
            results.pop('traj_positions', None)
        return results

    def _motionless(self, results: Dict) -> bool:
        """Whether the clip's targets are near zero (``traj_motion`` below
        ``min_motion``); warn the first time a video is."""
        motion = results['traj_motion']
        if not (self.min_motion > 0 and motion < self.min_motion):
            return False
        name = str(results.get('filename', '<clip>'))
        if name not in _WARNED_MOTIONLESS:
            _WARNED_MOTIONLESS.add(name)
            warnings.warn(
                f'{name}: motionless clip: its valid points move {motion:.3f}'
                f' px per frame on average (< min_motion {self.min_motion} '
                'px), so its trajectory targets are near zero (a still '
                'image?). Trained on as it is; the "motionless" monitor '
                'counts such samples. Warned once per video and worker; '
                'tools/analysis/check_dataset.py lists every such video.')
        return True

    @staticmethod
    def _reject_fractions(results: Dict, too_far: np.ndarray) -> np.ndarray:
        """Fraction of the clip's points rejected for each reason of
        :data:`REJECT_REASONS` (each point counted once, for its first
        reason)."""
        reason = results.get('traj_point_reason')
        if reason is None:  # no CheckTrajectoryReliability step
            reason = np.where(results['traj_valid'], 0,
                              1 + REJECT_REASONS.index('left_frame'))
        reason = np.where((reason == 0) & too_far,
                          1 + REJECT_REASONS.index('too_far'), reason)
        return np.array([(reason == k + 1).mean()
                         for k in range(len(REJECT_REASONS))], np.float32)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'norm={self.norm}, std_eps={self.std_eps}, token_valid='
                f'{self.token_valid}, max_step={self.max_step}, '
                f'step_overflow={self.step_overflow}, release_compat='
                f'{self.release_compat}, with_hog={self.with_hog}, '
                f'min_motion={self.min_motion})')
