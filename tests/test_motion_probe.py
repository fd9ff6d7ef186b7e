"""The motion-regression read-out (issue #22): ridge R^2 against known
answers, and the synthetic clips' exact motion."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from mme_plugin.datasets.synthetic import (MOTION_CLASSES, clip_velocity,
                                           load_clip_velocities,
                                           make_synthetic_dataset,
                                           render_clip)
from mme_plugin.evaluation import VELOCITY_NAMES, ridge_r2


def _targets(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g, dtype=torch.float64)


def test_features_that_are_a_linear_map_of_the_motion_score_near_one():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(4, 64, generator=g, dtype=torch.float64)
    ytr, yte = _targets(320, 1), _targets(400, 2)
    xtr = ytr @ mix + 0.05 * torch.randn(320, 64, generator=g,
                                         dtype=torch.float64)
    xte = yte @ mix + 0.05 * torch.randn(400, 64, generator=g,
                                         dtype=torch.float64)
    out = ridge_r2(xtr.float(), ytr, xte.float(), yte)
    for name in VELOCITY_NAMES:
        assert out[f'r2_{name}'] > 0.98, (name, out)
    assert out['motion_r2'] > 0.98 and out['translation_r2'] > 0.98


def test_features_that_ignore_the_motion_score_about_zero():
    g = torch.Generator().manual_seed(3)
    ytr, yte = _targets(320, 4), _targets(400, 5)
    xtr = torch.randn(320, 128, generator=g)
    xte = torch.randn(400, 128, generator=g)
    out = ridge_r2(xtr, ytr, xte, yte)
    # leave-one-out picks a strong ridge; the fit is near the mean
    assert all(out[f'ridge_alpha_{n}'] >= 100 for n in VELOCITY_NAMES), out
    assert -0.1 < out['motion_r2'] < 0.05, out


def test_an_input_independent_encoder_scores_at_most_zero():
    """A collapsed encoder (the same feature for every clip) cannot beat
    the mean."""
    ytr, yte = _targets(64, 6), _targets(50, 7)
    out = ridge_r2(torch.ones(64, 16), ytr, torch.ones(50, 16), yte)
    assert out['motion_r2'] <= 1e-9, out


def test_only_one_component_carried_is_seen_per_component():
    ytr, yte = _targets(320, 8), _targets(400, 9)
    out = ridge_r2(ytr[:, :1].repeat(1, 8), ytr, yte[:, :1].repeat(1, 8),
                   yte)
    assert out['r2_vx'] > 0.99
    assert max(out['r2_vy'], out['r2_rotation'], out['r2_scale_rate']) < .05
    assert out['translation_r2'] == pytest.approx(
        (out['r2_vx'] + out['r2_vy']) / 2)


def test_mismatched_target_columns_are_refused():
    with pytest.raises(ValueError, match='columns'):
        ridge_r2(torch.ones(4, 2), torch.ones(4, 3), torch.ones(2, 2),
                 torch.ones(2, 3))


@pytest.mark.parametrize('label,expect', [
    (0, (1.2, 0, 0, 0)), (1, (-1.2, 0, 0, 0)), (2, (0, -1.2, 0, 0)),
    (3, (0, 1.2, 0, 0)), (4, (0, 0, -3.6, 0)), (5, (0, 0, 3.6, 0)),
    (6, (0, 0, 0, 100 * np.log(1.024))), (7, (0, 0, 0, -100 * np.log(1.024)))
])
def test_clip_velocity_of_each_class(label, expect):
    assert clip_velocity(label, 1.2) == pytest.approx(expect)


def test_velocities_are_the_rendered_clips_motion(synthetic_root):
    """Each listed clip's velocity is its sprite's frame-to-frame affine
    motion (translation classes: the shift of the affine; rotation: its
    angle; scale: its determinant)."""
    vel = load_clip_velocities(synthetic_root, 'train')
    with open(osp.join(synthetic_root, 'train.txt')) as f:
        rels = [ln.split() for ln in f if ln.strip()]
    assert vel.shape == (len(rels), 4) == (3 * len(MOTION_CLASSES), 4)
    with open(osp.join(synthetic_root, 'motion.json')) as f:
        motion = json.load(f)['splits']
    for (rel, label), v in zip(rels, vel):
        label = int(label)
        assert motion['train'][rel][0] == label
        # the clip's own seed, as make_synthetic_dataset draws it
        i = int(rel.rsplit('_', 1)[1][:4])
        seed = int(np.random.SeedSequence([0, 0, label, i])
                   .generate_state(1)[0])
        _, info = render_clip(label, 3, (64, 64), seed)
        a0, a1 = info['affine'][0], info['affine'][1]
        shift = a1[:, 2] - a0[:, 2]
        lin = a1[:, :2] @ np.linalg.inv(a0[:, :2])
        # OpenCV's rotation matrix: [[a, b], [-b, a]], a = s cos, b = s sin
        # of the counter-clockwise angle (as seen on the image)
        angle = np.degrees(np.arctan2(lin[0, 1], lin[0, 0]))
        scale = np.sqrt(abs(np.linalg.det(lin)))
        if label < 4:  # pure translation
            assert v[:2] == pytest.approx(shift, abs=1e-6)
        assert v[2] == pytest.approx(angle, abs=1e-6)
        assert v[3] == pytest.approx(100 * np.log(scale), abs=1e-6)


def _motion(root):
    with open(osp.join(root, 'motion.json')) as f:
        return json.load(f)


def test_missing_or_stale_motion_file_names_the_fix(tmp_path):
    root = str(tmp_path / 'syn')
    make_synthetic_dataset(root, dict(train=1, val=1), num_frames=8,
                           classes=[0, 6])
    first = _motion(root)
    assert first['generator'] == dict(seed=0, size=[64, 64], num_frames=8)
    os.remove(osp.join(root, 'motion.json'))
    with pytest.raises(FileNotFoundError, match='make_synthetic.py'):
        load_clip_velocities(root, 'val')
    # writing again keeps the clips and restores the same motion
    make_synthetic_dataset(root, dict(train=1, val=1), num_frames=8,
                           classes=[0, 6])
    assert _motion(root) == first
    # a call for one split keeps the other's entries
    make_synthetic_dataset(root, dict(train=1), num_frames=8, classes=[0, 6])
    assert _motion(root)['splits'] == first['splits']
    with pytest.raises(KeyError, match="no split 'test'"):
        load_clip_velocities(root, 'test')
    with open(osp.join(root, 'val.txt'), 'a') as f:
        f.write('val/extra_0000.mp4 0\n')
    with pytest.raises(KeyError, match='extra_0000'):
        load_clip_velocities(root, 'val')


@pytest.mark.parametrize('kwargs', [
    dict(seed=1), dict(num_per_class=dict(val=1)), dict(num_frames=16)])
def test_kept_clips_of_other_settings_are_refused(tmp_path, kwargs):
    """The speed of a kept clip is drawn again from its seed: clips
    written with another dataset seed, under another split position (val
    alone is split 0, not 1) or another length would get wrong motion;
    refused."""
    root = str(tmp_path / 'syn')
    make_synthetic_dataset(root, dict(train=1, val=1), num_frames=8,
                           classes=[0])
    call = dict(num_per_class=dict(train=1, val=1), num_frames=8,
                classes=[0], seed=0)
    call.update(kwargs)
    with pytest.raises(ValueError, match='not the clip this call renders'):
        make_synthetic_dataset(root, **call)


def test_within_class_score_is_the_part_beyond_the_class():
    """Features that carry only the class explain most of the motion but
    nothing within a class; features that also carry the speed do."""
    g = torch.Generator().manual_seed(11)

    def clips(n):
        label = torch.randint(0, 8, (n, ), generator=g)
        speed = 0.6 + 0.8 * torch.rand(n, generator=g, dtype=torch.float64)
        vel = torch.tensor([clip_velocity(int(c), float(v))
                            for c, v in zip(label, speed)])
        onehot = torch.nn.functional.one_hot(label, 8).double()
        return label, speed, vel, onehot

    ltr, str_, vtr, otr = clips(320)
    lte, ste, vte, ote = clips(400)
    only_class = ridge_r2(otr, vtr, ote, vte, train_groups=ltr,
                          test_groups=lte)
    assert only_class['motion_r2'] > 0.8
    assert abs(only_class['within_class_r2']) < 0.05
    # class x speed features: the velocity is linear in them
    with_speed = ridge_r2(torch.cat([otr, otr * str_[:, None]], 1), vtr,
                          torch.cat([ote, ote * ste[:, None]], 1), vte,
                          train_groups=ltr, test_groups=lte)
    assert with_speed['motion_r2'] > 0.99
    assert with_speed['within_class_r2'] > 0.95


def test_each_target_gets_its_own_strength_and_constant_targets_are_nan():
    g = torch.Generator().manual_seed(12)
    x = torch.randn(200, 4, generator=g, dtype=torch.float64)
    xt = torch.randn(100, 4, generator=g, dtype=torch.float64)
    noise = torch.randn(200, generator=g, dtype=torch.float64)
    # target 0: exact; target 1: pure noise; target 2/3: constant on test
    y = torch.stack([x[:, 0], noise, torch.zeros(200), x[:, 1]], 1)
    yt = torch.stack([xt[:, 0], torch.randn(100, generator=g,
                                            dtype=torch.float64),
                      torch.zeros(100), torch.zeros(100)], 1)
    out = ridge_r2(x, y, xt, yt)
    assert out['r2_vx'] > 0.999
    assert out['ridge_alpha_vx'] < out['ridge_alpha_vy']
    assert np.isnan(out['r2_rotation']) and np.isnan(out['r2_scale_rate'])
    assert out['motion_r2'] == pytest.approx(
        (out['r2_vx'] + out['r2_vy']) / 2)


def test_leave_one_out_matches_refitting():
    """The closed-form LOO error the strength is chosen by equals
    refitting without each sample (intercept included)."""
    from mme_plugin.evaluation.motion_probe import _fit_score, _loo_errors
    g = torch.Generator().manual_seed(13)
    x = torch.randn(30, 6, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 1, generator=g, dtype=torch.float64) + \
        torch.randn(30, 1, generator=g, dtype=torch.float64)
    a = 3.0

    def fit_predict(xa, ya, xb):  # ridge, intercept not penalised
        xm, ym = xa.mean(0), ya.mean(0)
        coef = torch.linalg.solve((xa - xm).T @ (xa - xm) +
                                  a * torch.eye(6, dtype=xa.dtype),
                                  (xa - xm).T @ (ya - ym))
        return (xb - xm) @ coef + ym

    refit = torch.stack([
        (y[i] - fit_predict(torch.cat([x[:i], x[i + 1:]]),
                            torch.cat([y[:i], y[i + 1:]]), x[i:i + 1])[0])
        for i in range(30)])
    loo_refit = float((refit**2).mean())
    svd = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    assert float(_loo_errors(svd, y, [a])[0, 0]) == \
        pytest.approx(loo_refit, rel=1e-9)
    # and _fit_score picks, of two strengths, the one refitting prefers
    _, chosen = _fit_score(svd, y, x, y, [a, 1e6])
    assert float(chosen[0]) == a
