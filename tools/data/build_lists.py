"""Write mmaction annotation lists for K400, SSv2, UCF101 and HMDB51.

Reads the standard downloads (see ``mme_plugin/datasets/list_builders.py``)
and writes ``<out>/<list>.txt`` files as the finetune configs expect them.
With ``--check`` every listed video is opened and probed (first, middle, last
frame) in parallel with progress; unreadable or too-short videos are left
out of the lists and reported in ``<out>/bad_videos.txt`` instead of
crashing a training run later.

Examples:
    python tools/data/build_lists.py ucf101 \
        --split-dir data/ucf101/ucfTrainTestlist \
        --video-dir data/ucf101/videos --out data/ucf101 \
        --check --min-frames 61
    python tools/data/build_lists.py hmdb51 --split-dir \
        data/hmdb51/testTrainMulti_7030_splits --video-dir data/hmdb51/videos \
        --out data/hmdb51
    python tools/data/build_lists.py ssv2 --ann-dir data/sthv2/annotations \
        --video-dir data/sthv2/videos --out data/sthv2
    python tools/data/build_lists.py k400 \
        --ann-dir data/kinetics400/annotations \
        --train-dir data/kinetics400/videos_train \
        --val-dir data/kinetics400/videos_val --out data/kinetics400
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mme_plugin.datasets.list_builders import (hmdb51_lists,  # noqa: E402
                                               k400_lists, ssv2_lists,
                                               ucf101_lists, write_list)
from mme_plugin.datasets.video_check import check_videos  # noqa: E402


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset', choices=['k400', 'ssv2', 'ucf101',
                                            'hmdb51'])
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--ann-dir', help='k400 / ssv2 annotation folder')
    parser.add_argument('--split-dir', help='ucf101 / hmdb51 split folder')
    parser.add_argument('--video-dir', help='video root (ssv2/ucf/hmdb)')
    parser.add_argument('--train-dir', help='k400 train videos')
    parser.add_argument('--val-dir', help='k400 val videos')
    parser.add_argument('--check', action='store_true',
                        help='probe every video and drop bad ones')
    parser.add_argument('--min-frames', type=int, default=1)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    missing: list = []
    dropped: list = []
    if args.dataset == 'k400':
        lists = k400_lists(args.ann_dir, {'train': args.train_dir,
                                          'val': args.val_dir}, missing)
        roots = {'train': args.train_dir, 'val': args.val_dir}
    elif args.dataset == 'ssv2':
        lists = ssv2_lists(args.ann_dir, missing)
        roots = {'': args.video_dir}
    elif args.dataset == 'ucf101':
        lists = ucf101_lists(args.split_dir, dropped)
        roots = {'': args.video_dir}
    else:
        lists = hmdb51_lists(args.split_dir, dropped)
        roots = {'': args.video_dir}
    for line in dropped:
        print(f'dropped split line {line}')
    if dropped:
        print(f'{len(dropped)} split lines could not be used (listed above)')

    def root_of(name: str) -> str:
        for key, root in roots.items():
            if key and f'_{key}_' in name:
                return root
        return roots.get('', '')

    bad = {}
    if args.check:
        paths = sorted({osp.join(root_of(n), p) for n, es in lists.items()
                        if not n.endswith('classes') for p, _ in es})

        def progress(done: int, total: int, eta: float) -> None:
            if done == total or done % 50 == 0:
                print(f'\rchecked {done}/{total} videos, eta {eta:.0f}s',
                      end='', flush=True)

        bad = dict(check_videos(paths, args.min_frames, args.workers,
                                progress=progress))
        print()
    os.makedirs(args.out, exist_ok=True)
    for name, entries in lists.items():
        if name.endswith('classes'):
            with open(osp.join(args.out, f'{name}.txt'), 'w') as f:
                f.writelines(f'{c}\n' for c, _ in entries)
            continue
        kept = [(p, label) for p, label in entries
                if osp.join(root_of(name), p) not in bad]
        write_list(osp.join(args.out, f'{name}.txt'), kept)
        print(f'{name}.txt: {len(kept)} videos'
              + (f' ({len(entries) - len(kept)} bad, left out)'
                 if len(kept) != len(entries) else ''))
    if missing:
        print(f'{len(missing)} annotated clips have no video file (first: '
              f'{missing[:3]})')
    if bad:
        path = osp.join(args.out, 'bad_videos.txt')
        with open(path, 'w') as f:
            f.writelines(f'{p}\t{r}\n' for p, r in sorted(bad.items()))
        print(f'{len(bad)} bad videos listed in {path}')


if __name__ == '__main__':
    main()
