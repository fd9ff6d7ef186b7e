"""The benchmark's Markdown report: pretraining losses against their
trivial levels, probes, the low-label fine-tune, the supervised baseline,
the long variant's downstream results, and which comparisons are
informative."""
from typing import Dict, List, Optional, Tuple

from .methods import NUM_CLASSES

__all__ = [
    'INFORMATIVE', 'AT_LEVEL', 'mean_sd', 'loss_state', 'informative',
    'summarize'
]

#: A loss must end this far below its trivial level to count as learned.
INFORMATIVE = 0.9
#: ... and a loss that ends above this is reported at its trivial level.
AT_LEVEL = 0.98

_NOTES = (
    'Motion R^2: ridge regression (strength per target by leave-one-out '
    'on the train clips) from the same frozen features to each clip\'s '
    'exact motion (vx, vy, rotation, scale rate; the generator\'s), R^2 on '
    'the test clips averaged over the 4 (in brackets over vx, vy); 0 = no '
    'better than the mean. Most of that variance is the class; "within '
    'class" is the R^2 of the motion minus its class\'s mean (the speed). '
    'Feature spread: across-clip standard deviation of the pooled test '
    'features over their norm (0 = the same feature for every clip, i.e. '
    'collapse); participation ratio: the number of directions they vary '
    "along. Constant share: ||mean|| / RMS norm of the last block's test "
    'tokens over all clips and tokens (0 = no input-independent part, 1 = '
    'the same for every clip and token; > 0.9 counts as collapsed); in '
    'brackets the largest top / median singular value ratio of a block\'s '
    'weight matrices (about 2 at random init; large = one dominant '
    'direction). Low-label fine-tune: encoder + linear head trained end '
    'to end on a seeded draw of a few train clips per class (fixed recipe, '
    'no augmentation; mme_plugin/evaluation/low_label.py), top-1 on the '
    'test clips; the supervised line above is the same encoder trained on '
    'all train clips.')

#: ``{method: (informative, why)}`` of :func:`informative`.
Verdicts = Dict[str, Tuple[bool, str]]


def mean_sd(values: List[float]) -> str:
    """Fractions as ``mean +- sd`` percent (the mean alone for one value).

    Args:
        values: Fractions (0-1), one per seed.

    Returns:
        str: E.g. ``'13.8 +- 1.8'``.
    """
    import numpy as np
    v = 100 * np.array(values)
    return (f'{v.mean():.1f} +- {v.std(ddof=1):.1f}' if len(v) > 1 else
            f'{v.mean():.1f}')


def loss_state(ratio: float) -> str:
    """Words for a loss that ended at ``ratio`` x its trivial level.

    Args:
        ratio: End / trivial level.

    Returns:
        str: ``'learned'`` up to :data:`INFORMATIVE`, ``'at its trivial
        level'`` from :data:`AT_LEVEL`, something in between otherwise.
    """
    if ratio <= INFORMATIVE:
        return 'learned'
    if ratio < AT_LEVEL:
        return f'not clearly below its trivial level (> {INFORMATIVE})'
    return 'at its trivial level'


def informative(results: List[Dict], method: str) -> Tuple[bool, str]:
    """Whether every loss of ``method`` ended >= 10 % below its trivial
    level in every seed.

    Args:
        results: Per-seed results.
        method: A pretraining method of them.

    Returns:
        tuple: The verdict, and each loss's worst ratio as the reason.
    """
    ratios = {name: max(x['pretrain'][method]['losses'][name]['ratio']
                        for x in results)
              for name in results[0]['pretrain'][method]['losses']}
    ok = all(v <= INFORMATIVE for v in ratios.values())
    why = ', '.join(f'{k} ends at {v:.3f} x its trivial level'
                    for k, v in ratios.items())
    return ok, why


def _header(results: List[Dict], num_test: int) -> List[str]:
    """Seeds, test clips and chance with its standard error."""
    p = 1 / NUM_CLASSES
    se = 100 * (p * (1 - p) / num_test)**0.5
    return [
        f'Seeds: {[x["seed"] for x in results]}; {num_test} test clips, '
        f'{NUM_CLASSES} classes: chance {100 * p:.1f} % (standard error '
        f'{se:.1f} points at chance).'
    ]


def _loss_table(results: List[Dict], methods: List[str]) -> List[str]:
    """One row per pretraining loss: mean end, levels, worst ratio."""
    import numpy as np
    lines = ['| pretraining | target | loss at end | predict zero | predict '
             'mean | end / trivial | verdict |',
             '|---|---|---|---|---|---|---|']
    for m in methods:
        for name in results[0]['pretrain'][m]['losses']:
            vals = [x['pretrain'][m]['losses'][name] for x in results]
            ratio = max(v['ratio'] for v in vals)
            lines.append(
                f"| {m} | {name} | {np.mean([v['end'] for v in vals]):.4f} |"
                f" {vals[0]['zero']:.4f} | {vals[0]['mean']:.4f} | "
                f'{ratio:.3f} | {loss_state(ratio)} |')
    return lines


def _spread_cell(probes: List[Dict]) -> str:
    """Mean relative spread (participation ratio), if measured."""
    import numpy as np
    sp = [p.get('relative_spread') for p in probes]
    pr = [p.get('participation_ratio') for p in probes]
    if None in sp + pr:
        return 'not measured'
    return f'{np.mean(sp):.3f} ({np.mean(pr):.1f})'


def _share_cell(probes: List[Dict]) -> str:
    """Mean constant share (mean of each seed's largest singular value
    ratio), if measured."""
    import numpy as np
    sh = [p.get('constant_share') for p in probes]
    sv = [max(p.get('sv_ratio') or [float('nan')]) for p in probes]
    if None in sh:
        return 'not measured'
    return f'{np.mean(sh):.3f} ({np.mean(sv):.1f})'


def _motion_cell(probes: List[Dict]) -> str:
    """Mean motion-regression R^2 (translation R^2) / within-class R^2,
    if measured."""
    import numpy as np
    mo = [p.get('motion_r2') for p in probes]
    tr = [p.get('translation_r2') for p in probes]
    wc = [p.get('within_class_r2') for p in probes]
    if None in mo + tr:
        return 'not measured'
    cell = f'{np.mean(mo):.2f} ({np.mean(tr):.2f})'
    return cell if None in wc else f'{cell} / {np.mean(wc):.2f}'


def _status(enc: str, verdict: Verdicts) -> str:
    if enc == 'random init':
        return 'reference'
    if enc == 'supervised':
        return 'positive control (trained on the labels)'
    ok, why = verdict[enc]
    return 'informative' if ok else f'uninformative ({why})'


def _probe_table(results: List[Dict], methods: List[str],
                 verdict: Verdicts) -> List[str]:
    """One row per frozen encoder (the supervised one over the seeds
    that trained it): probe accuracies, motion R^2 and collapse measures."""
    lines = ['| encoder (frozen) | logistic probe, test top-1 (%) | '
             'train top-1 (%) | motion R^2 (translation R^2) / within '
             'class | feature spread (participation ratio) | '
             'constant share (max top/median singular value) | status |',
             '|---|---|---|---|---|---|---|']
    # the supervised encoder's row over the seeds it was trained on
    sup_seeds = [x['seed'] for x in results if 'supervised' in x['probe']]
    rows = [(enc, enc, results) for enc in ['random init'] + methods]
    if sup_seeds:
        rows.append(('supervised', f'supervised (seeds {sup_seeds})',
                     [x for x in results if 'supervised' in x['probe']]))
    for enc, label, res in rows:
        probes = [x['probe'][enc] for x in res]
        te = mean_sd([p['test_acc'] for p in probes])
        tr = mean_sd([p['train_acc'] for p in probes])
        lines.append(f'| {label} | {te} | {tr} | {_motion_cell(probes)} | '
                     f'{_spread_cell(probes)} | {_share_cell(probes)} | '
                     f'{_status(enc, verdict)} |')
    return lines


def _low_label_table(results: List[Dict],
                     methods: List[str]) -> Optional[List[str]]:
    """The low-label fine-tune per encoder, against random init per seed
    (None for results without it)."""
    import numpy as np
    if not results or not all('low_label' in x for x in results):
        return None
    k = results[0]['low_label']['random init']['per_class']
    lines = [f'| encoder (fine-tuned, {k} labelled clips per class) | '
             'test top-1 (%) | train top-1 (%) | minus random init, per '
             'seed (points) |', '|---|---|---|---|']
    rand = np.array([x['low_label']['random init']['test_acc']
                     for x in results])
    for enc in ['random init'] + methods:
        runs = [x['low_label'][enc] for x in results]
        d = 100 * (np.array([r['test_acc'] for r in runs]) - rand)
        diff = ('-' if enc == 'random init' else
                ', '.join(f'{v:+.1f}' for v in d))
        lines.append(f"| {enc} | {mean_sd([r['test_acc'] for r in runs])} "
                     f"| {mean_sd([r['train_acc'] for r in runs])} | "
                     f'{diff} |')
    return lines


def _supervised(results: List[Dict]) -> List[str]:
    """The positive control's line."""
    sup = [x['supervised']['acc/top1'] for x in results
           if 'supervised' in x]
    if not sup:
        return ['Supervised baseline: not run (--supervised-seeds).']
    seeds = [x['seed'] for x in results if 'supervised' in x]
    return [f'Supervised, no pretraining (stock recognizer, plain recipe, '
            f'trained end to end; the positive control; seeds {seeds}): '
            f'{mean_sd(sup)} % top-1.']


def _downstream_table(results: List[Dict],
                      methods: List[str]) -> Optional[List[str]]:
    """The long variant's fine-tune and stock linear probe (None without
    it)."""
    if 'long' not in results[0]:
        return None
    lines = ['| pretraining | fine-tune top-1 (%) | stock linear probe '
             'top-1 (%) |', '|---|---|---|']
    for m in [m for m in methods if m in results[0]['long']]:
        ft = [x['long'][m]['finetune']['acc/top1'] for x in results]
        lp = [x['long'][m]['linear']['acc/top1'] for x in results]
        lines.append(f'| {m} | {mean_sd(ft)} | {mean_sd(lp)} |')
    return lines


def _comparisons(results: List[Dict], methods: List[str],
                 verdict: Verdicts) -> List[str]:
    """Each method's probe against the random-init probe, ranked only when
    informative."""
    import numpy as np
    lines = ['Comparisons:']
    rand = np.array([x['probe']['random init']['test_acc'] for x in results])
    for m in methods:
        d = 100 * (np.array([x['probe'][m]['test_acc'] for x in results]) -
                   rand)
        ok, why = verdict[m]
        if ok:
            per_seed = ', '.join(f'{v:+.1f}' for v in d)
            lines.append(f'- {m} probe - random-init probe: {d.mean():+.1f} '
                         f'points (seeds: {per_seed})')
        else:
            lines.append(f'- {m}: uninformative, not ranked ({why}; probe - '
                         f'random init {d.mean():+.1f} points)')
    return lines


def summarize(results: List[Dict], methods: List[str],
              num_test: int) -> str:
    """The report: Markdown tables and lines, separated by blank lines.

    Args:
        results: Per-seed results (``results.json``'s ``results``).
        methods: The pretraining methods, in report order.
        num_test: Test clips (for chance's standard error).

    Returns:
        str: Pretraining losses vs trivial levels, probes, the low-label
        fine-tune (if run), supervised baseline, the long variant's table
        (if run), notes and which comparisons are informative.
    """
    verdict = {m: informative(results, m) for m in methods}
    sections = [
        _header(results, num_test) + [''] + _loss_table(results, methods),
        _probe_table(results, methods, verdict),
        _low_label_table(results, methods),
        _supervised(results),
        _downstream_table(results, methods),
        [_NOTES],
        _comparisons(results, methods, verdict),
    ]
    lines: List[str] = []
    for section in sections:
        if section is None:
            continue
        if lines:
            lines.append('')
        lines += section
    return '\n'.join(lines)
