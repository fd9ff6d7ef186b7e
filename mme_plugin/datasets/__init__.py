"""Datasets and transforms of the MME plugin."""
from .annotations import AnnotationError, read_video_list
from .repeat_aug_dataset import RepeatAugVideoDataset
from .synthetic import MOTION_CLASSES, make_synthetic_dataset, render_clip
from .transforms import *  # noqa: F401,F403

__all__ = [
    'AnnotationError', 'read_video_list', 'RepeatAugVideoDataset',
    'MOTION_CLASSES', 'make_synthetic_dataset', 'render_clip'
]
