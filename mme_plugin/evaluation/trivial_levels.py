"""Trivial-predictor levels of the pretraining losses, measured on the data.

A pretraining loss means something only next to what a model that ignores
its input scores: predicting zero for every target, or predicting the
per-dimension mean target of the data. Both are computed here with exactly
the reduction of :class:`~mme_plugin.models.MMELoss` (mean over feature dims,
averaged over masked tokens whose target is valid), on samples drawn by the
pretraining pipeline itself (same crops, masks and validity as training).

The draws are reproducible: sample ``i`` is drawn with the per-sample seed
that :class:`~mme_plugin.datasets.SeededSampler` gives index ``i`` at epoch
0 (datasets of this plugin seed ``random``, NumPy and torch from it), and
all three generators are seeded before the first sample for other
datasets. (mmaction's ``MultiScaleCrop`` draws from Python's ``random``; with
NumPy and torch seeded alone, the levels moved by about 1 % between runs.)
"""
import random
from typing import Dict

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

__all__ = ['trivial_levels']


@torch.no_grad()
def trivial_levels(model, dataset, num_samples: int = 256,
                   batch_size: int = 16,
                   num_workers: int = 0,
                   seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Predict-zero and predict-the-mean levels of every target.

    Args:
        model (MME): The pretraining model (its data preprocessor and
            target construction are used; its weights are not).
        dataset (Dataset): The pretraining dataset (pipeline included).
        num_samples (int): Samples to draw. Defaults to 256.
        batch_size (int): Defaults to 16.
        num_workers (int): DataLoader workers. Defaults to 0.
        seed (int): Seed of the draws. Defaults to 0.

    Returns:
        dict: ``{name: {'zero': float, 'mean': float, 'tokens': int}}``.
    """
    from mme_plugin.datasets import SeededIndex
    n = min(num_samples, len(dataset))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    indices = [SeededIndex(i, seed, 0) for i in range(n)]
    loader = DataLoader(torch.utils.data.Subset(dataset, indices),
                        batch_size=batch_size, num_workers=num_workers,
                        collate_fn=pseudo_collate)
    sums: Dict[str, list] = {}
    for batch in loader:
        data = model.data_preprocessor(batch, training=False)
        inputs, samples = model._inputs(data['inputs']), data['data_samples']
        mask = model._stack(samples, 'mask', inputs.device).bool()
        targets, valids = model.build_targets(inputs, samples)
        for name, full in targets.items():
            sel = mask if valids[name] is None else mask & valids[name]
            t = full[sel].double()
            acc = sums.setdefault(name, [0, 0.0, 0.0])
            acc[0] += t.shape[0]
            acc[1] = acc[1] + t.sum(0)
            acc[2] = acc[2] + t.pow(2).sum(0)
    out = {}
    for name, (count, s1, s2) in sums.items():
        mean = s1 / count
        out[name] = dict(
            zero=float((s2 / count).mean()),
            mean=float((s2 / count - mean.pow(2)).mean()),
            tokens=int(count))
    return out
