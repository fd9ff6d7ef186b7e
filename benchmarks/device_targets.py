"""The two placements of MME's motion targets, measured (issue #21).

* **CPU cost per clip** of each placement of the K400 recipe, one thread
  (what a dataloader worker gets), on generated 340 x 256 H.264 clips:
  the worker placement (``configs/mme/pretrain_k400_worker.py``: decode,
  OpenCV Farneback on the decoded frames, tracking, checks, targets in the
  worker), and the device placement (``configs/mme/pretrain_k400.py``): the
  worker's part (decode, crop, resize) and the model's
  ``MotionTargetGenerator`` run on the CPU (what the GPU does instead).
* **FLOPs** of the device placement per clip (every tensor operation the
  generator runs, counted by a dispatch mode: 2 M N K for a matrix
  product, one per output element for everything else) against a ViT-B MME
  training step (the same count of the model's forward, times 3 for
  forward + backward), giving the share of a step the targets take; and
  the **memory** (peak RSS growth of a fresh process, CPU) of the generator
  on batches of 1 and 2 clips, from which the per-batch size is estimated.
* **Agreement** of the device placement's targets with the worker
  placement's on the same crops: with the same PyTorch Farneback in the
  worker (the parity the tests check), with OpenCV's Farneback on the crops
  (the kernels' difference), and with the worker placement as shipped
  (OpenCV Farneback on the decoded frames, then cropped and resized: the
  placements' difference); token validity agreement, target differences on
  tokens valid in both, tracked end-point distances; ``release_compat`` off
  and on.

Example:
    OMP_NUM_THREADS=1 python benchmarks/device_targets.py --clips 3 \\
        --out work_dirs/benchmarks_device_targets.json
"""
import argparse
import json
import os
import os.path as osp
import platform
import random
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from mme_plugin.utils import register_all_modules  # noqa: E402

#: Ops that only reinterpret or move memory: no arithmetic, no FLOPs.
NO_ARITHMETIC = {
    'view', '_unsafe_view', 'slice', 'select', 'expand', 'permute',
    'transpose', 't', 'unsqueeze', 'squeeze', 'as_strided', 'alias',
    'detach', 'unbind', 'split', 'split_with_sizes', 'narrow', 'clone',
    'copy_', '_to_copy', 'index_select', 'gather', 'cat', 'stack',
    'constant_pad_nd', 'reflection_pad1d', 'reflection_pad2d',
    'replication_pad2d', 'empty', 'empty_like', 'zeros', 'zeros_like',
    'ones', 'ones_like', 'full', 'full_like', 'fill_', 'new_zeros',
    'new_empty', 'lift_fresh', 'arange', 'repeat', 'contiguous',
    'index', 'lift_fresh_copy', 'masked_fill', 'where'}


class FlopCounter(TorchDispatchMode):
    """Counts the floating-point operations of every dispatched op: 2 M N K
    for matrix products and attention, 2 per multiply-add of a
    convolution, one per output element for other arithmetic (elementwise
    ops, reductions), none for ops that only move memory
    (:data:`NO_ARITHMETIC`). An estimate, the same rule for the targets and
    the model."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.by_op: Dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.__name__.split('.')[0]
        n = 0
        if name in ('mm', 'addmm'):
            a, b = args[-2], args[-1]
            n = 2 * a.shape[0] * a.shape[1] * b.shape[1]
        elif name in ('bmm', 'baddbmm'):
            a, b = args[-2], args[-1]
            n = 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        elif name.startswith('_scaled_dot_product'):
            q, k = args[0], args[1]
            n = 4 * q.numel() * k.shape[-2]
        elif name == 'convolution':
            w = args[1]
            n = 2 * out.numel() * w[0].numel()
        elif name not in NO_ARITHMETIC:
            for o in (out if isinstance(out, (tuple, list)) else (out, )):
                if isinstance(o, torch.Tensor) and o.is_floating_point():
                    n += o.numel()
        self.flops += n
        self.by_op[name] = self.by_op.get(name, 0) + n
        return out


def make_videos(root: str, n: int, frames: int = 80) -> List[str]:
    """n generated 340 x 256 clips (motion classes in turn)."""
    from mme_plugin.datasets.synthetic import render_clip
    from mme_plugin.io import write_video
    paths = []
    for i in range(n):
        clip, _ = render_clip(i % 8, frames, (256, 340), seed=300 + i)
        path = osp.join(root, f'clip{i}.mp4')
        write_video(path, clip)
        paths.append(path)
    return paths


def pipeline(config: str, edit=None):
    from mmengine.config import Config
    from mmengine.dataset import Compose

    from mme_plugin.utils import effective_pipeline
    cfg = Config.fromfile(osp.join(ROOT, 'configs/mme', config))
    steps = effective_pipeline(cfg.train_dataloader.dataset)
    if edit:
        steps = edit(steps)
    return Compose(steps), cfg


def _load(path: str) -> Dict:
    return dict(filename=path, label=0, start_index=0, modality='RGB')


def _generator(cfg, **override):
    from mme_plugin.registry import MODELS
    model_cfg = cfg.model
    gen_cfg = dict(model_cfg.target_generator, **override)
    gen = MODELS.build(gen_cfg)

    class _Bb:
        patch_size = model_cfg.backbone.get('patch_size', 16)

    targets = {n: MODELS.build(t) for n, t in model_cfg.targets.items()}
    gen.setup(_Bb(), targets)
    return gen


def cost_rows(videos: List[str], repeats: int) -> Dict:
    """Seconds per clip of each placement, one thread."""
    worker, _ = pipeline('pretrain_k400_worker.py')
    device, cfg = pipeline('pretrain_k400.py')
    gen = _generator(cfg)

    def per_clip(pipe) -> float:
        best = float('inf')
        for _ in range(repeats):
            t0 = time.perf_counter()
            for v in videos:
                pipe(_load(v))
            best = min(best, (time.perf_counter() - t0) / len(videos))
        return best

    w = per_clip(worker)
    d = per_clip(device)
    frames = torch.stack([device(_load(v))['data_samples'].motion_frames
                          for v in videos])
    gen_one = gen_all = float('inf')
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(len(videos)):
            gen.compute(frames[i:i + 1])
        gen_one = min(gen_one, (time.perf_counter() - t0) / len(videos))
        t0 = time.perf_counter()
        gen.compute(frames)
        gen_all = min(gen_all, (time.perf_counter() - t0) / len(videos))
    return {
        'worker placement (pretrain_k400_worker): worker, s/clip': w,
        'worker placement: clips/s per worker': 1 / w,
        'device placement (pretrain_k400): worker (decode, crop, resize), '
        's/clip': d,
        'device placement: clips/s per worker': 1 / d,
        'device placement: model part on this CPU, 1 clip per call, '
        's/clip': gen_one,
        f'device placement: model part on this CPU, {len(videos)} clips per '
        'call, s/clip': gen_all,
    }


def flop_rows() -> Dict:
    """GFLOPs of the generator per clip and of a ViT-B MME step."""
    from mmengine.config import Config

    from mme_plugin.datasets.synthetic import render_clip
    from mme_plugin.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs/mme/pretrain_k400.py'))
    gen = _generator(cfg)
    clip, _ = render_clip(3, 40, (224, 224), seed=1)
    frames = torch.from_numpy(clip.reshape(1, 8, 5, 224, 224, 3))
    with FlopCounter() as fc:
        gen.compute(frames)
    gen_flops = fc.flops
    top = sorted(fc.by_op.items(), key=lambda kv: -kv[1])[:6]
    model = MODELS.build(cfg.model)
    model.eval()
    n = 1568
    vis = torch.sort(torch.randperm(n)[:round(n * 0.3)])[0][None]
    keep = torch.ones(n, dtype=torch.bool)
    keep[vis[0]] = False
    masked = torch.nonzero(keep)[:, 0][None]
    x = torch.randn(1, 3, 16, 224, 224)
    with torch.no_grad(), FlopCounter() as fc:
        model.decoder(model.extract_feat(x, visible_idx=vis),
                      visible_idx=vis, masked_idx=masked)
    step = 3 * fc.flops  # forward + backward (about 2x the forward)
    return {
        'device targets, GFLOPs per clip (224 px, 8 tubes x 4 steps)':
        gen_flops / 1e9,
        'ViT-B MME training step, GFLOPs per clip (3 x forward)': step / 1e9,
        'share of a step (targets / (targets + step))':
        gen_flops / (gen_flops + step),
        'largest generator ops (GFLOPs)':
        ', '.join(f'{k} {v / 1e9:.2f}' for k, v in top),
    }


def _memory_probe(batch: int, chunk: int) -> float:
    """Peak RSS growth (GiB) of the generator on ``batch`` clips, measured
    in a fresh process."""
    code = (
        'import resource, sys, torch; sys.path.insert(0, {root!r});'
        'sys.path.insert(0, {bench!r});'
        'from device_targets import _generator;'
        'from mmengine.config import Config;'
        'from mme_plugin.utils import register_all_modules;'
        'register_all_modules();'
        'from mme_plugin.datasets.synthetic import render_clip;'
        'cfg = Config.fromfile({cfg!r});'
        'gen = _generator(cfg, flow_chunk={chunk});'
        'c, _ = render_clip(3, 40, (224, 224), seed=1);'
        'f = torch.from_numpy(c.reshape(1, 8, 5, 224, 224, 3))'
        '.repeat({batch}, 1, 1, 1, 1, 1);'
        'gen.compute(f[:1, :1]);'
        'base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;'
        'gen.compute(f);'
        'peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;'
        'print((peak - base) / 2**20)'
    ).format(root=ROOT, bench=osp.join(ROOT, 'benchmarks'),
             cfg=osp.join(ROOT, 'configs/mme/pretrain_k400.py'), chunk=chunk,
             batch=batch)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def memory_rows() -> Dict:
    one = _memory_probe(1, 256)
    two = _memory_probe(2, 256)
    per_clip = max(two - one, 0.0)
    return {
        'generator peak RSS growth, 1 clip (GiB)': one,
        'generator peak RSS growth, 2 clips (GiB)': two,
        'estimated batch of 64, flow_chunk 256 (GiB): 1 clip + 63 x the '
        'second clip\'s growth': one + 63 * per_clip,
    }


def _agree(dev: Dict, ref: Dict) -> Dict:
    tv_d = dev['traj_valid'].numpy()
    tv_r = ref['traj_valid'].numpy()
    both = tv_d & tv_r
    diff = np.abs(dev['traj_target'].numpy() - ref['traj_target'].numpy())
    end = np.linalg.norm(dev['hog_points'].numpy()[:, -1] -
                         ref['hog_points'].numpy()[:, -1], axis=-1)
    d = diff[both] if both.any() else np.zeros(1)
    return dict(validity_agreement=float((tv_d == tv_r).mean()),
                target_diff_mean=float(d.mean()),
                target_diff_p95=float(np.percentile(d, 95)),
                target_diff_max=float(d.max()),
                endpoint_mean_px=float(end.mean()),
                endpoint_p95_px=float(np.percentile(end, 95)))


def agreement_rows(videos: List[str]) -> Dict:
    """Device vs worker placement targets on the same crops."""
    from mme_plugin.utils import transform_index

    def flow_after_resize(backend):
        def edit(steps):
            steps = [dict(s) for s in steps]
            i = transform_index(steps, 'ComputeFlow')
            flow = steps.pop(i)
            flow.update(backend=backend, cache_dir=None)
            j = transform_index(steps, 'MotionResize')
            steps.insert(j + 1, flow)
            return steps
        return edit

    variants = {
        'same PyTorch Farneback in the worker, on the crops':
        flow_after_resize(dict(type='TorchFarnebackFlow')),
        'OpenCV Farneback in the worker, on the crops':
        flow_after_resize(dict(type='FarnebackFlow')),
        'worker placement as shipped (OpenCV on the decoded frames, flow '
        'cropped and resized)': None,
    }
    rows = {}
    for rc in (False, True):
        def rc_edit(steps, rc=rc):
            steps = [dict(s) for s in steps]
            for name in ('ComputeTrajectories', 'CheckTrajectoryReliability',
                         'BuildMMETargets'):
                steps[transform_index(steps, name)]['release_compat'] = rc
            b = transform_index(steps, 'BuildMMETargets')
            steps[b].update(keep_positions=True, min_valid_fraction=0.0)
            return steps
        device, cfg = pipeline('pretrain_k400.py')
        gen = _generator(cfg, release_compat=rc, min_valid_fraction=0.0)
        for label, edit in variants.items():
            worker, _ = pipeline(
                'pretrain_k400_worker.py',
                (lambda s, e=edit: rc_edit(e(s) if e else s)))
            per = []
            for k, v in enumerate(videos):
                random.seed(k)
                np.random.seed(k)
                ref = worker(_load(v))['data_samples']
                random.seed(k)
                np.random.seed(k)
                frames = device(_load(v))['data_samples'].motion_frames
                assert torch.equal(frames, ref.hog_frames), 'crops differ'
                got = {k2: t[0] for k2, t in gen.compute(frames[None]).items()}
                per.append(_agree(got, {
                    'traj_valid': ref.traj_valid, 'traj_target':
                    ref.traj_target, 'hog_points': ref.hog_points}))
            rows[f'release_compat={rc}: {label}'] = {
                key: float(np.mean([p[key] for p in per])) if 'max' not in
                key else float(np.max([p[key] for p in per]))
                for key in per[0]}
    return rows


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clips', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=1)
    parser.add_argument('--skip', nargs='*', default=[],
                        choices=['cost', 'flops', 'memory', 'agreement'])
    parser.add_argument('--out', default='work_dirs/'
                        'benchmarks_device_targets.json')
    args = parser.parse_args(argv)
    register_all_modules()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    report = dict(
        date=time.strftime('%Y-%m-%d'),
        machine=f'{platform.machine()}, {os.cpu_count()} cores, 1 thread',
        torch=torch.__version__, opencv=cv2.__version__,
        command='OMP_NUM_THREADS=1 python benchmarks/device_targets.py '
        + ' '.join(argv if argv is not None else sys.argv[1:]))
    with tempfile.TemporaryDirectory() as root:
        videos = make_videos(root, args.clips)
        if 'cost' not in args.skip:
            report['cost'] = cost_rows(videos, args.repeats)
            print(json.dumps(report['cost'], indent=1), flush=True)
        if 'flops' not in args.skip:
            report['flops'] = flop_rows()
            print(json.dumps(report['flops'], indent=1), flush=True)
        if 'memory' not in args.skip:
            report['memory'] = memory_rows()
            print(json.dumps(report['memory'], indent=1), flush=True)
        if 'agreement' not in args.skip:
            report['agreement'] = agreement_rows(videos)
            print(json.dumps(report['agreement'], indent=1), flush=True)
    report['seconds'] = round(time.perf_counter() - t0, 1)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=1)
    print(f'wrote {args.out} ({report["seconds"]} s)')
    return report


if __name__ == '__main__':
    main()
