"""Backbones of the MME plugin."""
from .mme_vit import MMEVisionTransformer
from .sdpa_attention import SDPAAttention, use_sdpa_attention

__all__ = ['MMEVisionTransformer', 'SDPAAttention', 'use_sdpa_attention']
