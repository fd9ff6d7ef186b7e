"""Forward+backward time and peak memory: MME (masked) vs mmaction's ViT.

Cases, all ViT-B/16 (``configs/mme/pretrain_k400_worker.py``: the K400
model with its targets given, as the worker placement hands them over;
the device placement's target computation is measured by
``benchmarks/device_targets.py``) unless scaled:

* ``stock``: mmaction ``VisionTransformer`` on all tokens (explicit softmax
  attention), forward + backward of the pooled feature;
* ``sdpa``: the same through ``MMEVisionTransformer`` (SDPA attention);
* ``mme_enc@r``: the masked encoder alone at mask ratio r;
* ``mme@r``: the whole MME model (encoder + decoder + heads + loss).

Each case runs in a fresh subprocess so peak memory is its own (CPU: peak
RSS growth; CUDA: ``torch.cuda.max_memory_allocated``).

Example:
    python benchmarks/model_speed.py --device cpu --batch 1 --repeats 2
    python benchmarks/model_speed.py --device cuda --batch 32   # on a GPU
"""
import argparse
import json
import os
import os.path as osp
import platform
import resource
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from report import write_report  # noqa: E402 (this folder)


def run_case(case: str, device: str, batch: int, repeats: int, frames: int,
             size: int) -> dict:
    """Time one case in this process."""
    import torch
    from mmaction.structures import ActionDataSample
    from mmengine.config import Config

    from mme_plugin.registry import MODELS
    from mme_plugin.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/mme/pretrain_k400_worker.py')).model
    cfg.backbone.update(num_frames=frames, img_size=size)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_tok = (frames // 2) * (size // 16)**2
    x = torch.randn(batch, 3, frames, size, size, device=device)
    ratio = float(case.split('@')[1]) if '@' in case else 0.0
    n_mask = int(ratio * (size // 16)**2) * (frames // 2)
    mask = torch.zeros(batch, n_tok, dtype=torch.bool, device=device)
    per_frame = (size // 16)**2
    for b in range(batch):
        m = torch.zeros(per_frame, dtype=torch.bool)
        m[torch.randperm(per_frame)[:n_mask // (frames // 2)]] = True
        mask[b] = m.repeat(frames // 2)
    if case in ('stock', 'sdpa'):
        kw = {k: v for k, v in cfg.backbone.items() if k != 'type'}
        if case == 'stock':
            from mmaction.models.backbones.vit_mae import VisionTransformer
            model = VisionTransformer(**kw)
        else:
            model = MODELS.build(cfg.backbone)

        def step():
            model(x).sum().backward()
    elif case.startswith('mme_enc'):
        model = MODELS.build(cfg.backbone)

        def step():
            model(x, mask=mask).sum().backward()
    else:
        model = MODELS.build(cfg)
        heads = model.head_dims
        samples = []
        for b in range(batch):
            ds = ActionDataSample()
            ds.set_field(mask[b].cpu(), 'mask')
            for k, d in heads.items():
                ds.set_field(torch.randn(n_tok, d), f'{k}_target')
                ds.set_field(torch.ones(n_tok, dtype=torch.bool), f'{k}_valid')
            samples.append(ds)

        def step():
            losses = model(x[:, None], samples, mode='loss')
            total = sum(v for k, v in losses.items()
                        if k.startswith('loss'))
            total.backward()
    model.to(device).train()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    step()  # warm-up
    if device == 'cuda':
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        step()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if device == 'cuda':
        mem = torch.cuda.max_memory_allocated() / 2**20
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        mem = (rss - rss0) / 1024
    return dict(case=case, seconds=min(times), peak_mib=mem, batch=batch,
                frames=frames, size=size, tokens=n_tok,
                visible_tokens=n_tok - n_mask)


def main(argv=None) -> None:
    """Entry point (``argv``: the arguments, default ``sys.argv``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--cases', nargs='+', default=[
        'stock', 'sdpa', 'mme_enc@0.7', 'mme_enc@0.9', 'mme@0.7', 'mme@0.9'])
    parser.add_argument('--scaling', action='store_true',
                        help='also mme@0.7 at 8/32 frames and 112/160 px')
    parser.add_argument('--out', default='work_dirs/benchmarks_model.json')
    parser.add_argument('--_one', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._one:
        case, frames, size = args._one.split(',')
        print(json.dumps(run_case(case, args.device, args.batch,
                                  args.repeats, int(frames), int(size))))
        return
    jobs = [(c, 16, 224) for c in args.cases]
    if args.scaling:
        jobs += [('mme@0.7', f, 224) for f in (8, 32)]
        jobs += [('mme@0.7', 16, s) for s in (112, 160)]
    import torch
    rows = []
    for case, frames, size in jobs:
        out = subprocess.run(
            [sys.executable, __file__, '--device', args.device, '--batch',
             str(args.batch), '--repeats', str(args.repeats), '--_one',
             f'{case},{frames},{size}'], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{case:12s} {frames:2d}x{size:3d} tokens "
              f"{row['visible_tokens']:5d}"
              f"/{row['tokens']:5d}  {row['seconds']:7.3f} s  "
              f"peak {row['peak_mib']:8.0f} MiB", flush=True)
    report = dict(device=args.device, machine=platform.processor() or
                  platform.machine(), cores=os.cpu_count(),
                  torch=torch.__version__, threads=torch.get_num_threads(),
                  rows=rows)
    write_report(report, args.out)


if __name__ == '__main__':
    main()
