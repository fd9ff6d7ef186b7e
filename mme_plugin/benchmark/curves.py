"""The benchmark's figure: losses against their trivial levels and probe
accuracy against pretraining epochs (seed 0)."""
import os.path as osp
from typing import Dict, List

from .methods import NUM_CLASSES
from .report import INFORMATIVE
from .run import scalars

__all__ = ['plot_curves']


def plot_curves(work_dir: str, results: List[Dict], methods: List[str],
                num_test: int) -> str:
    """Losses / trivial level against iteration and probe accuracy against
    pretraining epoch, both of the first seed.

    Args:
        work_dir: The benchmark's work dir (pretraining logs under
            ``seed<S>/<method>/pretrain``).
        results: Per-seed results.
        methods: The pretraining methods.
        num_test: Test clips (for the chance band).

    Returns:
        str: The written ``<work_dir>/curves.png``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    first = results[0]
    for m in methods:
        rows = [x for x in scalars(osp.join(
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
