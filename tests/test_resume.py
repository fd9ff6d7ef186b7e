"""A run killed mid-epoch resumes to the weights of an uninterrupted one."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from .conftest import FAST_LOADER, REPO

# ComputeFlow's arguments by type, not position (CheckedVideoDataset's
# pipeline_edits)
FLOW_EDIT = 'train_dataloader.dataset.pipeline_edits.ComputeFlow'

CFG = 'configs/mme/pretrain_tiny_synthetic.py'


def _args(work, root, cache, sampler, workers, epochs=3):
    return [
        sys.executable, 'tools/train.py', CFG, '--work-dir', work, '--seed',
        '3', '--cfg-options',
        *[o for o in FAST_LOADER if o.startswith('train')],
        f'train_dataloader.num_workers={workers}',
        'train_dataloader.batch_size=4',
        f'train_dataloader.sampler.type={sampler}',
        f'train_dataloader.dataset.ann_file={root}/train.txt',
        f'train_dataloader.dataset.data_prefix.video={root}',
        f'{FLOW_EDIT}.cache_dir={cache}',
        f'{FLOW_EDIT}.data_root={root}',
        f'train_cfg.max_epochs={epochs}', 'default_hooks.checkpoint.interval=1'
    ]


def _env():
    return dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')


def _run(args):
    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                         env=_env(), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def _killed_then_resumed(args, work):
    """Start, kill once epoch 1 is saved (so during epoch 2), resume."""
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env(),
                            start_new_session=True)
    ckpt1, ckpt2 = osp.join(work, 'epoch_1.pth'), osp.join(work, 'epoch_2.pth')
    deadline = time.time() + 300
    while not osp.isfile(osp.join(work, 'last_checkpoint')):
        assert proc.poll() is None, 'training ended before epoch 1 was saved'
        assert time.time() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert osp.isfile(ckpt1) and not osp.isfile(ckpt2), 'not killed mid-run'
    log = _run(args + ['resume=True'])
    assert 'resumed epoch: 1' in log
    return osp.join(work, 'epoch_3.pth')


def _weights(path):
    return torch.load(path, map_location='cpu',
                      weights_only=False)['state_dict']


# Negative control: the stock sampler with in-process loading; the generators
# continue across epochs in an uninterrupted run but restart on resume.
@pytest.mark.parametrize('sampler,workers,same', [
    ('SeededSampler', 2, True), ('DefaultSampler', 0, False)])
def test_killed_run_resumes_to_the_same_weights(synthetic_root, tmp_path,
                                                sampler, workers, same):
    cache = str(tmp_path / 'fc')
    ref = str(tmp_path / 'ref')
    _run(_args(ref, synthetic_root, cache, sampler, workers))
    work = str(tmp_path / 'killed')
    resumed = _killed_then_resumed(_args(work, synthetic_root, cache,
                                         sampler, workers), work)
    a, b = _weights(osp.join(ref, 'epoch_3.pth')), _weights(resumed)
    diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    if same:
        assert diff < 1e-5, diff
    else:  # stock sampler: the replayed epoch sees other crops and masks
        assert diff > 1e-4, diff


def test_sample_seeds_differ_by_epoch_and_repeat_by_index():
    import numpy as np

    from mme_plugin.datasets import SeededIndex, seed_for_sample

    def draw(i, seed, epoch):
        assert seed_for_sample(SeededIndex(i, seed, epoch))
        return np.random.rand()

    assert draw(4, 0, 1) == draw(4, 0, 1)
    assert draw(4, 0, 1) != draw(4, 0, 2)
    assert draw(4, 0, 1) != draw(5, 0, 1)
    assert not seed_for_sample(4)  # plain ints: untouched
