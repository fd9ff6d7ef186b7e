"""Checkpoints never run code: every entry point refuses a malicious pickle
(and no file appears), legitimate checkpoints of every layout still load,
and the opt-in works."""
import datetime
import os
import subprocess
import sys

import pytest
import torch

from mme_plugin.engine.safe_load import (TRUST_ENV, UnsafeCheckpointError,
                                         safe_torch_load)

from .conftest import FAST_LOADER, REPO, call_tool, data_options

FINETUNE = 'configs/mme/finetune_tiny_synthetic.py'


class _Payload:
    """Unpickling this creates ``path`` (through os.system)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}', ))


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'PWNED'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'backbone.x': torch.zeros(1)}, 'meta': {},
                'x': _Payload(str(marker))}, path)
    return path, marker


def _run(args, env_extra=None):
    """A tool as users start it: a new interpreter, without the opt-in."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    env.pop(TRUST_ENV, None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, env=env,
                          timeout=600)


def _refused(out, marker):
    assert out.returncode != 0
    assert 'refused to load' in out.stderr and 'posix.system' in out.stderr
    assert '--trust-checkpoint' in out.stderr
    assert not marker.exists()


def _refused_in_process(path, argv, marker, capsys, monkeypatch):
    """The same refusal through the tool's ``main(argv)`` in this process
    (no interpreter start): had the payload run, ``marker`` would exist."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    try:
        run = call_tool(path, argv, capsys, check=False)
        text = f'{run.out}\n{run.code}'
        assert run.code != 0, text[-3000:]
    except UnsafeCheckpointError as e:
        text = str(e)
    assert 'refused to load' in text and 'posix.system' in text
    assert '--trust-checkpoint' in text
    assert not marker.exists()


def test_converters_refuse_a_malicious_checkpoint(evil, tmp_path, capsys,
                                                  monkeypatch):
    path, marker = evil
    for tool in ('tools/convert/official_to_mmaction.py',
                 'tools/convert/mme_to_recognizer.py'):
        _refused_in_process(tool, [str(path), str(tmp_path / 'out.pth')],
                            marker, capsys, monkeypatch)
        assert not (tmp_path / 'out.pth').exists()
    # and as users start it: the script's own imports install the guard
    _refused(_run(['tools/convert/official_to_mmaction.py', str(path),
                   str(tmp_path / 'out.pth')]), marker)
    assert not (tmp_path / 'out.pth').exists()


def test_test_tool_refuses_a_malicious_checkpoint(evil, synthetic_root,
                                                  tmp_path):
    path, marker = evil
    _refused(_run(['tools/test.py', FINETUNE, str(path), '--work-dir',
                   str(tmp_path / 'w'), '--cfg-options', *FAST_LOADER,
                   *data_options(synthetic_root)]), marker)


def test_train_load_from_and_resume_refuse_a_malicious_checkpoint(
        evil, synthetic_root, tmp_path, capsys, monkeypatch):
    path, marker = evil
    base = [FINETUNE, '--cfg-options', *FAST_LOADER,
            *data_options(synthetic_root), 'train_cfg.max_epochs=1']
    # load_from as users start it (a new interpreter), --resume in process
    _refused(_run(['tools/train.py', *base, f'load_from={path}',
                   '--work-dir', str(tmp_path / 'a')]), marker)
    work = tmp_path / 'b'
    work.mkdir()
    (work / 'epoch_1.pth').write_bytes(path.read_bytes())
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    _refused_in_process('tools/train.py', base + [
        '--work-dir', str(work), '--resume'], marker, capsys, monkeypatch)


def test_stock_mmengine_loader_refuses_it_too(evil):
    import mme_plugin  # noqa: F401  (the shims)
    from mmengine.runner import CheckpointLoader
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_opt_in_loads_an_unlisted_object_with_a_warning(tmp_path,
                                                        monkeypatch):
    path = tmp_path / 'dated.pth'
    torch.save({'state_dict': {}, 'when': datetime.date(2023, 6, 1)}, path)
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(UnsafeCheckpointError, match='datetime.date'):
        safe_torch_load(str(path))
    monkeypatch.setenv(TRUST_ENV, '1')
    with pytest.warns(UserWarning, match='full unpickling'):
        assert safe_torch_load(str(path))['when'].year == 2023


def test_legitimate_checkpoints_load(tmp_path):
    """An official release checkpoint (args Namespace, numpy arrays, scaler
    state) and an mmengine training checkpoint (message hub with
    HistoryBuffer, numpy scalars) load with the safe loader."""
    import argparse

    import numpy as np
    from mmengine.logging import HistoryBuffer
    official = tmp_path / 'official.pth'
    torch.save({'model': {'encoder.norm.weight': torch.ones(2)}, 'epoch': 3,
                'args': argparse.Namespace(lr=1e-3, alpha=np.ones(4) * 0.1,
                                           window_size=(8, 14, 14)),
                'scaler': {'scale': 65536.0}}, official)
    assert safe_torch_load(str(official))['args'].lr == 1e-3
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    ours = tmp_path / 'ours.pth'
    torch.save({'state_dict': {'a': torch.zeros(1)},
                'message_hub': {'log_scalars': {'loss': buf},
                                'runtime_info': {'seed': np.int64(3)}},
                'meta': {'dtype': np.dtype('float32')}}, ours)
    loaded = safe_torch_load(str(ours))
    assert loaded['message_hub']['log_scalars']['loss'].current() == 0.5


def _training_checkpoint():
    """What mmengine's runner saves, with a message hub of log buffers."""
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_safe_load_plain')
    hub.update_scalar('train/loss', 0.75)
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_info('iter', 4)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    return {'meta': {'epoch': 1, 'iter': 4, 'seed': 0},
            'state_dict': model.state_dict(), 'optimizer': opt.state_dict(),
            'message_hub': hub.state_dict()}


def test_project_checkpoints_need_no_allow_list(tmp_path):
    """What the project writes loads with torch's default restricted
    unpickler and nothing added; the loader restores the log buffers."""
    from mmengine.logging import HistoryBuffer

    from mme_plugin.engine.safe_checkpoint import atomic_save_checkpoint
    path = tmp_path / 'epoch_1.pth'
    atomic_save_checkpoint(_training_checkpoint(), str(path))
    plain = torch.load(str(path), weights_only=True)  # no extra globals
    assert not isinstance(
        plain['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    buf = safe_torch_load(str(path))['message_hub']['log_scalars'][
        'train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.current() == 0.25 and buf.mean() == 0.5
    assert buf.data[1].tolist() == [1, 1]


def test_truncated_checkpoints_name_the_file(tmp_path):
    from mme_plugin.engine.safe_load import IncompleteCheckpointError
    for legacy in (False, True):
        path = tmp_path / f'cut_{legacy}.pth'
        torch.save(_training_checkpoint(), path,
                   _use_new_zipfile_serialization=not legacy)
        data = path.read_bytes()
        for keep in (len(data) // 2, len(data) - 30, 10):
            path.write_bytes(data[:keep])
            with pytest.raises(IncompleteCheckpointError,
                               match='incomplete or corrupt') as info:
                safe_torch_load(str(path))
            assert str(path) in str(info.value)
            assert f'{keep} bytes' in str(info.value)


def test_nonfinite_weights_are_refused_but_logged_nan_is_not(tmp_path):
    from mme_plugin.engine.safe_load import NonFiniteCheckpointError
    ckpt = _training_checkpoint()
    ckpt['message_hub']['log_scalars']['train/loss'].update(float('nan'))
    ok = tmp_path / 'ok.pth'
    torch.save(ckpt, ok)
    assert safe_torch_load(str(ok))['meta']['iter'] == 4
    for where in ('state_dict', 'optimizer'):
        bad = _training_checkpoint()
        if where == 'state_dict':
            bad['state_dict']['weight'][0, 1] = float('nan')
            name = 'state_dict.weight'
        else:
            bad['optimizer']['state'][0]['exp_avg'][0, 0] = float('inf')
            name = 'optimizer.state.0.exp_avg'
        path = tmp_path / f'{where}.pth'
        torch.save(bad, path)
        with pytest.raises(NonFiniteCheckpointError) as info:
            safe_torch_load(str(path))
        assert str(path) in str(info.value) and name in str(info.value)
        assert 'state_dict.bias' not in str(info.value)


def test_test_tool_names_a_truncated_checkpoint(synthetic_root, tmp_path,
                                                capsys):
    path = tmp_path / 'half.pth'
    torch.save(_training_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:300])
    # in process: a traceback would be an exception escaping main()
    run = call_tool('tools/test.py', [
        FINETUNE, str(path), '--work-dir', str(tmp_path / 'w'),
        '--cfg-options', *FAST_LOADER, *data_options(synthetic_root)],
        capsys, check=False)
    assert run.code != 0
    assert 'incomplete or corrupt' in str(run.code)
    assert str(path) in str(run.code)
