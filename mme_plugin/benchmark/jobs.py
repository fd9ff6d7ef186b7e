"""What the benchmark runs: per seed, pretrain every method, probe it, and
train the supervised baseline; the long variant's downstream runs; and the
rescoring of a finished run."""
import json
import os.path as osp
import re
import time
from typing import Dict, List

from .levels import end_ratios, levels_of, rescore
from .methods import (DOWNSTREAM, FINETUNE, LINEAR, SUPERVISED,
                      method_spec)
from .probe import Probe
from .report import summarize
from .run import BenchmarkRun, checkpoints, parse_accuracy

__all__ = ['run_seed', 'downstream', 'rescore_run']

#: A :class:`~.probe.Probe` or a stand-in: ``probe(ckpt or None, seed) ->
#: dict`` and ``probe.low_label(ckpt or None, seed) -> dict``.
ProbeFn = Probe


def _epoch(ckpt: str) -> int:
    return int(re.findall(r'epoch_(\d+)', ckpt)[0])


def _pretrain(r: BenchmarkRun, method: str, seed: int, work: str) -> None:
    """One pretraining through ``tools/train.py`` (a checkpoint every 10
    epochs, all kept)."""
    config, opts = method_spec(method)
    r.run(f'seed{seed}_{method}_pretrain', [
        'tools/train.py', config, '--work-dir', work, '--seed',
        str(seed), '--cfg-options', *r.data_opts()[:2],
        *r.flow_opts(config),
        'default_hooks.checkpoint.interval=10',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        *[f'{k}={v}' for k, v in opts.items()], *r.pretrain_options
    ])


def _train_and_test(r: BenchmarkRun, name: str, config: str, work: str,
                    seed: int, extra: List[str]) -> Dict[str, float]:
    """Train without validation, then test the last checkpoint."""
    r.run(name, [
        'tools/train.py', config, '--work-dir', work, '--seed', str(seed),
        '--no-validate', '--cfg-options', *r.data_opts()[:2], *extra])
    return parse_accuracy(r.run(f'{name}_test', [
        'tools/test.py', config, checkpoints(work)[-1], '--work-dir', work,
        '--cfg-options', *r.data_opts(test=True)]))


def run_seed(r: BenchmarkRun, probe: ProbeFn, methods: List[str], seed: int,
             levels: Dict, long: bool, supervised: bool) -> Dict:
    """Pretrain, probe and train the supervised baseline for one seed.

    Args:
        r: The run.
        probe: Probes an encoder.
        methods: Pretraining methods.
        seed: The seed.
        levels: ``{method: levels}`` (:func:`~.levels.levels_of`).
        long: Also the downstream runs of :data:`~.methods.DOWNSTREAM`.
        supervised: Also the supervised baseline.

    Returns:
        dict: This seed's results (``seed``, ``probe`` and ``low_label``
        of random init and each method, ``pretrain`` and as run
        ``probe_curve``, ``long``, ``supervised`` with
        ``probe['supervised']``, its encoder probed).
    """
    res: Dict = {'seed': seed, 'probe': {}, 'pretrain': {},
                 'low_label': {}}
    res['probe']['random init'] = probe(None, seed)
    res['low_label']['random init'] = probe.low_label(None, seed)
    for method in methods:
        pre = osp.join(r.work_dir, f'seed{seed}', method, 'pretrain')
        t0 = time.time()
        _pretrain(r, method, seed, pre)
        ckpts = checkpoints(pre)
        res['pretrain'][method] = dict(
            seconds=round(time.time() - t0),
            losses=end_ratios(pre, levels[method]))
        res['probe'][method] = probe(ckpts[-1], seed)
        res['low_label'][method] = probe.low_label(ckpts[-1], seed)
        if seed == 0:  # probe accuracy against pretraining epochs
            res.setdefault('probe_curve', {})[method] = [
                (_epoch(c), (probe(c, seed) if c != ckpts[-1] else
                             res['probe'][method])['test_acc'])
                for c in ckpts]
        if long and method in DOWNSTREAM:
            res.setdefault('long', {})[method] = downstream(
                r, seed, method, ckpts[-1])
    if supervised:  # the last checkpoint: no validation
        work = osp.join(r.work_dir, f'seed{seed}', 'supervised')
        res['supervised'] = _train_and_test(
            r, f'seed{seed}_supervised', SUPERVISED, work, seed, [])
        # its encoder through the same probes: the positive control
        res['probe']['supervised'] = probe(checkpoints(work)[-1], seed)
    return res


def downstream(r: BenchmarkRun, seed: int, method: str, ckpt: str) -> Dict:
    """Long variant: convert, fine-tune and linear-probe with the stock
    recognizer configs, then test (last checkpoint).

    Args:
        r: The run.
        seed: The seed.
        method: The pretraining method.
        ckpt: Its final pretraining checkpoint.

    Returns:
        dict: ``{'finetune': accuracies, 'linear': accuracies}``.
    """
    base = osp.join(r.work_dir, f'seed{seed}', method)
    init = osp.join(base, 'backbone.pth')
    r.run(f'seed{seed}_{method}_convert', [
        'tools/convert/mme_to_recognizer.py', ckpt, init, '--config',
        FINETUNE])
    return {stage: _train_and_test(
        r, f'seed{seed}_{method}_{stage}', cfg, osp.join(base, stage), seed,
        [f'load_from={init}'])
        for stage, cfg in (('finetune', FINETUNE), ('linear', LINEAR))}


def rescore_run(work_dir: str, data_root: str, options: List[str],
                num_test: int) -> None:
    """``--rescore``: the trivial levels measured again and the final
    checkpoints probed and low-label fine-tuned again for a finished run;
    writes ``results_rescored.{json,md}`` next to its ``results.json``.

    Args:
        work_dir: The finished run's work dir.
        data_root: Its dataset.
        options: Its ``--pretrain-options``.
        num_test: Test clips.
    """
    res_path = osp.join(work_dir, 'results.json')
    with open(res_path) as f:
        results = json.load(f)['results']
    methods = list(results[0]['pretrain'])
    levels = {m: levels_of(m, data_root, options) for m in methods}
    rescore(results, levels)
    probe = Probe(data_root)
    for x in results:  # probes again: the feature spread too
        x['probe']['random init'] = probe(None, x['seed'])
        x['low_label'] = {'random init': probe.low_label(None, x['seed'])}
        for m in methods:
            ckpt = checkpoints(osp.join(work_dir, f"seed{x['seed']}", m,
                                        'pretrain'))[-1]
            x['probe'][m] = probe(ckpt, x['seed'])
            x['low_label'][m] = probe.low_label(ckpt, x['seed'])
        if 'supervised' in x:  # the positive control's encoder too
            x['probe']['supervised'] = probe(checkpoints(osp.join(
                work_dir, f"seed{x['seed']}", 'supervised'))[-1], x['seed'])
    with open(osp.join(work_dir, 'results_rescored.json'), 'w') as f:
        json.dump(dict(levels=levels, results=results), f, indent=1)
    table = summarize(results, methods, num_test)
    with open(osp.join(work_dir, 'results_rescored.md'), 'w') as f:
        f.write(table + '\n')
    print(f'\n{res_path}, levels measured and checkpoints probed again:'
          f'\n{table}')
