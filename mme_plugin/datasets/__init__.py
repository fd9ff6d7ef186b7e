"""Datasets and transforms of the MME plugin."""
from .annotations import AnnotationError, read_video_list
from .checked_video_dataset import CheckedVideoDataset
from .collate import BatchShapeError, mme_collate
from .repeat_aug_dataset import RepeatAugVideoDataset
from .seeded_sampler import SeededIndex, SeededSampler, seed_for_sample
from .synthetic import MOTION_CLASSES, make_synthetic_dataset, render_clip
from .transforms import *  # noqa: F401,F403

__all__ = [
    'AnnotationError', 'read_video_list', 'CheckedVideoDataset',
    'BatchShapeError', 'mme_collate',
    'RepeatAugVideoDataset', 'SeededIndex', 'SeededSampler', 'seed_for_sample',
    'MOTION_CLASSES', 'make_synthetic_dataset', 'render_clip'
]
