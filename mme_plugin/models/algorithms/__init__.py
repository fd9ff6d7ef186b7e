"""Algorithms of the MME plugin."""
from .mme import MME, pixel_targets

__all__ = ['MME', 'pixel_targets']
