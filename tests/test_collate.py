"""Stacked MME batches (mme_collate), one copy per key, start-up checks."""
import json
import os
import os.path as osp
import random
import resource
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mme_plugin.utils.sync_counter import CopyCounter
from mme_plugin.datasets import BatchShapeError, mme_collate
from mme_plugin.datasets.collate import SAMPLE_FIELDS_KEY
from mme_plugin.models import MMEDataPreprocessor, StackedSamples
from mme_plugin.models.targets import stack_samples
from mme_plugin.registry import DATASETS, MODELS
from mme_plugin.utils import resources
from mme_plugin.utils.setup_env import register_all_modules

from .conftest import REPO

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
KEYS = ('mask', 'traj_target', 'traj_valid', 'hog_frames', 'traj_reject',
        'traj_motionless')


def _sample(i: int, frames: int = 4, size: int = 16) -> dict:
    """A packed sample with MME-like fields whose values depend on ``i``."""
    g = torch.Generator().manual_seed(i)
    ds = ActionDataSample()
    ds.set_gt_label(i % 3)
    ds.set_field(torch.rand(8, generator=g) > 0.5, 'mask')
    ds.set_field(torch.randn(8, 6, generator=g), 'traj_target')
    ds.set_field(torch.rand(8, generator=g) > 0.2, 'traj_valid')
    ds.set_field(torch.randint(0, 255, (2, 3, 4, 4, 3), dtype=torch.uint8,
                               generator=g), 'hog_frames')
    ds.set_field(np.full(5, i / 10, np.float32), 'traj_reject')  # NumPy
    ds.set_field(torch.tensor(float(i)), 'traj_motionless')  # 0-d
    ds.set_field(f'note {i}', 'note')  # a non-tensor field
    ds.set_metainfo(dict(filename=f'v{i}.mp4', img_shape=(size, size),
                         skipped_samples=[dict(file=f'bad{i}.mp4')]))
    clip = torch.randint(0, 255, (1, 3, frames, size, size),
                         dtype=torch.uint8, generator=g)
    return dict(inputs=clip, data_samples=ds)


def test_collate_stacks_every_key_and_keeps_metadata():
    items = [_sample(i) for i in range(3)]
    batch = mme_collate(items)
    assert set(batch) == {'inputs', 'data_samples', SAMPLE_FIELDS_KEY}
    assert torch.equal(batch['inputs'],
                       torch.stack([it['inputs'] for it in items]))
    fields = batch[SAMPLE_FIELDS_KEY]
    assert set(fields) == set(KEYS) | {'gt_label'}
    for key in fields:
        want = torch.stack([torch.as_tensor(it['data_samples'].get(key))
                            for it in items])
        assert fields[key].dtype == want.dtype, key
        assert torch.equal(fields[key], want), key
    for i, ds in enumerate(batch['data_samples']):
        assert ds.metainfo['filename'] == f'v{i}.mp4'
        assert ds.metainfo['skipped_samples'] == [dict(file=f'bad{i}.mp4')]
        assert ds.note == f'note {i}'  # non-tensor fields stay per sample
        assert 'traj_target' not in ds and 'mask' not in ds
    # the packed samples themselves are untouched
    assert 'traj_target' in items[0]['data_samples']


def test_collate_flattens_repeated_augmentation_in_order():
    items = [[_sample(0), _sample(1)], [_sample(2), _sample(3)]]
    batch = mme_collate(items)
    assert batch['inputs'].shape[0] == 4
    names = [ds.metainfo['filename'] for ds in batch['data_samples']]
    assert names == ['v0.mp4', 'v1.mp4', 'v2.mp4', 'v3.mp4']
    assert batch[SAMPLE_FIELDS_KEY]['traj_motionless'].tolist() == [0, 1, 2,
                                                                    3]


def test_mismatched_shapes_name_the_key_and_shapes():
    a, b = _sample(0), _sample(1)
    b['data_samples'].set_field(torch.zeros(9, 6), 'traj_target')
    with pytest.raises(BatchShapeError, match=r'"traj_target".*\(8, 6\).*'
                       r'\(9, 6\)'):
        mme_collate([a, b])
    c = _sample(2, size=32)
    with pytest.raises(BatchShapeError, match='"inputs"'):
        mme_collate([a, c])
    d = _sample(3)
    d['data_samples'].pop('traj_valid')
    with pytest.raises(BatchShapeError, match='"traj_valid": 1 of 2'):
        mme_collate([a, d])


def _preprocessors():
    stock = MODELS.build(dict(type='ActionDataPreprocessor', mean=MEAN,
                              std=STD, format_shape='NCTHW'))
    ours = MODELS.build(dict(type='MMEDataPreprocessor', mean=MEAN, std=STD,
                             format_shape='NCTHW'))
    return stock, ours


def test_preprocessor_copies_once_per_key_and_matches_stock():
    stock, ours = _preprocessors()
    assert isinstance(ours, MMEDataPreprocessor) and ours._non_blocking
    items = [_sample(i) for i in range(4)]
    ref = stock(pseudo_collate([dict(it) for it in items]), training=True)
    batch = mme_collate(items)
    with CopyCounter() as count:
        out = ours(batch, training=True)
    assert count.calls == 1 + len(batch[SAMPLE_FIELDS_KEY])  # inputs + keys
    assert torch.equal(out['inputs'], ref['inputs'])
    samples = out['data_samples']
    assert isinstance(samples, StackedSamples) and len(samples) == 4
    for key in KEYS:
        stacked = stack_samples(samples, key, torch.device('cpu'))
        assert stacked is samples.stacked[key]  # no copy
        assert torch.equal(stacked,
                           stack_samples(ref['data_samples'], key, 'cpu'))
        # each sample sees its row (a view), as before
        assert torch.equal(torch.as_tensor(samples[2].get(key)),
                           torch.as_tensor(items[2]['data_samples'].get(key)))
    assert samples[1].metainfo['filename'] == 'v1.mp4'


def test_preprocessor_stacks_the_old_list_form_once():
    _, ours = _preprocessors()
    items = [_sample(i) for i in range(3)]
    batch = pseudo_collate(items)
    with CopyCounter() as count:
        out = ours(batch)
    assert count.calls == 1 + len(KEYS) + 1  # inputs, keys, gt_label
    assert out['inputs'].shape == (3, 1, 3, 4, 16, 16)
    assert isinstance(out['data_samples'], StackedSamples)


def test_one_shared_memory_file_per_key_from_a_worker():
    """Measured in the main process with one worker: a batch of per-sample
    tensors holds one open file per tensor, a stacked batch one per key."""
    sys.path.insert(0, osp.join(REPO, 'benchmarks'))
    from batch_transfer import measured_open_files
    if not osp.isdir('/proc/self/fd'):
        pytest.skip('needs /proc/self/fd')
    items = [_sample(i) for i in range(16)]
    # per sample: inputs, gt_label and the keys but traj_reject, a NumPy
    # array (pickled by value); stacked, it is a tensor too
    torch_tensors = 1 + 1 + len(KEYS) - 1
    assert measured_open_files(items, pseudo_collate) == 16 * torch_tensors
    assert measured_open_files(items, mme_collate) == torch_tensors + 1


def _tiny_dataset(root: str, cache: str):
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO,
                                   'configs/mme/pretrain_tiny_synthetic.py'))
    ds = cfg.train_dataloader.dataset
    ds.ann_file, ds.data_prefix = f'{root}/train.txt', dict(video=root)
    ds.pipeline_edits = dict(ComputeFlow=dict(cache_dir=cache,
                                              data_root=root))
    return cfg, DATASETS.build(ds)


def test_tiny_model_losses_identical_with_stacked_batches(synthetic_root,
                                                          tmp_path):
    """The tiny pretraining model gives bit-identical losses (and
    gradients) from the stock per-sample path and the stacked one."""
    cfg, dataset = _tiny_dataset(synthetic_root, str(tmp_path / 'fc'))
    assert cfg.train_dataloader.collate_fn.type == 'mme_collate'
    assert cfg.model.data_preprocessor.type == 'MMEDataPreprocessor'
    items = [dataset[i] for i in range(3)]
    results = []
    for collate, pre in ((pseudo_collate, 'ActionDataPreprocessor'),
                         (mme_collate, 'MMEDataPreprocessor')):
        model_cfg = cfg.model.copy()
        model_cfg.data_preprocessor = dict(cfg.model.data_preprocessor,
                                           type=pre)
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
        model.init_weights()
        data = model.data_preprocessor(collate([dict(it) for it in items]),
                                       training=True)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if k.startswith('loss'))
        total.backward()
        grad = model.backbone.patch_embed.projection.weight.grad.clone()
        results.append(({k: v.item() for k, v in losses.items()}, grad))
    assert results[0][0] == results[1][0]
    assert torch.equal(results[0][1], results[1][1])
    assert results[0][0]['loss_traj'] > 0


# -- start-up checks --------------------------------------------------------


class _Bytes(torch.utils.data.Dataset):
    """Items of one 1 MiB tensor."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        random.random()  # draws, as a pipeline does
        np.random.rand()
        return dict(inputs=torch.zeros(2**18, dtype=torch.float32))


def _loader(workers=2, prefetch=2, batch=4):
    return SimpleNamespace(dataset=_Bytes(), batch_size=batch,
                           num_workers=workers, prefetch_factor=prefetch,
                           collate_fn=mme_collate)


def _fake_statvfs(total_mib: int, free_mib: int):
    def statvfs(path):
        assert path == '/dev/shm'
        return SimpleNamespace(f_frsize=4096, f_blocks=total_mib * 256,
                               f_bavail=free_mib * 256)
    return statvfs


def test_small_dev_shm_fails_before_the_first_batch(monkeypatch):
    monkeypatch.delenv('LOCAL_WORLD_SIZE', raising=False)
    monkeypatch.delenv('SLURM_NTASKS_PER_NODE', raising=False)
    monkeypatch.setattr(os, 'statvfs', _fake_statvfs(64, 64))
    # 4 items x 1 MiB x 2 workers x prefetch 8 = 64 MiB fits in 64 MiB ...
    numbers = resources.check_shared_memory(_loader(prefetch=8))
    assert numbers['item_bytes'] == 2**20
    assert numbers['need_bytes'] == 64 * 2**20
    # ... 4 x 1 x 2 x 9 = 72 MiB does not
    with pytest.raises(resources.SharedMemoryError) as e:
        resources.check_shared_memory(_loader(prefetch=9))
    msg = str(e.value)
    for part in ('/dev/shm is 64 MiB', '72 MiB', 'batch 4 x 1.0 MiB',
                 '2 workers', 'prefetch_factor 9', '--shm-size=1g',
                 '--ipc=host', 'num_workers'):
        assert part in msg, part
    # 8 GPUs of one machine share it
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '8')
    with pytest.raises(resources.SharedMemoryError, match='x 8 processes'):
        resources.check_shared_memory(_loader(prefetch=2))
    # no workers: batches never go through shared memory
    assert resources.check_shared_memory(_loader(workers=0)) == {}


def test_measuring_a_sample_leaves_the_random_draws_alone():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    assert resources.measure_item(_Bytes()) == (1, 2**20)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want


def test_soft_open_file_limit_is_raised_to_the_hard_one():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, hard, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        assert resources.raise_open_file_limit() == (
            resource.getrlimit(resource.RLIMIT_NOFILE))
        got = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert got[1] == hard and (got[0] == hard or got[0] > low)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_train_loop_start_runs_the_checks(monkeypatch):
    from mmengine.runner import BaseLoop, Runner
    calls = []
    monkeypatch.setattr(resources, 'check_train_resources',
                        lambda loader, logger=None: calls.append(loader))

    class Loop(BaseLoop):
        def run(self):
            pass

    loop = object.__new__(Loop)
    loop.dataloader = 'the loader'
    runner = object.__new__(Runner)
    assert Runner.build_train_loop(runner, loop) is loop
    assert Runner.build_train_loop(runner, loop) is loop
    assert calls == ['the loader']  # once per loop


def test_prefetch_factor_is_dropped_without_workers():
    from mmengine.runner import Runner
    register_all_modules()
    loader = Runner.build_dataloader(dict(
        dataset=_Bytes(),
        sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2,
        num_workers=0, prefetch_factor=2,
        collate_fn=dict(type='mme_collate')))
    assert loader.num_workers == 0 and loader.prefetch_factor is None
    assert loader.collate_fn.func is mme_collate


# -- the recipe under the usual open-file limit -----------------------------

_ULIMIT_SCRIPT = textwrap.dedent('''
    import json, os, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    sys.path.insert(0, {repo!r})
    import torch
    import mme_plugin  # noqa
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mme_plugin')
    cfg = Config.fromfile(os.path.join({repo!r},
                          'configs/mme/pretrain_k400_dis_rep2.py'))
    loader = cfg.train_dataloader
    loader.num_workers = 2
    loader.dataset.ann_file = {ann!r}
    loader.dataset.data_prefix = dict(video={prefix!r})
    dl = Runner.build_dataloader(loader, seed=0)
    it = iter(dl)
    held = [next(it) for _ in range(2)]  # both alive at once
    print(json.dumps(dict(
        sizes=[b['inputs'].shape[0] for b in held],
        keys=sorted(held[0]['sample_fields']),
        limit=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        files=len(os.listdir('/proc/self/fd')))))
''')


@pytest.mark.slow
def test_k400_rep2_loader_yields_real_batches_under_ulimit_1024(tmp_path):
    """The recipe's loader (2 workers, its batch of 32 videos x 2 repeats)
    under ``ulimit -n 1024`` delivers two full batches held at once (with
    per-sample tensors, one batch held 768 open files: ``docs/
    benchmarks.md``)."""
    from mme_plugin.datasets.synthetic import render_clip
    from mme_plugin.io import write_video
    if not osp.isdir('/proc/self/fd'):
        pytest.skip('needs /proc/self/fd')
    folder = tmp_path / 'k400'
    folder.mkdir()
    for i in range(4):  # Kinetics-like clips, each listed 16 times
        clip, _ = render_clip(i, 96, (256, 340), seed=i)
        write_video(str(folder / f'v{i}.mp4'), clip, fps=30)
    (folder / 'list.txt').write_text(''.join(
        f'v{i % 4}.mp4 {i % 4}\n' for i in range(64)))
    script = _ULIMIT_SCRIPT.format(repo=REPO, ann=str(folder / 'list.txt'),
                                   prefix=str(folder))
    proc = subprocess.run(
        [sys.executable, '-c', script], cwd=REPO, capture_output=True,
        text=True, timeout=900,
        env=dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore'))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['limit'] == 1024
    assert out['sizes'] == [64, 64]  # 32 videos x 2 repeats each
    assert 'hog_frames' in out['keys'] and 'traj_target' in out['keys']
    assert out['files'] < 1024
