"""Which optical flow to trust on YOUR videos: a table per flow choice.

No ground truth exists for real footage, so this measures what can be
measured without it (``docs/benchmarks.md`` explains each column):

* ``ms/pair``: forward flow time per frame pair (and backward, which the
  forward-backward check needs), one thread;
* ``vs release``: mean distance (px) between the trajectory end points of
  this choice and of release-setting Farneback, L steps at the crop size:
  agreement with the release's targets, not accuracy;
* ``reliable``: fraction of in-frame points that
  ``CheckTrajectoryReliability`` keeps, and why the others were rejected
  (forward-backward, photometric, shot cut);
* ``round trip``: mean forward-backward error (px) of a step;
* ``warp err``: mean grey-level error of warping frame t + 1 onto frame t
  with the flow (lower = the flow explains the frames better);
* ``cuts``: fraction of frame pairs flagged as shot cuts.

The tool takes videos, not a config. Frames are resized to ``--size``
before the flow, as the device placement of the shipped recipes
(``pretrain_k400.py``, ``pretrain_ssv2.py``: ``model.target_generator``)
computes it on the cropped and resized frames, with the release's
Farneback in PyTorch, equal to ``farneback (release)`` here to float
rounding (``docs/benchmarks.md``); that row stands for them. The worker
placement (``pretrain_k400_worker.py`` and the DIS configs based on it)
computes the flow on the decoded frames.

Example:
    python tools/analysis/flow_report.py data/kinetics400/val/*.mp4 \
        --starts 4 --out work_dirs/flow_report.json
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)


def format_table(report: Dict[str, Dict[str, float]]) -> str:
    """The report as a fixed-width text table."""
    head = (f"{'flow':24s} {'ms/pair':>8s} {'bwd ms':>7s} "
            f"{'vs release':>10s} {'reliable':>8s} {'fb rej':>7s} "
            f"{'photo rej':>9s} {'cut rej':>7s} {'round trip':>10s} "
            f"{'warp err':>8s} {'cuts':>6s}")
    lines = [head, '-' * len(head)]
    for name, r in report.items():
        lines.append(
            f"{name:24s} {r['ms_per_pair']:8.1f} {r['bwd_ms_per_pair']:7.1f} "
            f"{r['vs_release_px']:8.2f}px {r['reliable']:8.1%} "
            f"{r['rejected_fb_check']:7.1%} {r['rejected_photo_check']:9.1%} "
            f"{r['rejected_shot_cut']:7.1%} {r['round_trip_px']:8.2f}px "
            f"{r['warp_error']:8.2f} {r['cut_pairs']:6.1%}")
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> Dict:
    """Entry point; returns the report."""
    from mme_plugin.evaluation.flow_quality import FLOW_CHOICES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('videos', nargs='+', help='video files')
    parser.add_argument('--flows', nargs='+', choices=list(FLOW_CHOICES),
                        default=list(FLOW_CHOICES), metavar='NAME',
                        help='flow choices to compare (default: all of '
                        f'{list(FLOW_CHOICES)})')
    parser.add_argument('--starts', type=int, default=4,
                        help='windows per video')
    parser.add_argument('--steps', type=int, default=4,
                        help='flow steps per window (trajectory length L)')
    parser.add_argument('--size', type=int, default=224,
                        help='frames are resized to SIZE x SIZE')
    parser.add_argument('--out', help='also write the report as JSON here')
    args = parser.parse_args(argv)
    missing = [v for v in args.videos if not osp.isfile(v)]
    if missing:
        raise SystemExit(f'no such video file(s): {missing}')
    import cv2
    cv2.setNumThreads(1)
    from mme_plugin.evaluation.flow_quality import flow_quality
    from mme_plugin.utils import register_all_modules
    register_all_modules()
    try:
        report = flow_quality(args.videos,
                              {k: FLOW_CHOICES[k] for k in args.flows},
                              args.starts, args.steps, args.size)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    print(f'{len(args.videos)} video(s), {args.starts} windows each, '
          f'L = {args.steps}, {args.size} x {args.size} px')
    print(format_table(report))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(videos=args.videos, steps=args.steps,
                           size=args.size, report=report), f, indent=1)
        print(f'wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
