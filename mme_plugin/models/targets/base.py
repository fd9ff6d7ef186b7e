"""What a pretraining target is: a registry-built ``nn.Module`` of the MME
model.

A target knows its per-token feature size from its own settings (so the
decoder's heads are sized from the targets, never by hand), returns, for a
batch, its per-token values and validity on the model's device, and names
the monitors it logs. The model (:class:`~mme_plugin.models.MME`) holds them
in an ``nn.ModuleDict`` (shown by ``print(model)``, moved by ``.to()``) with
their loss weights and has no per-name code. Targets hold no persistent
state: they add no ``state_dict`` keys, so checkpoints are independent of
them. The layout of every per-token target is that of
:func:`~mme_plugin.ops.grid_to_tokens` (the ViT's ``(t, h, w)`` order).

The results contract (which pipeline step adds which key, with shapes) is
the table in ``docs/mme_design.md``.
"""
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from mme_plugin.ops.mask_index import gather_tokens

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


class MMETarget(nn.Module):
    """Base class of the pretraining targets.

    A subclass implements :meth:`derived_dim` and :meth:`compute` (every
    token); one that can compute only some tokens overrides
    :meth:`forward` instead. :meth:`monitors` adds what it logs.

    Args:
        weight (float): Loss weight of the target. Defaults to 1.0.
        feat_dim (int, optional): Values per token; None derives it from the
            settings (and the backbone, see :meth:`setup`). Defaults to
            None.
    """

    def __init__(self, weight: float = 1.0,
                 feat_dim: Optional[int] = None) -> None:
        super().__init__()
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

    def compute(self, model, inputs: Tensor, data_samples: List
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """Per-token targets ``[B, N, D]`` and validity ``[B, N]`` bool
        (None: all valid) of every token of a batch, on ``inputs.device``.

        Args:
            model (MME): The model (its preprocessor, for un-normalising).
            inputs (Tensor): ``[B, C, T, H, W]`` preprocessed clips.
            data_samples (list): The batch's packed samples.
        """
        raise NotImplementedError

    def forward(self, model, inputs: Tensor, data_samples: List,
                token_idx: Optional[Tensor] = None
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """:meth:`compute`, then (with ``token_idx``, ``[B, M]``) the tokens
        ``token_idx`` of it: ``[B, M, D]`` and ``[B, M]``."""
        full, valid = self.compute(model, inputs, data_samples)
        if token_idx is not None:
            full = gather_tokens(full, token_idx)
            valid = None if valid is None else gather_tokens(
                valid, token_idx)
        return full, valid

    @torch.no_grad()
    def monitors(self, name: str, target: Tensor, valid: Optional[Tensor],
                 data_samples: List) -> Dict[str, Tensor]:
        """Log values of this target: ``<name>_target_abs``, the mean
        absolute target of the loss's tokens.

        Args:
            name (str): The target's name in the model.
            target (Tensor): ``[K, D]`` targets the loss read.
            valid (Tensor, optional): ``[K]`` their validity.
            data_samples (list): The batch's packed samples.
        """
        return {f'{name}_target_abs': target.abs().mean()}

    def extra_repr(self) -> str:
        return f'weight={self.weight}, feat_dim={self._feat_dim}'
