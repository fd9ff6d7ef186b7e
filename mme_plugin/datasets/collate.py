"""Batches of MME samples as one tensor per key, not bags of tensors.

mmengine's ``pseudo_collate`` keeps every per-sample tensor of a batch as a
separate tensor. An MME pretraining sample carries about ten of them (the
clip, ``mask``, ``traj_target``, ``traj_valid``, ``hog_frames``,
``hog_points``, ...), and a dataloader worker hands each one to the main
process as its own shared-memory file: a recipe batch of 64 samples held
~640 open file descriptors, so two batches in flight passed the usual
``ulimit -n`` of 1024 and the loader stopped with "Too many open files".
The model then made one host-to-device copy per tensor (~640 per step).

:func:`mme_collate` stacks each key into one ``[B, ...]`` tensor, so a batch
is ~10 tensors (``docs/benchmarks.md``, batch transfer). The batch is::

    dict(inputs=Tensor[B, ...],            # the clips
         data_samples=[ActionDataSample],  # per-sample metainfo only
         sample_fields={key: Tensor[B, ...]})  # every per-sample tensor

:class:`~mme_plugin.models.MMEDataPreprocessor` copies each tensor to the
device once and gives the model the samples back with their fields.
Samples of :class:`~mme_plugin.datasets.RepeatAugVideoDataset` (a list of
repeats per video) are flattened first, repeats of a video next to each
other, as mmaction's ``repeat_pseudo_collate`` does.
"""
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.structures import BaseDataElement
from torch import Tensor
from torch.utils.data import get_worker_info

from mme_plugin.registry import FUNCTION

__all__ = [
    'SAMPLE_FIELDS_KEY', 'BatchShapeError', 'mme_collate', 'stack_fields',
    'is_stacked_batch'
]

#: Key of the stacked per-sample fields in a collated batch.
SAMPLE_FIELDS_KEY = 'sample_fields'


class BatchShapeError(ValueError):
    """Per-sample tensors of one key differ in shape or dtype."""


def is_stacked_batch(data: Any) -> bool:
    """Whether ``data`` is a batch made by :func:`mme_collate`."""
    return isinstance(data, dict) and SAMPLE_FIELDS_KEY in data


def _stack(tensors: List[Tensor], key: str) -> Tensor:
    """Stack ``tensors`` into ``[B, ...]``; in a dataloader worker, straight
    into shared memory (the one copy the transfer to the main process would
    make anyway)."""
    first = tensors[0]
    for t in tensors[1:]:
        if t.shape != first.shape or t.dtype != first.dtype:
            shapes = sorted({(tuple(x.shape), str(x.dtype)) for x in tensors})
            raise BatchShapeError(
                f'mme_collate cannot stack "{key}": its per-sample tensors '
                f'differ ({", ".join(f"{s} {d}" for s, d in shapes)}). MME '
                'batches need fixed-size samples: check the crop / resize '
                'size and clip length of the pipeline, or collate with '
                "collate_fn=dict(type='pseudo_collate') to keep per-sample "
                'tensors')
    out = None
    if get_worker_info() is not None and first.device.type == 'cpu':
        numel = first.numel() * len(tensors)
        storage = torch.UntypedStorage._new_shared(numel *
                                                   first.element_size())
        out = torch.empty(0, dtype=first.dtype).set_(
            storage, 0, (len(tensors), *first.shape))
    return torch.stack(tensors, 0, out=out)


def _as_tensor(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def stack_fields(inputs: Sequence[Tensor],
                 data_samples: Sequence[BaseDataElement]) -> Dict[str, Any]:
    """The stacked batch of per-sample clips and data samples.

    Every tensor (or NumPy array) field of the data samples becomes one
    ``[B, ...]`` tensor of ``sample_fields``; the returned data samples are
    new ones that keep the metainfo (file names, skip records, ...) and
    any non-tensor field. The given samples are not changed.

    Args:
        inputs (Sequence[Tensor]): Per-sample clips (equal shapes).
        data_samples (Sequence[BaseDataElement]): Per-sample data samples.

    Returns:
        dict: ``inputs``, ``data_samples`` and ``sample_fields``.

    Raises:
        BatchShapeError: A key's tensors differ in shape or dtype, or only
            some samples carry it (the message names the key).
    """
    if len(inputs) != len(data_samples):
        raise ValueError(f'{len(inputs)} inputs but {len(data_samples)} '
                         'data samples')
    if not inputs:
        raise ValueError('mme_collate got an empty batch')
    if not all(isinstance(x, Tensor) for x in inputs):
        kinds = sorted({type(x).__name__ for x in inputs})
        raise TypeError(
            f'mme_collate stacks tensor inputs, got {kinds}: pack the clip '
            'with PackMMEInputs (no collect_keys) or use pseudo_collate')
    per_key: Dict[str, List[Any]] = {}
    for ds in data_samples:
        for key in ds.keys():
            per_key.setdefault(key, []).append(_as_tensor(ds.get(key)))
    stacked, kept = {}, []
    for key, values in per_key.items():
        tensors = [v for v in values if isinstance(v, Tensor)]
        if not tensors:
            kept.append(key)
            continue
        if len(tensors) != len(data_samples):
            raise BatchShapeError(
                f'mme_collate cannot stack "{key}": {len(tensors)} of '
                f'{len(data_samples)} samples carry it as a tensor. Every '
                'sample of a batch must come out of the same pipeline steps')
        stacked[key] = _stack(tensors, key)
    samples = []
    for ds in data_samples:
        new = ds.__class__(metainfo=ds.metainfo)
        for key in kept:
            if key in ds:
                new.set_field(ds.get(key), key)
        samples.append(new)
    return dict(inputs=_stack(list(inputs), 'inputs'), data_samples=samples,
                **{SAMPLE_FIELDS_KEY: stacked})


@FUNCTION.register_module()
def mme_collate(data_batch: Sequence) -> Dict[str, Any]:
    """Collate MME samples into one tensor per key.

    Use it as ``train_dataloader.collate_fn=dict(type='mme_collate')``,
    with :class:`~mme_plugin.models.MMEDataPreprocessor` in the model.

    Args:
        data_batch (Sequence): Packed samples (``dict(inputs=...,
            data_samples=...)``), or lists of them
            (:class:`RepeatAugVideoDataset`), flattened in order.

    Returns:
        dict: ``inputs`` ``[B, ...]``, ``data_samples`` (metainfo and
        non-tensor fields) and ``sample_fields`` (``{key: [B, ...]}``).

    Raises:
        BatchShapeError: A key's per-sample tensors differ in shape (the
            message names the key and the shapes).
    """
    flat: List[dict] = []
    for item in data_batch:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    for item in flat:
        if not isinstance(item, dict) or 'inputs' not in item:
            raise TypeError(
                'mme_collate expects samples packed by PackMMEInputs '
                f'(dicts with "inputs"), got {type(item).__name__}')
    extra = sorted(set().union(*flat) - {'inputs', 'data_samples'})
    if any('data_samples' not in item for item in flat):
        raise TypeError('mme_collate: a sample has no "data_samples" (pack '
                        'it with PackMMEInputs)')
    batch = stack_fields([item['inputs'] for item in flat],
                         [item['data_samples'] for item in flat])
    for key in extra:  # anything else a pipeline packed: kept per sample
        batch[key] = [item.get(key) for item in flat]
    return batch


# Runner.build_dataloader looks the collate function up in mmengine's root
# FUNCTIONS (no default scope applies there; mmaction registers its
# repeat_pseudo_collate the same way), so the plain name works in configs.
MMENGINE_FUNCTIONS.register_module(module=mme_collate)
