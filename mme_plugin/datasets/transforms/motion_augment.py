"""Geometric augmentation applied to frames, dense frames and flows alike.

Each transform subclasses the stock mmaction transform, lets it choose and
apply the geometry to ``imgs`` exactly as usual, then applies the recorded
geometry to ``dense_imgs`` (``[N, S, H, W, 3]``) and ``flows``
(``[N, L, H, W, 2]``):

* crop: the same pixel box (the release crops its trajectory grid on
  ``box // 8`` and so misaligns by up to 7 px, ``docs/release_spec.md`` 8.12);
* resize: flows are resampled and their values multiplied by the scale
  factors (the release leaves displacements unscaled);
* flip: flows are mirrored and the horizontal (or vertical) component negated.

Trajectories are tracked after these transforms, so frames and targets agree
by construction.
"""
from typing import Dict

import cv2
import numpy as np
from mmaction.datasets.transforms import Flip, MultiScaleCrop, Resize

from mme_plugin.registry import TRANSFORMS

from mme_plugin.ops.flow import resize_flow

__all__ = ['MotionMultiScaleCrop', 'MotionResize', 'MotionFlip']

#: Flow fields carried along: forward and backward (same geometry rules).
FLOW_KEYS = ('flows', 'flows_bwd')
_MOTION_KEYS = ('dense_imgs', ) + FLOW_KEYS


def _check_inputs(transform, results: Dict) -> None:
    if getattr(transform, 'lazy', False):
        raise ValueError(f'{type(transform).__name__} does not support '
                         'lazy=True')
    if 'flows' in results and 'dense_imgs' in results and \
            results['flows'].shape[2:4] != results['dense_imgs'].shape[2:4]:
        raise RuntimeError(
            f'{type(transform).__name__}: flows '
            f"{results['flows'].shape[2:4]} are not at the frame size "
            f"{results['dense_imgs'].shape[2:4]}: ComputeFlow(full_res=False)"
            ' must come after all crop/resize/flip transforms')


@TRANSFORMS.register_module()
class MotionMultiScaleCrop(MultiScaleCrop):
    """Stock ``MultiScaleCrop`` that also crops ``dense_imgs`` and ``flows``.

    Args: as mmaction's ``MultiScaleCrop`` (the release uses
    ``input_size=224, scales=(1, .875, .75, .66), max_wh_scale_gap=1,
    num_fixed_crops=13``).
    """

    def transform(self, results: Dict) -> Dict:
        """Crop frames, dense frames and flows with one box."""
        _check_inputs(self, results)
        results = super().transform(results)
        x1, y1, x2, y2 = [int(v) for v in results['crop_bbox']]
        for key in _MOTION_KEYS:
            if key in results:
                results[key] = np.ascontiguousarray(
                    results[key][..., y1:y2, x1:x2, :])
        return results


@TRANSFORMS.register_module()
class MotionResize(Resize):
    """Stock ``Resize`` that also resizes ``dense_imgs`` and the flows.

    Flow values are multiplied by the scale factors so they stay in pixels
    of the new size.

    Args: as mmaction's ``Resize``.
    """

    def transform(self, results: Dict) -> Dict:
        """Resize frames, dense frames and flows."""
        _check_inputs(self, results)
        results = super().transform(results)
        new_h, new_w = results['img_shape']
        if 'dense_imgs' in results:
            d = results['dense_imgs']
            flat = d.reshape(-1, *d.shape[-3:])
            out = [
                cv2.resize(f, (new_w, new_h),
                           interpolation=cv2.INTER_LINEAR) for f in flat
            ]
            results['dense_imgs'] = np.stack(out).reshape(
                *d.shape[:-3], new_h, new_w, d.shape[-1])
        for key in FLOW_KEYS:
            if key in results:
                f = results[key]
                flat = f.reshape(-1, *f.shape[-3:])
                out = [resize_flow(x, (new_w, new_h)) for x in flat]
                results[key] = np.stack(out).reshape(*f.shape[:-3], new_h,
                                                     new_w, 2)
        return results


@TRANSFORMS.register_module()
class MotionFlip(Flip):
    """Stock ``Flip`` that also flips ``dense_imgs`` and ``flows``.

    A horizontal flip mirrors the flow field and negates dx; a vertical flip
    mirrors it upside down and negates dy. Do not use on datasets whose labels
    depend on direction (SSv2, the synthetic motion dataset).

    Args: as mmaction's ``Flip``.
    """

    def transform(self, results: Dict) -> Dict:
        """Flip frames, dense frames and flows together."""
        _check_inputs(self, results)
        results.setdefault('modality', 'RGB')
        results = super().transform(results)
        if not results['flip']:
            return results
        axis = -2 if self.direction == 'horizontal' else -3
        comp = 0 if self.direction == 'horizontal' else 1
        if 'dense_imgs' in results:
            results['dense_imgs'] = np.ascontiguousarray(
                np.flip(results['dense_imgs'], axis=axis))
        for key in FLOW_KEYS:
            if key in results:
                flows = np.flip(results[key], axis=axis).copy()
                flows[..., comp] *= -1
                results[key] = flows
        return results
