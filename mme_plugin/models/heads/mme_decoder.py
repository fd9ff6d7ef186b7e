"""The MME decoder: mask tokens, fixed positions, light transformer, heads.

Release (release spec 4.2): ``encoder_to_decoder`` Linear without bias,
a learnable mask token, a fixed 1-D sinusoid position table, 1 block of 192
dims and 6 heads, final LayerNorm, and one MLP head per target
(``Linear(192, 512) -> GELU -> Linear(512, D)``). The release ends the heads
in Sigmoid (HOG) and Tanh (trajectory) although its targets exceed those
ranges (8.4); here heads are linear by default and ``head_act`` restores the
release activations.
"""
from typing import Dict, Optional

import torch
from mmaction.models.backbones.vit_mae import Block, get_sinusoid_encoding
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from mme_plugin.ops.mask_index import gather_tokens, indices_from_mask
from mme_plugin.registry import MODELS

from ..backbones.sdpa_attention import use_sdpa_attention

__all__ = ['MMEDecoder']

_ACTS = {'none': nn.Identity, 'sigmoid': nn.Sigmoid, 'tanh': nn.Tanh}


def _head(in_dims: int, hidden: int, out_dims: int, act: str) -> nn.Module:
    if hidden > 0:
        return nn.Sequential(
            nn.Linear(in_dims, hidden), nn.GELU(),
            nn.Linear(hidden, out_dims), _ACTS[act]())
    return nn.Sequential(nn.Linear(in_dims, out_dims), _ACTS[act]())


@MODELS.register_module()
class MMEDecoder(BaseModule):
    """Predict targets of the masked tokens from the visible ones.

    Args:
        num_tokens (int): Tokens per clip (encoder layout).
        in_dims (int): Encoder width. Defaults to 768.
        embed_dims (int): Decoder width. Defaults to 192 (release).
        depth (int): Decoder blocks. Defaults to 1 (release).
        num_heads (int): Attention heads. Defaults to 6 (release).
        mlp_ratio (float): Block MLP ratio. Defaults to 4.
        head_dims (dict[str, int]): Output size of each head, e.g.
            ``dict(traj=32, hog=108)`` or ``dict(pixel=1536)``.
        head_hidden (int): Hidden width of the MLP heads; 0 = one Linear
            (VideoMAE). Defaults to 512 (release).
        head_act (dict[str, str], optional): Final activation per head:
            ``'none'``, ``'sigmoid'`` or ``'tanh'``. Defaults to none for all;
            the release is ``dict(hog='sigmoid', traj='tanh')``.
        use_sdpa (bool): SDPA attention. Defaults to True.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 num_tokens: int,
                 in_dims: int = 768,
                 embed_dims: int = 192,
                 depth: int = 1,
                 num_heads: int = 6,
                 mlp_ratio: float = 4.,
                 head_dims: Dict[str, int] = dict(traj=32, hog=108),
                 head_hidden: int = 512,
                 head_act: Optional[Dict[str, str]] = None,
                 use_sdpa: bool = True,
                 init_cfg=[
                     dict(type='TruncNormal', layer='Linear', std=0.02,
                          bias=0.),
                     dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_tokens = num_tokens
        self.encoder_to_decoder = nn.Linear(in_dims, embed_dims, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.register_buffer(
            'pos_embed', get_sinusoid_encoding(num_tokens, embed_dims),
            persistent=False)
        self.blocks = ModuleList([
            Block(embed_dims=embed_dims, num_heads=num_heads,
                  mlp_ratio=mlp_ratio, qkv_bias=True)
            for _ in range(depth)
        ])
        self.norm = build_norm_layer(dict(type='LN', eps=1e-6),
                                     embed_dims)[1]
        head_act = head_act or {}
        unknown = set(head_act) - set(head_dims)
        if unknown or any(a not in _ACTS for a in head_act.values()):
            raise ValueError(f'bad head_act {head_act} for heads {head_dims}')
        self.heads = nn.ModuleDict({
            name: _head(embed_dims, head_hidden, dims,
                        head_act.get(name, 'none'))
            for name, dims in head_dims.items()
        })
        if use_sdpa:
            use_sdpa_attention(self)

    def init_weights(self) -> None:
        """Initialise Linear/LN via ``init_cfg`` and the mask token."""
        super().init_weights()
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self,
                visible: Tensor,
                mask: Optional[Tensor] = None,
                visible_idx: Optional[Tensor] = None,
                masked_idx: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Decode.

        Args:
            visible (Tensor): ``[B, N_vis, C_enc]`` encoder output.
            mask (Tensor, optional): ``[B, N]`` bool, True = masked; used
                when the indices are not given (costs a host sync).
            visible_idx (Tensor, optional): ``[B, N_vis]`` sorted int64
                indices of the visible tokens (``TubeMasking``).
            masked_idx (Tensor, optional): ``[B, N_masked]`` sorted int64
                indices of the masked tokens.

        Returns:
            dict[str, Tensor]: ``[B, N_masked, D]`` per head, masked tokens in
            increasing token index (the order of ``target[mask]``).
        """
        if visible_idx is None or masked_idx is None:
            if mask is None:
                raise ValueError('MMEDecoder needs the mask or the visible '
                                 'and masked token indices')
            visible_idx, masked_idx = indices_from_mask(mask)
        b = visible.shape[0]
        x = self.encoder_to_decoder(visible)
        pos = self.pos_embed.expand(b, -1, -1).to(x.dtype)
        pos_vis = gather_tokens(pos, visible_idx)
        pos_mask = gather_tokens(pos, masked_idx)
        num_mask = pos_mask.shape[1]
        x = torch.cat([x + pos_vis, self.mask_token.to(x.dtype) + pos_mask],
                      dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x[:, -num_mask:])
        return {name: head(x) for name, head in self.heads.items()}
