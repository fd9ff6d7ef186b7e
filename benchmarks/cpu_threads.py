"""Training speed on a small CPU under OpenMP wait policies.

On a machine with few cores, the training process's OpenMP threads (PyTorch
uses ``OMP_NUM_THREADS`` of them) busy-wait between parallel regions by
default, and so take CPU time from the data loader's worker processes, which
compute the MME targets. ``OMP_WAIT_POLICY=PASSIVE`` (GNU OpenMP, see its
manual's "OMP_WAIT_POLICY") lets idle threads sleep. The main job and the
synthetic benchmark set it for every tool they run.

This script trains a config for a few epochs through ``tools/train.py``
under each policy (the environment of the subprocess; the policy is read
when the OpenMP runtime loads), and reports the mean ``time`` per iteration
of the last epoch and a hash of the final weights: the policy only changes
how threads wait, so the weights must be identical bit for bit. A first,
discarded run fills the flow cache so that every measured run reads it.

Example:
    python benchmarks/cpu_threads.py       # the tiny MME pretraining
    python benchmarks/cpu_threads.py --config \
        configs/mme/videomae_tiny_synthetic.py
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import platform
import shutil
import subprocess
import sys
import tempfile
from glob import glob
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from report import write_report  # noqa: E402 (this folder)


def weights_hash(ckpt: str) -> str:
    """sha256 (12 hex digits) of a checkpoint's ``state_dict`` tensors."""
    import torch

    from mme_plugin.engine.safe_load import safe_torch_load
    state = safe_torch_load(ckpt)['state_dict']
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes()
                 if isinstance(state[k], torch.Tensor) else b'')
    return h.hexdigest()[:12]


def train(config: str, work: str, epochs: int, data_root: str,
          env: Dict[str, str]) -> Dict:
    """Train ``epochs`` epochs; seconds per iteration of the last epoch and
    the weights' hash."""
    opts = [f'train_cfg.max_epochs={epochs}',
            f'train_dataloader.dataset.ann_file={data_root}/train.txt',
            f'train_dataloader.dataset.data_prefix.video={data_root}',
            'default_hooks.logger.interval=5']
    from mmengine.config import Config

    from mme_plugin.utils import flow_cache_options
    opts += [f'{k}={v}' for k, v in flow_cache_options(Config.fromfile(
        osp.join(ROOT, config)).train_dataloader.dataset, data_root).items()]
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--work-dir', work,
         '--seed', '0', '--cfg-options', *opts], cwd=ROOT, env=env,
        capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    rows = []
    for path in glob(osp.join(work, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    last = [r['time'] for r in rows if 'time' in r and
            r.get('epoch') == epochs]
    ckpt = osp.join(work, f'epoch_{epochs}.pth')
    return dict(s_per_iter=sum(last) / max(1, len(last)),
                weights=weights_hash(ckpt))


def main(argv: List[str] = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config',
                        default='configs/mme/pretrain_tiny_synthetic.py')
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--data-root', default='data/synthetic',
                        help='made by tools/data/make_synthetic.py if '
                        'missing')
    parser.add_argument('--policies', nargs='+',
                        default=['(unset)', 'PASSIVE'],
                        help="OMP_WAIT_POLICY values; '(unset)' = the "
                        "runtime's default")
    parser.add_argument('--out',
                        default='work_dirs/benchmarks_cpu_threads.json')
    args = parser.parse_args(argv)
    if not osp.exists(osp.join(ROOT, args.data_root, 'train.txt')):
        subprocess.run([sys.executable, 'tools/data/make_synthetic.py',
                        args.data_root], cwd=ROOT, check=True)
    base = {k: v for k, v in os.environ.items() if k != 'OMP_WAIT_POLICY'}
    base.setdefault('OMP_NUM_THREADS', '2')
    base['PYTHONWARNINGS'] = 'ignore'
    tmp = tempfile.mkdtemp(prefix='cpu_threads_')
    try:
        train(args.config, osp.join(tmp, 'warmup'), 1, args.data_root,
              base)  # fills the flow cache
        runs = {}
        for policy in args.policies:
            env = dict(base)
            if policy != '(unset)':
                env['OMP_WAIT_POLICY'] = policy
            runs[policy] = train(args.config, osp.join(tmp, policy),
                                 args.epochs, args.data_root, env)
            print(policy, runs[policy], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = dict(machine=f'{platform.machine()}, {os.cpu_count()} cores',
                  config=args.config, epochs=args.epochs,
                  omp_num_threads=base['OMP_NUM_THREADS'], runs=runs,
                  same_weights=len({r['weights']
                                    for r in runs.values()}) == 1)
    print(json.dumps(report, indent=1))
    write_report(report, args.out)


if __name__ == '__main__':
    main()
