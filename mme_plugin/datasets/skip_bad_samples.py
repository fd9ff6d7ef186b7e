"""Skip a training sample whose data is bad instead of ending the run.

Over ~4e8 samples (1600 epochs of Kinetics-400) one undecodable or too
short clip, a stale flow-cache entry or a clip whose flow yields no usable
targets is likely; without skipping, the error raised in one dataloader
worker ends every rank of the job. A sample whose pipeline raises one of
:data:`DATA_ERRORS` is therefore replaced by another sample of the dataset:

* **Deterministic replacement.** Attempt ``a`` (1, 2, ...) for index ``i``
  draws the replacement index and the seed of its pipeline from
  ``SeedSequence([seed, epoch, i, a, 1])`` (seed and epoch of the
  :class:`~mme_plugin.datasets.SeededIndex`), never ``i`` itself, so a
  resumed run draws the same replacements as the uninterrupted one, and in
  whichever worker or rank the sample lands.
* **Logged.** Each failure is logged (file, error type, first line of the
  message) where it happens; the replacement sample carries the list of
  what it replaced in its metainfo (``skipped_samples``, ``skip_limit``),
  so :class:`~mme_plugin.engine.SkippedSamplesHook` sees every skip in the
  main process, whichever worker loaded it, gathers them over the ranks
  and logs each epoch's count with the file names.
* **Capped.** More than ``max_skipped`` bad files in one epoch (default
  0.1 % of the dataset, at least 1) stop the run with
  :class:`BadSampleLimitError` naming the files: checked per process as
  failures happen (a lower bound of the total) and for the total over every
  worker and rank at the end of the epoch by the hook. The cap counts
  distinct files, not reads: one bad clip read twice in an epoch (the
  distributed sampler pads the ranks' shares with repeated indices, up to
  ``world_size - 1`` of them; repeated augmentation) is one bad clip, and
  must not end a job whose limit is 1. If ``max_attempts``
  replacements of one sample all fail (e.g. a flow cache that was never
  filled, a clip length no video has), the run stops at once.

Anything else (``TypeError``, ``KeyError`` of a misconfigured pipeline, ...)
is a programming or configuration error and is raised as before. Test and
validation datasets (``test_mode=True``) do not skip unless asked: a metric
must be computed on every clip.
"""
import logging
import random
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log

from mme_plugin.io.flow_cache import FlowCacheError
from mme_plugin.io.video import VideoReadError

from .seeded_sampler import SeededIndex
from .transforms.motion_targets import UnusableTargetsError

__all__ = [
    'DATA_ERRORS', 'BadSampleLimitError', 'SkipPolicy', 'SampleSkipper',
    'bad_files', 'build_skip_policy', 'limit_error', 'replacement',
    'skipped_records', 'summarize_skips'
]

#: Errors of one sample's data that training skips: the video cannot be
#: decoded or is too short (:class:`~mme_plugin.io.VideoReadError` and its
#: ``ShortVideoError``), its flow-cache entry is missing, stale or corrupt
#: (:class:`~mme_plugin.io.FlowCacheError`), its targets are refused
#: (:class:`UnusableTargetsError`).
DATA_ERRORS = (VideoReadError, FlowCacheError, UnusableTargetsError)

#: Metainfo keys of a replacement sample.
SKIPPED_KEY, LIMIT_KEY = 'skipped_samples', 'skip_limit'

_TAG = 1  # separates replacement draws from the per-sample seeds


class BadSampleLimitError(RuntimeError):
    """Too many bad samples: the data (or a data-wide setting) is broken."""


class SkipPolicy:
    """How many bad samples training tolerates.

    Args:
        max_fraction (float): Bad files allowed per epoch (distinct files,
            over all ranks), as a fraction of the dataset's samples.
            Defaults to 0.001.
        max_skipped (int, optional): Bad files allowed per epoch; overrides
            ``max_fraction``. Defaults to None.
        max_attempts (int): Replacements tried for one sample before the run
            stops. Defaults to 10.
    """

    def __init__(self, max_fraction: float = 0.001,
                 max_skipped: Optional[int] = None,
                 max_attempts: int = 10) -> None:
        if not 0 <= max_fraction < 1:
            raise ValueError(
                f'skip_bad_samples.max_fraction must be in [0, 1), got '
                f'{max_fraction}')
        if max_attempts < 1:
            raise ValueError('skip_bad_samples.max_attempts must be >= 1, '
                             f'got {max_attempts}')
        self.max_fraction = max_fraction
        self.max_skipped = max_skipped
        self.max_attempts = max_attempts

    def limit(self, num_samples: int) -> int:
        """Bad files allowed per epoch for a dataset of ``num_samples``."""
        if self.max_skipped is not None:
            return int(self.max_skipped)
        return max(1, int(self.max_fraction * num_samples))


def build_skip_policy(skip_bad_samples: Union[bool, dict, None],
                      test_mode: bool) -> Optional[SkipPolicy]:
    """The policy of a dataset's ``skip_bad_samples`` argument.

    Args:
        skip_bad_samples (bool | dict | None): None: skip in training
            (``test_mode=False``) only; False: never; True: always, default
            limits; dict: always, with these :class:`SkipPolicy` arguments.
        test_mode (bool): The dataset's ``test_mode``.

    Returns:
        SkipPolicy | None: None when bad samples are not skipped.
    """
    if skip_bad_samples is None:
        skip_bad_samples = not test_mode
    if skip_bad_samples is False:
        return None
    if skip_bad_samples is True:
        return SkipPolicy()
    if isinstance(skip_bad_samples, dict):
        return SkipPolicy(**skip_bad_samples)
    raise TypeError('skip_bad_samples must be None, a bool or a dict of '
                    f'SkipPolicy arguments, got {skip_bad_samples!r}')


def replacement(index: int, attempt: int,
                num_samples: int) -> Tuple[int, int]:
    """The replacement of ``index`` at ``attempt`` and its pipeline seed.

    Args:
        index (int): The failed index; a :class:`SeededIndex` contributes
            its seed and epoch (a plain int counts as seed 0, epoch 0).
        attempt (int): 1 for the first replacement, 2 for the next, ...
        num_samples (int): Length of the dataset (at least 2).

    Returns:
        tuple[int, int]: Replacement index (never ``index``) and seed.
    """
    seed, epoch = ((index.seed, index.epoch)
                   if isinstance(index, SeededIndex) else (0, 0))
    draw, pipeline_seed = np.random.SeedSequence(
        [int(seed) % 2**32, int(epoch), int(index), attempt,
         _TAG]).generate_state(2)
    j = int(draw) % (num_samples - 1)
    return j + (j >= int(index)), int(pipeline_seed)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _describe(error: BaseException, filename: str) -> str:
    """``Type: message`` (its first line, without a leading file name)."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ''
    if text.startswith(f'{filename}: '):
        text = text[len(filename) + 2:]
    return f'{type(error).__name__}: {text}'


def _attach(data: Any, records: List[Dict[str, str]], limit: int) -> None:
    """Record the skips in the metainfo of ``data`` (the first sample of a
    repeated-augmentation list)."""
    first = data[0] if isinstance(data, (list, tuple)) and data else data
    sample = first.get('data_samples') if isinstance(first, dict) else None
    if sample is not None and hasattr(sample, 'set_metainfo'):
        sample.set_metainfo({SKIPPED_KEY: records, LIMIT_KEY: limit})


def skipped_records(data_batch: Any) -> Tuple[List[Dict[str, str]],
                                              Optional[int]]:
    """The skips carried by a collated batch and their per-epoch limit.

    Args:
        data_batch (Any): A batch as the train loop passes it to hooks.

    Returns:
        tuple[list[dict], int | None]: ``{'file', 'error'}`` records and the
        limit (None if no sample of the batch replaced a bad one).
    """
    samples = data_batch.get('data_samples') if isinstance(
        data_batch, dict) else None
    records, limit = [], None
    for s in samples or []:
        meta = getattr(s, 'metainfo', None) or {}
        if SKIPPED_KEY in meta:
            records += list(meta[SKIPPED_KEY])
            limit = meta.get(LIMIT_KEY, limit)
    return records, limit


def summarize_skips(records: List[Dict[str, str]], top: int = 20) -> str:
    """``file (error) xN`` for the most frequent files in ``records``."""
    counts = Counter((r['file'], r['error']) for r in records)
    parts = [f'{f} ({e})' + (f' x{n}' if n > 1 else '')
             for (f, e), n in counts.most_common(top)]
    if len(counts) > top:
        parts.append(f'... and {len(counts) - top} more')
    return '; '.join(parts)


def bad_files(records: List[Dict[str, str]]) -> int:
    """The distinct files among skip ``records``: what the limit counts (a
    file read twice, e.g. a padded repeat of the distributed sampler,
    counts once).

    Args:
        records (list[dict]): Skip records, each with its ``file``.

    Returns:
        int: How many different files failed.
    """
    return len({r['file'] for r in records})


def limit_error(records: List[Dict[str, str]], limit: int,
                where: str) -> BadSampleLimitError:
    """The error that stops a run with more than ``limit`` bad files."""
    return BadSampleLimitError(
        f'{bad_files(records)} bad files in one epoch ({where}), more than '
        f'the {limit} allowed: {summarize_skips(records)}. Check these '
        'videos (tools/analysis/check_dataset.py), remove them from the '
        'list, or '
        'raise train_dataloader.dataset.skip_bad_samples.max_skipped / '
        'max_fraction.')


class SampleSkipper:
    """Per-process state of a dataset that skips bad samples.

    Args:
        policy (SkipPolicy): The limits.
    """

    def __init__(self, policy: SkipPolicy) -> None:
        self.policy = policy
        self._epoch: Optional[int] = None
        self._records: List[Dict[str, str]] = []

    def _note(self, index: int, record: Dict[str, str], limit: int) -> None:
        """Count a failure in this process; stop past the limit."""
        # Without SeededSampler the epoch is unknown: count over the run.
        epoch = getattr(index, 'epoch', None)
        if epoch != self._epoch:
            self._epoch, self._records = epoch, []
        self._records.append(record)
        files = bad_files(self._records)
        print_log(
            f'bad sample {int(index)} skipped: {record["file"]}: '
            f'{record["error"]} ({files} bad files, '
            f'{len(self._records)} reads, in this epoch in this process; '
            f'{limit} files allowed per epoch)', logger='current',
            level=logging.WARNING)
        if files > limit:
            raise limit_error(self._records, limit, 'in one dataloader '
                              'process')

    def fetch(self, index: int, load: Callable[[int], Any],
              filename: Callable[[int], str], num_samples: int) -> Any:
        """``load(index)``, or a replacement if its data is bad.

        The caller has seeded the generators for ``index``.

        Args:
            index (int): Dataset index (a :class:`SeededIndex` in training).
            load (Callable[[int], Any]): Runs the pipeline of an index.
            filename (Callable[[int], str]): The file of an index.
            num_samples (int): Length of the dataset.

        Returns:
            Any: The processed sample; a replacement carries the skipped
            files in its metainfo.

        Raises:
            BadSampleLimitError: Past the per-epoch limit, or when
                ``max_attempts`` replacements all failed.
        """
        try:
            return load(int(index))
        except DATA_ERRORS as e:
            error = e
        limit = self.policy.limit(num_samples)
        records: List[Dict[str, str]] = []
        current, attempt = int(index), 0
        while True:
            name = str(filename(current))
            record = dict(file=name, error=_describe(error, name))
            records.append(record)
            self._note(index, record, limit)
            attempt += 1
            if attempt > self.policy.max_attempts or num_samples < 2:
                break
            current, seed = replacement(index, attempt, num_samples)
            _seed_all(seed)
            try:
                data = load(current)
            except DATA_ERRORS as e:
                error = e
                continue
            _attach(data, records, limit)
            return data
        raise BadSampleLimitError(
            f'sample {int(index)} and its {len(records) - 1} replacements '
            f'all failed: {summarize_skips(records)}. The data or a '
            'data-wide setting is broken (e.g. an unfilled flow cache, clips '
            'longer than the videos); see the first error above.')
