"""How well the trajectory reliability checks find bad trajectories.

Measured where the truth is known: clips of the built-in synthetic generator
(``mme_plugin/datasets/synthetic.py`` returns each sprite's exact motion and
coverage), rendered at ``--size`` pixels, 5 consecutive frames (L = 4).
For each flow backend the points of a 4-px grid are tracked; a point is
*bad* when its tracked end point is more than ``--bad-px`` from the true one
or when the sprite covers it (an occluded background point) at some step.
For each check (forward-backward, photometric, both) the report gives the
fraction of points rejected, the fraction of bad points rejected (recall),
the fraction of good points rejected (false rejections) and the mean true
end-point error of the kept points against all in-frame points.

Shot cuts: the statistics of ``CheckTrajectoryReliability``'s cut test on
consecutive pairs of one clip, and on pairs spliced from two different
clips, with the detection and false-alarm rates at the defaults.

These are synthetic sprites over static textured backgrounds, not footage:
run ``tools/analysis/flow_report.py`` on your own videos for the measures
that need no ground truth.

Example:
    python benchmarks/flow_reliability.py --clips 16 \\
        --out work_dirs/benchmarks_flow_reliability.json
"""
import argparse
import os
import os.path as osp
import platform
import sys
import time
from typing import Dict, List, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from report import write_report  # noqa: E402 (this folder)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mme_plugin.datasets.synthetic import render_clip  # noqa: E402
from mme_plugin.datasets.transforms import (  # noqa: E402
    CheckTrajectoryReliability, ComputeFlow, ComputeTrajectories)
from mme_plugin.ops import pair_cut_statistics  # noqa: E402
from mme_plugin.utils import register_all_modules  # noqa: E402

BACKENDS = {
    'farneback (release)': dict(type='FarnebackFlow'),
    'dis medium': dict(type='DISFlow', preset='medium'),
    'dis ultrafast scale 0.5': dict(type='DISFlow', preset='ultrafast',
                                    scale=0.5),
}
CHECKS = {
    'forward-backward': dict(fb_check=True, photo_check=False),
    'photometric': dict(fb_check=False, photo_check=True),
    'both (default)': dict(),
}
#: ``--sweep``: the settings the defaults were chosen among.
SWEEP = {
    'fb beta 0.5 (default)': dict(photo_check=False),
    'fb beta 0.1': dict(photo_check=False, fb_beta=0.1),
    'fb alpha 0.05 beta 0.1': dict(photo_check=False, fb_beta=0.1,
                                   fb_alpha=0.05),
    'photo 25': dict(fb_check=False, photo_threshold=25),
    'photo 15': dict(fb_check=False, photo_threshold=15),
    'photo 10 (default)': dict(fb_check=False),
    'photo 15, no blur': dict(fb_check=False, photo_threshold=15,
                              photo_sigma=0),
}


def truth(info: Dict, grid: np.ndarray, steps: int) -> Dict[str, np.ndarray]:
    """True end points, start on the sprite and occlusion of grid points
    over ``steps`` frames."""
    h, w = info['alpha'].shape[1:]
    ix = np.clip(np.round(grid[..., 0]).astype(int), 0, w - 1)
    iy = np.clip(np.round(grid[..., 1]).astype(int), 0, h - 1)
    on_sprite = info['alpha'][0][iy, ix] > 0.5
    mat = info['affine'][steps]
    moved = grid @ mat[:, :2].T + mat[:, 2]
    end = np.where(on_sprite[..., None], moved, grid)
    covered = np.zeros(on_sprite.shape, bool)
    for t in range(1, steps + 1):
        covered |= info['alpha'][t][iy, ix] > 0.5
    return dict(end=end, on_sprite=on_sprite, occluded=covered & ~on_sprite)


def tracked_vs_truth(
        res: Dict, info: Dict, steps: int
) -> Tuple[Dict, np.ndarray, np.ndarray, Dict, np.ndarray]:
    """Track the recipes' 4-px grid through ``res['flows']`` (one clip) as
    ``ComputeTrajectories`` does and compare its end points with the truth.

    Args:
        res (dict): Pipeline results with ``flows`` of one clip.
        info (dict): The generator's motion of that clip (``render_clip``).
        steps (int): Frame steps tracked.

    Returns:
        tuple: The tracked results, positions ``[steps + 1, h, w, 2]`` of
        the clip, its in-frame points, :func:`truth` at the grid and the
        end-point error (px) of every point.
    """
    res = ComputeTrajectories(grid_step=4)(res)
    pos = res['traj_positions'][0]
    inside = res['traj_point_valid'][0]
    gt = truth(info, pos[0], steps)
    err = np.linalg.norm(pos[-1] - gt['end'], axis=-1)
    return res, pos, inside, gt, err


def checks_vs_truth(clips: int, size: int, bad_px: float) -> Dict:
    """Part 1: per backend and check, rejection against ground truth."""
    out: Dict = {}
    steps = 4
    for name, cfg in BACKENDS.items():
        flow = ComputeFlow(backend=cfg, backward=True)
        stats: Dict[str, Dict[str, List]] = {
            c: dict(rejected=[], recall=[], recall_occluded=[],
                    false_rej=[], kept_err=[], all_err=[]) for c in CHECKS}
        t_fwd = t_bwd = 0.0
        occluded = points = 0
        for c in range(clips):
            frames, info = render_clip(c % 8, steps + 1, (size, size),
                                       seed=500 + c)
            res = dict(dense_imgs=frames[None])
            t0 = time.perf_counter()
            res['flows'] = flow._compute(res['dense_imgs'])
            t1 = time.perf_counter()
            res['flows_bwd'] = flow._compute(res['dense_imgs'], True)
            t_fwd += t1 - t0
            t_bwd += time.perf_counter() - t1
            res, _, inside, gt, err = tracked_vs_truth(res, info, steps)
            bad = (err > bad_px) | gt['occluded']
            occluded += int((gt['occluded'] & inside).sum())
            points += int(inside.sum())
            for check, kw in CHECKS.items():
                r = CheckTrajectoryReliability(cut_check=False, **kw)(
                    dict(res, traj_point_valid=inside[None].copy()))
                kept = r['traj_point_valid'][0]
                rej = inside & ~kept
                s = stats[check]
                s['rejected'].append(rej.sum() / max(1, inside.sum()))
                if (bad & inside).any():
                    s['recall'].append(rej[bad & inside].mean())
                if (gt['occluded'] & inside).any():
                    s['recall_occluded'].append(
                        rej[gt['occluded'] & inside].mean())
                s['false_rej'].append(rej[~bad & inside].mean())
                s['kept_err'].append(err[kept].mean() if kept.any() else 0)
                s['all_err'].append(err[inside].mean())
        out[name] = {c: {k: float(np.mean(v)) if v else float('nan')
                         for k, v in s.items()} for c, s in stats.items()}
        out[name]['occluded_points'] = occluded / max(1, points)
        out[name]['backward_flow_ms_per_pair'] = 1e3 * t_bwd / (clips * steps)
        out[name]['forward_flow_ms_per_pair'] = 1e3 * t_fwd / (clips * steps)
    return out


def cut_statistics(clips: int, size: int) -> Dict:
    """Part 2: the cut test on normal and spliced pairs."""
    check = CheckTrajectoryReliability()
    flow = ComputeFlow(backend=BACKENDS['farneback (release)'])
    rows: Dict[str, List[Dict]] = {'within a clip': [], 'across a splice': []}
    for c in range(clips):
        a, _ = render_clip(c % 8, 3, (size, size), seed=700 + c)
        b, _ = render_clip((c + 3) % 8, 3, (size, size), seed=900 + c)
        for kind, pair in (('within a clip', a[1:3]),
                           ('across a splice', np.stack([a[2], b[0]]))):
            f = flow._compute(pair[None])[0, 0]
            rows[kind].append(pair_cut_statistics(
                pair[0], pair[1], f, check.cut_warp_threshold))
    out = {}
    for kind, rs in rows.items():
        det = [r['warp_fail'] > check.cut_warp_fraction or (
            r['hist_distance'] > check.cut_hist_distance
            and r['warp_fail'] > check.cut_warp_fraction / 2) for r in rs]
        out[kind] = dict(
            flagged_as_cut=float(np.mean(det)),
            warp_fail_min=float(min(r['warp_fail'] for r in rs)),
            warp_fail_max=float(max(r['warp_fail'] for r in rs)),
            hist_distance_min=float(min(r['hist_distance'] for r in rs)),
            hist_distance_max=float(max(r['hist_distance'] for r in rs)))
    return out


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clips', type=int, default=16)
    parser.add_argument('--sizes', type=int, nargs='+', default=[224, 64])
    parser.add_argument('--bad-px', type=float, default=1.0,
                        help='a tracked end point further than this from '
                        'the truth is bad')
    parser.add_argument('--sweep', action='store_true',
                        help='compare the threshold settings the defaults '
                        'were chosen among instead of the three checks')
    parser.add_argument('--out',
                        default='work_dirs/benchmarks_flow_reliability.json')
    args = parser.parse_args()
    if args.sweep:
        CHECKS.clear()
        CHECKS.update(SWEEP)
    cv2.setNumThreads(1)
    register_all_modules()
    report: Dict = dict(
        machine=f'{platform.processor() or platform.machine()}, '
        f'{os.cpu_count()} cores, 1 OpenCV thread', opencv=cv2.__version__,
        data=f'{args.clips} synthetic clips per size, L = 4, 4-px grid; bad '
        f'= end point > {args.bad_px} px from the truth or occluded',
        checks={}, cuts={})
    for size in args.sizes:
        report['checks'][size] = checks_vs_truth(args.clips, size,
                                                 args.bad_px)
        for name, res in report['checks'][size].items():
            print(f"{size}px {name}: forward flow "
                  f"{res['forward_flow_ms_per_pair']:.1f} ms/pair, backward "
                  f"{res['backward_flow_ms_per_pair']:.1f} ms/pair; "
                  f"{res['occluded_points']:.1%} of the points get occluded")
            for check in CHECKS:
                r = res[check]
                print(f'  {check:18s} rejects {r["rejected"]:6.1%}; bad '
                      f'points rejected {r["recall"]:6.1%} (occluded '
                      f'{r["recall_occluded"]:6.1%}), good points '
                      f'rejected {r["false_rej"]:6.1%}; true error kept '
                      f'{r["kept_err"]:.2f} px vs all {r["all_err"]:.2f} px')
        report['cuts'][size] = cut_statistics(args.clips, size)
        for kind, r in report['cuts'][size].items():
            print(f'{size}px cut test, pairs {kind:16s}: flagged '
                  f"{r['flagged_as_cut']:6.1%} (warp fail "
                  f"{r['warp_fail_min']:.2f}-{r['warp_fail_max']:.2f}, "
                  f"histogram distance {r['hist_distance_min']:.2f}-"
                  f"{r['hist_distance_max']:.2f})")
    write_report(report, args.out)


if __name__ == '__main__':
    main()
