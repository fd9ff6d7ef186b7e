"""Hooks of the MME plugin: per-iteration reseeding and the per-epoch
account of skipped bad samples."""
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank
from mmengine.hooks import Hook

from mme_plugin.datasets.skip_bad_samples import (bad_files, limit_error,
                                                  skipped_records,
                                                  summarize_skips)
from mme_plugin.registry import HOOKS

__all__ = ['ReseedHook', 'SkippedSamplesHook', 'iteration_seed']


def iteration_seed(base: int, iteration: int, rank: int = 0) -> int:
    """The torch seed of training iteration ``iteration`` on ``rank``.

    Rank 0 gets the seed this hook used before it took the rank into
    account, so single-process runs are unchanged.

    Args:
        base (int): Base seed.
        iteration (int): Training iteration (``runner.iter``).
        rank (int): Process rank. Defaults to 0.

    Returns:
        int: A 32-bit seed.
    """
    entropy = [base % 2**32, iteration, 1] + ([rank] if rank else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


@HOOKS.register_module()
class ReseedHook(Hook):
    """Seed torch before every training iteration from (seed, iteration,
    rank).

    Makes model-side randomness (drop path, dropout) of iteration ``i`` the
    same whether or not the run was resumed before it; together with
    :class:`~mme_plugin.datasets.SeededSampler` a resumed run reproduces the
    uninterrupted one. The rank is part of the seed, so the ranks of a
    distributed run draw different drop-path and dropout masks (as their
    samples differ).

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
        torch.manual_seed(iteration_seed(base, runner.iter, get_rank()))


@HOOKS.register_module()
class SkippedSamplesHook(Hook):
    """Log each epoch's skipped bad samples, over all workers and ranks, and
    stop past the limit.

    Datasets that skip bad samples
    (:mod:`~mme_plugin.datasets.skip_bad_samples`) do so in dataloader
    workers; each replacement sample carries the files it replaced in its
    metainfo, which this hook reads from every batch. At the end of an epoch
    the records of all ranks are gathered; rank 0 logs the count and the
    files, and every rank raises
    :class:`~mme_plugin.datasets.skip_bad_samples.BadSampleLimitError` if
    the epoch's distinct bad files exceed the dataset's limit (a file read
    twice, e.g. a padded repeat of the distributed sampler, counts once). A
    rank whose own count exceeds it stops at once. Batches without skips
    cost a metainfo lookup per sample.
    """

    priority = 'NORMAL'

    def __init__(self) -> None:
        self._records: List[Dict[str, str]] = []
        self._limit: Optional[int] = None

    def before_train_epoch(self, runner) -> None:
        """Start the epoch's account."""
        self._records, self._limit = [], None

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        """Collect the batch's skips; stop if this rank alone is past the
        limit."""
        records, limit = skipped_records(data_batch)
        if not records:
            return
        self._records += records
        self._limit = limit if limit is not None else self._limit
        if self._limit is not None and \
                bad_files(self._records) > self._limit:
            raise limit_error(self._records, self._limit,
                              f'epoch {runner.epoch + 1}, rank {get_rank()}')

    def after_train_epoch(self, runner) -> None:
        """Gather, log and check the epoch's skips (every rank takes part)."""
        gathered = all_gather_object((self._records, self._limit))
        records = [r for part, _ in gathered for r in part]
        limits = [lim for _, lim in gathered if lim is not None]
        self._records, self._limit = [], None
        if not records:
            return
        limit = min(limits) if limits else None
        epoch = runner.epoch + 1
        files = bad_files(records)
        runner.logger.warning(
            f'epoch {epoch}: {len(records)} bad samples skipped and replaced '
            f'({files} bad file{"" if files == 1 else "s"}; limit {limit} '
            f'per epoch): {summarize_skips(records)}')
        if limit is not None and files > limit:
            raise limit_error(records, limit, f'epoch {epoch}, all ranks')
