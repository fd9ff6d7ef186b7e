"""mmaction's ViT attention computed with ``scaled_dot_product_attention``."""
import torch
import torch.nn.functional as F
from mmaction.models.backbones.vit_mae import Attention
from torch import Tensor, nn

__all__ = ['SDPAAttention', 'use_sdpa_attention']


class SDPAAttention(Attention):
    """Same parameters and result as mmaction's ``Attention``, but through
    :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels
    on GPU, no materialised N x N attention matrix where a kernel allows)."""

    def forward(self, x: Tensor) -> Tensor:
        """Multi-head self-attention of ``x`` [B, N, C]."""
        b, n, _ = x.shape
        if hasattr(self, 'q_bias'):
            k_bias = torch.zeros_like(self.v_bias, requires_grad=False)
            bias = torch.cat((self.q_bias, k_bias, self.v_bias))
            qkv = F.linear(x, self.qkv.weight, bias)
        else:
            qkv = self.qkv(x)
        qkv = qkv.reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        x = F.scaled_dot_product_attention(
            q, k, v,
            dropout_p=self.attn_drop.p if self.training else 0.0,
            scale=self.scale)
        x = x.transpose(1, 2).reshape(b, n, -1)
        return self.proj_drop(self.proj(x))


def use_sdpa_attention(module: nn.Module) -> int:
    """Switch every mmaction ``Attention`` inside ``module`` to SDPA in place.

    Parameter names and values are unchanged (only the class changes).

    Returns:
        int: Number of attention modules switched.
    """
    count = 0
    for m in module.modules():
        if type(m) is Attention:
            m.__class__ = SDPAAttention
            count += 1
    return count
