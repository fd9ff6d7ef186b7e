"""Reproducible per-sample randomness, so a resumed run repeats the same data.

mmengine restores model, optimizer and scheduler state on ``--resume`` but
not the random generators of the data pipeline: the epoch replayed after an
interruption gets different crops, flips and masks than the uninterrupted
run would have. :class:`SeededSampler` yields the same order as mmengine's
``DefaultSampler`` but each index also carries the sampler seed and the
epoch; datasets of this plugin then seed ``random``, ``numpy`` and ``torch``
with a hash of (seed, epoch, index) before running the pipeline of that
sample, in whichever worker it lands.
"""
import random
from typing import Iterator

import numpy as np
import torch
from mmengine.dataset import DefaultSampler

from mme_plugin.registry import DATA_SAMPLERS

__all__ = ['SeededIndex', 'SeededSampler', 'seed_for_sample']


class SeededIndex(int):
    """An ``int`` dataset index that carries ``seed`` and ``epoch``."""

    def __new__(cls, value: int, seed: int, epoch: int) -> 'SeededIndex':
        obj = super().__new__(cls, value)
        obj.seed = seed
        obj.epoch = epoch
        return obj

    def __reduce__(self):
        return SeededIndex, (int(self), self.seed, self.epoch)


def seed_for_sample(index: int) -> bool:
    """Seed every generator from a :class:`SeededIndex` (no-op for ints).

    Returns:
        bool: Whether the generators were seeded.
    """
    if not isinstance(index, SeededIndex):
        return False
    s = int(np.random.SeedSequence(
        [index.seed % 2**32, index.epoch, int(index)]).generate_state(1)[0])
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return True


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """``DefaultSampler`` whose indices carry (seed, epoch).

    Args: as mmengine's ``DefaultSampler``.
    """

    def __iter__(self) -> Iterator[int]:
        for idx in super().__iter__():
            yield SeededIndex(idx, self.seed, self.epoch)
