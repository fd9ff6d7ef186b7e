"""MME / VideoMAE pretraining end to end, and the full-size recipes."""
import os.path as osp
from glob import glob

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

from mme_plugin.datasets.synthetic import render_clip
from mme_plugin.io import write_video
from mme_plugin.registry import MODELS
from mme_plugin.utils import effective_pipeline, register_all_modules

from .conftest import FAST_LOADER, call_tool, read_scalars

# ComputeFlow's arguments by type, not position (CheckedVideoDataset's
# pipeline_edits)
FLOW_EDIT = 'train_dataloader.dataset.pipeline_edits.ComputeFlow'


@pytest.mark.parametrize('config,terms', [
    ('configs/mme/pretrain_tiny_synthetic.py', ('loss_traj', 'loss_hog')),
    ('configs/mme/videomae_tiny_synthetic.py', ('loss_pixel', )),
    ('configs/mme/pixel_traj_tiny_synthetic.py', ('loss_pixel', 'loss_traj')),
    ('configs/mme/hog_tiny_synthetic.py', ('loss_hog', )),
])
def test_two_iteration_pretraining_trains_on_real_targets(
        synthetic_root, tmp_path, config, terms, capsys):
    work = str(tmp_path / 'work')
    call_tool('tools/train.py', [
        config, '--work-dir', work,
        '--cfg-options', *[o for o in FAST_LOADER if o.startswith('train')],
        'train_cfg.max_epochs=2',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=12',
        f'train_dataloader.dataset.ann_file={synthetic_root}/train.txt',
        f'train_dataloader.dataset.data_prefix.video={synthetic_root}',
        *(() if 'videomae' in config else (
            f'{FLOW_EDIT}.cache_dir={tmp_path}/fc',
            f'{FLOW_EDIT}.data_root={synthetic_root}'
        ))
    ], capsys)
    rows = [r for r in read_scalars(work) if 'loss' in r]
    assert len(rows) == 4  # 24 clips / 12 per batch x 2 epochs
    for r in rows:
        assert np.isfinite(r['loss'])
        for term in terms:
            assert r[term] > 0
            name = term[len('loss_'):]
            assert r[f'{name}_target_abs'] > 0.01  # never zero targets
        if 'loss_traj' in terms:
            assert r['traj_valid'] > 0.5
            # the pipeline's reliability checks are logged per reason
            from mme_plugin.ops import REJECT_REASONS
            for why in REJECT_REASONS:
                assert 0 <= r[f'reject_{why}'] < 0.5
    if 'videomae' not in config:  # the flow cache was filled on first use
        assert glob(f'{tmp_path}/fc/train/*.npy')
        assert glob(f'{tmp_path}/fc/train/*-bwd.npy')  # backward flows
    ckpt = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=False)
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])


@pytest.fixture(scope='module')
def long_clip(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('long') / 'long.mp4')
    frames, _ = render_clip(4, 64, (64, 96), seed=3)
    write_video(path, frames)
    return path


@pytest.mark.parametrize('config', ['configs/mme/pretrain_k400.py',
                                    'configs/mme/pretrain_k400_worker.py',
                                    'configs/mme/pretrain_k400_dis.py',
                                    'configs/mme/pretrain_ssv2.py'])
def test_recipe_builds_and_its_pipeline_runs(config, long_clip):
    register_all_modules()
    cfg = Config.fromfile(config)
    assert cfg.train_dataloader.batch_size * 16 == 1024
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=1024)
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(6e-4)
    assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.95)
    assert cfg.param_scheduler[0].end == 40
    model = MODELS.build(cfg.model)
    # what the dataset runs: the pipeline with its pipeline_edits applied
    pipeline = Compose(effective_pipeline(cfg.train_dataloader.dataset))
    out = pipeline(dict(filename=long_clip, label=0, start_index=0,
                        modality='RGB'))
    ds = out['data_samples']
    assert out['inputs'].shape == (1, 3, 16, 224, 224)
    assert ds.mask.shape == (1568, ) and int(ds.mask.sum()) == 1096
    heads = model.head_dims  # derived from the targets' settings
    steps = heads['hog'] // (2 * 2 * 27)  # L + 1 (K400: 5, SSv2: 3)
    # HOG along the trajectories is left to the model in both placements
    assert 'hog_target' not in ds
    if model.target_generator is not None:
        # device placement: the worker hands over the cropped dense frames
        assert 'traj_target' not in ds and 'hog_frames' not in ds
        assert ds.motion_frames.shape == (8, steps, 224, 224, 3)
        got = model.target_generator.compute(ds.motion_frames[None],
                                             ds.motion_scale[None])
        got = {k: v[0] for k, v in got.items()}
    else:
        got = {k: ds.get(k) for k in ('traj_target', 'traj_valid',
                                      'hog_frames', 'hog_points')}
    assert got['traj_target'].shape == (1568, heads['traj'])
    assert got['hog_frames'].shape == (8, steps, 224, 224, 3)
    assert got['hog_points'].shape == (8, steps, 28, 28, 2)
    hog = model.targets['hog'].device_hog(got['hog_frames'][None],
                                          got['hog_points'][None], 16)
    assert hog.shape == (1, 1568, heads['hog']) and hog.abs().sum() > 0
    assert got['traj_valid'].float().mean() > 0.5
    assert model.decoder.heads['traj'][-2].out_features == heads['traj']


def test_pretraining_with_hog_computed_on_the_device(synthetic_root,
                                                     tmp_path, capsys):
    """The recipes' placement (PrepareHOGInputs + the hog target's
    device_hog) through the stock runner: frames and points are collated,
    moved to the device and turned into non-zero HOG targets."""
    from mme_plugin.utils import transform_index
    register_all_modules()
    cfg = Config.fromfile('configs/mme/pretrain_tiny_synthetic.py')
    cfg.model.targets.hog.device_hog = dict(type='PointHOG', cell_size=4,
                                            channels='gray')
    pipeline = cfg.train_dataloader.dataset.pipeline
    at = transform_index(pipeline, 'ComputeHOG')
    pipeline[at] = dict(type='PrepareHOGInputs', mode='trajectory')
    pipeline[-1]['algorithm_keys'] = ('mask', 'traj_target', 'traj_valid',
                                      'hog_frames', 'hog_points', 'hog_valid')
    cfg_path = tmp_path / 'device_hog.py'
    cfg.dump(str(cfg_path))
    work = str(tmp_path / 'work')
    call_tool('tools/train.py', [
        str(cfg_path), '--work-dir', work,
        '--cfg-options', *[o for o in FAST_LOADER if o.startswith('train')],
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=12',
        f'train_dataloader.dataset.ann_file={synthetic_root}/train.txt',
        f'train_dataloader.dataset.data_prefix.video={synthetic_root}',
        f'{FLOW_EDIT}.cache_dir={tmp_path}/fc',
        f'{FLOW_EDIT}.data_root={synthetic_root}'
    ], capsys)
    rows = [r for r in read_scalars(work) if 'loss' in r]
    assert len(rows) == 2
    for r in rows:
        assert np.isfinite(r['loss_hog']) and r['loss_hog'] > 0
        assert r['hog_target_abs'] > 0.01


def test_repeated_sampling_recipe_keeps_samples_steps_and_lr(long_clip,
                                                             tmp_path):
    from mme_plugin.registry import DATASETS
    register_all_modules()
    cfg = Config.fromfile('configs/mme/pretrain_k400_dis_rep2.py')
    base = Config.fromfile('configs/mme/pretrain_k400_dis.py')
    loader, reps = cfg.train_dataloader, cfg.train_dataloader.dataset
    reps = reps.num_repeats
    # 64 samples per GPU, the same number of steps, the same lr per sample
    assert loader.batch_size * reps == base.train_dataloader.batch_size
    assert cfg.train_cfg.max_epochs * reps == base.train_cfg.max_epochs
    assert cfg.param_scheduler[0].end * reps == base.param_scheduler[0].end
    assert cfg.param_scheduler[1].T_max * reps == \
        base.param_scheduler[1].T_max
    assert cfg.auto_scale_lr.base_batch_size * reps == \
        base.auto_scale_lr.base_batch_size
    ann = tmp_path / 'list.txt'
    ann.write_text(f'{osp.basename(long_clip)} 0\n')
    ds_cfg = dict(cfg.train_dataloader.dataset, ann_file=str(ann),
                  data_prefix=dict(video=osp.dirname(long_clip)))
    samples = DATASETS.build(ds_cfg).prepare_data(0)
    assert len(samples) == reps
    for s in samples:
        assert s['inputs'].shape == (1, 3, 16, 224, 224)
        assert s['data_samples'].hog_frames.shape == (8, 5, 224, 224, 3)
