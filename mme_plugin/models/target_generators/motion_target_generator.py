"""MME's motion targets computed by the model, on the training device.

The *device placement* (``docs/mme_design.md``, "Where the targets are
computed"): the data workers only decode, crop and resize the dense frames
(:class:`~mme_plugin.datasets.transforms.PrepareMotionInputs`), and, before
the loss, the model computes for the whole batch at once, under
``torch.no_grad()`` and in float32:

1. Farnebäck flow between consecutive dense frames of every tube
   (:func:`~mme_plugin.ops.farneback_torch.farneback_flow`, the release's
   settings; agrees with OpenCV to float rounding, ``docs/benchmarks.md``),
   on OpenCV's fixed-point grey levels (exact);
2. point tracking, the reliability checks and the per-token trajectory
   targets (:func:`~mme_plugin.ops.motion_targets_torch.clip_targets_torch`,
   the same rules as the worker transforms, checked against them by
   ``tests/test_targets_torch.py`` and ``tests/test_device_targets.py``);
3. the inputs of the on-device HOG along the tracked points.

It adds to the batch's samples exactly what the worker placement's
``BuildMMETargets`` + ``PrepareHOGInputs`` add (``traj_target``,
``traj_valid``, ``traj_reject``, ``traj_motionless``, ``hog_frames``,
``hog_points``, ``hog_valid``), so the target units
(:class:`~mme_plugin.models.TrajectoryTarget`,
:class:`~mme_plugin.models.HOGTarget` with ``source='device'``) read them
the same way in both placements.

Differences from the worker placement, by design:

* The flow is computed on the cropped and resized frames (the worker
  placement computes it on the decoded frames and crops / resizes the flow,
  which a flow cache needs). Both are in pixels of the current frame.
* A clip whose targets the worker placement refuses
  (:class:`~mme_plugin.datasets.transforms.motion_targets.UnusableTargetsError`:
  fewer than ``min_valid_fraction`` valid tokens, or non-finite values) is
  not dropped from the batch (that would need a host sync and changes the
  batch size): all its tokens are made invalid, its non-finite values zero,
  and the ``unusable`` monitor counts it. A batch without any valid target
  still stops training (``NoValidTargetsError``): nothing trains on empty
  targets.
* Motionless clips are counted (``motionless``) but not warned about per
  video (the warning needs the host); ``tools/analysis/check_dataset.py``
  lists them.
"""
import inspect
from typing import Dict, List, Mapping, Optional

import torch
from torch import Tensor, nn

from mme_plugin.ops.farneback_torch import farneback_flow, farneback_levels
from mme_plugin.ops.motion_magnitude import DEFAULT_MIN_MOTION
from mme_plugin.ops.motion_targets_torch import clip_targets_torch
from mme_plugin.ops.tracking_torch import gray_blur_torch, reliability_torch
from mme_plugin.registry import MODELS

from ..data_preprocessors.mme_data_preprocessor import StackedSamples
from ..targets.base import stack_samples

__all__ = ['MotionTargetGenerator', 'RELEASE_FARNEBACK']

#: The release's Farnebäck settings (``cv::cuda`` defaults, release spec
#: 2.1), as :class:`~mme_plugin.ops.FarnebackFlow`'s defaults.
RELEASE_FARNEBACK = dict(pyr_scale=0.5, levels=5, winsize=13, iterations=10,
                         poly_n=5, poly_sigma=1.1, gaussian=False)

#: Keys this generator adds to the samples.
ADDED_KEYS = ('traj_target', 'traj_valid', 'traj_reject', 'traj_motionless',
              'traj_unusable', 'hog_frames', 'hog_points', 'hog_valid')


@MODELS.register_module()
class MotionTargetGenerator(nn.Module):
    """Flow, trajectories, reliability checks and trajectory targets of a
    batch, on the model's device (MME's ``target_generator``).

    Args:
        flow (dict, optional): Keyword arguments of
            :func:`~mme_plugin.ops.farneback_torch.farneback_flow` that
            replace :data:`RELEASE_FARNEBACK` entries. Defaults to None (the
            release's settings). Levels beyond what the frame allows are
            clamped as :class:`~mme_plugin.ops.FarnebackFlow` does.
        flow_chunk (int): Frame pairs per flow call: bounds the memory
            (about 20 MiB per 224 px pair in float32). Defaults to 256.
        grid_step (int, optional): Point spacing; None takes the
            ``grid_step`` of the model's trajectory target (the geometry is
            stated once). Defaults to None.
        reliability (dict, optional): Settings of the reliability checks
            (:func:`~mme_plugin.ops.tracking_torch.reliability_torch`, the
            arguments of ``CheckTrajectoryReliability`` except
            ``photo_sigma``); None skips the checks. Backward flows are
            computed only when ``fb_check`` is on. Defaults to
            ``dict(fb_check=False)`` (photometric and shot-cut checks, as the
            K400 recipe).
        photo_sigma (float): Blur of the checks' grey frames. Defaults to
            1.0.
        targets (dict, optional): Settings of the trajectory targets
            (``norm``, ``std_eps``, ``traj_scale``, ``token_valid``,
            ``max_step``, ``step_overflow``: as ``BuildMMETargets``).
            Defaults to None (its defaults).
        release_compat (bool): The release's choices in tracking, checks and
            targets (as the worker transforms' ``release_compat``). Defaults
            to False.
        min_valid_fraction (float): A clip with fewer valid tokens than this
            fraction is unusable (see the module doc). Defaults to 0.05.
        min_motion (float): Mean step length (pixels of the decoded video)
            below which a clip counts as motionless; 0 turns the count off.
            Defaults to :data:`~mme_plugin.ops.motion_magnitude.DEFAULT_MIN_MOTION`.
        hog_inputs (bool): Add ``hog_frames`` / ``hog_points`` /
            ``hog_valid`` for HOG along the trajectories
            (``HOGTarget(source='device', mode='trajectory')``). Defaults to
            True.
    """

    def __init__(self,
                 flow: Optional[Dict] = None,
                 flow_chunk: int = 256,
                 grid_step: Optional[int] = None,
                 reliability: Optional[Dict] = dict(fb_check=False),
                 photo_sigma: float = 1.0,
                 targets: Optional[Dict] = None,
                 release_compat: bool = False,
                 min_valid_fraction: float = 0.05,
                 min_motion: float = DEFAULT_MIN_MOTION,
                 hog_inputs: bool = True) -> None:
        super().__init__()
        unknown = set(flow or {}) - set(RELEASE_FARNEBACK)
        if unknown:
            raise ValueError(f'MotionTargetGenerator.flow has unknown keys '
                             f'{sorted(unknown)}; known: '
                             f'{sorted(RELEASE_FARNEBACK)}')
        if flow_chunk < 1:
            raise ValueError(f'flow_chunk must be >= 1, got {flow_chunk}')
        if not 0 <= min_valid_fraction <= 1:
            raise ValueError('min_valid_fraction must be in [0, 1], got '
                             f'{min_valid_fraction}')
        self.flow_cfg = {**RELEASE_FARNEBACK, **(flow or {})}
        self.flow_chunk = int(flow_chunk)
        self.grid_step = grid_step
        self.reliability = None if reliability is None else dict(reliability)
        self.photo_sigma = float(photo_sigma)
        self.target_cfg = dict(targets or {})
        self.release_compat = bool(release_compat)
        self.min_valid_fraction = float(min_valid_fraction)
        self.min_motion = float(min_motion)
        self.hog_inputs = bool(hog_inputs)
        self.patch_size: Optional[int] = None
        self.traj_len: Optional[int] = None
        self._check_settings()

    def _check_settings(self) -> None:
        """Fail at build time on settings the kernels would reject later."""
        if self.reliability is not None:
            known = set(inspect.signature(reliability_torch).parameters) - {
                'positions', 'valid', 'flows', 'flows_bwd', 'grays',
                'size_wh', 'scale_factor', 'release_compat'}
            unknown = set(self.reliability) - known
            if unknown:
                raise ValueError(
                    f'MotionTargetGenerator.reliability has unknown keys '
                    f'{sorted(unknown)}; known: {sorted(known)}')
        known = {'norm', 'std_eps', 'traj_scale', 'token_valid', 'max_step',
                 'step_overflow'}
        unknown = set(self.target_cfg) - known
        if unknown:
            raise ValueError(f'MotionTargetGenerator.targets has unknown keys '
                             f'{sorted(unknown)}; known: {sorted(known)}')

    def setup(self, backbone: nn.Module, targets: Mapping) -> None:
        """Take the token geometry from the encoder and the point spacing
        and ``traj_len`` from the model's targets.

        Args:
            backbone (nn.Module): The encoder (its ``patch_size``).
            targets (Mapping): The model's target units.

        Raises:
            ValueError: Targets that disagree on ``grid_step``, a
                ``grid_step`` that disagrees with them, or one that does not
                divide the patch size.
        """
        self.patch_size = int(backbone.patch_size)
        steps = {n: t.grid_step for n, t in targets.items()
                 if getattr(t, 'grid_step', None) is not None}
        lens = {n: t.traj_len for n, t in targets.items()
                if getattr(t, 'traj_len', None) is not None}
        if len(set(steps.values())) > 1:
            raise ValueError(f'targets disagree on grid_step: {steps}')
        if self.grid_step is None:
            self.grid_step = next(iter(steps.values()), 8)
        elif steps and self.grid_step not in steps.values():
            raise ValueError(
                f'model.target_generator.grid_step={self.grid_step} but the '
                f'targets use {steps}: drop it (it is taken from the '
                'trajectory target) or make them equal')
        if self.patch_size % self.grid_step:
            raise ValueError(f'patch size {self.patch_size} is not a multiple'
                             f' of grid_step {self.grid_step}')
        if len(set(lens.values())) == 1:
            self.traj_len = next(iter(lens.values()))

    # ------------------------------------------------------------------ flow
    def flows(self, prev: Tensor, nxt: Tensor) -> Tensor:
        """Farnebäck flow from each ``prev`` grey frame to its ``nxt``, in
        chunks of ``flow_chunk`` pairs.

        Args:
            prev (Tensor): ``[P, H, W]`` float grey frames (0-255).
            nxt (Tensor): ``[P, H, W]``.

        Returns:
            Tensor: ``[P, H, W, 2]`` float32 flows in pixels.
        """
        cfg = dict(self.flow_cfg)
        cfg['levels'] = farneback_levels(prev.shape[-2], prev.shape[-1],
                                         cfg['levels'], cfg['pyr_scale'])
        out = [farneback_flow(prev[i:i + self.flow_chunk],
                              nxt[i:i + self.flow_chunk], **cfg)
               for i in range(0, prev.shape[0], self.flow_chunk)]
        return torch.cat(out) if len(out) > 1 else out[0]

    # -------------------------------------------------------------- forward
    @torch.no_grad()
    def compute(self, frames: Tensor,
                scale: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Every target of B clips.

        Args:
            frames (Tensor): ``[B, N, L + 1, H, W, 3]`` uint8 RGB dense
                frames (``motion_frames``).
            scale (Tensor, optional): ``[B, 2]`` (x, y) resize factors
                (``motion_scale``). Defaults to None (1).

        Returns:
            dict: the :data:`ADDED_KEYS` (``traj_target`` ``[B, T, D]``,
            ``traj_valid`` ``[B, T]`` bool, ``traj_reject`` ``[B, R]``,
            ``traj_motionless`` / ``traj_unusable`` ``[B]`` float32 0 / 1, and
            with ``hog_inputs`` ``hog_frames`` (= ``frames``),
            ``hog_points`` ``[B, N, L + 1, gh, gw, 2]``, ``hog_valid``),
            plus ``positions``, ``motion``, ``valid_fraction`` and
            ``finite`` per clip, ``point_valid`` ``[B, N, gh, gw]`` (per
            point, after the reliability checks) and, with the checks,
            ``cut_pairs`` ``[B, N, L]`` (dense frame pairs flagged as shot
            cuts) and ``point_reason`` ``[B, N, gh, gw]`` (reject codes of
            :data:`~mme_plugin.ops.REJECT_REASONS`, as the worker
            placement's ``traj_point_reason``) (not added to the samples;
            for the tools).

        Raises:
            ValueError: Frames of the wrong shape or dtype, or a step count
                that disagrees with the targets' ``traj_len``.
        """
        if self.patch_size is None:
            raise RuntimeError('MotionTargetGenerator.setup() was not called'
                               ' (the MME model calls it)')
        if frames.dim() != 6 or frames.shape[-1] != 3 or \
                frames.dtype != torch.uint8:
            raise ValueError(
                'motion_frames must be [B, tubes, steps, H, W, 3] uint8, got '
                f'{tuple(frames.shape)} {frames.dtype}')
        b, n, s, h, w, _ = frames.shape
        if self.traj_len is not None and s - 1 != self.traj_len:
            raise ValueError(
                f'motion_frames have {s - 1} dense steps per tube but the '
                f'targets have traj_len={self.traj_len}: make MMESampleFrames'
                "' traj_len and the targets' traj_len equal")
        dev_type = frames.device.type
        with torch.autocast(device_type=dev_type, enabled=False):
            grey = gray_blur_torch(frames, 0.0)  # exact cv2 RGB2GRAY
            prev = grey[:, :, :-1].reshape(-1, h, w)
            nxt = grey[:, :, 1:].reshape(-1, h, w)
            flows = self.flows(prev, nxt).reshape(b, n, s - 1, h, w, 2)
            rel = self.reliability
            flows_bwd = grays = None
            if rel is not None and rel.get('fb_check', True):
                flows_bwd = self.flows(nxt, prev).reshape(b, n, s - 1, h, w,
                                                          2)
            if rel is not None and (rel.get('photo_check', True)
                                    or rel.get('cut_check', True)):
                grays = gray_blur_torch(frames, self.photo_sigma) \
                    if self.photo_sigma > 0 else grey
            del prev, nxt
            out = clip_targets_torch(
                flows, self.grid_step, self.patch_size, (w, h), flows_bwd,
                grays, scale, self.release_compat, rel, self.target_cfg)
        return self._finish(out, frames)

    def _point_valid(self, out: Dict[str, Tensor]) -> Tensor:
        """``[B, N, gh, gw]`` per-point validity after the reliability
        checks (the worker placement's ``traj_point_valid`` entering
        ``BuildMMETargets``): in frame and, unless ``release_compat``
        (which only counts the rejects), passing every check."""
        valid = out['in_frame'].bool()
        if self.release_compat or 'fb' not in out:
            return valid
        return valid & ~(out['fb'] | out['photo'] | out['cut'])

    def _finish(self, out: Dict[str, Tensor],
                frames: Tensor) -> Dict[str, Tensor]:
        """Refuse unusable clips (all tokens invalid, values zero where
        non-finite), count motionless ones and add the HOG inputs."""
        unusable = (out['valid_fraction'] < self.min_valid_fraction) | \
            ~out['finite']
        target = out['traj_target']
        target = torch.where(torch.isfinite(target), target, 0.)
        valid = out['traj_valid'] & ~unusable[:, None]
        motion = out['motion']
        still = (motion < self.min_motion) if self.min_motion > 0 else \
            torch.zeros_like(unusable)
        res = dict(traj_target=target, traj_valid=valid,
                   traj_reject=out['traj_reject'],
                   traj_motionless=still.float(),
                   traj_unusable=unusable.float(),
                   positions=out['positions'], motion=motion,
                   valid_fraction=out['valid_fraction'],
                   finite=out['finite'])
        if 'in_frame' in out:
            res['point_valid'] = self._point_valid(out)
        if 'cut_pairs' in out:
            res.update(cut_pairs=out['cut_pairs'], point_reason=out['reason'])
        if self.hog_inputs:
            res.update(hog_frames=frames,
                       hog_points=out['positions'].float(),
                       hog_valid=valid)
        return res

    def forward(self, data_samples: List,
                device: torch.device) -> StackedSamples:
        """Add the targets to a batch's samples.

        Args:
            data_samples (list): The batch's samples with ``motion_frames``
                (and ``motion_scale``) (``PrepareMotionInputs``).
            device (torch.device): The model's device.

        Returns:
            StackedSamples: The same samples with the :data:`ADDED_KEYS`
            (one ``[B, ...]`` tensor per key).

        Raises:
            KeyError: The samples carry no ``motion_frames``, or already
                carry a key this generator adds (the worker placement ran
                too).
        """
        frames = stack_samples(data_samples, 'motion_frames', device)
        if frames is None:
            raise KeyError(
                'data samples have no "motion_frames": the model computes the'
                ' motion targets (model.target_generator) but the pipeline '
                'does not hand it the dense frames: add PrepareMotionInputs '
                'after the crop / resize (and PackMMEInputs), or drop '
                'model.target_generator for the worker placement')
        present = getattr(data_samples, 'stacked', None) or (
            data_samples[0] if len(data_samples) else {})
        clash = [k for k in ('traj_target', 'hog_frames', 'hog_target')
                 if k in present]
        if clash:
            raise KeyError(
                f'data samples already carry {clash} from the pipeline and '
                'the model computes them too (model.target_generator): use '
                'one placement (docs/mme_design.md)')
        scale = stack_samples(data_samples, 'motion_scale', device)
        out = self.compute(frames, scale)
        keys = [k for k in ADDED_KEYS if k in out]
        stacked = dict(getattr(data_samples, 'stacked', {}) or {})
        stacked.update({k: out[k] for k in keys})
        return StackedSamples(list(data_samples), stacked)

    def extra_repr(self) -> str:
        return (f'flow={self.flow_cfg}, grid_step={self.grid_step}, '
                f'reliability={self.reliability}, targets={self.target_cfg},'
                f' release_compat={self.release_compat}, '
                f'min_valid_fraction={self.min_valid_fraction}')
