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
  features (:func:`logistic_probe`) and a ridge regression to the clips'
  exact motion: random init, VideoMAE, MME (seed 0 also at intermediate
  checkpoints);
* fine-tune the same encoders end to end on 5 labelled clips per class
  (:func:`finetune_classifier`, the low-label read-out);
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
policy (see :data:`mme_plugin.benchmark.run.CPU_OMP_WAIT_POLICY`). The
pieces live in :mod:`mme_plugin.benchmark` (runs, probes, levels, report);
this file parses the command line and puts them in order.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time
from typing import List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mme_plugin.benchmark import (METHODS, NUM_CLASSES, PRETRAIN,  # noqa: E402
                                  BenchmarkRun, Probe, levels_of,
                                  parse_options, plot_curves, rescore_run,
                                  run_seed, summarize)
from mme_plugin.utils.pipeline import edit_key  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line, with the defaults that depend on ``--long``.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        argparse.Namespace: The arguments.
    """
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
                        "dir's results.json, probe and low-label "
                        'fine-tune its final checkpoints again, and '
                        'write results_rescored.json and '
                        'results_rescored.md with its logged losses; '
                        'trains nothing')
    args = parser.parse_args(argv)
    parse_options(args.pretrain_options)  # fail early on a malformed item
    if args.work_dir is None:
        args.work_dir = ('work_dirs/synthetic_benchmark_long' if args.long
                         else 'work_dirs/synthetic_benchmark')
    if args.long:
        args.methods += [m for m in METHODS if m not in args.methods]
    return args


def visualize_samples(r: BenchmarkRun, args: argparse.Namespace
                      ) -> List[str]:
    """One clip's mask and trajectories per motion, under ``samples/``.

    Args:
        r: The run.
        args: The arguments.

    Returns:
        list: The written pictures.
    """
    names = ('move_right_0000', 'rotate_cw_0000', 'approach_0000')
    out = r.run('visualize_samples', [  # one process: imports once
        'tools/analysis/visualize_mme.py', PRETRAIN['mme'],
        *[osp.join(args.data_root, 'val', f'{name}.mp4') for name in names],
        '--out', osp.join(args.work_dir, 'samples')
    ])
    return re.findall(r'wrote (\S+)', out)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    r = BenchmarkRun(args.work_dir, args.data_root, args.pretrain_options)
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
    samples = visualize_samples(r, args)
    print(f'\nSynthetic motion benchmark ({len(args.seeds)} seed(s), '
          f'{time.time() - r.start:.0f}s):\n{table}\n')
    print(f'results: {res_path}\ncurves: {curves}\nsamples: '
          f'{", ".join(samples)}')


if __name__ == '__main__':
    main()
