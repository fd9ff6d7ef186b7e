"""Heads of the MME plugin."""
from .mme_decoder import MMEDecoder

__all__ = ['MMEDecoder']
