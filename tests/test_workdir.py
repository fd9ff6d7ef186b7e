"""Work-dir integrity: ``--resume`` reads only the work dir's own
checkpoints (unless given a path) and never overwrites a newer one; one
training run per work dir (``.mme_run.lock``)."""
import glob
import itertools
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from mme_plugin.engine import safe_checkpoint
from mme_plugin.engine.workdir_lock import (LOCK_NAME, WorkDirInUseError,
                                            WorkDirLock, lock_record,
                                            process_start)

from .conftest import FAST_LOADER, REPO, data_options

CFG = 'configs/recognition/tiny-vit_synthetic.py'


# ------------------------------------------------------------ helpers --


def _ckpt(path, step=0):
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    torch.save({'meta': {'step': step}, 'w': torch.ones(2)}, str(path))
    return str(path)


def _truncate(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    return data[:len(data) // 2]


def _last(work, text):
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(str(text))


@pytest.fixture()
def logs(monkeypatch):
    """Messages of safe_checkpoint's and workdir_lock's print_log."""
    from mme_plugin.engine import workdir_lock
    out = []

    def record(msg, *args, **kwargs):
        out.append(str(msg))

    monkeypatch.setattr(safe_checkpoint, 'print_log', record)
    monkeypatch.setattr(workdir_lock, 'print_log', record)
    return out


def _train_tool():
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import train  # tools/train.py
    return train


_RUNS = itertools.count()


def _argv(root, work, epochs, *extra):
    # 24 train clips / 12 = 2 iterations per epoch; no validation. A new
    # experiment name per run: mmengine keeps one logger per name.
    return [CFG, '--work-dir', str(work), '--seed', '1', *extra,
            '--cfg-options', *FAST_LOADER, *data_options(root),
            'train_dataloader.batch_size=12', f'train_cfg.max_epochs={epochs}',
            'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1',
            f'experiment_name=workdir_test_{os.getpid()}_{next(_RUNS)}']


def _train(root, work, epochs, *extra):
    """tools/train.py in-process; the log text of the run."""
    from mmengine.logging import MMLogger
    _train_tool().main(_argv(root, work, epochs, *extra))
    with open(MMLogger.get_current_instance().log_file) as f:
        return f.read()


def _epoch(path):
    return torch.load(path, map_location='cpu',
                      weights_only=False)['meta']['epoch']


@pytest.fixture(scope='module')
def trained(synthetic_root, tmp_path_factory):
    """A finished 2-epoch run (epoch_1.pth, epoch_2.pth, last_checkpoint)."""
    work = str(tmp_path_factory.mktemp('trained') / 'src')
    _train(synthetic_root, work, 2)
    assert not osp.exists(osp.join(work, LOCK_NAME))  # removed at the end
    return work


def _copy(trained, dst):
    """The checkpoints and last_checkpoint of ``trained``, not its logs."""
    os.makedirs(str(dst))
    for name in os.listdir(trained):
        if osp.isfile(osp.join(trained, name)):
            shutil.copy2(osp.join(trained, name), str(dst))
    return str(dst)


# ---------------------------------------------- checkpoint candidates --


def test_last_checkpoint_outside_is_ignored_for_the_newer_own(tmp_path,
                                                              logs):
    work = str(tmp_path / 'work')
    _ckpt(osp.join(work, 'epoch_1.pth'))
    own = _ckpt(osp.join(work, 'epoch_2.pth'))
    other = _ckpt(tmp_path / 'other' / 'epoch_1.pth')
    _last(work, other)
    assert safe_checkpoint.find_loadable_checkpoint(work) == own
    note = [m for m in logs if 'outside the work dir' in m]
    assert note and other in note[0] and f'--resume {other}' in note[0]
    assert other not in safe_checkpoint.checkpoint_candidates(work)


def test_copied_work_dir_uses_its_own_files(tmp_path, logs):
    """Absolute paths in last_checkpoint point at the old location; the
    copy's own files (a custom file name included) are used."""
    old = str(tmp_path / 'old')
    _ckpt(osp.join(old, 'epoch_1.pth'))
    _ckpt(osp.join(old, 'ckpt_b.pth'))
    os.utime(osp.join(old, 'epoch_1.pth'), (1, 1))  # written before
    _last(old, osp.join(old, 'ckpt_b.pth'))
    new = str(tmp_path / 'new')
    shutil.copytree(old, new)
    assert safe_checkpoint.find_loadable_checkpoint(new) == osp.join(
        new, 'ckpt_b.pth')
    assert any(osp.join(old, 'ckpt_b.pth') in m and 'outside' in m
               for m in logs)


def test_candidates_by_step_not_by_last_checkpoint(tmp_path):
    work = str(tmp_path)
    for n in (2, 10, 9):
        _ckpt(osp.join(work, f'epoch_{n}.pth'))
    _last(work, osp.join(work, 'epoch_2.pth'))  # stale name
    assert [osp.basename(p) for p in
            safe_checkpoint.checkpoint_candidates(work)] == [
                'epoch_10.pth', 'epoch_9.pth', 'epoch_2.pth']


def test_relative_and_missing_last_checkpoint(tmp_path, logs, monkeypatch):
    work = str(tmp_path / 'w')
    _ckpt(osp.join(work, 'epoch_1.pth'))
    custom = _ckpt(osp.join(work, 'custom.pth'))  # written after epoch_1
    os.utime(osp.join(work, 'epoch_1.pth'), (1, 1))
    monkeypatch.chdir(tmp_path)
    _last(work, 'custom.pth')  # relative to the work dir
    assert safe_checkpoint.checkpoint_candidates(work)[0] == custom
    _last(work, 'w/custom.pth')  # relative to the current directory
    assert safe_checkpoint.find_loadable_checkpoint(work) == osp.abspath(
        custom)
    _last(work, osp.join(work, 'epoch_7.pth'))  # missing
    assert safe_checkpoint.find_loadable_checkpoint(work) == osp.join(
        work, 'epoch_1.pth')
    assert any('epoch_7.pth (named by last_checkpoint; missing)' in m
               for m in logs)


def test_mixed_epoch_and_iter_checkpoints_follow_the_kind_written_last(
        tmp_path, logs):
    work = str(tmp_path)
    _ckpt(osp.join(work, 'iter_300.pth'))
    _ckpt(osp.join(work, 'epoch_3.pth'))
    _ckpt(osp.join(work, 'epoch_2.pth'))
    os.utime(osp.join(work, 'iter_300.pth'), (1, 1))  # an older run's
    names = [osp.basename(p) for p in
             safe_checkpoint.checkpoint_candidates(work)]
    assert names == ['epoch_3.pth', 'epoch_2.pth', 'iter_300.pth']
    _last(work, osp.join(work, 'iter_300.pth'))  # last_checkpoint decides
    assert safe_checkpoint.find_loadable_checkpoint(work).endswith(
        'iter_300.pth')
    assert any('both epoch_N and iter_N' in m for m in logs)


def test_symlink_out_of_the_work_dir_is_skipped(tmp_path, logs):
    work = str(tmp_path / 'w')
    own = _ckpt(osp.join(work, 'epoch_1.pth'))
    target = _ckpt(tmp_path / 'elsewhere' / 'any.pth')
    os.symlink(target, osp.join(work, 'epoch_2.pth'))
    os.symlink(own, osp.join(work, 'epoch_0.pth'))  # inside: fine
    assert safe_checkpoint.find_loadable_checkpoint(work) == own
    assert any('outside the work dir' in m and target in m for m in logs)
    # through a symlinked work dir, its files are inside
    os.symlink(work, str(tmp_path / 'alias'))
    assert safe_checkpoint.find_loadable_checkpoint(
        str(tmp_path / 'alias')).endswith('alias/epoch_1.pth')


def test_only_the_runner_moves_skipped_files_aside(tmp_path, logs):
    work = str(tmp_path)
    _ckpt(osp.join(work, 'epoch_1.pth'))
    bad = _ckpt(osp.join(work, 'epoch_2.pth'))
    half = _truncate(bad)
    assert safe_checkpoint.find_loadable_checkpoint(work).endswith(
        'epoch_1.pth')
    assert osp.isfile(bad)  # a direct call only looks
    assert safe_checkpoint._find_latest_for_runner(work).endswith(
        'epoch_1.pth')
    moved = glob.glob(bad + '.corrupt-*')
    assert not osp.exists(bad) and len(moved) == 1
    with open(moved[0], 'rb') as f:
        assert f.read() == half
    assert any('moved' in m and moved[0] in m for m in logs)


# ------------------------------------------------ resume, end to end --


def test_resume_ignores_last_checkpoint_outside_the_work_dir(
        synthetic_root, trained, tmp_path):
    """A copied work dir whose last_checkpoint names the source's older
    epoch_1: the copy resumes from its own epoch_2."""
    work = _copy(trained, tmp_path / 'copy')
    _last(work, osp.join(trained, 'epoch_1.pth'))
    log = _train(synthetic_root, work, 3, '--resume')
    assert 'resumed epoch: 2' in log, log[-3000:]
    assert 'outside the work dir' in log and osp.join(
        trained, 'epoch_1.pth') in log
    assert _epoch(osp.join(work, 'epoch_3.pth')) == 3


def test_explicit_resume_path_outside_the_work_dir_is_used(
        synthetic_root, trained, tmp_path):
    work = str(tmp_path / 'fresh')
    log = _train(synthetic_root, work, 3, '--resume',
                 osp.join(trained, 'epoch_1.pth'))
    assert 'resumed epoch: 1' in log, log[-3000:]
    assert _epoch(osp.join(work, 'epoch_3.pth')) == 3


def test_resume_moves_a_newer_corrupt_checkpoint_aside(
        synthetic_root, trained, tmp_path):
    work = _copy(trained, tmp_path / 'copy')
    half = _truncate(osp.join(work, 'epoch_2.pth'))
    log = _train(synthetic_root, work, 2, '--resume')
    assert 'resumed epoch: 1' in log, log[-3000:]
    moved = glob.glob(osp.join(work, 'epoch_2.pth.corrupt-*'))
    assert len(moved) == 1 and moved[0] in log
    with open(moved[0], 'rb') as f:
        assert f.read() == half  # kept as it was, not overwritten
    assert _epoch(osp.join(work, 'epoch_2.pth')) == 2  # the new one


# ------------------------------------------------------------- lock --


@pytest.fixture()
def sleeper():
    proc = subprocess.Popen(['sleep', '600'])
    yield proc
    proc.kill()
    proc.wait()


def _write_lock(work, record):
    os.makedirs(work, exist_ok=True)
    path = osp.join(work, LOCK_NAME)
    with open(path, 'w') as f:
        json.dump(record, f)
    return path


def test_lock_refuses_a_second_run(synthetic_root, tmp_path, sleeper):
    work = str(tmp_path / 'w')
    path = _write_lock(work, dict(lock_record(sleeper.pid),
                                  command='python tools/train.py x.py'))
    with open(path) as f:
        before = f.read()
    with pytest.raises(SystemExit) as e:
        _train_tool().main(_argv(synthetic_root, work, 1))
    msg = str(e.value)
    assert msg.startswith('error: work dir') and 'in use' in msg
    assert f'pid {sleeper.pid} on this host' in msg
    assert 'python tools/train.py x.py' in msg and f'delete {path}' in msg
    assert not glob.glob(osp.join(work, '*.pth'))
    with open(path) as f:
        assert f.read() == before  # the other run's lock is untouched


def test_lock_of_another_host_is_refused(tmp_path):
    path = _write_lock(str(tmp_path), dict(lock_record(),
                                           host='gpu-node-17.example'))
    with pytest.raises(WorkDirInUseError) as e:
        WorkDirLock(str(tmp_path)).acquire()
    assert 'host gpu-node-17.example (another host' in str(e.value)
    assert f'delete {path}' in str(e.value)
    assert osp.isfile(path)


def test_lock_of_a_requeued_slurm_job_is_stale(tmp_path, monkeypatch):
    """A requeued Slurm job (same id, another node or restart count) takes
    over the lock its killed earlier instance left; another job's lock on
    another host is still refused."""
    monkeypatch.setenv('SLURM_JOB_ID', '4242')
    monkeypatch.setenv('SLURM_RESTART_COUNT', '1')
    for holder in (dict(host='gpu-node-17.example', slurm_restart='0'),
                   dict(host='gpu-node-17.example', slurm_restart='1'),
                   dict(slurm_restart='0')):
        path = _write_lock(str(tmp_path), dict(lock_record(), pid=1,
                                               slurm_job='4242', **holder))
        lock = WorkDirLock(str(tmp_path))
        lock.acquire()
        assert lock.held
        lock.release()
        assert not osp.exists(path)
    _write_lock(str(tmp_path), dict(lock_record(), slurm_job='4141',
                                    host='gpu-node-17.example'))
    with pytest.raises(WorkDirInUseError):
        WorkDirLock(str(tmp_path)).acquire()


def test_stale_lock_of_a_dead_pid_is_taken_over_and_removed(
        synthetic_root, tmp_path, logs):
    proc = subprocess.Popen(['sleep', '600'])
    record = lock_record(proc.pid)
    proc.kill()
    proc.wait()
    work = str(tmp_path / 'w')
    path = _write_lock(work, record)
    _train(synthetic_root, work, 1)
    assert any('taking over the stale lock' in m and
               f'process {proc.pid} is not running' in m for m in logs)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert not osp.exists(path)  # removed after the normal run


def test_lock_of_a_reused_pid_is_stale(tmp_path, logs):
    """A live pid whose process started at another time (pid reuse)."""
    if process_start(os.getpid()) is None:
        pytest.skip('no /proc/<pid>/stat here')
    record = dict(lock_record(), token='old')
    record['process_start'] -= 1
    _write_lock(str(tmp_path), record)
    with WorkDirLock(str(tmp_path)) as lock:
        with open(lock.path) as f:
            assert json.load(f)['token'] == lock._record['token']
    assert any('now belongs to another process' in m for m in logs)
    assert not osp.exists(osp.join(str(tmp_path), LOCK_NAME))


def test_lock_in_this_process_refuses_a_second_holder(tmp_path):
    with WorkDirLock(str(tmp_path)):
        with pytest.raises(WorkDirInUseError, match='in use'):
            WorkDirLock(str(tmp_path)).acquire()
    WorkDirLock(str(tmp_path)).acquire()  # released: free again


def test_lock_removed_after_an_exception(synthetic_root, tmp_path,
                                         monkeypatch):
    from mmengine.runner import EpochBasedTrainLoop
    seen = []

    def broken(self):
        seen.append(osp.isfile(osp.join(self.runner.work_dir, LOCK_NAME)))
        raise RuntimeError('broken loop')

    monkeypatch.setattr(EpochBasedTrainLoop, 'run', broken)
    work = str(tmp_path / 'w')
    with pytest.raises(RuntimeError, match='broken loop'):
        _train_tool().main(_argv(synthetic_root, work, 1))
    assert seen == [True]  # held while training
    assert not osp.exists(osp.join(work, LOCK_NAME))


def test_lock_removed_on_sigterm(synthetic_root, tmp_path):
    """A run ended by SIGTERM (a scheduler's cancel) leaves no lock."""
    work = str(tmp_path / 'w')
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.Popen(
        [sys.executable, 'tools/train.py',
         *_argv(synthetic_root, work, 1000)], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = osp.join(work, LOCK_NAME)
    deadline = time.time() + 300
    try:
        while not osp.isfile(lock):
            assert proc.poll() is None, 'the run ended before locking'
            assert time.time() < deadline
            time.sleep(0.05)
        with open(lock) as f:
            assert json.load(f)['pid'] == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not osp.exists(lock)


def test_explicit_older_resume_warns_which_newer_it_overwrites(tmp_path,
                                                               logs):
    work = str(tmp_path)
    for n in (1, 2, 3):
        _ckpt(osp.join(work, f'epoch_{n}.pth'))
    _ckpt(osp.join(work, 'iter_50.pth'))  # another kind: not overwritten
    safe_checkpoint._warn_newer_than(osp.join(work, 'epoch_2.pth'), [work])
    assert len(logs) == 1 and osp.join(work, 'epoch_3.pth') in logs[0]
    assert 'epoch_1' not in logs[0] and 'iter_50' not in logs[0]
    safe_checkpoint._warn_newer_than(osp.join(work, 'epoch_3.pth'), [work])
    assert len(logs) == 1  # nothing newer: quiet
