"""Tube masking (VideoMAE / MME, ``docs/release_spec.md`` section 3)."""
from typing import Dict

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mme_plugin.registry import TRANSFORMS

__all__ = ['TubeMasking']


@TRANSFORMS.register_module()
class TubeMasking(BaseTransform):
    """Mask the same random spatial patches in every tube.

    ``int(ratio * patches_per_frame)`` patches are masked per frame (release:
    0.7 -> 137 of 196, i.e. 1096 masked / 472 visible tokens for 16x224x224).

    ``mode='random'`` draws each tube time slice's patches anew, with the
    same count per slice, so every sample masks the same number of tokens.
    It is a per-slice variant of the "random masking" VideoMAE compares
    tube masking with (VideoMAE, Tong et al. 2022, masking-strategy
    ablation), which draws over the whole time x space grid (counts per
    slice vary there); in both a masked patch can often be copied from the
    neighbouring slice. A lever of the synthetic benchmark
    (``docs/synthetic_benchmark.md``); the recipes use tubes.

    Required Keys:

        - img_shape (tuple[int, int]): ``(H, W)`` of the frames.
        - imgs (list[np.ndarray]): The sparse frames (their count gives the
          tubes).

    Added Keys:

        - mask (Tensor): ``[tokens]`` bool in ``(t, h, w)`` order, True =
          masked (hidden from the encoder, predicted by the decoder).
        - visible_idx (Tensor): ``[N_visible]`` sorted int64 token indices.
        - masked_idx (Tensor): ``[N_masked]`` sorted int64 token indices.
          Both counts are the same in every sample; the model selects
          tokens with them (a ``gather``, no host sync on the GPU;
          :mod:`mme_plugin.ops.mask_index`).

    Args:
        mask_ratio (float): Fraction of patches masked. Defaults to 0.7
            (MME); VideoMAE uses 0.9.
        patch_size (int): Spatial patch size. Defaults to 16.
        tubelet_size (int): Frames per tube. Defaults to 2.
        mode (str): ``'tube'`` (one spatial mask for every time slice) or
            ``'random'`` (a new one per slice). Defaults to ``'tube'``.
    """

    MODES = ('tube', 'random')

    def __init__(self, mask_ratio: float = 0.7, patch_size: int = 16,
                 tubelet_size: int = 2, mode: str = 'tube') -> None:
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f'mask_ratio must be in (0, 1): {mask_ratio}')
        if mode not in self.MODES:
            raise ValueError(f'TubeMasking mode must be one of {self.MODES}, '
                             f'got {mode!r}')
        self.mask_ratio = mask_ratio
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.mode = mode

    def transform(self, results: Dict) -> Dict:
        """Draw the mask."""
        h, w = results['img_shape']
        hp, wp = h // self.patch_size, w // self.patch_size
        nt = len(results['imgs']) // self.tubelet_size
        per_frame = hp * wp
        num_masked = int(self.mask_ratio * per_frame)
        slices = 1 if self.mode == 'tube' else max(1, nt)
        mask = np.zeros((slices, per_frame), bool)
        for row in mask:
            row[np.random.permutation(per_frame)[:num_masked]] = True
        # tube: nt copies of one slice; random: its nt slices once; no
        # tube (fewer frames than a tubelet): empty
        mask = np.tile(mask.reshape(-1), nt // slices)
        results['mask'] = torch.from_numpy(mask)
        results['visible_idx'] = torch.from_numpy(np.flatnonzero(~mask))
        results['masked_idx'] = torch.from_numpy(np.flatnonzero(mask))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mask_ratio={self.mask_ratio}, '
                f'patch_size={self.patch_size}, '
                f'tubelet_size={self.tubelet_size}, mode={self.mode!r})')
