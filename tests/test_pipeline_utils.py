"""Finding and editing pipeline transforms by type (mme_plugin.utils), the
datasets' ``pipeline_edits``, and schedules that follow the epoch count."""
from glob import glob

import pytest
from mmengine.config import Config

from mme_plugin.utils import (apply_pipeline_edits, edit_key,
                              effective_pipeline, find_transform,
                              transform_index, transform_type)

from .conftest import REPO


def ssv2_worker_config(folder) -> str:
    """An SSv2 pretraining config with the worker placement (flow in the
    data workers, cacheable): the K400 worker recipe edited by type the way
    ``pretrain_ssv2.py`` edits the device one, plus the flow step's data
    root. Written to ``folder``; returns its path."""
    path = f'{folder}/pretrain_ssv2_worker.py'
    with open(path, 'w') as f:
        f.write(f"""_base_ = ['{REPO}/configs/mme/pretrain_k400_worker.py']
data_root = 'data/sthv2/videos'
ann_file = 'data/sthv2/sthv2_train_list_videos.txt'
model = dict(targets=dict(traj=dict(traj_len=2), hog=dict(traj_len=2)))
train_dataloader = dict(dataset=dict(
    ann_file=ann_file, data_prefix=dict(video=data_root),
    pipeline_edits=dict(
        MMESampleFrames=dict(frame_interval=2, traj_len=2),
        ComputeFlow=dict(data_root=data_root))))
""")
    return path


def test_transforms_are_found_by_type_not_position():
    steps = Config.fromfile(
        f'{REPO}/configs/mme/pretrain_k400_worker.py').train_dataloader.\
        dataset.pipeline
    i = transform_index(steps, 'ComputeFlow')
    assert steps[i]['type'] == 'ComputeFlow'
    assert find_transform(steps, 'ComputeFlow') is steps[i]
    # a scope prefix is ignored
    scoped = [dict(type='mmaction.Resize'), dict(type='Flip')]
    assert transform_index(scoped, 'Resize') == 0
    assert transform_type(scoped[0]) == 'Resize'


def test_missing_or_ambiguous_types_are_errors():
    steps = [dict(type='Resize'), dict(type='Resize'), dict(type='Flip')]
    with pytest.raises(KeyError, match='2 Resize transforms'):
        transform_index(steps, 'Resize')
    with pytest.raises(KeyError, match="no CenterCrop.*'Flip'"):
        transform_index(steps, 'CenterCrop')
    assert transform_index(steps, 'CenterCrop', required=False) is None
    assert find_transform(steps, 'CenterCrop', required=False) is None


def test_pipeline_edits_set_arguments_by_type():
    steps = [dict(type='Resize', scale=(1, 1)), dict(type='mmaction.Flip')]
    out = apply_pipeline_edits(steps, dict(Flip=dict(flip_ratio=0.0),
                                           Resize=dict(scale=(2, 2))))
    assert out == [dict(type='Resize', scale=(2, 2)),
                   dict(type='mmaction.Flip', flip_ratio=0.0)]
    assert steps[0]['scale'] == (1, 1) and 'flip_ratio' not in steps[1]
    assert apply_pipeline_edits(steps, None) is steps
    assert edit_key('Flip', 'flip_ratio') == \
        'train_dataloader.dataset.pipeline_edits.Flip.flip_ratio'


@pytest.mark.parametrize('edits,match', [
    (dict(CenterCrop=dict(crop_size=1)), r"list\.txt: .*CenterCrop.*'Flip'"),
    (dict(Resize=dict(scale=1)), '2 Resize transforms'),
    (dict(Flip=0.5), 'must be a dict of arguments'),
])
def test_bad_pipeline_edits_name_the_list_and_the_problem(edits, match):
    steps = [dict(type='Resize'), dict(type='Resize'), dict(type='Flip')]
    with pytest.raises(ValueError, match=match):
        apply_pipeline_edits(steps, edits, 'data/list.txt')


@pytest.mark.parametrize('dataset_type', ['CheckedVideoDataset',
                                          'RepeatAugVideoDataset'])
def test_datasets_run_the_edited_pipeline(dataset_type, synthetic_root):
    from mme_plugin.registry import DATASETS
    from mme_plugin.utils import register_all_modules
    register_all_modules()
    pipeline = [dict(type='VideoInit'),
                dict(type='SampleFrames', clip_len=4, frame_interval=2,
                     num_clips=1),
                dict(type='VideoDecode'),
                dict(type='FormatShape', input_format='NCTHW'),
                dict(type='PackActionInputs')]
    ds = DATASETS.build(dict(
        type=dataset_type, ann_file=f'{synthetic_root}/train.txt',
        data_prefix=dict(video=synthetic_root), pipeline=pipeline,
        pipeline_edits=dict(SampleFrames=dict(clip_len=2))))
    item = ds[0]
    item = item[0] if isinstance(item, list) else item
    assert item['inputs'].shape[2] == 2  # N C T H W: the edited clip_len
    assert pipeline[1]['clip_len'] == 4  # the config is untouched


PRETRAIN = sorted(p for p in glob(f'{REPO}/configs/mme/*.py')
                  if 'pretrain' in p or 'tiny_synthetic' in p
                  and ('hog' in p or 'pixel' in p))


@pytest.mark.parametrize('config', PRETRAIN,
                         ids=[p.split('/')[-1] for p in PRETRAIN])
def test_every_pretraining_pipeline_agrees_with_its_targets(config):
    """The pipeline a dataset runs (edits applied) samples the trajectory
    length and patch size the model's targets are sized for: a variant
    whose edits were not applied would disagree."""
    cfg = Config.fromfile(config)
    steps = effective_pipeline(cfg.train_dataloader.dataset)
    sample = find_transform(steps, 'MMESampleFrames', required=False)
    for name, target in cfg.model.get('targets', {}).items():
        if 'traj_len' in target:
            assert sample is not None, (config, name)
            assert sample['traj_len'] == target['traj_len'], (config, name)
    build = find_transform(steps, 'BuildMMETargets', required=False)
    if build is not None:
        assert build['patch_size'] == cfg.model.backbone.patch_size


def test_variants_change_only_what_they_edit():
    def steps(name):
        cfg = Config.fromfile(f'{REPO}/configs/mme/{name}')
        return effective_pipeline(cfg.train_dataloader.dataset)
    k400, ssv2 = steps('pretrain_k400.py'), steps('pretrain_ssv2.py')
    assert [transform_type(t) for t in k400] == \
        [transform_type(t) for t in ssv2]
    differ = [(transform_type(a), k) for a, b in zip(k400, ssv2)
              for k in set(a) | set(b) if a.get(k) != b.get(k)]
    assert sorted(differ) == [('MMESampleFrames', 'frame_interval'),
                              ('MMESampleFrames', 'traj_len')]
    # the worker placement: the same sampling and geometry, the flow and
    # targets in the pipeline instead of PrepareMotionInputs
    worker = steps('pretrain_k400_worker.py')
    device_only = {transform_type(t) for t in k400} - {
        transform_type(t) for t in worker}
    assert device_only == {'PrepareMotionInputs'}
    for name in ('MMESampleFrames', 'MotionMultiScaleCrop', 'MotionResize',
                 'TubeMasking'):
        assert find_transform(k400, name) == find_transform(worker, name)
    tiny = steps('pretrain_tiny_synthetic.py')
    absdisp = steps('pretrain_tiny_synthetic_absdisp.py')
    build = find_transform(absdisp, 'BuildMMETargets')
    assert build['norm'] == 'none' and build['traj_scale'] == 2.0
    assert [t for t in tiny if transform_type(t) != 'BuildMMETargets'] == \
        [t for t in absdisp if transform_type(t) != 'BuildMMETargets']


def _built_schedulers(config, max_epochs=None, epoch_length=10):
    """The param schedulers mmengine's runner builds for ``config`` (its
    own ``_build_param_scheduler``, with the defaults it fills in)."""
    import types

    import torch
    from mmengine.optim import OptimWrapper
    from mmengine.runner import BaseLoop, Runner

    from mme_plugin.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    epochs = max_epochs or cfg.train_cfg.max_epochs

    class _Loop(BaseLoop):
        max_epochs = epochs

        def run(self):
            pass

    fake = types.SimpleNamespace(max_epochs=epochs,
                                 max_iters=epochs * epoch_length,
                                 train_dataloader=[0] * epoch_length,
                                 logger=types.SimpleNamespace(
                                     debug=lambda *a: None))
    fake._train_loop = _Loop(fake, [0] * epoch_length)
    param = torch.nn.Parameter(torch.zeros(1))
    optim = OptimWrapper(torch.optim.SGD([param], lr=1.0))
    return Runner._build_param_scheduler(fake, cfg.param_scheduler, optim)


RECIPES = sorted(p for p in glob(f'{REPO}/configs/mme/*.py')
                 if 'tiny' not in p and '_test' not in p)


@pytest.mark.parametrize('config', RECIPES,
                         ids=[p.split('/')[-1] for p in RECIPES])
def test_recipe_schedules_end_at_the_last_epoch(config):
    """The cosine of every ViT-B recipe spans the end of warm-up to the last
    iteration of the config's own epochs, and a 2-epoch smoke run (the
    real-recipe test's override) still builds its schedulers."""
    scheds = _built_schedulers(config)
    total = Config.fromfile(config).train_cfg.max_epochs * 10
    cosine = [s for s in scheds if 'Cosine' in type(s).__name__]
    assert len(cosine) == 1, config
    assert cosine[0].end == total
    assert cosine[0].T_max == total - cosine[0].begin
    assert all(s.end <= total for s in scheds)
    assert _built_schedulers(config, max_epochs=2)


def test_cache_extraction_reads_the_variant_flow_settings(tmp_path):
    """``extract_trajectories.py`` fills the cache the dataset will read:
    for SSv2 the data root comes from the config's ``pipeline_edits``, not
    from the K400 pipeline it edits."""
    import sys
    sys.path.insert(0, f'{REPO}/tools/data')
    try:
        from extract_trajectories import find_flow_cfg
    finally:
        sys.path.pop(0)
    for path, root in ((f'{REPO}/configs/mme/pretrain_k400_worker.py',
                        'data/kinetics400/videos_train'),
                       (ssv2_worker_config(tmp_path), 'data/sthv2/videos')):
        flow, ann, prefix = find_flow_cfg(Config.fromfile(path))
        assert flow['data_root'] == root == prefix, name


def test_flow_cache_options_point_the_effective_flow_step_at_a_root(
        tmp_path):
    from mme_plugin.utils import flow_cache_options
    cfg = Config.fromfile(ssv2_worker_config(tmp_path))
    opts = flow_cache_options(cfg.train_dataloader.dataset, '/d')
    assert opts == {
        'train_dataloader.dataset.pipeline_edits.ComputeFlow.cache_dir':
        '/d/flow_cache',
        'train_dataloader.dataset.pipeline_edits.ComputeFlow.data_root': '/d'}
    cfg.merge_from_dict(opts)  # wins over the config's own edits
    flow = find_transform(effective_pipeline(cfg.train_dataloader.dataset),
                          'ComputeFlow')
    assert (flow['cache_dir'], flow['data_root']) == ('/d/flow_cache', '/d')
    pixels = Config.fromfile(f'{REPO}/configs/mme/videomae_tiny_synthetic.py')
    assert flow_cache_options(pixels.train_dataloader.dataset, '/d') == {}
