"""Generate the built-in synthetic motion dataset (mp4 + annotation lists).

Example:
    python tools/data/make_synthetic.py data/synthetic --train 40 --val 10
"""
import argparse
import os.path as osp
import sys
import time
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mme_plugin.datasets.synthetic import (MOTION_CLASSES,  # noqa: E402
                                           make_synthetic_dataset)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='output directory')
    parser.add_argument('--train', type=int, default=40,
                        help='clips per class in train')
    parser.add_argument('--val', type=int, default=10,
                        help='clips per class in val')
    parser.add_argument('--frames', type=int, default=32)
    parser.add_argument('--size', type=int, nargs=2, default=[64, 64],
                        metavar=('H', 'W'))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()

    def progress(done: int, total: int) -> None:
        if done == total or done % 20 == 0:
            eta = (time.time() - start) / done * (total - done)
            print(f'\r[{done}/{total}] eta {eta:.0f}s', end='', flush=True)

    lists = make_synthetic_dataset(
        args.root, dict(train=args.train, val=args.val), args.frames,
        tuple(args.size), args.seed, progress=progress)
    print(f'\n{len(MOTION_CLASSES)} classes; wrote {", ".join(lists)} in '
          f'{time.time() - start:.1f}s')


if __name__ == '__main__':
    main()
