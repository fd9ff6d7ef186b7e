"""Pretraining losses against their trivial levels (predict zero, predict
the mean target)."""
import os.path as osp
from typing import Dict, List, Optional

from .methods import REPO, method_spec, parse_options
from .run import scalars

__all__ = ['levels_of', 'end_ratios', 'rescore']


def levels_of(method: str, data_root: str,
              options: Optional[List[str]] = None
              ) -> Dict[str, Dict[str, float]]:
    """Trivial levels of a method's pretraining targets, on 256 samples of
    its own pipeline (seeded; :func:`~mme_plugin.evaluation.trivial_levels`).

    Args:
        method: A name of :data:`~.methods.METHODS`.
        data_root: The generated dataset.
        options: ``KEY=VALUE`` overrides (``--pretrain-options``).

    Returns:
        dict: ``{target: {'zero': ..., 'mean': ..., ...}}``.
    """
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


def _against(end: float, lv: Dict[str, float]) -> Dict[str, float]:
    """A logged end against its levels (the lower of the two)."""
    trivial = min(lv['zero'], lv['mean'])
    return dict(end=end, trivial=trivial, ratio=end / trivial,
                zero=lv['zero'], mean=lv['mean'])


def end_ratios(work: str, levels: Dict[str, Dict[str, float]]
               ) -> Dict[str, Dict[str, float]]:
    """Each loss term at the end of pretraining against its trivial level.

    Args:
        work: The pretraining work dir (its ``scalars.json``).
        levels: Of :func:`levels_of`.

    Returns:
        dict: ``{target: {end, trivial, ratio, zero, mean}}``: the mean of
        the last 5 logged values, the lower of predict-zero and
        predict-the-mean, their ratio and both levels. A term that was not
        logged (weight 0 in an ablation) is left out.
    """
    rows = [r for r in scalars(work) if 'loss' in r]
    out = {}
    for name, lv in levels.items():
        vals = [r[f'loss_{name}'] for r in rows if f'loss_{name}' in r]
        if not vals:  # a term with weight 0 (an ablation) is not trained
            continue
        out[name] = _against(sum(vals[-5:]) / len(vals[-5:]), lv)
    return out


def rescore(results: List[Dict], levels: Dict) -> None:
    """Put new trivial levels in place of those of ``results`` (in place):
    the logged ends stay, the ratios follow.

    Args:
        results: Per-seed results (``results.json``'s ``results``).
        levels: ``{method: levels}`` of :func:`levels_of`.
    """
    for x in results:
        for method, pre in x['pretrain'].items():
            for name, loss in pre['losses'].items():
                loss.update(_against(loss['end'], levels[method][name]))
