"""Crop / resize / flip keep frames, dense frames and flows consistent."""
import random

import numpy as np
import pytest
from mmengine.dataset import Compose

import mme_plugin  # noqa: F401
from mme_plugin.datasets.synthetic import random_texture
from mme_plugin.io import write_video
from mme_plugin.datasets.transforms import (MotionFlip, MotionMultiScaleCrop,
                                            MotionResize)
from mme_plugin.utils import register_all_modules

from .test_trajectory import _constant_flows, _rotation_flows

register_all_modules()


def _results(flows, h=64, w=96):
    n, steps = 2, flows.shape[0]
    rng = np.random.default_rng(0)
    dense = rng.integers(0, 255, (n, steps + 1, h, w, 3), dtype=np.uint8)
    # imgs are copies, as after VideoDecode (stock Flip flips in place)
    return dict(imgs=[f.copy() for f in dense[:, 0]],
                dense_imgs=dense, flows=np.stack([flows] * n),
                img_shape=(h, w), original_shape=(h, w), modality='RGB')


def test_crop_slices_all_keys_with_one_box():
    res = _results(_constant_flows(2, 64, 96, 1.0, 2.0))
    dense0 = res['dense_imgs'].copy()
    random.seed(3)
    res = MotionMultiScaleCrop(48, scales=(1, .75), random_crop=True)(res)
    x1, y1, x2, y2 = res['crop_bbox']
    np.testing.assert_array_equal(res['imgs'][0], dense0[0, 0, y1:y2, x1:x2])
    np.testing.assert_array_equal(res['dense_imgs'], dense0[:, :, y1:y2,
                                                            x1:x2])
    assert res['flows'].shape[2:4] == (y2 - y1, x2 - x1)


def test_resize_scales_flow_values():
    res = _results(_constant_flows(2, 64, 96, 1.0, 2.0))
    res = MotionResize(scale=(192, 32), keep_ratio=False)(res)
    assert res['dense_imgs'].shape[2:4] == (32, 192)
    np.testing.assert_allclose(res['flows'][..., 0], 2.0, atol=1e-5)
    np.testing.assert_allclose(res['flows'][..., 1], 1.0, atol=1e-5)


def test_flip_mirrors_flow_and_negates_dx():
    flows = _rotation_flows(2, 64, 96, 0.03)
    res = MotionFlip(flip_ratio=1.0)(_results(flows))
    # A mirrored rotation turns the other way about the mirrored centre.
    np.testing.assert_allclose(res['flows'][0],
                               _rotation_flows(2, 64, 96, -0.03), atol=1e-5)
    dense0 = _results(flows)['dense_imgs']
    np.testing.assert_array_equal(res['dense_imgs'], dense0[..., ::-1, :])


def test_vertical_flip_negates_dy():
    res = MotionFlip(flip_ratio=1.0, direction='vertical')(
        _results(_constant_flows(2, 64, 96, 1.0, 2.0)))
    np.testing.assert_allclose(res['flows'][..., 1], -2.0)
    np.testing.assert_allclose(res['flows'][..., 0], 1.0)


@pytest.fixture(scope='module')
def panning_video(tmp_path_factory):
    """A texture panning right by exactly 1 px per frame (known flow)."""
    rng = np.random.default_rng(1)
    tex = random_texture(rng, 64, 128)
    frames = np.stack([tex[:, 40 - t:104 - t] for t in range(24)])
    path = str(tmp_path_factory.mktemp('pan') / 'pan.mp4')
    write_video(path, frames)
    return path


def _pipeline(flow_first: bool):
    flow = dict(type='ComputeFlow', backend=dict(type='FarnebackFlow'))
    geo = [
        dict(type='MotionMultiScaleCrop', input_size=48, scales=(1, .75),
             random_crop=False, max_wh_scale_gap=1),
        dict(type='MotionResize', scale=(96, 96), keep_ratio=False),
        dict(type='MotionFlip', flip_ratio=1.0),
    ]
    steps = [flow] + geo if flow_first else geo + [flow]
    return Compose([
        dict(type='VideoInit'),
        dict(type='MMESampleFrames', clip_len=4, frame_interval=4,
             traj_len=4, test_mode=True),
        dict(type='VideoDecode', extra_keys=('dense_frame_inds', )),
        *steps,
        dict(type='ComputeTrajectories', grid_step=8),
    ])


@pytest.mark.parametrize('flow_first', [True, False])
def test_real_video_trajectories_follow_the_augmentation(
        panning_video, flow_first):
    random.seed(0)
    np.random.seed(0)
    res = _pipeline(flow_first)(dict(filename=panning_video, start_index=0,
                                     modality='RGB'))
    sx = 96 / res['crop_bbox'][2:].__sub__(res['crop_bbox'][:2])[0]
    pos = res['traj_positions']  # [2 tubes, 5, 12, 12, 2]
    disp = (pos[:, -1] - pos[:, 0])[:, 2:-2, 2:-2]  # interior points
    # 1 px/frame to the right, 4 steps, scaled by the resize, mirrored.
    np.testing.assert_allclose(np.median(disp[..., 0]), -4 * sx, atol=0.3)
    np.testing.assert_allclose(np.median(disp[..., 1]), 0.0, atol=0.3)


def test_video_rand_augment_is_consistent_across_frames():
    from mme_plugin.datasets.transforms import VideoRandAugment
    random.seed(0)
    frame = np.random.default_rng(0).integers(0, 255, (32, 48, 3),
                                              dtype=np.uint8)
    t = VideoRandAugment(magnitude=9, num_ops=4, prob=1.0)
    changed = 0
    for _ in range(10):
        out = t(dict(imgs=[frame.copy() for _ in range(4)]))['imgs']
        assert all(o.shape == frame.shape for o in out)
        assert all(np.array_equal(out[0], o) for o in out[1:])
        changed += not np.array_equal(out[0], frame)
    assert changed >= 8
