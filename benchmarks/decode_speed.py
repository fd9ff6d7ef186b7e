"""Decoding cost of one MME clip: offset in the video, keyframe interval,
decoder.

Opens a generated 340 x 256, 300-frame H.264 video (K400's size and length)
and decodes the 40 frames one clip of ``configs/mme/pretrain_k400.py``
needs (8 tubes x 5 dense frames; the 16 sparse frames are among them; the
worker placement, ``pretrain_k400_worker.py``, samples the same frames) at
several offsets, for several keyframe intervals (GOP), with decord and with
PyAV, on one thread.

Example:
    python benchmarks/decode_speed.py --out work_dirs/benchmarks_decode.json
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from report import write_report  # noqa: E402 (this folder)

import numpy as np  # noqa: E402

from mme_plugin.datasets.synthetic import render_clip  # noqa: E402
from mme_plugin.io import write_video  # noqa: E402
from mme_plugin.io.video import DecordReader, PyAVReader  # noqa: E402

OFFSETS = (0, 100, 200, 239)
GOPS = (None, 32, 16)  # None: x264's default (250)


def clip_indices(offset: int) -> list:
    """The unique frames of one 16 x 4, L = 4 clip starting at offset."""
    return sorted({offset + 8 * i + j for i in range(8) for j in range(5)})


def main(argv=None) -> None:
    """Entry point (``argv``: the arguments, default ``sys.argv``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', default='work_dirs/benchmarks_decode.json')
    args = parser.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    frames, _ = render_clip(0, 300, (256, 340), seed=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for gop in GOPS:
            path = osp.join(tmp, f'gop{gop}.mp4')
            write_video(path, frames, gop=gop)
            for offset in OFFSETS:
                row = dict(gop=gop or 250, offset=offset,
                           kib=osp.getsize(path) // 1024)
                for name, reader in (('decord', DecordReader),
                                     ('pyav', PyAVReader)):
                    reader(path).get_batch(clip_indices(offset))  # warm-up
                    t0 = time.perf_counter()
                    for _ in range(args.repeats):
                        reader(path).get_batch(clip_indices(offset))
                    row[f'{name}_ms'] = (time.perf_counter() -
                                         t0) / args.repeats * 1000
                rows.append(row)
                print(row, flush=True)
    report = dict(machine=f'{os.uname().machine}, {os.cpu_count()} cores, '
                  '1 decoder thread', decode=rows,
                  mean_decord_ms={str(g or 250): float(np.mean(
                      [r['decord_ms'] for r in rows
                       if r['gop'] == (g or 250)])) for g in GOPS})
    write_report(report, args.out)


if __name__ == '__main__':
    main()
