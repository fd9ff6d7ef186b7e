"""Every config builds its model and its datasets' pipelines run."""
import os.path as osp
from glob import glob

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mme_plugin.datasets.synthetic import render_clip
from mme_plugin.io import write_video
from mme_plugin.registry import DATASETS, MODELS
from mme_plugin.utils import (add_pipeline_edit, effective_pipeline,
                              find_transform, register_all_modules)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


@pytest.fixture(scope='module')
def clip_root(tmp_path_factory):
    """A 64-frame clip (enough for 16 x 4 sampling) and a list naming it."""
    root = tmp_path_factory.mktemp('clips')
    frames, _ = render_clip(5, 64, (64, 96), seed=4)
    write_video(str(root / 'a.mp4'), frames)
    (root / 'list.txt').write_text('a.mp4 3\n')
    return str(root)


def _datasets(cfg):
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader:
            yield split, loader.dataset


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_model_and_pipelines(config, clip_root, tmp_path):
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.default_scope == 'mme_plugin'
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    for split, ds_cfg in _datasets(cfg):
        ds_cfg = ds_cfg.copy()
        ds_cfg.ann_file = osp.join(clip_root, 'list.txt')
        ds_cfg.data_prefix = dict(video=clip_root)
        flow = find_transform(effective_pipeline(ds_cfg), 'ComputeFlow',
                              required=False)
        if flow is not None and flow.get('cache_dir'):
            # keep flow caches out of the repo
            add_pipeline_edit(ds_cfg, 'ComputeFlow',
                              cache_dir=str(tmp_path / 'fc'),
                              data_root=clip_root)
        dataset = DATASETS.build(ds_cfg)
        item = dataset[0]
        items = item if isinstance(item, list) else [item]  # RepeatAug
        for it in items:
            inputs = it['inputs']
            assert inputs.dtype == torch.uint8 and inputs.dim() == 5, split
            if 'mask' in it['data_samples']:
                n = int(np.prod(inputs.shape[2:]) //
                        (2 * cfg.model.backbone.patch_size**2))
                assert it['data_samples'].mask.shape == (n, )


def _groups(config):
    register_all_modules()
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(REPO, config))
    model = MODELS.build(cfg.model)
    optim = dict(cfg.optim_wrapper, type='OptimWrapper')
    optim.pop('loss_scale', None)
    optim.pop('dtype', None)
    wrapper = build_optim_wrapper(model, optim)
    return {
        name: g['lr_scale']
        for g in wrapper.optimizer.param_groups for name in g['param_names']
    }


def test_layer_decay_groups_follow_the_recipe():
    scales = _groups('configs/mme/finetune_k400.py')
    rate = 0.75
    assert scales['backbone.patch_embed.projection.weight'] == \
        pytest.approx(rate**13)
    assert scales['backbone.blocks.0.attn.qkv.weight'] == \
        pytest.approx(rate**12)
    assert scales['backbone.blocks.11.mlp.layers.1.weight'] == \
        pytest.approx(rate)
    assert scales['cls_head.fc_cls.weight'] == 1.0
    assert scales['backbone.fc_norm.weight'] == 1.0


def test_linear_probe_trains_only_the_classifier():
    register_all_modules()
    for config in ('configs/mme/linear_ssv2.py', 'configs/mme/linear_k400.py'):
        cfg = Config.fromfile(osp.join(REPO, config))
        model = MODELS.build(cfg.model)
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable == ['cls_head.fc_cls.weight', 'cls_head.fc_cls.bias']
        assert cfg.model.data_preprocessor.blending is None


def test_recipe_specifics():
    def load(name):
        return Config.fromfile(osp.join(REPO, 'configs/mme', name))

    ssv2 = load('finetune_ssv2.py')
    types = [t['type'] for t in ssv2.train_dataloader.dataset.pipeline]
    assert 'Flip' not in types and 'VideoRandAugment' in types
    assert ssv2.optim_wrapper.optimizer.lr == 5e-4
    assert ssv2.train_cfg.max_epochs == 30
    k400 = load('finetune_k400.py')
    k400_steps = k400.train_dataloader.dataset.pipeline
    assert 'Flip' in [t['type'] for t in k400_steps]
    assert k400.train_dataloader.dataset.num_repeats == 2
    assert k400.train_cfg.max_epochs == 75
    ucf = load('finetune_ucf101.py')
    assert ucf.optim_wrapper.accumulative_counts == 4
    assert ucf.train_cfg.max_epochs == 100
    views = {
        name: [t for t in effective_pipeline(
            load(name).test_dataloader.dataset)
               if t['type'] in ('SampleFrames', 'UniformSample')][0]
        ['num_clips']
        for name in ('finetune_k400.py', 'finetune_k400_test5x3.py',
                     'finetune_ssv2.py', 'finetune_ucf101.py',
                     'finetune_hmdb51.py', 'finetune_hmdb51_test5x3.py')
    }
    assert views == {'finetune_k400.py': 7, 'finetune_k400_test5x3.py': 5,
                     'finetune_ssv2.py': 2, 'finetune_ucf101.py': 10,
                     'finetune_hmdb51.py': 10,
                     'finetune_hmdb51_test5x3.py': 5}


@pytest.mark.parametrize('config', [c for c in CONFIGS
                                    if 'finetune' in c or 'linear' in c
                                    or 'recognition' in c])
def test_recognition_datasets_check_labels_against_the_head(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    want = cfg.model.cls_head.num_classes
    for split, ds in _datasets(cfg):
        assert ds.get('num_classes') == want, (config, split)


def test_label_out_of_range_stops_training_naming_the_line(
        synthetic_root, tmp_path):
    import shutil
    import subprocess
    import sys

    from .conftest import FAST_LOADER, data_options
    root = tmp_path / 'data'
    shutil.copytree(synthetic_root, root)
    lines = (root / 'train.txt').read_text().splitlines()
    lines[2] = lines[2].rsplit(' ', 1)[0] + ' 9'  # 8 classes
    (root / 'train.txt').write_text('\n'.join(lines) + '\n')
    out = subprocess.run(
        [sys.executable, 'tools/train.py',
         'configs/mme/finetune_tiny_synthetic.py', '--work-dir',
         str(tmp_path / 'w'), '--cfg-options', *FAST_LOADER,
         *data_options(str(root))], cwd=REPO, capture_output=True,
        text=True, timeout=600)
    assert out.returncode != 0
    assert 'train.txt:3: label 9 outside [0, 8)' in out.stderr


@pytest.mark.parametrize('config', [c for c in CONFIGS if '_test' not in c])
def test_every_training_config_is_resume_exact(config):
    """SeededSampler (per-sample seeds from seed, epoch and index) and
    ReseedHook (per-iteration torch seeds): a killed run resumes to the
    weights of an uninterrupted one (tests/test_resume.py)."""
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.train_dataloader.sampler.type == 'SeededSampler'
    assert 'ReseedHook' in [h['type'] for h in cfg.get('custom_hooks', [])]
