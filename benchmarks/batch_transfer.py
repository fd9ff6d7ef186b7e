"""What one recipe batch costs to hand over: tensors, open files, copies.

For each pretraining recipe (default: ``pretrain_k400_dis_rep2.py``,
``pretrain_k400.py``, whose batch carries the cropped dense frames for the
model's target generator (device placement), and
``pretrain_k400_worker.py``, whose batch carries the targets and the HOG
inputs computed in the workers) on generated Kinetics-like videos
(340 x 256 H.264,
96 frames, as ``tests/recipe_driver.py``), a few real samples go through the
recipe's pipeline; a batch of the recipe's size is made of copies of them
(the samples are fixed-size, so counts and bytes are exact). Then, with the
old collate (mmengine's ``pseudo_collate``; ``repeat_pseudo_collate`` for
repeated sampling) and with ``mme_collate``:

* ``tensors``: tensors in the collated batch; a dataloader worker hands
  each to the main process as its own shared-memory file;
* ``open_files``: shared-memory files the main process holds for one
  received batch, measured (``/proc/self/fd``) with one worker process;
* ``bytes``: bytes of the batch's tensors;
* ``to_calls``: ``Tensor.to(device)`` calls of the model's data
  preprocessor for the batch (stock ``ActionDataPreprocessor`` for the old
  collate, ``MMEDataPreprocessor`` for the new): host-to-device copies on
  a GPU; with ``--device cuda`` also their time (``copy_ms``).

Prints a table and writes JSON.

Example:
    python benchmarks/batch_transfer.py --out work_dirs/batch_transfer.json
"""
import argparse
import copy
import datetime
import gc
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time
from typing import Any, Dict, List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from report import write_report  # noqa: E402 (this folder)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

import mme_plugin  # noqa: E402,F401
from mme_plugin.datasets.collate import mme_collate  # noqa: E402
from mme_plugin.datasets.synthetic import render_clip  # noqa: E402
from mme_plugin.io import write_video  # noqa: E402
from mme_plugin.registry import DATASETS, MODELS  # noqa: E402
from mme_plugin.utils.sync_counter import CopyCounter  # noqa: E402
from mme_plugin.utils.resources import tensor_stats  # noqa: E402

CONFIGS = ('configs/mme/pretrain_k400_dis_rep2.py',
           'configs/mme/pretrain_k400.py',
           'configs/mme/pretrain_k400_worker.py')


def make_videos(folder: str, num: int) -> str:
    """``num`` Kinetics-like clips and their list; returns the list."""
    os.makedirs(folder, exist_ok=True)
    lines = []
    for i in range(num):
        name = f'k400_{i}.mp4'
        clip, _ = render_clip(i % 8, 96, (256, 340), seed=i)
        write_video(osp.join(folder, name), clip, fps=30)
        lines.append(f'{name} {i % 8}\n')
    ann = osp.join(folder, 'list.txt')
    with open(ann, 'w') as f:
        f.writelines(lines)
    return ann


class _Items(Dataset):
    """Precomputed dataset items, served by index (for the worker test)."""

    def __init__(self, items: List[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


def _open_files() -> int:
    return len(os.listdir('/proc/self/fd'))


def measured_open_files(items: List[Any], collate) -> int:
    """Files the main process holds for one batch from one worker."""
    if not osp.isdir('/proc/self/fd'):
        return -1
    loader = DataLoader(_Items(items), batch_size=len(items), num_workers=1,
                        collate_fn=collate)
    it = iter(loader)
    batch = next(it)
    # collect unrelated garbage first: a file object it frees would
    # otherwise close between the two counts and be counted as the batch's
    gc.collect()
    with_batch = _open_files()
    del batch
    gc.collect()
    without = _open_files()
    del it, loader
    return with_batch - without


def preprocess(cfg: Config, kind: str, batch: dict, device: str) -> tuple:
    """Run the model's data preprocessor of ``kind`` on ``batch``; returns
    (``to`` calls, milliseconds)."""
    pre_cfg = copy.deepcopy(cfg.model.data_preprocessor)
    pre_cfg['type'] = ('ActionDataPreprocessor' if kind == 'old' else
                       'MMEDataPreprocessor')
    pre = MODELS.build(pre_cfg).to(device)
    if device.startswith('cuda') and kind == 'new':
        from torch.utils.data._utils.pin_memory import pin_memory
        batch = pin_memory(batch)
    with CopyCounter() as count:
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        pre(batch, training=True)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1000
    return count.calls, ms


def measure(config: str, ann: str, prefix: str, real: int,
            device: str) -> Dict[str, Any]:
    """Old and new collate of one recipe batch."""
    from mmengine.registry import init_default_scope
    init_default_scope('mme_plugin')
    cfg = Config.fromfile(osp.join(ROOT, config))
    loader = cfg.train_dataloader
    ds_cfg = copy.deepcopy(loader.dataset)
    ds_cfg.ann_file, ds_cfg.data_prefix = ann, dict(video=prefix)
    dataset = DATASETS.build(ds_cfg)
    t0 = time.perf_counter()
    real_items = [dataset[i % len(dataset)] for i in range(real)]
    seconds = time.perf_counter() - t0
    items = [copy.deepcopy(real_items[i % real])
             for i in range(loader.batch_size)]
    repeats = isinstance(items[0], list)
    old_collate = pseudo_collate
    if repeats:
        from mmaction.datasets import repeat_pseudo_collate
        old_collate = repeat_pseudo_collate
    samples = len(items) * (len(items[0]) if repeats else 1)
    row: Dict[str, Any] = dict(
        batch_items=len(items), batch_samples=samples,
        real_samples=real, pipeline_s_per_item=seconds / real,
        old_collate=old_collate.__name__)
    for kind, collate in (('old', old_collate), ('new', mme_collate)):
        batch = collate(copy.deepcopy(items))
        tensors, nbytes = tensor_stats(batch)
        calls, ms = preprocess(cfg, kind, batch, device)
        del batch
        row[kind] = dict(tensors=tensors, bytes=nbytes,
                         open_files=measured_open_files(items, collate),
                         to_calls=calls)
        if device.startswith('cuda'):
            row[kind]['copy_ms'] = ms
        gc.collect()
    return row


def table(report: Dict[str, Any]) -> str:
    """Markdown table of a report."""
    out = ['| recipe | batch (samples) | collate | tensors | open files '
           '(measured) | MiB | `.to(device)` calls |'
           + (' copy + preprocess ms |' if report['device'] != 'cpu'
              else ''), '|---|---|---|---|---|---|---|' +
           ('---|' if report['device'] != 'cpu' else '')]
    for name, r in report['configs'].items():
        for kind in ('old', 'new'):
            k = r[kind]
            label = r['old_collate'] if kind == 'old' else 'mme_collate'
            cells = [osp.basename(name), str(r['batch_samples']), label,
                     str(k['tensors']), str(k['open_files']),
                     f"{k['bytes'] / 2**20:.0f}", str(k['to_calls'])]
            if 'copy_ms' in k:
                cells.append(f"{k['copy_ms']:.1f}")
            out.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(out)


def main(argv=None) -> Dict[str, Any]:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', default=list(CONFIGS))
    parser.add_argument('--videos', type=int, default=1,
                        help='generated videos (and real samples) per '
                        'recipe')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default='work_dirs/batch_transfer.json')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        ann = make_videos(osp.join(tmp, 'k400'), args.videos)
        report: Dict[str, Any] = dict(
            date=datetime.date.today().isoformat(),
            machine=f'{platform.machine()}, {os.cpu_count()} cores',
            torch=torch.__version__, device=args.device,
            sharing_strategy=torch.multiprocessing.get_sharing_strategy(),
            configs={})
        for config in args.configs:
            report['configs'][config] = measure(
                config, ann, osp.join(tmp, 'k400'), args.videos, args.device)
            print(f'{config}: done', flush=True)
    print(table(report))
    print(json.dumps(report, indent=1))
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
