"""The MME encoder: mmaction's ``VisionTransformer`` plus a masked forward."""
from typing import Optional

from mmaction.models.backbones.vit_mae import VisionTransformer
from torch import Tensor

from mme_plugin.ops.mask_index import gather_tokens, indices_from_mask
from mme_plugin.registry import MODELS

from .sdpa_attention import use_sdpa_attention

__all__ = ['MMEVisionTransformer']


@MODELS.register_module()
class MMEVisionTransformer(VisionTransformer):
    """mmaction's VideoMAE-style ViT with a masked (visible-tokens) forward.

    Parameter names are IDENTICAL to mmaction's ``VisionTransformer``, so a
    pretrained ``backbone.*`` state dict loads into a stock recognizer with
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``
    and no missing keys. The class name ends in ``VisionTransformer`` so
    mmaction's layer-decay optimizer constructor recognises it.

    With ``use_mean_pooling=True`` (the fine-tune layout) the final LayerNorm
    of the masked forward is ``fc_norm``, applied per token; fine-tuning then
    starts from this pretrained LayerNorm on the pooled feature instead of a
    fresh one (VideoMAE drops its pretraining ``norm``).

    Args:
        use_sdpa (bool): Compute attention with
            ``scaled_dot_product_attention``. Defaults to True.
        frozen (bool): Freeze every parameter and keep the module in eval
            mode (linear probing). Parameters are frozen at construction, so
            the optimizer and DDP never see them. Defaults to False.
        **kwargs: Arguments of mmaction's ``VisionTransformer``.
    """

    def __init__(self, use_sdpa: bool = True, frozen: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_frames = kwargs.get('num_frames', 16)
        self.tubelet_size = kwargs.get('tubelet_size', 2)
        self.frozen = frozen
        if use_sdpa:
            use_sdpa_attention(self)
        if frozen:
            for param in self.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'MMEVisionTransformer':
        """Set train mode; a frozen backbone stays in eval mode."""
        return super().train(mode and not self.frozen)

    def _final_norm(self, x: Tensor) -> Tensor:
        return self.fc_norm(x) if self.fc_norm is not None else self.norm(x)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None,
                visible_idx: Optional[Tensor] = None) -> Tensor:
        """Encode a clip; with ``mask`` or ``visible_idx``, only its visible
        tokens.

        Args:
            x (Tensor): ``[B, C, T, H, W]`` clip.
            mask (Tensor, optional): ``[B, N]`` bool, True = masked (dropped);
                every sample must mask the same number of tokens (tube
                masking does). Costs a host sync; ``visible_idx`` does not.
            visible_idx (Tensor, optional): ``[B, N_visible]`` int64 sorted
                indices of the visible tokens (``TubeMasking``); takes
                precedence over ``mask``. Without either: mmaction's forward
                (pooled feature, or feature map).

        Returns:
            Tensor: ``[B, N_visible, C]`` normalised visible tokens with a
            mask; otherwise what mmaction's ``VisionTransformer`` returns.
        """
        if mask is None and visible_idx is None:
            return super().forward(x)
        _, _, t, h, w = x.shape
        if (h // self.patch_size, w // self.patch_size) != self.grid_size:
            raise ValueError(f'masked forward needs {self.grid_size} patches '
                             f'per frame, got input {h}x{w}')
        x = self.patch_embed(x)[0]  # [B, N, C]
        if visible_idx is None:
            if mask.shape != x.shape[:2]:
                raise ValueError(f'mask {tuple(mask.shape)} does not match '
                                 f'the {tuple(x.shape[:2])} tokens')
            visible_idx = indices_from_mask(mask)[0]
        elif visible_idx.shape[0] != x.shape[0]:
            raise ValueError(f'visible_idx {tuple(visible_idx.shape)} does '
                             f'not match the {tuple(x.shape[:2])} tokens')
        x = x + self.pos_embed.to(x.dtype)
        x = gather_tokens(x, visible_idx)
        x = self.pos_drop(x)
        for blk in self.blocks:
            x = blk(x)
        return self._final_norm(x)
