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
from typing import Dict, Optional, Set, Tuple

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


#: Intermediates dropped once the targets are built.
_INTERMEDIATE_KEYS = ('dense_imgs', 'flows', 'flows_bwd', 'hog',
                      'traj_cut_pairs')
#: Per-point keys, kept only with ``keep_positions`` (visualisation).
_POINT_KEYS = ('traj_point_reason', 'traj_point_valid', 'traj_positions')

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

    T = N * (H / patch) * (W / patch) tokens, k = patch / grid step points
    per patch side, S dense steps of HOG per token (L + 1 along the
    trajectory, 1 static), D HOG features per point and step.

    Required Keys:

        - traj_positions (np.ndarray): ``[N, L + 1, gh, gw, 2]`` tracked
          positions (:class:`ComputeTrajectories`).
        - traj_point_valid (np.ndarray): ``[N, gh, gw]`` bool, per point
          (:class:`ComputeTrajectories`, narrowed by
          :class:`CheckTrajectoryReliability`).
        - traj_grid_step (int): Point spacing in pixels.
        - traj_steps (np.ndarray): ``[N, L, gh, gw, 2]``, only under
          ``release_compat`` (``ComputeTrajectories(release_compat=True)``).
        - hog (np.ndarray) or hog_frames (Tensor): if ``with_hog``:
          ``[N, S, gh, gw, D]`` features (:class:`ComputeHOG`), or the
          frames the model computes them from (:class:`PrepareHOGInputs`).

    Optional Keys:

        - scale_factor: Resize factor (x, y) of the frames; converts
          ``max_step`` and ``traj_motion`` between the decoded video and the
          current frame. Defaults to (1, 1).
        - traj_point_reason (np.ndarray): ``[N, gh, gw]`` uint8 reason codes
          (:class:`CheckTrajectoryReliability`); without it a point is
          either valid or ``left_frame``.
        - hog_mode (str): ``'trajectory'`` or ``'static'``.
        - filename (str): For messages.

    Added Keys:

        - traj_target (Tensor): ``[T, 2 L k^2]`` float32 (module doc).
        - traj_valid (Tensor): ``[T]`` bool, per **token**: the token's
          points are valid (``token_valid``) and stepped at most
          ``max_step``.
        - traj_reject (Tensor): ``[len(REJECT_REASONS)]`` float32: the
          fraction of the clip's points rejected for each reason of
          :data:`REJECT_REASONS`; pack it to have the model log
          ``reject_<reason>``.
        - traj_motionless (Tensor): ``[]`` float32: 1 if the clip's valid
          points move less than ``min_motion``, i.e. its trajectory targets
          are near zero; the model logs its batch mean as ``motionless``.
        - traj_motion (float): That motion in pixels of the decoded video
          per frame (:func:`~mme_plugin.ops.motion_magnitude`); not packed,
          read by ``tools/analysis/check_dataset.py``. Set before a refusal
          too.
        - hog_target (Tensor): ``[T, S k^2 D]`` float32, if ``with_hog``
          and ``hog`` is given (not after :class:`PrepareHOGInputs`, whose
          ``hog_frames`` and ``hog_points`` stay for the model).
        - hog_valid (Tensor): ``[T]`` bool, if ``with_hog``: the token
          validity in ``'trajectory'`` HOG mode (points that left the frame
          are read at a clamped position), all True otherwise.

    Removed Keys (large intermediates): ``dense_imgs``, ``flows``,
    ``flows_bwd``, ``hog``, ``traj_cut_pairs``, ``traj_steps``; unless
    ``keep_positions`` (visualisation) also ``traj_positions``,
    ``traj_point_valid`` and ``traj_point_reason``.

    A motionless clip is warned about once per video and process, and
    trained on as it is (its targets are not changed). A clip with too few
    valid tokens or non-finite targets raises :class:`UnusableTargetsError`.

    Each target has its own step (:meth:`trajectory_targets`,
    :meth:`token_validity`, :meth:`hog_targets`), called in order by
    :meth:`transform`; a new per-token target is one more such method.

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
        keep_positions (bool): Keep ``traj_positions``,
            ``traj_point_valid`` and ``traj_point_reason``. Defaults to
            False.
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
        """Build the targets (steps in the order of the class doc).

        Args:
            results (dict): The pipeline's results, with the required keys.

        Returns:
            dict: ``results`` with the added keys, intermediates removed.

        Raises:
            UnusableTargetsError: Too few valid tokens, or non-finite
                targets (:meth:`refuse_unusable`).
        """
        k = self.points_per_side(results)
        disp, too_far = self.step_displacements(results)
        point_valid = results['traj_point_valid'] & ~too_far
        reject = self._reject_fractions(results, too_far)
        # set before the refusal below: the dataset checker reads it either way
        results['traj_motion'] = motion_magnitude(
            disp, point_valid, results.get('scale_factor', (1.0, 1.0)))
        traj_target = self.trajectory_targets(disp, k)
        tok_valid = self.token_validity(point_valid, k)
        self.refuse_unusable(results, traj_target, tok_valid, too_far,
                             reject)
        results['traj_target'] = torch.from_numpy(traj_target)
        results['traj_valid'] = torch.from_numpy(tok_valid)
        results['traj_reject'] = torch.from_numpy(reject)
        results['traj_motionless'] = torch.tensor(
            float(self._motionless(results)))
        if self.with_hog:
            self.hog_targets(results, k, tok_valid)
        self.drop_intermediates(results)
        return results

    def points_per_side(self, results: Dict) -> int:
        """k: trajectory points per patch side.

        Raises:
            ValueError: If the patch is not a multiple of the grid step, or
                the point grid does not tile into patches.
        """
        step = int(results['traj_grid_step'])
        if self.patch_size % step:
            raise ValueError(f'patch_size {self.patch_size} is not a multiple '
                             f'of the trajectory grid step {step}')
        k = self.patch_size // step
        gh, gw = results['traj_positions'].shape[2:4]
        if gh % k or gw % k:
            raise ValueError(f'point grid {gh}x{gw} does not tile into '
                             f'{k}x{k} points per patch: use a frame size '
                             f'that is a multiple of {self.patch_size}')
        return k

    def step_displacements(self, results: Dict
                           ) -> Tuple[np.ndarray, np.ndarray]:
        """Per-step displacements and the points with an implausible step.

        Pops ``traj_steps`` (the release's displacements, used under
        ``release_compat``).

        Returns:
            tuple[np.ndarray, np.ndarray]: ``[N, L, gh, gw, 2]``
            displacements (clamped to ``max_step`` under
            ``step_overflow='clamp'``) and ``[N, gh, gw]`` bool, a step
            beyond ``max_step`` (all False under ``'clamp'``).

        Raises:
            KeyError: ``release_compat`` without ``traj_steps``.
        """
        pos = results['traj_positions']
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
        return disp, too_far

    def trajectory_targets(self, disp: np.ndarray, k: int) -> np.ndarray:
        """``[T, 2 L k^2]`` float32 targets, laid out (coord, step, point),
        normalised by ``norm`` (module doc).

        Args:
            disp (np.ndarray): ``[N, L, gh, gw, 2]`` displacements.
            k (int): Points per patch side.
        """
        tok = _tokens(disp, k)  # [T, L, k, k, 2]
        num_tokens, num_steps = tok.shape[:2]
        d = tok.transpose(0, 4, 1, 2, 3).reshape(num_tokens, 2, num_steps,
                                                 k * k)
        if self.norm == 'patch_std':
            d = patch_std(d, self.std_eps)
        else:
            d = d / self.traj_scale
        return d.reshape(num_tokens, -1).astype(np.float32)

    def token_validity(self, point_valid: np.ndarray, k: int) -> np.ndarray:
        """``[T]`` bool: all (``token_valid='all'``) or any of a token's
        ``[N, gh, gw]`` per-point validities."""
        v = _tokens(point_valid[:, None, ..., None], k)
        v = v.reshape(v.shape[0], -1)
        return v.all(-1) if self.token_valid == 'all' else v.any(-1)

    def refuse_unusable(self, results: Dict, traj_target: np.ndarray,
                        tok_valid: np.ndarray, too_far: np.ndarray,
                        reject: np.ndarray) -> None:
        """Raise :class:`UnusableTargetsError` for a clip with fewer than
        ``min_valid_fraction`` valid tokens or non-finite targets, naming
        the rejected points by reason."""
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

    def hog_targets(self, results: Dict, k: int,
                    tok_valid: np.ndarray) -> None:
        """Add ``hog_target`` (from ``hog``) and ``hog_valid``.

        Raises:
            KeyError: Neither ``hog`` nor ``hog_frames`` is given.
        """
        if 'hog' in results:
            hog_tok = _tokens(results['hog'], k).reshape(len(tok_valid), -1)
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

    def drop_intermediates(self, results: Dict) -> None:
        """Remove the large intermediates; the per-point keys too unless
        ``keep_positions``."""
        for key in _INTERMEDIATE_KEYS:
            results.pop(key, None)
        if not self.keep_positions:
            for key in _POINT_KEYS:
                results.pop(key, None)

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
            reason = np.where(results['traj_point_valid'], 0,
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
