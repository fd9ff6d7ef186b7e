"""The tools on configs whose model computes the motion targets (the device
placement of issue #21: ``PrepareMotionInputs`` + ``model.target_generator``;
``pretrain_k400.py``, ``pretrain_tiny_synthetic_device.py``): pre-flight
(``check_dataset.py``), pictures (``visualize_mme.py``), the flow cache
(``extract_trajectories.py``), the loader benchmark, FLOPs, and the start-up
checks of where the targets are computed."""
import importlib.util
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mme_plugin.datasets.preflight import (TargetProbe, build_generator,
                                           config_min_motion,
                                           device_targets)
from mme_plugin.datasets.synthetic import render_clip
from mme_plugin.datasets.transforms import (CheckTrajectoryReliability,
                                            ComputeFlow, ComputeTrajectories)
from mme_plugin.ops import REJECT_REASONS
from mme_plugin.utils import effective_pipeline, register_all_modules
from mme_plugin.utils.config_checks import ConfigCheckError, check_config

from .conftest import call_tool, data_options, write_probe_clips

register_all_modules()
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEVICE = osp.join(REPO, 'configs', 'mme', 'pretrain_tiny_synthetic_device.py')
K400 = osp.join(REPO, 'configs', 'mme', 'pretrain_k400.py')
K400_WORKER = osp.join(REPO, 'configs', 'mme', 'pretrain_k400_worker.py')
FRAMES = 48  # > the 29-frame span of the tiny configs: 3 distinct spans
CUT = 1 + REJECT_REASONS.index('shot_cut')


def _tool(*parts):
    path = osp.join(REPO, 'tools', *parts)
    name = 'device_tools_' + osp.splitext(parts[-1])[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    """``normal.mp4`` (a sprite moving), ``cut.mp4`` (two clips spliced
    with a hard cut every 3 frames) and ``still.mp4`` (one textured frame
    repeated), 64 x 64, lossless, with lists."""
    return write_probe_clips(tmp_path_factory.mktemp('device_tools'),
                             FRAMES)


def _options(root, ann):
    return [f'train_dataloader.dataset.ann_file={root}/{ann}',
            f'train_dataloader.dataset.data_prefix.video={root}']


def _rows(path):
    with open(path) as f:
        return [line.rstrip('\n').split('\t') for line in f]


# ------------------------------------------------------------ pre-flight
def test_check_dataset_probes_the_model_generator(clips, tmp_path, capsys):
    tool = _tool('analysis', 'check_dataset.py')
    out = str(tmp_path / 'report.tsv')
    with pytest.raises(SystemExit) as exc:
        tool.main([DEVICE, '--splits', 'train', '--workers', '1',
                   '--spans', '3', '--out', out, '--cfg-options',
                   *_options(clips, 'all.txt')])
    assert exc.value.code == 1  # the cut clip trains nothing
    printed = capsys.readouterr().out
    assert "up to PrepareMotionInputs, then the model's target_generator" \
        in printed
    report = {osp.basename(r[1]): r[2] for r in _rows(out)}
    assert set(report) == {'cut.mp4', 'still.mp4'}
    cut = report['cut.mp4']
    assert cut.startswith('unusable (its tokens are excluded from the loss)'
                          ' in 3 of 3 spans')
    assert 'below model.target_generator.min_valid_fraction 0.05' in cut
    assert 'would stop' not in cut  # the device placement does not stop
    assert report['still.mp4'].startswith(
        'warning: near-zero targets in 3 of 3 spans')
    rows = _rows(str(tmp_path / 'report_targets.tsv'))
    assert rows[0][:8] == ['split', 'video', 'span', 'frames', 'cut_density',
                           'reliable', 'motion_px', 'verdict']
    by = {}
    for r in rows[1:]:
        by.setdefault(osp.basename(r[1]), []).append(r)
    assert [r[3] for r in by['normal.mp4']] == ['0-28', '10-38', '19-47']
    min_motion = config_min_motion([], Config.fromfile(DEVICE).model)
    for r in by['normal.mp4']:
        assert r[7] == 'ok' and float(r[4]) == 0
        assert float(r[5]) > 0.5 and float(r[6]) > 10 * min_motion
    for r in by['cut.mp4']:  # a cut in every tube: nothing reliable
        assert r[7] == 'unusable' and float(r[4]) > 0.2
        assert float(r[5]) == 0
    for r in by['still.mp4']:
        assert r[7] == 'near-zero' and float(r[4]) == 0
        assert float(r[5]) > 0.9 and float(r[6]) < min_motion


def test_check_dataset_device_config_in_parallel(clips, tmp_path, capsys):
    out = str(tmp_path / 'report.tsv')
    run = call_tool('tools/analysis/check_dataset.py', [
        DEVICE, '--splits', 'train', '--workers', '2', '--spans', '2',
        '--out', out, '--cfg-options', *_options(clips, 'no_cut.txt')],
        capsys, fresh=True)  # a forked pool: see call_tool
    assert 'no problems found; 1 warnings' in run.out
    (row, ) = _rows(out)
    assert osp.basename(row[1]) == 'still.mp4'


def test_probe_measures_equal_the_generator_outputs(clips):
    cfg = Config.fromfile(DEVICE)
    pipeline = effective_pipeline(cfg.train_dataloader.dataset)
    assert device_targets(pipeline, cfg.model)
    assert not device_targets(pipeline, None)
    with pytest.raises(ValueError, match='no model.target_generator'):
        TargetProbe(pipeline, 1)
    probe = TargetProbe(pipeline, 1, cfg.model)
    assert probe.min_motion == config_min_motion(pipeline, cfg.model)
    (rep, ) = probe(osp.join(clips, 'normal.mp4'))
    # the same span by hand: the pipeline, then the generator
    steps = probe.steps
    np.random.seed(0)
    random.seed(0)
    res = dict(filename=osp.join(clips, 'normal.mp4'), label=-1,
               modality='RGB', start_index=0)
    for step in steps:
        res = step(res)
        if 'dense_frame_inds' in res and 'imgs' not in res:
            lo = min(int(np.min(res[k]))
                     for k in ('frame_inds', 'dense_frame_inds'))
            hi = max(int(np.max(res[k]))
                     for k in ('frame_inds', 'dense_frame_inds'))
            shift = (FRAMES - (hi - lo + 1)) // 2 - lo
            for k in ('frame_inds', 'dense_frame_inds'):
                res[k] = np.asarray(res[k]) + shift
    out = probe.generator.compute(res['motion_frames'][None],
                                  res['motion_scale'][None])
    assert rep.error is None and rep.unusable is None
    assert rep.reliable == pytest.approx(float(out['point_valid'].float()
                                               .mean()))
    assert rep.motion == pytest.approx(float(out['motion'][0]))
    assert rep.cut_density == float(out['cut_pairs'].float().mean()) == 0


def test_build_generator_takes_the_model_geometry():
    tiny = build_generator(Config.fromfile(DEVICE).model)
    assert (tiny.patch_size, tiny.grid_step, tiny.traj_len) == (8, 4, 4)
    assert not tiny.hog_inputs  # the tools need no HOG inputs
    k400 = build_generator(Config.fromfile(K400).model)
    assert (k400.patch_size, k400.grid_step, k400.traj_len) == (16, 8, 4)
    with pytest.raises(ValueError, match='no target_generator'):
        build_generator(Config.fromfile(K400_WORKER).model)


def _dense(seed, cut=False):
    """2 tubes x 5 dense frames of a generated 64 x 64 clip."""
    a, _ = render_clip(4, 8, (64, 64), seed=seed)
    dense = np.stack([a[0:5], a[3:8]])
    if cut:
        b, _ = render_clip(7, 8, (64, 64), seed=seed + 10)
        dense[0, 3:] = b[:2]
    return np.ascontiguousarray(dense)


@pytest.mark.parametrize('rc', [False, True])
def test_point_validity_equals_the_worker_checks(rc):
    """``point_valid`` / ``point_reason`` / ``cut_pairs`` of the generator
    are the worker placement's ``traj_point_valid`` /
    ``traj_point_reason`` / ``traj_cut_pairs`` on the same frames with the
    same (PyTorch) Farneback."""
    from mme_plugin.models import MotionTargetGenerator

    class _Backbone:
        patch_size = 16

    gen = MotionTargetGenerator(reliability=dict(fb_check=True),
                                release_compat=rc)
    gen.setup(_Backbone(), {})
    clips = [_dense(0), _dense(1, cut=True)]
    got = gen.compute(torch.from_numpy(np.stack(clips)))
    for i, dense in enumerate(clips):
        res = dict(dense_imgs=dense.copy(), filename=f'clip{i}')
        res = ComputeFlow(backend=dict(type='TorchFarnebackFlow'),
                          backward=True)(res)
        res = ComputeTrajectories(8, release_compat=rc)(res)
        res = CheckTrajectoryReliability(release_compat=rc)(res)
        np.testing.assert_array_equal(got['point_valid'][i].numpy(),
                                      res['traj_point_valid'])
        np.testing.assert_array_equal(got['point_reason'][i].numpy(),
                                      res['traj_point_reason'])
        np.testing.assert_array_equal(got['cut_pairs'][i].numpy(),
                                      res['traj_cut_pairs'])
    # the cut tube: every point that stays in the frame is rejected as a
    # shot cut (1: left the frame); release_compat only counts rejects
    reason = got['point_reason'][1, 0]
    assert bool(((reason == CUT) | (reason == 1)).all())
    assert float((reason == CUT).float().mean()) > 0.5
    assert bool(got['point_valid'][1, 0].any()) == rc


# -------------------------------------------------------------- pictures
def test_visualize_draws_the_generator_trajectories(clips, tmp_path,
                                                    monkeypatch):
    tool = _tool('analysis', 'visualize_mme.py')
    drawn = {}
    real = tool.draw_clip_targets

    def capture(res, *args, **kwargs):
        drawn[osp.basename(res['filename'])] = dict(res)
        return real(res, *args, **kwargs)

    monkeypatch.setattr(tool, 'draw_clip_targets', capture)
    out = tmp_path / 'vis'
    tool.main([DEVICE, osp.join(clips, 'normal.mp4'),
               osp.join(clips, 'cut.mp4'), '--out', str(out), '--gif'])
    for stem in ('normal', 'cut'):
        assert (out / f'{stem}.png').stat().st_size > 0
        assert (out / f'{stem}.gif').stat().st_size > 0
    normal, cut = drawn['normal.mp4'], drawn['cut.mp4']
    # 4 tubes x (L + 1) steps x (64 / grid_step 4)^2 points
    assert normal['traj_positions'].shape == (4, 5, 16, 16, 2)
    assert normal['traj_point_valid'].shape == (4, 16, 16)
    assert normal['traj_point_valid'].mean() > 0.5
    assert (normal['traj_point_reason'] == 0).mean() > 0.5
    # every tube has a cut: each point left the frame (1) or is a cut
    assert np.isin(cut['traj_point_reason'], (1, CUT)).all()
    assert (cut['traj_point_reason'] == CUT).mean() > 0.5
    assert not cut['traj_point_valid'].any()
    # the positions start on the grid, in pixels of the 64 x 64 crops
    np.testing.assert_allclose(normal['traj_positions'][0, 0, 0, :2],
                               [[0, 0], [4, 0]], atol=2)


# ------------------------------------------------------------ flow cache
def test_extract_trajectories_refuses_a_device_config(tmp_path):
    tool = _tool('data', 'extract_trajectories.py')
    with pytest.raises(SystemExit) as exc:
        tool.main([K400, '--cache-dir', str(tmp_path / 'fc')])
    msg = str(exc.value)
    assert 'pretrain_k400_worker.py' in msg
    assert 'PrepareMotionInputs' in msg and 'original frames' in msg
    assert not (tmp_path / 'fc').exists()
    flow, _, _ = tool.find_flow_cfg(Config.fromfile(K400_WORKER))
    assert flow['backend']['type'] == 'FarnebackFlow'


# ----------------------------------------------------- loader and FLOPs
def test_bench_dataloader_on_the_device_config(synthetic_root, capsys):
    tool = _tool('analysis', 'bench_dataloader.py')
    got = tool.main([DEVICE, '--workers', '0', '--batch-size', '2',
                     '--batches', '2', '--warmup', '1', '--cfg-options',
                     *data_options(synthetic_root)[:2]])
    assert got['device_targets'] and got['batch_size'] == 2
    assert got['clips_per_s'] > 0
    assert 'device placement): not included' in capsys.readouterr().out
    worker = tool.main([osp.join(REPO, 'configs', 'mme',
                                 'pretrain_tiny_synthetic.py'),
                        '--workers', '0', '--batch-size', '2', '--batches',
                        '1', '--warmup', '0', '--cfg-options',
                        *data_options(synthetic_root)[:2]])
    assert not worker['device_targets']


def test_get_flops_on_the_device_config(capsys):
    tool = _tool('analysis', 'get_flops.py')
    got = tool.main([DEVICE])
    from mme_plugin.registry import MODELS
    model = MODELS.build(Config.fromfile(DEVICE).model)
    assert got['params'] == sum(p.numel() for p in model.parameters())
    assert 0 < got['flops_visible'] < got['flops_all']
    assert 'motion targets: computed by the model (MotionTargetGenerator' \
        in capsys.readouterr().out


# ------------------------------------------------------ start-up checks
def _cfg(path):
    return Config.fromfile(path)


def _problems(cfg):
    with pytest.raises(ConfigCheckError) as exc:
        check_config(cfg)
    return str(exc.value)


def test_shipped_device_configs_pass_the_checks():
    for name in ('pretrain_k400.py', 'pretrain_ssv2.py',
                 'pretrain_tiny_synthetic_device.py',
                 'pretrain_k400_worker.py', 'pretrain_tiny_synthetic.py'):
        check_config(_cfg(osp.join(REPO, 'configs', 'mme', name)))


def test_device_pipeline_without_generator_fails_at_start_up():
    cfg = _cfg(K400)
    cfg.model.target_generator = None
    msg = _problems(cfg)
    assert 'train_dataloader.dataset.pipeline has PrepareMotionInputs' in msg
    assert 'model.target_generator is not set' in msg
    assert 'pretrain_k400_worker.py' in msg


def test_generator_without_device_pipeline_fails_at_start_up():
    cfg = _cfg(K400_WORKER)
    cfg.model.target_generator = dict(type='MotionTargetGenerator')
    msg = _problems(cfg)
    assert 'model.target_generator is set' in msg
    assert 'has no PrepareMotionInputs' in msg
    assert "'ComputeFlow'" in msg  # the steps to replace
    assert 'model.target_generator=None' in msg


def test_both_placements_at_once_fail_at_start_up():
    cfg = _cfg(K400_WORKER)
    cfg.model.target_generator = dict(type='MotionTargetGenerator')
    pipe = list(cfg.train_dataloader.dataset.pipeline)
    i = [t['type'] for t in pipe].index('TubeMasking')
    pipe.insert(i, dict(type='PrepareMotionInputs'))
    cfg.train_dataloader.dataset.pipeline = pipe
    msg = _problems(cfg)
    assert 'both PrepareMotionInputs' in msg and 'BuildMMETargets' in msg


def test_generator_grid_step_is_checked_against_the_targets():
    cfg = _cfg(K400)
    cfg.model.target_generator.grid_step = 4
    msg = _problems(cfg)
    assert ('model.target_generator.grid_step = 4 but '
            'model.targets.traj.grid_step = 8') in msg
    assert 'model.targets.hog.cell_size = 8 but the target generator ' \
        'tracks points every 4 px' in msg
    cfg.model.target_generator.grid_step = 8  # stated and equal: fine
    check_config(cfg)
    cfg = _cfg(K400)
    cfg.model.targets.hog.cell_size = 16
    cfg.model.targets.hog.device_hog.cell_size = 16
    assert 'model.targets.hog.cell_size = 16' in _problems(cfg)


def test_traj_len_still_checked_on_device_configs():
    cfg = _cfg(K400)
    cfg.model.targets.traj.traj_len = 2
    msg = _problems(cfg)
    assert 'MMESampleFrames.traj_len' in msg and 'traj_len = 2' in msg


def test_pipeline_hog_source_with_device_targets_fails():
    cfg = _cfg(K400)
    cfg.model.targets.hog.source = 'pipeline'
    cfg.model.targets.hog.device_hog = None
    msg = _problems(cfg)
    assert "model.targets.hog.source = 'pipeline'" in msg
