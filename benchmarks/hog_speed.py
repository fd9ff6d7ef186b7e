"""Cost of HOG along the trajectories, in a worker vs on the training device.

Times, per clip of the K400 recipe (8 tubes x 5 dense frames of 224 x 224,
28 x 28 points per frame):

* ``worker``: :class:`ComputeHOG` (NumPy/OpenCV) on one CPU thread, what a
  dataloader worker pays when the pipeline computes HOG;
* ``device``: :class:`PointHOG` (PyTorch) on ``--device`` for a batch of
  ``--batch`` clips, what the training step pays with
  :class:`PrepareHOGInputs` (the recipes' default), three ways:

  - ``maps`` (before 2026-12-04): 27-channel box-filtered cell maps at every
    pixel of every dense frame, then sampled at the points;
  - ``points``: histograms from the 9 x 9 pixel windows around the points
    only (:func:`~mme_plugin.ops.hog_at_frame_points`), every token;
  - ``points, masked only``: the same for the masked tokens (70 %), the
    only ones the loss reads (what the model does now);

and the peak memory of each call above what was allocated before it (CUDA:
``max_memory_allocated``; CPU: the rise of the process's peak resident
memory, ``VmHWM``, after returning freed heap to the OS; Linux only), and
checks that
all give the same histograms (max abs difference).

Example:
    python benchmarks/hog_speed.py --device cpu --batch 1
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
from mme_plugin.datasets.transforms import ComputeHOG  # noqa: E402
from mme_plugin.models import PointHOG  # noqa: E402
from mme_plugin.ops import grid_points, hog_cell_maps  # noqa: E402


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


def _reset_peak(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    elif osp.exists('/proc/self/clear_refs'):
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current resident size


def _status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0


def _trim() -> None:
    """Hand freed heap memory back to the OS (glibc), so that the next
    peak counts what the call itself allocates."""
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(fn, device: str, repeats: int):
    """``(ms per call, peak MiB above the start or None)`` of ``fn()``."""
    fn()  # warm-up
    sync(device)
    peak = None
    if device.startswith('cuda'):
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        sync(device)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    elif osp.exists('/proc/self/clear_refs'):
        _trim()
        base = _status_kib('VmRSS')
        _reset_peak(device)
        fn()
        peak = (_status_kib('VmHWM') - base) / 1024
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    ms = (time.perf_counter() - t0) / repeats * 1000
    return ms, peak


def maps_hog(frames, points, chunk: int = 64):
    """The former PointHOG path: per-pixel cell maps, then bilinear
    sampling (``grid_sample``) at the points; ``[F, P, 27]``."""
    f, h, w = frames.shape[:3]
    pts = points.reshape(f, 1, -1, 2)
    scale = pts.new_tensor([2.0 / (w - 1), 2.0 / (h - 1)])
    grid = pts * scale - 1
    out = []
    for s in range(0, f, chunk):
        maps = hog_cell_maps(frames[s:s + chunk])
        out.append(torch.nn.functional.grid_sample(
            maps, grid[s:s + chunk], mode='bilinear', padding_mode='border',
            align_corners=True)[:, :, 0].transpose(1, 2))
    return torch.cat(out)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=2,
                        help='clips per device call')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--mask-ratio', type=float, default=0.7)
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
    dev = args.device
    module = PointHOG(norm='none').to(dev)
    frames = torch.from_numpy(dense)[None].repeat(args.batch, 1, 1, 1, 1, 1)
    points = torch.from_numpy(pts)[None].repeat(args.batch, 1, 1, 1, 1, 1)
    frames, points = frames.to(dev), points.to(dev)
    per_frame = 196  # patches per frame
    masked = int(args.mask_ratio * per_frame)
    g = torch.Generator().manual_seed(0)
    token_idx = torch.stack([
        torch.cat([torch.randperm(per_frame, generator=g)[:masked].sort()[0]
                   + t * per_frame for t in range(8)])
        for _ in range(args.batch)
    ]).to(dev)

    def by_maps():
        return maps_hog(frames.flatten(0, 2), points.flatten(0, 2))

    def by_points():
        return module(frames, points, patch_size=16)

    def by_points_masked():
        return module(frames, points, patch_size=16, token_idx=token_idx)

    # agreement: the three ways and ComputeHOG (unnormalised: ComputeHOG's
    # l2 is compared through PointHOG's default in tests/test_hog.py)
    ref_t = torch.from_numpy(
        ComputeHOG(mode='trajectory', cell_size=8, channels='rgb',
                   norm='none')(dict(res))['hog'])  # [8, 5, 28, 28, 27]
    tokens = by_points()[:1].cpu()  # [1, 1568, 5 * 4 * 27]
    as_grid = tokens.reshape(8, 14, 14, 5, 2, 2, 27).permute(
        0, 3, 1, 4, 2, 5, 6).reshape(8, 5, 28, 28, 27)
    maps = by_maps()[:40].cpu().reshape(8, 5, 28, 28, 27)
    sel = by_points_masked()[:1].cpu()
    diffs = dict(
        points_vs_worker=float((as_grid - ref_t).abs().max()),
        maps_vs_worker=float((maps - ref_t).abs().max()),
        masked_vs_points=float(
            (sel[0] - tokens[0, token_idx[0].cpu()]).abs().max()))
    runs = {}
    for name, fn in (('maps (before)', by_maps), ('points', by_points),
                     ('points, masked only', by_points_masked)):
        ms, peak = measure(fn, dev, args.repeats)
        runs[name] = dict(ms_per_clip=ms / args.batch, peak_mib=peak)
        print(f'{name}: {ms / args.batch:.0f} ms per clip, peak '
              f'{peak if peak is None else round(peak)} MiB per batch')
    report = dict(
        machine=f'{platform.machine()}, {os.cpu_count()} cores',
        device=(torch.cuda.get_device_name() if dev.startswith('cuda') else
                f'cpu ({torch.get_num_threads()} threads)'),
        torch=torch.__version__, batch=args.batch,
        mask_ratio=args.mask_ratio, worker_ms_per_clip=worker_ms,
        device_runs=runs, max_abs_diff=diffs,
        device_ms_per_clip=runs['points, masked only']['ms_per_clip'],
        device_peak_mib=runs['points, masked only']['peak_mib'])
    print(json.dumps(report, indent=1))
    write_report(report, args.out)


if __name__ == '__main__':
    main()
