"""One-command GPU check of MME pretraining: speed, memory, syncs, numerics.

Rows (each measured, or ``not measured: <why>``):

* ``step/<dtype>/b<batch>`` (bf16 and fp16 at batch 32 and 64): ViT-B MME
  training step (``configs/mme/pretrain_k400.py`` model, on-device HOG,
  AdamW; fp16 with a dynamic ``GradScaler``) on a synthetic batch: ms per
  step, clips/s, peak memory, the share of the step spent in the host-to-
  device copy and preprocessing and in ``PointHOG`` (each timed alone on the
  same batch), and the host syncs of one step (forward + backward, and the
  optimizer step apart);
* ``pointhog/cpu_vs_cuda/tf32_<on|off>``: largest difference between the
  HOG targets computed on the CPU and on the GPU, with TF32 allowed or not;
* ``precision/<a>_vs_cpu_fp32``: loss relative error and gradient cosine of
  one batch, CUDA fp32 / CUDA bf16 (and CPU bf16 with ``--tiny``) against
  CPU fp32, same weights;
* ``deterministic``: two steps from the same state under
  ``torch.use_deterministic_algorithms(True)``: whether they run and give
  bitwise-equal losses and gradients;
* ``loader/<recipe>``: clips/s the training pipeline of each pretraining
  recipe delivers with ``--workers`` workers (synthetic videos, flow on
  the fly), per worker, against the clips/s the bf16 batch-64 step
  consumes (``pretrain_k400`` / ``pretrain_ssv2``: the workers only decode,
  crop and resize; issue #21's goal is >= 16 clips/s per worker);
* ``targets/device/b<batch>``: the model's ``MotionTargetGenerator`` alone
  (Farneback flow, tracking, checks, targets of the device placement,
  ``configs/mme/pretrain_k400.py``) on a batch of generated clips: ms per
  batch and per clip, peak memory;
* ``step/device_targets/bfloat16/b<batch>`` and
  ``step/videomae/bfloat16/b<batch>``: the training step with the targets
  computed on the device against a VideoMAE step (pixel targets, the same
  encoder and decoder) on the same batch; the first row's
  ``vs_videomae`` is the ratio (issue #21's goal: at most 1.3).

Prints a table and writes JSON (``--out``). ``--tiny`` runs the same code at
tiny size on the CPU (the tiny synthetic model and recipe), the CUDA-only
rows marked ``not measured: no CUDA``; ``tests/test_gpu_check.py`` runs it.
Budget on one GPU: a few minutes (at most 8).

Example:
    python benchmarks/gpu_check.py --out work_dirs/gpu_check.json
    python benchmarks/gpu_check.py --tiny
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
# cuBLAS reads this once, when CUDA starts: needed by the deterministic row.
os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')

import torch  # noqa: E402

DTYPES = ('bfloat16', 'float16')
FULL_BATCHES = (32, 64)
TINY_BATCHES = (2, 4)
PRETRAIN_RECIPES = ('pretrain_k400', 'pretrain_k400_worker',
                    'pretrain_k400_dis', 'pretrain_k400_dis_rep2',
                    'pretrain_ssv2')
NO_CUDA = 'not measured: no CUDA'


def row_names(tiny: bool) -> List[str]:
    """Every row the check reports, in order."""
    batches = TINY_BATCHES if tiny else FULL_BATCHES
    rows = [f'step/{d}/b{b}' for d in DTYPES for b in batches]
    rows += ['pointhog/cpu_vs_cuda/tf32_off', 'pointhog/cpu_vs_cuda/tf32_on',
             'precision/cpu_bf16_vs_cpu_fp32',
             'precision/cuda_fp32_vs_cpu_fp32',
             'precision/cuda_bf16_vs_cpu_fp32', 'deterministic']
    top = batches[-1]
    rows += [f'targets/device/b{top}', f'step/device_targets/bfloat16/b{top}',
             f'step/videomae/bfloat16/b{top}']
    rows += [f'loader/{r}' for r in PRETRAIN_RECIPES]
    if tiny:
        rows += ['loader/pretrain_tiny_synthetic',
                 'loader/pretrain_tiny_synthetic_device']
    return rows


# --- model and a synthetic batch ------------------------------------------


class Setup:
    """The model config and batch geometry of the check.

    Args:
        tiny (bool): The tiny synthetic model on the CPU.
        targets (str): ``'worker'``: the targets built by the pipeline
            (``pretrain_k400_worker.py``, HOG on the device); ``'device'``:
            computed by the model from the dense frames
            (``pretrain_k400.py``); ``'pixel'``: VideoMAE's pixel targets
            with the same encoder and decoder.
    """

    def __init__(self, tiny: bool, targets: str = 'worker') -> None:
        from mmengine.config import Config, ConfigDict

        from mme_plugin.utils import register_all_modules
        register_all_modules()
        self.tiny = tiny
        self.targets = targets
        name = {('worker', True): 'pretrain_tiny_synthetic',
                ('worker', False): 'pretrain_k400_worker',
                ('device', True): 'pretrain_tiny_synthetic_device',
                ('device', False): 'pretrain_k400'}[
                    ('device' if targets == 'device' else 'worker', tiny)]
        cfg = Config.fromfile(osp.join(ROOT, f'configs/mme/{name}.py'))
        self.model_cfg = cfg.model
        if tiny and targets == 'worker':  # the recipes' placement: HOG on
            # the device
            self.model_cfg.targets.hog.device_hog = dict(
                type='PointHOG', cell_size=4, channels='gray')
        if targets == 'pixel':
            self.model_cfg.targets = ConfigDict(
                pixel=dict(type='PixelTarget'))
            self.model_cfg.target_generator = None
        self._clips = None
        self.size, self.frames, self.patch = (64, 8, 8) if tiny else \
            (224, 16, 16)
        self.step = 4 if tiny else 8  # point grid step
        self.traj_len, self.mask_ratio = 4, (0.75 if tiny else 0.7)
        hog = self.model_cfg.targets.get('hog', {})
        self.gray = hog.get('channels', 'rgb') == 'gray'

    def dense_frames(self, i: int) -> torch.Tensor:
        """``[tubes, L + 1, S, S, 3]`` uint8 dense frames of a generated
        clip (four distinct clips, reused): moving textured sprites, so the
        flow, the checks and the targets do real work."""
        if self._clips is None:
            from mme_plugin.datasets.synthetic import render_clip
            tubes, s = self.frames // 2, self.traj_len + 1
            self._clips = []
            for k in range(4):
                frames, _ = render_clip(k * 2 + 1, tubes * s,
                                        (self.size, self.size), seed=k)
                self._clips.append(torch.from_numpy(
                    frames.reshape(tubes, s, self.size, self.size, 3)))
        return self._clips[i % len(self._clips)]

    def model(self, device: str, seed: int = 0):
        from mme_plugin.registry import MODELS
        torch.manual_seed(seed)
        model = MODELS.build(copy.deepcopy(self.model_cfg))
        model.init_weights()
        return model.to(device)

    def batch(self, batch: int, seed: int = 0) -> Dict:
        """A collated batch as the loader gives it (host tensors)."""
        from mmaction.structures import ActionDataSample

        from mme_plugin.datasets.transforms import TubeMasking
        from mme_plugin.ops import grid_points
        g = torch.Generator().manual_seed(seed)
        tubes = self.frames // 2
        hp = self.size // self.patch
        n = tubes * hp * hp
        gh = self.size // self.step
        k = self.patch // self.step
        traj_dim = 2 * self.traj_len * k * k
        grid = torch.from_numpy(grid_points(self.size, self.size, self.step))
        items = []
        for i in range(batch):
            ds = ActionDataSample(metainfo=dict(filename=f'synthetic{i}'))
            torch.manual_seed(seed * 1000 + i)
            res = TubeMasking(self.mask_ratio, self.patch)(dict(
                imgs=[None] * self.frames, img_shape=(self.size, self.size)))
            for key in ('mask', 'visible_idx', 'masked_idx'):
                ds.set_field(res[key], key)
            clip = torch.randint(0, 256, (1, 3, self.frames, self.size,
                                          self.size), generator=g,
                                 dtype=torch.uint8)
            if self.targets != 'worker':
                if self.targets == 'device':
                    ds.set_field(self.dense_frames(i), 'motion_frames')
                    ds.set_field(torch.ones(2), 'motion_scale')
                items.append(dict(inputs=clip, data_samples=ds))
                continue
            ds.set_field(torch.randn(n, traj_dim, generator=g),
                         'traj_target')
            ds.set_field(torch.rand(n, generator=g) > 0.1, 'traj_valid')
            s = self.traj_len + 1
            ds.set_field(torch.randint(0, 256, (tubes, s, self.size,
                                                self.size, 3), generator=g,
                                       dtype=torch.uint8), 'hog_frames')
            pts = grid + torch.randn(tubes, s, gh, gh, 2, generator=g)
            ds.set_field(pts.float(), 'hog_points')
            ds.set_field(torch.ones(n, dtype=torch.bool), 'hog_valid')
            items.append(dict(inputs=clip, data_samples=ds))
        try:
            from mme_plugin.datasets.collate import mme_collate
            return mme_collate(items)
        except ImportError:
            from mmengine.dataset import pseudo_collate
            return pseudo_collate(items)


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def _autocast(device: str, dtype: Optional[str]):
    return torch.autocast(device, dtype=getattr(torch, dtype or 'float32'),
                          enabled=dtype is not None)


def _scaler(device: str, dtype: Optional[str]):
    if dtype != 'float16':
        return None
    try:
        return torch.amp.GradScaler(device)
    except (AttributeError, TypeError, RuntimeError):
        return None


def _forward_loss(model, data, device, dtype):
    with _autocast(device, dtype):
        batch = model.data_preprocessor(data, True)
        losses = model(**batch, mode='loss')
        loss, _ = model.parse_losses(losses)
    return loss


def _train_step(model, data, opt, scaler, device, dtype):
    loss = _forward_loss(model, data, device, dtype)
    (scaler.scale(loss) if scaler else loss).backward()
    if scaler:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    opt.zero_grad(set_to_none=True)
    return loss


def _timed(fn: Callable, device: str, repeats: int) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats * 1000


# --- rows -----------------------------------------------------------------


def step_row(setup: Setup, device: str, dtype: str, batch: int,
             steps: int) -> Dict:
    """Speed, memory, time shares and syncs of the training step."""
    from mme_plugin.utils.sync_counter import SyncCounter
    if device == 'cuda' and dtype == 'bfloat16' and \
            not torch.cuda.is_bf16_supported():
        return dict(status='not measured: this GPU has no bf16')
    model = setup.model(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    scaler = _scaler(device, dtype)
    data = setup.batch(batch)
    for _ in range(2):  # warm-up (allocator, kernels, autotuning)
        _train_step(model, data, opt, scaler, device, dtype)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    ms = _timed(lambda: _train_step(model, data, opt, scaler, device, dtype),
                device, steps)
    peak = (torch.cuda.max_memory_allocated() / 2**30
            if device == 'cuda' else None)
    pre_ms = _timed(lambda: model.data_preprocessor(data, True), device,
                    steps)
    gen_ms = hog_ms = 0.0
    with torch.no_grad():
        pre = model.data_preprocessor(data, True)
        samples = pre['data_samples']
        gen = model.target_generator
        if gen is not None:
            gen_ms = _timed(lambda: gen(samples, torch.device(device)),
                            device, steps)
            samples = gen(samples, torch.device(device))
        _, masked = model.mask_indices(samples, torch.device(device))
        unit = model.targets['hog'] if 'hog' in model.targets else None
        if unit is not None:
            hog_ms = _timed(lambda: unit(model, pre['inputs'], samples,
                                         token_idx=masked), device, steps)
    # syncs of one step; on the CPU every would-be sync, with the checks on
    # their accelerator schedule (read every check_interval steps)
    checks, loss_mod = model.batch_checks, model.loss_module
    checks.eager_on_cpu = loss_mod.eager_cpu_check = False
    on_cpu = device == 'cpu'
    fwd, opt_c = SyncCounter(cpu_tensors=on_cpu), SyncCounter(
        cpu_tensors=on_cpu)
    with fwd:
        loss = _forward_loss(model, data, device, dtype)
        (scaler.scale(loss) if scaler else loss).backward()
    with opt_c:
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
    checks.eager_on_cpu = loss_mod.eager_cpu_check = True
    pending = len(checks._pending)
    checks.flush()
    return dict(
        status='measured', device=device, ms_per_step=ms,
        clips_per_s=batch / ms * 1000, peak_mem_gib=peak,
        copy_preprocess_share=pre_ms / ms, pointhog_share=hog_ms / ms,
        device_targets_share=gen_ms / ms,
        syncs_per_step=fwd.syncs + 1 / checks.interval,
        syncs_where=fwd.summary(),
        optimizer_syncs_per_step=opt_c.syncs,
        note=(f'syncs: forward+backward {fwd.syncs}, plus the batch checks '
              f'read every {checks.interval} steps ({pending} pending)'))


def device_targets_row(setup: Setup, device: str, batch: int,
                       steps: int) -> Dict:
    """The model's MotionTargetGenerator alone on a batch of generated
    clips (``setup.targets == 'device'``)."""
    model = setup.model(device)
    gen = model.target_generator
    data = setup.batch(batch)
    with torch.no_grad():
        samples = model.data_preprocessor(data, True)['data_samples']
        dev = torch.device(device)
        out = gen(samples, dev)  # warm-up
        if device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        ms = _timed(lambda: gen(samples, dev), device, steps)
    peak = (torch.cuda.max_memory_allocated() / 2**30
            if device == 'cuda' else None)
    stacked = out.stacked
    return dict(status='measured', device=device, ms_per_batch=ms,
                ms_per_clip=ms / batch, peak_mem_gib=peak,
                flow_chunk=gen.flow_chunk,
                traj_valid=float(stacked['traj_valid'].float().mean()),
                unusable=float(stacked['traj_unusable'].mean()))


def pointhog_row(setup: Setup, tf32: bool) -> Dict:
    """CPU vs CUDA HOG targets with TF32 allowed or not."""
    if not torch.cuda.is_available():
        return dict(status=NO_CUDA)
    from mme_plugin.models import PointHOG
    data = setup.batch(1, seed=3)
    samples = data['data_samples']
    frames = torch.stack([s.hog_frames for s in samples])
    points = torch.stack([s.hog_points for s in samples])
    module = PointHOG(cell_size=setup.step,
                      channels='gray' if setup.gray else 'rgb')
    ref = module(frames, points, setup.patch)
    old = (torch.backends.cuda.matmul.allow_tf32,
           torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        got = module(frames.cuda(), points.cuda(), setup.patch).cpu()
    finally:
        (torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = old
    return dict(status='measured', max_abs_diff=float((got - ref).abs().max()),
                target_max=float(ref.abs().max()))


def _loss_and_grads(model, data, device, dtype):
    model.zero_grad(set_to_none=True)
    loss = _forward_loss(model, data, device, dtype)
    loss.backward()
    grads = torch.cat([p.grad.detach().flatten().double().cpu()
                       for p in model.parameters() if p.grad is not None])
    return float(loss.detach()), grads


def precision_rows(setup: Setup, rows: Dict) -> None:
    """Loss and gradient of one batch against CPU fp32."""
    data = setup.batch(1, seed=5)
    model = setup.model('cpu')
    state = copy.deepcopy(model.state_dict())
    ref_loss, ref_grad = _loss_and_grads(model, data, 'cpu', None)

    def compare(loss, grad):
        cos = torch.nn.functional.cosine_similarity(ref_grad, grad, dim=0)
        return dict(status='measured', loss=loss, loss_cpu_fp32=ref_loss,
                    loss_rel_err=abs(loss - ref_loss) / abs(ref_loss),
                    grad_cosine=float(cos))

    if setup.tiny:
        rows['precision/cpu_bf16_vs_cpu_fp32'] = compare(
            *_loss_and_grads(model, data, 'cpu', 'bfloat16'))
    else:
        rows['precision/cpu_bf16_vs_cpu_fp32'] = dict(
            status='not measured: ViT-B bf16 on a CPU is slow '
            '(tests/test_amp.py measures it)')
    for key, dtype in (('cuda_fp32', None), ('cuda_bf16', 'bfloat16')):
        name = f'precision/{key}_vs_cpu_fp32'
        if not torch.cuda.is_available():
            rows[name] = dict(status=NO_CUDA)
            continue
        gpu = setup.model('cuda')
        gpu.load_state_dict(state)
        rows[name] = compare(*_loss_and_grads(gpu, data, 'cuda', dtype))


def deterministic_row(setup: Setup, device: str) -> Dict:
    """Two identical steps under ``use_deterministic_algorithms``."""
    data = setup.batch(2, seed=7)
    prev = torch.are_deterministic_algorithms_enabled()
    results = []
    try:
        torch.use_deterministic_algorithms(True)
        for _ in range(2):
            model = setup.model(device, seed=1)
            torch.manual_seed(11)
            dtype = 'bfloat16' if device == 'cuda' else None
            results.append(_loss_and_grads(model, data, device, dtype))
    except RuntimeError as e:
        return dict(status='measured', device=device, works=False,
                    error=str(e).splitlines()[0][:300])
    finally:
        torch.use_deterministic_algorithms(prev)
    (l1, g1), (l2, g2) = results
    return dict(status='measured', device=device, works=True,
                bitwise_equal=bool(l1 == l2 and torch.equal(g1, g2)))


def loader_row(recipe: str, root: str, workers: int, batches: int,
               batch_size: int, consumed: Optional[float]) -> Dict:
    """Clips/s of a recipe's training pipeline on synthetic videos."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(ROOT, f'configs/mme/{recipe}.py'))
    loader = copy.deepcopy(cfg.train_dataloader)
    loader.update(batch_size=batch_size, num_workers=workers,
                  persistent_workers=False)
    loader.dataset.update(ann_file=osp.join(root, 'train.txt'),
                          data_prefix=dict(video=root))
    dl = Runner.build_dataloader(loader, seed=0)
    it = iter(dl)
    next(it)  # worker start-up and the first batch
    t0 = time.perf_counter()
    clips = 0
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            break
        clips += len(b['data_samples'])
    dt = time.perf_counter() - t0
    rate = clips / dt if dt > 0 and clips else None
    out = dict(status='measured' if rate else 'not measured: too few clips',
               workers=workers, clips_per_s=rate,
               clips_per_s_per_worker=(rate / max(1, workers)
                                       if rate else None),
               step_consumes_clips_per_s=consumed)
    if rate and consumed:
        out['feed_ratio'] = rate / consumed
    return out


# --- driver ---------------------------------------------------------------


def _fmt(row: Dict) -> str:
    if row.get('status') != 'measured':
        return row.get('status', '?')
    keys = [k for k in row if k not in ('status', 'syncs_where', 'note')]
    parts = []
    for k in keys:
        v = row[k]
        parts.append(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}')
    return ', '.join(parts)


def main(argv: Optional[List[str]] = None) -> Dict:
    """Run the check; returns the report (also written to ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tiny', action='store_true',
                        help='tiny model and recipe on the CPU')
    parser.add_argument('--out', default='work_dirs/gpu_check.json')
    parser.add_argument('--steps', type=int, default=None,
                        help='timed steps per row (default 10; tiny 2)')
    parser.add_argument('--workers', type=int,
                        default=min(8, os.cpu_count() or 1))
    parser.add_argument('--loader-batches', type=int, default=None)
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not args.tiny and not cuda:
        raise SystemExit('gpu_check: no CUDA device; run with --tiny for the '
                         'CPU version')
    device = 'cpu' if args.tiny else 'cuda'
    steps = args.steps or (2 if args.tiny else 10)
    setup = Setup(args.tiny)
    rows: Dict[str, Dict] = {}
    t_start = time.perf_counter()

    def run(name: str, fn: Callable[[], Dict]) -> None:
        t0 = time.perf_counter()
        try:
            rows[name] = fn()
        except Exception as e:  # noqa: BLE001  (a row's failure is data)
            rows[name] = dict(status=f'error: {type(e).__name__}: {e}'[:400],
                              trace=traceback.format_exc()[-2000:])
        rows[name]['seconds'] = round(time.perf_counter() - t0, 2)
        print(f'{name}: {_fmt(rows[name])}', flush=True)

    batches = TINY_BATCHES if args.tiny else FULL_BATCHES
    for dtype in DTYPES:
        for b in batches:
            run(f'step/{dtype}/b{b}',
                lambda d=dtype, b=b: step_row(setup, device, d, b, steps))
    for tf32 in (False, True):
        run(f'pointhog/cpu_vs_cuda/tf32_{"on" if tf32 else "off"}',
            lambda t=tf32: pointhog_row(setup, t))
    t0 = time.perf_counter()
    try:
        precision_rows(setup, rows)
    except Exception as e:  # noqa: BLE001
        for name in row_names(args.tiny):
            if name.startswith('precision/') and name not in rows:
                rows[name] = dict(status=f'error: {type(e).__name__}: {e}')
    for name in [n for n in rows if n.startswith('precision/')]:
        rows[name]['seconds'] = round(time.perf_counter() - t0, 2)
        print(f'{name}: {_fmt(rows[name])}', flush=True)
    run('deterministic', lambda: deterministic_row(setup, device))
    top = batches[-1]
    dev_setup = Setup(args.tiny, 'device')
    run(f'targets/device/b{top}',
        lambda: device_targets_row(dev_setup, device, top, steps))
    run(f'step/device_targets/bfloat16/b{top}',
        lambda: step_row(dev_setup, device, 'bfloat16', top, steps))
    run(f'step/videomae/bfloat16/b{top}',
        lambda: step_row(Setup(args.tiny, 'pixel'), device, 'bfloat16', top,
                         steps))
    mme = rows[f'step/device_targets/bfloat16/b{top}']
    vmae = rows[f'step/videomae/bfloat16/b{top}']
    if mme.get('ms_per_step') and vmae.get('ms_per_step'):
        mme['vs_videomae'] = mme['ms_per_step'] / vmae['ms_per_step']

    consumed = rows.get(f'step/bfloat16/b{batches[-1]}', {}).get(
        'clips_per_s')
    with tempfile.TemporaryDirectory() as root:
        from mme_plugin.datasets.synthetic import make_synthetic_dataset
        n_clips = 4 if args.tiny else 4 * max(1, args.workers)
        # left-to-right motion, long enough for each recipe's sampling
        size, frames = ((96, 128), 40) if args.tiny else ((256, 320), 72)
        make_synthetic_dataset(root, dict(train=n_clips), num_frames=frames,
                               size=size, seed=0, classes=[0])
        lb = args.loader_batches or (1 if args.tiny else 3)
        workers = 0 if args.tiny else args.workers
        bs = 2 if args.tiny else max(1, args.workers // 2)
        recipes = list(PRETRAIN_RECIPES) + (
            ['pretrain_tiny_synthetic', 'pretrain_tiny_synthetic_device']
            if args.tiny else [])
        for recipe in recipes:
            if args.tiny and 'tiny' not in recipe:
                rows[f'loader/{recipe}'] = dict(
                    status='not measured: --tiny (224 x 224 flow on the CPU '
                    'is slow; run without --tiny)')
                continue
            run(f'loader/{recipe}',
                lambda r=recipe: loader_row(r, root, workers, lb, bs,
                                            consumed))
    report = dict(
        date=time.strftime('%Y-%m-%d'),
        machine=f'{platform.machine()}, {os.cpu_count()} cores',
        device=(torch.cuda.get_device_name() if cuda and not args.tiny else
                'cpu'),
        torch=torch.__version__, tiny=args.tiny,
        command='python benchmarks/gpu_check.py' +
        (' --tiny' if args.tiny else ''),
        seconds=round(time.perf_counter() - t_start, 1), rows=rows)
    width = max(len(n) for n in rows)
    print('\n' + '\n'.join(f'{n:<{width}}  {_fmt(rows[n])}'
                           for n in row_names(args.tiny) if n in rows))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=1, default=str)
    print(f'wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
