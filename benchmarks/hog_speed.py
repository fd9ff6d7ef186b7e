"""Cost of HOG along the trajectories, in a worker vs on the training device.

Times, per clip of the K400 recipe (8 tubes x 5 dense frames of 224 x 224,
28 x 28 points per frame):

* ``worker``: :class:`ComputeHOG` (NumPy/OpenCV) on one CPU thread, what a
  dataloader worker pays when the pipeline computes HOG;
* ``device``: :class:`PointHOG` (PyTorch) on ``--device`` for a batch of
  ``--batch`` clips, what the training step pays with
  :class:`PrepareHOGInputs` (the recipes' default), plus its peak memory on
  CUDA.

and checks that both give the same histograms (max abs difference).

Example:
    python benchmarks/hog_speed.py --device cpu --batch 2
    python benchmarks/hog_speed.py --device cuda --batch 64   # on a GPU
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from report import write_report  # noqa: E402 (this folder)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mme_plugin.datasets.synthetic import render_clip  # noqa: E402
from mme_plugin.datasets.transforms import ComputeHOG, grid_points  # noqa
from mme_plugin.models import PointHOG  # noqa: E402


def make_inputs(seed: int = 0):
    """Dense frames [8, 5, 224, 224, 3] and jittered points of one clip."""
    frames, _ = render_clip(seed % 8, 40, (224, 224), seed=seed)
    dense = np.stack(frames).reshape(8, 5, 224, 224, 3)
    rng = np.random.default_rng(seed)
    grid = grid_points(224, 224, 8)
    pts = grid + np.cumsum(rng.normal(0, 1, (8, 5, 28, 28, 2)), 1)
    return dense, pts.astype(np.float32)


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=2,
                        help='clips per device call')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', default='work_dirs/benchmarks_hog.json')
    args = parser.parse_args()
    cv2.setNumThreads(1)
    dense, pts = make_inputs()

    # worker: one thread
    torch.set_num_threads(1)
    hog_t = ComputeHOG(mode='trajectory', cell_size=8, channels='rgb')
    res = dict(dense_imgs=dense, traj_positions=pts)
    hog_t(dict(res))
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        ref = hog_t(dict(res))['hog']
    worker_ms = (time.perf_counter() - t0) / args.repeats * 1000

    # device: a batch of clips
    if args.device == 'cpu':
        torch.set_num_threads(os.cpu_count() or 1)
    module = PointHOG().to(args.device)
    frames = torch.from_numpy(dense)[None].repeat(args.batch, 1, 1, 1, 1, 1)
    points = torch.from_numpy(pts)[None].repeat(args.batch, 1, 1, 1, 1, 1)
    frames, points = frames.to(args.device), points.to(args.device)
    # per-point features in ComputeHOG's layout for the equality check
    out = module(frames[:1], points[:1], patch_size=16)
    got = out.reshape(8, 14, 14, 5, 2, 2, 27).permute(0, 3, 1, 4, 2, 5, 6)
    diff = float((got.reshape(8, 5, 28, 28, 27).cpu() -
                  torch.from_numpy(ref)).abs().max())
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    sync(args.device)
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        module(frames, points, patch_size=16)
    sync(args.device)
    device_ms = (time.perf_counter() - t0) / args.repeats * 1000
    peak = (torch.cuda.max_memory_allocated() / 2**20
            if args.device.startswith('cuda') else None)
    report = dict(
        machine=f'{platform.machine()}, {os.cpu_count()} cores',
        device=(torch.cuda.get_device_name() if args.device.startswith(
            'cuda') else f'cpu ({torch.get_num_threads()} threads)'),
        torch=torch.__version__, batch=args.batch,
        worker_ms_per_clip=worker_ms,
        device_ms_per_clip=device_ms / args.batch,
        device_peak_mib=peak, max_abs_diff=diff)
    print(json.dumps(report, indent=1))
    write_report(report, args.out)


if __name__ == '__main__':
    main()
