"""Each compatibility shim is needed and works (these fail without it)."""
import subprocess
import sys

import pytest
import torch

from mme_plugin import compat


def test_mmaction_models_import_and_drn_placeholder():
    # In a fresh interpreter: importing the plugin first makes
    # ``import mmaction.models`` work although the wheel lacks ``drn``.
    code = ('import mme_plugin, mmaction.models, sys; '
            'from mmaction.models.localizers.drn.drn import DRN\n'
            'try:\n    DRN()\nexcept ImportError as e:\n'
            '    assert "2714" in str(e); print("ok")')
    out = subprocess.run([sys.executable, '-W', 'ignore', '-c', code],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith('ok')


def test_drn_shim_is_only_used_when_missing(monkeypatch):
    monkeypatch.setattr(compat.missing_drn, '_real_drn_missing',
                        lambda: False)
    saved = {k: sys.modules.pop(k) for k in list(sys.modules)
             if k.startswith('mmaction.models.localizers.drn')}
    try:
        assert compat.patch_missing_drn() is False
        assert 'mmaction.models.localizers.drn' not in sys.modules
    finally:
        sys.modules.update(saved)


def test_checkpoint_with_history_buffer_loads(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader
    path = tmp_path / 'ckpt.pth'
    buf = HistoryBuffer()
    buf.update(1.0)
    torch.save({'state_dict': {'w': torch.ones(2)},
                'message_hub': {'log_scalars': {'loss': buf}}}, path)
    ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert isinstance(ckpt['message_hub']['log_scalars']['loss'],
                      HistoryBuffer)


def test_missing_checkpoint_names_the_file(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    missing = str(tmp_path / 'nope.pth')
    try:
        CheckpointLoader.load_checkpoint(missing)
    except FileNotFoundError as e:
        assert missing in str(e)
    else:
        raise AssertionError('no error for a missing checkpoint')


_DIST_CODE = r'''
import os, sys
import mme_plugin  # applies the shims
import torch, torch.nn as nn
from mmengine.dist import init_dist, get_world_size, all_reduce
from mmengine.model.wrappers import MMDistributedDataParallel
init_dist('pytorch', backend='nccl')
assert get_world_size() == 2
ddp = MMDistributedDataParallel(module=nn.Linear(2, 2),
                                device_ids=[int(os.environ['LOCAL_RANK'])])
t = torch.ones(1)
all_reduce(t, op='sum')
assert t.item() == 2.0
from mme_plugin.utils import exit_after_distributed_run, shutdown_dist
assert shutdown_dist()
print('rank-ok')
# as the tools end a finished distributed run (a gloo rank can abort in
# interpreter teardown under load, after the work is done)
exit_after_distributed_run()
'''


def test_cpu_distributed_init_and_ddp(tmp_path):
    if torch.cuda.is_available():
        import pytest
        pytest.skip('CPU-only shim; CUDA machines use nccl unchanged')
    script = tmp_path / 'dist.py'
    script.write_text(_DIST_CODE)
    out = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         '--master_port=29671', str(script)],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.count('rank-ok') == 2


def test_amp_recipe_falls_back_to_fp32_only_without_an_accelerator(
        monkeypatch):
    import mmengine.device
    from mmengine.config import Config

    from mme_plugin.utils import amp_fallback_without_accelerator
    from .conftest import REPO

    def cfg():
        return Config.fromfile(f'{REPO}/configs/mme/pretrain_k400.py')

    monkeypatch.setattr(mmengine.device, 'get_device', lambda: 'cuda')
    on_gpu = cfg()
    assert not amp_fallback_without_accelerator(on_gpu)
    assert on_gpu.optim_wrapper.type == 'AmpOptimWrapper'
    assert on_gpu.optim_wrapper.loss_scale == 'auto'  # resolve_amp_dtype
    monkeypatch.setattr(mmengine.device, 'get_device', lambda: 'cpu')
    on_cpu = cfg()
    with pytest.warns(UserWarning, match='trains in fp32'):
        assert amp_fallback_without_accelerator(on_cpu)
    assert on_cpu.optim_wrapper.type == 'OptimWrapper'
    assert 'loss_scale' not in on_cpu.optim_wrapper
    # the rest of the recipe is kept
    assert on_cpu.optim_wrapper.optimizer == on_gpu.optim_wrapper.optimizer
    assert on_cpu.optim_wrapper.paramwise_cfg == \
        on_gpu.optim_wrapper.paramwise_cfg


def test_every_shim_module_is_applied(monkeypatch):
    # one module per shim, each with one ``patch_*`` that apply_all calls
    import importlib
    import pkgutil
    called = []
    modules = [m.name for m in pkgutil.iter_modules(compat.__path__)]
    assert len(modules) == 8, modules
    for name in modules:
        mod = importlib.import_module(f'mme_plugin.compat.{name}')
        patches = [n for n in mod.__all__ if n.startswith('patch_')]
        assert len(patches) == 1, (name, mod.__all__)
        assert patches[0] in compat.__all__
        monkeypatch.setattr(compat, patches[0],
                            lambda n=name: called.append(n))
    compat.apply_all()
    assert sorted(called) == sorted(modules)


def test_saved_originals_hold_only_originals(monkeypatch):
    # runtime flags of a patched runner are kept out of ``_ORIG``
    from mme_plugin.engine import checkpoint_fit, safe_checkpoint, workdir_lock
    monkeypatch.setitem(checkpoint_fit._ORIG, 'test', lambda self: 'ran')
    monkeypatch.setitem(checkpoint_fit._ORIG, 'load_checkpoint',
                        lambda self, f: 'loaded')
    assert checkpoint_fit._test(None) == 'ran'
    assert checkpoint_fit._runner_load_checkpoint(None, 'x.pth') == 'loaded'
    for saved in (compat._ORIG, compat.cpu_distributed._ORIG,
                  checkpoint_fit._ORIG, safe_checkpoint._ORIG,
                  workdir_lock._ORIG):
        assert saved and all(callable(v) for v in saved.values()), saved


def test_repo_names_import_from_the_package():
    from mme_plugin.compat import (_ORIG, _init_dist_pytorch_cpu_aware,
                                   _load_local, _load_url, _SafeTorchProxy,
                                   apply_all)
    import mmengine.runner.checkpoint as ckpt_mod
    assert ckpt_mod.load_url is _load_url
    assert isinstance(ckpt_mod.torch, _SafeTorchProxy)
    assert callable(_load_local) and callable(apply_all)
    assert _ORIG['init_dist_pytorch'] is not _init_dist_pytorch_cpu_aware


def test_amp_wrapper_resolves_auto_for_stock_entry_points(monkeypatch):
    """``dtype='auto'`` / ``loss_scale='auto'`` reach mmengine's wrapper as
    concrete values (bf16 without scaling, or fp16 with a dynamic scale),
    whichever entry point builds it; without the shim mmengine fails on
    ``getattr(torch, 'auto')``."""
    from mmengine.optim import AmpOptimWrapper

    from mme_plugin.compat import amp_auto
    seen = []
    saved = dict(amp_auto._ORIG)
    amp_auto._ORIG.clear()
    monkeypatch.setattr(AmpOptimWrapper, '__init__',
                        lambda self, loss_scale='dynamic', dtype=None, **kw:
                        seen.append((dtype, loss_scale)))
    amp_auto.patch_amp_auto()
    for bf16, want in ((True, ('bfloat16', {'enabled': False})),
                       (False, ('float16', 'dynamic'))):
        monkeypatch.setattr('torch.cuda.is_available', lambda: True)
        monkeypatch.setattr('torch.cuda.is_bf16_supported',
                            lambda *a, b=bf16, **k: b)
        AmpOptimWrapper(dtype='auto', loss_scale='auto')
        assert seen[-1] == want
    AmpOptimWrapper(dtype='bfloat16', loss_scale='dynamic')  # untouched
    assert seen[-1] == ('bfloat16', 'dynamic')
    amp_auto._ORIG.clear()
    amp_auto._ORIG.update(saved)
