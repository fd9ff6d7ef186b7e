"""A GPU launch without CUDA fails (unless opted in), ``--deterministic``
sets cuBLAS's workspace, and every rank reseeds differently."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mme_plugin.utils.cuda_setup import (CPU_DIST_ENV, CUBLAS_ENV,
                                         NoCudaError,
                                         require_cuda_for_launcher)

from .conftest import REPO



def _tool(name):
    """``tools/<name>.py`` as a module (``test`` is also a stdlib name)."""
    spec = importlib.util.spec_from_file_location(
        f'mme_tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

CFG = 'configs/recognition/tiny-vit_synthetic.py'
needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(),
                                   reason='checks the refusal without CUDA')


def _unset(monkeypatch, name):
    """Remove ``name`` for this test (restored afterwards, even if the code
    under test sets it)."""
    monkeypatch.setenv(name, 'x')
    monkeypatch.delenv(name)


def _assert_names_build_and_fix(message):
    assert f'torch {torch.__version__}' in message
    assert f'CUDA build: {torch.version.cuda or "none"}' in message
    assert 'torch.cuda.is_available()=False' in message
    assert 'device_count()=0' in message
    assert 'nvidia-smi' in message and 'CUDA build of torch' in message
    assert f'{CPU_DIST_ENV}=1' in message


@needs_no_cuda
@pytest.mark.parametrize('launcher', ['pytorch', 'slurm', 'mpi'])
def test_train_with_a_launcher_and_no_cuda_fails_naming_torch_and_the_fix(
        monkeypatch, tmp_path, launcher):
    train = _tool('train')
    _unset(monkeypatch, CPU_DIST_ENV)
    with pytest.raises(SystemExit) as e:
        train.main([CFG, '--launcher', launcher, '--work-dir',
                    str(tmp_path)])
    _assert_names_build_and_fix(str(e.value))
    assert f'--launcher {launcher}' in str(e.value)
    assert not os.listdir(tmp_path)  # nothing started


@needs_no_cuda
def test_test_tool_with_a_launcher_and_no_cuda_fails(monkeypatch, tmp_path):
    test_tool = _tool('test')
    _unset(monkeypatch, CPU_DIST_ENV)
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    with pytest.raises(SystemExit) as e:
        test_tool.main([CFG, str(ckpt), '--launcher', 'pytorch'])
    _assert_names_build_and_fix(str(e.value))


@needs_no_cuda
def test_process_group_init_refuses_cpu_without_the_opt_in(monkeypatch):
    from mme_plugin.compat import _init_dist_pytorch_cpu_aware
    _unset(monkeypatch, CPU_DIST_ENV)
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    with pytest.raises(NoCudaError, match='MME_ALLOW_CPU_DIST=1'):
        _init_dist_pytorch_cpu_aware()
    assert not torch.distributed.is_initialized()


@needs_no_cuda
def test_dist_train_without_cuda_fails_fast_with_the_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != CPU_DIST_ENV}
    env.update(PYTHON=sys.executable, PYTHONWARNINGS='ignore',
               OMP_NUM_THREADS='1', PORT='29715')
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', CFG, '1', '--work-dir',
         str(tmp_path / 'w')], cwd=REPO, capture_output=True, text=True,
        timeout=300, env=env)
    assert out.returncode != 0
    _assert_names_build_and_fix(out.stdout + out.stderr)
    assert not osp.exists(tmp_path / 'w')


def test_opt_in_and_single_process_runs_are_allowed(monkeypatch):
    require_cuda_for_launcher('none')  # never needs CUDA
    monkeypatch.setenv(CPU_DIST_ENV, '1')
    if not torch.cuda.is_available():
        require_cuda_for_launcher('pytorch')
        monkeypatch.setenv(CPU_DIST_ENV, '0')
        with pytest.raises(NoCudaError):
            require_cuda_for_launcher('pytorch')


def test_more_processes_than_gpus_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    require_cuda_for_launcher('pytorch', local_rank=1)
    with pytest.raises(NoCudaError, match='local rank 3 has no GPU: only 2'):
        require_cuda_for_launcher('pytorch', local_rank=3)


@pytest.mark.parametrize('argv,preset,want', [
    (['--deterministic'], None, ':4096:8'),
    (['--cfg-options', 'randomness.deterministic=True'], None, ':4096:8'),
    (['--deterministic'], ':16:8', ':16:8'),  # the user's value is kept
    ([], None, None)])
def test_deterministic_sets_the_cublas_workspace(monkeypatch, tmp_path, argv,
                                                 preset, want):
    train = _tool('train')
    _unset(monkeypatch, CUBLAS_ENV)
    if preset:
        monkeypatch.setenv(CUBLAS_ENV, preset)
    cfg = train.build_config(train.parse_args(
        [CFG, '--work-dir', str(tmp_path)] + argv))
    assert cfg.get('randomness', {}).get('deterministic', False) == (
        want is not None)
    assert os.environ.get(CUBLAS_ENV) == want


def test_randomness_flags_reach_a_config_without_randomness(tmp_path):
    # mmengine's Config.setdefault returns a copy when it inserts the key:
    # before, --deterministic and --diff-rank-seed were silently dropped
    train = _tool('train')
    cfg = train.build_config(train.parse_args(
        [CFG, '--work-dir', str(tmp_path), '--deterministic',
         '--diff-rank-seed']))
    assert cfg.randomness == dict(deterministic=True, diff_rank_seed=True)


def test_test_tool_sets_the_cublas_workspace_for_a_deterministic_config(
        monkeypatch, tmp_path):
    test_tool = _tool('test')
    _unset(monkeypatch, CUBLAS_ENV)
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    test_tool.build_config(test_tool.parse_args(
        [CFG, str(ckpt), '--cfg-options', 'randomness.deterministic=True']))
    assert os.environ.get(CUBLAS_ENV) == ':4096:8'


def test_reseed_differs_by_rank_and_repeats_by_rank_and_iteration(
        monkeypatch):
    import mme_plugin.engine.hooks as hooks
    from mme_plugin.engine import ReseedHook
    from mme_plugin.engine.hooks import iteration_seed

    # rank 0: the seed of before ranks counted (pretraining runs unchanged)
    before = int(np.random.SeedSequence([5, 7, 1]).generate_state(1)[0])
    assert iteration_seed(5, 7, 0) == before == iteration_seed(5, 7)
    assert iteration_seed(5, 7, 1) != before
    assert len({iteration_seed(5, 7, r) for r in range(8)}) == 8
    assert iteration_seed(5, 7, 3) == iteration_seed(5, 7, 3)
    assert iteration_seed(5, 8, 3) != iteration_seed(5, 7, 3)

    runner = SimpleNamespace(seed=5, iter=7)

    def draw(rank):
        monkeypatch.setattr(hooks, 'get_rank', lambda: rank)
        ReseedHook().before_train_iter(runner, 0)
        return torch.rand(4)

    assert torch.equal(draw(1), draw(1))  # resume: same (rank, iteration)
    assert not torch.equal(draw(0), draw(1))  # ranks: different masks
    torch.manual_seed(before)
    ref = torch.rand(4)
    assert torch.equal(draw(0), ref)
