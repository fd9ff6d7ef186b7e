"""Hooks of the MME plugin."""
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mme_plugin.registry import HOOKS

__all__ = ['ReseedHook']


@HOOKS.register_module()
class ReseedHook(Hook):
    """Seed torch before every training iteration from (seed, iteration).

    Makes model-side randomness (drop path, dropout) of iteration ``i`` the
    same whether or not the run was resumed before it; together with
    :class:`~mme_plugin.datasets.SeededSampler` a resumed run reproduces the
    uninterrupted one.

    Args:
        seed (int, optional): Base seed; defaults to the runner's seed.
    """

    priority = 'VERY_HIGH'

    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = seed

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Seed torch (CPU and CUDA) for this iteration."""
        base = self.seed if self.seed is not None else runner.seed
        s = int(np.random.SeedSequence([base % 2**32, runner.iter,
                                        1]).generate_state(1)[0])
        torch.manual_seed(s)
