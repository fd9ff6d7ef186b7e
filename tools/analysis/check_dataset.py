"""Scan a config's annotation lists and videos; report every problem at once.

For each split (train / val / test): parses the list (bad lines are reported
with file and line), then opens every video and decodes its first, middle
and last frame, and checks it has the frames one clip needs (derived from
the pipeline's sampler: ``MMESampleFrames`` span, or
``clip_len x frame_interval``).

Pretraining splits (whose effective pipeline has ``BuildMMETargets``) are
also run through the config's own pipeline up to the targets, with its own
flow backend and reliability checks, on ``--spans`` fixed spans of every
video (start / middle / end for 3; :mod:`mme_plugin.datasets.preflight`).
Per span it measures the shot-cut density (fraction of dense frame pairs
``CheckTrajectoryReliability`` flags as cuts), the reliable-point fraction
(points still valid after its checks) and the motion (mean per-step
displacement of the valid points, px of the decoded video per frame). A
span on which a step raises (e.g. ``BuildMMETargets`` refusing a clip with
too few valid trajectories, as for a hard cut every few frames) would stop
training whenever it is sampled (or, where the dataset skips bad samples,
be replaced, counting against ``skip_bad_samples``' limit): a problem. A
span whose motion is below ``--min-motion`` (default: the config's
``BuildMMETargets.min_motion``) gives near-zero targets (a still image
repeated): a warning, which training also counts (the ``motionless``
monitor). The flow cache is read where it
has the video; otherwise flows are computed on the fly and nothing is
written. Every span's numbers go to ``<out>`` with ``_targets`` added
before the extension.

Configs whose model computes the targets (the device placement:
``PrepareMotionInputs`` in the pipeline, ``model.target_generator``; e.g.
``pretrain_k400.py``) are probed the same way: the pipeline runs up to
``PrepareMotionInputs``, then the model's target generator (built alone, on
the CPU) computes flow, checks and targets per span; the same columns. The
device placement does not stop on a clip with too few valid trajectories:
it makes it *unusable* (its tokens are excluded from the loss, the
``unusable`` monitor counts it); such a span is a problem (verdict
``unusable``) because it trains nothing. ``--min-motion`` defaults to
``model.target_generator.min_motion`` there.

Writes ``<out>`` (TSV: split, video, reason; warnings are prefixed
``warning:``) and exits 1 if anything would fail (warnings alone: exit 0).

Example:
    python tools/analysis/check_dataset.py configs/mme/pretrain_k400.py \
        --workers 16 --spans 3
"""
import argparse
import math
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mme_plugin.datasets.annotations import (AnnotationError,  # noqa: E402
                                             read_video_list)
from mme_plugin.datasets.preflight import (SpanReport,  # noqa: E402
                                           builds_targets, config_min_motion,
                                           device_targets, probe_videos)
from mme_plugin.datasets.video_check import check_videos  # noqa: E402
from mme_plugin.ops.motion_magnitude import DEFAULT_MIN_MOTION  # noqa: E402
from mme_plugin.utils import (check_path_options,  # noqa: E402
                              effective_pipeline)
from mmengine.config import DictAction  # noqa: E402

Row = Tuple[str, str, str]


def min_frames(pipeline) -> int:
    """Frames one clip of this pipeline needs."""
    for t in pipeline:
        kind = t['type'].split('.')[-1]
        if kind == 'MMESampleFrames':
            from mme_plugin.datasets.transforms import MMESampleFrames
            args = {k: v for k, v in t.items() if k != 'type'}
            return MMESampleFrames(**args).span
        if kind == 'SampleFrames':
            return (t['clip_len'] - 1) * t.get('frame_interval', 1) + 1
        if kind == 'UniformSample':
            return 1
    return 1


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--splits', nargs='+', default=['train', 'val',
                                                        'test'])
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--out', default='work_dirs/check_dataset.tsv')
    parser.add_argument(
        '--spans', type=int, default=3,
        help='pretraining configs: spans per video run through the pipeline '
        'up to the targets (start/middle/end for 3); 0 skips that check')
    parser.add_argument(
        '--min-motion', type=float, default=None,
        help='pretraining configs: a span whose valid points move less than '
        'this (mean px per frame of the decoded video) is reported as giving '
        'near-zero targets (default: the config\'s BuildMMETargets.'
        'min_motion or model.target_generator.min_motion, else '
        f'{DEFAULT_MIN_MOTION})')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def _span_name(r: SpanReport, num: int) -> str:
    return f'span {r.index + 1}/{num} (frames {r.frames[0]}-{r.frames[1]})'


def judge(path: str, reports: List[SpanReport],
          min_motion: float) -> Tuple[Optional[str], Optional[str]]:
    """Why a video would stop training, and why its targets are near zero
    (None when not), from its span reports; each names the spans and the
    first one's numbers."""
    num = len(reports)
    stop = [r for r in reports if r.error]
    unusable = [r for r in reports if not r.error and r.unusable]
    still = [r for r in reports
             if not r.error and not r.unusable and r.motion < min_motion]
    problem = warning = None
    found = []
    if stop:
        r = stop[0]
        found.append(f'would stop training in {len(stop)} of {num} spans, '
                     f'e.g. {_span_name(r, num)}: {r.numbers()}: {r.error}')
    if unusable:
        r = unusable[0]
        found.append(f'unusable (its tokens are excluded from the loss) in '
                     f'{len(unusable)} of {num} spans, e.g. '
                     f'{_span_name(r, num)}: {r.numbers()}: {r.unusable}')
    if found:
        problem = '; '.join(found)
    if still:
        r = min(still, key=lambda x: x.motion)
        warning = (f'warning: near-zero targets in {len(still)} of {num} '
                   f'spans (motion < --min-motion {min_motion} px/frame), '
                   f'e.g. {_span_name(r, num)}: {r.numbers()}')
    return problem, warning


def _median(values: List[float]) -> float:
    vals = sorted(v for v in values if not math.isnan(v))
    return vals[len(vals) // 2] if vals else float('nan')


def check_targets(split: str, ds, paths: List[str], args,
                  table: List[str], model_cfg: Optional[Dict] = None
                  ) -> Tuple[List[Row], List[Row]]:
    """Run the pretraining pipeline up to the targets on every video
    (device placement: then ``model_cfg``'s target generator).

    Returns:
        tuple: (problems, warnings) rows; the spans' numbers are appended
        to ``table`` (TSV lines).
    """
    pipeline = effective_pipeline(ds)
    model = model_cfg if device_targets(pipeline, model_cfg) else None
    min_motion = args.min_motion if args.min_motion is not None else \
        config_min_motion(pipeline, model)
    where = ('PrepareMotionInputs, then the model\'s target_generator '
             '(CPU)') if model else 'BuildMMETargets'
    print(f'[{split}] targets: {len(paths)} videos x {args.spans} spans '
          f'through the pipeline up to {where}', flush=True)

    def progress(done: int, total: int, eta: float) -> None:
        if done == total or done % 20 == 0:
            print(f'\r  probed {done}/{total}, eta {eta:.0f}s', end='',
                  flush=True)

    found: Dict[str, List[SpanReport]] = probe_videos(
        paths, pipeline, args.spans, args.workers, progress=progress,
        model_cfg=model)
    print()
    problems, warnings = [], []
    for path in sorted(found):
        reports = found[path]
        for r in reports:
            table.append('\t'.join([
                split, path, str(r.index + 1), f'{r.frames[0]}-{r.frames[1]}',
                f'{r.cut_density:.4f}', f'{r.reliable:.4f}',
                f'{r.motion:.4f}', 'stop' if r.error else
                'unusable' if r.unusable else
                'near-zero' if r.motion < min_motion else 'ok']))
        problem, warning = judge(path, reports, min_motion)
        if problem:
            problems.append((split, path, problem))
        if warning:
            warnings.append((split, path, warning))
    spans = [r for rs in found.values() for r in rs]
    print(f'[{split}] over {len(spans)} spans: median cut density '
          f'{_median([r.cut_density for r in spans]):.2f}, reliable points '
          f'{_median([r.reliable for r in spans]):.1%}, motion '
          f'{_median([r.motion for r in spans]):.3f} px/frame; '
          + (f'{len(problems)} videos stop training or are unusable (the '
             'model excludes their tokens from the loss)' if model else
             f'{len(problems)} videos would stop training (the pipeline '
             'refuses them; a dataset with skip_bad_samples replaces them, '
             'up to its limit)') +
          f', {len(warnings)} give near-zero targets', flush=True)
    return problems, warnings


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point.

    Args:
        argv (Sequence[str], optional): Arguments (default: ``sys.argv``).

    Raises:
        SystemExit: Code 1 when anything would fail.
    """
    args = parse_args(argv)
    from mmengine.config import Config
    check_path_options(args.cfg_options)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    problems: List[Row] = []
    warnings: List[Row] = []
    table: List[str] = []
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
        pipeline = effective_pipeline(ds)
        need = min_frames(pipeline)
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
        model_cfg = cfg.get('model')
        if args.spans > 0 and builds_targets(pipeline, model_cfg):
            unreadable = {p for p, _ in bad}
            stop, still = check_targets(
                split, ds, [p for p in paths if p not in unreadable], args,
                table, model_cfg)
            problems += stop
            warnings += still
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.writelines(f'{s}\t{p}\t{r}\n' for s, p, r in problems + warnings)
    if table:
        stem, ext = osp.splitext(args.out)
        targets_out = f'{stem}_targets{ext or ".tsv"}'
        with open(targets_out, 'w') as f:
            f.write('split\tvideo\tspan\tframes\tcut_density\treliable\t'
                    'motion_px\tverdict\n')
            f.writelines(line + '\n' for line in table)
        print(f'per-span target measures in {targets_out}')
    for s, p, r in warnings[:20]:
        print(f'  [{s}] {p}: {r}')
    if problems:
        for s, p, r in problems[:20]:
            print(f'  [{s}] {p}: {r}')
        print(f'{len(problems)} problems, {len(warnings)} warnings; full '
              f'list in {args.out}')
        sys.exit(1)
    if warnings:
        print(f'no problems found; {len(warnings)} warnings (near-zero '
              f'targets), listed in {args.out}')
        return
    print('no problems found')


if __name__ == '__main__':
    main()
