"""Hand the HOG inputs to the model instead of computing HOG in a worker.

HOG along the trajectory needs a 27-channel cell-histogram map of every dense
frame (40 per clip in the recipe); on one CPU thread that is 0.3-0.65 s per
clip, many times the rest of the worker's work (``docs/benchmarks.md``).
The release computes its HOG on the GPU inside the training step
(``docs/release_spec.md`` 2.7, ``engine.py:80-103``). :class:`PrepareHOGInputs`
does the cheap part here: it keeps the (cropped, resized) frames and the
points whose histograms are wanted, and the hog target's ``device_hog``
(:class:`~mme_plugin.models.PointHOG`) computes the histograms on the
training device.
"""
from typing import Dict

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mme_plugin.ops.tracking import grid_points
from mme_plugin.registry import TRANSFORMS

from .hog import tube_frames

__all__ = ['PrepareHOGInputs']


@TRANSFORMS.register_module()
class PrepareHOGInputs(BaseTransform):
    """Keep the frames and points for HOG computed by the model.

    Modes (as :class:`ComputeHOG`):

    * ``'trajectory'``: the dense frames and the tracked positions
      (S = L + 1 steps).
    * ``'static'``: the tube's frame ``frame_in_tube`` and the fixed grid
      (S = 1 step).

    Required Keys:

        - dense_imgs (np.ndarray): ``[N, L + 1, H, W, 3]``,
          ``'trajectory'`` mode.
        - traj_positions (np.ndarray): ``[N, L + 1, gh, gw, 2]``,
          ``'trajectory'`` mode.
        - imgs (list[np.ndarray]): The sparse frames, ``'static'`` mode.

    Optional Keys:

        - traj_grid_step (int): ``'static'`` mode grid step (from
          :class:`ComputeTrajectories`); ``grid_step`` without it.
        - tubelet_size (int): Frames per tube, ``'static'`` mode.

    Added Keys:

        - hog_frames (Tensor): ``[N, S, H, W, 3]`` uint8.
        - hog_points (Tensor): ``[N, S, gh, gw, 2]`` float32.
        - hog_mode (str): ``mode``.

    The tensors are packed by ``PackMMEInputs`` through ``algorithm_keys``;
    :class:`BuildMMETargets` then sets ``hog_valid``. The batch grows by
    the frames (6 MB per clip at 8 tubes x 5 frames x 224 x 224).

    Args:
        mode (str): ``'trajectory'`` or ``'static'``. Defaults to
            ``'trajectory'``.
        frame_in_tube (int): Static mode: sparse frame inside each tube.
            Defaults to 1 (release).
        grid_step (int): Static mode grid step when no trajectories were
            computed. Defaults to 8.
    """

    def __init__(self, mode: str = 'trajectory', frame_in_tube: int = 1,
                 grid_step: int = 8) -> None:
        if mode not in ('trajectory', 'static'):
            raise ValueError(f"mode must be 'trajectory' or 'static': {mode}")
        self.mode = mode
        self.frame_in_tube = frame_in_tube
        self.grid_step = grid_step

    def transform(self, results: Dict) -> Dict:
        """Store ``hog_frames`` and ``hog_points``."""
        if self.mode == 'trajectory':
            frames = np.asarray(results['dense_imgs'])
            points = results['traj_positions']
            if points.shape[:2] != frames.shape[:2]:
                raise ValueError(
                    f'traj_positions {points.shape[:2]} and dense_imgs '
                    f'{frames.shape[:2]} disagree on tubes x dense steps')
        else:
            frames = np.stack(tube_frames(results, self.frame_in_tube))
            frames = frames[:, None]  # one step per tube
            h, w = frames.shape[2:4]
            step = int(results.get('traj_grid_step', self.grid_step))
            grid = grid_points(h, w, step)
            points = np.broadcast_to(grid, (frames.shape[0], 1) + grid.shape)
        results['hog_frames'] = torch.from_numpy(
            np.ascontiguousarray(frames, dtype=np.uint8))
        results['hog_points'] = torch.from_numpy(
            np.ascontiguousarray(points, dtype=np.float32))
        results['hog_mode'] = self.mode
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mode={self.mode}, '
                f'frame_in_tube={self.frame_in_tube})')
