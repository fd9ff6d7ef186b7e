"""The ``ComputeHOG`` transform: HOG "shape" features, static (release) or
along the trajectories (paper), from the NumPy kernels of
:mod:`mme_plugin.ops.hog_numpy` (recipe and deviations documented there).

"Along the trajectory" (paper section 3.3: HOG "of the tracked object in
different time steps") samples, for each tracked point and each dense step
t, the cell histogram centred on the point's position in dense frame t. The
cell-histogram map is computed densely (a box filter over per-pixel votes)
and sampled bilinearly, so sub-pixel positions are handled.
"""
from typing import Dict, List

import numpy as np
from mmcv.transforms import BaseTransform

from mme_plugin.ops.hog_numpy import cell_histogram_map, l2_normalize
from mme_plugin.ops.tracking import grid_points, sample_bilinear
from mme_plugin.registry import TRANSFORMS

__all__ = ['tube_frames', 'ComputeHOG']


def tube_frames(results: Dict, frame_in_tube: int) -> List[np.ndarray]:
    """The sparse frame ``frame_in_tube`` of every tube (static HOG)."""
    imgs = results['imgs']
    tubelet = int(results.get('tubelet_size', 2))
    return [np.asarray(imgs[i + frame_in_tube])
            for i in range(0, len(imgs), tubelet)]


@TRANSFORMS.register_module()
class ComputeHOG(BaseTransform):
    """HOG targets for every grid point (and dense step).

    Modes:

    * ``'trajectory'`` (paper): for every tube, tracked point and dense step
      ``t = 0..L``, the cell histogram centred on the point in dense frame
      t. S = L + 1 steps.
    * ``'static'`` (release, ``traj_varient='base'``): the histogram of the
      fixed grid cell in the tube's frame ``frame_in_tube`` (release: the
      tube's 2nd sparse frame). S = 1 step.

    ``D = C * nbins`` (C = 3 for ``'rgb'``, 1 for ``'gray'``).

    Required Keys:

        - dense_imgs (np.ndarray): ``[N, L + 1, H, W, 3]``, ``'trajectory'``
          mode.
        - traj_positions (np.ndarray): ``[N, L + 1, gh, gw, 2]``,
          ``'trajectory'`` mode (:class:`ComputeTrajectories`).
        - imgs (list[np.ndarray]): The sparse frames, ``'static'`` mode.

    Optional Keys:

        - tubelet_size (int): Frames per tube, ``'static'`` mode. Defaults
          to 2.

    Added Keys:

        - hog (np.ndarray): ``[N, S, gh, gw, D]`` float32.
        - hog_mode (str): ``mode``.

    Args:
        mode (str): ``'trajectory'`` or ``'static'``. Defaults to
            ``'trajectory'``.
        nbins (int): Orientation bins. Defaults to 9.
        cell_size (int): Cell size; equals the point spacing. Defaults to 8.
        channels (str): ``'rgb'`` or ``'gray'``. Defaults to ``'rgb'``.
        norm (str): ``'l2'`` (per cell and channel, over bins) or ``'none'``
            (release). Defaults to ``'l2'``.
        eps (float): L2 normalisation epsilon (in gradient units of [0, 1]
            images; keeps near-flat cells near zero). Defaults to 0.02.
        frame_in_tube (int): Static mode: index of the sparse frame inside
            each tube. Defaults to 1 (release).
    """

    def __init__(self,
                 mode: str = 'trajectory',
                 nbins: int = 9,
                 cell_size: int = 8,
                 channels: str = 'rgb',
                 norm: str = 'l2',
                 eps: float = 0.02,
                 frame_in_tube: int = 1) -> None:
        if mode not in ('trajectory', 'static'):
            raise ValueError(f"mode must be 'trajectory' or 'static': {mode}")
        if channels not in ('rgb', 'gray') or norm not in ('l2', 'none'):
            raise ValueError('channels must be rgb|gray and norm l2|none')
        self.mode = mode
        self.nbins = nbins
        self.cell_size = cell_size
        self.channels = channels
        self.norm = norm
        self.eps = eps
        self.frame_in_tube = frame_in_tube

    def _hist(self, img: np.ndarray) -> np.ndarray:
        return cell_histogram_map(img, self.nbins, self.cell_size,
                                  self.channels)

    def transform(self, results: Dict) -> Dict:
        """Compute the HOG features."""
        if self.mode == 'trajectory':
            dense = results['dense_imgs']
            positions = results['traj_positions']
            if positions.shape[1] != dense.shape[1]:
                raise ValueError('traj_positions and dense_imgs disagree on '
                                 'the number of dense steps')
            out = np.stack([
                np.stack([
                    sample_bilinear(self._hist(dense[i, t]), positions[i, t])
                    for t in range(dense.shape[1])
                ]) for i in range(dense.shape[0])
            ])
        else:
            frames = tube_frames(results, self.frame_in_tube)
            h, w = frames[0].shape[:2]
            grid = grid_points(h, w, self.cell_size).astype(np.int64)
            out = np.stack([
                self._hist(f)[grid[..., 1], grid[..., 0]][None]
                for f in frames
            ])
        if self.norm == 'l2':
            out = l2_normalize(out, self.nbins, self.eps)
        results['hog'] = out.astype(np.float32)
        results['hog_mode'] = self.mode
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mode={self.mode}, nbins='
                f'{self.nbins}, cell_size={self.cell_size}, channels='
                f'{self.channels}, norm={self.norm})')
