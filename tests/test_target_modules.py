"""Targets as ``nn.Module``s owning their monitors; the flow backend base
class (issue #21, part 4)."""
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from torch import Tensor, nn

from mme_plugin.models import MMETarget, PointHOG
from mme_plugin.models.targets import HOGTarget, TrajectoryTarget
from mme_plugin.ops import (REJECT_REASONS, CallableFlow, FarnebackFlow,
                            FlowBackend, build_flow_backend)
from mme_plugin.registry import MODELS
from mme_plugin.utils import register_all_modules

register_all_modules()

VIT = dict(img_size=32, patch_size=8, embed_dims=48, depth=2, num_heads=3,
           num_frames=4, tubelet_size=2, use_mean_pooling=True)
N_TOKENS = 32  # 2 tubes x 4 x 4 patches


def _samples(seed: int = 0, hog: bool = True) -> List:
    """2 clips: trajectories, tracking monitors and HOG inputs."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.stack(torch.meshgrid(torch.arange(8.) * 4 + 2,
                                      torch.arange(8.) * 4 + 2,
                                      indexing='xy'), -1)
    out = []
    for i in range(2):
        ds = ActionDataSample(metainfo=dict(filename=f'clip{i}.mp4'))
        mask = torch.zeros(N_TOKENS, dtype=torch.bool)
        mask[:24] = True
        ds.set_field(mask, 'mask')
        ds.set_field(torch.randn(N_TOKENS, 32, generator=g), 'traj_target')
        ds.set_field(torch.arange(N_TOKENS) % 4 != i, 'traj_valid')
        ds.set_field(torch.tensor([0.1, 0.0, 0.2, 0.0, 0.3]) * (i + 1),
                     'traj_reject')
        ds.set_field(torch.tensor(float(i)), 'traj_motionless')
        if hog:
            ds.set_field(torch.randint(0, 256, (2, 2, 32, 32, 3), generator=g,
                                       dtype=torch.uint8), 'hog_frames')
            ds.set_field(grid + torch.randn(2, 2, 8, 8, 2, generator=g),
                         'hog_points')
            ds.set_field(torch.ones(N_TOKENS, dtype=torch.bool), 'hog_valid')
        out.append(ds)
    return out


def _mme(targets: Dict) -> nn.Module:
    torch.manual_seed(0)
    m = MODELS.build(dict(
        type='MME', backbone=dict(type='MMEVisionTransformer', **VIT),
        decoder=dict(type='MMEDecoder', embed_dims=32, num_heads=2),
        targets=targets,
        data_preprocessor=dict(type='ActionDataPreprocessor',
                               mean=[0., 0, 0], std=[1., 1, 1],
                               format_shape='NCTHW')))
    m.init_weights()
    return m


TARGETS = dict(
    traj=dict(type='TrajectoryTarget', traj_len=4, grid_step=4),
    hog=dict(type='HOGTarget', traj_len=1, cell_size=4, channels='gray',
             source='device'))


def test_targets_are_modules_without_state():
    """The targets sit in an nn.ModuleDict (print, .to(), modules()) and
    add no state_dict key: checkpoints load strictly either way."""
    model = _mme(TARGETS)
    assert isinstance(model.targets, nn.ModuleDict)
    assert isinstance(model.targets['hog'].device_hog, PointHOG)
    text = str(model)
    assert 'TrajectoryTarget(traj_len=4, grid_step=4' in text
    assert "source=device" in text and 'PointHOG(nbins=9, cell_size=4' in text
    assert not [k for k in model.state_dict() if k.startswith('targets')]
    without = _mme(dict(traj=TARGETS['traj']))
    # the same keys as a model without the hog target, except its head
    assert {k for k in model.state_dict() if '.hog' not in k} == \
        set(without.state_dict())
    model.load_state_dict(model.state_dict(), strict=True)
    assert model.to(torch.float64).targets['hog'] is model.targets['hog']


def test_hog_target_builds_its_point_hog_from_its_settings():
    """source='device' computes HOG with the target's own cell size,
    channels and bins: the same as an explicit device_hog of those."""
    own = HOGTarget(traj_len=1, cell_size=4, channels='gray', nbins=6,
                    source='device')
    given = HOGTarget(traj_len=1, cell_size=4, channels='gray', nbins=6,
                      device_hog=dict(type='PointHOG', cell_size=4,
                                      channels='gray', nbins=6))
    dev = own.device_hog
    assert (dev.cell_size, dev.channels, dev.nbins) == (4, 'gray', 6)
    backbone = MODELS.build(dict(type='MMEVisionTransformer', **VIT))
    for unit in (own, given):
        unit.setup(backbone)
    samples = _samples()
    x = torch.zeros(2, 3, 4, 32, 32)
    idx = torch.tensor([[0, 5, 31], [2, 3, 17]])
    a, _ = own(None, x, samples, idx)
    b, _ = given(None, x, samples, idx)
    assert a.shape == (2, 3, own.feat_dim) == (2, 3, 2 * 4 * 6)
    assert a.abs().sum() > 0
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    full, _ = own(None, x, samples)
    torch.testing.assert_close(full[0, [0, 5, 31]], a[0])


def test_hog_target_reads_only_its_source():
    """An explicit source reads only its own keys; the error names it."""
    x = torch.zeros(2, 3, 4, 32, 32)
    backbone = MODELS.build(dict(type='MMEVisionTransformer', **VIT))
    pipeline = HOGTarget(traj_len=1, cell_size=4, channels='gray',
                         source='pipeline')
    pipeline.setup(backbone)
    assert pipeline.device_hog is None
    with pytest.raises(KeyError, match=r'HOGTarget source=\W*pipeline'):
        pipeline(None, x, _samples())  # hog_frames only
    samples = _samples(hog=False)
    for ds in samples:
        ds.set_field(torch.full((N_TOKENS, 216), 0.5), 'hog_target')
    device = HOGTarget(traj_len=1, cell_size=4, channels='gray',
                       source='device')
    device.setup(backbone)
    with pytest.raises(KeyError, match=r'HOGTarget source=\W*device'):
        device(None, x, samples)  # hog_target only
    got, valid = pipeline(None, x, samples)
    assert got.shape == (2, N_TOKENS, 216) and valid is None
    with pytest.raises(ValueError, match='source'):
        HOGTarget(source='somewhere')
    with pytest.raises(ValueError, match='drop device_hog'):
        HOGTarget(source='pipeline', device_hog=dict(type='PointHOG'))


def test_targets_own_their_monitors():
    """Known values: traj_valid over the loss's (masked) tokens, the
    per-reason reject fractions and the motionless fraction of the batch,
    <name>_target_abs of every target."""
    model = _mme(TARGETS)
    samples = _samples()
    x = torch.rand(2, 1, 3, 4, 32, 32) * 255
    logs = model(x, samples)
    # masked tokens 0..23; clip i has tokens with index % 4 == i invalid
    assert logs['traj_valid'].item() == pytest.approx(0.75)
    for k, why in enumerate(REJECT_REASONS):
        want = [0.1, 0.0, 0.2, 0.0, 0.3][k] * 1.5
        assert logs[f'reject_{why}'].item() == pytest.approx(want)
    assert logs['motionless'].item() == pytest.approx(0.5)
    traj = torch.stack([ds.traj_target[:24] for ds in samples])
    assert logs['traj_target_abs'].item() == pytest.approx(
        traj.abs().mean().item())
    assert logs['hog_target_abs'] > 0
    # a target under another name logs under its own name
    renamed = _mme(dict(motion=TARGETS['traj']))(x, samples)
    assert 'motion_valid' in renamed and 'motion_target_abs' in renamed
    assert 'traj_valid' not in renamed


@MODELS.register_module()
class _ConstTarget(MMETarget):
    """A target the model knows nothing about: constant, own monitor."""

    def derived_dim(self) -> int:
        return 3

    def compute(self, model, inputs: Tensor, data_samples: List):
        b = inputs.shape[0]
        return torch.full((b, N_TOKENS, 3), 2.0), None

    def monitors(self, name: str, target: Tensor, valid: Optional[Tensor],
                 data_samples: List) -> Dict[str, Tensor]:
        return {f'{name}_count': torch.tensor(float(target.shape[0]))}


def test_model_has_no_per_name_code():
    """Any registered target trains and logs with no change to MME."""
    model = _mme(dict(const=dict(type='_ConstTarget', weight=2.0)))
    logs = model(torch.rand(2, 1, 3, 4, 32, 32) * 255, _samples(hog=False))
    assert set(logs) == {'loss_const', 'const_count'}
    assert logs['const_count'].item() == 2 * 24  # the masked tokens
    assert logs['loss_const'] > 0
    logs['loss_const'].backward()


class _ShiftFlow(FlowBackend):
    """A flow backend of one method: a constant (1, -2) px flow."""

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        flow = np.zeros((*prev.shape[:2], 2), np.float32)
        flow[..., 0], flow[..., 1] = 1.0, -2.0
        return flow * 1


class _RGBFlow(_ShiftFlow):
    """An RGB backend: only ``prepare`` changes."""

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        return frame[::2, ::2]  # three channels, half size


def test_flow_backend_base_is_abstract_and_a_subclass_is_enough():
    with pytest.raises(TypeError):
        FlowBackend()  # compute is abstract
    frames = [np.full((16, 24, 3), i * 10, np.uint8) for i in range(4)]
    for backend in (_ShiftFlow(), _ShiftFlow(scale=0.5), _RGBFlow()):
        flows = backend.chain(frames)
        assert flows.shape == (3, 16, 24, 2) and flows.dtype == np.float32
        work = backend.chain(frames, full_res=False)
        np.testing.assert_array_equal(work[0],
                                      backend.working_res(*frames[:2]))
        np.testing.assert_array_equal(flows[1], backend(*frames[1:3]))
    # working resolution 8 x 12: displacements scaled x2 at full res
    np.testing.assert_allclose(_RGBFlow().chain(frames)[0, 3, 5], [2, -4])
    assert _ShiftFlow().tag != _ShiftFlow(scale=0.5).tag
    assert _ShiftFlow().tag.startswith('_ShiftFlow')


def test_plain_callable_is_wrapped_and_refused_by_the_cache(tmp_path):
    from mme_plugin.datasets.transforms import ComputeFlow
    fn = FarnebackFlow()
    calls = []

    def plain(a, b):
        calls.append(1)
        return fn(a, b)

    wrapped = build_flow_backend(plain)
    assert isinstance(wrapped, CallableFlow)
    assert build_flow_backend(fn) is fn
    rng = np.random.default_rng(0)
    dense = rng.integers(0, 255, (2, 3, 32, 32, 3), dtype=np.uint8)
    got = ComputeFlow(backend=plain, backward=True)(dict(dense_imgs=dense))
    ref = ComputeFlow(backend=dict(type='FarnebackFlow'),
                      backward=True)(dict(dense_imgs=dense))
    np.testing.assert_array_equal(got['flows'], ref['flows'])
    np.testing.assert_array_equal(got['flows_bwd'], ref['flows_bwd'])
    assert len(calls) == 2 * 2 * 2  # tubes x pairs x directions
    np.testing.assert_array_equal(got['flows_bwd'][1, 0],
                                  fn(dense[1, 1], dense[1, 0]))
    with pytest.raises(TypeError, match='subclass mme_plugin.ops.FlowBack'):
        ComputeFlow(backend=plain, cache_dir=str(tmp_path)).tags


def test_trajectory_target_repr_and_forward_gather():
    unit = TrajectoryTarget(traj_len=4, grid_step=4)
    assert 'traj_len=4' in repr(unit)
    samples = _samples(hog=False)
    x = torch.zeros(2, 3, 4, 32, 32)
    idx = torch.tensor([[1, 2], [30, 0]])
    got, valid = unit(None, x, samples, idx)
    torch.testing.assert_close(got[1, 0], samples[1].traj_target[30])
    assert valid.tolist() == [[True, True], [True, True]]
