"""Agreement of the PyTorch Farneback kernel with OpenCV's, and speed.

Compares :func:`mme_plugin.ops.farneback_torch.farneback_flow` with
``cv2.calcOpticalFlowFarneback`` at the same parameters (default: the
release's, as ``FarnebackFlow``: 5 levels, pyramid 0.5, window 13, 10
iterations, poly_n 5, poly_sigma 1.1, box window; ``--params tutorial``:
3 levels, window 15, 3 iterations, poly_sigma 1.2; ``--gaussian`` adds
OpenCV's Gaussian window) on uint8 grey frames:

* known-answer motion of textured images (smoothed noise at three scales):
  sub-pixel and pixel translations, rotations and zooms about the centre,
  the second frame resampled from a larger texture with ``cv2.remap``, so
  the true flow is known at every pixel;
* consecutive frame pairs of generated sprite clips
  (:func:`mme_plugin.datasets.synthetic.render_clip`: textured sprites that
  move, rotate or scale over a textured background).

Each pair is run forward (frame 1 -> 2) and backward (2 -> 1). Reported per
case and direction: the end-point error (EPE) between the two flows, mean
and 95th percentile, for interior pixels (>= 16 px from the border) and
border pixels separately, and for the warps each method's mean interior EPE
against the true motion. Then both are timed on a batch of 16 pairs (ms per
pair, CPU, ``--threads`` threads: OpenCV one pair at a time, the kernel on
the batch at once).

Example:
    python benchmarks/farneback_agreement.py --size 224 \\
        --out work_dirs/benchmarks_farneback_agreement.json
"""
import argparse
import os.path as osp
import platform
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from report import write_report  # noqa: E402 (this folder)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mme_plugin.datasets.synthetic import render_clip  # noqa: E402
from mme_plugin.ops.farneback_torch import farneback_flow  # noqa: E402

#: Parameter sets: (pyr_scale, levels, winsize, iterations, poly_n, sigma).
PARAMS = {
    'release': (0.5, 5, 13, 10, 5, 1.1),
    'tutorial': (0.5, 3, 15, 3, 5, 1.2),
}
#: Known-answer warps: name -> (dx, dy, rotation degrees, zoom factor).
WARPS = {
    'shift 0.3 px': (0.3, -0.2, 0.0, 1.0),
    'shift 1.7 px': (1.7, 0.6, 0.0, 1.0),
    'shift 4.2 px': (-4.2, 1.3, 0.0, 1.0),
    'rotate 2 deg': (0.0, 0.0, 2.0, 1.0),
    'rotate 5 deg': (0.0, 0.0, -5.0, 1.0),
    'zoom 2 %': (0.0, 0.0, 0.0, 1.02),
    'zoom 5 %': (0.0, 0.0, 0.0, 0.95),
}
#: Sprite clips: (motion class index, seed); 3 consecutive pairs each.
CLIPS = ((0, 11), (4, 12), (6, 13))
BORDER = 16


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Natural-ish grey texture: smoothed noise at three scales (float)."""
    out = np.zeros((h, w))
    for sigma, amp in ((1.5, 25.0), (4.0, 35.0), (12.0, 45.0)):
        n = cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), sigma)
        out += amp * n / n.std()
    return np.clip(128 + out, 0, 255)


def warp_pair(rng: np.random.Generator, size: int, dx: float, dy: float,
              degrees: float, zoom: float
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two uint8 frames and the true forward and backward flows.

    The motion ``T(p) = c + zoom * R (p - c) + (dx, dy)`` (``c`` the frame
    centre) moves frame 1's pixel ``p`` to ``T(p)`` in frame 2; frame 2 is
    sampled from a texture 2 * pad larger, so no pixel comes from outside.
    """
    pad = 48
    base = texture(rng, size + 2 * pad, size + 2 * pad).astype(np.float32)
    c = (size - 1) / 2
    t = np.deg2rad(degrees)
    rot = zoom * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    p = np.stack([xs - c, ys - c], -1)
    fwd = p @ rot.T + (dx, dy) - p                     # T(p) - p
    inv = np.linalg.inv(rot)
    src = (p - (dx, dy)) @ inv.T                         # T^-1(p) - c
    bwd = src - p
    frame1 = base[pad:pad + size, pad:pad + size]
    maps = (src + c + pad).astype(np.float32)
    frame2 = cv2.remap(base, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR)
    q = (lambda a: np.clip(a, 0, 255).round().astype(np.uint8))
    return q(frame1), q(frame2), fwd.astype(np.float32), \
        bwd.astype(np.float32)


def clip_pairs(size: int) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """Consecutive grey frame pairs of generated sprite clips."""
    out = []
    for label, seed in CLIPS:
        frames, _ = render_clip(label, num_frames=4, size=(size, size),
                                seed=seed)
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        for i in range(3):
            out.append((f'sprite clip {label}/{seed}', grey[i], grey[i + 1]))
    return out


def epe(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel end-point distance of ``[..., H, W, 2]`` flows."""
    return np.linalg.norm(a.astype(np.float64) - b, axis=-1)


def split(err: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Interior (>= BORDER px from every edge) and border pixels."""
    mask = np.zeros(err.shape[-2:], bool)
    mask[BORDER:-BORDER, BORDER:-BORDER] = True
    return err[..., mask].ravel(), err[..., ~mask].ravel()


def stats(err: np.ndarray) -> Dict[str, float]:
    inner, border = split(err)
    return dict(interior_mean=float(inner.mean()),
                interior_p95=float(np.percentile(inner, 95)),
                border_mean=float(border.mean()),
                border_p95=float(np.percentile(border, 95)),
                max=float(err.max()))


def run_pairs(prevs: Sequence[np.ndarray], nexts: Sequence[np.ndarray],
              params: Tuple, gaussian: bool
              ) -> Tuple[np.ndarray, np.ndarray]:
    """OpenCV's flows (one by one) and the kernel's (one batch)."""
    flags = cv2.OPTFLOW_FARNEBACK_GAUSSIAN if gaussian else 0
    pyr, levels, win, iters, pn, ps = params
    ref = np.stack([cv2.calcOpticalFlowFarneback(a, b, None, pyr, levels,
                                                 win, iters, pn, ps, flags)
                    for a, b in zip(prevs, nexts)])
    mine = farneback_flow(torch.from_numpy(np.stack(prevs)),
                          torch.from_numpy(np.stack(nexts)), pyr, levels,
                          win, iters, pn, ps, gaussian).numpy()
    return ref, mine


def agreement(size: int, params: Tuple, gaussian: bool,
              seed: int) -> List[Dict]:
    """One row per case and direction."""
    rng = np.random.default_rng(seed)
    rows = []
    cases = []
    for name, (dx, dy, deg, zoom) in WARPS.items():
        f1, f2, fwd, bwd = warp_pair(rng, size, dx, dy, deg, zoom)
        cases.append((name, [f1], [f2], fwd[None], bwd[None]))
    by_clip: Dict[str, list] = {}
    for name, a, b in clip_pairs(size):
        by_clip.setdefault(name, []).append((a, b))
    for name, pairs in by_clip.items():
        cases.append((name, [a for a, _ in pairs], [b for _, b in pairs],
                      None, None))
    for name, f1, f2, fwd, bwd in cases:
        for direction, (a, b, truth) in (('fwd', (f1, f2, fwd)),
                                         ('bwd', (f2, f1, bwd))):
            ref, mine = run_pairs(a, b, params, gaussian)
            row = dict(case=name, direction=direction, pairs=len(a),
                       **stats(epe(mine, ref)))
            if truth is not None:
                row['truth_epe_torch'] = float(split(epe(mine, truth))[0]
                                               .mean())
                row['truth_epe_opencv'] = float(split(epe(ref, truth))[0]
                                                .mean())
            rows.append(row)
    return rows


def timing(size: int, params: Tuple, gaussian: bool, batch: int,
           repeats: int) -> Dict[str, float]:
    """ms per pair on ``batch`` pairs (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    f1, f2, _, _ = warp_pair(rng, size, 1.7, 0.6, 2.0, 1.02)
    prevs, nexts = [f1] * batch, [f2] * batch
    flags = cv2.OPTFLOW_FARNEBACK_GAUSSIAN if gaussian else 0
    pyr, levels, win, iters, pn, ps = params
    a = torch.from_numpy(np.stack(prevs))
    b = torch.from_numpy(np.stack(nexts))
    best_cv, best_t = float('inf'), float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        for p, n in zip(prevs, nexts):
            cv2.calcOpticalFlowFarneback(p, n, None, pyr, levels, win, iters,
                                         pn, ps, flags)
        best_cv = min(best_cv, time.perf_counter() - t)
        t = time.perf_counter()
        farneback_flow(a, b, pyr, levels, win, iters, pn, ps, gaussian)
        best_t = min(best_t, time.perf_counter() - t)
    return dict(opencv_ms_per_pair=best_cv / batch * 1e3,
                torch_ms_per_pair=best_t / batch * 1e3, batch=batch)


def table(rows: List[Dict]) -> str:
    out = ['| case | dir | interior mean | interior p95 | border mean | '
           'border p95 | max | vs truth: torch / OpenCV |',
           '|---|---|---|---|---|---|---|---|']
    for r in rows:
        truth = (f"{r['truth_epe_torch']:.3f} / {r['truth_epe_opencv']:.3f}"
                 if 'truth_epe_torch' in r else '-')
        out.append(f"| {r['case']} | {r['direction']} | "
                   f"{r['interior_mean']:.1e} | {r['interior_p95']:.1e} | "
                   f"{r['border_mean']:.1e} | {r['border_p95']:.1e} | "
                   f"{r['max']:.1e} | {truth} |")
    return '\n'.join(out)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--params', choices=sorted(PARAMS),
                        default='release')
    parser.add_argument('--gaussian', action='store_true',
                        help='OpenCV OPTFLOW_FARNEBACK_GAUSSIAN window')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batch', type=int, default=16,
                        help='pairs in the timing batch (0: no timing)')
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--out',
                        default='work_dirs/benchmarks_farneback_agreement'
                        '.json')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    params = PARAMS[args.params]
    start = time.perf_counter()
    rows = agreement(args.size, params, args.gaussian, args.seed)
    report = dict(
        machine=f'{platform.machine()}, {platform.processor() or "cpu"}',
        threads=args.threads, torch=torch.__version__,
        opencv=cv2.__version__, size=args.size, params=args.params,
        param_values=dict(zip(('pyr_scale', 'levels', 'winsize',
                               'iterations', 'poly_n', 'poly_sigma'),
                              params)),
        gaussian=args.gaussian, border_px=BORDER, rows=rows,
        worst=dict(interior_mean=max(r['interior_mean'] for r in rows),
                   interior_p95=max(r['interior_p95'] for r in rows),
                   border_mean=max(r['border_mean'] for r in rows),
                   border_p95=max(r['border_p95'] for r in rows)))
    if args.batch:
        report['timing'] = timing(args.size, params, args.gaussian,
                                  args.batch, args.repeats)
    report['seconds'] = time.perf_counter() - start
    print(table(rows))
    w = report['worst']
    print(f"worst case: interior mean {w['interior_mean']:.2e} px, p95 "
          f"{w['interior_p95']:.2e} px; border mean {w['border_mean']:.2e} "
          f"px, p95 {w['border_p95']:.2e} px")
    if 'timing' in report:
        t = report['timing']
        print(f"ms per pair (batch {t['batch']}, {args.threads} thread(s)): "
              f"OpenCV {t['opencv_ms_per_pair']:.1f}, torch "
              f"{t['torch_ms_per_pair']:.1f}")
    write_report(report, args.out)
    return report


if __name__ == '__main__':
    main()
