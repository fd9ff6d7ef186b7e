"""Throughput of the MME pretraining data pipeline, per stage and flow.

Runs the train pipeline of ``configs/mme/pretrain_k400_worker.py`` (the K400
recipe with flow, trajectories and targets in the data workers, the worker
placement; 16 x 4 frames, L = 4, 224 x 224 crops) in ONE process with ONE
thread (what one dataloader worker gets) on generated 340 x 256 clips of
300 frames (K400's usual size and length, H.264 with x264's default
keyframe interval), and reports clips/s and the time of every transform,
for several flow backends and with a filled flow cache (HOG is left to the
model, as in the recipe, except in the row 'HOG in worker'). Then measures
how far each faster flow choice moves the trajectory end points, against
release-setting Farneback and against the known true motion of the
synthetic sprites. The device
placement of ``pretrain_k400.py`` (workers only decode and crop; the model
computes the targets) is measured by ``benchmarks/device_targets.py``.

Example:
    python benchmarks/data_pipeline.py --clips 4 \
        --out work_dirs/benchmarks_data.json
    # cost vs clip length, trajectory length L and crop size:
    python benchmarks/data_pipeline.py --clips 4 --scaling \
        --out work_dirs/benchmarks_data_scaling.json
    # the cost of the trajectory reliability checks:
    python benchmarks/data_pipeline.py --clips 4 --reliability \
        --out work_dirs/benchmarks_reliability.json
    # flow choices against release Farneback on your own videos (the full
    # table, with reliability, is tools/analysis/flow_report.py):
    python benchmarks/data_pipeline.py --agreement data/k400/val/*.mp4 \
        --out work_dirs/flow_agreement.json
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from report import write_report  # noqa: E402 (this folder)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mme_plugin.datasets.synthetic import render_clip  # noqa: E402
from mme_plugin.io import write_video  # noqa: E402
from mme_plugin.datasets.transforms import ComputeFlow  # noqa: E402
from mme_plugin.ops import grid_points, track_points  # noqa: E402
from mme_plugin.evaluation.flow_quality import FLOW_CHOICES  # noqa: E402
from mme_plugin.registry import TRANSFORMS  # noqa: E402
from mme_plugin.utils import register_all_modules  # noqa: E402

BACKENDS = FLOW_CHOICES


def make_videos(root: str, n: int, frames: int = 80) -> List[str]:
    """Write n synthetic 340 x 256 clips (motion classes in turn)."""
    paths = []
    for i in range(n):
        clip, _ = render_clip(i % 8, frames, (256, 340), seed=100 + i)
        path = osp.join(root, f'clip{i}.mp4')
        write_video(path, clip)
        paths.append(path)
    return paths


# (row name, backend, flow after crop/resize, cached, HOG in the worker)
RUNS = [
    ('farneback (release)', 'farneback (release)', False, False, False),
    ('farneback scale 0.5', 'farneback scale 0.5', False, False, False),
    ('dis medium', 'dis medium', False, False, False),
    ('dis fast', 'dis fast', False, False, False),
    ('dis fast scale 0.5', 'dis fast scale 0.5', False, False, False),
    ('dis fast, after crop/resize', 'dis fast', True, False, False),
    ('dis fast scale 0.5, after crop/resize', 'dis fast scale 0.5', True,
     False, False),
    ('dis ultrafast scale 0.5, after crop/resize (pretrain_k400_dis)',
     'dis ultrafast scale 0.5', True, False, False),
    ('farneback, cached', 'farneback (release)', False, True, False),
    ('farneback, cached, HOG in worker', 'farneback (release)', False, True,
     True),
]


def patched(cfg_pipeline: List[Dict], backend: Optional[Dict] = None,
            cache_dir: Optional[str] = None,
            hog_in_worker: bool = False) -> List[Dict]:
    """The recipe's pipeline config with another flow backend (None: the
    config's) and flow cache; with ``hog_in_worker`` HOG is computed in the
    pipeline (ComputeHOG) instead of by the model (PrepareHOGInputs, the
    recipe's default; ``PackMMEInputs`` packs whichever HOG keys exist)."""
    out = []
    for t in cfg_pipeline:
        t = dict(t)
        if t['type'] == 'ComputeFlow':
            t.update(cache_dir=cache_dir)
            if backend is not None:
                t.update(backend=backend)
        if hog_in_worker and t['type'] == 'PrepareHOGInputs':
            t = dict(type='ComputeHOG', mode='trajectory', cell_size=8,
                     channels='rgb')
        out.append(t)
    return out


def reliability_variant(cfg_pipeline: List[Dict], checks: bool,
                        backward: bool) -> List[Dict]:
    """The pipeline with (``checks``) or without
    ``CheckTrajectoryReliability``, its forward-backward check and the
    backward flow on when ``backward``."""
    out = []
    for t in cfg_pipeline:
        t = dict(t)
        if t['type'] == 'ComputeFlow':
            t['backward'] = backward
        if t['type'] == 'CheckTrajectoryReliability':
            if not checks:
                continue
            t['fb_check'] = backward
        out.append(t)
    return out


def reliability_cost(k400: List[Dict], dis: List[Dict], videos: List[str],
                     root: str, cache: str) -> Dict[str, Dict[str, float]]:
    """Samples/s (1 worker) with 1, 2 and 4 samples per decoded video, and
    the check's ms per clip, with and without the reliability checks."""
    rows = {
        'dis ultrafast 0.5 (pretrain_k400_dis), no checks':
            reliability_variant(dis, False, False),
        'dis ultrafast 0.5 (pretrain_k400_dis), all checks (default)':
            reliability_variant(dis, True, True),
        'farneback cached (pretrain_k400_worker), no checks':
            reliability_variant(patched(k400, cache_dir=cache), False,
                                False),
        'farneback cached (pretrain_k400_worker), photometric + cut '
        '(default)':
            reliability_variant(patched(k400, cache_dir=cache), True, False),
        'farneback cached (pretrain_k400_worker), all checks (backward '
        'cached)':
            reliability_variant(patched(k400, cache_dir=cache), True, True),
    }
    out = {}
    for name, pipe in rows.items():
        single = time_pipeline([TRANSFORMS.build(t) for t in pipe], videos)
        out[name] = dict(
            check_ms=single['ms_per_clip'].get('CheckTrajectoryReliability',
                                               0.0),
            flow_ms=single['ms_per_clip']['ComputeFlow'],
            samples_per_s_1=single['clips_per_s'],
            **{f'samples_per_s_{n}': time_repeats(pipe, videos, root,
                                                  n)['clips_per_s']
               for n in (2, 4)})
        r = out[name]
        print(f"{name:64s} {r['samples_per_s_1']:.2f} | "
              f"{r['samples_per_s_2']:.2f} | {r['samples_per_s_4']:.2f} "
              f"samples/s (1 | 2 | 4 per video); flow {r['flow_ms']:.0f} ms, "
              f"check {r['check_ms']:.0f} ms per clip", flush=True)
    return out


def build(cfg_pipeline: List[Dict], backend: Dict, cache_dir=None,
          hog_in_worker: bool = False):
    """Transforms of :func:`patched`."""
    return [TRANSFORMS.build(t) for t in patched(cfg_pipeline, backend,
                                                 cache_dir, hog_in_worker)]


def time_pipeline(steps, videos: List[str], repeats: int = 2) -> Dict:
    np.random.seed(0)  # the same offsets, crops and masks in every row
    per_stage: Dict[str, float] = {}
    n = 0
    start = time.perf_counter()
    for _ in range(repeats):
        for v in videos:
            r = dict(filename=v, label=0, start_index=0, modality='RGB')
            for s in steps:
                t0 = time.perf_counter()
                r = s(r)
                name = type(s).__name__
                per_stage[name] = per_stage.get(name, 0) + time.perf_counter(
                ) - t0
            n += 1
    total = time.perf_counter() - start
    return dict(clips_per_s=n / total,
                ms_per_clip={k: 1000 * v / n for k, v in per_stage.items()})


def time_repeats(pipeline: List[Dict], videos: List[str], root: str,
                 num_repeats: int, passes: int = 2) -> Dict:
    """Samples/s of ``RepeatAugVideoDataset`` (one decoding pass per video
    for ``num_repeats`` samples)."""
    from mme_plugin.datasets import RepeatAugVideoDataset
    ann = osp.join(root, f'repeat_list_{num_repeats}.txt')
    with open(ann, 'w') as f:
        f.writelines(f'{osp.basename(v)} 0\n' for v in videos)
    ds = RepeatAugVideoDataset(ann_file=ann, data_prefix=dict(video=root),
                               pipeline=pipeline, num_repeats=num_repeats)
    np.random.seed(0)
    n = 0
    start = time.perf_counter()
    for _ in range(passes):
        for i in range(len(videos)):
            n += len(ds.prepare_data(i))
    return dict(clips_per_s=n / (time.perf_counter() - start))


def flow_accuracy(n_clips: int = 8) -> Dict[str, Dict[str, float]]:
    """Trajectory end-point error (px, L = 4, flow of 224 x 224 frames)
    of each backend vs release Farneback and vs the true sprite motion."""
    register_all_modules()
    errors: Dict[str, Dict[str, List[float]]] = {}
    for c in range(n_clips):
        frames, info = render_clip(c % 8, 5, (224, 224), seed=200 + c)
        # true positions: the sprite's affine motion, for points on it
        grid = grid_points(224, 224, 8).reshape(-1, 2)
        a0 = np.vstack([info['affine'][0], [0, 0, 1]])
        a4 = np.vstack([info['affine'][4], [0, 0, 1]])
        rel = a4 @ np.linalg.inv(a0)
        true_end = (rel[:2, :2] @ grid.T).T + rel[:2, 2]
        cx, cy = info['center']
        on_sprite = np.hypot(grid[:, 0] - cx, grid[:, 1] - cy) < \
            info['side'] * 0.35
        results = {}
        for name, cfg in BACKENDS.items():
            backend = TRANSFORMS.build(dict(type='ComputeFlow',
                                            backend=cfg)).backend
            flows = np.stack([backend(frames[t], frames[t + 1])
                              for t in range(4)])
            pos, _ = track_points(flows, grid)
            results[name] = pos[-1]
        ref = results['farneback (release)']
        for name, end in results.items():
            e = errors.setdefault(name, {'vs_release': [], 'vs_truth': []})
            e['vs_release'].append(
                float(np.linalg.norm(end - ref, axis=-1).mean()))
            e['vs_truth'].append(float(np.linalg.norm(
                end[on_sprite] - true_end[on_sprite], axis=-1).mean()))
    return {k: {m: float(np.mean(v)) for m, v in d.items()}
            for k, d in errors.items()}


def flow_agreement(videos: List[str], starts: int = 4
                   ) -> Dict[str, Dict[str, float]]:
    """Trajectory end-point distance (px, L = 4, 224 x 224 frames) of each
    backend from release Farneback on YOUR videos, with the reliability
    measures of ``tools/analysis/flow_report.py`` (the same function)."""
    from mme_plugin.evaluation import flow_quality
    return flow_quality(videos, BACKENDS, starts=starts)


def scaled_pipeline(base: List[Dict], clip_len: int, traj_len: int,
                    size: int) -> List[Dict]:
    """``base`` with another clip length, trajectory length L and crop
    size."""
    out = []
    for t in base:
        t = dict(t)
        if t['type'] == 'MMESampleFrames':
            t.update(clip_len=clip_len, traj_len=traj_len)
        elif t['type'] == 'MotionMultiScaleCrop':
            t.update(input_size=size)
        elif t['type'] == 'MotionResize':
            t.update(scale=(size, size))
        out.append(t)
    return out


# (clip_len, L, size): vary one at a time around the recipe (16, 4, 224)
SCALING = [(16, 2, 224), (16, 4, 224), (16, 8, 224), (8, 4, 224),
           (32, 4, 224), (16, 4, 112), (16, 4, 160)]


def scaling(pipeline: List[Dict], clips: int, frames: int) -> List[Dict]:
    """Per-clip cost of ``pipeline`` over clip length, L and size."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        videos = make_videos(tmp, clips, frames=max(frames, 160))
        for clip_len, traj_len, size in SCALING:
            steps = [TRANSFORMS.build(t) for t in scaled_pipeline(
                pipeline, clip_len, traj_len, size)]
            r = time_pipeline(steps, videos)
            rows.append(dict(clip_len=clip_len, traj_len=traj_len, size=size,
                             dense_frames=clip_len // 2 * (traj_len + 1),
                             **r))
            print(f'{clip_len:3d} frames L={traj_len} {size}px: '
                  f"{r['clips_per_s']:.2f} clips/s", flush=True)
    return rows


def cache_check_cost(videos: List[str], cache: str, tag: str,
                     calls: int = 200) -> Dict[str, float]:
    """Milliseconds per :meth:`FlowCache.check` (stat, content fingerprint,
    metadata and ``.npy`` header: what every cached clip pays) and per
    fingerprint alone, averaged over ``calls`` calls per video."""
    from mme_plugin.io import FlowCache
    fc = FlowCache(cache)
    frames = {v: json.load(open(fc.paths(v, tag)[1]))['num_frames']
              for v in videos}
    out = {}
    for name, fn in (('check_ms', lambda v: fc.check(v, tag, frames[v])),
                     ('fingerprint_ms', fc.video_stamp)):
        t0 = time.perf_counter()
        for _ in range(calls):
            for v in videos:
                assert name != 'check_ms' or fn(v) is None
                fn(v)
        out[name] = (time.perf_counter() - t0) / (calls * len(videos)) * 1e3
    return out


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point.

    Args:
        argv (list[str], optional): Arguments (default: ``sys.argv``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clips', type=int, default=6)
    parser.add_argument('--out', default='work_dirs/benchmarks_data.json')
    parser.add_argument('--frames', type=int, default=300,
                        help="video length (K400's 10 s at 30 fps: 300)")
    parser.add_argument('--agreement', nargs='+', metavar='VIDEO',
                        help='only measure how far each flow choice moves '
                        'the trajectories from release Farneback on these '
                        'videos (e.g. a few of your dataset)')
    parser.add_argument('--scaling', action='store_true',
                        help='only the scaling runs (clip length, L, size) '
                        'of the fast-flow recipe')
    parser.add_argument('--reliability', action='store_true',
                        help='only the cost of the trajectory reliability '
                        'checks (backward flow, CheckTrajectoryReliability) '
                        'in the fast and the cached-Farneback recipes')
    parser.add_argument('--cache-check', action='store_true',
                        help='only the cost of the flow-cache entry check '
                        '(stale/corrupt detection) per cached clip')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    register_all_modules()
    from mmengine.config import Config
    from mme_plugin.utils import effective_pipeline
    # the worker placement: ComputeFlow ... BuildMMETargets in the pipeline
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/mme/pretrain_k400_worker.py'))
    pipeline = effective_pipeline(cfg.train_dataloader.dataset)
    # flow of the 224 x 224 crops: the fast-flow recipe's order
    after_resize = effective_pipeline(Config.fromfile(
        osp.join(ROOT, 'configs/mme/pretrain_k400_dis.py')
    ).train_dataloader.dataset)
    report: Dict = dict(machine=f'{platform.processor() or platform.machine()}'
                        f', {os.cpu_count()} cores, 1 thread used',
                        torch=torch.__version__, opencv=cv2.__version__,
                        pipeline='configs/mme/pretrain_k400_worker.py '
                        '(16x4, L=4, 224x224 from 340x256 clips of '
                        f'{args.frames} frames)', runs={})
    if args.agreement:
        report['agreement_px'] = flow_agreement(args.agreement)
        report['agreement_videos'] = args.agreement
        for k, v in report['agreement_px'].items():
            print(f"{k:24s} end points {v['vs_release_px']:.2f} px from "
                  f"release Farneback (L = 4, 224 px); {v['reliable']:.1%} "
                  'of the points reliable')
        write_report(report, args.out)
        return
    if args.scaling:
        report['pipeline'] = ('configs/mme/pretrain_k400_dis.py (DIS '
                              'ultrafast x 0.5 on the crops), 340x256 clips')
        report['scaling'] = scaling(after_resize, args.clips, args.frames)
        write_report(report, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        videos = make_videos(tmp, args.clips, frames=args.frames)
        cache = osp.join(tmp, 'cache')
        fill = ComputeFlow(backend=BACKENDS['farneback (release)'],
                           cache_dir=cache, cache_mode='readwrite',
                           backward=args.reliability)
        for v in videos:
            fill.fill(v)
        if args.reliability:
            report['reliability'] = reliability_cost(
                pipeline, after_resize, videos, tmp, cache)
            write_report(report, args.out)
            return
        if args.cache_check:
            report['cache_check'] = cache_check_cost(videos, cache,
                                                     fill.backend.tag)
            print('flow-cache entry check per clip: '
                  f"{report['cache_check']['check_ms']:.3f} ms (content "
                  'fingerprint alone '
                  f"{report['cache_check']['fingerprint_ms']:.3f} ms)")
            write_report(report, args.out)
            return
        # repeated sampling: 2 or 4 samples per decoding pass
        report['repeats'] = {}
        for name, pipe in (('dis ultrafast scale 0.5, after crop/resize '
                            '(pretrain_k400_dis)', after_resize),
                           ('farneback, cached', patched(
                               pipeline, cache_dir=cache))):
            report['repeats'][name] = {
                n: time_repeats(pipe, videos, tmp, n)['clips_per_s']
                for n in (2, 4)}
            print(f'{name:62s} 2 | 4 repeats: ' + ' | '.join(
                f'{v:.2f}' for v in report['repeats'][name].values()) +
                ' samples/s', flush=True)
        for name, backend, after, cached, hog_in_worker in RUNS:
            pipe = after_resize if after else pipeline
            report['runs'][name] = time_pipeline(
                build(pipe, BACKENDS[backend], cache if cached else None,
                      hog_in_worker), videos)
            print(f"{name:62s} {report['runs'][name]['clips_per_s']:.2f} "
                  'clips/s', flush=True)
    report['trajectory_error_px'] = flow_accuracy()
    for k, v in report['trajectory_error_px'].items():
        print(f"{k:24s} end-point error vs release {v['vs_release']:.2f} px, "
              f"vs truth {v['vs_truth']:.2f} px")
    write_report(report, args.out)


if __name__ == '__main__':
    main()
