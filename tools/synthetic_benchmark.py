"""The built-in default: pretrain, probe, compare against trivial baselines.

For each seed, on the generated motion dataset (8 classes that differ only
in motion; 320 labelled train clips, 400 test clips):

* pretrain the tiny ViT with pixel targets (``videomae``,
  ``configs/mme/videomae_tiny_synthetic.py``) and with MME targets
  (``mme``, ``configs/mme/pretrain_tiny_synthetic.py``) through
  ``tools/train.py``;
* measure every pretraining loss against its trivial levels on the data
  (predict zero, predict the mean target; :func:`trivial_levels`): a method
  whose losses did not end at least 10 % below their trivial level is
  labelled *uninformative* and not ranked;
* probe the frozen encoders with an exact logistic regression on pooled
  features (:func:`logistic_probe`): random init, VideoMAE, MME (seed 0 also
  at intermediate checkpoints);
* train the no-pretraining supervised baseline with a recipe that fits
  training from scratch (``configs/recognition/tiny-vit_synthetic.py``)
  through ``tools/train.py`` and ``tools/test.py``: the positive control
  that shows the task is learnable with this encoder (seed 0 only by
  default, ``--supervised-seeds``: at 800 iterations it is the most
  expensive step, about 5 minutes per seed on 2 cores).

Writes ``<work-dir>/results.json``, ``results.md``, ``curves.png`` (losses
relative to their trivial level; probe accuracy against pretraining epochs)
and ``samples/`` (one clip's mask and trajectories), and prints the table.
``--long`` adds fine-tuning and the stock linear probe through the stock
recognizer (VideoMAE and MME), the supervised baseline on every seed, and
the ablations MME's paper cares about: absolute displacements instead of
PatchStd (``mme_absdisp``), without HOG (``mme_nohog``) and trajectory
length L = 2 (``mme_L2``), each with its losses, trivial levels and probe.

Example:
    python tools/synthetic_benchmark.py                     # README main job
    python tools/synthetic_benchmark.py --seeds 0 --methods mme
    # a lever, measured against its own trivial levels, in its own folder
    python tools/synthetic_benchmark.py --seeds 0 --supervised-seeds \
        --work-dir work_dirs/mask50 --pretrain-options \
        train_dataloader.dataset.pipeline_edits.TubeMasking.mask_ratio=0.5

Every tool runs with ``OMP_WAIT_POLICY=PASSIVE`` unless the caller set a
policy (see :data:`CPU_OMP_WAIT_POLICY`).
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
from typing import Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mme_plugin.utils.pipeline import edit_key  # noqa: E402

PRETRAIN = {
    'videomae': 'configs/mme/videomae_tiny_synthetic.py',
    'mme': 'configs/mme/pretrain_tiny_synthetic.py',
    'mme_absdisp': 'configs/mme/pretrain_tiny_synthetic_absdisp.py',
}
SUPERVISED = 'configs/recognition/tiny-vit_synthetic.py'
FINETUNE = 'configs/mme/finetune_tiny_synthetic.py'
LINEAR = 'configs/mme/linear_tiny_synthetic.py'
#: MME ablations of the long variant: base method and the settings that
#: differ (``--cfg-options`` items; pipeline steps addressed by type through
#: the dataset's ``pipeline_edits``).
ABLATIONS = {
    # trajectories only: the HOG term is dropped from the loss
    'mme_nohog': ('mme', {'model.targets.hog.weight': 0.0}),
    # trajectory length L = 2 dense steps per tube instead of 4 (the heads
    # follow the targets' settings)
    'mme_L2': ('mme', {
        edit_key('MMESampleFrames', 'traj_len'): 2,
        'model.targets.traj.traj_len': 2,
        'model.targets.hog.traj_len': 2}),
}
METHODS = ['videomae', 'mme', 'mme_absdisp', *ABLATIONS]
#: Methods the long variant fine-tunes and linear-probes through the stock
#: recognizer (the ablations get the exact logistic probe only, to fit the
#: long variant's 90 minutes).
DOWNSTREAM = ('videomae', 'mme')
#: A loss must end this far below its trivial level to count as learned.
INFORMATIVE = 0.9
#: ... and a loss that ends above this is reported at its trivial level.
AT_LEVEL = 0.98
NUM_CLASSES = 8
#: OpenMP wait policy of every tool run (unless the caller set one).
CPU_OMP_WAIT_POLICY = 'PASSIVE'


def method_spec(method: str) -> Tuple[str, Dict]:
    """Config and option overrides (``{key: value}``) of a method."""
    if method not in ABLATIONS:
        return PRETRAIN[method], {}
    base, opts = ABLATIONS[method]
    return PRETRAIN[base], dict(opts)


class Runner:
    """Runs the tools as subprocesses, logging each to a file."""

    def __init__(self, work_dir: str, data_root: str,
                 pretrain_options: Optional[List[str]] = None) -> None:
        self.work_dir = work_dir
        self.data_root = data_root
        #: ``KEY=VALUE`` overrides of every pretraining (``--cfg-options``)
        self.pretrain_options = list(pretrain_options or [])
        self.start = time.time()

    def data_opts(self, test: bool = False) -> List[str]:
        """Point a config at the dataset (the val list is the test list)."""
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

    def flow_opts(self, config: str) -> List[str]:
        """Keep the pretraining flow cache under the data root (for a
        pipeline that has a ``ComputeFlow``, found by type)."""
        from mmengine.config import Config

        from mme_plugin.utils import flow_cache_options
        return [f'{k}={v}' for k, v in flow_cache_options(Config.fromfile(
            osp.join(REPO, config)).train_dataloader.dataset,
            self.data_root).items()]

    def run(self, name: str, args: List[str]) -> str:
        """Run a command; returns its output; exits on failure."""
        log = osp.join(self.work_dir, 'logs', f'{name}.log')
        os.makedirs(osp.dirname(log), exist_ok=True)
        t0 = time.time()
        print(f'[{time.time() - self.start:6.0f}s] {name} ...', flush=True)
        env = dict(os.environ, PYTHONWARNINGS='ignore')
        # Idle OpenMP threads sleep instead of spinning, so the data
        # loader's workers get the cores (same results bit for bit; the MME
        # pretraining is 1.5x faster on 2 cores; benchmarks/cpu_threads.py).
        env.setdefault('OMP_WAIT_POLICY', CPU_OMP_WAIT_POLICY)
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


def _ckpts(work: str) -> List[str]:
    ckpts = glob(osp.join(work, 'epoch_*.pth'))
    if not ckpts:
        raise SystemExit(f'no checkpoint in {work}')
    return sorted(ckpts, key=lambda p: int(re.findall(r'epoch_(\d+)', p)[0]))


def _scalars(work: str) -> List[Dict]:
    files = sorted(glob(osp.join(work, '*', 'vis_data', 'scalars.json')))
    if not files:
        return []
    with open(files[-1]) as f:
        return [json.loads(line) for line in f]


class Probe:
    """Logistic-regression probes of frozen encoders on the dataset."""

    def __init__(self, data_root: str) -> None:
        from mmengine.config import Config

        from mme_plugin.registry import DATASETS
        from mme_plugin.utils import register_all_modules
        register_all_modules()
        cfg = Config.fromfile(osp.join(REPO, SUPERVISED))
        self.backbone_cfg = cfg.model.backbone
        self.data = {}
        for split in ('train', 'val'):
            ds = cfg.test_dataloader.dataset.copy()
            ds.ann_file = f'{data_root}/{split}.txt'
            ds.data_prefix = dict(video=data_root)
            ds.pipeline = cfg.val_dataloader.dataset.pipeline  # 1 view
            self.data[split] = DATASETS.build(ds)

    def encoder(self, ckpt: Optional[str], seed: int):
        """A stock VisionTransformer: random init (seeded) or the
        ``backbone.*`` weights of a pretraining checkpoint."""
        import logging

        import torch
        from mmengine.logging import MMLogger

        from mme_plugin.checkpoint import extract_prefix
        from mme_plugin.engine.safe_load import safe_torch_load
        from mme_plugin.registry import MODELS
        torch.manual_seed(seed)
        enc = MODELS.build(self.backbone_cfg)
        # mmengine logs every parameter's init at INFO when no runner has a
        # log file: ~300 lines per probe in the main job's output
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            enc.init_weights()
        finally:
            logger.setLevel(level)
        if ckpt is not None:
            state = safe_torch_load(ckpt)['state_dict']
            state = extract_prefix(state, 'backbone.')
            state.setdefault('pos_embed', enc.state_dict()['pos_embed'])
            enc.load_state_dict(state, strict=True)
        return enc

    def __call__(self, ckpt: Optional[str], seed: int) -> Dict:
        """Train and test accuracy of the probe on ``ckpt``'s encoder, how
        much its test features vary between clips
        (:func:`~mme_plugin.evaluation.feature_spread`), and its collapse
        measures (:mod:`mme_plugin.evaluation.collapse`): the constant share
        of the last block's test tokens and the per-block top / median
        singular value ratios."""
        from mme_plugin.evaluation import (ConstantShareMeter,
                                           block_sv_ratios, extract_features,
                                           feature_spread, logistic_probe)
        enc = self.encoder(ckpt, seed)
        xtr, ytr = extract_features(enc, self.data['train'])
        meter = ConstantShareMeter()
        handle = enc.blocks[-1].register_forward_hook(
            lambda m, i, o: meter.update(o))
        try:
            xte, yte = extract_features(enc, self.data['val'])
        finally:
            handle.remove()
        return dict(logistic_probe(xtr, ytr, xte, yte), **feature_spread(xte),
                    constant_share=meter.value,
                    sv_ratio=block_sv_ratios(enc.blocks))


def parse_options(options: List[str]) -> Dict:
    """``KEY=VALUE`` strings as ``--cfg-options`` parses them."""
    from mmengine.config import DictAction
    out = {}
    for item in options:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise SystemExit(f'--pretrain-options: expected KEY=VALUE, got '
                             f'{item!r}')
        out[key] = DictAction._parse_iterable(value)
    return out


def levels_of(method: str, data_root: str,
              options: Optional[List[str]] = None
              ) -> Dict[str, Dict[str, float]]:
    """Trivial levels of the pretraining targets of ``method`` (with the
    ``KEY=VALUE`` overrides ``options``), on 256 samples of its own
    pipeline (seeded)."""
    from mmengine.config import Config

    from mme_plugin.evaluation import trivial_levels
    from mme_plugin.registry import DATASETS, MODELS
    from mme_plugin.utils import flow_cache_options, register_all_modules
    register_all_modules()
    config, opts = method_spec(method)
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.merge_from_dict(opts)
    cfg.merge_from_dict(parse_options(options or []))
    cfg.merge_from_dict({
        'train_dataloader.dataset.ann_file': f'{data_root}/train.txt',
        'train_dataloader.dataset.data_prefix.video': data_root})
    cfg.merge_from_dict(flow_cache_options(cfg.train_dataloader.dataset,
                                           data_root))
    return trivial_levels(MODELS.build(cfg.model),
                          DATASETS.build(cfg.train_dataloader.dataset),
                          num_samples=256)


def end_ratios(work: str, levels: Dict[str, Dict[str, float]]
               ) -> Dict[str, Dict[str, float]]:
    """Each loss term at the end of pretraining (mean of the last 5 logged
    values) against its trivial level (the lower of predict-zero and
    predict-the-mean)."""
    rows = [r for r in _scalars(work) if 'loss' in r]
    out = {}
    for name, lv in levels.items():
        vals = [r[f'loss_{name}'] for r in rows if f'loss_{name}' in r]
        if not vals:  # a term with weight 0 (an ablation) is not trained
            continue
        end = sum(vals[-5:]) / len(vals[-5:])
        trivial = min(lv['zero'], lv['mean'])
        out[name] = dict(end=end, trivial=trivial, ratio=end / trivial,
                         zero=lv['zero'], mean=lv['mean'])
    return out


def run_seed(r: Runner, probe: Probe, methods: List[str], seed: int,
             levels: Dict, long: bool, supervised: bool) -> Dict:
    """Pretrain, probe and train the supervised baseline for one seed."""
    res: Dict = {'seed': seed, 'probe': {}, 'pretrain': {}}
    res['probe']['random init'] = probe(None, seed)
    for method in methods:
        pre = osp.join(r.work_dir, f'seed{seed}', method, 'pretrain')
        t0 = time.time()
        config, opts = method_spec(method)
        r.run(f'seed{seed}_{method}_pretrain', [
            'tools/train.py', config, '--work-dir', pre, '--seed',
            str(seed), '--cfg-options', *r.data_opts()[:2],
            *r.flow_opts(config),
            'default_hooks.checkpoint.interval=10',
            'default_hooks.checkpoint.max_keep_ckpts=-1',
            *[f'{k}={v}' for k, v in opts.items()], *r.pretrain_options
        ])
        ckpts = _ckpts(pre)
        res['pretrain'][method] = dict(
            seconds=round(time.time() - t0),
            losses=end_ratios(pre, levels[method]))
        res['probe'][method] = probe(ckpts[-1], seed)
        if seed == 0:  # probe accuracy against pretraining epochs
            res.setdefault('probe_curve', {})[method] = [
                (int(re.findall(r'epoch_(\d+)', c)[0]),
                 (probe(c, seed) if c != ckpts[-1] else
                  res['probe'][method])['test_acc']) for c in ckpts]
        if long and method in DOWNSTREAM:
            res.setdefault('long', {})[method] = downstream(
                r, seed, method, ckpts[-1])
    if not supervised:
        return res
    work = osp.join(r.work_dir, f'seed{seed}', 'supervised')
    r.run(f'seed{seed}_supervised', [  # last checkpoint: no validation
        'tools/train.py', SUPERVISED, '--work-dir', work, '--seed',
        str(seed), '--no-validate', '--cfg-options', *r.data_opts()[:2]])
    out = r.run(f'seed{seed}_supervised_test', [
        'tools/test.py', SUPERVISED, _ckpts(work)[-1], '--work-dir', work,
        '--cfg-options', *r.data_opts(test=True)])
    res['supervised'] = _acc(out)
    return res


def downstream(r: Runner, seed: int, method: str, ckpt: str) -> Dict:
    """Long variant: convert, fine-tune and linear-probe with the stock
    recognizer configs, then test (last checkpoint)."""
    base = osp.join(r.work_dir, f'seed{seed}', method)
    init = osp.join(base, 'backbone.pth')
    r.run(f'seed{seed}_{method}_convert', [
        'tools/convert/mme_to_recognizer.py', ckpt, init, '--config',
        FINETUNE])
    out = {}
    for stage, cfg in (('finetune', FINETUNE), ('linear', LINEAR)):
        work = osp.join(base, stage)
        r.run(f'seed{seed}_{method}_{stage}', [  # last checkpoint tested
            'tools/train.py', cfg, '--work-dir', work, '--seed', str(seed),
            '--no-validate', '--cfg-options', *r.data_opts()[:2],
            f'load_from={init}'])
        out[stage] = _acc(r.run(f'seed{seed}_{method}_{stage}_test', [
            'tools/test.py', cfg, _ckpts(work)[-1], '--work-dir', work,
            '--cfg-options', *r.data_opts(test=True)]))
    return out


def _mean_sd(values: List[float]) -> str:
    import numpy as np
    v = 100 * np.array(values)
    return (f'{v.mean():.1f} +- {v.std(ddof=1):.1f}' if len(v) > 1 else
            f'{v.mean():.1f}')


def rescore(results: List[Dict], levels: Dict) -> None:
    """Put ``levels`` (of :func:`levels_of`) in place of the trivial levels
    of ``results`` (in place): the logged ends stay, the ratios follow."""
    for x in results:
        for method, pre in x['pretrain'].items():
            for name, loss in pre['losses'].items():
                lv = levels[method][name]
                trivial = min(lv['zero'], lv['mean'])
                loss.update(trivial=trivial, ratio=loss['end'] / trivial,
                            zero=lv['zero'], mean=lv['mean'])


def loss_state(ratio: float) -> str:
    """Words for a loss that ended at ``ratio`` x its trivial level."""
    if ratio <= INFORMATIVE:
        return 'learned'
    if ratio < AT_LEVEL:
        return f'not clearly below its trivial level (> {INFORMATIVE})'
    return 'at its trivial level'


def informative(results: List[Dict], method: str) -> Tuple[bool, str]:
    """Whether every loss of ``method`` ended >= 10 % below its trivial
    level in every seed; with the worst ratio as the reason."""
    ratios = {name: max(x['pretrain'][method]['losses'][name]['ratio']
                        for x in results)
              for name in results[0]['pretrain'][method]['losses']}
    ok = all(v <= INFORMATIVE for v in ratios.values())
    why = ', '.join(f'{k} ends at {v:.3f} x its trivial level'
                    for k, v in ratios.items())
    return ok, why


def summarize(results: List[Dict], methods: List[str],
              num_test: int) -> str:
    """Markdown tables: pretraining losses vs trivial levels, probes,
    supervised baseline, and which comparisons are informative."""
    import numpy as np
    p = 1 / NUM_CLASSES
    se = 100 * (p * (1 - p) / num_test)**0.5
    lines = [
        f'Seeds: {[x["seed"] for x in results]}; {num_test} test clips, '
        f'{NUM_CLASSES} classes: chance {100 * p:.1f} % (standard error '
        f'{se:.1f} points at chance).', '',
        '| pretraining | target | loss at end | predict zero | predict '
        'mean | end / trivial | verdict |', '|---|---|---|---|---|---|---|'
    ]
    verdict = {}
    for m in methods:
        ok, why = informative(results, m)
        verdict[m] = (ok, why)
        for name in results[0]['pretrain'][m]['losses']:
            vals = [x['pretrain'][m]['losses'][name] for x in results]
            ratio = max(v['ratio'] for v in vals)
            state = loss_state(ratio)
            lines.append(
                f"| {m} | {name} | {np.mean([v['end'] for v in vals]):.4f} |"
                f" {vals[0]['zero']:.4f} | {vals[0]['mean']:.4f} | "
                f'{ratio:.3f} | {state} |')
    lines += ['', '| encoder (frozen) | logistic probe, test top-1 (%) | '
              'train top-1 (%) | feature spread (participation ratio) | '
              'constant share (max top/median singular value) | status |',
              '|---|---|---|---|---|---|']
    for enc in ['random init'] + methods:
        te = [x['probe'][enc]['test_acc'] for x in results]
        tr = [x['probe'][enc]['train_acc'] for x in results]
        status = 'reference' if enc == 'random init' else (
            'informative' if verdict[enc][0] else
            f'uninformative ({verdict[enc][1]})')
        sp = [x['probe'][enc].get('relative_spread') for x in results]
        pr = [x['probe'][enc].get('participation_ratio') for x in results]
        spread = (f'{np.mean(sp):.3f} ({np.mean(pr):.1f})'
                  if None not in sp + pr else 'not measured')
        sh = [x['probe'][enc].get('constant_share') for x in results]
        sv = [max(x['probe'][enc].get('sv_ratio') or [float('nan')])
              for x in results]
        share = (f'{np.mean(sh):.3f} ({np.mean(sv):.1f})'
                 if None not in sh else 'not measured')
        lines.append(f'| {enc} | {_mean_sd(te)} | {_mean_sd(tr)} | '
                     f'{spread} | {share} | {status} |')
    sup = [x['supervised']['acc/top1'] for x in results
           if 'supervised' in x]
    seeds = [x['seed'] for x in results if 'supervised' in x]
    lines += ['', f'Supervised, no pretraining (stock recognizer, plain '
              f'recipe, trained end to end; the positive control; seeds '
              f'{seeds}): {_mean_sd(sup)} % top-1.' if sup else
              'Supervised baseline: not run (--supervised-seeds).']
    if 'long' in results[0]:
        lines += ['', '| pretraining | fine-tune top-1 (%) | stock linear '
                  'probe top-1 (%) |', '|---|---|---|']
        for m in [m for m in methods if m in results[0]['long']]:
            ft = [x['long'][m]['finetune']['acc/top1'] for x in results]
            lp = [x['long'][m]['linear']['acc/top1'] for x in results]
            lines.append(f'| {m} | {_mean_sd(ft)} | {_mean_sd(lp)} |')
    lines += ['', 'Feature spread: across-clip standard deviation of the '
              'pooled test features over their norm (0 = the same feature '
              'for every clip, i.e. collapse); participation ratio: the '
              'number of directions they vary along. Constant share: '
              "||mean|| / RMS norm of the last block's test tokens over "
              'all clips and tokens (0 = no input-independent part, 1 = '
              'the same for every clip and token; > 0.9 counts as '
              'collapsed); in brackets the largest top / median singular '
              "value ratio of a block's weight matrices (about 2 at "
              'random init; large = one dominant direction).']
    lines += ['', 'Comparisons:']
    rand = np.array([x['probe']['random init']['test_acc'] for x in results])
    for m in methods:
        d = 100 * (np.array([x['probe'][m]['test_acc'] for x in results]) -
                   rand)
        if verdict[m][0]:
            per_seed = ', '.join(f'{v:+.1f}' for v in d)
            lines.append(f'- {m} probe - random-init probe: {d.mean():+.1f} '
                         f'points (seeds: {per_seed})')
        else:
            lines.append(f'- {m}: uninformative, not ranked ({verdict[m][1]}'
                         f'; probe - random init {d.mean():+.1f} points)')
    return '\n'.join(lines)


def plot_curves(work_dir: str, results: List[Dict], methods: List[str],
                num_test: int) -> str:
    """Losses / trivial level against iteration (seed 0) and probe
    accuracy against pretraining epoch (seed 0)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    first = results[0]
    for m in methods:
        rows = [x for x in _scalars(osp.join(
            work_dir, f'seed{first["seed"]}', m, 'pretrain')) if 'loss' in x]
        for name, v in first['pretrain'][m]['losses'].items():
            axes[0].plot([x['step'] for x in rows],
                         [x[f'loss_{name}'] / v['trivial'] for x in rows],
                         label=f'{m}: {name}')
    axes[0].axhline(1.0, color='k', lw=1, label='trivial level')
    axes[0].axhline(INFORMATIVE, color='k', lw=1, ls='--',
                    label=f'{INFORMATIVE:.0%} of it')
    axes[0].set(title='pretraining loss / its trivial level (seed '
                f'{first["seed"]})', xlabel='iteration')
    p = 1 / NUM_CLASSES
    se = (p * (1 - p) / num_test)**0.5
    axes[1].axhspan(100 * (p - 2 * se), 100 * (p + 2 * se), color='0.85',
                    label='chance +- 2 SE')
    axes[1].axhline(100 * first['probe']['random init']['test_acc'],
                    color='k', lw=1, label='random init')
    for m, pts in first.get('probe_curve', {}).items():
        axes[1].plot([e for e, _ in pts], [100 * a for _, a in pts], 'o-',
                     label=m)
    axes[1].set(title='logistic probe, test top-1 (%)',
                xlabel='pretraining epoch')
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = osp.join(work_dir, 'curves.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def rescore_run(work_dir: str, data_root: str, options: List[str],
                num_test: int) -> None:
    """``--rescore``: the trivial levels measured again and the final
    checkpoints probed again for a finished run; writes
    ``results_rescored.{json,md}`` next to its ``results.json``."""
    res_path = osp.join(work_dir, 'results.json')
    with open(res_path) as f:
        results = json.load(f)['results']
    methods = list(results[0]['pretrain'])
    levels = {m: levels_of(m, data_root, options) for m in methods}
    rescore(results, levels)
    probe = Probe(data_root)
    for x in results:  # probes again: the feature spread too
        x['probe']['random init'] = probe(None, x['seed'])
        for m in methods:
            x['probe'][m] = probe(_ckpts(osp.join(
                work_dir, f"seed{x['seed']}", m, 'pretrain'))[-1], x['seed'])
    with open(osp.join(work_dir, 'results_rescored.json'), 'w') as f:
        json.dump(dict(levels=levels, results=results), f, indent=1)
    table = summarize(results, methods, num_test)
    with open(osp.join(work_dir, 'results_rescored.md'), 'w') as f:
        f.write(table + '\n')
    print(f'\n{res_path}, levels measured and checkpoints probed again:'
          f'\n{table}')


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=None,
                        help='default: work_dirs/synthetic_benchmark, or '
                        'work_dirs/synthetic_benchmark_long with --long (so '
                        "the long variant keeps the main job's results)")
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=['videomae', 'mme'],
                        choices=METHODS)
    parser.add_argument('--train-per-class', type=int, default=40)
    parser.add_argument('--test-per-class', type=int, default=50)
    parser.add_argument('--supervised-seeds', type=int, nargs='*',
                        default=[0], help='seeds of the supervised '
                        'baseline (all seeds with --long; the flag alone: '
                        'none)')
    parser.add_argument('--long', action='store_true',
                        help='also fine-tune and stock-linear-probe the '
                        'VideoMAE and MME encoders, train the supervised '
                        'baseline on every seed, and add the MME ablations '
                        '(absolute displacements, no HOG, L = 2)')
    parser.add_argument('--pretrain-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='overrides of every pretraining config, as '
                        'tools/train.py --cfg-options takes them (trivial '
                        'levels are measured with them too), e.g. '
                        + edit_key('TubeMasking', 'mask_ratio') + '=0.5; '
                        'use with a new --work-dir')
    parser.add_argument('--rescore', action='store_true',
                        help="measure the trivial levels again (this "
                        "code, same data) for the methods of the work "
                        "dir's results.json, probe its final checkpoints "
                        'again, and write results_rescored.json and '
                        'results_rescored.md with its logged losses; '
                        'trains nothing')
    args = parser.parse_args()
    parse_options(args.pretrain_options)  # fail early on a malformed item
    if args.work_dir is None:
        args.work_dir = ('work_dirs/synthetic_benchmark_long' if args.long
                         else 'work_dirs/synthetic_benchmark')
    if args.long:
        args.methods += [m for m in METHODS if m not in args.methods]
    os.makedirs(args.work_dir, exist_ok=True)
    r = Runner(args.work_dir, args.data_root, args.pretrain_options)
    r.run('make_synthetic', [
        'tools/data/make_synthetic.py', args.data_root, '--train',
        str(args.train_per_class), '--val', str(args.test_per_class)
    ])
    num_test = args.test_per_class * NUM_CLASSES
    res_path = osp.join(args.work_dir, 'results.json')
    if args.rescore:
        return rescore_run(args.work_dir, args.data_root,
                           args.pretrain_options, num_test)
    probe = Probe(args.data_root)
    t0 = time.time()
    levels = {m: levels_of(m, args.data_root, args.pretrain_options)
              for m in args.methods}
    print(f'[{time.time() - r.start:6.0f}s] trivial levels measured in '
          f'{time.time() - t0:.0f}s', flush=True)
    results = []
    for seed in args.seeds:
        results.append(run_seed(
            r, probe, args.methods, seed, levels, args.long,
            args.long or seed in args.supervised_seeds))
        with open(res_path, 'w') as f:
            json.dump(dict(levels=levels, results=results), f, indent=1)
    table = summarize(results, args.methods, num_test)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    curves = plot_curves(args.work_dir, results, args.methods, num_test)
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
