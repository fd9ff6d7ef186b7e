"""Pre-flight of pretraining data: ``check_dataset.py`` runs the config's
pipeline up to the targets (shot cuts that stop training, still clips that
give near-zero targets), and training counts and warns about motionless
clips."""
import copy
import importlib.util
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import FUNCTIONS

from mme_plugin.datasets.preflight import TargetProbe, span_offsets
from mme_plugin.datasets.transforms import motion_targets
from mme_plugin.ops.motion_magnitude import (DEFAULT_MIN_MOTION,
                                             motion_magnitude)
from mme_plugin.registry import MODELS, TRANSFORMS
from mme_plugin.utils import (effective_pipeline, flow_cache_options,
                              register_all_modules)

from .conftest import write_probe_clips

register_all_modules()
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    'preflight_check_dataset',
    osp.join(REPO, 'tools', 'analysis', 'check_dataset.py'))
check_dataset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_dataset)

CONFIG = osp.join(REPO, 'configs', 'mme', 'pretrain_tiny_synthetic.py')
FRAMES = 48  # > the 29-frame span of the tiny config: 3 distinct spans


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    """``normal.mp4`` (a sprite moving right), ``cut.mp4`` (two clips
    spliced with a hard cut every 3 frames) and ``still.mp4`` (one textured
    frame repeated), 64 x 64, lossless, with a list naming all three."""
    return write_probe_clips(tmp_path_factory.mktemp('preflight'),
                             FRAMES)


def _options(root: str, ann: str):
    cfg = Config.fromfile(CONFIG)
    opts = [f'train_dataloader.dataset.ann_file={root}/{ann}',
            f'train_dataloader.dataset.data_prefix.video={root}']
    opts += [f'{k}={v}' for k, v in flow_cache_options(
        cfg.train_dataloader.dataset, root).items()]
    return opts


def _rows(path: str):
    with open(path) as f:
        return [line.rstrip('\n').split('\t') for line in f]


def test_span_offsets_are_start_middle_end():
    assert span_offsets(100, 29, 3) == [0, 36, 71]
    assert span_offsets(100, 29, 1) == [35]
    assert span_offsets(29, 29, 3) == [0]  # one position only
    assert span_offsets(31, 29, 3) == [0, 1, 2]


def test_motion_magnitude_known_answer():
    disp = np.zeros((1, 2, 2, 2, 2), np.float32)
    disp[..., 0, 0, :] = (3.0, 4.0)  # 5 px per step at this point
    disp[..., 1, 1, :] = (30.0, 0.0)  # an invalid point: not counted
    valid = np.array([[[True, True], [True, False]]])
    # 3 valid points, one moving 5 px: 5 / 3; frames resized by 1/2
    assert motion_magnitude(disp, valid) == pytest.approx(5 / 3)
    assert motion_magnitude(disp, valid, (0.5, 0.5)) == pytest.approx(10 / 3)
    assert np.isnan(motion_magnitude(disp, np.zeros_like(valid)))


def test_check_dataset_reports_cut_clip_and_still_clip(clips, tmp_path):
    out = str(tmp_path / 'report.tsv')
    with pytest.raises(SystemExit) as exc:
        check_dataset.main([CONFIG, '--splits', 'train', '--workers', '1',
                            '--spans', '3', '--out', out, '--cfg-options',
                            *_options(clips, 'all.txt')])
    assert exc.value.code == 1  # the cut clip would stop training
    report = {osp.basename(r[1]): r[2] for r in _rows(out)}
    assert set(report) == {'cut.mp4', 'still.mp4'}
    cut = report['cut.mp4']
    assert cut.startswith('would stop training in 3 of 3 spans')
    assert 'span 1/3 (frames 0-28)' in cut
    assert 'of the tokens have valid trajectories' in cut  # BuildMMETargets
    assert 'shot_cut' in cut and 'cut density' in cut
    still = report['still.mp4']
    assert still.startswith('warning: near-zero targets in 3 of 3 spans')
    assert not osp.exists(osp.join(clips, 'flow_cache'))  # nothing written
    # every span's numbers, as the pipeline measured them
    rows = _rows(str(tmp_path / 'report_targets.tsv'))
    assert rows[0][:8] == ['split', 'video', 'span', 'frames', 'cut_density',
                           'reliable', 'motion_px', 'verdict']
    by = {}
    for r in rows[1:]:
        by.setdefault(osp.basename(r[1]), []).append(r)
    assert [r[3] for r in by['normal.mp4']] == ['0-28', '10-38', '19-47']
    for r in by['normal.mp4']:
        assert r[7] == 'ok' and float(r[4]) == 0
        assert float(r[5]) > 0.5 and float(r[6]) > 10 * DEFAULT_MIN_MOTION
    for r in by['cut.mp4']:  # a cut in every tube: nothing reliable
        assert r[7] == 'stop' and float(r[4]) > 0.2 and float(r[5]) == 0
    for r in by['still.mp4']:
        assert r[7] == 'near-zero' and float(r[4]) == 0
        assert float(r[5]) > 0.9 and float(r[6]) < DEFAULT_MIN_MOTION


def test_still_clip_alone_is_a_warning_and_min_motion_is_configurable(
        clips, tmp_path, capsys):
    out = str(tmp_path / 'report.tsv')
    opts = _options(clips, 'no_cut.txt')
    # two workers: the parallel path
    check_dataset.main([CONFIG, '--splits', 'train', '--workers', '2',
                        '--spans', '2', '--out', out, '--cfg-options', *opts])
    assert 'no problems found; 1 warnings' in capsys.readouterr().out
    (row, ) = _rows(out)
    assert osp.basename(row[1]) == 'still.mp4'
    assert 'in 2 of 2 spans' in row[2] and 'span 1/2 (frames 0-28)' in row[2]
    # a threshold above the moving clip's motion flags it too; 0: none
    check_dataset.main([CONFIG, '--splits', 'train', '--workers', '1',
                        '--spans', '1', '--min-motion', '100', '--out', out,
                        '--cfg-options', *opts])
    assert len(_rows(out)) == 2
    check_dataset.main([CONFIG, '--splits', 'train', '--workers', '1',
                        '--spans', '1', '--min-motion', '0', '--out', out,
                        '--cfg-options', *opts])
    assert _rows(out) == []
    assert capsys.readouterr().out.rstrip().endswith('no problems found')


def _pipeline():
    cfg = Config.fromfile(CONFIG)
    ds = cfg.train_dataloader.dataset
    ds.pipeline_edits = dict(ComputeFlow=dict(cache_dir=None))
    return cfg, [TRANSFORMS.build(t) for t in effective_pipeline(ds)]


def _run(steps, path, stop_before=None):
    np.random.seed(0)
    results = dict(filename=path, label=0, modality='RGB', start_index=0)
    for step in steps:
        if type(step).__name__ == stop_before:
            break
        results = step(results)
    return results


def test_training_counts_and_warns_once_per_motionless_video(clips):
    cfg, steps = _pipeline()
    still, normal = osp.join(clips, 'still.mp4'), osp.join(clips, 'normal.mp4')
    motion_targets._WARNED_MOTIONLESS.discard(still)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        first = _run(steps, still)
        second = _run(steps, still)
        moving = _run(steps, normal)
    found = [str(w.message) for w in caught
             if 'motionless clip' in str(w.message)]
    assert len(found) == 1 and found[0].startswith(f'{still}: motionless')
    for packed, flag in ((first, 1.0), (second, 1.0), (moving, 0.0)):
        assert float(packed['data_samples'].traj_motionless) == flag
    # the model logs the batch's fraction of motionless clips
    model = MODELS.build(cfg.model)
    model.init_weights()
    coll = dict(cfg.train_dataloader.get('collate_fn',
                                         dict(type='pseudo_collate')))
    collate = FUNCTIONS.get(coll.pop('type'))  # the config's collate
    data = model.data_preprocessor(collate([first, moving], **coll), True)
    with torch.no_grad():
        losses = model(**data, mode='loss')
    assert float(losses['motionless']) == 0.5


def test_motionless_count_leaves_targets_unchanged(clips):
    _, steps = _pipeline()
    build = steps[[type(s).__name__ for s in steps].index('BuildMMETargets')]
    assert build.min_motion == DEFAULT_MIN_MOTION
    off = copy.deepcopy(build)
    off.min_motion = 0.0  # no count, no warning: the targets as before
    for name in ('still.mp4', 'normal.mp4'):
        before = _run(steps, osp.join(clips, name), 'BuildMMETargets')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            a = build(copy.deepcopy(before))
        b = off(copy.deepcopy(before))
        assert float(b['traj_motionless']) == 0.0
        assert float(a['traj_motionless']) == float(name == 'still.mp4')
        for key in ('traj_target', 'traj_valid', 'hog_target', 'hog_valid',
                    'traj_reject'):
            assert torch.equal(a[key], b[key]), (name, key)
        assert a['traj_motion'] == b['traj_motion']


def test_probe_leaves_the_global_random_state_alone(clips):
    cfg = Config.fromfile(CONFIG)
    ds = cfg.train_dataloader.dataset
    ds.pipeline_edits = dict(ComputeFlow=dict(cache_dir=None))
    probe = TargetProbe(effective_pipeline(ds), spans=3)
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    reports = probe(osp.join(clips, 'normal.mp4'))
    assert np.random.rand() == expected
    assert [r.index for r in reports] == [0, 1, 2]
    again = probe(osp.join(clips, 'normal.mp4'))  # deterministic
    assert [r.motion for r in again] == [r.motion for r in reports]


def test_probe_reads_the_flow_cache_where_it_has_the_video(clips, tmp_path):
    cfg = Config.fromfile(CONFIG)
    ds = cfg.train_dataloader.dataset
    ds.pipeline_edits = dict(ComputeFlow=dict(cache_dir=None))
    fresh = TargetProbe(effective_pipeline(ds), spans=2)
    ds.pipeline_edits = dict(ComputeFlow=dict(
        cache_dir=str(tmp_path / 'fc'), data_root=clips, cache_mode='read'))
    cached = TargetProbe(effective_pipeline(ds), spans=2)
    normal = osp.join(clips, 'normal.mp4')
    # read mode, no entry: training would stop (FlowCacheError); measured
    missing = cached(normal)
    assert all('FlowCacheError' in r.error for r in missing)
    assert all(r.motion > DEFAULT_MIN_MOTION for r in missing)
    flow = [s for s in cached.steps if type(s).__name__ == 'ComputeFlow'][0]
    flow.fill(normal)
    for a, b in zip(cached(normal), fresh(normal)):
        assert a.error is None and a.frames == b.frames
        assert a.motion == pytest.approx(b.motion, rel=1e-2)
        assert a.reliable == pytest.approx(b.reliable, abs=0.02)
