"""Datasets and transforms of the MME plugin."""
from .synthetic import MOTION_CLASSES, make_synthetic_dataset, render_clip
from .transforms import *  # noqa: F401,F403

__all__ = ['MOTION_CLASSES', 'make_synthetic_dataset', 'render_clip']
