"""What a pretraining target is: a registry-built unit of the MME model.

A target knows its per-token feature size from its own settings (so the
decoder's heads are sized from the targets, never by hand), and returns,
for a batch, its per-token values and validity on the model's device. The
model (:class:`~mme_plugin.models.MME`) holds a dict of them with their loss
weights and has no per-name code. The layout of every per-token target is
that of :func:`~mme_plugin.ops.grid_to_tokens` (the ViT's ``(t, h, w)``
order).

The results contract (which pipeline step adds which key, with shapes) is
the table in ``docs/mme_design.md``.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

__all__ = ['MMETarget', 'stack_samples']


def stack_samples(data_samples: List, key: str,
                  device: torch.device) -> Optional[Tensor]:
    """``key`` of every data sample stacked into one tensor on ``device``
    (None if the samples do not carry it). Samples of
    :class:`~mme_plugin.models.MMEDataPreprocessor` hold the stacked tensor
    already (:class:`~mme_plugin.models.StackedSamples`): it is returned as
    is, no copy."""
    stacked = getattr(data_samples, 'stacked', None)
    if stacked is not None and key in stacked:
        return stacked[key].to(device)
    if not data_samples or key not in data_samples[0]:
        return None
    return torch.stack([torch.as_tensor(ds.get(key))
                        for ds in data_samples]).to(device)


class MMETarget:
    """Base class of the pretraining targets.

    Args:
        weight (float): Loss weight of the target. Defaults to 1.0.
        feat_dim (int, optional): Values per token; None derives it from the
            settings (and the backbone, see :meth:`setup`). Defaults to
            None.
    """

    #: Whether ``__call__`` takes ``token_idx`` (``[B, M]``) and computes
    #: only those tokens; otherwise the model gathers them from all tokens.
    selects_tokens = False

    def __init__(self, weight: float = 1.0,
                 feat_dim: Optional[int] = None) -> None:
        self.weight = float(weight)
        self._feat_dim = feat_dim
        self.patch_size: Optional[int] = None
        self.tubelet_size: Optional[int] = None

    def setup(self, backbone) -> None:
        """Learn the encoder's token geometry (patch and tubelet size)."""
        self.patch_size = int(backbone.patch_size)
        self.tubelet_size = int(getattr(backbone, 'tubelet_size', 2))

    def derived_dim(self) -> int:
        """Values per token from the settings (after :meth:`setup`)."""
        raise NotImplementedError

    @property
    def feat_dim(self) -> int:
        """Values per token: the size of this target's decoder head."""
        return self._feat_dim if self._feat_dim is not None else \
            self.derived_dim()

    def __call__(self, model, inputs: Tensor, data_samples: List
                 ) -> Tuple[Tensor, Optional[Tensor]]:
        """Per-token targets ``[B, N, D]`` and validity ``[B, N]`` bool
        (None: all valid) of a batch, on ``inputs.device``.

        Args:
            model (MME): The model (its preprocessor, for un-normalising).
            inputs (Tensor): ``[B, C, T, H, W]`` preprocessed clips.
            data_samples (list): The batch's packed samples.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(weight={self.weight}, '
                f'feat_dim={self._feat_dim})')
