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
    assert out['ridge_alpha'] >= 100, out
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
    motion = json.load(open(osp.join(synthetic_root, 'motion.json')))
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


def test_missing_or_stale_motion_file_names_the_fix(tmp_path):
    root = str(tmp_path / 'syn')
    make_synthetic_dataset(root, dict(train=1, val=1), num_frames=8,
                           classes=[0, 6])
    first = json.load(open(osp.join(root, 'motion.json')))
    os.remove(osp.join(root, 'motion.json'))
    with pytest.raises(FileNotFoundError, match='make_synthetic.py'):
        load_clip_velocities(root, 'val')
    # writing again keeps the clips and restores the same motion
    make_synthetic_dataset(root, dict(train=1, val=1), num_frames=8,
                           classes=[0, 6])
    assert json.load(open(osp.join(root, 'motion.json'))) == first
    with open(osp.join(root, 'val.txt'), 'a') as f:
        f.write('val/extra_0000.mp4 0\n')
    with pytest.raises(KeyError, match='extra_0000'):
        load_clip_velocities(root, 'val')
