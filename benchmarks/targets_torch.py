"""CPU cost per clip of everything after the flow: NumPy worker path vs the
tensor implementation (issue #21).

NumPy path: ``ComputeTrajectories`` -> ``CheckTrajectoryReliability``
(defaults: forward-backward, photometric and shot-cut checks, grey frames
blurred with OpenCV) -> ``BuildMMETargets`` (trajectory targets only,
``with_hog=False``). Tensor path: ``gray_blur_torch`` +
``clip_targets_torch`` with the same settings, one clip at a time and all
clips in one batch. Inputs: frames of the built-in synthetic generator and
smooth synthetic forward flows (a rotation plus low-frequency noise; the
backward flow is its negative): the cost after the flow does not depend on
the flow's quality, and computing real flow would dominate the run.
Timed with one thread (``torch.set_num_threads(1)``, ``cv2.setNumThreads(1)``),
best of ``--repeats``.

Example:
    OMP_NUM_THREADS=1 python benchmarks/targets_torch.py --clips 4 \\
        --out work_dirs/benchmarks_targets_torch.json
"""
import argparse
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
from mme_plugin.datasets.transforms import (  # noqa: E402
    BuildMMETargets, CheckTrajectoryReliability, ComputeTrajectories)
from mme_plugin.ops import (clip_targets_torch, cut_pairs_torch,  # noqa
                            fb_failures_torch, gray_blur_torch,
                            grid_points_torch, photo_failures_torch,
                            track_points_torch, traj_targets_torch)


def make_clip(seed: int, tubes: int, steps: int, size: int):
    """Dense frames ``[N, L + 1, S, S, 3]`` and smooth flows."""
    rng = np.random.default_rng(seed)
    frames, _ = render_clip(seed % 8, tubes * (steps + 1), (size, size),
                            seed=seed)
    dense = frames.reshape(tubes, steps + 1, size, size, 3)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    om = 0.01 * (seed % 3 + 1)
    base = np.stack([-om * (ys - c), om * (xs - c)], -1)
    low = rng.normal(0, 1.5, (tubes, steps, 8, 8, 2)).astype(np.float32)
    noise = np.stack([cv2.resize(f, (size, size),
                                 interpolation=cv2.INTER_CUBIC)
                      for f in low.reshape(-1, 8, 8, 2)])
    flows = (base + noise.reshape(tubes, steps, size, size, 2)).astype(
        np.float32)
    return dict(dense_imgs=dense, flows=flows, flows_bwd=-flows)


def numpy_path(clip, grid_step, patch):
    res = dict(clip)
    res = ComputeTrajectories(grid_step)(res)
    res = CheckTrajectoryReliability()(res)
    return BuildMMETargets(patch_size=patch, with_hog=False,
                           min_valid_fraction=0.0)(res)


def torch_path(clips, grid_step, patch):
    dense = torch.from_numpy(np.stack([c['dense_imgs'] for c in clips]))
    flows = torch.from_numpy(np.stack([c['flows'] for c in clips]))
    bwd = torch.from_numpy(np.stack([c['flows_bwd'] for c in clips]))
    return clip_targets_torch(flows, grid_step, patch, flows_bwd=bwd,
                              grays=gray_blur_torch(dense, 1.0),
                              reliability={})


def torch_stages(clip, grid_step, patch, repeats):
    """ms of each stage of the tensor path on one clip."""
    dense = torch.from_numpy(clip['dense_imgs'])
    flows = torch.from_numpy(clip['flows'])
    bwd = torch.from_numpy(clip['flows_bwd'])
    h, w = dense.shape[2:4]
    start = grid_points_torch(h, w, grid_step)
    grays = gray_blur_torch(dense, 1.0)
    pos, valid, disp = track_points_torch(flows, start)
    stages = dict(
        grey_blur=lambda: gray_blur_torch(dense, 1.0),
        track=lambda: track_points_torch(flows, start),
        fb_check=lambda: fb_failures_torch(pos, bwd),
        photo_check=lambda: photo_failures_torch(grays, pos),
        cut_check=lambda: cut_pairs_torch(grays, flows),
        targets=lambda: traj_targets_torch(disp[None], valid[None],
                                           patch // grid_step))
    return {k: 1e3 * best(f, repeats) for k, f in stages.items()}


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clips', type=int, default=4)
    parser.add_argument('--tubes', type=int, default=8)
    parser.add_argument('--steps', type=int, default=4)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--grid-step', type=int, default=8)
    parser.add_argument('--patch', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    clips = [make_clip(s, args.tubes, args.steps, args.size)
             for s in range(args.clips)]
    g, p = args.grid_step, args.patch
    t_np = best(lambda: [numpy_path(c, g, p) for c in clips], args.repeats)
    t_one = best(lambda: [torch_path([c], g, p) for c in clips],
                 args.repeats)
    t_batch = best(lambda: torch_path(clips, g, p), args.repeats)
    # the two agree on these clips (the parity tests check it in detail)
    ref = numpy_path(clips[0], g, p)
    got = torch_path(clips[:1], g, p)
    agree = dict(
        token_valid=float((got['traj_valid'][0].numpy() ==
                           ref['traj_valid'].numpy()).mean()),
        target_max_abs_diff=float((got['traj_target'][0] -
                                   ref['traj_target']).abs().max()))
    rep = dict(
        machine=f'{platform.machine()} {platform.processor()}'.strip(),
        torch=torch.__version__, opencv=cv2.__version__,
        setup=vars(args),
        ms_per_clip=dict(numpy=1e3 * t_np / len(clips),
                         torch_one_by_one=1e3 * t_one / len(clips),
                         torch_batched=1e3 * t_batch / len(clips)),
        torch_stage_ms=torch_stages(clips[0], g, p, args.repeats),
        agreement=agree)
    print(f"{args.clips} clips of {args.tubes} tubes x {args.steps} steps, "
          f'{args.size} px, grid {g}, 1 thread: ms per clip')
    for k, v in rep['ms_per_clip'].items():
        print(f'  {k:18s} {v:8.1f}')
    print('  tensor path stages (one clip): ' + ', '.join(
        f'{k} {v:.1f}' for k, v in rep['torch_stage_ms'].items()))
    print(f'  agreement on clip 0: {agree}')
    if args.out:
        write_report(rep, args.out)
    return rep


if __name__ == '__main__':
    main()
