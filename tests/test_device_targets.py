"""Motion targets computed by the model on the training device (issue #21):
``PrepareMotionInputs`` + ``MotionTargetGenerator`` against the worker
placement (``ComputeFlow`` -> ``ComputeTrajectories`` ->
``CheckTrajectoryReliability`` -> ``PrepareHOGInputs`` -> ``BuildMMETargets``)
and against known motion.

Parity tolerance (the worker placement given the same frames and the
PyTorch Farneback, ``TorchFarnebackFlow``): token validity, reject fractions
and HOG points equal; targets within 1e-3 (``tests/test_targets_torch.py``'s
bound; the flows are the same kernel). The photometric check's grey frames
differ by at most one grey level between OpenCV's fixed-point blur and the
tensor one, so the parity clips are compared with the check's threshold
away from any grey change of that size (measured: identical masks here).
"""
import numpy as np
import pytest
import torch

from mme_plugin.datasets.synthetic import render_clip
from mme_plugin.datasets.transforms import (BuildMMETargets,
                                            CheckTrajectoryReliability,
                                            ComputeFlow, ComputeTrajectories,
                                            PrepareHOGInputs,
                                            PrepareMotionInputs)
from mme_plugin.models import MotionTargetGenerator
from mme_plugin.models.data_preprocessors import StackedSamples
from mme_plugin.registry import MODELS
from mme_plugin.utils import register_all_modules

TARGET_TOL = 1e-3


class _Backbone(torch.nn.Module):
    patch_size = 16


def _generator(**kw):
    gen = MotionTargetGenerator(**kw)
    gen.setup(_Backbone(), {})
    return gen


def _dense(seed, label=4, size=(64, 64), cut=False):
    """2 tubes x 5 dense frames of a generated clip (uint8 RGB)."""
    a, _ = render_clip(label, 8, size, seed=seed)
    dense = np.stack([a[0:5], a[3:8]])
    if cut:
        b, _ = render_clip((label + 3) % 8, 8, size, seed=seed + 10)
        dense[0, 3:] = b[:2]
    return np.ascontiguousarray(dense)


def _worker(dense, rc, reliability, scale=None):
    res = dict(dense_imgs=dense.copy(), filename=f'clip{id(dense)}')
    if scale is not None:
        res['scale_factor'] = np.array(scale, np.float32)
    fb = reliability.get('fb_check', True)
    res = ComputeFlow(backend=dict(type='TorchFarnebackFlow'),
                      backward=fb)(res)
    res = ComputeTrajectories(8, release_compat=rc)(res)
    res = CheckTrajectoryReliability(release_compat=rc, **reliability)(res)
    res = PrepareHOGInputs(mode='trajectory')(res)
    return BuildMMETargets(patch_size=16, release_compat=rc,
                           keep_positions=True, min_valid_fraction=0.0)(res)


@pytest.mark.parametrize('rc,reliability,scale', [
    (True, dict(fb_check=False), None),
    (False, dict(fb_check=True), None),
    (False, dict(fb_check=False), (0.5, 0.25)),
])
def test_device_placement_equals_worker_placement(rc, reliability, scale):
    clips = [_dense(0), _dense(1, label=6, cut=True)]
    ref = [_worker(d, rc, reliability, scale) for d in clips]
    gen = _generator(release_compat=rc, reliability=reliability,
                     min_valid_fraction=0.0)
    frames = torch.from_numpy(np.stack(clips))
    sc = None if scale is None else torch.tensor([scale] * 2)
    got = gen.compute(frames, sc)
    worst = 0.0
    for i, r in enumerate(ref):
        np.testing.assert_array_equal(got['traj_valid'][i].numpy(),
                                      r['traj_valid'].numpy())
        np.testing.assert_array_equal(got['hog_valid'][i].numpy(),
                                      r['hog_valid'].numpy())
        np.testing.assert_allclose(got['traj_reject'][i].numpy(),
                                   r['traj_reject'].numpy(), atol=1e-6)
        np.testing.assert_allclose(got['hog_points'][i].numpy(),
                                   r['hog_points'].numpy(), atol=1e-4)
        assert torch.equal(got['hog_frames'][i], r['hog_frames'])
        diff = (got['traj_target'][i] - r['traj_target']).abs().max()
        worst = max(worst, float(diff))
        assert float(got['traj_motionless'][i]) == float(
            r['traj_motionless'])
    assert worst < TARGET_TOL, worst
    # the cut clip's first tube is rejected in both placements
    assert float(ref[1]['traj_reject'][3]) > 0 or rc
    print(f'release_compat={rc} {reliability} scale={scale}: max target '
          f'diff {worst:.2e}')


def test_known_translation_gives_known_absolute_targets():
    # a texture moving 1.5 px right and 0.5 px down per frame: with
    # norm='none' and traj_scale=1 every interior token's target is the step
    rng = np.random.default_rng(0)
    from mme_plugin.datasets.synthetic import random_texture
    tex = random_texture(rng, 160, 160)
    frames = []
    for t in range(5):
        m = np.float32([[1, 0, 40 - 1.5 * t], [0, 1, 40 - 0.5 * t]])
        import cv2
        frames.append(cv2.warpAffine(tex, m, (64, 64),
                                     flags=cv2.INTER_LINEAR
                                     | cv2.WARP_INVERSE_MAP))
    # WARP_INVERSE_MAP: dst(x) = src(x + offset); the offset shrinks, so the
    # content moves by +1.5, +0.5 px per frame
    dense = np.stack(frames)[None].repeat(2, 0)
    if dense.ndim == 4:
        dense = np.repeat(dense[..., None], 3, -1)
    gen = _generator(reliability=None,
                     targets=dict(norm='none', traj_scale=1.0))
    out = gen.compute(torch.from_numpy(dense[None]))
    tgt = out['traj_target'][0].reshape(-1, 2, 4, 4)  # tokens, xy, L, pts
    valid = out['traj_valid'][0]
    # interior tokens: the 2 x 2 centre patches of each 4 x 4 tube
    interior = torch.zeros(2, 4, 4, dtype=torch.bool)
    interior[:, 1:3, 1:3] = True
    interior = interior.flatten()
    assert valid[interior].all()
    dx = tgt[interior, 0]
    dy = tgt[interior, 1]
    assert abs(float(dx.mean()) - 1.5) < 0.05, float(dx.mean())
    assert abs(float(dy.mean()) - 0.5) < 0.05, float(dy.mean())
    assert float((dx - 1.5).abs().max()) < 0.2
    assert float(out['traj_motionless'][0]) == 0
    assert float(out['traj_unusable'][0]) == 0


def test_unusable_clip_is_invalid_not_dropped_and_finite():
    # frames of independent noise: no consistent motion, the photometric /
    # cut checks reject (nearly) every point; with a demanding
    # min_valid_fraction the clip is refused: every token invalid, finite
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (2, 5, 64, 64, 3), dtype=np.uint8)
    good = _dense(2)
    frames = torch.from_numpy(np.stack([good, noise]))
    gen = _generator(min_valid_fraction=0.5)
    out = gen.compute(frames)
    assert float(out['traj_unusable'][0]) == 0
    assert out['traj_valid'][0].any()
    assert float(out['traj_unusable'][1]) == 1
    assert not out['traj_valid'][1].any()
    assert not out['hog_valid'][1].any()
    assert torch.isfinite(out['traj_target']).all()


def test_non_finite_targets_zeroed_and_clip_refused():
    gen = _generator(reliability=None)
    out = dict(traj_target=torch.tensor([[[1., float('nan')]], [[1., 2.]]]),
               traj_valid=torch.ones(2, 1, dtype=torch.bool),
               traj_reject=torch.zeros(2, 5), motion=torch.ones(2),
               valid_fraction=torch.ones(2),
               finite=torch.tensor([False, True]),
               positions=torch.zeros(2, 1, 2, 1, 1, 2))
    res = gen._finish(out, torch.zeros(2, 1, 2, 16, 16, 3, dtype=torch.uint8))
    assert torch.isfinite(res['traj_target']).all()
    assert res['traj_valid'].tolist() == [[False], [True]]
    assert res['traj_unusable'].tolist() == [1.0, 0.0]


def test_prepare_motion_inputs_contract_and_errors():
    dense = _dense(3)
    res = PrepareMotionInputs()(dict(dense_imgs=dense,
                                     scale_factor=(0.5, 0.25)))
    assert 'dense_imgs' not in res
    assert res['motion_frames'].dtype == torch.uint8
    assert tuple(res['motion_frames'].shape) == dense.shape
    assert res['motion_scale'].tolist() == [0.5, 0.25]
    with pytest.raises(KeyError, match='MMESampleFrames'):
        PrepareMotionInputs()(dict(filename='v.mp4'))
    with pytest.raises(ValueError, match='ComputeFlow'):
        PrepareMotionInputs()(dict(dense_imgs=dense, flows=np.zeros(1)))
    with pytest.raises(ValueError, match='uint8'):
        PrepareMotionInputs()(dict(dense_imgs=dense.astype(np.float32)))
    with pytest.raises(ValueError, match='scale_factor'):
        PrepareMotionInputs()(dict(dense_imgs=dense, scale_factor=(0, 1)))


def test_generator_settings_and_geometry_errors():
    with pytest.raises(ValueError, match='unknown keys'):
        MotionTargetGenerator(flow=dict(window=3))
    with pytest.raises(ValueError, match='unknown keys'):
        MotionTargetGenerator(reliability=dict(fb=True))
    with pytest.raises(ValueError, match='unknown keys'):
        MotionTargetGenerator(targets=dict(normalise='none'))
    gen = MotionTargetGenerator()
    with pytest.raises(RuntimeError, match='setup'):
        gen.compute(torch.zeros(1, 1, 2, 32, 32, 3, dtype=torch.uint8))
    gen.setup(_Backbone(), {})
    gen.traj_len = 4
    with pytest.raises(ValueError, match='traj_len'):
        gen.compute(torch.zeros(1, 1, 3, 32, 32, 3, dtype=torch.uint8))
    with pytest.raises(KeyError, match='PrepareMotionInputs'):
        gen([], torch.device('cpu'))


def _tiny_model(generator=True):
    register_all_modules()
    from mmengine.config import Config
    cfg = Config.fromfile('configs/mme/pretrain_tiny_synthetic_device.py')
    model_cfg = cfg.model
    if not generator:
        model_cfg = Config.fromfile(
            'configs/mme/pretrain_tiny_synthetic.py').model
    return MODELS.build(model_cfg), cfg


def test_model_computes_targets_before_the_loss_and_trains():
    torch.manual_seed(0)
    model, cfg = _tiny_model()
    assert isinstance(model.target_generator, MotionTargetGenerator)
    assert model.target_generator.grid_step == 4  # from the traj target
    assert not any('target_generator' in k for k in model.state_dict())
    assert 'MotionTargetGenerator' in repr(model)
    # a batch as the device pipeline packs it: 64 px frames, 4 tubes x 5
    clips = [render_clip(k, 24, (64, 64), seed=k)[0] for k in (2, 5)]
    frames = np.stack([np.stack([clip[i * 4:i * 4 + 5] for i in range(4)])
                       for clip in clips])
    b = frames.shape[0]
    from mmaction.structures import ActionDataSample
    samples = [ActionDataSample() for _ in range(b)]
    n_tok = 4 * 8 * 8
    mask = torch.zeros(b, n_tok, dtype=torch.bool)
    mask[:, ::4] = True
    mask = ~mask  # 75 % masked
    stacked = dict(motion_frames=torch.from_numpy(frames),
                   motion_scale=torch.ones(b, 2), mask=mask)
    batch = StackedSamples(samples, stacked)
    inputs = torch.randn(b, 3, 8, 64, 64)
    losses = model(inputs, batch, mode='loss')
    for key in ('loss_traj', 'loss_hog'):
        assert torch.isfinite(losses[key]) and float(losses[key]) > 0
    assert float(losses['traj_target_abs']) > 0.01
    assert 'unusable' in losses and 'motionless' in losses
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.backbone.patch_embed.projection.weight.grad is not None
    # both placements at once is refused
    stacked['traj_target'] = torch.zeros(b, n_tok, 32)
    with pytest.raises(KeyError, match='one placement'):
        model(inputs, StackedSamples(samples, stacked), mode='loss')


def test_generator_makes_no_host_syncs():
    # every value read back to the host would stall the training step on a
    # GPU; on the CPU the counter counts the reads that would be syncs
    from mme_plugin.utils.sync_counter import SyncCounter
    gen = _generator(reliability=dict(fb_check=True))
    frames = torch.from_numpy(np.stack([_dense(4), _dense(5, cut=True)]))
    from mmaction.structures import ActionDataSample
    samples = StackedSamples([ActionDataSample(), ActionDataSample()],
                             dict(motion_frames=frames,
                                  motion_scale=torch.ones(2, 2)))
    counter = SyncCounter(cpu_tensors=True)
    with counter:
        out = gen(samples, torch.device('cpu'))
    assert counter.syncs == 0, counter.summary()
    assert out.stacked['traj_target'].shape[0] == 2


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_targets_under_autocast_equal_fp32(dtype):
    """The recipes train under bf16/fp16 autocast: the generator must still
    compute flow, checks and targets in fp32 (a half-precision Farneback
    would move trajectories by pixels), so its outputs are bit-equal to a
    call outside autocast."""
    gen = _generator(release_compat=False, min_valid_fraction=0.0)
    frames = torch.from_numpy(np.stack([_dense(0), _dense(2, label=1)]))
    ref = gen.compute(frames)
    with torch.autocast(device_type='cpu', dtype=dtype):
        got = gen.compute(frames)
    assert set(got) == set(ref)
    for key, value in ref.items():
        if torch.is_floating_point(value):
            assert got[key].dtype == value.dtype == torch.float32, key
        assert torch.equal(got[key], value), key
