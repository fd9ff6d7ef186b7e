"""Hand the dense frames to the model, which computes the motion targets.

The *device placement* of MME's motion targets (``docs/mme_design.md``,
"Where the targets are computed"): a data worker only decodes, crops and
resizes the dense frames; the model's
:class:`~mme_plugin.models.MotionTargetGenerator` computes the flow, the
trajectories, the reliability checks and the per-token targets on the
training device, batched over the whole batch. The worker placement
(``ComputeFlow`` -> ``ComputeTrajectories`` -> ``CheckTrajectoryReliability``
-> ``BuildMMETargets``) does all of that in the worker, per clip.
"""
from typing import Dict

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mme_plugin.registry import TRANSFORMS

__all__ = ['PrepareMotionInputs']

#: Keys of the worker placement that must not precede this transform.
_WORKER_KEYS = ('flows', 'flows_bwd', 'traj_positions', 'traj_target')


@TRANSFORMS.register_module()
class PrepareMotionInputs(BaseTransform):
    """Keep the dense frames (and their resize factor) for the model.

    Place it after the geometric transforms (``MotionMultiScaleCrop``,
    ``MotionResize``, ``MotionFlip``), instead of the worker placement's
    ``ComputeFlow`` ... ``BuildMMETargets`` and ``PrepareHOGInputs``.

    Required Keys:

    - ``dense_imgs``: ``[N, L + 1, H, W, 3]`` uint8 RGB dense frames of the
      N tubes (``MMESampleFrames`` + ``VideoDecode``).
    - ``scale_factor`` (optional): ``(x, y)`` resize factors from the
      decoded video (``MotionResize``); 1 when absent.

    Added Keys:

    - ``motion_frames``: ``[N, L + 1, H, W, 3]`` uint8 torch tensor.
    - ``motion_scale``: ``[2]`` float32 torch tensor, the ``(x, y)`` resize
      factors (the step bound and the checks' tolerances are in pixels of
      the decoded video).

    Removed Keys:

    - ``dense_imgs``.

    Raises:
        KeyError: No ``dense_imgs``.
        ValueError: Frames that are not ``[N, S, H, W, 3]`` uint8 with
            ``S >= 2``, or a worker-placement step (``ComputeFlow``,
            ``ComputeTrajectories``, ``BuildMMETargets``) earlier in the
            pipeline (the flow would be computed twice).
    """

    def transform(self, results: Dict) -> Dict:
        """Store ``motion_frames`` and ``motion_scale``."""
        name = results.get('filename', '<clip>')
        done = [k for k in _WORKER_KEYS if k in results]
        if done:
            raise ValueError(
                f'{name}: PrepareMotionInputs (targets computed by the model)'
                f' follows worker-placement steps that produced {done}: drop '
                'ComputeFlow / ComputeTrajectories / CheckTrajectoryReliability'
                ' / BuildMMETargets / PrepareHOGInputs from the pipeline, or '
                'drop PrepareMotionInputs and the model\'s target_generator '
                '(docs/mme_design.md, "Where the targets are computed")')
        if 'dense_imgs' not in results:
            raise KeyError(
                f'{name}: PrepareMotionInputs needs "dense_imgs": put '
                "MMESampleFrames and VideoDecode(extra_keys=("
                "'dense_frame_inds', )) before it")
        frames = np.asarray(results.pop('dense_imgs'))
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.shape[1] < 2:
            raise ValueError(
                f'{name}: dense_imgs must be [tubes, steps >= 2, H, W, 3], '
                f'got shape {frames.shape}')
        if frames.dtype != np.uint8:
            raise ValueError(f'{name}: dense_imgs must be uint8 RGB, got '
                             f'{frames.dtype}')
        scale = np.asarray(results.get('scale_factor', (1.0, 1.0)),
                           np.float32).reshape(-1)
        if scale.shape != (2, ) or not np.all(np.isfinite(scale)) or \
                not np.all(scale > 0):
            raise ValueError(f'{name}: scale_factor must be two positive '
                             f'numbers (x, y), got {scale}')
        results['motion_frames'] = torch.from_numpy(
            np.ascontiguousarray(frames))
        results['motion_scale'] = torch.from_numpy(scale.copy())
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
