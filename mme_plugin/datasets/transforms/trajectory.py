"""The ``ComputeTrajectories`` transform: the point tracker of
:mod:`mme_plugin.ops.tracking` applied to every tube of a sample (the
tracker's rules and its deviations from the release are documented there).
"""
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform

from mme_plugin.ops.tracking import (grid_points, inside_frame, track_all,
                                     track_points)
from mme_plugin.registry import TRANSFORMS

__all__ = ['ComputeTrajectories']


@TRANSFORMS.register_module()
class ComputeTrajectories(BaseTransform):
    """Track a point grid through each tube's flows.

    gh, gw = H // grid_step, W // grid_step points per tube.

    Required Keys:

        - flows (np.ndarray): ``[N, L, H, W, 2]`` forward flows
          (:class:`ComputeFlow`); at a reduced resolution from
          ``ComputeFlow(full_res=False)``, sampled there, the frame size
          then being that of ``dense_imgs``.

    Optional Keys:

        - dense_imgs (np.ndarray): ``[N, L + 1, H, W, 3]``; gives the frame
          size (H, W) when the flows are at a reduced resolution.

    Added Keys:

        - traj_positions (np.ndarray): ``[N, L + 1, gh, gw, 2]`` float32,
          (x, y) in pixels of the current frame.
        - traj_point_valid (np.ndarray): ``[N, gh, gw]`` bool, per
          **point**: the trajectory stayed inside the frame
          (:class:`CheckTrajectoryReliability` narrows it,
          :class:`BuildMMETargets` turns it into the per-token
          ``traj_valid``).
        - traj_grid_step (int): ``grid_step``.
        - traj_steps (np.ndarray): ``[N, L, gh, gw, 2]``, only under
          ``release_compat``: the release's per-step displacements, see
          :func:`track_points`.

    Args:
        grid_step (int): Point spacing in pixels; ``patch_size / grid_step``
            points per patch side. Defaults to 8 (release).
        release_compat (bool): Released tracker behaviour, see
            :func:`track_points`. Defaults to False.
    """

    def __init__(self, grid_step: int = 8,
                 release_compat: bool = False) -> None:
        self.grid_step = grid_step
        self.release_compat = release_compat

    def transform(self, results: Dict) -> Dict:
        """Track the points."""
        flows = results['flows']
        n, _, fh, fw = flows.shape[:4]
        h, w = (results['dense_imgs'].shape[2:4]
                if 'dense_imgs' in results else (fh, fw))
        start = grid_points(h, w, self.grid_step)
        if self.release_compat:
            if (fh, fw) != (h, w):
                raise ValueError('release_compat tracking needs full-size '
                                 'flows: use ComputeFlow(full_res=True)')
            tracks = [track_points(flows[i], start, True, return_steps=True)
                      for i in range(n)]
            positions, valids, steps = (np.stack(x) for x in zip(*tracks))
            results['traj_steps'] = steps
        else:
            positions = track_all(flows, start, (w, h))
            valids = inside_frame(positions, h, w).all(1)
        results['traj_positions'] = positions
        results['traj_point_valid'] = valids
        results['traj_grid_step'] = self.grid_step
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(grid_step={self.grid_step}, '
                f'release_compat={self.release_compat})')
