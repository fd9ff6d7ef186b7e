"""Throughput of a config's train dataloader alone (no model).

Builds ``train_dataloader`` as the runner would (workers, collate) and times
``--batches`` batches after ``--warmup``; prints clips/s in total and per
worker. For a config whose model computes the motion targets (device
placement: ``PrepareMotionInputs`` + ``model.target_generator``, e.g.
``pretrain_k400.py``) the workers only decode, crop and resize: the
targets' cost is the model's and is not in this figure (see
``benchmarks/device_targets.py``).

Example:
    python tools/analysis/bench_dataloader.py configs/mme/pretrain_k400.py \
        --workers 8 --batch-size 16 --batches 20 \
        --cfg-options train_dataloader.dataset.ann_file=LIST
"""
import argparse
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmengine.config import DictAction  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Entry point.

    Args:
        argv (Sequence[str], optional): Arguments (default: ``sys.argv``).

    Returns:
        dict: ``clips_per_s``, ``per_worker``, ``workers``, ``batch_size``
        and ``device_targets`` (whether the model computes the targets).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--workers', type=int, default=None)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--batches', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. '
                        'train_dataloader.dataset.ann_file=LIST')
    args = parser.parse_args(argv)
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mme_plugin.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    loader_cfg = cfg.train_dataloader.copy()
    if args.workers is not None:
        loader_cfg.num_workers = args.workers
        loader_cfg.persistent_workers = args.workers > 0
    if args.batch_size is not None:
        loader_cfg.batch_size = args.batch_size
    loader = Runner.build_dataloader(loader_cfg, seed=0)

    def batches():
        epoch = 0
        while True:  # small lists: go on into the next epochs
            if hasattr(loader.sampler, 'set_epoch'):
                loader.sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    it = batches()
    for _ in range(args.warmup):
        next(it)
    clips = 0
    start = time.perf_counter()
    for _ in range(args.batches):
        batch = next(it)
        clips += len(batch['inputs'])
    took = time.perf_counter() - start
    workers = max(1, loader_cfg.num_workers)
    from mme_plugin.datasets.preflight import device_targets
    from mme_plugin.utils import effective_pipeline
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    device = device_targets(effective_pipeline(ds, log=False), cfg.model)
    print(f'{args.config}: {clips / took:.2f} clips/s with '
          f'{loader_cfg.num_workers} workers ({clips / took / workers:.2f} '
          f'per worker), batch {loader_cfg.batch_size}' +
          ('; the model computes the motion targets (device placement): '
           'not included' if device else ''))
    return dict(clips_per_s=clips / took, per_worker=clips / took / workers,
                workers=loader_cfg.num_workers,
                batch_size=loader_cfg.batch_size, device_targets=device)


if __name__ == '__main__':
    main()
