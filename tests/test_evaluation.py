"""Trivial-predictor levels and the logistic probe against known answers."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mme_plugin.evaluation import (feature_spread, logistic_probe,
                                   trivial_levels)
from mme_plugin.registry import DATASETS, MODELS
from mme_plugin.utils import effective_pipeline, register_all_modules

from .conftest import REPO


def test_logistic_probe_separates_blobs_and_is_at_chance_on_noise():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g) * 4
    y = torch.arange(400) % 4
    x = centres[y] + torch.randn(400, 16, generator=g)
    res = logistic_probe(x[:200], y[:200], x[200:], y[200:])
    assert res['test_acc'] == 1.0
    noise = torch.randn(400, 16, generator=g)
    res = logistic_probe(noise[:200], y[:200], noise[200:], y[200:])
    assert abs(res['test_acc'] - 0.25) < 0.1  # chance, SE ~0.03


def _pretraining(config, root, tmp_path):
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, config))
    ds = cfg.train_dataloader.dataset
    ds.ann_file = f'{root}/train.txt'
    ds.data_prefix = dict(video=root)
    ds.pipeline = effective_pipeline(ds)  # its pipeline_edits applied
    ds.pop('pipeline_edits', None)
    for t in ds.pipeline:
        if t['type'] == 'ComputeFlow':
            t['cache_dir'], t['data_root'] = str(tmp_path / 'fc'), root
    return MODELS.build(cfg.model), DATASETS.build(ds)


def test_pixel_predict_zero_level_is_the_normalisation_constant(
        synthetic_root, tmp_path):
    """Per-token pixels normalised with the unbiased variance over the
    2 x p x p values of each channel (n of them): mean square = (n - 1) / n
    for every token whose
    variance is far above eps, ~0 for a flat one; the synthetic clips are
    textured almost everywhere."""
    import random

    import numpy as np
    np.random.seed(0)
    random.seed(0)
    model, ds = _pretraining('configs/mme/videomae_tiny_synthetic.py',
                             synthetic_root, tmp_path)
    lv = trivial_levels(model, ds, num_samples=8, batch_size=4)['pixel']
    p = model.backbone.patch_size
    n = 2 * p * p
    assert 0.95 < lv['zero'] <= (n - 1) / n + 1e-9
    assert lv['mean'] <= lv['zero']
    tokens = model.backbone.pos_embed.shape[1]
    assert lv['tokens'] == 8 * int(0.75 * tokens)


def test_trajectory_levels_match_a_direct_computation(synthetic_root,
                                                      tmp_path):
    """The levels are reproducible draws: sample i is drawn with the seed
    SeededSampler gives index i at epoch 0, so drawing those samples by
    hand gives exactly the same predict-zero and predict-mean levels, and a
    second call the same numbers (mmaction's MultiScaleCrop draws from
    Python's random, which seeding NumPy and torch alone missed)."""
    from mme_plugin.datasets import SeededIndex
    model, ds = _pretraining('configs/mme/pretrain_tiny_synthetic.py',
                             synthetic_root, tmp_path)
    lv = trivial_levels(model, ds, num_samples=4, batch_size=4)
    assert set(lv) == {'traj', 'hog'}
    # another batch size sums in another order: equal to the last bits
    again = trivial_levels(model, ds, num_samples=4, batch_size=2)
    assert again.keys() == lv.keys()
    for name in lv:
        assert again[name]['tokens'] == lv[name]['tokens']
        for k in ('zero', 'mean'):
            assert again[name][k] == pytest.approx(lv[name][k], rel=1e-12)
    items = [ds[SeededIndex(i, 0, 0)] for i in range(4)]
    ts = []
    for it in items:
        s = it['data_samples']
        sel = s.mask.bool() & s.traj_valid.bool()
        ts.append(s.traj_target[sel].double())
    t = torch.cat(ts)
    assert lv['traj']['tokens'] == t.shape[0]
    assert lv['traj']['zero'] == pytest.approx(t.pow(2).mean().item(),
                                               rel=1e-9)
    assert lv['traj']['mean'] == pytest.approx(
        t.var(0, unbiased=False).mean().item(), rel=1e-9)
    assert lv['traj']['mean'] <= lv['traj']['zero'] + 1e-12


def test_feature_spread_known_answers():
    g = torch.Generator().manual_seed(0)
    n, c = 4000, 16
    # isotropic: spread = std * sqrt(C) / E|x| ~ 1, PR ~ C
    iso = feature_spread(torch.randn(n, c, generator=g))
    assert iso['relative_spread'] == pytest.approx(1.0, rel=0.05)
    assert iso['participation_ratio'] == pytest.approx(c, rel=0.05)
    # a constant vector of norm 10 plus noise of std 0.1 per dim along one
    # direction: spread 0.1 / sqrt(C) * sqrt(C) / 10 over C dims averaged
    const = torch.zeros(c)
    const[0] = 10.0
    d = torch.zeros(c)
    d[1] = 1.0
    x = const + 0.1 * torch.randn(n, 1, generator=g) * d
    sp = feature_spread(x)
    # only dim 1 varies: mean std over dims = 0.1 / C; times sqrt(C) / 10
    assert sp['relative_spread'] == pytest.approx(0.1 / c**0.5 / 10,
                                                  rel=0.05)
    assert sp['participation_ratio'] == pytest.approx(1.0, abs=1e-6)
    assert feature_spread(torch.ones(5, c))['relative_spread'] == 0.0
    with pytest.raises(ValueError, match='N >= 2'):
        feature_spread(torch.ones(1, c))
