"""Collapse measures (mme_plugin/evaluation/collapse.py) on features with
known answers, and CollapseMonitorHook (mme_plugin/engine/collapse_monitor.py)
on a tiny MME model: through a fake runner and a 2-iteration training run."""
import logging
import math
import os.path as osp
from glob import glob
from types import SimpleNamespace

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.logging import MessageHub

from mme_plugin.engine import CollapseMonitorHook
from mme_plugin.evaluation import (ConstantShareMeter, block_sv_ratios,
                                   collapse_measures, constant_share)
from mme_plugin.registry import MODELS
from mme_plugin.utils import register_all_modules

from .conftest import read_scalars

TINY = 'configs/mme/pretrain_tiny_synthetic.py'


def test_constant_share_has_the_closed_form_answer():
    # c (norm 3) +- s e (s = 4) with e orthogonal to c: mean = c, mean
    # squared norm 9 + 16 = 25 -> share 3 / 5
    c = torch.tensor([3.0, 0, 0])
    e = torch.tensor([0, 4.0, 0])
    assert constant_share(torch.stack([c + e, c - e])) == pytest.approx(0.6)
    assert constant_share(torch.stack([c, c, c])) == pytest.approx(1.0)
    assert constant_share(torch.stack([e, -e])) == pytest.approx(0.0)
    # streaming over batches equals one shot, any leading shape
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, 4, generator=g) + 0.5
    meter = ConstantShareMeter()
    assert meter.update(x[:2]) is None  # usable as a forward hook
    meter.update(x[2:])
    assert meter.value == pytest.approx(constant_share(x), rel=1e-9)
    with pytest.raises(ValueError, match='channels'):
        meter.update(torch.zeros(2, 3))


def test_constant_plus_tiny_noise_is_flagged_collapsed():
    g = torch.Generator().manual_seed(0)
    n, c = 500, 16
    const = torch.randn(c, generator=g) * 5
    # tiny noise along one direction: share ~1 and PR ~1
    u = torch.randn(c, generator=g)
    feats = const + 1e-3 * torch.randn(n, 1, generator=g) * u
    m = collapse_measures(feats)
    assert m['constant_share'] > 0.9999
    assert m['participation_ratio'] == pytest.approx(1.0, abs=1e-3)
    assert m['collapsed'] and m['sv_ratio'] == []
    # tiny isotropic noise: the PR is scale-invariant (about C), the share
    # alone flags the collapse
    feats = const + 1e-3 * torch.randn(n, c, generator=g)
    m = collapse_measures(feats)
    assert m['constant_share'] > 0.9999
    assert m['participation_ratio'] > 0.8 * c
    assert m['collapsed']


def test_isotropic_gaussian_has_no_constant_and_pr_about_c():
    g = torch.Generator().manual_seed(1)
    n, t, c = 2000, 4, 8
    tokens = torch.randn(n, t, c, generator=g)
    m = collapse_measures(tokens)  # [N, T, C]: pooled over T for the PR
    # ||mean|| of N*T standard normals in C dims ~ sqrt(C / (N T)); RMS
    # norm sqrt(C): share ~ 1 / sqrt(N T) = 0.011
    assert m['constant_share'] < 3 / math.sqrt(n * t)
    assert m['participation_ratio'] == pytest.approx(c, rel=0.1)
    assert not m['collapsed']
    # spread along 1 of 8 directions: not constant, but PR ~1 -> flagged
    one = torch.randn(n, 1, generator=g) * torch.eye(c)[0]
    m = collapse_measures(one + 1e-4 * torch.randn(n, c, generator=g))
    assert m['constant_share'] < 0.1
    assert m['participation_ratio'] < 1.01 and m['collapsed']
    with pytest.raises(ValueError, match=r'\[N >= 2, C\]'):
        collapse_measures(torch.zeros(1, 8))


def test_singular_value_ratio_finds_a_dominant_direction():
    # diag(10, 1, 1, 1, 1): top 10, median 1
    w = torch.diag(torch.tensor([10.0, 1, 1, 1, 1]))
    assert block_sv_ratios([[w]]) == [pytest.approx(10.0)]
    g = torch.Generator().manual_seed(0)
    rand = torch.randn(128, 128, generator=g) * 0.02
    u, v = torch.randn(128, 1, generator=g), torch.randn(1, 128, generator=g)
    # one direction of singular value 1.14 (block 0's attention projection
    # after MME pretraining in the diagnosis)
    dominant = rand + 1.14 * u @ v / (u.norm() * v.norm())
    r_rand, r_dom = block_sv_ratios([[rand], [dominant, rand]])
    # a Gaussian square matrix: top ~2 sqrt(n) sigma = 0.45, median ~0.9
    # sqrt(n) sigma = 0.2 -> about 2.3
    assert 1.5 < r_rand < 3.5
    # top ~1.14 over the same median: ~5.5, the block's largest ratio
    assert 4.5 < r_dom < 7
    # zero weights give 0; a module's 2-D weights are used (biases ignored)
    lin = torch.nn.Linear(4, 4)
    torch.nn.init.zeros_(lin.weight)
    assert block_sv_ratios([lin, []]) == [0.0, 0.0]


def _tiny_mme():
    register_all_modules()
    cfg = Config.fromfile(TINY)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _collapse(backbone):
    """Make the last block add one large constant vector to every token:
    its MLP output is a bias of norm ~50 * sqrt(C)."""
    fc2 = backbone.blocks[-1].mlp.layers[1]
    with torch.no_grad():
        fc2.weight.zero_()
        fc2.bias.copy_(50 * torch.randn(fc2.bias.shape[0]))


class _Catch(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture()
def caught():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    handler = _Catch()
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def _warnings(records):
    return [r for r in records if r.levelno == logging.WARNING
            and 'looks collapsed' in r.getMessage()]


def test_hook_logs_measures_and_warns_once_on_a_collapsed_encoder(caught):
    model = _tiny_mme()
    runner = SimpleNamespace(model=model, iter=0,
                             message_hub=MessageHub.get_instance(
                                 f'collapse-{id(model)}'))
    hook = CollapseMonitorHook(interval=2, num_clips=6, max_batches=3)
    g = torch.Generator().manual_seed(0)

    def batch():  # raw uint8-range clips, as the loader gives them
        return dict(inputs=[torch.rand(1, 3, 8, 64, 64, generator=g) * 255
                            for _ in range(4)],
                    data_samples=[ActionDataSample() for _ in range(4)])

    model.train()
    hook.before_train_iter(runner, 0, batch())  # 4 of 6 clips: no measure
    assert hook.last is None
    hook.before_train_iter(runner, 1, batch())  # 6 clips: measured at start
    assert hook._inputs.shape == (6, 3, 8, 64, 64)
    hub = runner.message_hub
    share = hub.get_scalar('train/collapse_share').current()
    assert 0 <= share < 0.9  # random init: small constant part
    assert 1.5 < hub.get_scalar('train/collapse_pr').current() <= 5
    ratios = [hub.get_scalar(f'train/collapse_sv_ratio_block{i}').current()
              for i in range(4)]
    assert all(1 < r < 5 for r in ratios)  # trunc-normal init: ~2
    assert hub.get_scalar('train/collapsed').current() == 0
    assert model.backbone.training  # train mode restored
    assert not _warnings(caught)

    _collapse(model.backbone)
    runner.iter = 1  # after iteration 2: every 2nd iteration
    hook.after_train_iter(runner, 1)
    assert hub.get_scalar('train/collapse_share').current() > 0.9
    assert hub.get_scalar('train/collapsed').current() == 1
    runner.iter = 2
    hook.after_train_iter(runner, 2)  # iteration 3: not measured
    runner.iter = 3
    hook.after_train_iter(runner, 3)  # measured again, still collapsed
    assert len([r for r in caught if 'CollapseMonitorHook at iter' in
                r.getMessage()]) == 3
    assert len(_warnings(caught)) == 1
    assert model.backbone.training
    wrong = CollapseMonitorHook(encoder='encoder')
    wrong._inputs = hook._inputs
    with pytest.raises(AttributeError, match="no module 'encoder'"):
        wrong.measure(runner)


def test_two_iteration_run_logs_the_scalars_and_warns_once(
        synthetic_root, tmp_path):
    """The hook in a real run of the tiny MME config (2 iterations), the
    encoder collapsed before the first one: scalars.json holds the
    measures, the log one warning."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    class CollapseBeforeTraining(Hook):
        def before_train(self, runner):  # after init_weights
            _collapse(runner.model.backbone)

    register_all_modules()
    cfg = Config.fromfile(TINY)
    flow = cfg.train_dataloader.dataset.pipeline[3]
    assert flow['type'] == 'ComputeFlow'
    flow.update(cache_dir=str(tmp_path / 'fc'), data_root=synthetic_root)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False,
                                batch_size=12)
    cfg.train_dataloader.pop('prefetch_factor', None)
    cfg.train_dataloader.dataset.update(
        ann_file=f'{synthetic_root}/train.txt',
        data_prefix=dict(video=synthetic_root))
    cfg.train_cfg.max_epochs = 1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 100
    cfg.custom_hooks = [dict(type='CollapseMonitorHook', interval=1,
                             num_clips=8)]
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = 'collapse'
    runner = Runner.from_cfg(cfg)
    runner.register_hook(CollapseBeforeTraining(), priority='VERY_HIGH')
    runner.train()
    rows = [r for r in read_scalars(cfg.work_dir) if 'loss' in r]
    assert len(rows) == 2  # 24 clips / 12 per batch
    for r in rows:
        assert r['collapse_share'] > 0.9 and r['collapsed'] == 1
        assert r['collapse_pr'] >= 0
        assert all(f'collapse_sv_ratio_block{i}' in r for i in range(4))
    # measured at the start and after each of the 2 iterations; warned once
    logs = glob(osp.join(cfg.work_dir, '*', '*.log'))
    assert len(logs) == 1
    with open(logs[0]) as f:
        text = f.read()
    assert text.count('CollapseMonitorHook at iter') == 3
    assert text.count('WARNING - CollapseMonitorHook: the encoder looks '
                      'collapsed at iter 0') == 1
    assert text.count('looks collapsed') == 1


def test_by_epoch_measures_at_epoch_ends_only():
    model = _tiny_mme()
    runner = SimpleNamespace(model=model, iter=0, epoch=0,
                             message_hub=MessageHub.get_instance(
                                 f'collapse-epoch-{id(model)}'))
    hook = CollapseMonitorHook(interval=2, by_epoch=True, num_clips=4,
                               at_start=False)
    hook.before_train_iter(runner, 0, dict(
        inputs=[torch.rand(1, 3, 8, 64, 64) * 255 for _ in range(5)],
        data_samples=[ActionDataSample() for _ in range(5)]))
    assert hook._inputs.shape[0] == 4 and hook.last is None  # no at_start
    for it in range(3):
        runner.iter = it
        hook.after_train_iter(runner, it)
    assert hook.last is None  # iterations do not count with by_epoch
    hook.after_train_epoch(runner)  # epoch 1 of every 2nd: not measured
    assert hook.last is None
    runner.epoch = 1
    hook.after_train_epoch(runner)
    assert hook.last['participation_ratio'] >= 0
    assert len(hook.last['sv_ratio']) == 4
    with pytest.raises(ValueError, match='num_clips >= 4'):
        CollapseMonitorHook(num_clips=2)
    # batches too small for the participation ratio: a clear error
    small = CollapseMonitorHook(num_clips=8, max_batches=1)
    with pytest.raises(ValueError, match='gave 2 clip.*max_batches'):
        small.before_train_iter(runner, 0, dict(
            inputs=[torch.rand(1, 3, 8, 64, 64) * 255 for _ in range(2)],
            data_samples=[ActionDataSample() for _ in range(2)]))
