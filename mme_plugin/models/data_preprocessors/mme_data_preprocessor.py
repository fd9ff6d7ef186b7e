"""One host-to-device copy per key of an MME batch."""
from typing import Any, Dict, Mapping, Sequence, Tuple, Union

import torch
from mmaction.models import ActionDataPreprocessor
from torch import Tensor

from mme_plugin.registry import MODELS

__all__ = ['MMEDataPreprocessor', 'StackedSamples']


class StackedSamples(list):
    """The data samples of a batch (a list, as models expect) that also hold
    their fields stacked: ``stacked[key]`` is ``[B, ...]`` on the device.

    Each sample gets ``stacked[key][i]`` (a view, no copy) as its field, so
    code that reads samples one by one still works;
    :func:`~mme_plugin.models.targets.stack_samples` takes the stacked
    tensor directly.

    Args:
        samples (Sequence): The batch's data samples.
        stacked (Mapping[str, Tensor]): ``{key: [B, ...]}``.
    """

    def __init__(self, samples: Sequence,
                 stacked: Mapping[str, Tensor]) -> None:
        super().__init__(samples)
        self.stacked: Dict[str, Tensor] = dict(stacked)
        for key, value in self.stacked.items():
            if value.shape[0] != len(self):
                raise ValueError(f'stacked "{key}" has {value.shape[0]} rows '
                                 f'for {len(self)} samples')
            for i, ds in enumerate(self):
                ds.set_field(value[i], key)


@MODELS.register_module()
class MMEDataPreprocessor(ActionDataPreprocessor):
    """mmaction's ``ActionDataPreprocessor`` for stacked MME batches.

    A batch of :func:`~mme_plugin.datasets.mme_collate` (clips and every
    per-sample field stacked, one tensor per key) is copied to the device
    with one ``.to(device, non_blocking=True)`` per key (pinned memory with
    the loader's ``pin_memory=True``; on CPU a no-op), the clips normalised
    as the stock preprocessor does, and the samples handed to the model as
    a :class:`StackedSamples`. A batch of mmengine's ``pseudo_collate`` (a
    list per key) is stacked on the host first, so the model sees one form.

    Args:
        non_blocking (bool): Copy without blocking the host. Defaults to
            True.
        **kwargs: ``ActionDataPreprocessor`` arguments (``mean``, ``std``,
            ``to_rgb``, ``to_float32``, ``blending``, ``format_shape``).
    """

    def __init__(self, non_blocking: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self._non_blocking = non_blocking

    def forward(self, data: Union[dict, Tuple[dict]],
                training: bool = False) -> Union[dict, Tuple[dict]]:
        """Copy the batch to the device once per key and normalise it.

        Args:
            data (dict | tuple[dict]): A collated batch (tuples of
                multi-view batches take the stock path).
            training (bool): Apply the training-time blending.

        Returns:
            dict: ``inputs`` (normalised ``[B, ...]``) and ``data_samples``
            (:class:`StackedSamples`), plus any other key of the batch.
        """
        from mme_plugin.datasets.collate import (SAMPLE_FIELDS_KEY,
                                                 is_stacked_batch,
                                                 stack_fields)
        if not isinstance(data, dict):
            return super().forward(data, training)
        if not is_stacked_batch(data):
            data = {**data, **stack_fields(data['inputs'],
                                           data['data_samples'])}
        device, nb = self.device, self._non_blocking
        inputs = data['inputs'].to(device, non_blocking=nb)
        fields = {k: v.to(device, non_blocking=nb)
                  for k, v in data[SAMPLE_FIELDS_KEY].items()}
        samples = StackedSamples(data['data_samples'], fields)
        out: Dict[str, Any] = {
            k: v for k, v in data.items()
            if k not in ('inputs', 'data_samples', SAMPLE_FIELDS_KEY)
        }
        out['inputs'], out['data_samples'] = self.preprocess(
            inputs, samples, training)
        return out

    def preprocess(self, inputs: Union[Tensor, Sequence[Tensor]],
                   data_samples: Sequence,
                   training: bool = False) -> Tuple[Tensor, Sequence]:
        """Channel order, normalisation and blending of a batch tensor.

        Args:
            inputs (Tensor | Sequence[Tensor]): ``[B, ..., C, T, H, W]``
                (``NCTHW``) or ``[B, ..., C, H, W]`` (``NCHW``); a list takes
                the stock path.
            data_samples (Sequence): The batch's samples.
            training (bool): Apply the blending.

        Returns:
            tuple: The normalised batch and the samples.
        """
        if not isinstance(inputs, Tensor) or self.format_shape not in (
                'NCTHW', 'NCHW'):
            return super().preprocess(list(inputs), data_samples, training)
        batch = inputs
        if self.to_rgb:  # BGR <-> RGB along the channel axis
            axis = -4 if self.format_shape == 'NCTHW' else -3
            batch = batch.index_select(
                axis, torch.tensor([2, 1, 0], device=batch.device))
        if self._enable_normalize:  # mean / std broadcast over C, (T,) H, W
            batch = (batch - self.mean) / self.std
        elif self.to_float32:
            batch = batch.to(torch.float32)
        if training and self.blending is not None:
            batch, data_samples = self.blending(batch, data_samples)
        return batch, data_samples
