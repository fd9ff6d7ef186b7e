"""Algorithms of the MME plugin."""
from .mme import MME

__all__ = ['MME']
