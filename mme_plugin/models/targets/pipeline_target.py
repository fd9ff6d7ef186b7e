"""Targets the data pipeline builds per token: trajectories and HOG."""
from typing import Dict, List, Optional, Tuple

from torch import Tensor

from mme_plugin.ops.mask_index import gather_tokens
from mme_plugin.registry import MODELS

from .base import MMETarget, stack_samples

__all__ = ['TrajectoryTarget', 'HOGTarget']


def _points_per_patch(patch_size: int, grid_step: int) -> int:
    if patch_size % grid_step:
        raise ValueError(f'patch size {patch_size} is not a multiple of the '
                         f'point / cell spacing {grid_step}')
    return (patch_size // grid_step)**2


@MODELS.register_module()
class TrajectoryTarget(MMETarget):
    """Motion trajectories of the masked tubes (MME's motion target).

    Built per token by the pipeline (``ComputeTrajectories`` ->
    ``BuildMMETargets``: ``traj_target`` ``[N, 2 L k^2]`` and ``traj_valid``
    ``[N]``); this unit gathers them and declares their size: 2 coordinates
    x ``traj_len`` steps x ``k^2`` points (k = patch size / ``grid_step``;
    32 for the release's L = 4, 2 x 2 points).

    Args:
        traj_len (int): Dense steps per tube (``DenseSampleFrames``'s
            ``traj_len``). Defaults to 4.
        grid_step (int): Point spacing (``ComputeTrajectories``'s
            ``grid_step``). Defaults to 8.
        weight (float): Loss weight. Defaults to 1.0.
        feat_dim (int, optional): Override of the derived size.
    """
    key = 'traj'

    def __init__(self, traj_len: int = 4, grid_step: int = 8,
                 weight: float = 1.0,
                 feat_dim: Optional[int] = None) -> None:
        super().__init__(weight, feat_dim)
        self.traj_len = traj_len
        self.grid_step = grid_step

    def derived_dim(self) -> int:
        """``2 * traj_len * k^2``."""
        return 2 * self.traj_len * _points_per_patch(self.patch_size,
                                                     self.grid_step)

    def __call__(self, model, inputs: Tensor, data_samples: List
                 ) -> Tuple[Tensor, Optional[Tensor]]:
        """Stack the pipeline's per-token trajectories and validity."""
        target = stack_samples(data_samples, 'traj_target', inputs.device)
        if target is None:
            raise KeyError(
                'data samples have no "traj_target": the pipeline must build '
                'it (BuildMMETargets) and pack it (PackMMEInputs, or '
                'PackActionInputs algorithm_keys)')
        valid = stack_samples(data_samples, 'traj_valid', inputs.device)
        return target, None if valid is None else valid.bool()


@MODELS.register_module()
class HOGTarget(MMETarget):
    """Shape (HOG) features of the masked tubes (MME's shape target).

    Either built per token by the pipeline (``ComputeHOG`` ->
    ``BuildMMETargets``: ``hog_target``), or computed here on the model's
    device (``device_hog``, e.g. ``dict(type='PointHOG', ...)``) from the
    ``hog_frames`` and ``hog_points`` of ``PrepareHOGInputs``, the release's
    placement. Size: steps (``traj_len + 1`` along the trajectory, 1 static)
    x ``k^2`` cells x channels (3 rgb, 1 gray) x ``nbins``.

    Args:
        traj_len (int): Dense steps per tube. Defaults to 4.
        mode (str): ``'trajectory'`` (paper) or ``'static'`` (release).
            Defaults to ``'trajectory'``.
        cell_size (int): HOG cell size = point spacing. Defaults to 8.
        channels (str): ``'rgb'`` or ``'gray'``. Defaults to ``'rgb'``.
        nbins (int): Orientation bins. Defaults to 9.
        device_hog (dict, optional): Config of the on-device HOG
            (:class:`PointHOG`), used when the samples carry
            ``hog_frames`` instead of ``hog_target``. Defaults to None.
        weight (float): Loss weight. Defaults to 1.0.
        feat_dim (int, optional): Override of the derived size.
    """
    key = 'hog'
    #: Can compute only the tokens the loss reads (``token_idx``).
    selects_tokens = True

    def __init__(self, traj_len: int = 4, mode: str = 'trajectory',
                 cell_size: int = 8, channels: str = 'rgb', nbins: int = 9,
                 device_hog: Optional[Dict] = None, weight: float = 1.0,
                 feat_dim: Optional[int] = None) -> None:
        super().__init__(weight, feat_dim)
        if mode not in ('trajectory', 'static'):
            raise ValueError("mode must be 'trajectory' or 'static'")
        if channels not in ('rgb', 'gray'):
            raise ValueError("channels must be 'rgb' or 'gray'")
        self.traj_len = traj_len
        self.mode = mode
        self.cell_size = cell_size
        self.channels = channels
        self.nbins = nbins
        self.device_hog = (MODELS.build(device_hog)
                           if device_hog is not None else None)

    def derived_dim(self) -> int:
        """``steps * k^2 * channels * nbins``."""
        steps = self.traj_len + 1 if self.mode == 'trajectory' else 1
        return (steps * _points_per_patch(self.patch_size, self.cell_size) *
                (3 if self.channels == 'rgb' else 1) * self.nbins)

    def __call__(self, model, inputs: Tensor, data_samples: List,
                 token_idx: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Optional[Tensor]]:
        """The pipeline's ``hog_target``, or HOG computed on the device;
        with ``token_idx`` (``[B, M]``), of those tokens only."""
        device = inputs.device
        target = stack_samples(data_samples, 'hog_target', device)
        if target is None:
            target = self._on_device(data_samples, device, token_idx)
        elif token_idx is not None:
            target = gather_tokens(target, token_idx)
        if target is None:
            raise KeyError(
                'data samples have no "hog_target": the pipeline must build '
                'it (BuildMMETargets) and pack it (PackMMEInputs, or '
                'PackActionInputs algorithm_keys), or pack the hog_frames '
                "and hog_points of PrepareHOGInputs for the on-device HOG")
        valid = stack_samples(data_samples, 'hog_valid', device)
        if valid is not None and token_idx is not None:
            valid = gather_tokens(valid, token_idx)
        return target, None if valid is None else valid.bool()

    def _on_device(self, data_samples: List, device,
                   token_idx: Optional[Tensor] = None) -> Optional[Tensor]:
        frames = stack_samples(data_samples, 'hog_frames', device)
        if frames is None:
            return None
        if self.device_hog is None:
            raise KeyError(
                'data samples carry hog_frames (PrepareHOGInputs) but the '
                "hog target has no device_hog: set device_hog=dict(type="
                "'PointHOG') in the hog target of the MME model config "
                "(legacy configs: MME(hog_target=dict(type='PointHOG')))")
        points = stack_samples(data_samples, 'hog_points', device)
        if points is None:
            raise KeyError("data samples carry hog_frames but no hog_points:"
                           " pack both (PackActionInputs algorithm_keys)")
        return self.device_hog(frames, points, self.patch_size,
                               token_idx=token_idx)
