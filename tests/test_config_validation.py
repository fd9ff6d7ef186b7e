"""Config values that cannot be right are refused before the first iteration
(mme_plugin.utils.config_checks): loss weights, pipeline geometry against
the model, ``pipeline_edits`` against the transforms' signatures, and
positional ``--cfg-options ...pipeline.N.arg`` overrides that the config's
own ``pipeline_edits`` would discard."""
import importlib.util
from glob import glob

import pytest
from mmengine.config import Config

from mme_plugin.utils import (apply_pipeline_edits, effective_pipeline,
                              find_transform, register_all_modules,
                              transform_index)
from mme_plugin.utils.config_checks import (ConfigCheckError,
                                            check_config,
                                            check_loss_weights,
                                            check_transform_arguments)

from .conftest import REPO
from .test_pipeline_utils import ssv2_worker_config


def _tool(name):
    """``tools/<name>.py`` as a module (by path: the stdlib has a ``test``
    package)."""
    spec = importlib.util.spec_from_file_location(
        f'_config_validation_{name}', f'{REPO}/tools/{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_tool, test_tool = _tool('train'), _tool('test')
register_all_modules()

TINY = f'{REPO}/configs/mme/pretrain_tiny_synthetic.py'
PIXEL_TRAJ = f'{REPO}/configs/mme/pixel_traj_tiny_synthetic.py'
SSV2 = f'{REPO}/configs/mme/pretrain_ssv2.py'
FINETUNE = f'{REPO}/configs/mme/finetune_tiny_synthetic.py'
LINEAR = f'{REPO}/configs/mme/linear_tiny_synthetic.py'
TEST5X3 = f'{REPO}/configs/mme/finetune_k400_test5x3.py'
DS = 'train_dataloader.dataset'


def _cfg(path, **options):
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def _build_model(cfg):
    from mme_plugin.registry import MODELS
    return MODELS.build(cfg.model)


# ------------------------------------------------------------- loss weights
@pytest.mark.parametrize('config,target', [
    (TINY, 'traj'), (TINY, 'hog'), (PIXEL_TRAJ, 'pixel')])
@pytest.mark.parametrize('weight,match', [
    (-1.0, 'must be >= 0, got -1.0'),
    (float('nan'), 'must be finite, got nan'),
    (float('inf'), 'must be finite, got inf'),
    ('1', r"must be a number, got '1' \(str\)"),
])
def test_bad_target_weight_is_refused_at_model_build(config, target, weight,
                                                     match):
    cfg = _cfg(config, **{f'model.targets.{target}.weight': weight})
    with pytest.raises(ValueError,
                       match=rf'model\.targets\.{target}\.weight {match}'):
        _build_model(cfg)
    with pytest.raises(ConfigCheckError, match=match):
        check_config(cfg)  # what tools/train.py checks before the runner


def test_all_zero_weights_are_refused_and_one_zero_is_allowed():
    cfg = _cfg(TINY, **{'model.targets.traj.weight': 0,
                        'model.targets.hog.weight': 0.0})
    with pytest.raises(ValueError, match=r'every loss weight is 0 .*'
                       r'model\.targets\.traj\.weight=0, '
                       r'model\.targets\.hog\.weight=0\.0'):
        _build_model(cfg)
    model = _build_model(_cfg(TINY, **{'model.targets.hog.weight': 0}))
    assert model.loss_module.weights == dict(traj=1.0, hog=0.0)


def test_explicit_loss_weights_are_checked_under_their_own_key():
    cfg = _cfg(TINY, **{'model.loss.weights': dict(traj=1.0, hog=-0.5)})
    with pytest.raises(ValueError,
                       match=r'model\.loss\.weights\.hog must be >= 0'):
        _build_model(cfg)
    # explicit weights replace the targets': all-zero is judged on them
    cfg = _cfg(TINY, **{'model.loss.weights': dict(traj=0, hog=0)})
    with pytest.raises(ValueError, match='every loss weight is 0'):
        _build_model(cfg)


def test_weight_check_accepts_valid_weights():
    check_loss_weights(dict(a=0.5, b=0, c=2), 'model.targets.{}.weight')
    with pytest.raises(ConfigCheckError, match='must be a number'):
        check_loss_weights(dict(a=True), 'x.{}')


def test_nan_weight_from_the_command_line_stops_train_before_training(
        tmp_path):
    with pytest.raises(SystemExit, match=r'error: model\.targets\.hog\.weight '
                       'must be finite'):
        train_tool.main([TINY, '--work-dir', str(tmp_path), '--cfg-options',
                         'model.targets.hog.weight=nan'])
    assert not list(tmp_path.iterdir())  # stopped before the runner


# ------------------------------------------------------ pipeline geometry
SHIPPED = sorted(p for p in glob(f'{REPO}/configs/**/*.py', recursive=True)
                 if '_base_' not in p)


@pytest.mark.parametrize('config', SHIPPED,
                         ids=[p.split('/')[-1] for p in SHIPPED])
def test_every_shipped_config_passes_the_checks(config):
    check_config(Config.fromfile(config),
                 ('train_dataloader', 'val_dataloader', 'test_dataloader'))


@pytest.mark.parametrize('config', [TINY, SSV2])
def test_traj_len_edit_that_disagrees_with_the_targets_is_named(config):
    cfg = _cfg(config, **{f'{DS}.pipeline_edits.MMESampleFrames.traj_len':
                          3})
    want = cfg.model.targets.traj.traj_len
    with pytest.raises(ConfigCheckError) as e:
        check_config(cfg)
    msg = str(e.value)
    assert (f'{DS}.pipeline_edits.MMESampleFrames.traj_len = 3 but '
            f'model.targets.traj.traj_len = {want}') in msg
    assert f'model.targets.hog.traj_len = {want}' in msg
    assert f'MMESampleFrames.traj_len={want}' in msg  # the fix
    assert 'head_dims' not in msg


def _set_step(cfg, type_name, **values):
    steps = cfg.train_dataloader.dataset.pipeline
    i = transform_index(steps, type_name)
    steps[i].update(values)
    return i


@pytest.mark.parametrize('type_name,arg,value,model_key', [
    ('ComputeTrajectories', 'grid_step', 8, 'model.targets.traj.grid_step'),
    ('ComputeTrajectories', 'grid_step', 8, 'model.targets.hog.cell_size'),
    ('ComputeHOG', 'cell_size', 8, 'model.targets.hog.cell_size'),
    ('ComputeHOG', 'channels', 'rgb', 'model.targets.hog.channels'),
    ('ComputeHOG', 'mode', 'static', 'model.targets.hog.mode'),
    ('BuildMMETargets', 'patch_size', 16, 'model.backbone.patch_size'),
    ('TubeMasking', 'patch_size', 16, 'model.backbone.patch_size'),
    ('TubeMasking', 'tubelet_size', 4, 'model.backbone.tubelet_size'),
    ('MMESampleFrames', 'clip_len', 16, 'model.backbone.num_frames'),
    ('MotionResize', 'scale', (96, 96), 'model.backbone.img_size'),
])
def test_positional_geometry_mismatch_names_step_and_model_key(
        type_name, arg, value, model_key):
    cfg = _cfg(TINY)
    i = _set_step(cfg, type_name, **{arg: value})
    with pytest.raises(ConfigCheckError) as e:
        check_config(cfg)
    msg = str(e.value)
    assert f'{DS}.pipeline.{i}.{arg} ({type_name}.{arg}) = {value!r}' in msg
    assert model_key in msg
    assert f'{DS}.pipeline_edits.{type_name}.{arg}' in msg


def test_model_side_mismatches_are_named_too():
    cfg = _cfg(TINY, **{'model.backbone.img_size': 96,
                        'model.targets.traj.grid_step': 8})
    with pytest.raises(ConfigCheckError) as e:
        check_config(cfg)
    msg = str(e.value)
    assert 'model.backbone.img_size = 96' in msg and '64x64' in msg
    assert 'model.targets.traj.grid_step = 8' in msg
    # an unset argument is named with its default
    cfg = _cfg(TINY)
    cfg.model.backbone.pop('patch_size')  # VisionTransformer default: 16
    with pytest.raises(ConfigCheckError,
                       match=r'model\.backbone\.patch_size \(default\) = 16'):
        check_config(cfg)


def test_device_hog_settings_and_presence_are_checked():
    cfg = _cfg(f'{REPO}/configs/mme/pretrain_k400_worker.py',
               **{'model.targets.hog.device_hog.cell_size': 4})
    with pytest.raises(ConfigCheckError,
                       match=r'model\.targets\.hog\.device_hog\.cell_size = '
                       r'4 but model\.targets\.hog\.cell_size = 8'):
        check_config(cfg)
    cfg = _cfg(f'{REPO}/configs/mme/pretrain_k400_worker.py')
    cfg.model.targets.hog.pop('device_hog')
    with pytest.raises(ConfigCheckError, match='has no device_hog'):
        check_config(cfg)


@pytest.mark.parametrize('config,loader,edit,model_key', [
    (FINETUNE, 'train_dataloader', 'SampleFrames.clip_len=16',
     'model.backbone.num_frames = 8'),
    (LINEAR, 'val_dataloader', 'Resize.scale=(96,96)',
     'model.backbone.img_size = 64'),
])
def test_recognizer_runs_check_their_pipelines(config, loader, edit,
                                               model_key, tmp_path):
    """Fine-tuning and linear probing: refused by tools/train.py before a
    runner exists."""
    option = f'{loader}.dataset.pipeline_edits.{edit}'
    with pytest.raises(SystemExit) as e:
        train_tool.main([config, '--work-dir', str(tmp_path),
                         '--cfg-options', option])
    assert f'{loader}.dataset.pipeline_edits.{edit.split("=")[0]}' in \
        str(e.value)
    assert model_key in str(e.value)
    assert not list(tmp_path.iterdir())


def test_test_runs_check_the_test_pipeline(tmp_path):
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(SystemExit, match=r'test_dataloader\.dataset\.pipeline'
                       r'_edits\.ThreeCrop\.crop_size = 160 .*'
                       r'model\.backbone\.img_size = 224'):
        test_tool.main([TEST5X3, str(ckpt), '--work-dir', str(tmp_path / 'w'),
                        '--cfg-options',
                        'test_dataloader.dataset.pipeline_edits.ThreeCrop.'
                        'crop_size=160'])


# ----------------------------------------------- pipeline_edits signatures
STEPS = [dict(type='SampleFrames', clip_len=4),
         dict(type='Resize', scale=(-1, 64)),
         dict(type='MMESampleFrames', clip_len=4)]


@pytest.mark.parametrize('edits,match', [
    (dict(SampleFrames=dict(num_clip=5)),
     r"list\.txt: pipeline_edits\.SampleFrames\.num_clip: SampleFrames has "
     r"no argument 'num_clip' \(did you mean 'num_clips'\?\); it accepts: "
     r'clip_len, frame_interval, num_clips'),
    (dict(MMESampleFrames=dict(trajlen=2)),
     r"MMESampleFrames has no argument 'trajlen' .*traj_len"),
    (dict(SampleFrames=dict(clip_len='8')),
     r"pipeline_edits\.SampleFrames\.clip_len='8': SampleFrames\.clip_len "
     r'expects int, got str'),
    (dict(MMESampleFrames=dict(traj_len=2.5)),
     r'MMESampleFrames\.traj_len expects int, got float'),
    (dict(SampleFrames=dict(test_mode='yes')),
     r'SampleFrames\.test_mode expects bool, got str'),
    (dict(Resize=dict(keep_ratio='no')),  # unannotated: from the default
     r'Resize\.keep_ratio expects bool \(its default is True\), got str'),
    (dict(Resize=dict(interpolation=3)),
     r"Resize\.interpolation expects str \(its default is 'bilinear'\)"),
])
def test_wrong_edits_name_the_edit_and_the_transform(edits, match):
    with pytest.raises(ConfigCheckError, match=match):
        apply_pipeline_edits(STEPS, edits, 'list.txt')


def test_valid_edits_still_apply():
    out = apply_pipeline_edits(STEPS, dict(
        SampleFrames=dict(num_clips=5, target_fps=None, test_mode=1),
        Resize=dict(scale=(64, 64), keep_ratio=False),
        MMESampleFrames=dict(traj_len=2)), 'list.txt')
    assert out[0]['num_clips'] == 5 and out[1]['keep_ratio'] is False
    assert out[2]['traj_len'] == 2


def test_transforms_that_pass_kwargs_on_accept_their_bases_arguments():
    # PackMMEInputs(**kwargs) hands them to PackActionInputs
    check_transform_arguments('PackMMEInputs', dict(collect_keys=None),
                              lambda a: a)
    with pytest.raises(ConfigCheckError, match='collect_keys'):
        check_transform_arguments('PackMMEInputs', dict(colect_keys=None),
                                  lambda a: a)
    # DecordInit passes **kwargs to decord: anything is accepted
    check_transform_arguments('DecordInit', dict(ctx='cpu'), lambda a: a)
    # an unregistered type is left to the pipeline build to report
    check_transform_arguments('NoSuchTransform', dict(x=1), lambda a: a)


@pytest.mark.parametrize('dataset_type', ['CheckedVideoDataset',
                                          'RepeatAugVideoDataset'])
def test_datasets_refuse_a_wrong_edit_at_build(dataset_type):
    from mme_plugin.registry import DATASETS
    pipeline = [dict(type='VideoInit'),
                dict(type='SampleFrames', clip_len=4, num_clips=1),
                dict(type='VideoDecode')]
    with pytest.raises(ValueError, match=r'missing\.txt: pipeline_edits\.'
                       r"SampleFrames\.clip_len='4'"):
        DATASETS.build(dict(
            type=dataset_type, ann_file='missing.txt', pipeline=pipeline,
            pipeline_edits=dict(SampleFrames=dict(clip_len='4'))))


# ----------------------------------------- positional --cfg-options overrides
def _train_cfg(config, *options):
    return train_tool.build_config(train_tool.parse_args(
        [config, '--cfg-options', *options]))


def test_positional_override_that_an_edit_would_discard_is_an_error(tmp_path):
    SSV2 = ssv2_worker_config(tmp_path)  # a variant with ComputeFlow
    steps = Config.fromfile(SSV2).train_dataloader.dataset.pipeline
    i = transform_index(steps, 'ComputeFlow')
    with pytest.raises(SystemExit) as e:
        _train_cfg(SSV2, f'{DS}.pipeline.{i}.data_root=/mine')
    msg = str(e.value)
    assert f'--cfg-options {DS}.pipeline.{i}.data_root=/mine' in msg
    assert (f"{DS}.pipeline_edits.ComputeFlow.data_root = "
            f"'data/sthv2/videos'") in msg
    assert f'--cfg-options {DS}.pipeline_edits.ComputeFlow.data_root=/mine' \
        in msg
    # the form the error shows works
    cfg = _train_cfg(SSV2, f'{DS}.pipeline_edits.ComputeFlow.data_root=/mine')
    flow = find_transform(effective_pipeline(cfg.train_dataloader.dataset),
                          'ComputeFlow')
    assert flow['data_root'] == '/mine'


def test_nested_positional_override_shows_the_nested_edit_form():
    cfg = Config.fromfile(SSV2)
    i = transform_index(cfg.train_dataloader.dataset.pipeline,
                        'MMESampleFrames')
    with pytest.raises(SystemExit, match=rf'pipeline_edits\.MMESampleFrames'
                       r'\.traj_len=4'):
        _train_cfg(SSV2, f'{DS}.pipeline.{i}.traj_len=4')


def test_positional_override_without_a_conflict_is_kept(tmp_path):
    SSV2 = ssv2_worker_config(tmp_path)  # a variant with ComputeFlow
    steps = Config.fromfile(SSV2).train_dataloader.dataset.pipeline
    flow_i = transform_index(steps, 'ComputeFlow')
    # no edit of cache_dir: the positional value is what runs
    cfg = _train_cfg(SSV2, f'{DS}.pipeline.{flow_i}.cache_dir=/c')
    flow = find_transform(effective_pipeline(cfg.train_dataloader.dataset),
                          'ComputeFlow')
    assert flow['cache_dir'] == '/c'
    # the same value as the edit: nothing is lost
    cfg = _train_cfg(SSV2,
                     f'{DS}.pipeline.{flow_i}.data_root=data/sthv2/videos')
    assert cfg.train_dataloader.dataset.pipeline[flow_i]['data_root'] == \
        'data/sthv2/videos'
    # a config without pipeline_edits: positional overrides as in mmaction
    steps = Config.fromfile(TINY).train_dataloader.dataset.pipeline
    mask_i = transform_index(steps, 'TubeMasking')
    cfg = _train_cfg(TINY, f'{DS}.pipeline.{mask_i}.mask_ratio=0.5')
    assert cfg.train_dataloader.dataset.pipeline[mask_i]['mask_ratio'] == 0.5


def test_positional_override_is_checked_against_the_signature():
    steps = Config.fromfile(TINY).train_dataloader.dataset.pipeline
    i = transform_index(steps, 'TubeMasking')
    with pytest.raises(SystemExit, match=r"TubeMasking has no argument "
                       r"'mask_ration' \(did you mean 'mask_ratio'\?\)"):
        _train_cfg(TINY, f'{DS}.pipeline.{i}.mask_ration=0.5')
    with pytest.raises(SystemExit, match=r'TubeMasking\.patch_size expects '
                       'int, got str'):
        _train_cfg(TINY, f'{DS}.pipeline.{i}.patch_size=big')


def test_test_tool_refuses_a_discarded_positional_override(tmp_path):
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    key = 'test_dataloader.dataset'
    steps = Config.fromfile(TEST5X3).test_dataloader.dataset.pipeline
    i = transform_index(steps, 'SampleFrames')
    with pytest.raises(SystemExit, match=rf'{key}\.pipeline_edits\.'
                       r'SampleFrames\.num_clips=3'):
        test_tool.build_config(test_tool.parse_args(
            [TEST5X3, str(ckpt), '--cfg-options',
             f'{key}.pipeline.{i}.num_clips=3']))
