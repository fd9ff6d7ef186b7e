"""The built-in default: pretrain -> fine-tune / linear probe -> test, on CPU.

For each seed and method, with the stock recognizer for every downstream
step:

* ``scratch``: no pretraining (fine-tune from random init; linear probe of
  random frozen features);
* ``videomae``: pixel-target pretraining
  (``configs/mme/videomae_tiny_synthetic.py``);
* ``mme``: MME pretraining, release targets
  (``configs/mme/pretrain_tiny_synthetic.py``);
* ``mme_absdisp``: MME with absolute-displacement trajectory targets
  (``configs/mme/pretrain_tiny_synthetic_absdisp.py``, an ablation).

Then ``tools/convert/mme_to_recognizer.py`` -> ``tools/train.py`` (fine-tune,
linear probe) -> ``tools/test.py`` on the LAST checkpoint (the val list is the
test list here, so no checkpoint is picked on it). Writes
``<work-dir>/results.json``, ``results.md`` (mean +- std over seeds),
``curves.png`` and ``samples.png``, and prints the table.

Example:
    python tools/synthetic_benchmark.py                  # README main job
    python tools/synthetic_benchmark.py --seeds 0 1 2 \
        --methods scratch videomae mme mme_absdisp       # docs table
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time
from glob import glob
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

PRETRAIN = {
    'videomae': 'configs/mme/videomae_tiny_synthetic.py',
    'mme': 'configs/mme/pretrain_tiny_synthetic.py',
    'mme_absdisp': 'configs/mme/pretrain_tiny_synthetic_absdisp.py',
}
FINETUNE = 'configs/mme/finetune_tiny_synthetic.py'
LINEAR = 'configs/mme/linear_tiny_synthetic.py'
METHODS = ['scratch', 'videomae', 'mme', 'mme_absdisp']


class Runner:
    """Runs the tools as subprocesses, logging each to a file."""

    def __init__(self, work_dir: str, data_root: str) -> None:
        self.work_dir = work_dir
        self.data_root = data_root
        self.start = time.time()

    def data_opts(self, test: bool = False) -> List[str]:
        """Point a config at the dataset."""
        splits = ('test', ) if test else ('train', 'val')
        out = []
        for split in splits:
            ann = 'train' if split == 'train' else 'val'
            out += [
                f'{split}_dataloader.dataset.ann_file='
                f'{self.data_root}/{ann}.txt',
                f'{split}_dataloader.dataset.data_prefix.video='
                f'{self.data_root}'
            ]
        return out

    def run(self, name: str, args: List[str]) -> str:
        """Run a command; returns its output; exits on failure."""
        log = osp.join(self.work_dir, 'logs', f'{name}.log')
        os.makedirs(osp.dirname(log), exist_ok=True)
        t0 = time.time()
        print(f'[{time.time() - self.start:6.0f}s] {name} ...', flush=True)
        env = dict(os.environ, PYTHONWARNINGS='ignore')
        with open(log, 'w') as f:
            proc = subprocess.run([sys.executable, *args], cwd=REPO,
                                  stdout=f, stderr=subprocess.STDOUT,
                                  env=env)
        out = open(log).read()
        if proc.returncode != 0:
            print(out[-4000:])
            raise SystemExit(f'{name} failed ({proc.returncode}); log: {log}')
        print(f'[{time.time() - self.start:6.0f}s] {name} done in '
              f'{time.time() - t0:.0f}s', flush=True)
        return out


def _acc(output: str) -> Dict[str, float]:
    return {k: float(v) for k, v in re.findall(
        r'(acc/(?:top1|top5|mean1)): ([0-9.]+)', output.split(
            'Test metrics:')[-1])}


def _last_ckpt(work: str) -> str:
    ckpts = glob(osp.join(work, 'epoch_*.pth'))
    if not ckpts:
        raise SystemExit(f'no checkpoint in {work}')
    return max(ckpts, key=lambda p: int(re.findall(r'epoch_(\d+)', p)[0]))


def run_method(r: Runner, method: str, seed: int) -> Dict:
    """Pretrain (unless scratch), fine-tune, linear probe and test."""
    base = osp.join(r.work_dir, f'seed{seed}', method)
    result: Dict = {'method': method, 'seed': seed}
    init: Optional[str] = None
    if method != 'scratch':
        pre = osp.join(base, 'pretrain')
        t0 = time.time()
        r.run(f'seed{seed}_{method}_pretrain', [
            'tools/train.py', PRETRAIN[method], '--work-dir', pre, '--seed',
            str(seed), '--cfg-options', *r.data_opts()[:2]
        ])
        result['pretrain_s'] = round(time.time() - t0)
        init = osp.join(base, 'backbone.pth')
        r.run(f'seed{seed}_{method}_convert', [
            'tools/convert/mme_to_recognizer.py',
            _last_ckpt(pre), init, '--config', FINETUNE
        ])
    for stage, cfg in (('finetune', FINETUNE), ('linear', LINEAR)):
        work = osp.join(base, stage)
        opts = r.data_opts() + ([f'load_from={init}'] if init else [])
        t0 = time.time()
        r.run(f'seed{seed}_{method}_{stage}', [
            'tools/train.py', cfg, '--work-dir', work, '--seed', str(seed),
            '--cfg-options', *opts
        ])
        out = r.run(f'seed{seed}_{method}_{stage}_test', [
            'tools/test.py', cfg, _last_ckpt(work), '--work-dir', work,
            '--cfg-options', *r.data_opts(test=True)
        ])
        result[f'{stage}_s'] = round(time.time() - t0)
        result[stage] = _acc(out)
    return result


def summarize(results: List[Dict], methods: List[str]) -> str:
    """Markdown table: mean +- std of top-1 over seeds per method."""
    import numpy as np
    lines = [
        '| method | linear probe top-1 (%) | fine-tune top-1 (%) | seeds | '
        'pretrain time (s) |', '|---|---|---|---|---|'
    ]
    for m in methods:
        rows = [x for x in results if x['method'] == m]
        if not rows:
            continue

        def cell(stage: str) -> str:
            v = np.array([x[stage]['acc/top1'] * 100 for x in rows])
            return (f'{v.mean():.1f} +- {v.std(ddof=1):.1f}' if len(v) > 1
                    else f'{v.mean():.1f}')

        pre = [x.get('pretrain_s', 0) for x in rows]
        lines.append(f"| {m} | {cell('linear')} | {cell('finetune')} | "
                     f'{len(rows)} | {np.mean(pre):.0f} |')
    return '\n'.join(lines)


def plot_curves(work_dir: str, methods: List[str], seed: int) -> str:
    """Pretraining losses and fine-tune val accuracy of one seed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))

    def scalars(path: str) -> List[Dict]:
        files = sorted(glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
        if not files:
            return []
        with open(files[-1]) as f:
            return [json.loads(line) for line in f]

    for m in methods:
        base = osp.join(work_dir, f'seed{seed}', m)
        rows = [x for x in scalars(osp.join(base, 'pretrain')) if 'loss' in x]
        if rows:
            first = rows[0]['loss']
            axes[0].plot([x['step'] for x in rows],
                         [x['loss'] / first for x in rows], label=m)
        for ax, stage in ((axes[1], 'finetune'), (axes[2], 'linear')):
            val = [x for x in scalars(osp.join(base, stage))
                   if 'acc/top1' in x]
            ax.plot([x['step'] for x in val],
                    [100 * x['acc/top1'] for x in val], 'o-', label=m)
    axes[0].set(title='pretraining loss / first-iteration loss',
                xlabel='iteration')
    axes[1].set(title='fine-tune: val top-1 (%)', xlabel='epoch')
    axes[2].set(title='linear probe: val top-1 (%)', xlabel='epoch')
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = osp.join(work_dir, 'curves.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/synthetic_benchmark')
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--methods', nargs='+', default=['scratch',
                                                         'videomae', 'mme'],
                        choices=METHODS)
    parser.add_argument('--train-per-class', type=int, default=40)
    parser.add_argument('--val-per-class', type=int, default=10)
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    r = Runner(args.work_dir, args.data_root)
    r.run('make_synthetic', [
        'tools/data/make_synthetic.py', args.data_root, '--train',
        str(args.train_per_class), '--val', str(args.val_per_class)
    ])
    res_path = osp.join(args.work_dir, 'results.json')
    results = []
    for seed in args.seeds:
        for method in args.methods:
            results.append(run_method(r, method, seed))
            with open(res_path, 'w') as f:
                json.dump(results, f, indent=1)
    table = summarize(results, args.methods)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    curves = plot_curves(args.work_dir, args.methods, args.seeds[0])
    samples = []
    for name in ('move_right_0000', 'rotate_cw_0000', 'approach_0000'):
        out = r.run(f'visualize_{name}', [
            'tools/analysis/visualize_mme.py', PRETRAIN['mme'],
            osp.join(args.data_root, 'val', f'{name}.mp4'), '--out',
            osp.join(args.work_dir, 'samples')
        ])
        samples += re.findall(r'wrote (\S+)', out)
    print(f'\nSynthetic motion benchmark ({len(args.seeds)} seed(s), '
          f'{time.time() - r.start:.0f}s):\n{table}\n')
    print(f'results: {res_path}\ncurves: {curves}\nsamples: '
          f'{", ".join(samples)}')


if __name__ == '__main__':
    main()
