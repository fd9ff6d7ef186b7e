"""Targets the data pipeline builds per token: trajectories and HOG."""
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from mme_plugin.ops.flow_reliability import REJECT_REASONS
from mme_plugin.ops.mask_index import gather_tokens
from mme_plugin.registry import MODELS

from .base import MMETarget, stack_samples
from .point_hog import PointHOG

__all__ = ['TrajectoryTarget', 'HOGTarget', 'trajectory_monitors']


def _points_per_patch(patch_size: int, grid_step: int) -> int:
    if patch_size % grid_step:
        raise ValueError(f'patch size {patch_size} is not a multiple of the '
                         f'point / cell spacing {grid_step}')
    return (patch_size // grid_step)**2


@torch.no_grad()
def trajectory_monitors(data_samples: List,
                        device: torch.device) -> Dict[str, Tensor]:
    """Monitors of the pipeline's point tracking, where the samples carry
    them (``BuildMMETargets``): ``reject_<reason>``, the fraction of points
    rejected per reason of ``REJECT_REASONS`` (``traj_reject``),
    ``motionless``, the fraction of clips whose valid points barely move
    (``traj_motionless``), and, where the model computes the targets
    (:class:`~mme_plugin.models.MotionTargetGenerator`), ``unusable``, the
    fraction of clips whose targets were refused (``traj_unusable``)."""
    logs = {}
    reject = stack_samples(data_samples, 'traj_reject', device)
    if reject is not None:
        for k, why in enumerate(REJECT_REASONS):
            logs[f'reject_{why}'] = reject[:, k].float().mean()
    still = stack_samples(data_samples, 'traj_motionless', device)
    if still is not None:
        logs['motionless'] = still.float().mean()
    unusable = stack_samples(data_samples, 'traj_unusable', device)
    if unusable is not None:
        logs['unusable'] = unusable.float().mean()
    return logs


@MODELS.register_module()
class TrajectoryTarget(MMETarget):
    """Motion trajectories of the masked tubes (MME's motion target).

    Built per token by the pipeline (``ComputeTrajectories`` ->
    ``BuildMMETargets``: ``traj_target`` ``[N, 2 L k^2]`` and ``traj_valid``
    ``[N]``); this unit gathers them and declares their size: 2 coordinates
    x ``traj_len`` steps x ``k^2`` points (k = patch size / ``grid_step``;
    32 for the release's L = 4, 2 x 2 points).

    Args:
        traj_len (int): Dense steps per tube (``MMESampleFrames``'s
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

    def compute(self, model, inputs: Tensor, data_samples: List
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

    @torch.no_grad()
    def monitors(self, name: str, target: Tensor, valid: Optional[Tensor],
                 data_samples: List) -> Dict[str, Tensor]:
        """``<name>_target_abs``, ``<name>_valid`` (fraction of the loss's
        tokens with a valid trajectory) and :func:`trajectory_monitors`."""
        logs = super().monitors(name, target, valid, data_samples)
        if valid is not None:
            logs[f'{name}_valid'] = valid.float().mean()
        logs.update(trajectory_monitors(data_samples, target.device))
        return logs

    def extra_repr(self) -> str:
        return (f'traj_len={self.traj_len}, grid_step={self.grid_step}, '
                + super().extra_repr())


@MODELS.register_module()
class HOGTarget(MMETarget):
    """Shape (HOG) features of the masked tubes (MME's shape target).

    Size: steps (``traj_len + 1`` along the trajectory, 1 static) x ``k^2``
    cells x channels (3 rgb, 1 gray) x ``nbins``. Where they come from is
    ``source``:

    * ``'pipeline'``: built per token by the pipeline (``ComputeHOG`` ->
      ``BuildMMETargets``: ``hog_target``);
    * ``'device'``: computed here, on the model's device, by the target's
      own :class:`PointHOG` (built from ``cell_size``, ``channels``,
      ``nbins``, ``norm``, ``eps``, ``chunk``) from the ``hog_frames`` and
      ``hog_points`` of ``PrepareHOGInputs`` (the release's placement),
      only for the tokens the loss reads;
    * ``'auto'`` (the default, for configs that predate ``source``): the
      pipeline's ``hog_target`` where the samples carry it, else the
      device's (which then needs ``device_hog``).

    Args:
        traj_len (int): Dense steps per tube. Defaults to 4.
        mode (str): ``'trajectory'`` (paper) or ``'static'`` (release).
            Defaults to ``'trajectory'``.
        cell_size (int): HOG cell size = point spacing. Defaults to 8.
        channels (str): ``'rgb'`` or ``'gray'``. Defaults to ``'rgb'``.
        nbins (int): Orientation bins. Defaults to 9.
        source (str): ``'pipeline'``, ``'device'`` or ``'auto'``. Defaults
            to ``'auto'``.
        norm (str): On-device HOG: ``'l2'`` or ``'none'``
            (:class:`PointHOG`). Defaults to ``'l2'``.
        eps (float): On-device HOG: L2 epsilon. Defaults to 0.02.
        chunk (int, optional): On-device HOG: frames per pass. Defaults to
            64.
        device_hog (dict, optional): Config of the on-device HOG (e.g.
            ``dict(type='PointHOG', ...)``), which replaces the one built
            from the settings above; with ``source='auto'`` it enables the
            on-device HOG. Defaults to None.
        weight (float): Loss weight. Defaults to 1.0.
        feat_dim (int, optional): Override of the derived size.
    """
    key = 'hog'
    SOURCES = ('pipeline', 'device', 'auto')

    def __init__(self, traj_len: int = 4, mode: str = 'trajectory',
                 cell_size: int = 8, channels: str = 'rgb', nbins: int = 9,
                 source: str = 'auto', norm: str = 'l2', eps: float = 0.02,
                 chunk: Optional[int] = 64,
                 device_hog: Optional[Dict] = None, weight: float = 1.0,
                 feat_dim: Optional[int] = None) -> None:
        super().__init__(weight, feat_dim)
        if mode not in ('trajectory', 'static'):
            raise ValueError("mode must be 'trajectory' or 'static'")
        if channels not in ('rgb', 'gray'):
            raise ValueError("channels must be 'rgb' or 'gray'")
        if source not in self.SOURCES:
            raise ValueError(f'HOGTarget source must be one of '
                             f'{self.SOURCES}, got {source!r}')
        if source == 'pipeline' and device_hog is not None:
            raise ValueError("HOGTarget(source='pipeline') reads the "
                             "pipeline's hog_target: drop device_hog or set "
                             "source='device'")
        self.traj_len = traj_len
        self.mode = mode
        self.cell_size = cell_size
        self.channels = channels
        self.nbins = nbins
        self.source = source
        if device_hog is not None:
            self.device_hog = MODELS.build(device_hog)
        elif source == 'device':
            self.device_hog = PointHOG(nbins=nbins, cell_size=cell_size,
                                       channels=channels, norm=norm, eps=eps,
                                       chunk=chunk)
        else:
            self.device_hog = None

    def derived_dim(self) -> int:
        """``steps * k^2 * channels * nbins``."""
        steps = self.traj_len + 1 if self.mode == 'trajectory' else 1
        return (steps * _points_per_patch(self.patch_size, self.cell_size) *
                (3 if self.channels == 'rgb' else 1) * self.nbins)

    def forward(self, model, inputs: Tensor, data_samples: List,
                token_idx: Optional[Tensor] = None
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """The pipeline's ``hog_target`` or HOG computed on the device
        (``source``); with ``token_idx`` (``[B, M]``), of those tokens
        only."""
        device = inputs.device
        target = None
        if self.source != 'device':
            target = stack_samples(data_samples, 'hog_target', device)
            if target is not None and token_idx is not None:
                target = gather_tokens(target, token_idx)
        if target is None and self.source != 'pipeline':
            target = self._on_device(data_samples, device, token_idx)
        if target is None:
            raise KeyError(self._missing_message())
        valid = stack_samples(data_samples, 'hog_valid', device)
        if valid is not None and token_idx is not None:
            valid = gather_tokens(valid, token_idx)
        return target, None if valid is None else valid.bool()

    def compute(self, model, inputs: Tensor, data_samples: List
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """Every token's HOG (:meth:`forward` without ``token_idx``)."""
        return self.forward(model, inputs, data_samples)

    def _missing_message(self) -> str:
        pipeline = ('the pipeline must build it (BuildMMETargets) and pack '
                    'it (PackMMEInputs, or PackActionInputs algorithm_keys)')
        device = ('pack the hog_frames and hog_points of PrepareHOGInputs '
                  'for the on-device HOG')
        if self.source == 'pipeline':
            return (f'data samples have no "hog_target" (HOGTarget source='
                    f"'pipeline'): {pipeline}, or set source='device' and "
                    f'{device}')
        if self.source == 'device':
            return (f"data samples have no \"hog_frames\" (HOGTarget source="
                    f"'device'): {device}, or set source='pipeline' and "
                    'build hog_target in the pipeline')
        return (f'data samples have no "hog_target": {pipeline}, or '
                f'{device}')

    def _on_device(self, data_samples: List, device,
                   token_idx: Optional[Tensor] = None) -> Optional[Tensor]:
        frames = stack_samples(data_samples, 'hog_frames', device)
        if frames is None:
            return None
        if self.device_hog is None:
            raise KeyError(
                'data samples carry hog_frames (PrepareHOGInputs) but the '
                "hog target has no device_hog: set source='device' (or "
                "device_hog=dict(type='PointHOG')) in the hog target of the "
                "MME model config (legacy configs: MME(hog_target=dict("
                "type='PointHOG')))")
        points = stack_samples(data_samples, 'hog_points', device)
        if points is None:
            raise KeyError("data samples carry hog_frames but no hog_points:"
                           " pack both (PackActionInputs algorithm_keys)")
        return self.device_hog(frames, points, self.patch_size,
                               token_idx=token_idx)

    @torch.no_grad()
    def monitors(self, name: str, target: Tensor, valid: Optional[Tensor],
                 data_samples: List) -> Dict[str, Tensor]:
        """``<name>_target_abs`` and :func:`trajectory_monitors` (the HOG
        cells sit at the tracked points)."""
        logs = super().monitors(name, target, valid, data_samples)
        logs.update(trajectory_monitors(data_samples, target.device))
        return logs

    def extra_repr(self) -> str:
        return (f'traj_len={self.traj_len}, mode={self.mode}, cell_size='
                f'{self.cell_size}, channels={self.channels}, nbins='
                f'{self.nbins}, source={self.source}, '
                + super().extra_repr())
