"""Reject trajectories the flow cannot vouch for (occlusion, shot cuts).

The release tracks every grid point through every flow and trains on the
result, however wrong (it only clamps steps at +-20 px). This transform, put
between :class:`ComputeTrajectories` and :class:`BuildMMETargets`, marks a
point's trajectory invalid when

* **forward-backward check** (``fb_check``, needs
  ``ComputeFlow(backward=True)``): at some step, the backward flow read at
  the point's new position does not bring it back (Sundaram et al. 2010's
  occlusion test, :func:`~mme_plugin.ops.fb_inconsistent`): the point was
  occluded, left a moving object, or the flow failed there. Every later
  position of the point depends on that step, and the target is the whole
  trajectory, so the whole trajectory is invalid;
* **photometric check** (``photo_check``, frames only): the (slightly
  blurred) grey level at the point's new position differs from the one it
  left by more than ``photo_threshold``: the point landed on other content,
  typically an occluder that the smooth flow dragged it onto. Real flow
  estimators smear motion across occlusion boundaries, so the
  forward-backward check alone misses most occluded points there
  (``docs/benchmarks.md``);
* **shot cut** (``cut_check``, forward flow and frames only): a frame pair
  inside the tube cannot be warped onto each other over most of the frame,
  or their grey histograms jump while a good part of the frame fails to
  warp. Then all trajectories of that tube are invalid.

Thresholds are in pixels of the decoded video (converted with the resize's
``scale_factor``, like ``BuildMMETargets.max_step``). Their defaults were
chosen by measurement on the built-in synthetic data and on spliced clips
(``benchmarks/flow_reliability.py``, ``docs/benchmarks.md``).

The per-point validity ``traj_point_valid`` is narrowed, and each point's
reason recorded (``traj_point_reason``); keys in the class doc. Under
``release_compat`` nothing is rejected (the release has no such check) and
only the reasons are recorded.
"""
from typing import Dict, Optional, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mme_plugin.ops.flow import resize_flow
from mme_plugin.ops.flow_reliability import (REJECT_REASONS,
                                             cut_statistics, fb_inconsistent)
from mme_plugin.ops.tracking import sample_bilinear_batch, sample_flow_at
from mme_plugin.registry import TRANSFORMS

__all__ = ['CheckTrajectoryReliability', 'REJECT_REASONS']


@TRANSFORMS.register_module()
class CheckTrajectoryReliability(BaseTransform):
    """Invalidate occluded / badly tracked points and tubes across a cut.

    Required Keys:

        - traj_positions (np.ndarray): ``[N, L + 1, gh, gw, 2]``
          (:class:`ComputeTrajectories`).
        - traj_point_valid (np.ndarray): ``[N, gh, gw]`` bool, per point.
        - flows (np.ndarray): ``[N, L, h, w, 2]`` forward flows.
        - dense_imgs (np.ndarray): ``[N, L + 1, H, W, 3]`` uint8 frames.
        - flows_bwd (np.ndarray): ``[N, L, h, w, 2]`` backward flows, only
          with ``fb_check`` (``ComputeFlow(backward=True)``).

    Optional Keys:

        - scale_factor: Resize factor (x, y), converting the pixel
          tolerances from the decoded video to the current frame.

    Modified Keys:

        - traj_point_valid: Points failing a check are made invalid
          (unchanged under ``release_compat``).

    Added Keys:

        - traj_point_reason (np.ndarray): ``[N, gh, gw]`` uint8: 0 valid,
          else 1 + the index in :data:`REJECT_REASONS` of why the point is
          invalid, one reason per point (``left_frame`` for a point already
          invalid, then ``shot_cut`` before ``fb_check`` before
          ``photo_check``), for pictures and statistics.
        - traj_cut_pairs (np.ndarray): ``[N, L]`` bool: the dense frame pair
          (t, t + 1) of the tube looks like a shot cut.

    Args:
        fb_check (bool): Forward-backward check. Defaults to True.
        fb_alpha (float): Relative tolerance of the check. Defaults to 0.01
            (Sundaram et al.).
        fb_beta (float): Absolute tolerance, squared pixels of the decoded
            video. Defaults to 0.5 (Sundaram et al.).
        photo_check (bool): Photometric check. Defaults to True.
        photo_threshold (float): Largest grey-level change (0-255) along one
            step. Defaults to 10.
        photo_sigma (float): Gaussian blur (pixels) of the grey frames before
            sampling, so sub-pixel tracking errors on sharp edges do not
            count; 0 = none. Defaults to 1.
        cut_check (bool): Shot-cut check. Defaults to True.
        cut_warp_threshold (float): Grey-level error above which a pixel
            fails to warp. Defaults to 25.
        cut_warp_fraction (float): A pair is a cut when more than this
            fraction of its pixels fails to warp. Defaults to 0.4.
        cut_hist_distance (float): ... or when the grey histograms differ by
            more than this (L1, 0-2) and more than half of
            ``cut_warp_fraction`` fails to warp. Defaults to 0.5.
        cut_size (int): The cut test runs on frames and flows reduced to at
            most this many pixels per side. Defaults to 64.
        release_compat (bool): Reject nothing (the release's behaviour);
            reasons are still recorded. Defaults to False.
    """

    def __init__(self,
                 fb_check: bool = True,
                 fb_alpha: float = 0.01,
                 fb_beta: float = 0.5,
                 photo_check: bool = True,
                 photo_threshold: float = 10.0,
                 photo_sigma: float = 1.0,
                 cut_check: bool = True,
                 cut_warp_threshold: float = 25.0,
                 cut_warp_fraction: float = 0.4,
                 cut_hist_distance: float = 0.5,
                 cut_size: int = 64,
                 release_compat: bool = False) -> None:
        self.fb_check = fb_check
        self.fb_alpha = fb_alpha
        self.fb_beta = fb_beta
        self.photo_check = photo_check
        self.photo_threshold = photo_threshold
        self.photo_sigma = photo_sigma
        self.cut_check = cut_check
        self.cut_warp_threshold = cut_warp_threshold
        self.cut_warp_fraction = cut_warp_fraction
        self.cut_hist_distance = cut_hist_distance
        self.cut_size = cut_size
        self.release_compat = release_compat

    @staticmethod
    def fb_steps(results: Dict) -> Tuple[np.ndarray, np.ndarray]:
        """Each point's forward step ``w`` and the backward flow ``w_hat``
        read where the step lands: two ``[N, L, gh, gw, 2]`` arrays (frame
        pixels), the inputs of the forward-backward test."""
        if 'flows_bwd' not in results:
            raise KeyError(
                'CheckTrajectoryReliability(fb_check=True) needs backward '
                'flows: set ComputeFlow(backward=True) in the pipeline, or '
                'fb_check=False to keep only the shot-cut check')
        pos = results['traj_positions']
        bwd = results['flows_bwd']
        h, w = results['dense_imgs'].shape[2:4]
        back = np.stack([sample_flow_at(bwd[:, t], pos[:, t + 1], (w, h))
                         for t in range(pos.shape[1] - 1)], 1)
        return pos[:, 1:] - pos[:, :-1], back

    def fb_failures(self, results: Dict) -> np.ndarray:
        """``[N, L, gh, gw]`` bool: the step fails the forward-backward
        test (not cumulative)."""
        fwd, back = self.fb_steps(results)
        # the tolerance in pixels of the current frame
        scale = float(np.mean(results.get('scale_factor', (1.0, 1.0))))
        return fb_inconsistent(fwd, back, self.fb_alpha,
                               self.fb_beta * scale**2)

    def _grays(self, results: Dict) -> np.ndarray:
        """Grey levels of every dense frame, Gaussian-blurred by
        ``photo_sigma``: ``[N, S, H, W]`` uint8 (shared by the photometric
        and the cut checks)."""
        dense = results['dense_imgs']
        n, s, h, w = dense.shape[:4]
        k = 2 * int(np.ceil(2 * self.photo_sigma)) + 1
        out = np.empty((n * s, h, w), np.uint8)
        for i, f in enumerate(dense.reshape(-1, h, w, dense.shape[-1])):
            g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
            out[i] = cv2.GaussianBlur(g, (k, k), self.photo_sigma) \
                if self.photo_sigma > 0 else g
        return out.reshape(n, s, h, w)

    def photo_failures(self, results: Dict,
                       grays: Optional[np.ndarray] = None) -> np.ndarray:
        """``[N, L, gh, gw]`` bool: the grey level at the point's new
        position differs from the one it left by more than
        ``photo_threshold`` (the point landed on other content)."""
        pos = results['traj_positions']
        grays = self._grays(results) if grays is None else grays
        vals = np.stack([
            sample_bilinear_batch(grays[:, t, ..., None], pos[:, t])[..., 0]
            for t in range(grays.shape[1])], 1)  # [N, S, gh, gw]
        return np.abs(np.diff(vals, axis=1)) > self.photo_threshold

    def cut_pairs(self, results: Dict,
                  grays: Optional[np.ndarray] = None) -> np.ndarray:
        """``[N, L]`` bool: the dense frame pair (t, t + 1) of the tube looks
        like a shot cut (measured on frames and flows reduced to at most
        ``cut_size`` pixels: the test is about most of the frame)."""
        grays = self._grays(results) if grays is None else grays
        flows = results['flows']
        n, num = flows.shape[:2]
        gh, gw = grays.shape[2:4]
        f = int(np.ceil(max(gh, gw) / self.cut_size))  # integer: fast
        size = (max(8, gw // f), max(8, gh // f))
        small = np.stack([
            cv2.resize(g, size, interpolation=cv2.INTER_AREA)
            if size != (gw, gh) else g for g in grays.reshape(-1, gh, gw)
        ]).astype(np.float32).reshape(n, grays.shape[1], size[1], size[0])
        fl = np.stack([resize_flow(x, size) if x.shape[:2] != size[::-1]
                       else x for x in flows.reshape(-1, *flows.shape[2:])])
        st = cut_statistics(small[:, :-1].reshape(-1, size[1], size[0]),
                            small[:, 1:].reshape(-1, size[1], size[0]), fl,
                            self.cut_warp_threshold)
        cuts = (st['warp_fail'] > self.cut_warp_fraction) | (
            (st['hist_distance'] > self.cut_hist_distance)
            & (st['warp_fail'] > self.cut_warp_fraction / 2))
        return cuts.reshape(n, num)

    def transform(self, results: Dict) -> Dict:
        """Check every trajectory; update ``traj_point_valid``."""
        valid = np.asarray(results['traj_point_valid'], bool)
        n, gh, gw = valid.shape
        reason = np.zeros((n, gh, gw), np.uint8)
        reason[~valid] = 1 + REJECT_REASONS.index('left_frame')
        cut_pairs = np.zeros((n, results['flows'].shape[1]), bool)
        rejected = np.zeros_like(valid)
        if self.fb_check:
            fb = self.fb_failures(results).any(1)
            reason[valid & fb] = 1 + REJECT_REASONS.index('fb_check')
            rejected |= fb
        grays = self._grays(results) if (self.photo_check or
                                         self.cut_check) else None
        if self.photo_check:
            photo = self.photo_failures(results, grays).any(1)
            reason[valid & (reason == 0) & photo] = \
                1 + REJECT_REASONS.index('photo_check')
            rejected |= photo
        if self.cut_check:
            cut_pairs = self.cut_pairs(results, grays)
            cut = np.broadcast_to(cut_pairs.any(1)[:, None, None], valid.shape)
            reason[valid & cut] = 1 + REJECT_REASONS.index('shot_cut')
            rejected |= cut
        if not self.release_compat:
            results['traj_point_valid'] = valid & ~rejected
        results['traj_point_reason'] = reason
        results['traj_cut_pairs'] = cut_pairs
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(fb_check={self.fb_check}, '
                f'fb_alpha={self.fb_alpha}, fb_beta={self.fb_beta}, '
                f'photo_check={self.photo_check}, photo_threshold='
                f'{self.photo_threshold}, photo_sigma={self.photo_sigma}, '
                f'cut_check={self.cut_check}, cut_warp_threshold='
                f'{self.cut_warp_threshold}, cut_warp_fraction='
                f'{self.cut_warp_fraction}, cut_hist_distance='
                f'{self.cut_hist_distance}, cut_size={self.cut_size}, '
                f'release_compat='
                f'{self.release_compat})')
