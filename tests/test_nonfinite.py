"""Non-finite losses stop training with the iteration and the last good
checkpoint named; non-finite weights are never saved; non-finite scores
never give a metric (mme_plugin/engine/nonfinite_hook.py)."""
import glob
import importlib.util
import os.path as osp
import re
from types import SimpleNamespace

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mme_plugin.engine import NonFiniteError, NonFiniteLossHook
from mme_plugin.registry import HOOKS, MODELS
from mme_plugin.utils import register_all_modules

from .conftest import FAST_LOADER, REPO, data_options



def _tool(name):
    """``tools/<name>.py`` as a module (``test`` would be the stdlib's)."""
    spec = importlib.util.spec_from_file_location(
        f'_nonfinite_tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


test_tool, train_tool = _tool('test'), _tool('train')

FINETUNE = 'configs/mme/finetune_tiny_synthetic.py'
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for folder in ('mme', 'recognition')
    for p in glob.glob(osp.join(REPO, 'configs', folder, '*.py')))


# ----------------------------------------------------------------- configs
@pytest.mark.parametrize('config', CONFIGS)
def test_every_shipped_config_has_the_hook(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    types = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert 'NonFiniteLossHook' in types, (config, types)


# ------------------------------------------------------- real tiny runs
def _train_args(root, work, *extra):
    return [
        FINETUNE, '--work-dir', str(work), '--cfg-options', *FAST_LOADER,
        *data_options(root), 'train_dataloader.batch_size=4',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1',
        *extra
    ]


def _finite_checkpoints(work):
    """``{file: all weights finite}`` of the checkpoints in ``work``."""
    out = {}
    for f in sorted(glob.glob(osp.join(str(work), '*.pth'))):
        state = torch.load(f, map_location='cpu',
                           weights_only=False)['state_dict']
        out[osp.basename(f)] = all(
            bool(torch.isfinite(v).all()) for v in state.values()
            if v.is_floating_point())
    return out


def test_absurd_lr_stops_naming_the_iteration(synthetic_root, tmp_path):
    with pytest.raises(SystemExit) as exc:
        train_tool.main(_train_args(synthetic_root, tmp_path / 'w',
                                    'optim_wrapper.optimizer.lr=1e6',
                                    'train_cfg.max_epochs=4'))
    msg = str(exc.value)
    assert msg.startswith('error: training diverged at iteration '), msg
    assert 'Lower the learning rate' in msg and 'last good checkpoint' in msg
    it = int(re.search(r'iteration (\d+)', msg).group(1))
    assert 1 < it <= 24  # the first update happens after iteration 1
    assert all(_finite_checkpoints(tmp_path / 'w').values())


class _Poison(Hook):
    """Test hook: set ``cls_head.fc_cls.weight[0, 0]`` to NaN at 0-based
    iteration ``at``, before the step or after the loss was recorded."""

    def __init__(self, at, after=False):
        self.at, self.after = at, after

    def _poison(self, runner):
        if runner.iter == self.at:
            with torch.no_grad():
                runner.model.cls_head.fc_cls.weight[0, 0] = float('nan')

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if not self.after:
            self._poison(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if self.after:
            self._poison(runner)


HOOKS.register_module(name='_TestPoisonHook', module=_Poison, force=True)


def _run_poisoned(root, work, **poison):
    args = train_tool.parse_args(
        _train_args(root, work, 'train_cfg.max_epochs=3'))
    cfg = train_tool.build_config(args)
    # LOW: after NonFiniteLossHook (ABOVE_NORMAL) has recorded the loss
    cfg.custom_hooks.append(dict(type='_TestPoisonHook', priority='LOW',
                                 **poison))
    with pytest.raises(NonFiniteError) as exc:
        train_tool.run(cfg)
    return str(exc.value)


def test_nan_mid_run_names_iteration_and_last_good_checkpoint(
        synthetic_root, tmp_path):
    work = tmp_path / 'w'
    # 6 iterations an epoch; NaN weight before 0-based iteration 8
    msg = _run_poisoned(synthetic_root, work, at=8)
    assert msg.startswith('training diverged at iteration 9 (epoch 2'), msg
    assert re.search(r'\d+ weight tensors are now non-finite', msg)
    assert f'last good checkpoint: {work / "epoch_1.pth"}' in msg
    assert _finite_checkpoints(work) == {'epoch_1.pth': True}


def test_non_finite_weights_are_never_saved(synthetic_root, tmp_path):
    work = tmp_path / 'w'
    # the loss of the epoch's last iteration is finite, the weights are not
    msg = _run_poisoned(synthetic_root, work, at=11, after=True)
    assert msg.startswith('refusing to save a checkpoint at iteration 12 '
                          '(epoch 2)'), msg
    assert 'cls_head.fc_cls.weight' in msg
    assert _finite_checkpoints(work) == {'epoch_1.pth': True}


class _PoisonAtStart(Hook):
    """Test hook: an in-memory edit of the loaded weights (a NaN bias)."""
    priority = 'VERY_HIGH'

    def before_train(self, runner):
        with torch.no_grad():
            runner.model.backbone.patch_embed.projection.bias[3] = float(
                'inf')


HOOKS.register_module(name='_TestPoisonAtStartHook', module=_PoisonAtStart,
                      force=True)


def _model_state():
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, FINETUNE))
    model = MODELS.build(cfg.model)
    return model.state_dict()


def test_non_finite_start_blames_the_weights_not_the_lr(
        synthetic_root, tmp_path):
    ckpt = tmp_path / 'finite.pth'
    torch.save({'state_dict': _model_state()}, ckpt)
    args = train_tool.parse_args(_train_args(
        synthetic_root, tmp_path / 'w', f'load_from={ckpt}'))
    cfg = train_tool.build_config(args)
    cfg.custom_hooks.append(dict(type='_TestPoisonAtStartHook'))
    with pytest.raises(NonFiniteError) as exc:
        train_tool.run(cfg)
    msg = str(exc.value)
    assert msg.startswith('the weights were non-finite from the start'), msg
    assert 'backbone.patch_embed.projection.bias' in msg
    assert f'load_from={ckpt}' in msg
    assert 'lowering the learning rate will not help' in msg
    assert not glob.glob(str(tmp_path / 'w' / '*.pth'))


def _past_the_loader(monkeypatch):
    """Let a NaN checkpoint through the loader's own check
    (``safe_torch_load``), so that the hook, the second line of defence
    (e.g. for a ``Pretrained`` init or an in-memory edit), is what stops it.
    """
    from mme_plugin.engine import safe_load
    monkeypatch.setattr(safe_load, 'nonfinite_tensors', lambda *a, **k: [],
                        raising=False)


def test_train_tool_refuses_a_checkpoint_with_a_nan_weight(
        synthetic_root, tmp_path, monkeypatch):
    _past_the_loader(monkeypatch)
    state = _model_state()
    state['backbone.blocks.1.mlp.layers.0.0.weight'][2, 5] = float('nan')
    ckpt = tmp_path / 'nan.pth'
    torch.save({'state_dict': state}, ckpt)
    with pytest.raises(SystemExit) as exc:
        train_tool.main(_train_args(synthetic_root, tmp_path / 'w',
                                    f'load_from={ckpt}'))
    msg = str(exc.value)
    assert msg.startswith('error: the weights were non-finite from the '
                          'start'), msg
    assert 'backbone.blocks.1.mlp.layers.0.0.weight' in msg
    assert f'load_from={ckpt}' in msg
    assert not glob.glob(str(tmp_path / 'w' / '*.pth'))


# ----------------------------------------------------------- tools/test.py
def _test(root, ckpt, tmp_path):
    test_tool.main([
        FINETUNE,
        str(ckpt), '--work-dir',
        str(tmp_path / 't'), '--cfg-options', *FAST_LOADER,
        *data_options(root)
    ])


def test_test_tool_refuses_non_finite_scores(synthetic_root, tmp_path,
                                             capsys):
    """Finite weights whose forward overflows: every score is NaN."""
    state = _model_state()
    weight = state['cls_head.fc_cls.weight']
    weight[0], weight[1] = 3e38, -3e38
    ckpt = tmp_path / 'overflow.pth'
    torch.save({'state_dict': state}, ckpt)
    with pytest.raises(SystemExit) as exc:
        _test(synthetic_root, ckpt, tmp_path)
    msg = str(exc.value)
    assert msg.startswith('error: the scores of 8 of 8 test clips are NaN '
                          'or inf: no metric is reported'), msg
    assert str(ckpt) in msg and 'the weights are finite' in msg
    out = capsys.readouterr()
    assert 'Test metrics' not in out.out and 'acc/top1' not in out.out


def test_test_tool_reports_metrics_of_finite_scores(synthetic_root, tmp_path,
                                                    capsys):
    """Control for the test above: the same model with finite weights."""
    ckpt = tmp_path / 'finite.pth'
    torch.save({'state_dict': _model_state()}, ckpt)
    _test(synthetic_root, ckpt, tmp_path)
    out = capsys.readouterr().out
    assert 'Test metrics' in out and 'acc/top1' in out


def test_test_tool_refuses_a_checkpoint_with_a_nan_weight(
        synthetic_root, tmp_path, capsys, monkeypatch):
    _past_the_loader(monkeypatch)
    state = _model_state()
    state['cls_head.fc_cls.weight'][3, 7] = float('nan')
    ckpt = tmp_path / 'nan.pth'
    torch.save({'state_dict': state}, ckpt)
    with pytest.raises(SystemExit) as exc:
        _test(synthetic_root, ckpt, tmp_path)
    msg = str(exc.value)
    assert msg.startswith('error: the scores of 8 of 8 test clips'), msg
    assert str(ckpt) in msg
    assert '1 weight tensors hold NaN or inf (cls_head.fc_cls.weight)' in msg
    assert 'Test metrics' not in capsys.readouterr().out


# ------------------------------------------- the hook's logic, fake runner
def _amp_wrapper(dtype=None, dynamic=True):
    """An ``AmpOptimWrapper`` as built on a GPU (its __init__ asserts one)."""
    wrapper = AmpOptimWrapper.__new__(AmpOptimWrapper)
    wrapper._scale_update_param = None if dynamic else 512.
    wrapper.cast_dtype = dtype
    return wrapper


def _runner(optim_wrapper, tmp_path):
    model = torch.nn.Linear(3, 2)
    optim = optim_wrapper or OptimWrapper(torch.optim.SGD(
        model.parameters(), lr=0.1))
    return SimpleNamespace(
        iter=0, epoch=0, model=model, optim_wrapper=optim,
        message_hub=MessageHub.get_instance(f'nonfinite-{id(model)}'),
        work_dir=str(tmp_path), _load_from=None, _resume=False, cfg={},
        val_loop=SimpleNamespace(dataloader=[0, 0]),
        test_loop=SimpleNamespace(dataloader=[0, 0, 0]))


def _feed(hook, runner, losses):
    """Run ``after_train_iter`` with each loss; the last iteration run."""
    for loss in losses:
        hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(
            loss)))
        runner.iter += 1


NAN = float('nan')


def test_fp32_any_non_finite_loss_stops_at_the_next_read(tmp_path):
    runner = _runner(None, tmp_path)
    hook = NonFiniteLossHook(interval=5)
    hook.before_train(runner)
    _feed(hook, runner, [1., 1., NAN, 1.])  # not read yet: no host sync
    with pytest.raises(NonFiniteError, match='diverged at iteration 3 '):
        _feed(hook, runner, [1.])
    runner.message_hub.update_info('last_ckpt', '/w/epoch_1.pth')
    hook.before_train(runner)
    _feed(hook, runner, [1., float('inf')])
    with pytest.raises(NonFiniteError,
                       match='last good checkpoint: /w/epoch_1.pth'):
        hook.after_train_epoch(runner)  # epoch end reads early


def test_bf16_amp_does_not_tolerate_a_non_finite_loss(tmp_path):
    runner = _runner(_amp_wrapper(torch.bfloat16), tmp_path)
    hook = NonFiniteLossHook(interval=4)
    hook.before_train(runner)
    with pytest.raises(NonFiniteError, match='diverged'):
        _feed(hook, runner, [1., NAN, 1., 1.])


def test_fp16_dynamic_scaler_skip_does_not_stop(tmp_path):
    runner = _runner(_amp_wrapper(), tmp_path)
    hook = NonFiniteLossHook(interval=4, max_skips=3)
    hook.before_train(runner)
    _feed(hook, runner, [1., NAN, 1., 1., NAN, NAN, NAN, 1.] * 3)
    assert hook._skipped == 12
    # with a static loss scale the same losses stop the run
    runner = _runner(_amp_wrapper(dynamic=False), tmp_path)
    hook.before_train(runner)
    with pytest.raises(NonFiniteError):
        _feed(hook, runner, [1., NAN, 1., 1.])


def test_fp16_persistent_non_finite_loss_stops(tmp_path):
    runner = _runner(_amp_wrapper(), tmp_path)
    hook = NonFiniteLossHook(interval=4, max_skips=3)
    hook.before_train(runner)
    _feed(hook, runner, [1., 1., 1., NAN, NAN, NAN])  # 3 in a row: skipped
    with pytest.raises(NonFiniteError,
                       match='skipped 4 consecutive steps'):
        _feed(hook, runner, [NAN, 1.])


def test_fp16_non_finite_weights_stop(tmp_path):
    runner = _runner(_amp_wrapper(), tmp_path)
    hook = NonFiniteLossHook(interval=2, max_skips=10)
    hook.before_train(runner)
    _feed(hook, runner, [1., 1.])
    with torch.no_grad():
        runner.model.bias[1] = NAN
    with pytest.raises(NonFiniteError, match=r'now non-finite \(bias\)'):
        _feed(hook, runner, [NAN, 1.])


def test_before_train_names_the_resumed_checkpoint(tmp_path):
    runner = _runner(None, tmp_path)
    runner._load_from, runner._resume = '/w/epoch_3.pth', True
    with torch.no_grad():
        runner.model.weight[0, 0] = NAN
    with pytest.raises(NonFiniteError,
                       match='weight.*resumed checkpoint /w/epoch_3.pth'):
        NonFiniteLossHook().before_train(runner)


def test_before_save_checkpoint_refuses_non_finite_tensors(tmp_path):
    runner = _runner(None, tmp_path)
    hook = NonFiniteLossHook()
    hook.before_train(runner)
    state = dict(a=torch.ones(3), b=torch.tensor([1., NAN]),
                 steps=torch.tensor(3))
    hook.before_save_checkpoint(runner, dict(state_dict=dict(a=state['a'])))
    with pytest.raises(NonFiniteError, match=r'1 tensors .* \(b\)'):
        hook.before_save_checkpoint(runner, dict(state_dict=state))


def test_a_save_mid_window_reads_the_flags_without_consuming_them(
        tmp_path):
    """Saves run on rank 0 only: the pending flags are read there (no
    collective) and kept, so every rank reads them at the same iteration."""
    runner = _runner(None, tmp_path)
    hook = NonFiniteLossHook(interval=4)
    hook.before_train(runner)
    _feed(hook, runner, [1., 1.])
    hook.before_save_checkpoint(runner, dict(state_dict={}))
    assert len(hook._flags) == 2  # kept for the next read
    _feed(hook, runner, [NAN])
    with pytest.raises(NonFiniteError, match='diverged at iteration 3 '):
        hook.before_save_checkpoint(runner, dict(state_dict={}))
    with pytest.raises(NonFiniteError, match='diverged at iteration 3 '):
        _feed(hook, runner, [1.])  # the regular read at iteration 4


def _samples(*scores):
    return [ActionDataSample().set_pred_score(torch.tensor(s))
            for s in scores]


def test_validation_with_non_finite_scores_stops_before_the_metrics(
        tmp_path):
    runner = _runner(None, tmp_path)
    hook = NonFiniteLossHook()
    hook.before_val_epoch(runner)  # val_loop: 2 batches
    hook.after_val_iter(runner, 0, outputs=_samples([.5, .5], [NAN, .1]))
    with pytest.raises(NonFiniteError,
                       match='2 of 4 validation clips are NaN or inf'):
        hook.after_val_iter(runner, 1, outputs=_samples([.1, .9],
                                                        [float('inf'), 0.]))
    hook.before_test_epoch(runner)  # a new epoch starts counting again
    for i in range(3):
        hook.after_test_iter(runner, i, outputs=_samples([.3, .7]))


def test_a_refused_save_stops_every_rank_not_rank_0_alone(monkeypatch):
    """``Runner.save_checkpoint`` runs on rank 0 only; the weights are
    checked with a collective in ``after_train_epoch`` (before the
    CheckpointHook), so every rank raises, not rank 0 alone."""
    import types

    import torch
    from mmengine.hooks import CheckpointHook

    import mme_plugin.engine.nonfinite_hook as mod
    calls = []

    def fake_all_reduce(tensor, op='sum'):
        calls.append(op)

    monkeypatch.setattr(mod, 'all_reduce', fake_all_reduce)
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = float('nan')
    ckpt = CheckpointHook(interval=1, by_epoch=True)
    runner = types.SimpleNamespace(
        model=model, hooks=[ckpt], epoch=0, iter=4, max_epochs=3,
        train_loop=types.SimpleNamespace(max_epochs=3), work_dir='/nowhere',
        message_hub=types.SimpleNamespace(get_info=lambda *a, **k: None),
        optim_wrapper=types.SimpleNamespace(
            get_lr=lambda: {'lr': [0.1]}), logger=None)
    hook = mod.NonFiniteLossHook()
    with pytest.raises(mod.NonFiniteError, match='refusing to save'):
        hook.after_train_epoch(runner)
    assert 'max' in calls
    # no save due this epoch: no weight check, no collective for it
    calls.clear()
    runner.hooks = [CheckpointHook(interval=2, by_epoch=True,
                                   save_last=False)]
    hook.after_train_epoch(runner)
    assert calls == []
