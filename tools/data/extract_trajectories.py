"""Fill the flow cache of a pretraining config for every video of its list.

MME's trajectories are tracked in the data pipeline from optical flow; this
tool precomputes the flow (the expensive part) of all consecutive frame pairs
of each video into the lossless cache read by ``ComputeFlow`` (see
``mme_plugin/datasets/transforms/flow.py``). It is resumable (valid entries
are skipped; stale ones, whose video changed, are recomputed), runs several
processes, prints progress with an ETA, and lists the videos it could not
read in ``<cache>/failed.txt`` (exit code 1 if any).

Only the worker placement reads a flow cache (``pretrain_k400_worker.py``
and the configs based on it): the device placement (``pretrain_k400.py``,
``pretrain_ssv2.py``: ``PrepareMotionInputs`` + ``model.target_generator``)
computes the flow on the model, on the cropped and resized frames, while a
cache holds the flows of the original frames; this tool refuses such a
config and names the worker one.

Example:
    python tools/data/extract_trajectories.py \
        configs/mme/pretrain_k400_worker.py \
        --cache-dir data/kinetics400/flow_cache --workers 16
    # then train with the cache:
    tools/dist_train.sh configs/mme/pretrain_k400_worker.py 8 --cfg-options \
        train_dataloader.dataset.pipeline_edits.ComputeFlow.cache_dir=\
data/kinetics400/flow_cache
"""
import argparse
import multiprocessing as mp
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import mme_plugin  # noqa: E402,F401
from mme_plugin.datasets.annotations import read_video_list  # noqa: E402
from mme_plugin.datasets.transforms import ComputeFlow  # noqa: E402

_WORKER: dict = {}


def _init(flow_cfg: dict) -> None:
    import cv2
    cv2.setNumThreads(1)
    _WORKER['t'] = ComputeFlow(**flow_cfg)


def _one(video: str) -> Tuple[str, str, Optional[str]]:
    """Process one video: returns (video, status, error)."""
    t = _WORKER['t']
    try:
        from mme_plugin.io import open_video
        reader = open_video(video)
        reason = t.check_cache(video, reader.num_frames)
        if reason is None:
            return video, 'skipped', None
        t.fill(video, reader=reader)
        return video, 'done', None
    except Exception as e:  # noqa: BLE001 - report and go on
        return video, 'failed', f'{type(e).__name__}: {e}'


def find_flow_cfg(cfg) -> Tuple[dict, str, str]:
    """The ``ComputeFlow`` settings, annotation file and video root."""
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:  # wrappers (RepeatDataset, ...)
        ds = ds.dataset
    from mme_plugin.utils import effective_pipeline
    pipeline = effective_pipeline(ds)
    flows = [t for t in pipeline
             if t['type'].split('.')[-1] == 'ComputeFlow']
    device = any(t['type'].split('.')[-1] == 'PrepareMotionInputs'
                 for t in pipeline)
    if not flows and device:
        raise SystemExit(
            f'{cfg.filename}: the model computes the motion targets '
            '(PrepareMotionInputs in the train pipeline, '
            'model.target_generator): it computes the flow on the training '
            'device from the cropped and resized frames, while a flow cache '
            'holds flows of the original frames, which only the worker '
            'placement reads. Nothing to precompute for this config; to '
            'train from a flow cache use the worker placement, e.g. '
            'configs/mme/pretrain_k400_worker.py (or a config based on it).')
    if not flows:
        raise SystemExit(f'{cfg.filename}: the train pipeline has no '
                         'ComputeFlow transform; nothing to precompute.')
    flow = dict(flows[0])
    flow.pop('type')
    root = ds.data_prefix.get('video', '')
    return flow, ds.ann_file, root


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point.

    Args:
        argv (Sequence[str], optional): Arguments (default: ``sys.argv``).

    Raises:
        SystemExit: A config without a flow cache (message), or code 1 when
            a video failed.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='pretraining config')
    parser.add_argument('--cache-dir', help='cache directory (default: the '
                        "config's ComputeFlow cache_dir)")
    parser.add_argument('--ann-file', help='override the annotation list')
    parser.add_argument('--data-root', help='override the video root')
    parser.add_argument('--workers', type=int, default=max(1, os.cpu_count()
                                                           or 1))
    parser.add_argument('--limit', type=int, default=None,
                        help='only the first N videos (for a trial run)')
    args = parser.parse_args(argv)

    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    flow_cfg, ann_file, root = find_flow_cfg(cfg)
    ann_file = args.ann_file or ann_file
    root = args.data_root or root
    flow_cfg['cache_dir'] = args.cache_dir or flow_cfg.get('cache_dir')
    if not flow_cfg['cache_dir']:
        raise SystemExit('no cache directory: pass --cache-dir or set '
                         'cache_dir of ComputeFlow in the config')
    flow_cfg.update(cache_mode='readwrite', data_root=root)
    videos = [osp.join(root, rel) for rel, _ in read_video_list(ann_file)]
    if args.limit:
        videos = videos[:args.limit]
    print(f'{len(videos)} videos from {ann_file}; cache '
          f"{flow_cfg['cache_dir']}; backend {flow_cfg.get('backend')}; "
          f'{args.workers} workers', flush=True)
    start = time.time()
    counts = {'done': 0, 'skipped': 0, 'failed': 0}
    failed = []
    ctx = mp.get_context('fork')
    with ctx.Pool(args.workers, initializer=_init,
                  initargs=(flow_cfg, )) as pool:
        for i, (video, status, err) in enumerate(
                pool.imap_unordered(_one, videos), 1):
            counts[status] += 1
            if err:
                failed.append(f'{video}\t{err}')
                print(f'\nFAILED {video}: {err}', flush=True)
            elapsed = time.time() - start
            eta = elapsed / i * (len(videos) - i)
            print(f'\r[{i}/{len(videos)}] done {counts["done"]} skipped '
                  f'{counts["skipped"]} failed {counts["failed"]} | '
                  f'{i / elapsed:.2f} videos/s | eta {eta:.0f}s', end='',
                  flush=True)
    print()
    if failed:
        path = osp.join(flow_cfg['cache_dir'], 'failed.txt')
        os.makedirs(flow_cfg['cache_dir'], exist_ok=True)
        with open(path, 'w') as f:
            f.write('\n'.join(failed) + '\n')
        print(f'{len(failed)} videos failed; list in {path}. Remove them '
              'from the annotation list or re-encode them.')
        sys.exit(1)


if __name__ == '__main__':
    main()
