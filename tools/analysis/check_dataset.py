"""Scan a config's annotation lists and videos; report every problem at once.

For each split (train / val / test): parses the list (bad lines are reported
with file and line), then opens every video and decodes its first, middle
and last frame, and checks it has the frames one clip needs (derived from
the pipeline's sampler: ``DenseSampleFrames`` span, or
``clip_len x frame_interval``). Writes ``<out>`` (TSV: split, video, reason)
and exits 1 if anything is wrong.

Example:
    python tools/analysis/check_dataset.py configs/mme/pretrain_k400.py \
        --workers 16
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mme_plugin.datasets.annotations import (AnnotationError,  # noqa: E402
                                             read_video_list)
from mme_plugin.datasets.video_check import check_videos  # noqa: E402
from mme_plugin.utils import (check_path_options,  # noqa: E402
                              effective_pipeline)
from mmengine.config import DictAction  # noqa: E402


def min_frames(pipeline) -> int:
    """Frames one clip of this pipeline needs."""
    for t in pipeline:
        kind = t['type'].split('.')[-1]
        if kind == 'DenseSampleFrames':
            from mme_plugin.datasets.transforms import DenseSampleFrames
            args = {k: v for k, v in t.items() if k != 'type'}
            return DenseSampleFrames(**args).span
        if kind == 'SampleFrames':
            return (t['clip_len'] - 1) * t.get('frame_interval', 1) + 1
        if kind == 'UniformSample':
            return 1
    return 1


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--splits', nargs='+', default=['train', 'val',
                                                        'test'])
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--out', default='work_dirs/check_dataset.tsv')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    args = parser.parse_args()
    from mmengine.config import Config
    check_path_options(args.cfg_options)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    problems = []
    for split in args.splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        ds = loader.dataset
        while 'dataset' in ds:
            ds = ds.dataset
        root = ds.get('data_prefix', {}).get('video', '')
        try:
            entries = read_video_list(ds.ann_file)
        except (AnnotationError, FileNotFoundError) as e:
            problems.append((split, ds.ann_file, str(e)))
            print(f'[{split}] {e}')
            continue
        num_classes = ds.get('num_classes')
        if num_classes is not None:
            for line, (rel, label) in enumerate(entries, 1):
                if label >= num_classes:
                    problems.append((split, f'{ds.ann_file} entry {line}',
                                     f'label {label} outside [0, '
                                     f'{num_classes}) ({rel})'))
        need = min_frames(effective_pipeline(ds))
        paths = sorted({osp.join(root, rel) for rel, _ in entries})
        print(f'[{split}] {ds.ann_file}: {len(paths)} videos, each needs >= '
              f'{need} frames', flush=True)

        def progress(done: int, total: int, eta: float) -> None:
            if done == total or done % 100 == 0:
                print(f'\r  checked {done}/{total}, eta {eta:.0f}s', end='',
                      flush=True)

        bad = check_videos(paths, need, args.workers, progress=progress)
        print()
        problems += [(split, p, r) for p, r in bad]
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.writelines(f'{s}\t{p}\t{r}\n' for s, p, r in problems)
    if problems:
        for s, p, r in problems[:20]:
            print(f'  [{s}] {p}: {r}')
        print(f'{len(problems)} problems; full list in {args.out}')
        sys.exit(1)
    print('no problems found')


if __name__ == '__main__':
    main()
