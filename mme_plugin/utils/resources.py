"""Start-up checks of the host resources a training dataloader needs.

Dataloader workers hand batches to the main process through shared memory
(``/dev/shm``), one file, and one open file descriptor, per tensor. Two
limits stopped MME pretraining long after start-up, or hung it:

* **Open files.** Under the usual soft ``ulimit -n`` of 1024, batches of
  per-sample tensors (~640 per batch of 64 before :func:`~mme_plugin.
  datasets.mme_collate`) ran out of descriptors ("Too many open files") and
  the loader delivered nothing. :func:`raise_open_file_limit` lifts the
  soft limit to the hard one and logs both.
* **Shared memory.** A recipe batch is ~540 MiB; the loader keeps
  ``num_workers x prefetch_factor`` of them in ``/dev/shm`` per GPU. A
  container's default 64 MB ``/dev/shm`` failed at the first batch.
  :func:`check_shared_memory` measures one real sample of the dataset and
  fails before the first batch when ``/dev/shm`` cannot hold what the loader
  needs, naming the numbers and the fixes.

:func:`check_train_resources` runs both; :func:`patch_runner` calls it when
``Runner.train`` builds its train loop (applied by :mod:`mme_plugin.compat`),
and lets a config's ``prefetch_factor`` stand when ``num_workers=0``
(torch refuses it there; it has no meaning without workers).
"""
import functools
import logging
import math
import os
import random
import resource
from typing import Any, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import print_log

__all__ = [
    'SharedMemoryError', 'raise_open_file_limit', 'tensor_stats',
    'measure_item', 'loader_shm_bytes', 'shm_space', 'local_ranks',
    'check_shared_memory', 'check_train_resources', 'patch_runner'
]

SHM_PATH = '/dev/shm'
_MIB = 2**20


class SharedMemoryError(RuntimeError):
    """``/dev/shm`` is too small for the dataloader's batches in flight."""


def _log(msg: str, logger: Any = None, level: str = 'INFO') -> None:
    print_log(msg, logger=logger or 'current',
              level=getattr(logging, level))


def raise_open_file_limit(logger: Any = None) -> Tuple[int, int]:
    """Raise the soft open-file limit (``RLIMIT_NOFILE``) to the hard one.

    Args:
        logger (Any): mmengine logger (or name). Defaults to the current.

    Returns:
        tuple[int, int]: The soft and hard limits after the call.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    if hard == resource.RLIM_INFINITY or soft < hard:
        for target in (hard, 1 << 20):
            if target == resource.RLIM_INFINITY and target != hard:
                continue
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                break
            except (ValueError, OSError):
                continue
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _log(f'open-file limit (ulimit -n): soft {before} -> {soft}, hard '
         f'{hard}', logger)
    return soft, hard


def tensor_stats(obj: Any) -> Tuple[int, int]:
    """Number of tensors (NumPy arrays count) in ``obj`` and their bytes,
    through dicts, lists, tuples and mmengine data elements.

    Args:
        obj (Any): A sample, a list of samples or a batch.

    Returns:
        tuple[int, int]: ``(tensors, bytes)``.
    """
    from mmengine.structures import BaseDataElement
    if isinstance(obj, torch.Tensor):
        return 1, obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return 1, int(obj.nbytes)
    if isinstance(obj, BaseDataElement):
        items = [obj.get(k) for k in obj.keys()]
    elif isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    else:
        return 0, 0
    count = size = 0
    for item in items:
        c, s = tensor_stats(item)
        count, size = count + c, size + s
    return count, size


def measure_item(dataset: Any, index: int = 0) -> Tuple[int, int]:
    """Tensors and bytes of one item of ``dataset`` (all repeats of a
    :class:`~mme_plugin.datasets.RepeatAugVideoDataset` item), drawn with
    the Python, NumPy and torch random states restored afterwards (the
    training draws stay those of a run without the check).

    Args:
        dataset (Any): The dataset.
        index (int): The item. Defaults to 0.

    Returns:
        tuple[int, int]: ``(tensors, bytes)`` of the item.
    """
    states = (random.getstate(), np.random.get_state(),
              torch.get_rng_state())
    try:
        return tensor_stats(dataset[index])
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def loader_shm_bytes(batch_size: int, item_bytes: int, num_workers: int,
                     prefetch_factor: Optional[int]) -> int:
    """Shared memory one dataloader's batches in flight take:
    ``batch_size x item_bytes x num_workers x prefetch_factor`` (0 without
    workers: batches stay in the process).

    Args:
        batch_size (int): Items per batch.
        item_bytes (int): Bytes of one item.
        num_workers (int): Dataloader workers.
        prefetch_factor (int, optional): Batches each worker loads ahead
            (None: torch's default, 2).

    Returns:
        int: Bytes.
    """
    if num_workers <= 0:
        return 0
    return (batch_size * item_bytes * num_workers *
            (2 if prefetch_factor is None else prefetch_factor))


def shm_space(path: str = SHM_PATH) -> Optional[Tuple[int, int]]:
    """Size and free bytes of the shared-memory file system (None if
    ``path`` does not exist, e.g. not Linux).

    Args:
        path (str): Defaults to ``/dev/shm``.

    Returns:
        tuple[int, int] | None: ``(total, available)`` bytes.
    """
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def local_ranks() -> int:
    """Training processes on this machine (``LOCAL_WORLD_SIZE`` of torchrun,
    ``SLURM_NTASKS_PER_NODE`` of Slurm, else 1); they share ``/dev/shm``."""
    for var in ('LOCAL_WORLD_SIZE', 'SLURM_NTASKS_PER_NODE'):
        value = os.environ.get(var, '')
        digits = value.split('(')[0].split(',')[0]
        if digits.isdigit() and int(digits) > 0:
            return int(digits)
    return 1


def _loader_settings(loader: Any) -> Tuple[int, int, Optional[int]]:
    batch = getattr(loader, 'batch_size', None)
    if batch is None:
        batch = getattr(getattr(loader, 'batch_sampler', None), 'batch_size',
                        1)
    return int(batch), int(loader.num_workers), getattr(
        loader, 'prefetch_factor', None)


def _is_mme_collate(collate_fn: Any) -> bool:
    from mme_plugin.datasets.collate import mme_collate
    return getattr(collate_fn, 'func', collate_fn) is mme_collate


def check_shared_memory(loader: Any, path: str = SHM_PATH,
                        logger: Any = None,
                        open_file_limit: Optional[int] = None) -> dict:
    """Fail when ``/dev/shm`` cannot hold the loader's batches in flight.

    One item of the loader's dataset is measured (:func:`measure_item`);
    the need of this machine is :func:`loader_shm_bytes` times
    :func:`local_ranks`. More than the size of ``/dev/shm`` raises
    :class:`SharedMemoryError`; more than what is free now logs a warning
    (other processes may use it). A loader without workers needs none.
    With ``open_file_limit``, also warns when the batches in flight hold
    more shared-memory files (one per tensor) than that.

    Args:
        loader (DataLoader): The built dataloader.
        path (str): The shared-memory mount. Defaults to ``/dev/shm``.
        logger (Any): mmengine logger (or name). Defaults to the current.
        open_file_limit (int, optional): Soft ``ulimit -n``.

    Returns:
        dict: The numbers (``item_bytes``, ``need_bytes`` per process,
        ``ranks``, ``shm_total``, ``shm_free``, ``files_in_flight``);
        empty when not checked.

    Raises:
        SharedMemoryError: ``/dev/shm`` is smaller than the need.
    """
    batch, workers, prefetch = _loader_settings(loader)
    if workers <= 0:
        return {}
    space = shm_space(path)
    if space is None:
        return {}
    try:
        tensors, item_bytes = measure_item(loader.dataset)
    except Exception as e:  # noqa: B902 - a check must not stop training
        _log(f'shared-memory check skipped: item 0 of the train dataset '
             f'failed to load ({type(e).__name__}: {e})', logger, 'WARNING')
        return {}
    prefetch = 2 if prefetch is None else prefetch
    per_rank = loader_shm_bytes(batch, item_bytes, workers, prefetch)
    ranks = local_ranks()
    total, free = space
    need = per_rank * ranks
    per_batch_files = (tensors if _is_mme_collate(loader.collate_fn) else
                       tensors * batch)
    files = per_batch_files * workers * prefetch
    numbers = dict(item_bytes=item_bytes, need_bytes=per_rank, ranks=ranks,
                   shm_total=total, shm_free=free, files_in_flight=files)
    how = (f'batch {batch} x {item_bytes / _MIB:.1f} MiB per item (measured) '
           f'x {workers} workers x prefetch_factor {prefetch} = '
           f'{per_rank / _MIB:.0f} MiB per process'
           + (f', x {ranks} processes on this machine = {need / _MIB:.0f} '
              'MiB' if ranks > 1 else ''))
    if need > total:
        raise SharedMemoryError(
            f'{path} is {total / _MIB:.0f} MiB but the train dataloader '
            f'keeps {need / _MIB:.0f} MiB of batches in it ({how}). Give '
            'the container more shared memory (docker run --shm-size='
            f'{math.ceil(need * 1.25 / 2**30)}g, or --ipc=host; Kubernetes: '
            'an emptyDir with medium: Memory mounted at /dev/shm), or lower '
            'train_dataloader.num_workers / prefetch_factor / batch_size.')
    _log(f'dataloader shared memory: {how}; {path} {total / _MIB:.0f} MiB, '
         f'{free / _MIB:.0f} MiB free', logger)
    if need > free:
        _log(f'{path} has {free / _MIB:.0f} MiB free, less than the '
             f'{need / _MIB:.0f} MiB the train dataloader will use ({how}): '
             'other processes hold shared memory; the first batches may '
             'fail with "No space left on device" / bus errors',
             logger, 'WARNING')
    if open_file_limit is not None and files > open_file_limit * 3 // 4:
        _log(f'the batches in flight hold ~{files} shared-memory files '
             f'(one per tensor; {per_batch_files} per batch), near or above '
             f'the open-file limit {open_file_limit}: use collate_fn=dict('
             "type='mme_collate') (one tensor per key) or raise ulimit -n",
             logger, 'WARNING')
    return numbers


def check_train_resources(loader: Any, logger: Any = None) -> dict:
    """Raise the open-file limit, then check shared memory for ``loader``.

    Args:
        loader (DataLoader): The train dataloader.
        logger (Any): mmengine logger (or name). Defaults to the current.

    Returns:
        dict: :func:`check_shared_memory`'s numbers plus
        ``open_files_soft`` and ``open_files_hard``.
    """
    soft, hard = raise_open_file_limit(logger)
    numbers = dict(open_files_soft=soft, open_files_hard=hard)
    if loader is not None and hasattr(loader, 'num_workers'):
        numbers.update(check_shared_memory(loader, logger=logger,
                                           open_file_limit=soft))
    return numbers


def patch_runner() -> None:
    """Check resources when ``Runner.train`` builds its train loop, and drop
    ``prefetch_factor`` from dataloader configs with ``num_workers=0``
    (idempotent)."""
    from mmengine.runner import Runner
    if getattr(Runner.build_train_loop, '_mme_resources', False):
        return
    build_train_loop = Runner.build_train_loop
    build_dataloader = Runner.build_dataloader

    @functools.wraps(build_train_loop)
    def checked_build_train_loop(self, loop):
        built = build_train_loop(self, loop)
        if not getattr(built, '_mme_resources_checked', False):
            built._mme_resources_checked = True
            check_train_resources(getattr(built, 'dataloader', None),
                                  logger=getattr(self, 'logger', None))
        return built

    @functools.wraps(build_dataloader)
    def lenient_build_dataloader(dataloader, *args, **kwargs):
        import mme_plugin.datasets.collate  # noqa: F401 (mme_collate)
        if isinstance(dataloader, dict) and not dataloader.get(
                'num_workers', 0) and dataloader.get(
                    'prefetch_factor') is not None:
            dataloader = dataloader.copy()
            dataloader.pop('prefetch_factor')
        return build_dataloader(dataloader, *args, **kwargs)

    checked_build_train_loop._mme_resources = True
    Runner.build_train_loop = checked_build_train_loop
    Runner.build_dataloader = staticmethod(lenient_build_dataloader)
