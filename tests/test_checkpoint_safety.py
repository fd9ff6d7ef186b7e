"""Wrong checkpoints are refused with the fix named; a kill during a save
loses nothing; --resume continues from the newest checkpoint that loads."""
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from mme_plugin.engine import safe_checkpoint
from mme_plugin.registry import MODELS
from mme_plugin.utils import register_all_modules

from .conftest import FAST_LOADER, REPO, call_tool, data_options

FINETUNE = 'configs/mme/finetune_tiny_synthetic.py'


def _refusal(path, argv, capsys):
    """Run a tool in process (:func:`call_tool`) expecting it to refuse:
    its output and the message of its ``SystemExit`` or exception."""
    from mme_plugin.utils.state_diff import CheckpointMismatchError
    try:
        run = call_tool(path, argv, capsys, check=False)
    except CheckpointMismatchError as e:  # the refusal, as raised
        cap = capsys.readouterr()
        return f'{cap.out}{cap.err}\n{type(e).__name__}: {e}'
    assert run.code != 0, run.out[-3000:]
    return f'{run.out}\n{run.code}'


def _model(config, **backbone):
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.update(backbone)
    return MODELS.build(cfg.model)


def _test(root, ckpt, tmp_path, capsys):
    return _refusal('tools/test.py', [
        FINETUNE, str(ckpt), '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', *FAST_LOADER, *data_options(root)], capsys)


def test_test_tool_refuses_an_unconverted_pretraining_checkpoint(
        synthetic_root, tmp_path, capsys):
    ckpt = tmp_path / 'pretrain.pth'
    torch.save({'state_dict': _model(
        'configs/mme/pretrain_tiny_synthetic.py').state_dict()}, ckpt)
    out = _test(synthetic_root, ckpt, tmp_path, capsys)
    assert 'does not fit the model' in out
    assert 'tools/convert/mme_to_recognizer.py' in out
    assert 'acc/top1' not in out


def test_test_tool_refuses_a_checkpoint_of_another_model_size(
        synthetic_root, tmp_path, capsys):
    ckpt = tmp_path / 'other.pth'
    torch.save({'state_dict': _model(FINETUNE, embed_dims=64,
                                     num_heads=2).state_dict()}, ckpt)
    out = _test(synthetic_root, ckpt, tmp_path, capsys)
    assert 'shape mismatches' in out and 'embed_dims' in out


def test_test_tool_refuses_a_backbone_only_checkpoint(synthetic_root,
                                                      tmp_path, capsys):
    state = {k: v for k, v in _model(FINETUNE).state_dict().items()
             if k.startswith('backbone.')}
    ckpt = tmp_path / 'backbone.pth'
    torch.save({'state_dict': state}, ckpt)
    assert 'no classifier' in _test(synthetic_root, ckpt, tmp_path, capsys)


def test_finetuning_from_a_doubly_converted_checkpoint_is_refused(
        synthetic_root, tmp_path, capsys):
    state = {f'backbone.{k}': v
             for k, v in _model(FINETUNE).state_dict().items()}
    ckpt = tmp_path / 'twice.pth'
    torch.save({'state_dict': state}, ckpt)
    out = _refusal('tools/train.py', [
        FINETUNE, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
        *FAST_LOADER, *data_options(synthetic_root), f'load_from={ckpt}',
        'train_cfg.max_epochs=1'], capsys)
    assert 'doubled "backbone." prefix' in out
    assert not osp.exists(tmp_path / 'w' / 'epoch_1.pth')


def test_interrupted_atomic_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    safe_checkpoint.atomic_save_checkpoint({'a': torch.ones(3)}, str(target))
    before = target.read_bytes()

    def killed(fd):
        raise KeyboardInterrupt  # interrupted while the data is written

    monkeypatch.setattr(os, 'fsync', killed)
    with pytest.raises(KeyboardInterrupt):
        safe_checkpoint.atomic_save_checkpoint({'a': torch.zeros(300)},
                                               str(target))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']


def _train_args(root, work, epochs):
    import train as train_tool  # tools/train.py
    return train_tool, [
        FINETUNE, '--work-dir', work, '--cfg-options', *FAST_LOADER,
        *data_options(root), f'train_cfg.max_epochs={epochs}',
        'train_cfg.val_interval=10', 'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=1',
        'default_hooks.checkpoint.save_best=None',
        f'experiment_name=kill_{epochs}_{osp.basename(work)}'
    ]


def test_kill_during_a_save_loses_nothing_and_resume_says_where(
        synthetic_root, tmp_path, monkeypatch, capsys):
    """max_keep_ckpts=1, the save of epoch 2 is killed half-way (the file
    is written in place, as without the atomic writer): epoch_1.pth and
    last_checkpoint survive, and --resume continues from epoch 1, naming the
    truncated file it skipped."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    work = str(tmp_path / 'work')
    tool, argv = _train_args(synthetic_root, work, 2)
    real = safe_checkpoint._atomic_write

    def killed_on_epoch_2(data, filename):
        if filename.endswith('epoch_2.pth'):
            with open(filename, 'wb') as f:  # half a file, then the kill
                f.write(data[:len(data) // 2])
            raise KeyboardInterrupt
        return real(data, filename)

    monkeypatch.setattr(safe_checkpoint, '_atomic_write', killed_on_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        tool.run(tool.build_config(tool.parse_args(argv)))
    monkeypatch.setattr(safe_checkpoint, '_atomic_write', real)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))  # not deleted first
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().endswith('epoch_1.pth')
    assert safe_checkpoint.find_loadable_checkpoint(work).endswith(
        'epoch_1.pth')
    # the resumed run, through the tool's command line
    log = call_tool('tools/train.py', [*argv[:-1], 'experiment_name=resumed',
                                       '--resume'], capsys).out
    assert 'the newest checkpoint that loads; skipped: ' in log
    assert 'epoch_2.pth (not a complete torch checkpoint' in log
    assert 'resumed epoch: 1' in log
    torch.load(osp.join(work, 'epoch_2.pth'), weights_only=False)  # whole


def test_max_keep_ckpts_none_means_keep_all():
    from mmengine.hooks import CheckpointHook
    assert CheckpointHook(max_keep_ckpts=None).max_keep_ckpts == -1
